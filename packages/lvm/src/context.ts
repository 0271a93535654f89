/**
 * What every capability of the lvm adapter shares: the wire client, the guest mapping, the snapshot size
 * policy and the freeze hook `connect` settled. Capabilities receive it from `connect` and never build their
 * own client.
 */

import type { Guest, Logger, RunningOperations } from '@hvkit/core';
import type { LvmClient } from './protocol/client';

/** How big the copy-on-write area of a backup's snapshot of a non-thin volume is: the larger of the two. */
export interface SnapshotSizePolicy {
  /** Percent of the origin's size, 1..100 (default 20). */
  percent?: number;
  /** At least this many bytes (default 16 MiB). Rounded up to the group's extent size by LVM. */
  minBytes?: number;
}

/**
 * Freezes and thaws the filesystems on a guest's volumes around the snapshot, for an application-consistent
 * copy (e.g. kvm-libvirt's guest-agent freeze, or `fsfreeze` on a mounted volume). `thaw` is called whenever
 * `freeze` was, also when the snapshot failed or the run was aborted.
 */
export interface FreezeHook {
  freeze(guest: Guest, options: { signal?: AbortSignal }): Promise<void>;
  thaw(guest: Guest, options: { signal?: AbortSignal }): Promise<void>;
}

/**
 * Deterministic names, clock and lease owner for backups, snapshots and restores, and the lease timing. For
 * recordings and tests (internal): a recorded run then replays command for command.
 */
export interface LvmBackupNaming {
  /**
   * The unique part of artifact ids, backup snapshot names (`<lv>-hvkit-<unique>`) and restore runs: 1-16 of
   * `A-Z a-z 0-9`. Default: 6 random hex characters.
   */
  uniqueId?: () => string;
  /** The clock of artifact ids, manifests, snapshot names and leases (default: the wall clock). */
  now?: () => Date;
  /** The owner written into leases (default `<hostname>:<pid>`). */
  leaseOwner?: () => string;
  /** How often a running backup renews its lease, in ms (default 30 000). */
  leaseRenewMs?: number;
  /** How long a lease lives without renewal, in ms (default 120 000); must exceed `leaseRenewMs`. */
  leaseTtlMs?: number;
}

/** The shared state of one connection. */
export interface AdapterContext {
  /** The wire client (see `protocol/client.ts`). */
  readonly client: LvmClient;
  /** Receives debug lines and warnings. */
  readonly logger: Logger;
  /** Default timeout of one backend call, in ms. */
  readonly callTimeoutMs: number;
  /** Guest name to its volumes (`vg/lv`), or undefined: every data volume is a guest of its own. */
  readonly guests: Readonly<Record<string, readonly string[]>> | undefined;
  readonly snapshotSize: Required<SnapshotSizePolicy>;
  readonly freeze: FreezeHook | undefined;
  /** Names, clock and lease timing of backups (see {@link LvmBackupNaming}). */
  readonly naming: LvmBackupNaming;
  /**
   * Running backups and restores: `close()` aborts them and waits for their cleanup; started after `close()`
   * they fail `CONNECTION_LOST`.
   */
  readonly running: RunningOperations;
}
