/**
 * Values as they travel in XAPI calls and results, shared by the JSON-RPC and XML-RPC codecs: plain JSON
 * shapes plus `Date` (XAPI `datetime`), `bigint` (an int beyond 2^53) and {@link XapiFloat} (a `float`
 * that must be sent as one even when it is integral, such as `event.from`'s timeout).
 */

import { hvkitError } from '@hvkit/core';

/** A float parameter or result: XML-RPC sends it as `<double>`, JSON as a number (bare `NaN` allowed). */
export class XapiFloat {
  constructor(readonly value: number) {}
}

/** A value on the wire. */
export type WireValue =
  | string
  | number
  | bigint
  | boolean
  | null
  | Date
  | XapiFloat
  | Uint8Array
  | readonly WireValue[]
  | { readonly [key: string]: WireValue };

/** Sets an own property, also one named `__proto__`, without touching the prototype chain. */
export function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    target[key] = value;
  }
}

/** The epoch date XAPI uses for "unset". */
export const XAPI_UNSET_DATE = '19700101T00:00:00Z';

const two = (n: number) => String(n).padStart(2, '0');

/** `2020-12-10T17:19:20.000Z` -> `20201210T17:19:20Z`, XAPI's canonical form (UTC, whole seconds). */
export function formatXapiDate(date: Date): string {
  if (!(date instanceof Date) || Number.isNaN(date.getTime()))
    throw new TypeError('formatXapiDate expects a valid Date.');
  return `${String(date.getUTCFullYear()).padStart(4, '0')}${two(date.getUTCMonth() + 1)}${two(date.getUTCDate())}T${two(date.getUTCHours())}:${two(date.getUTCMinutes())}:${two(date.getUTCSeconds())}Z`;
}

// Compact (20201210T17:19:20Z, 20201210T171920Z) and dashed (2020-12-10T17:19:20.123+01:00) forms; a
// missing zone is read as UTC (XAPI means the host's local time, which a client cannot know).
const DATE =
  /^(\d{4})-?(\d{2})-?(\d{2})T(\d{2}):?(\d{2}):?(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}(?::?\d{2})?)?$/;

/**
 * Parses every date-time form XAPI emits; returns null for XAPI's "unset" date (the epoch).
 *
 * @throws HvkitError `PROTOCOL` for text that is not such a date.
 */
export function parseXapiDate(text: string, context: { operation?: string } = {}): Date | null {
  const m = DATE.exec(text.trim());
  const bad = () =>
    hvkitError('PROTOCOL', `Not an XAPI date-time: ${JSON.stringify(text.slice(0, 40))}.`, {
      adapter: 'xen-xapi',
      operation: context.operation,
      retryable: false,
    });
  if (!m) throw bad();
  const [, y, mo, d, h, mi, se, frac, zone] = m as unknown as string[];
  const month = Number(mo);
  const day = Number(d);
  if (month < 1 || month > 12 || day < 1 || day > 31 || Number(h) > 23 || Number(mi) > 59 || Number(se) > 60)
    throw bad();
  let offsetMinutes = 0;
  if (zone && zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    const digits = zone.slice(1).replace(':', '');
    const oh = Number(digits.slice(0, 2));
    const om = digits.length > 2 ? Number(digits.slice(2, 4)) : 0;
    if (oh > 23 || om > 59) throw bad();
    offsetMinutes = sign * (oh * 60 + om);
  }
  const ms = frac ? Math.floor(Number(`0.${frac}`) * 1000) : 0;
  const time =
    Date.UTC(Number(y), month - 1, day, Number(h), Number(mi), Number(se), ms) - offsetMinutes * 60_000;
  if (!Number.isFinite(time)) throw bad();
  if (time === 0) return null;
  return new Date(time);
}
