/**
 * Backup and restore leases in the domain metadata (`DOMAIN_SET_METADATA` / `DOMAIN_GET_METADATA`, type
 * ELEMENT, namespace {@link BACKUP_LEASE_NAMESPACE}), where every libvirt client sees them: a running
 * backup stores one before it creates anything, renews it while it runs (core's `holdLease`), and removes it
 * at the end. A lease that expired, or whose owner process on this host is gone, is a leftover.
 *
 * The lease is written into the live domain and its persistent definition where both exist (LIVE|CONFIG on
 * a running persistent domain, LIVE on a transient one, CONFIG on a stopped one).
 */

import { HvkitError, holdLease, type LeaseHolder } from '@hvkit/core';
import type { AdapterContext, DomainHandle } from '../context';
import {
  BACKUP_LEASE_KEY,
  BACKUP_LEASE_NAMESPACE,
  buildLeaseXml,
  parseLeaseXml,
  type StoredLease,
} from '../mapping/backup-state';
import { VIR_DOMAIN_METADATA_ELEMENT } from '../mapping/domain';
import { PROGRAM } from '../protocol/constants';
import { remoteProcedures } from '../protocol/remote-protocol';
import { type RemoteDomain, writeDomain } from '../protocol/types';
import { XdrReader, XdrWriter } from '../protocol/xdr';

/** `REMOTE_PROC_DOMAIN_SET_METADATA` and `_GET_METADATA` (libvirt 0.9.10; no descriptors in the client). */
const DOMAIN_SET_METADATA = 264;
const DOMAIN_GET_METADATA = 265;
/** `virDomainModificationImpact`. */
const AFFECT = { CURRENT: 0, LIVE: 1, CONFIG: 2 } as const;

type Rpc = { signal?: AbortSignal; timeoutMs?: number };

/** What {@link readLease} found in the domain metadata. */
export type LeaseReading =
  | { state: 'none' }
  | { state: 'valid'; lease: StoredLease }
  /** Metadata in the lease namespace that is not a lease (a leftover too). */
  | { state: 'invalid'; text: string };

/** Reads the lease of `dom` (the live domain when it runs, else its definition). */
export async function readLease(ctx: AdapterContext, dom: RemoteDomain, rpc: Rpc): Promise<LeaseReading> {
  const w = new XdrWriter();
  writeDomain(w, dom);
  w.int(VIR_DOMAIN_METADATA_ELEMENT, 'type');
  w.optString(BACKUP_LEASE_NAMESPACE);
  w.uint(AFFECT.CURRENT, 'flags');
  let text: string;
  try {
    const reply = await ctx.client.callRaw(PROGRAM.REMOTE, DOMAIN_GET_METADATA, w.bytes(), rpc);
    const r = new XdrReader(reply);
    text = r.string();
    r.finish('DOMAIN_GET_METADATA reply');
  } catch (error) {
    if (HvkitError.isInstance(error, 'NOT_FOUND')) return { state: 'none' };
    throw error;
  }
  try {
    return { state: 'valid', lease: parseLeaseXml(text) };
  } catch (error) {
    if (HvkitError.isInstance(error, 'PROTOCOL')) return { state: 'invalid', text: text.slice(0, 200) };
    throw error;
  }
}

/** Whether the domain is persistent (has a definition besides the running instance). */
export async function isPersistent(ctx: AdapterContext, dom: RemoteDomain, rpc: Rpc): Promise<boolean> {
  return await ctx.client.call(remoteProcedures.DOMAIN_IS_PERSISTENT, { dom }, rpc);
}

/** The flags that reach the live domain and the definition, as far as each exists. */
export function leaseFlags(h: Pick<DomainHandle, 'active'>, persistent: boolean): number {
  if (!h.active) return AFFECT.CONFIG;
  return persistent ? AFFECT.LIVE | AFFECT.CONFIG : AFFECT.LIVE;
}

/** Stores `lease` (or removes the lease element, with `null`) with `flags` ({@link leaseFlags}). */
export async function writeLease(
  ctx: AdapterContext,
  dom: RemoteDomain,
  lease: StoredLease | null,
  flags: number,
  rpc: Rpc,
): Promise<void> {
  const w = new XdrWriter();
  writeDomain(w, dom);
  w.int(VIR_DOMAIN_METADATA_ELEMENT, 'type');
  w.optString(lease === null ? null : buildLeaseXml(lease));
  w.optString(lease === null ? null : BACKUP_LEASE_KEY);
  w.optString(BACKUP_LEASE_NAMESPACE);
  w.uint(flags, 'flags');
  const reply = await ctx.client.callRaw(PROGRAM.REMOTE, DOMAIN_SET_METADATA, w.bytes(), rpc);
  new XdrReader(reply).finish('DOMAIN_SET_METADATA reply');
}

