/**
 * Backup leases on LVM: a running backup or restore holds a lease, stored as an LVM tag
 * (`hvkit-lease-<base64url of the lease JSON>`, see core's `BackupLease`) so every process on every host
 * that sees the volume group sees it. A backup stores it on the snapshots it makes (given to `lvcreate
 * --addtag`: the guest's own volumes are never changed, and no command more runs for it), a restore on its
 * temporary volumes. It is renewed while the run lasts (`lvchange --deltag old --addtag new`) and goes with
 * the run's volumes (or, on the thin snapshots a run keeps as bases, with the tag change that makes them
 * bases). A live lease of another run on a volume or its snapshots makes a backup of it `CONFLICT`;
 * `backups.cleanup` keeps what a live lease holds and removes expired leases with what their runs left.
 */

import {
  BACKUP_LEASE_RENEW_MS,
  BACKUP_LEASE_TTL_MS,
  type BackupLease,
  holdLease,
  hvkitError,
  leaseIsLive,
  leaseOwner,
  newLease,
  parseLease,
} from '@hvkit/core';
import type { AdapterContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { isSnapshot, type LvmLogicalVolume } from '../mapping/report';

/** The prefix of a lease tag; the rest is the lease as base64url JSON (LVM tags allow `A-Z a-z 0-9 _ + . -`). */
export const LEASE_TAG_PREFIX = 'hvkit-lease-';

/** The tag that stores `lease`. */
export function leaseTag(lease: BackupLease): string {
  return `${LEASE_TAG_PREFIX}${Buffer.from(JSON.stringify(lease), 'utf8').toString('base64url')}`;
}

/** A lease tag found on a volume: the lease, or undefined when the tag does not decode to one. */
export interface FoundLease {
  volume: LvmLogicalVolume;
  tag: string;
  lease: BackupLease | undefined;
}

/** The lease tags of `volumes`. */
export function leasesOf(volumes: readonly LvmLogicalVolume[]): FoundLease[] {
  const out: FoundLease[] = [];
  for (const volume of volumes) {
    for (const tag of volume.tags) {
      if (!tag.startsWith(LEASE_TAG_PREFIX)) continue;
      let lease: BackupLease | undefined;
      try {
        lease = parseLease(Buffer.from(tag.slice(LEASE_TAG_PREFIX.length), 'base64url').toString('utf8'));
      } catch {
        lease = undefined;
      }
      out.push({ volume, tag, lease });
    }
  }
  return out;
}

/** The clock of leases (the `naming.now` of connect, else the wall clock). */
export function leaseClock(context: AdapterContext): () => Date {
  return context.naming.now ?? (() => new Date());
}

/** The first live lease of another run than `run` on `volumes` (by `(startedAt, run)` when `before` is set). */
export function liveLeaseOfOther(
  context: AdapterContext,
  volumes: readonly LvmLogicalVolume[],
  run: string,
  before?: BackupLease,
): FoundLease | undefined {
  const now = leaseClock(context)();
  return leasesOf(volumes).find(
    (f) =>
      f.lease !== undefined &&
      f.lease.run !== run &&
      leaseIsLive(f.lease, now) &&
      (before === undefined ||
        f.lease.startedAt < before.startedAt ||
        (f.lease.startedAt === before.startedAt && f.lease.run < before.run)),
  );
}

/**
 * The volumes of `all` that may carry a backup lease on `volumes`: their snapshots (a backup stores its lease
 * on the snapshots it makes, with `lvcreate --addtag`) and the volumes themselves.
 */
export function leaseHoldersOf(
  all: readonly LvmLogicalVolume[],
  volumes: readonly LvmLogicalVolume[],
): LvmLogicalVolume[] {
  return all.filter((lv) =>
    volumes.some((v) => v.vgName === lv.vgName && (v.name === lv.name || v.name === lv.origin)),
  );
}

/** The volume a found lease is on: the origin of a snapshot that carries it, else the volume itself. */
function leasedVolume(found: FoundLease): string {
  const { volume } = found;
  return isSnapshot(volume) && volume.origin ? `${volume.vgName}/${volume.origin}` : volume.fullName;
}

/** The CONFLICT error of a volume a live lease holds. */
export function leaseConflict(found: FoundLease, operation: string) {
  const lease = found.lease as BackupLease;
  return hvkitError(
    'CONFLICT',
    `${leasedVolume(found)} is being backed up by run ${lease.run} of ${lease.owner} (lease until ${lease.expiresAt}); try again when it ended, or run backups.cleanup after the lease expired if that process died.`,
    { adapter: ADAPTER_ID, operation, details: { volume: leasedVolume(found), lease } },
  );
}

/** A new lease of `run` (owner and clock of connect's `naming`), to store with {@link leaseTag}. */
export function newRunLease(context: AdapterContext, run: string): BackupLease {
  const { naming } = context;
  return newLease(run, naming.leaseTtlMs ?? BACKUP_LEASE_TTL_MS, {
    now: leaseClock(context)(),
    owner: naming.leaseOwner?.() ?? leaseOwner(),
  });
}

/** A lease whose tag is stored on volumes already; `stop()` ends its renewal (it never throws). */
export interface StoredLease {
  readonly lease: BackupLease;
  /** Every lease tag of the run that a volume may carry now (the current one, and any of a failed renewal). */
  tags(): string[];
  /** Stops renewing; resolves with every tag this run may have stored (to remove with the volumes' names then). */
  stop(): Promise<string[]>;
}

/** Options of {@link holdStoredLease}. */
export interface HoldStoredLeaseOptions {
  /**
   * Runs each renewal's `lvchange` (`fn`) one at a time with the caller's own steps that rename the volumes
   * or remove their lease tags, so a renewal never tags a volume under a name that changed under it.
   */
  exclusive?: <T>(fn: () => Promise<T>) => Promise<T>;
}

/**
 * Renews `lease`, whose tag the volumes `names` carry already (given to `lvcreate --addtag`, so the volumes
 * never exist without it), until `stop()`. `names` may be a function, read at each renewal (volumes that are
 * renamed, or that are done and lost their lease tags). `tags()` and what `stop()` resolves with are every
 * tag a renewal may have stored.
 *
 * A renewal under way when `stop()` is called runs to its end (bounded by the call timeout) and `stop()`
 * waits for it: an `lvchange` killed on this side may still be committed by LVM afterwards, and would then
 * put a lease back on a volume whose lease tags the caller removes next (a thin run's new base).
 */
export function holdStoredLease(
  context: AdapterContext,
  names: readonly string[] | (() => readonly string[]),
  lease: BackupLease,
  options: HoldStoredLeaseOptions = {},
): StoredLease {
  const { client, logger, naming } = context;
  const renewMs = naming.leaseRenewMs ?? BACKUP_LEASE_RENEW_MS;
  const ttlMs = naming.leaseTtlMs ?? BACKUP_LEASE_TTL_MS;
  const exclusive = options.exclusive ?? (<T>(fn: () => Promise<T>) => fn());
  const mine = new Set<string>([leaseTag(lease)]);
  let current = leaseTag(lease);
  const holder = holdLease(lease, {
    renewMs,
    ttlMs,
    now: leaseClock(context),
    store: (next) =>
      exclusive(async () => {
        const targets = typeof names === 'function' ? names() : names;
        // Every volume is done with the lease: nothing left to renew it on.
        if (targets.length === 0) return;
        const tag = leaseTag(next);
        mine.add(tag);
        await client.run(['lvchange', '-q', '--deltag', current, '--addtag', tag, ...targets], {
          timeoutMs: context.callTimeoutMs,
          operation: 'backups.backup',
        });
        mine.delete(current);
        current = tag;
      }),
    onError: (error) => logger.warn('lvm: backup lease renewal failed', { error: (error as Error).message }),
  });
  return {
    lease,
    tags: () => [...mine],
    async stop() {
      await holder.stop();
      return [...mine];
    },
  };
}
