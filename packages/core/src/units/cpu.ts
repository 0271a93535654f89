/**
 * CPU weight conversions to and from the spec's scale: cgroup v2 `cpu.weight`, 1..10000, 100 = default,
 * and cgroup v1 `cpu.shares`. Backend-specific scales belong in their adapters (XAPI's in xen-xapi; the vSphere
 * helpers below are moving to vmware-vsphere).
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
/** vSphere shares per vCPU for each predefined level. */
export const VSPHERE_SHARES_PER_VCPU = { low: 500, normal: 1000, high: 2000 } as const;

/** vSphere's `SharesLevel`. */
export type VsphereSharesLevel = 'low' | 'normal' | 'high' | 'custom';

/** vSphere's `SharesInfo` for CPU. */
export interface VsphereSharesInfo {
  level: VsphereSharesLevel;
  /** Number of shares; for `low`/`normal`/`high` vSphere fills it in as 500/1000/2000 per vCPU. */
  shares: number;
}

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

function requireVcpus(vcpus: number): void {
  if (typeof vcpus !== 'number') throw new TypeError(`vcpus must be a number, got ${typeof vcpus}.`);
  if (!Number.isSafeInteger(vcpus) || vcpus < 1) {
    throw hvkitError('INVALID_ARGUMENT', `vcpus must be a positive integer, got ${String(vcpus)}.`, {
      details: { vcpus },
    });
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

/**
 * vSphere CPU shares of a VM → weight, normalised per vCPU: 1000 shares per vCPU (`normal`) = 100,
 * 500 (`low`) = 50, 2000 (`high`) = 200. `round(shares × 100 / (vcpus × 1000))`, clamped to 1..10000.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for negative shares or `vcpus` that is not a positive integer.
 */
export function vsphereSharesToWeight(shares: number, vcpus: number): number {
  requireNonNegative(shares, 'vSphere shares');
  requireVcpus(vcpus);
  return clamp(roundHalfUp((shares * 100) / (vcpus * 1000)), CPU_WEIGHT_MIN, CPU_WEIGHT_MAX);
}

/**
 * Weight → vSphere CPU shares for a VM with `vcpus` vCPUs: `round(weight × 10 × vcpus)` (100 → 1000 per vCPU),
 * at least 1.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a negative weight or `vcpus` that is not a positive integer.
 */
export function weightToVsphereShares(weight: number, vcpus: number): number {
  requireNonNegative(weight, 'CPU weight');
  requireVcpus(vcpus);
  return Math.max(1, roundHalfUp(weight * 10 * vcpus));
}

/**
 * vSphere `SharesInfo` → weight. The predefined levels map to fixed weights whatever `shares` says
 * (low 50, normal 100, high 200); `custom` is normalised per vCPU with {@link vsphereSharesToWeight}.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for an unknown level, bad shares or bad `vcpus`.
 */
export function vsphereSharesInfoToWeight(info: VsphereSharesInfo, vcpus: number): number {
  if (typeof info !== 'object' || info === null) throw new TypeError('SharesInfo must be an object.');
  requireVcpus(vcpus);
  switch (info.level) {
    case 'low':
    case 'normal':
    case 'high':
      return VSPHERE_SHARES_PER_VCPU[info.level] / 10;
    case 'custom':
      return vsphereSharesToWeight(info.shares, vcpus);
    default:
      throw hvkitError('INVALID_ARGUMENT', `Unknown vSphere shares level ${JSON.stringify(info.level)}.`, {
        details: { level: info.level },
      });
  }
}

/**
 * Weight → vSphere `SharesInfo`: 50, 100 and 200 become the `low`, `normal` and `high` levels (so the VM
 * keeps following vSphere's per-vCPU defaults when its vCPU count changes); other weights become `custom`.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a negative weight or `vcpus` that is not a positive integer.
 */
export function weightToVsphereSharesInfo(weight: number, vcpus: number): VsphereSharesInfo {
  const shares = weightToVsphereShares(weight, vcpus);
  for (const level of ['low', 'normal', 'high'] as const) {
    if (weight === VSPHERE_SHARES_PER_VCPU[level] / 10) return { level, shares };
  }
  return { level: 'custom', shares };
}
