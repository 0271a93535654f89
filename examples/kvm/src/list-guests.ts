/**
 * Lists every guest with its state, limits and security labels (live labels of running guests first,
 * then the definition's).
 *
 * Usage: LIBVIRT_URI=qemu:///system npm run list -w @hvkit-examples/kvm
 */

import type { ResourceLimits } from '@hvkit/core';
import { connectFromEnv } from './connect';

function describeLimits(l: ResourceLimits): string {
  const parts: string[] = [];
  if (l.cpu?.weight != null) parts.push(`weight ${l.cpu.weight}`);
  if (l.cpu?.maxCores != null) parts.push(`max ${l.cpu.maxCores} cores`);
  if (l.memory?.maxBytes != null) parts.push(`mem ≤ ${l.memory.maxBytes} B`);
  if (l.memory?.softBytes != null) parts.push(`mem soft ${l.memory.softBytes} B`);
  for (const d of l.disks ?? [])
    if (d.readBytesPerSec != null || d.writeBytesPerSec != null)
      parts.push(`${d.device} r ${d.readBytesPerSec ?? '∞'} w ${d.writeBytesPerSec ?? '∞'} B/s`);
  for (const n of l.nics ?? [])
    if (n.inboundAverageBytesPerSec != null || n.outboundAverageBytesPerSec != null)
      parts.push(
        `${n.device} in ${n.inboundAverageBytesPerSec ?? '∞'} out ${n.outboundAverageBytesPerSec ?? '∞'} B/s`,
      );
  return parts.join(', ') || 'no limits';
}

const adapter = await connectFromEnv();
try {
  const host = await adapter.inventory!.host();
  console.log(
    `${host.name}: ${host.hypervisor.kind} ${host.hypervisor.version} (libvirt ${host.hypervisor.build})`,
  );
  console.log(`security models: ${host.securityModels.map((m) => m.model).join(', ') || 'none'}`);
  for (const g of await adapter.inventory!.listGuests()) {
    const [limits, labels] = await Promise.all([adapter.limits!.get(g.id), adapter.labels!.get(g.id)]);
    console.log(`\n${g.name} (${g.id}) ${g.powerState}, ${g.vcpus} vCPUs, ${g.memoryBytes} B`);
    console.log(`  limits: ${describeLimits(limits)}`);
    for (const l of labels)
      console.log(`  label: ${l.source} ${l.model} ${l.type}${l.label ? ` ${l.label}` : ''}`);
  }
} finally {
  await adapter.close();
}
