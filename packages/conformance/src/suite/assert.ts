import { HvkitError, type HvkitErrorCode } from '@hvkit/core';

/** The error a failed conformance check throws. Its message says what the adapter did wrong. */
export class ConformanceFailure extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ConformanceFailure';
  }
}

/** Thrown by a check that cannot run here (see the reason); runners report it as skipped. */
export class ConformanceSkip extends Error {
  constructor(readonly reason: string) {
    super(reason);
    this.name = 'ConformanceSkip';
  }
}

/** Throws a {@link ConformanceFailure}. */
export function fail(message: string, cause?: unknown): never {
  throw new ConformanceFailure(message, cause === undefined ? undefined : { cause });
}

/** Throws a {@link ConformanceFailure} with `message` unless `condition` holds. */
export function check(condition: unknown, message: string | (() => string)): asserts condition {
  if (!condition) fail(typeof message === 'function' ? message() : message);
}

/** A short, single-line rendering of a value for messages. */
export function show(value: unknown): string {
  if (value === undefined) return 'undefined';
  if (typeof value === 'number') return Object.is(value, -0) ? '-0' : String(value);
  if (typeof value === 'bigint') return `${value}n`;
  if (typeof value === 'function') return 'a function';
  if (value instanceof Date)
    return Number.isNaN(value.getTime()) ? 'Invalid Date' : `Date(${value.toISOString()})`;
  try {
    const text = JSON.stringify(value, (_k, v: unknown) =>
      typeof v === 'number' && !Number.isFinite(v) ? String(v) : v,
    );
    if (text === undefined) return String(value);
    return text.length > 300 ? `${text.slice(0, 297)}...` : text;
  } catch {
    return String(value);
  }
}

/** How an error looks in a message: `HvkitError NOT_FOUND ("...")`, `TypeError ("...")`, `a string "..."`. */
export function describeError(error: unknown): string {
  if (HvkitError.isInstance(error)) return `HvkitError ${error.code} (${JSON.stringify(error.message)})`;
  if (error instanceof Error)
    return `${error.name} (${JSON.stringify(error.message)}), which is not an HvkitError`;
  return `${show(error)}, which is not an HvkitError`;
}

/**
 * Awaits `promise` and requires it to reject with an HvkitError (checked with `HvkitError.isInstance`,
 * which works across duplicate installs) of `code`. Returns the error.
 */
export async function expectHvkitError(
  promise: Promise<unknown>,
  code: HvkitErrorCode,
  what: string,
): Promise<HvkitError> {
  let value: unknown;
  try {
    value = await promise;
  } catch (error) {
    if (HvkitError.isInstance(error) && error.code === code) return error;
    if (error instanceof ConformanceFailure || error instanceof ConformanceSkip) throw error;
    fail(`${what} rejected with ${describeError(error)}; expected an HvkitError with code ${code}`, error);
  }
  fail(`${what} resolved (with ${show(value)}); expected it to reject with an HvkitError with code ${code}`);
}

/** Structural equality for plain data (objects, arrays, Dates, NaN equal to NaN). */
export function deepEqual(a: unknown, b: unknown): boolean {
  return firstDifference(a, b) === undefined;
}

/**
 * The first place two values differ, e.g. `cpu.weight: 100 vs 0`, or `undefined` when they are equal.
 * `ignore` lists dotted paths to skip.
 */
export function firstDifference(
  a: unknown,
  b: unknown,
  path = '',
  ignore: readonly string[] = [],
): string | undefined {
  if (ignore.includes(path)) return undefined;
  if (Object.is(a, b)) return undefined;
  const at = path === '' ? '(value)' : path;
  if (a instanceof Date || b instanceof Date) {
    if (a instanceof Date && b instanceof Date && a.getTime() === b.getTime()) return undefined;
    return `${at}: ${show(a)} vs ${show(b)}`;
  }
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null)
    return `${at}: ${show(a)} vs ${show(b)}`;
  if (Array.isArray(a) !== Array.isArray(b)) return `${at}: ${show(a)} vs ${show(b)}`;
  if (Array.isArray(a) && Array.isArray(b)) {
    if (a.length !== b.length) return `${at}: ${a.length} entries vs ${b.length} (${show(a)} vs ${show(b)})`;
    for (let i = 0; i < a.length; i++) {
      const d = firstDifference(a[i], b[i], `${path}[${i}]`, ignore);
      if (d) return d;
    }
    return undefined;
  }
  const ra = a as Record<string, unknown>;
  const rb = b as Record<string, unknown>;
  const keys = new Set([...Object.keys(ra), ...Object.keys(rb)]);
  for (const k of keys) {
    const d = firstDifference(ra[k], rb[k], path === '' ? k : `${path}.${k}`, ignore);
    if (d) return d;
  }
  return undefined;
}

/** A hint for a number that came back different from what was set: `(2× the value set)`, KiB slips. */
export function ratioHint(got: unknown, expected: unknown): string {
  if (typeof got !== 'number' || typeof expected !== 'number' || got === 0 || expected === 0) return '';
  const r = got / expected;
  if (!Number.isFinite(r)) return '';
  if (Math.abs(r - 1024) < 1e-9) return ' (1024× the value set: KiB reported as bytes?)';
  if (Math.abs(r - 1 / 1024) < 1e-12) return ' (1/1024 of the value set: bytes reported as KiB?)';
  if (Math.abs(r - 1000) < 1e-9 || Math.abs(r - 1 / 1000) < 1e-12)
    return ` (${r}× the value set: SI/IEC or ms/µs slip?)`;
  const rounded = Math.round(r * 1000) / 1000;
  return ` (${rounded}× the value set)`;
}

/**
 * Awaits `promise` but fails when it does not settle within `ms`: a hung call is a conformance failure
 * with a message naming the call, not a silent test timeout.
 */
export async function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new ConformanceFailure(
            `${what} did not settle within ${ms} ms (every call must end: timeouts everywhere)`,
          ),
        ),
      ms,
    );
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
