/**
 * Values normalised by field type, not by transport: the same field arrives as a JSON number over
 * JSON-RPC and as an untyped string over XML-RPC, and leaves here as one JavaScript type. `OpaqueRef:NULL`
 * (and `""`) refs become null, XAPI's unset date becomes null, maps keep string keys, integers beyond 2^53
 * become bigints.
 */

import { hvkitError } from '@hvkit/core';
import { defaultOf, fieldsOf, type XapiFieldType } from './datamodel';
import { parseXapiDate, setOwn } from './wire';

/** The null ref. */
export const NULL_REF = 'OpaqueRef:NULL';

/** A normalised XAPI record: known fields typed, unknown fields as they arrived. */
export type XapiRecord = Record<string, unknown>;

function bad(type: XapiFieldType, value: unknown, field: string): never {
  throw hvkitError(
    'PROTOCOL',
    `XAPI field ${field} is not a ${type}: ${JSON.stringify(String(value)).slice(0, 60)}.`,
    { adapter: 'xen-xapi', operation: 'decode', retryable: false },
  );
}

function toInt(value: unknown, field: string): number | bigint {
  if (typeof value === 'number') {
    if (Number.isInteger(value)) return value;
    return bad('int', value, field);
  }
  if (typeof value === 'bigint') return value;
  if (typeof value === 'string' && /^[+-]?\d{1,40}$/.test(value.trim())) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : BigInt(value.trim());
  }
  return bad('int', value, field);
}

function toFloat(value: unknown, field: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    const t = value.trim().toLowerCase();
    if (t === 'nan') return Number.NaN;
    if (t === 'inf' || t === 'infinity') return Number.POSITIVE_INFINITY;
    if (t === '-inf' || t === '-infinity') return Number.NEGATIVE_INFINITY;
    if (t !== '' && Number.isFinite(Number(t))) return Number(t);
  }
  return bad('float', value, field);
}

function toBool(value: unknown, field: string): boolean {
  if (typeof value === 'boolean') return value;
  if (value === 'true' || value === '1' || value === 1) return true;
  if (value === 'false' || value === '0' || value === 0) return false;
  return bad('bool', value, field);
}

function toStringMap(value: unknown, field: string, float: boolean): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return bad('map', value, field);
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) {
    setOwn(out, k, float ? toFloat(v, field) : typeof v === 'string' ? v : String(v));
  }
  return out;
}

/**
 * One value normalised to its field type.
 *
 * @throws HvkitError `PROTOCOL` when the value cannot be of that type.
 */
export function normaliseValue(type: XapiFieldType, value: unknown, field = 'value'): unknown {
  switch (type) {
    case 'string':
      if (typeof value === 'string') return value;
      if (typeof value === 'number' || typeof value === 'bigint' || typeof value === 'boolean')
        return String(value);
      return bad(type, value, field);
    case 'int':
      return toInt(value, field);
    case 'float':
      return toFloat(value, field);
    case 'bool':
      return toBool(value, field);
    case 'datetime':
      if (value === null) return null;
      if (value instanceof Date) return value.getTime() === 0 ? null : value;
      if (typeof value === 'string') return parseXapiDate(value, { operation: 'decode' });
      return bad(type, value, field);
    case 'ref':
      if (value === null || value === '' || value === NULL_REF) return null;
      if (typeof value === 'string') return value;
      return bad(type, value, field);
    case 'strings':
    case 'refs':
      if (!Array.isArray(value)) return bad(type, value, field);
      return value.map((v) => normaliseValue(type === 'refs' ? 'ref' : 'string', v, field));
    case 'map':
      return toStringMap(value, field, false);
    case 'floatMap':
      return toStringMap(value, field, true);
  }
}

/** Whether every own value of a plain object is of the given `typeof`. */
function allValues(value: unknown, type: 'string' | 'number'): boolean {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  for (const k in value) if (typeof (value as Record<string, unknown>)[k] !== type) return false;
  return true;
}

/** Whether a value is already what {@link normaliseValue} would return for it (then it is kept as is). */
function isNormal(type: XapiFieldType, value: unknown): boolean {
  switch (type) {
    case 'string':
      return typeof value === 'string';
    case 'int':
      return Number.isInteger(value) || typeof value === 'bigint';
    case 'float':
      return typeof value === 'number';
    case 'bool':
      return typeof value === 'boolean';
    case 'datetime':
      return value === null || (value instanceof Date && value.getTime() !== 0);
    case 'ref':
      return value === null || (typeof value === 'string' && value !== '' && value !== NULL_REF);
    case 'strings':
      return Array.isArray(value) && value.every((v) => typeof v === 'string');
    case 'refs':
      return Array.isArray(value) && value.every((v) => typeof v === 'string' && v !== '' && v !== NULL_REF);
    case 'map':
      return allValues(value, 'string');
    case 'floatMap':
      return allValues(value, 'number');
  }
}

/**
 * A record of class `cls` normalised: every known field typed (absent ones at their default), other fields
 * kept as they arrived. The record is normalised in place and returned (callers pass a freshly decoded
 * result; a record of a few thousand VMs' `get_all_records` is not copied): fields already of their type
 * are kept, the others replaced.
 *
 * @throws HvkitError `PROTOCOL` when the record is not an object or a field cannot be of its type.
 */
export function normaliseRecord(cls: string, value: unknown): XapiRecord {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw hvkitError('PROTOCOL', `An XAPI ${cls} record is not a struct.`, {
      adapter: 'xen-xapi',
      operation: 'decode',
      retryable: false,
    });
  const record = value as XapiRecord;
  // The known fields' names are plain identifiers (never `__proto__`): assignment defines them.
  for (const field of fieldsOf(cls).values()) {
    const name = field.name;
    if (!Object.hasOwn(record, name)) record[name] = defaultOf(field.type);
    else if (!isNormal(field.type, record[name]))
      record[name] = normaliseValue(field.type, record[name], `${cls}.${name}`);
  }
  return record;
}

/** `{ ref: record }` of `get_all_records`, each record normalised. */
export function normaliseRecords(cls: string, value: unknown): Map<string, XapiRecord> {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw hvkitError('PROTOCOL', `${cls}.get_all_records did not return a struct.`, {
      adapter: 'xen-xapi',
      operation: `${cls}.get_all_records`,
      retryable: false,
    });
  const out = new Map<string, XapiRecord>();
  for (const [ref, rec] of Object.entries(value)) out.set(ref, normaliseRecord(cls, rec));
  return out;
}
