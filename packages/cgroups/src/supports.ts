/**
 * The capability manifest of the cgroups adapter. {@link CGROUPS_SUPPORTS} is the most it can do (a
 * cgroup v2 host with the cpu, memory, io and pids controllers and swap accounting); `adapter.supports`
 * of a connection is narrowed by {@link supportsFor} to what that host's hierarchies offer (no
 * `memory.minBytes` on v1, no swap without swap accounting, no pids without the pids controller).
 * No labels, no backups, no events; writes are live only (`modes: ['live']`): libvirt and systemd may
 * rewrite a guest's groups when it restarts, so `apply: 'persistent'` is UNSUPPORTED.
 */

import type { DeepReadonly, SupportsManifest } from '@hvkit/core';
import type { BackendHello } from './protocol/client';

type LimitsManifest = Exclude<SupportsManifest['limits'], false>;

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

/** What the cgroups adapter can do on a host that offers everything (frozen). */
export const CGROUPS_SUPPORTS: DeepReadonly<SupportsManifest> = deepFreeze({
  inventory: { host: true, guests: true, networks: false, storage: false, vlans: false },
  limits: {
    applies: 'live',
    modes: ['live'],
    cpu: { weight: true, maxCores: true, reservationMHz: false },
    memory: { maxBytes: true, softBytes: true, minBytes: true, swapMaxBytes: true },
    disks: { readBytesPerSec: true, writeBytesPerSec: true, readIops: true, writeIops: true },
    network: false,
    pids: true,
  },
  labels: false,
  backups: false,
  events: false,
} satisfies SupportsManifest) as DeepReadonly<SupportsManifest>;

/**
 * The manifest of one host: {@link CGROUPS_SUPPORTS} without what its hierarchies lack. `v1Swap` says
 * whether the v1 memory hierarchy has `memory.memsw.limit_in_bytes` (swap accounting).
 */
export function supportsFor(hello: BackendHello, v1Swap: boolean): DeepReadonly<SupportsManifest> {
  const c = hello.controllers;
  const memory = c.memory;
  const limits: LimitsManifest = {
    applies: 'live',
    modes: ['live'],
    cpu: { weight: !!c.cpu, maxCores: !!c.cpu, reservationMHz: false },
    memory: {
      maxBytes: !!memory,
      softBytes: !!memory,
      minBytes: memory?.version === 2,
      swapMaxBytes: memory?.version === 2 || (memory?.version === 1 && v1Swap),
    },
    disks: c.io ? { readBytesPerSec: true, writeBytesPerSec: true, readIops: true, writeIops: true } : false,
    network: false,
    pids: !!c.pids,
  };
  return deepFreeze({
    inventory: { host: true, guests: true, networks: false, storage: false, vlans: false },
    limits,
    labels: false,
    backups: false,
    events: false,
  } satisfies SupportsManifest) as DeepReadonly<SupportsManifest>;
}
