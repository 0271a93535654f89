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
  /** Aborts when the adapter closes (event streams end without an error). */
  readonly closeSignal: AbortSignal;
  /** Deterministic backup names, clock and lease owner (recordings, tests); see `XenXapiOptions.naming`. */
  readonly naming?: XenXapiBackupNaming;
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
