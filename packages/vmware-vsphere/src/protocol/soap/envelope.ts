/**
 * Building vim25 SOAP requests from JS values. A data object's `_type` is written as `xsi:type` on every
 * polymorphic field and wherever it differs from the field's declared type (so a value read by the
 * decoder, which always sets `_type`, round-trips with the type of every polymorphic field: a device's
 * `backing`, a `TraversalSpec` in `selectSet`, a port setting's `vlan`).
 * Fields of types in the schema table are written in schema order, and a polymorphic field without
 * `_type` is refused, because the server would silently read the base type.
 */

import { hvkitError, xmlEscape, xmlEscapeAttribute } from '@hvkit/core';
import { ADAPTER_ID } from '../../errors';
import { METHOD_PARAMS, type MoRef, type ValueKind, type VimFieldInfo, vimType } from './schema';

/** The vim25 namespace: the default namespace of the method element. */
export const VIM25_NS = 'urn:vim25';

/**
 * A value for a field declared `xsd:anyType` (or to force a type): written as `<name xsi:type="type">`.
 * `typedValue('xsd:int', 5)`, `typedValue('ArrayOfString', ['a', 'b'])`.
 */
export interface TypedValue {
  readonly _type: string;
  readonly _value: unknown;
}

/** A value the request builder writes. Plain objects are data objects (`_type` = their vim25 type). */
export type SoapValue =
  | string
  | number
  | bigint
  | boolean
  | Date
  | Uint8Array
  | MoRef
  | TypedValue
  | { readonly _type?: string; readonly [field: string]: unknown }
  | readonly SoapValue[]
  | null
  | undefined;

/** Method arguments by parameter name, in the order the method declares them (order matters to vCenter). */
export type SoapArgs = Readonly<Record<string, unknown>>;

/** A managed object reference. */
export function moRef(type: string, value: string): MoRef {
  if (typeof type !== 'string' || typeof value !== 'string')
    throw new TypeError('moRef(type, value) takes strings.');
  return { type, value };
}

/** A value with an explicit `xsi:type` (see {@link TypedValue}). */
export function typedValue(type: string, value: unknown): TypedValue {
  if (typeof type !== 'string' || !TYPE_NAME_RE.test(type)) throw new TypeError('typedValue: bad type name.');
  return { _type: type, _value: value };
}

/** True for a managed object reference: `{ type, value }` strings and nothing else (or `_type: ManagedObjectReference`). */
export function isMoRef(value: unknown): value is MoRef {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const v = value as Record<string, unknown>;
  if (typeof v.type !== 'string' || typeof v.value !== 'string') return false;
  for (const key of Object.keys(v)) {
    if (key === 'type' || key === 'value') continue;
    if (key === '_type' && v._type === 'ManagedObjectReference') continue;
    return false;
  }
  return true;
}

function isTypedValue(value: unknown): value is TypedValue {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const keys = Object.keys(value);
  return keys.length === 2 && '_type' in value && '_value' in value;
}

const NAME_RE = /^[A-Za-z_][\w.-]*$/;
const TYPE_NAME_RE = /^(?:xsd:)?[A-Za-z_][\w.-]*$/;
const MAX_DEPTH = 64;

/** What the schema says about the element being written (undefined: nothing known). */
interface Declared {
  readonly type: string;
  readonly kind: ValueKind;
  readonly polymorphic: boolean;
}

function misuse(message: string): never {
  throw new TypeError(`SOAP request: ${message}`);
}

function invalid(message: string): never {
  throw hvkitError('INVALID_ARGUMENT', `SOAP request: ${message}`, { adapter: ADAPTER_ID });
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) misuse(`invalid element name ${JSON.stringify(name.slice(0, 60))}.`);
}