/** Options of {@link startLeaseRenewal}. */
export interface LeaseRenewalOptions {
  /** Renewal interval and lifetime, ms (core's defaults: 30 s and 120 s). */
  renewMs?: number;
  ttlMs?: number;
  now: () => Date;
  /** Told about a failed renewal (the holder tries again at the next interval). */
  onError: (error: unknown) => void;
}

/** Renews `lease` in the domain metadata every `renewMs` until the holder is stopped. */
export function startLeaseRenewal(
  ctx: AdapterContext,
  dom: RemoteDomain,
  lease: StoredLease,
  flags: number,
  options: LeaseRenewalOptions,
): LeaseHolder {
  return holdLease(lease, {
    store: (renewed, { signal }) =>
      writeLease(ctx, dom, { ...lease, ...renewed }, flags, { signal, timeoutMs: 30_000 }),
    ...(options.renewMs !== undefined ? { renewMs: options.renewMs } : {}),
    ...(options.ttlMs !== undefined ? { ttlMs: options.ttlMs } : {}),
    now: options.now,
    onError: options.onError,
  });
}

// ---------------------------------------------------------------------------------------------------------
// Restore lease volumes

/** Size of a restore's lease volume: the lease JSON padded with spaces. */
export const RESTORE_LEASE_BYTES = 1024;

/**
 * What a restore's lease volume `<run>.lease` holds (JSON padded with spaces to {@link RESTORE_LEASE_BYTES}):
 * core's lease fields, and what the restore targets and comes from, so that `backups.cleanup` of either
 * guest, and the next restore, find it.
 */
export interface RestoreLeaseRecord extends StoredLease {
  operation: 'restore';
  /** The target guest's name (in place: the guest's; as new: the name it gets). */
  guest: string;
  /** The target guest's UUID (in place only; a new guest has none before it is defined). */
  uuid?: string;
  mode: 'new' | 'in-place';
  /** The guest the artifact was taken of (the manifest's). */
  source?: { name: string; uuid?: string };
}

/**
 * The content of a restore lease volume.
 *
 * @throws TypeError when the record does not fit in {@link RESTORE_LEASE_BYTES}.
 */
export function restoreLeaseBytes(record: RestoreLeaseRecord): Uint8Array {
  const bytes = new TextEncoder().encode(JSON.stringify(record).padEnd(RESTORE_LEASE_BYTES, ' '));
  if (bytes.byteLength > RESTORE_LEASE_BYTES) {
    throw new TypeError(`restore lease larger than ${RESTORE_LEASE_BYTES} bytes`);
  }
  return bytes;
}

/**
 * Reads a restore lease volume's content back: the record, or undefined when it is no lease (empty, being
 * written, or not hvkit's JSON). Fields are checked, never trusted: only strings and the two modes.
 */
export function parseRestoreLease(bytes: Uint8Array): RestoreLeaseRecord | undefined {
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes).trim());
  } catch {
    return undefined;
  }
  if (typeof value !== 'object' || value === null) return undefined;
  const v = value as Record<string, unknown>;
  const str = (x: unknown) => typeof x === 'string' && x.length > 0 && x.length <= 1024;
  if (!['owner', 'run', 'startedAt', 'expiresAt', 'guest'].every((k) => str(v[k]))) return undefined;
  if (v.mode !== 'new' && v.mode !== 'in-place') return undefined;
  const record: RestoreLeaseRecord = {
    owner: v.owner as string,
    run: v.run as string,
    startedAt: v.startedAt as string,
    expiresAt: v.expiresAt as string,
    operation: 'restore',
    guest: v.guest as string,
    mode: v.mode,
  };
  if (str(v.uuid)) record.uuid = (v.uuid as string).toLowerCase();
  const source = v.source as Record<string, unknown> | undefined;
  if (typeof source === 'object' && source !== null && str(source.name)) {
    record.source = { name: source.name as string };
    if (str(source.uuid)) record.source.uuid = (source.uuid as string).toLowerCase();
  }
  return record;
}
