/**
 * The S-expressions XAPI's database uses for sets and maps inside `/pool/xmldbdump` attributes: a set is
 * `('a' 'b')`, a map `(('key' 'value') ...)`. Strings are single-quoted with backslash escapes.
 */

import { hvkitError } from '@hvkit/core';

/** A parsed S-expression: a string atom or a list. */
export type SExpr = string | SExpr[];

function bad(text: string, at: number, why: string): never {
  throw hvkitError(
    'PROTOCOL',
    `Invalid S-expression in the XAPI database: ${why} at ${at} of ${JSON.stringify(text.slice(0, 60))}.`,
    {
      adapter: 'xen-xapi',
      operation: 'simulator.load',
      retryable: false,
    },
  );
}

/**
 * Parses one S-expression.
 *
 * @throws HvkitError `PROTOCOL` for malformed text or nesting deeper than 32.
 */
export function parseSExpr(text: string): SExpr {
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i] as string)) i++;
  };
  const value = (depth: number): SExpr => {
    ws();
    const c = text[i];
    if (c === '(') {
      if (depth > 32) bad(text, i, 'nested too deep');
      i++;
      const list: SExpr[] = [];
      for (;;) {
        ws();
        if (i >= text.length) bad(text, i, 'unclosed list');
        if (text[i] === ')') {
          i++;
          return list;
        }
        list.push(value(depth + 1));
      }
    }
    if (c === "'" || c === '"') {
      const quote = c;
      i++;
      let out = '';
      for (;;) {
        if (i >= text.length) bad(text, i, 'unclosed string');
        const d = text[i] as string;
        if (d === quote) {
          i++;
          return out;
        }
        if (d === '\\') {
          const e = text[i + 1];
          if (e === undefined) bad(text, i, 'dangling escape');
          out += e === 'n' ? '\n' : e === 'r' ? '\r' : e === 't' ? '\t' : e;
          i += 2;
          continue;
        }
        out += d;
        i++;
      }
    }
    if (c === undefined || c === ')') bad(text, i, 'expected a value');
    const start = i;
    while (i < text.length && !/[\s()]/.test(text[i] as string)) i++;
    return text.slice(start, i);
  };
  const result = value(0);
  ws();
  if (i < text.length) bad(text, i, 'text after the value');
  return result;
}

function quote(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/** A string set as an S-expression. */
export function formatSet(values: readonly string[]): string {
  return `(${values.map(quote).join(' ')})`;
}

/** A string map as an S-expression. */
export function formatMap(map: Readonly<Record<string, unknown>>): string {
  return `(${Object.entries(map)
    .map(([k, v]) => `(${quote(k)} ${quote(String(v))})`)
    .join(' ')})`;
}

/** A set attribute's strings (a malformed or non-list value is an error). */
export function setFromSExpr(text: string): string[] {
  const v = parseSExpr(text);
  if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) bad(text, 0, 'not a set of strings');
  return v as string[];
}

/** A map attribute's pairs. */
export function mapFromSExpr(text: string): Array<[string, string]> {
  const v = parseSExpr(text);
  if (!Array.isArray(v)) bad(text, 0, 'not a map');
  return v.map((pair) => {
    if (
      !Array.isArray(pair) ||
      pair.length !== 2 ||
      typeof pair[0] !== 'string' ||
      typeof pair[1] !== 'string'
    )
      bad(text, 0, 'not a map of string pairs');
    return [pair[0] as string, pair[1] as string];
  });
}
