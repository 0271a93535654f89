/**
 * XAPI's credit-scheduler weight (`VCPUs_params.weight`, default 256, 1..65535) and hvkit's cgroup-v2-style
 * weight (default 100, 1..10000): 256 is weight 100.
 */

/** XAPI's default weight. */
export const XAPI_WEIGHT_DEFAULT = 256;
/** XAPI's weight range. */
export const XAPI_WEIGHT_MIN = 1;
export const XAPI_WEIGHT_MAX = 65535;

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, v));

/** XAPI weight -> hvkit weight: round(x × 100 / 256), halves up, clamped to 1..10000. */
export function xapiWeightToWeight(xapi: number): number {
  return clamp(Math.floor((xapi * 100) / 256 + 0.5), 1, 10000);
}

/** hvkit weight -> XAPI weight: round(w × 256 / 100), halves up, clamped to 1..65535. */
export function weightToXapiWeight(weight: number): number {
  return clamp(Math.floor((weight * 256) / 100 + 0.5), XAPI_WEIGHT_MIN, XAPI_WEIGHT_MAX);
}
