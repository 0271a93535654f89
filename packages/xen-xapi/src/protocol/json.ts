/**
 * JSON for XAPI: a parser tolerant of what XAPI's JSON-RPC emits beyond JSON (bare `NaN`, `Infinity`,
 * `-Infinity` for floats; integers of any size), and the matching writer. Integers beyond 2^53 stay
 * exact as their digit strings (the datamodel normaliser turns them into bigints). Keys such as
 * `__proto__` are plain own properties. Nesting and size are bounded; anything else is `PROTOCOL`.
 */

import { hvkitError } from '@hvkit/core';
import { formatXapiDate, setOwn, type WireValue, XapiFloat } from './wire';

/** Deepest nesting {@link parseXapiJson} accepts. */
export const JSON_MAX_DEPTH = 64;

/** Options of {@link parseXapiJson}. */
export interface ParseXapiJsonOptions {
  maxDepth?: number;
  operation?: string;
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Whether `JSON.parse` gave what this module's own parser gives: no object or array nested `max` or more
 * levels below the top, and no integer beyond 2^53 (its literal was rounded; the own parser keeps its
 * digits). A number written with a fraction or an exponent that is integral and that large also answers
 * false; the own parser then gives the same number, only slower.
 */
function sameAsOwnParser(value: unknown, depth: number, max: number): boolean {
  if (typeof value === 'number') return Number.isSafeInteger(value) || !Number.isInteger(value);
  if (typeof value !== 'object' || value === null) return true;
  if (depth >= max) return false;
  if (Array.isArray(value)) {
    for (const v of value) if (typeof v !== 'string' && !sameAsOwnParser(v, depth + 1, max)) return false;
    return true;
  }
  for (const k in value) {
    const v = (value as Record<string, unknown>)[k];
    if (typeof v !== 'string' && !sameAsOwnParser(v, depth + 1, max)) return false;
  }
  return true;
}

/**
 * Parses a JSON-RPC body from XAPI.
 *
 * Plain JSON goes through `JSON.parse` (several times faster on the megabytes of a large pool's
 * `get_all_records`; it too keeps `__proto__` as an own key), its result checked for nesting and for
 * integers beyond 2^53; anything else (bare `NaN`/`Infinity`, such an integer, too deep, an error) through
 * this module's own parser, which gives the same values and the typed errors.
 *
 * @throws HvkitError `PROTOCOL` (with the offset in `details`) for anything that is not JSON plus bare
 *   `NaN`/`Infinity`, nesting deeper than `maxDepth`, or trailing text.
 */
export function parseXapiJson(text: string, options: ParseXapiJsonOptions = {}): unknown {
  if (typeof text !== 'string') throw new TypeError('parseXapiJson expects a string.');
  const maxDepth = options.maxDepth ?? JSON_MAX_DEPTH;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return parseXapiJsonText(text, maxDepth, options.operation);
  }
  return sameAsOwnParser(value, 0, maxDepth) ? value : parseXapiJsonText(text, maxDepth, options.operation);
}

