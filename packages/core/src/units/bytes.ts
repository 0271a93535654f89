/**
 * Byte sizes: parsing the suffixes backends and users write, formatting them back, and libvirt's KiB.
 */

import { hvkitError } from '../errors/hvkit-error';

const KI = 1024n;
const KB = 1000n;

/**
 * Multipliers by suffix. Lookup is on the suffix with its first letter lower-cased, so `KiB`/`kiB`,
 * `MB`/`mB` and `K`/`k` are each one entry.
 */
const MULTIPLIERS: ReadonlyMap<string, bigint> = new Map<string, bigint>([
  ['', 1n],
  ['b', 1n],
  ['bytes', 1n],
  // IEC, 1024-based.
  ['kib', KI],
  ['mib', KI ** 2n],
  ['gib', KI ** 3n],
  ['tib', KI ** 4n],
  ['pib', KI ** 5n],
  ['eib', KI ** 6n],
  // SI, 1000-based (libvirt reads `KB` as 1000 too).
  ['kb', KB],
  ['mb', KB ** 2n],
  ['gb', KB ** 3n],
  ['tb', KB ** 4n],
  ['pb', KB ** 5n],
  ['eb', KB ** 6n],
  // Bare letters, 1024-based, as cgroup v1 (`memparse`) and libvirt read them.
  ['k', KI],
  ['m', KI ** 2n],
  ['g', KI ** 3n],
  ['t', KI ** 4n],
  ['p', KI ** 5n],
  ['e', KI ** 6n],
]);

const SIZE_RE = /^(\d+)(?:\.(\d+))?\s*([A-Za-z]*)$/;
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function normaliseSuffix(suffix: string): string | undefined {
  if (suffix === '') return '';
  if (suffix === 'bytes' || suffix === 'b' || suffix === 'B') return 'b';
  // The unit letter may be either case (`k`/`K`); the rest (`iB`, `B`) must be written exactly.
  const rest = suffix.slice(1);
  if (rest !== '' && rest !== 'B' && rest !== 'iB') return undefined;
  return (suffix[0] as string).toLowerCase() + rest.toLowerCase();
}

/**
 * Parses a byte size into a whole number of bytes.
 *
 * Accepted forms (optional whitespace between number and unit):
 * - plain non-negative integers: `4096`, or a `number`/`bigint` that is a non-negative safe integer;
 * - IEC units, 1024-based: `KiB`, `MiB`, `GiB`, `TiB`, `PiB`, `EiB` (`1.5GiB`);
 * - SI units, 1000-based: `kB`/`KB`, `MB`, `GB`, `TB`, `PB`, `EB` (libvirt also reads `KB` as 1000);
 * - bare letters, 1024-based, as cgroup v1 and libvirt read them: `k`/`K`, `m`/`M`, `g`/`G`, `t`/`T`, `p`/`P`, `e`/`E`;
 * - `B`, `b` or `bytes` for plain bytes.
 *
 * Decimal fractions are allowed when the result is a whole number of bytes (`0.5KiB` = 512; `1.1KiB` is
 * rejected). Arithmetic is exact (no floating-point rounding).
 *
 * @throws HvkitError `INVALID_ARGUMENT` for garbage, negative values, exponents, a result that is not a
 *   whole number of bytes, or a result above `Number.MAX_SAFE_INTEGER`.
 */
export function parseByteSize(input: string | number | bigint): number {
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw invalid(`Byte size must be a non-negative safe integer, got ${String(input)}.`, input);
    }
    return input;
  }
  if (typeof input === 'bigint') {
    if (input < 0n || input > MAX_SAFE) {
      throw invalid(`Byte size must be a non-negative safe integer, got ${input}.`, input);
    }
    return Number(input);
  }
  if (typeof input !== 'string') {
    throw new TypeError(`parseByteSize expects a string, number or bigint, got ${typeof input}.`);
  }
  const text = input.trim();
  const m = SIZE_RE.exec(text);
  if (!m) throw invalid(`Not a byte size: ${JSON.stringify(truncate(input))}.`, input);
  const [, whole, fraction = '', rawSuffix = ''] = m as unknown as [
    string,
    string,
    string | undefined,
    string,
  ];
  const suffix = normaliseSuffix(rawSuffix);
  const multiplier = suffix === undefined ? undefined : MULTIPLIERS.get(suffix);
  if (multiplier === undefined) {
    throw invalid(
      `Unknown byte size unit ${JSON.stringify(rawSuffix)} in ${JSON.stringify(truncate(input))}.`,
      input,
    );
  }
  const scale = 10n ** BigInt(fraction.length);
  const numerator = (BigInt(whole) * scale + BigInt(fraction === '' ? '0' : fraction)) * multiplier;
  if (numerator % scale !== 0n) {
    throw invalid(`${JSON.stringify(truncate(input))} is not a whole number of bytes.`, input);
  }
  const bytes = numerator / scale;
  if (bytes > MAX_SAFE) {
    throw invalid(
      `${JSON.stringify(truncate(input))} is larger than ${Number.MAX_SAFE_INTEGER} bytes.`,
      input,
    );
  }
  return Number(bytes);
}

