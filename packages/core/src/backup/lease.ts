/**
 * Leases: how a running backup or restore tells other processes that it holds a guest. The adapter stores
 * the lease where other processes can see it (libvirt domain metadata, a vSphere custom field, a file in
 * the sink) and renews it while the run lasts; `backups.cleanup` and the next backup never remove what a
 * live lease holds, and treat an expired one as a leftover.
 */

import { hostname } from 'node:os';
import { hvkitError } from '../errors/hvkit-error';

/** Default time a lease lives without renewal: 120 s. */
export const BACKUP_LEASE_TTL_MS = 120_000;

/** Default renewal interval: 30 s (a lease survives three missed renewals). */
export const BACKUP_LEASE_RENEW_MS = 30_000;

/** A lease on a guest, as the adapter stores it. Times are ISO 8601 UTC strings, so it stores as JSON. */
export interface BackupLease {
  /** Who holds it: `<hostname>:<pid>`. */
  owner: string;
  /** The run it is for: the artifact id of the backup (or the restore's own id). */
  run: string;
  startedAt: string;
  /** When it stops counting unless renewed. */
  expiresAt: string;
}

/** The owner string of this process: `<hostname>:<pid>`. */
export function leaseOwner(): string {
  return `${hostname()}:${process.pid}`;
}

function checkTtl(ttlMs: unknown, what = 'ttlMs'): number {
  if (typeof ttlMs !== 'number' || !Number.isSafeInteger(ttlMs) || ttlMs <= 0) {
    throw new TypeError(`${what} must be a positive integer (ms).`);
  }
  return ttlMs;
}

/**
 * A new lease for `run`, held by this process (or `options.owner`), from `now` for `ttlMs` (default
 * {@link BACKUP_LEASE_TTL_MS}).
 *
 * @throws TypeError for an empty run or a bad ttl.
 */
export function newLease(
  run: string,
  ttlMs: number = BACKUP_LEASE_TTL_MS,
  options: { now?: Date; owner?: string } = {},
): BackupLease {
  if (typeof run !== 'string' || run === '') throw new TypeError('newLease: run must be a non-empty string.');
  checkTtl(ttlMs);
  const now = options.now ?? new Date();
  return {
    owner: options.owner ?? leaseOwner(),
    run,
    startedAt: now.toISOString(),
    expiresAt: new Date(now.getTime() + ttlMs).toISOString(),
  };
}

/** The lease with `expiresAt` moved to `now + ttlMs`. */
export function renewedLease(
  lease: BackupLease,
  ttlMs: number = BACKUP_LEASE_TTL_MS,
  now: Date = new Date(),
): BackupLease {
  checkTtl(ttlMs);
  return { ...lease, expiresAt: new Date(now.getTime() + ttlMs).toISOString() };
}

/** Whether `lease` still holds at `now` (its `expiresAt` is in the future). A malformed time is not live. */
export function leaseIsLive(lease: BackupLease, now: Date = new Date()): boolean {
  const expires = Date.parse(lease.expiresAt);
  return Number.isFinite(expires) && expires > now.getTime();
}

/**
 * Reads a lease stored as JSON (or an already parsed value).
 *
 * @throws HvkitError `PROTOCOL` when it is not a lease.
 */
export function parseLease(value: string | unknown): BackupLease {
  let v: unknown = value;
  if (typeof value === 'string') {
    if (value.length > 4096) throw hvkitError('PROTOCOL', 'A stored backup lease is over 4096 characters.');
    try {
      v = JSON.parse(value);
    } catch {
      throw hvkitError('PROTOCOL', 'A stored backup lease is not valid JSON.');
    }
  }
  const o = v as Record<string, unknown>;
  const ok =
    typeof o === 'object' &&
    o !== null &&
    ['owner', 'run', 'startedAt', 'expiresAt'].every(
      (k) => typeof o[k] === 'string' && (o[k] as string).length > 0 && (o[k] as string).length <= 1024,
    ) &&
    Number.isFinite(Date.parse(o.startedAt as string)) &&
    Number.isFinite(Date.parse(o.expiresAt as string));
  if (!ok) throw hvkitError('PROTOCOL', 'A stored backup lease lacks owner, run, startedAt or expiresAt.');
  return {
    owner: o.owner as string,
    run: o.run as string,
    startedAt: o.startedAt as string,
    expiresAt: o.expiresAt as string,
  };
}

