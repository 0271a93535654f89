/**
 * Internal helpers for reading libvirt XML through core's hardened parser: tolerant accessors that never
 * throw on unexpected shapes (an element that repeats, an element that is only text, an absent element),
 * libvirt's size units, UUIDs and integers.
 *
 * Not exported from the package.
 */

import {
  hvkitError,
  parseXml,
  XML_ATTRIBUTE_PREFIX,
  XML_TEXT_KEY,
  type XmlObject,
  type XmlValue,
} from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

/**
 * Parses a libvirt XML document and returns its root element. Text is not trimmed (names such as
 * `"  x "` survive); the accessors below trim where whitespace is not meaningful.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML or a root element other than `rootName`.
 */
export function parseRoot(xml: string, rootName: string, operation: string): XmlObject {
  if (typeof xml !== 'string') throw new TypeError(`${operation}: XML must be a string, got ${typeof xml}.`);
  const doc = parseXml(xml, { trimValues: false, adapter: ADAPTER_ID, operation, maxDepth: 200 });
  const root = doc[rootName];
  if (root === undefined) {
    const found = Object.keys(doc)[0] ?? '(none)';
    throw hvkitError('PROTOCOL', `Expected a <${rootName}> document, got <${found.slice(0, 60)}>.`, {
      adapter: ADAPTER_ID,
      operation,
    });
  }
  // An element that is only text (`<domain>x</domain>`) parses as a string: treat it as empty.
  if (typeof root === 'string' || Array.isArray(root)) return {};
  return root;
}

/** The first child element `name` of `parent` (an element object or `''` for `<x/>`), or undefined. */
export function child(parent: XmlValue | undefined, name: string): XmlValue | undefined {
  if (parent === undefined || typeof parent === 'string' || Array.isArray(parent)) return undefined;
  const v = parent[name];
  if (Array.isArray(v)) return v[0];
  return v;
}

/** All child elements `name` of `parent`. */
export function children(parent: XmlValue | undefined, name: string): XmlValue[] {
  if (parent === undefined || typeof parent === 'string' || Array.isArray(parent)) return [];
  const v = parent[name];
  if (v === undefined) return [];
  return Array.isArray(v) ? v : [v];
}

/** Whether `parent` has a child element `name` (e.g. `<readonly/>`). */
export function has(parent: XmlValue | undefined, name: string): boolean {
  return child(parent, name) !== undefined;
}

/** The names of the child elements of `parent` (no attributes, no text). */
export function childNames(parent: XmlValue | undefined): string[] {
  if (parent === undefined || typeof parent === 'string' || Array.isArray(parent)) return [];
  return Object.keys(parent).filter((k) => !k.startsWith(XML_ATTRIBUTE_PREFIX) && k !== XML_TEXT_KEY);
}

/** The untrimmed text of an element, or undefined when it has none. */
export function rawText(value: XmlValue | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (value === undefined || Array.isArray(value)) return undefined;
  const t = value[XML_TEXT_KEY];
  return typeof t === 'string' ? t : undefined;
}

/** The trimmed text of an element, or undefined when it has none or only whitespace. */
export function text(value: XmlValue | undefined): string | undefined {
  const t = rawText(value)?.trim();
  return t === undefined || t === '' ? undefined : t;
}

/** The trimmed text of child `name`. */
export function childText(parent: XmlValue | undefined, name: string): string | undefined {
  return text(child(parent, name));
}

/** A trimmed attribute value, or undefined when absent or empty. */
export function attr(value: XmlValue | undefined, name: string): string | undefined {
  if (value === undefined || typeof value === 'string' || Array.isArray(value)) return undefined;
  const a = value[XML_ATTRIBUTE_PREFIX + name];
  if (typeof a !== 'string') return undefined;
  const t = a.trim();
  return t === '' ? undefined : t;
}

/** An untrimmed attribute value (for names), or undefined. */
export function rawAttr(value: XmlValue | undefined, name: string): string | undefined {
  if (value === undefined || typeof value === 'string' || Array.isArray(value)) return undefined;
  const a = value[XML_ATTRIBUTE_PREFIX + name];
  return typeof a === 'string' ? a : undefined;
}

