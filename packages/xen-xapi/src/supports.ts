/**
 * The capability manifest of the xen-xapi adapter (also `adapter.supports`). `limits.timing` says, per
 * field, when a change takes effect: `next-boot` (read by Xen when the domain is built: `VCPUs_params`; or
 * when the VIF is plugged: its rate limit), or `live-when-running` (the memory balloon range: at once on a
 * running VM, at the next start on a halted one). `limits.set` reports the outcome of each call in
 * `appliesAt`. Events come from `event.from` (guest lifecycle: added, removed, power changes, configuration
 * changes). Backups: full (XVA), incremental (VHD of the changed blocks), host configuration, checkpoints,
 * cleanup, and restore as a new VM or in place.
 */

import type { SupportsManifest } from '@hvkit/core';

/** Freezes `value` and every object and array in it. */
function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

const BASE = {
  inventory: { host: true, guests: true, networks: true, storage: true, vlans: true },
  limits: {
    applies: 'next-boot',
    modes: ['both'],
    cpu: { weight: true, maxCores: true, reservationMHz: false },
    memory: { maxBytes: true, softBytes: false, minBytes: true, swapMaxBytes: false },
    disks: false,
    network: {
      inboundAverage: false,
      inboundPeak: false,
      inboundBurst: false,
      outboundAverage: true,
      outboundPeak: false,
      outboundBurst: false,
    },
    pids: false,
  },
  labels: { models: ['tag'], set: true, hostModels: true },
  backups: {
    snapshots: true,
    memorySnapshots: true,
    full: true,
    incremental: true,
    hostConfig: true,
    methods: ['xapi-xva', 'xapi-vhd-delta', 'xapi-host-backup'],
    checkpoints: true,
    cleanup: true,
    restore: { asNew: true, inPlace: true, incrementalChains: true },
  },
  events: { lifecycle: true },
} as const satisfies SupportsManifest;

/** When each supported limit field takes effect. */
export const XEN_XAPI_LIMIT_TIMING = {
  'cpu.weight': 'next-boot',
  'cpu.maxCores': 'next-boot',
  'memory.maxBytes': 'live-when-running',
  'memory.minBytes': 'live-when-running',
  'nics.outboundAverageBytesPerSec': 'next-boot',
} as const;

/** What this adapter supports (frozen, nested levels included). */
export const XEN_XAPI_SUPPORTS = deepFreeze({
  ...BASE,
  limits: { ...BASE.limits, timing: XEN_XAPI_LIMIT_TIMING },
});
