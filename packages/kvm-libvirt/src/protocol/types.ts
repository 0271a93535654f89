/**
 * The structures shared by many libvirt procedures (remote_protocol.x): object handles and typed
 * parameters, with their XDR encoders and decoders.
 */

import { hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import { LIMITS } from './constants';
import { formatUuid, parseUuid, type XdrReader, type XdrWriter } from './xdr';

/** `remote_nonnull_domain`: a domain handle. */
export interface RemoteDomain {
  name: string;
  /** Canonical lowercase UUID. */
  uuid: string;
  /** Numeric id while running, −1 when inactive. */
  id: number;
}

/** `remote_nonnull_network`. */
export interface RemoteNetwork {
  name: string;
  uuid: string;
}

/** `remote_nonnull_storage_pool`. */
export interface RemoteStoragePool {
  name: string;
  uuid: string;
}

/** `remote_nonnull_storage_vol`. */
export interface RemoteStorageVol {
  /** Name of its pool. */
  pool: string;
  name: string;
  /** Unique key: the path for dir pools. */
  key: string;
}

/** `remote_nonnull_domain_snapshot`. */
export interface RemoteDomainSnapshot {
  name: string;
  dom: RemoteDomain;
}

/** `remote_nonnull_domain_checkpoint`. */
export interface RemoteDomainCheckpoint {
  name: string;
  dom: RemoteDomain;
}

/** Reads a `remote_uuid` (16 raw bytes). */
export function readUuid(r: XdrReader): string {
  return formatUuid(r.fixedOpaque(16));
}

/** Writes a `remote_uuid`. */
export function writeUuid(w: XdrWriter, uuid: string): void {
  w.fixedOpaque(parseUuid(uuid), 16, 'uuid');
}

function checkObject(value: unknown, what: string): void {
  if (typeof value !== 'object' || value === null) {
    throw hvkitError('INVALID_ARGUMENT', `${what} must be an object`, { adapter: ADAPTER_ID });
  }
}

/** Reads a `remote_nonnull_domain`. */
export function readDomain(r: XdrReader): RemoteDomain {
  return { name: r.string(), uuid: readUuid(r), id: r.int() };
}

/** Writes a `remote_nonnull_domain`. */
export function writeDomain(w: XdrWriter, d: RemoteDomain): void {
  checkObject(d, 'domain');
  w.string(d.name, LIMITS.STRING_MAX, 'domain name');
  writeUuid(w, d.uuid);
  w.int(d.id ?? -1, 'domain id');
}

/** Reads a `remote_nonnull_network`. */
export function readNetwork(r: XdrReader): RemoteNetwork {
  return { name: r.string(), uuid: readUuid(r) };
}

/** Writes a `remote_nonnull_network`. */
export function writeNetwork(w: XdrWriter, n: RemoteNetwork): void {
  checkObject(n, 'network');
  w.string(n.name, LIMITS.STRING_MAX, 'network name');
  writeUuid(w, n.uuid);
}

/** Reads a `remote_nonnull_storage_pool`. */
export function readStoragePool(r: XdrReader): RemoteStoragePool {
  return { name: r.string(), uuid: readUuid(r) };
}

/** Writes a `remote_nonnull_storage_pool`. */
export function writeStoragePool(w: XdrWriter, p: RemoteStoragePool): void {
  checkObject(p, 'storage pool');
  w.string(p.name, LIMITS.STRING_MAX, 'pool name');
  writeUuid(w, p.uuid);
}

/** Reads a `remote_nonnull_storage_vol`. */
export function readStorageVol(r: XdrReader): RemoteStorageVol {
  return { pool: r.string(), name: r.string(), key: r.string() };
}

/** Writes a `remote_nonnull_storage_vol`. */
export function writeStorageVol(w: XdrWriter, v: RemoteStorageVol): void {
  checkObject(v, 'storage volume');
  w.string(v.pool, LIMITS.STRING_MAX, 'volume pool');
  w.string(v.name, LIMITS.STRING_MAX, 'volume name');
  w.string(v.key, LIMITS.STRING_MAX, 'volume key');
}

/** Reads a `remote_nonnull_domain_snapshot`. */
export function readSnapshot(r: XdrReader): RemoteDomainSnapshot {
  return { name: r.string(), dom: readDomain(r) };
}

/** Writes a `remote_nonnull_domain_snapshot`. */
export function writeSnapshot(w: XdrWriter, s: RemoteDomainSnapshot): void {
  checkObject(s, 'snapshot');
  w.string(s.name, LIMITS.STRING_MAX, 'snapshot name');
  writeDomain(w, s.dom);
}

/** Reads a `remote_nonnull_domain_checkpoint`. */
export function readCheckpoint(r: XdrReader): RemoteDomainCheckpoint {
  return { name: r.string(), dom: readDomain(r) };
}

/** Writes a `remote_nonnull_domain_checkpoint`. */
export function writeCheckpoint(w: XdrWriter, c: RemoteDomainCheckpoint): void {
  checkObject(c, 'checkpoint');
  w.string(c.name, LIMITS.STRING_MAX, 'checkpoint name');
  writeDomain(w, c.dom);
}

/** Smallest encoded sizes of the handles, for refusing huge array counts early. */
export const XDR_MIN_BYTES = {
  domain: 4 + 16 + 4,
  network: 4 + 16,
  pool: 4 + 16,
  vol: 12,
  snapshot: 4 + 24,
  typedParam: 4 + 4 + 4,
} as const;

/** `virTypedParameterType` numbers. */
export const TYPED_PARAM = {
  INT: 1,
  UINT: 2,
  LLONG: 3,
  ULLONG: 4,
  DOUBLE: 5,
  BOOLEAN: 6,
  STRING: 7,
} as const;

/** A typed-parameter type number, 1..7. */
export type TypedParamTypeNumber = (typeof TYPED_PARAM)[keyof typeof TYPED_PARAM];

/**
 * A typed parameter (`virTypedParameter`) as it travels: field name, type number (1..7) and value.
 * Decoded values are: INT, UINT, DOUBLE → number; LLONG, ULLONG → bigint; BOOLEAN → boolean;
 * STRING → string. When encoding, integer types accept a number or a bigint and BOOLEAN also 0/1.
 * Reuse the type the driver reported when sending (a `weight` sent as ULLONG is refused where the
 * driver expects UINT). Same shape as the mapping layer's `TypedParam`.
 */
export interface TypedParam {
  field: string;
  type: TypedParamTypeNumber;
  value: number | bigint | string | boolean;
}

/** Reads a `remote_typed_param`. */
export function readTypedParam(r: XdrReader): TypedParam {
  const field = r.string();
  const type = r.int();
  switch (type) {
    case TYPED_PARAM.INT:
      return { field, type, value: r.int() };
    case TYPED_PARAM.UINT:
      return { field, type, value: r.uint() };
    case TYPED_PARAM.LLONG:
      return { field, type, value: r.hyper() };
    case TYPED_PARAM.ULLONG:
      return { field, type, value: r.uhyper() };
    case TYPED_PARAM.DOUBLE:
      return { field, type, value: r.double() };
    case TYPED_PARAM.BOOLEAN:
      return { field, type, value: r.int() !== 0 };
    case TYPED_PARAM.STRING:
      return { field, type, value: r.string() };
    default:
      throw hvkitError('PROTOCOL', `XDR decode: unknown typed parameter type ${type} for ${field}`, {
        adapter: ADAPTER_ID,
      });
  }
}

function invalid(message: string) {
  return hvkitError('INVALID_ARGUMENT', message, { adapter: ADAPTER_ID });
}

function integerValue(p: TypedParam, what: string): bigint | number {
  const v = p.value;
  if (typeof v === 'bigint') return v;
  if (typeof v === 'number' && Number.isInteger(v)) {
    if (!Number.isSafeInteger(v)) throw invalid(`${what} ${v} is beyond 2^53; pass a bigint`);
    return v;
  }
  throw invalid(
    `${what} must be an integer (number or bigint), got ${typeof v === 'string' ? JSON.stringify(v) : String(v)}`,
  );
}

function int32(p: TypedParam, what: string, unsigned: boolean): number {
  const b = BigInt(integerValue(p, what));
  const [min, max] = unsigned ? [0n, 0xffff_ffffn] : [-0x8000_0000n, 0x7fff_ffffn];
  if (b < min || b > max) throw invalid(`${what} ${b} does not fit ${unsigned ? 'uint' : 'int'}`);
  return Number(b);
}

/**
 * Writes a `remote_typed_param`.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for an unknown type, a field name of 80 bytes or more, or a value
 *   that does not fit its type.
 */
export function writeTypedParam(w: XdrWriter, p: TypedParam): void {
  checkObject(p, 'typed parameter');
  if (typeof p.field !== 'string' || p.field.length === 0) {
    throw invalid('typed parameter field must be a non-empty string');
  }
  if (Buffer.byteLength(p.field, 'utf8') >= LIMITS.TYPED_PARAM_FIELD_LENGTH) {
    throw invalid(`typed parameter field ${JSON.stringify(p.field)} is longer than 79 bytes`);
  }
  const what = `typed parameter ${p.field}`;
  w.string(p.field, LIMITS.TYPED_PARAM_FIELD_LENGTH, 'typed parameter field');
  switch (p.type) {
    case TYPED_PARAM.INT:
      w.int(TYPED_PARAM.INT).int(int32(p, what, false), what);
      return;
    case TYPED_PARAM.UINT:
      w.int(TYPED_PARAM.UINT).uint(int32(p, what, true), what);
      return;
    case TYPED_PARAM.LLONG:
      w.int(TYPED_PARAM.LLONG).hyper(integerValue(p, what), what);
      return;
    case TYPED_PARAM.ULLONG:
      w.int(TYPED_PARAM.ULLONG).uhyper(integerValue(p, what), what);
      return;
    case TYPED_PARAM.DOUBLE:
      if (typeof p.value !== 'number') throw invalid(`${what} must be a number`);
      w.int(TYPED_PARAM.DOUBLE).double(p.value, what);
      return;
    case TYPED_PARAM.BOOLEAN: {
      const v = p.value;
      if (v !== true && v !== false && v !== 0 && v !== 1) throw invalid(`${what} must be a boolean`);
      w.int(TYPED_PARAM.BOOLEAN).int(v === true || v === 1 ? 1 : 0);
      return;
    }
    case TYPED_PARAM.STRING:
      if (typeof p.value !== 'string') throw invalid(`${what} must be a string`);
      w.int(TYPED_PARAM.STRING).string(p.value, LIMITS.STRING_MAX, what);
      return;
    default:
      throw invalid(`typed parameter ${p.field} has unknown type ${String((p as { type: unknown }).type)}`);
  }
}

/** Reads `remote_typed_param params<max>`. */
export function readTypedParams(r: XdrReader, max: number): TypedParam[] {
  return r.array(max, readTypedParam, XDR_MIN_BYTES.typedParam);
}

/** Writes `remote_typed_param params<max>`. */
export function writeTypedParams(w: XdrWriter, params: readonly TypedParam[], max: number): void {
  w.array(params, max, writeTypedParam, 'typed parameters');
}

/** Typed parameters as a plain `{ field: value }` record (64-bit values stay bigints). */
export function typedParamsToRecord(
  params: readonly TypedParam[],
): Record<string, number | bigint | boolean | string> {
  const out: Record<string, number | bigint | boolean | string> = {};
  for (const p of params) out[p.field] = p.value;
  return out;
}
