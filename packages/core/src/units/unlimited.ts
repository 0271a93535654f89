/**
 * "Unlimited" sentinels of the backends, mapped to the spec's `null`.
 */

import { hvkitError } from '../errors/hvkit-error';

/** libvirt's "unlimited" for memory parameters, in KiB (`VIR_DOMAIN_MEMORY_PARAM_UNLIMITED`, 2^53 − 1). */
export const LIBVIRT_UNLIMITED_KIB = 9_007_199_254_740_991;
/** What cgroup v1 `memory.limit_in_bytes` reads back as when unlimited (2^63 − 4096, page-aligned). */
export const CGROUP_V1_UNLIMITED = 9_223_372_036_854_771_712n;
/** INT64_MAX (2^63 − 1), used as "unlimited" by several interfaces. */
export const INT64_MAX = 9_223_372_036_854_775_807n;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);
const MIN_SAFE = BigInt(Number.MIN_SAFE_INTEGER);

const BIGINT_SENTINELS: ReadonlySet<bigint> = new Set([
  -1n,
  BigInt(LIBVIRT_UNLIMITED_KIB),
  CGROUP_V1_UNLIMITED,
  INT64_MAX,
]);
/**
 * Numbers treated as unlimited: −1, libvirt's KiB value, cgroup v1's value (exactly representable) and
 * 2^63, which is what INT64_MAX becomes after a trip through a JavaScript number (e.g. `JSON.parse`).
 */
const NUMBER_SENTINELS: ReadonlySet<number> = new Set([
  -1,
  LIBVIRT_UNLIMITED_KIB,
  Number(CGROUP_V1_UNLIMITED),
  2 ** 63,
]);
const WORD_SENTINELS: ReadonlySet<string> = new Set(['max', 'infinity', 'unlimited']);

/** Options of {@link normalizeUnlimited}. */
export interface NormalizeUnlimitedOptions {
  /**
   * More values that mean unlimited for this field (compared exactly; strings after trimming), e.g. `0`
   * for XAPI's `cap`.
   */
  sentinels?: ReadonlyArray<number | bigint | string>;
}

/**
 * Maps the backends' "unlimited" values to `null` and everything else to a number.
 *
 * Unlimited: `-1` (number, string or bigint); libvirt's 9007199254740991 (KiB); cgroup v1's
 * 9223372036854771712 and INT64_MAX 9223372036854775807 (as string or bigint; as a number, also 2^63, the
 * value INT64_MAX rounds to); the words `max`, `infinity` and `unlimited` (any case); plus
 * `options.sentinels`. `null` and `undefined` pass through unchanged.
 *
 * Other values become numbers: numeric strings (`"1024"`, `"0.5"`, `"-3"`), bigints within the safe
 * integer range, finite numbers.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for other strings, non-finite numbers, and integers outside the safe
 *   range that are not sentinels (they cannot be represented exactly).
 */
export function normalizeUnlimited(
  value: number | string | bigint,
  options?: NormalizeUnlimitedOptions,
): number | null;
export function normalizeUnlimited(
  value: number | string | bigint | null | undefined,
  options?: NormalizeUnlimitedOptions,
): number | null | undefined;
export function normalizeUnlimited(
  value: number | string | bigint | null | undefined,
  options: NormalizeUnlimitedOptions = {},
): number | null | undefined {
  if (value === null || value === undefined) return value;
  if (options.sentinels?.length && matchesExtra(value, options.sentinels)) return null;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw invalid(`Not a finite number: ${String(value)}.`, value);
    if (NUMBER_SENTINELS.has(value)) return null;
    if (Number.isInteger(value) && !Number.isSafeInteger(value)) {
      throw invalid(`${value} is outside the safe integer range and not an "unlimited" value.`, value);
    }
    return value;
  }
  if (typeof value === 'bigint') return fromBigInt(value, value);
  if (typeof value === 'string') {
    const text = value.trim();
    if (WORD_SENTINELS.has(text.toLowerCase())) return null;
    if (/^[-+]?\d+$/.test(text)) return fromBigInt(BigInt(text), value);
    if (/^[-+]?(?:\d+\.\d*|\.\d+)$/.test(text)) return Number(text);
    throw invalid(`Not a number or "unlimited" value: ${JSON.stringify(value.slice(0, 64))}.`, value);
  }
  throw new TypeError(`normalizeUnlimited expects a number, string or bigint, got ${typeof value}.`);
}

function fromBigInt(value: bigint, original: unknown): number | null {
  if (BIGINT_SENTINELS.has(value)) return null;
  if (value > MAX_SAFE || value < MIN_SAFE) {
    throw invalid(`${value} is outside the safe integer range and not an "unlimited" value.`, original);
  }
  return Number(value);
}

function matchesExtra(
  value: number | string | bigint,
  sentinels: ReadonlyArray<number | bigint | string>,
): boolean {
  const text = typeof value === 'string' ? value.trim() : String(value);
  return sentinels.some((s) => (typeof s === 'string' ? s.trim() : String(s)) === text);
}

function invalid(message: string, value: unknown) {
  return hvkitError('INVALID_ARGUMENT', message, { details: { value: String(value).slice(0, 64) } });
}
