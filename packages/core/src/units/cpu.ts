/**
 * CPU weight conversions to and from the spec's scale: cgroup v2 `cpu.weight`, 1..10000, 100 = default,
 * and cgroup v1 `cpu.shares`. Backend-specific scales belong in their adapters (vSphere's per-vCPU shares in
 * vmware-vsphere's `mapping/cpu.ts`, XAPI's in xen-xapi).
 *
 * Rounding is to the nearest integer with halves rounded up, as the kernel's `DIV_ROUND_CLOSEST` does.
 */

import { hvkitError } from '../errors/hvkit-error';

/** Smallest and largest cgroup v2 `cpu.weight` (the spec's `cpu.weight` range). */
export const CPU_WEIGHT_MIN = 1;
/** Largest cgroup v2 `cpu.weight`. */
export const CPU_WEIGHT_MAX = 10_000;
/** The default weight on the spec's scale. */
export const CPU_WEIGHT_DEFAULT = 100;
/** Smallest cgroup v1 `cpu.shares` the kernel keeps (0 and 1 are clamped to 2). */
export const CPU_SHARES_MIN = 2;
/** Largest cgroup v1 `cpu.shares`. */
export const CPU_SHARES_MAX = 262_144;
/** Default cgroup v1 `cpu.shares`. */
export const CPU_SHARES_DEFAULT = 1024;
function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}

function roundHalfUp(value: number): number {
  return Math.floor(value + 0.5);
}

function requireNonNegative(value: number, what: string): void {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, got ${typeof value}.`);
  if (!Number.isFinite(value) || value < 0) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `${what} must be a finite non-negative number, got ${String(value)}.`,
      {
        details: { value },
      },
    );
  }
}

/**
 * cgroup v2 weight → cgroup v1 `cpu.shares` with the kernel's linear mapping (`shares = weight × 1024 / 100`,
 * as `cpu_weight_write_u64` and systemd do): 100 → 1024, 1 → 10, 10000 → 102400. Rounded to nearest,
 * clamped to 2..262144.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a negative or non-finite weight.
 */
export function weightToShares(weight: number): number {
  requireNonNegative(weight, 'CPU weight');
  return clamp(roundHalfUp((weight * 1024) / 100), CPU_SHARES_MIN, CPU_SHARES_MAX);
}

/**
 * cgroup v1 `cpu.shares` → cgroup v2 weight (`weight = shares × 100 / 1024`, as `cpu_weight_read_u64`):
 * 1024 → 100, 2 → 1 (clamped up from 0), 262144 → 10000 (clamped down from 25600). Rounded to nearest,
 * clamped to 1..10000.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for negative or non-finite shares.
 */
export function sharesToWeight(shares: number): number {
  requireNonNegative(shares, 'CPU shares');
  return clamp(roundHalfUp((shares * 100) / 1024), CPU_WEIGHT_MIN, CPU_WEIGHT_MAX);
}