function primitiveText(value: unknown, name: string, kind: ValueKind | undefined): string {
  switch (typeof value) {
    case 'string':
      return xmlEscape(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'bigint':
      return value.toString();
    case 'number':
      if (!Number.isFinite(value)) invalid(`${name} must be a finite number, got ${value}.`);
      if ((kind === 'int' || kind === 'long') && !Number.isInteger(value)) {
        invalid(`${name} must be an integer, got ${value}.`);
      }
      return String(value);
    default:
      if (value instanceof Date) {
        if (Number.isNaN(value.getTime())) invalid(`${name} is an invalid Date.`);
        return value.toISOString();
      }
      if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
      return misuse(`cannot write ${typeof value} as ${name}.`);
  }
}

/** The `xsi:type` a primitive gets in an `xsd:anyType` field. */
function anyTypeOf(value: unknown, name: string): string {
  switch (typeof value) {
    case 'string':
      return 'xsd:string';
    case 'boolean':
      return 'xsd:boolean';
    case 'bigint':
      return 'xsd:long';
    case 'number':
      if (Number.isInteger(value))
        return value >= -2147483648 && value <= 2147483647 ? 'xsd:int' : 'xsd:long';
      return 'xsd:double';
    default:
      if (value instanceof Date) return 'xsd:dateTime';
      if (value instanceof Uint8Array) return 'xsd:base64Binary';
      return misuse(`cannot write ${typeof value} as ${name}.`);
  }
}

/** Item element names of the primitive `ArrayOfX` types. */
const ARRAY_ITEMS: Readonly<Record<string, string>> = {
  ArrayOfString: 'string',
  ArrayOfInt: 'int',
  ArrayOfLong: 'long',
  ArrayOfShort: 'short',
  ArrayOfByte: 'byte',
  ArrayOfBoolean: 'boolean',
  ArrayOfDouble: 'double',
  ArrayOfFloat: 'float',
  ArrayOfDateTime: 'dateTime',
  ArrayOfAnyType: 'anyType',
  ArrayOfManagedObjectReference: 'ManagedObjectReference',
};

class Writer {
  readonly parts: string[] = [];

  value(name: string, value: unknown, declared: Declared | undefined, depth: number): void {
    if (value === undefined || value === null) return;
    if (depth > MAX_DEPTH) misuse(`${name} is nested too deeply (or cyclic).`);
    if (Array.isArray(value)) {
      for (const item of value) {
        if (Array.isArray(item))
          misuse(`${name}: nested arrays cannot be written; use typedValue('ArrayOf…', [...]).`);
        this.value(name, item, declared, depth + 1);
      }
      return;
    }
    checkName(name);
    const anyField = declared?.kind === 'any';
    if (typeof value !== 'object' || value instanceof Date || value instanceof Uint8Array) {
      if (anyField) {
        const type = anyTypeOf(value, name);
        this.parts.push(`<${name} xsi:type="${type}">${primitiveText(value, name, undefined)}</${name}>`);
      } else {
        this.parts.push(`<${name}>${primitiveText(value, name, declared?.kind)}</${name}>`);
      }
      return;
    }
    if (isMoRef(value)) {
      const typeAttr = anyField ? ' xsi:type="ManagedObjectReference"' : '';
      this.parts.push(
        `<${name}${typeAttr} type="${xmlEscapeAttribute(value.type)}">${xmlEscape(value.value)}</${name}>`,
      );
      return;
    }
    if (isTypedValue(value)) {
      this.typed(name, value, depth);
      return;
    }
    this.object(name, value as Record<string, unknown>, declared, depth);
  }

  private typed(name: string, typed: TypedValue, depth: number): void {
    const type = typed._type;
    if (!TYPE_NAME_RE.test(type)) misuse(`${name}: bad xsi:type ${JSON.stringify(type.slice(0, 60))}.`);
    const item = ARRAY_ITEMS[type] ?? (type.startsWith('ArrayOf') ? type.slice(7) : undefined);
    if (item !== undefined) {
      const list = typed._value;
      if (!Array.isArray(list)) misuse(`${name}: ${type} needs an array.`);
      this.parts.push(`<${name} xsi:type="${type}">`);
      const itemKind: ValueKind =
        item === 'anyType' ? 'any' : item === 'int' || item === 'long' ? 'int' : 'string';
      for (const v of list) {
        this.value(
          item,
          v,
          item === 'ManagedObjectReference' ? undefined : { type: item, kind: itemKind, polymorphic: false },
          depth + 1,
        );
      }
      this.parts.push(`</${name}>`);
      return;
    }
    const v = typed._value;
    if (isMoRef(v)) {
      this.parts.push(
        `<${name} xsi:type="${type}" type="${xmlEscapeAttribute(v.type)}">${xmlEscape(v.value)}</${name}>`,
      );
      return;
    }
    if (typeof v === 'object' && v !== null && !(v instanceof Date) && !(v instanceof Uint8Array)) {
      this.object(name, { ...(v as Record<string, unknown>), _type: type }, undefined, depth);
      return;
    }
    const kind: ValueKind | undefined =
      type === 'xsd:int' || type === 'xsd:short' || type === 'xsd:byte'
        ? 'int'
        : type === 'xsd:long'
          ? 'long'
          : undefined;
    this.parts.push(`<${name} xsi:type="${type}">${primitiveText(v, name, kind)}</${name}>`);
  }

  private object(
    name: string,
    obj: Record<string, unknown>,
    declared: Declared | undefined,
    depth: number,
  ): void {
    const proto = Object.getPrototypeOf(obj);
    if (proto !== Object.prototype && proto !== null) {
      misuse(`${name}: only plain objects can be written, got ${proto?.constructor?.name ?? 'an object'}.`);
    }
    const explicit = obj._type;
    if (explicit !== undefined && (typeof explicit !== 'string' || !TYPE_NAME_RE.test(explicit))) {
      misuse(`${name}: bad _type ${JSON.stringify(String(explicit).slice(0, 60))}.`);
    }
    if (explicit === undefined && declared !== undefined) {
      if (declared.kind === 'any' || declared.polymorphic) {
        misuse(
          `${name} is polymorphic (${declared.type}): give the value a _type so it is sent with xsi:type.`,
        );
      }
    }
    const type = explicit ?? (declared?.kind === 'data' ? declared.type : undefined);
    const info = type !== undefined ? vimType(type) : undefined;
    // xsi:type goes on every polymorphic field and wherever the type is not the declared one; a
    // non-polymorphic field of exactly its declared type needs none.
    const writeType =
      explicit !== undefined &&
      (declared === undefined ||
        declared.polymorphic ||
        declared.kind !== 'data' ||
        declared.type !== explicit);
    this.parts.push(writeType ? `<${name} xsi:type="${explicit}">` : `<${name}>`);
    for (const key of orderedKeys(obj, info?.fields)) {
      const field = info?.fields.get(key);
      this.value(key, obj[key], field, depth + 1);
    }
    this.parts.push(`</${name}>`);
  }
}

/** The object's keys (without `_type`), known fields in schema order, unknown ones after their predecessor. */
function orderedKeys(
  obj: Record<string, unknown>,
  fields: ReadonlyMap<string, VimFieldInfo> | undefined,
): string[] {
  const keys = Object.keys(obj).filter((k) => k !== '_type');
  if (!fields) return keys;
  let rank = -1;
  const ranked = keys.map((key, position) => {
    const field = fields.get(key);
    if (field) rank = field.index;
    return { key, rank: field ? field.index : rank + 0.5, position };
  });
  ranked.sort((a, b) => a.rank - b.rank || a.position - b.position);
  return ranked.map((r) => r.key);
}

/**
 * Builds the SOAP envelope for `method` on `thisRef` with `args` (parameter name → value, in declaration
 * order). Values: strings (escaped), numbers, bigints, booleans, Dates (ISO-8601), byte arrays (base64),
 * {@link MoRef}s, {@link TypedValue}s, arrays (repeated elements) and data objects (`_type` → `xsi:type`).
 * `undefined` and `null` are left out.
 *
 * @throws TypeError for misuse: a bad method or element name, a polymorphic field without `_type`, a value
 *   that cannot be written (a function, a class instance, nesting deeper than 64).
 * @throws HvkitError `INVALID_ARGUMENT` for a value XML cannot carry (a NUL character, NaN, a fraction in an
 *   integer field, an invalid Date).
 */
export function buildSoapRequest(method: string, thisRef: MoRef, args: SoapArgs = {}): string {
  if (typeof method !== 'string' || !NAME_RE.test(method)) misuse(`invalid method name ${String(method)}.`);
  if (!isMoRef(thisRef)) misuse(`${method}: _this must be a managed object reference { type, value }.`);
  if (typeof args !== 'object' || args === null || Array.isArray(args))
    misuse(`${method}: args must be an object.`);
  const writer = new Writer();
  const params = METHOD_PARAMS[method];
  writer.parts.push(
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" ',
    'xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">',
    `<soapenv:Body><${method} xmlns="${VIM25_NS}">`,
    `<_this type="${xmlEscapeAttribute(thisRef.type)}">${xmlEscape(thisRef.value)}</_this>`,
  );
  for (const [name, value] of Object.entries(args)) {
    const declaredType = params?.[name];
    const declared: Declared | undefined =
      declaredType !== undefined ? { type: declaredType, kind: 'data', polymorphic: false } : undefined;
    writer.value(name, value, declared, 0);
  }
  writer.parts.push(`</${method}></soapenv:Body></soapenv:Envelope>`);
  return writer.parts.join('');
}
