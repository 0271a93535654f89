/**
 * The capability manifest of the vmware-vsphere adapter (also `adapter.supports`): the same for vCenter and
 * ESXi; what one of them lacks (host configuration bundles on vCenter, vAPI tagging on ESXi) is answered
 * per call (a typed `UNSUPPORTED`, custom attributes standing in for tags).
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

/** What this adapter supports (also `adapter.supports`); frozen, nested levels included. */
export const VMWARE_VSPHERE_SUPPORTS = deepFreeze({
  inventory: { host: true, guests: true, networks: true, storage: true, vlans: true },
  limits: {
    applies: 'live',
    modes: ['both'],
    cpu: { weight: true, maxCores: true, reservationMHz: true },
    memory: { maxBytes: true, softBytes: false, minBytes: true, swapMaxBytes: false },
    disks: { readBytesPerSec: false, writeBytesPerSec: false, readIops: true, writeIops: true },
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
    incremental: false,
    hostConfig: true,
    methods: ['datastore-download', 'esxi-config'],
    checkpoints: false,
    cleanup: true,
    restore: { asNew: true, inPlace: true, incrementalChains: false },
  },
  events: { lifecycle: true },
} as const satisfies SupportsManifest);