/** This module's own parser: JSON plus bare `NaN`/`Infinity`, exact long integers, typed errors. */
export function parseXapiJsonText(text: string, maxDepth: number, operation: string | undefined): unknown {
  const options = { operation };
  let i = 0;
  const fail = (why: string): never => {
    throw hvkitError('PROTOCOL', `Invalid JSON from XAPI: ${why} at offset ${i}.`, {
      adapter: 'xen-xapi',
      operation: options.operation,
      retryable: false,
      details: { offset: i },
    });
  };
  const ws = () => {
    for (;;) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x0a || c === 0x0d || c === 0x09) i++;
      else return;
    }
  };
  const word = (w: string, value: unknown) => {
    if (!text.startsWith(w, i)) fail('unexpected token');
    i += w.length;
    return value;
  };
  const str = (): string => {
    i++; // opening quote
    let out = '';
    let from = i;
    for (;;) {
      if (i >= text.length) fail('unterminated string');
      const c = text.charCodeAt(i);
      if (c === 0x22) {
        out += text.slice(from, i);
        i++;
        return out;
      }
      if (c < 0x20) fail('control character in a string');
      if (c === 0x5c) {
        out += text.slice(from, i);
        const e = text[i + 1];
        switch (e) {
          case '"':
          case '\\':
          case '/':
            out += e;
            break;
          case 'b':
            out += '\b';
            break;
          case 'f':
            out += '\f';
            break;
          case 'n':
            out += '\n';
            break;
          case 'r':
            out += '\r';
            break;
          case 't':
            out += '\t';
            break;
          case 'u': {
            const hex = text.slice(i + 2, i + 6);
            if (!/^[0-9a-fA-F]{4}$/.test(hex)) fail('bad \\u escape');
            out += String.fromCharCode(Number.parseInt(hex, 16));
            i += 4;
            break;
          }
          default:
            fail('bad escape');
        }
        i += 2;
        from = i;
        continue;
      }
      i++;
    }
  };
  const num = (): unknown => {
    NUMBER.lastIndex = i;
    const m = NUMBER.exec(text);
    if (!m) return fail('unexpected token');
    const t = m[0];
    i += t.length;
    const n = Number(t);
    if (/^-?\d+$/.test(t) && !Number.isSafeInteger(n)) return t; // exact, as digits
    return n;
  };
  const value = (depth: number): unknown => {
    ws();
    if (i >= text.length) fail('unexpected end');
    const c = text[i];
    if (c === '{') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      i++;
      const obj: Record<string, unknown> = {};
      ws();
      if (text[i] === '}') {
        i++;
        return obj;
      }
      for (;;) {
        ws();
        if (text[i] !== '"') fail('expected a key');
        const key = str();
        ws();
        if (text[i] !== ':') fail("expected ':'");
        i++;
        setOwn(obj, key, value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === '}') {
          i++;
          return obj;
        }
        fail("expected ',' or '}'");
      }
    }
    if (c === '[') {
      if (depth >= maxDepth) fail(`nesting deeper than ${maxDepth}`);
      i++;
      const arr: unknown[] = [];
      ws();
      if (text[i] === ']') {
        i++;
        return arr;
      }
      for (;;) {
        arr.push(value(depth + 1));
        ws();
        if (text[i] === ',') {
          i++;
          continue;
        }
        if (text[i] === ']') {
          i++;
          return arr;
        }
        fail("expected ',' or ']'");
      }
    }
    if (c === '"') return str();
    if (c === 't') return word('true', true);
    if (c === 'f') return word('false', false);
    if (c === 'n') return word('null', null);
    if (c === 'N') return word('NaN', Number.NaN);
    if (c === 'I') return word('Infinity', Number.POSITIVE_INFINITY);
    if (c === '-' && text.startsWith('-Infinity', i)) return word('-Infinity', Number.NEGATIVE_INFINITY);
    return num();
  };
  const result = value(0);
  ws();
  if (i < text.length) fail('text after the value');
  return result;
}

/** Writes a {@link WireValue} as XAPI's JSON: dates in XAPI's form, bigints as integer literals. */
export function stringifyXapiJson(value: WireValue | undefined): string {
  if (value === undefined || value === null) return 'null';
  if (typeof value === 'string') return JSON.stringify(value);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  if (typeof value === 'number' || value instanceof XapiFloat) {
    const n = typeof value === 'number' ? value : value.value;
    if (Number.isNaN(n)) return 'NaN';
    if (n === Number.POSITIVE_INFINITY) return 'Infinity';
    if (n === Number.NEGATIVE_INFINITY) return '-Infinity';
    return JSON.stringify(n);
  }
  if (value instanceof Date) return JSON.stringify(formatXapiDate(value));
  if (value instanceof Uint8Array) return JSON.stringify(Buffer.from(value).toString('base64'));
  if (Array.isArray(value)) return `[${value.map((v) => stringifyXapiJson(v)).join(',')}]`;
  const parts: string[] = [];
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) parts.push(`${JSON.stringify(k)}:${stringifyXapiJson(v as WireValue)}`);
  }
  return `{${parts.join(',')}}`;
}
