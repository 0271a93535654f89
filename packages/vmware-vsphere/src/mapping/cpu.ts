/**
 * vSphere CPU shares ↔ the spec's CPU weight (cgroup v2 scale, 1..10000, 100 = default), normalised per
 * vCPU: vSphere gives a VM 1000 shares per vCPU at level `normal` (500 `low`, 2000 `high`), which is
 * weight 100 (50, 200) whatever the VM's vCPU count.
 *
 * Rounding is to the nearest integer with halves rounded up, as core's cgroup conversions do.
 */

import { CPU_WEIGHT_MAX, CPU_WEIGHT_MIN, hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

/** vSphere shares per vCPU for each predefined level. */
export const VSPHERE_SHARES_PER_VCPU = Object.freeze({ low: 500, normal: 1000, high: 2000 } as const);

/** vSphere's `SharesLevel`. */
export type VsphereSharesLevel = 'low' | 'normal' | 'high' | 'custom';

/** vSphere's `SharesInfo` for CPU. */
export interface VsphereSharesInfo {
  level: VsphereSharesLevel;
  /** Number of shares; for `low`/`normal`/`high` vSphere fills it in as 500/1000/2000 per vCPU. */
  shares: number;
}

/** The nearest weight, halves rounded up, within the spec's 1..10000. */
function toWeight(value: number): number {
  return Math.min(CPU_WEIGHT_MAX, Math.max(CPU_WEIGHT_MIN, Math.floor(value + 0.5)));
}

function requireNonNegative(value: number, what: string): void {
  if (typeof value !== 'number') throw new TypeError(`${what} must be a number, got ${typeof value}.`);
  if (!Number.isFinite(value) || value < 0) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `${what} must be a finite non-negative number, got ${String(value)}.`,
      { adapter: ADAPTER_ID, details: { value } },
    );
  }
}

function requireVcpus(vcpus: number): void {
  if (typeof vcpus !== 'number') throw new TypeError(`vcpus must be a number, got ${typeof vcpus}.`);
  if (!Number.isSafeInteger(vcpus) || vcpus < 1) {
    throw hvkitError('INVALID_ARGUMENT', `vcpus must be a positive integer, got ${String(vcpus)}.`, {
      adapter: ADAPTER_ID,
      details: { vcpus },
    });
  }
}

/**
 * vSphere CPU shares of a VM → weight, normalised per vCPU: 1000 shares per vCPU (`normal`) = 100,
 * 500 (`low`) = 50, 2000 (`high`) = 200. `round(shares × 100 / (vcpus × 1000))`, clamped to 1..10000.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for negative shares or `vcpus` that is not a positive integer.
 * @throws TypeError when `shares` or `vcpus` is not a number.
 */
export function vsphereSharesToWeight(shares: number, vcpus: number): number {
  requireNonNegative(shares, 'vSphere shares');
  requireVcpus(vcpus);
  return toWeight((shares * 100) / (vcpus * 1000));
}

/**
 * Weight → vSphere CPU shares for a VM with `vcpus` vCPUs: `round(weight × 10 × vcpus)` (100 → 1000 per vCPU),
 * at least 1.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a negative weight or `vcpus` that is not a positive integer.
 * @throws TypeError when `weight` or `vcpus` is not a number.
 */
export function weightToVsphereShares(weight: number, vcpus: number): number {
  requireNonNegative(weight, 'CPU weight');
  requireVcpus(vcpus);
  return Math.max(1, Math.floor(weight * 10 * vcpus + 0.5));
}

/**
 * vSphere `SharesInfo` → weight. The predefined levels map to fixed weights whatever `shares` says
 * (low 50, normal 100, high 200); `custom` is normalised per vCPU with {@link vsphereSharesToWeight}.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for an unknown level, bad shares or bad `vcpus`.
 * @throws TypeError when `info` is not an object.
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
        adapter: ADAPTER_ID,
        details: { level: info.level },
      });
  }
}

/**
 * Weight → vSphere `SharesInfo`: 50, 100 and 200 become the `low`, `normal` and `high` levels (so the VM
 * keeps following vSphere's per-vCPU defaults when its vCPU count changes); other weights become `custom`.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a negative weight or `vcpus` that is not a positive integer.
 * @throws TypeError when `weight` or `vcpus` is not a number.
 */
export function weightToVsphereSharesInfo(weight: number, vcpus: number): VsphereSharesInfo {
  const shares = weightToVsphereShares(weight, vcpus);
  for (const level of ['low', 'normal', 'high'] as const) {
    if (weight === VSPHERE_SHARES_PER_VCPU[level] / 10) return { level, shares };
  }
  return { level: 'custom', shares };
}
