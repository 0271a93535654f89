/**
 * What every capability of the xen-xapi adapter shares: the XAPI client, the defaults `connect` settled,
 * and the guest lookup (guest ids are VM UUIDs: XAPI refs are not stable across restarts).
 */

import {
  formatGuestRef,
  type GuestRef,
  HvkitError,
  hvkitError,
  type Logger,
  resolveGuestRef,
} from '@hvkit/core';
import { ADAPTER_ID } from './errors';
import { isGuestRecord } from './mapping/inventory';
import type { XapiCallOptions, XapiClient } from './protocol/client';
import { normaliseRecord, type XapiRecord } from './protocol/values';

/** The shared state of one connection. */
export interface AdapterContext {
  /** The XAPI client (see `protocol/client.ts`). */
  readonly client: XapiClient;
  /** Receives debug lines and warnings. */
  readonly logger: Logger;
  /** Default timeout of one backend call, in ms. */
  readonly callTimeoutMs: number;
  /**
   * Aborts when `close()` starts: event streams end without an error, running backups and restores stop
   * and remove what they created (its reason is the `ABORTED` "the adapter was closed").
   */
  readonly closeSignal: AbortSignal;
  /** Running backups and restores: `close()` waits for them (at most `closeTimeoutMs`) before logging out. */
  readonly running: Set<RunningOperation>;
  /**
   * What running backups and restores created and have not removed or handed over yet (snapshots, leases,
   * tasks, imported VMs, sink files), each described by name: what is still here when `close()` stops
   * waiting is logged as a warning.
   */
  readonly leftovers: Set<Leftover>;
  /** Deterministic backup names, clock and lease owner (recordings, tests); see `XenXapiOptions.naming`. */
  readonly naming?: XenXapiBackupNaming;
}

/** A backup or restore `close()` waits for. */
export interface RunningOperation {
  /** Settles (never rejects) once the operation and its cleanup are over. */
  readonly settled: Promise<void>;
  /** `close()` stopped waiting: the caller gets `ABORTED` now. */
  abandon(): void;
}

/** Something a running operation created, named for the warning when it cannot be removed. */
export interface Leftover {
  /** E.g. `snapshot "hvkit-backup" <uuid> of guest "vm1" (and its VDIs)`; may be refined as the run learns more. */
  what: string;
}

/** Warns through the adapter's logger that `leftover` could not be removed, and why (a failing logger is ignored). */
export function reportLeftover(ctx: AdapterContext, leftover: Leftover, why: string): void {
  try {
    ctx.logger.warn(`${ADAPTER_ID}: could not remove the ${leftover.what}: ${why}`, {
      adapter: ADAPTER_ID,
      leftover: leftover.what,
    });
  } catch {
    // The outcome does not depend on the logger.
  }
}

/**
 * Runs one cleanup step of `leftover`: done (or NOT_FOUND) forgets it; a failure is logged naming it, unless
 * `close()` already logged it when it stopped waiting.
 */
export async function removeLeftover(
  ctx: AdapterContext,
  leftover: Leftover,
  remove: () => Promise<unknown>,
): Promise<void> {
  try {
    await remove();
    ctx.leftovers.delete(leftover);
  } catch (error) {
    const gone = HvkitError.isInstance(error, 'NOT_FOUND');
    if (ctx.leftovers.delete(leftover) && !gone)
      reportLeftover(ctx, leftover, error instanceof Error ? error.message : String(error));
  }
}

/** Deterministic names, clock and lease owner for backups (recordings, tests; internal). */
export interface XenXapiBackupNaming {
  /** The random part of artifact ids (default: 6 random base-36 characters). */
  uniqueId?: () => string;
  /** The clock of artifact ids, manifests and leases (default: the wall clock). */
  now?: () => Date;
  /** The owner written into leases (default `<hostname>:<pid>`). */
  leaseOwner?: () => string;
}

/** A VM found by a GuestRef. */
export interface ResolvedVm {
  ref: string;
  record: XapiRecord;
}

function notFound(ref: GuestRef, operation: string) {
  return hvkitError('NOT_FOUND', `${operation}: no guest ${formatGuestRef(ref)}.`, {
    adapter: ADAPTER_ID,
    operation,
  });
}

/** `Class.get_record(ref)`, normalised. */
export async function getRecord(
  ctx: AdapterContext,
  cls: string,
  ref: string,
  o: XapiCallOptions,
): Promise<XapiRecord> {
  return normaliseRecord(cls, await ctx.client.call(`${cls}.get_record`, [ref], o));
}

/**
 * The VM a GuestRef names (an id or `{ uuid }` is the VM's UUID; `{ name }` its name label, which must be
 * unique). Templates, snapshots and control domains are not guests.
 *
 * @throws HvkitError `NOT_FOUND` when no guest matches, `CONFLICT` when a name matches several.
 */
export async function resolveVm(
  ctx: AdapterContext,
  ref: GuestRef,
  operation: string,
  o: XapiCallOptions = {},
): Promise<ResolvedVm> {
  const { by, value } = resolveGuestRef(ref);
  if (by === 'name') {
    const refs = (await ctx.client.call('VM.get_by_name_label', [value], o)) as string[];
    const found: ResolvedVm[] = [];
    for (const r of Array.isArray(refs) ? refs : []) {
      const record = await getRecord(ctx, 'VM', r, o);
      if (isGuestRecord(record)) found.push({ ref: r, record });
    }
    if (found.length === 0) throw notFound(ref, operation);
    if (found.length > 1)
      throw hvkitError(
        'CONFLICT',
        `${operation}: ${found.length} guests are named ${JSON.stringify(value)}; use the id.`,
        {
          adapter: ADAPTER_ID,
          operation,
        },
      );
    return found[0] as ResolvedVm;
  }
  if (!/^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/.test(value))
    throw notFound(ref, operation);
  let vmRef: string;
  try {
    vmRef = (await ctx.client.call('VM.get_by_uuid', [value.toLowerCase()], o)) as string;
  } catch (error) {
    if (HvkitError.isInstance(error, 'NOT_FOUND')) throw notFound(ref, operation);
    throw error;
  }
  const record = await getRecord(ctx, 'VM', vmRef, o);
  if (!isGuestRecord(record)) throw notFound(ref, operation);
  return { ref: vmRef, record };
}