/** libvirt's yes/no (also on/off, true/false, 1/0); undefined for anything else. */
export function yesNo(value: string | undefined): boolean | undefined {
  if (value === undefined) return undefined;
  switch (value.toLowerCase()) {
    case 'yes':
    case 'on':
    case 'true':
    case '1':
      return true;
    case 'no':
    case 'off':
    case 'false':
    case '0':
      return false;
    default:
      return undefined;
  }
}

const UUID_RE = /^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$/i;

/**
 * A UUID in canonical lower-case, dashed form. libvirt also accepts the 32 hex digits without dashes;
 * those are dashed here. Anything else is returned lower-cased as is (never throws).
 */
export function normalizeUuid(value: string): string {
  const t = value.trim().toLowerCase();
  if (!UUID_RE.test(t)) return t;
  const hex = t.replace(/-/g, '');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/** Whether `value` is a canonical lower-case dashed UUID. */
export function isCanonicalUuid(value: string): boolean {
  return /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/.test(value);
}

/** A decimal integer (optionally signed) as a safe number; undefined for anything else. */
export function parseIntSafe(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const t = value.trim();
  if (!/^[-+]?\d+$/.test(t)) return undefined;
  const n = Number(t);
  return Number.isSafeInteger(n) ? n : undefined;
}

/** A decimal integer as a bigint; undefined for anything else. */
export function parseBigInt(value: string | undefined): bigint | undefined {
  if (value === undefined) return undefined;
  const t = value.trim();
  if (!/^[-+]?\d+$/.test(t)) return undefined;
  return BigInt(t);
}

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/**
 * libvirt's unit scale (`virScaleInteger`): `b`/`byte`/`bytes` = 1; a letter alone or followed by `iB` is
 * 1024-based (`k`, `KiB`, `M`, `MiB`, ...); a letter followed by `B` is 1000-based (`KB`, `MB`, ...). Case
 * does not matter. Returns undefined for an unknown unit.
 */
export function unitScale(unit: string): bigint | undefined {
  const u = unit.trim().toLowerCase();
  if (u === 'b' || u === 'byte' || u === 'bytes') return 1n;
  const letter = u[0];
  const rest = u.slice(1);
  let base: bigint;
  if (rest === '' || rest === 'ib') base = 1024n;
  else if (rest === 'b') base = 1000n;
  else return undefined;
  const power = letter === undefined ? -1 : 'kmgtpe'.indexOf(letter);
  if (power < 0) return undefined;
  return base ** BigInt(power + 1);
}

/**
 * A scaled size element (`<memory unit='KiB'>131072</memory>`, `<capacity unit='bytes'>`) in bytes.
 * `defaultUnit` applies when the element has no `unit` attribute (libvirt: KiB for memory, bytes for
 * storage). Undefined when absent, not an integer, of an unknown unit, or above `Number.MAX_SAFE_INTEGER`.
 */
export function scaledBytes(value: XmlValue | undefined, defaultUnit: 'KiB' | 'bytes'): number | undefined {
  const n = parseBigInt(text(value));
  if (n === undefined || n < 0n) return undefined;
  const scale = unitScale(attr(value, 'unit') ?? defaultUnit);
  if (scale === undefined) return undefined;
  const bytes = n * scale;
  return bytes > MAX_SAFE ? undefined : Number(bytes);
}

/** `value` truncated for an error message. */
export function clip(value: string, max = 80): string {
  return value.length > max ? `${value.slice(0, max - 3)}...` : value;
}

/**
 * The `<uuid>` (lower case) and `<name>` of a network, pool or domain root.
 *
 * @throws HvkitError `PROTOCOL` when either is missing.
 */
export function requiredNameUuid(
  root: XmlValue,
  kind: string,
  operation: string,
): { uuid: string; name: string } {
  const uuid = childText(root, 'uuid');
  const name = rawText(child(root, 'name'));
  if (uuid === undefined || name === undefined || name.trim() === '') {
    throw hvkitError('PROTOCOL', `${kind} XML without <name> or <uuid>.`, { adapter: ADAPTER_ID, operation });
  }
  return { uuid: normalizeUuid(uuid), name };
}

/**
 * Whether `value` contains a C0 control character or DEL, other than those in `allowed` (e.g. `'\t\n\r'`
 * for free text).
 */
export function hasControlChar(value: string, allowed = ''): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if ((c < 0x20 || c === 0x7f) && !allowed.includes(value[i] as string)) return true;
  }
  return false;
}
