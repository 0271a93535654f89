/** Lists every guest with its limits and labels. Usage: npm run list -w @hvkit-examples/vsphere */

import type { ResourceLimits } from '@hvkit/core';
import { connectFromEnv } from './connect';

const MiB = 1024 * 1024;

function describeLimits(l: ResourceLimits): string {
  const parts: string[] = [];
  if (l.cpu?.weight !== undefined) parts.push(`weight ${l.cpu.weight ?? 'default'}`);
  if (l.cpu?.maxCores !== undefined) parts.push(`max ${l.cpu.maxCores ?? '∞'} cores`);
  if (l.cpu?.reservationMHz) parts.push(`reserve ${l.cpu.reservationMHz} MHz`);
  if (l.memory?.maxBytes !== undefined)
    parts.push(`mem ≤ ${l.memory.maxBytes === null ? '∞' : `${l.memory.maxBytes / MiB} MiB`}`);
  for (const d of l.disks ?? []) if (d.readIops != null) parts.push(`${d.device} ${d.readIops} IOPS`);
  for (const n of l.nics ?? [])
    if (n.outboundAverageBytesPerSec != null)
      parts.push(`${n.device} ${(n.outboundAverageBytesPerSec * 8) / 1e6} Mbit/s`);
  return parts.join(', ');
}

const adapter = await connectFromEnv();
try {
  const host = await adapter.inventory!.host();
  console.log(`${host.hypervisor.kind} ${host.hypervisor.version} at ${host.name}`);
  for (const guest of await adapter.inventory!.listGuests()) {
    const limits = await adapter.limits!.get(guest.id);
    const labels = await adapter.labels!.get(guest.id);
    console.log(
      `${guest.id}  ${guest.name}  ${guest.powerState}  ${guest.vcpus} vCPU  ${guest.memoryBytes / MiB} MiB`,
    );
    console.log(`    limits: ${describeLimits(limits)}`);
    console.log(`    labels: ${labels.map((l) => `${l.model}: ${l.label ?? ''}`).join('; ')}`);
  }
} finally {
  await adapter.close();
}
