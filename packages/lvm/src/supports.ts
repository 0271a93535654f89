/**
 * The capability manifest of the lvm adapter. Every capability starts as `false`: the adapter has no
 * capability object for it, and the conformance suite reports the capability's checks as skipped with
 * the reason "not supported by adapter (supports.<capability> = false)". Turn one on by implementing it in
 * `capabilities/<capability>.ts` and describing it here down to its fields (see `SupportsManifest` in
 * `@hvkit/core`); the docs page's capability table is printed from this constant by
 * `scripts/gen-capability-table.ts`.
 */

import type { DeepReadonly, SupportsManifest } from '@hvkit/core';

/** What the lvm adapter can do (frozen). */
export const LVM_SUPPORTS: DeepReadonly<SupportsManifest> = Object.freeze({
  inventory: { host: true, guests: true, networks: false, storage: true, vlans: false },
  limits: false,
  labels: false,
  backups: {
    snapshots: true,
    memorySnapshots: false,
    full: true,
    incremental: true,
    hostConfig: false,
    methods: ['lvm-cow-snapshot', 'lvm-thin-snapshot', 'lvm-thin-delta'],
    checkpoints: true,
    cleanup: true,
    restore: { asNew: true, inPlace: true, incrementalChains: true },
  },
  events: false,
}) as DeepReadonly<SupportsManifest>;
