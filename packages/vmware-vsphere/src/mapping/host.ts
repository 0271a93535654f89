/** HostSystem properties → spec v1 `Host` (an ESXi host, or a vCenter summed over its hosts). */

import type { Host } from '@hvkit/core';
import type { ObjectProperties } from '../protocol/soap/property-collector';
import type { AboutInfo, DataObject } from '../protocol/soap/schema';

/** HostSystem paths {@link mapHost} reads. */
export const HOST_PATHS = ['name', 'summary.hardware', 'config.product'] as const;

/**
 * Maps the HostSystems of a server. On vCenter (`about.apiType` VirtualCenter) the result describes the
 * vCenter: id `about.instanceUuid`, kind `vCenter`, CPU counts and memory summed over its hosts. On ESXi it
 * is the host itself (kind `ESXi`, version from `config.product`).
 */
export function mapHost(hosts: readonly ObjectProperties[], about: AboutInfo, serverHost: string): Host {
  const hw = hosts.map((h) => (h.props['summary.hardware'] ?? {}) as DataObject);
  const sum = (key: string) =>
    hw.reduce((n, h) => n + (typeof h[key] === 'number' ? (h[key] as number) : 0), 0);
  const first: Record<string, unknown> = hw[0] ?? {};
  const cpu: Host['cpu'] = {};
  if (typeof first.cpuModel === 'string') cpu.model = first.cpuModel;
  if (hw.length) {
    cpu.sockets = sum('numCpuPkgs');
    cpu.cores = sum('numCpuCores');
    cpu.threads = sum('numCpuThreads');
  }
  if (typeof first.cpuMhz === 'number') cpu.mhz = first.cpuMhz;
  let host: Host;
  if (about.apiType === 'VirtualCenter') {
    host = {
      id: about.instanceUuid ?? serverHost,
      name: serverHost,
      hypervisor: { kind: 'vCenter', version: about.version, build: about.build },
      cpu,
      securityModels: [{ model: 'tag' }],
    };
  } else {
    const h = hosts[0];
    const product = (h?.props['config.product'] ?? about) as DataObject;
    host = {
      id: h?.obj.value ?? 'ha-host',
      name: String(h?.props.name ?? serverHost),
      hypervisor: {
        kind: 'ESXi',
        version: String(product.version ?? about.version),
        build: String(product.build ?? about.build),
      },
      cpu,
      securityModels: [{ model: 'tag' }],
    };
  }
  if (hw.length) host.memoryBytes = sum('memorySize');
  return host;
}