/** Options of {@link formatByteSize}. */
export interface FormatByteSizeOptions {
  /** `iec` (default): KiB, MiB, ... (1024-based). `si`: kB, MB, ... (1000-based). */
  standard?: 'iec' | 'si';
  /** Digits after the point for inexact values (default 2); trailing zeros are dropped. */
  maximumFractionDigits?: number;
  /**
   * Use the largest unit that divides the value exactly, so the text reads back as the same number:
   * `1048576` → `1 MiB`, `1536` → `1536 B` (where the default gives `1.5 KiB`).
   */
  exact?: boolean;
  /** Text between the number and the unit (default one space). */
  separator?: string;
}

const IEC_UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB'] as const;
const SI_UNITS = ['B', 'kB', 'MB', 'GB', 'TB', 'PB', 'EB'] as const;

/**
 * Formats a byte count for people (`1.5 GiB`) or, with `exact: true`, for a config file that must read
 * back the same value (`3 GiB`, `1536 B`). Exact output parses back to `bytes` with {@link parseByteSize};
 * rounded output (`1.33 KiB`) is for display only.
 *
 * @throws HvkitError `INVALID_ARGUMENT` when `bytes` is not a non-negative safe integer.
 */
export function formatByteSize(bytes: number, options: FormatByteSizeOptions = {}): string {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw invalid(`Byte size must be a non-negative safe integer, got ${String(bytes)}.`, bytes);
  }
  const si = options.standard === 'si';
  const base = si ? 1000 : 1024;
  const units = si ? SI_UNITS : IEC_UNITS;
  const sep = options.separator ?? ' ';
  let index = 0;
  if (options.exact) {
    let value = bytes;
    while (index < units.length - 1 && value !== 0 && value % base === 0) {
      value /= base;
      index++;
    }
    return `${value}${sep}${units[index]}`;
  }
  let value = bytes;
  while (index < units.length - 1 && value >= base) {
    value /= base;
    index++;
  }
  const digits = Math.max(0, Math.min(20, options.maximumFractionDigits ?? 2));
  if (index > 0 && index < units.length - 1 && Number(value.toFixed(digits)) >= base) {
    // 1048575 bytes would round to "1024 KiB": show it as "1 MiB".
    value /= base;
    index++;
  }
  const text = index === 0 ? String(value) : trimZeros(value.toFixed(digits));
  return `${text}${sep}${units[index]}`;
}

/**
 * libvirt KiB (memtune, `<memory unit='KiB'>`, `<bandwidth>` in KiB/s) to bytes. Exact.
 *
 * Convert libvirt's "unlimited" (9007199254740991 KiB) with `normalizeUnlimited` first: it has no byte
 * value and is rejected here.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for negative, fractional or too large values.
 */
export function kibToBytes(kib: number | bigint | string): number {
  const value = toBigInt(kib, 'KiB value');
  const bytes = value * KI;
  if (bytes > MAX_SAFE) {
    throw invalid(
      `${value} KiB is more than ${Number.MAX_SAFE_INTEGER} bytes (map libvirt's unlimited value to null with normalizeUnlimited first).`,
      kib,
    );
  }
  return Number(bytes);
}

/**
 * Bytes to libvirt KiB. libvirt cannot express a fraction of a KiB, so a size that is not a multiple of
 * 1024 is **rounded up** to the next whole KiB (a limit never ends up below what was asked). Use
 * {@link bytesToKibExact} to reject such values instead.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for negative, fractional or unsafe values.
 */
export function bytesToKib(bytes: number): number {
  if (!Number.isSafeInteger(bytes) || bytes < 0) {
    throw invalid(`Byte count must be a non-negative safe integer, got ${String(bytes)}.`, bytes);
  }
  return Math.ceil(bytes / 1024);
}

/**
 * Bytes to libvirt KiB, refusing values that are not a whole number of KiB.
 *
 * @throws HvkitError `INVALID_ARGUMENT` when `bytes` is not a non-negative multiple of 1024.
 */
export function bytesToKibExact(bytes: number): number {
  const kib = bytesToKib(bytes);
  if (kib * 1024 !== bytes) throw invalid(`${bytes} bytes is not a whole number of KiB.`, bytes);
  return kib;
}

function toBigInt(input: number | bigint | string, what: string): bigint {
  if (typeof input === 'bigint') {
    if (input < 0n) throw invalid(`${what} must not be negative, got ${input}.`, input);
    return input;
  }
  if (typeof input === 'number') {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw invalid(`${what} must be a non-negative safe integer, got ${String(input)}.`, input);
    }
    return BigInt(input);
  }
  if (typeof input === 'string') {
    const t = input.trim();
    if (!/^\d+$/.test(t))
      throw invalid(`${what} must be a non-negative integer, got ${JSON.stringify(truncate(input))}.`, input);
    return BigInt(t);
  }
  throw new TypeError(`${what} must be a number, bigint or string, got ${typeof input}.`);
}

function trimZeros(text: string): string {
  return text.includes('.') ? text.replace(/\.?0+$/, '') : text;
}

function truncate(text: string): string {
  return text.length > 64 ? `${text.slice(0, 61)}...` : text;
}

function invalid(message: string, value: unknown) {
  return hvkitError('INVALID_ARGUMENT', message, {
    details: { value: typeof value === 'string' ? truncate(value) : String(value) },
  });
}