/** Options of {@link holdLease}. */
export interface HoldLeaseOptions {
  /**
   * Stores the lease where other processes see it; called with each renewed lease. It should honour
   * `signal`, which aborts when the holder stops.
   */
  store(lease: BackupLease, options: { signal: AbortSignal }): Promise<void>;
  /** Renewal interval in ms (default {@link BACKUP_LEASE_RENEW_MS}). */
  renewMs?: number;
  /** Lifetime of each renewal in ms (default {@link BACKUP_LEASE_TTL_MS}); must exceed `renewMs`. */
  ttlMs?: number;
  /** Called with an error of `store` during renewal (the holder keeps trying at the next interval). */
  onError?: (error: unknown) => void;
  /** Clock, for tests. */
  now?: () => Date;
}

/** A lease being held: see {@link holdLease}. */
export interface LeaseHolder {
  /** The lease as last stored (or being stored). */
  readonly lease: BackupLease;
  /** How many renewals failed so far. */
  readonly failures: number;
  /**
   * Stops renewing: clears the timer, aborts a renewal in progress and waits for it to settle. Never
   * throws; calling it again is harmless. Removing the stored lease is the caller's job.
   */
  stop(): Promise<void>;
}

/**
 * Keeps `lease` alive: calls `store` with a renewed lease every `renewMs` until {@link LeaseHolder.stop}.
 * The first store is the caller's (store the lease before starting the run); this only renews. The timer is
 * unref'd (it never keeps the process alive), renewals never overlap, and a failing `store` is reported to
 * `onError` (never thrown into nowhere, never an unhandled rejection).
 *
 * @throws TypeError for bad options.
 */
export function holdLease(lease: BackupLease, options: HoldLeaseOptions): LeaseHolder {
  if (typeof options !== 'object' || options === null || typeof options.store !== 'function') {
    throw new TypeError('holdLease: options.store must be a function.');
  }
  const renewMs = checkTtl(options.renewMs ?? BACKUP_LEASE_RENEW_MS, 'renewMs');
  const ttlMs = checkTtl(options.ttlMs ?? BACKUP_LEASE_TTL_MS, 'ttlMs');
  if (ttlMs <= renewMs) throw new TypeError('holdLease: ttlMs must exceed renewMs.');
  if (options.onError !== undefined && typeof options.onError !== 'function') {
    throw new TypeError('holdLease: onError must be a function.');
  }
  const now = options.now ?? (() => new Date());
  const controller = new AbortController();
  let current = lease;
  let failures = 0;
  let running: Promise<void> | undefined;
  let timer: NodeJS.Timeout | undefined;
  let stopped = false;

  const report = (error: unknown) => {
    failures++;
    try {
      options.onError?.(error);
    } catch {
      // The reporter's own failure has nowhere to go.
    }
  };
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(tick, renewMs);
    timer.unref?.();
  };
  const tick = () => {
    timer = undefined;
    if (stopped) return;
    const next = renewedLease(current, ttlMs, now());
    running = (async () => {
      try {
        await options.store(next, { signal: controller.signal });
        current = next;
      } catch (error) {
        if (!stopped) report(error);
      }
    })().finally(() => {
      running = undefined;
      schedule();
    });
  };
  schedule();
  return {
    get lease() {
      return current;
    },
    get failures() {
      return failures;
    },
    async stop() {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = undefined;
      controller.abort();
      await running;
    },
  };
}
