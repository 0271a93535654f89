import type { ResourceLimits } from '../hypervisor/v1/model';
import { LIMIT_FIELDS, type LimitFieldPath, limitField } from './fields';
import { forEachLimitHolder } from './holders';

/**
 * The one spelling of a limit value: a field at its backend default reads `null`.
 *
 * Each field has one rule (`LimitFieldInfo.defaultValue`): `cpu.weight` 100 (the default weight),
 * `cpu.reservationMHz` 0 and `memory.minBytes` 0 (no reservation) mean the same as `null` and become
 * `null`; every other value, `null` and `undefined` are returned unchanged.
 *
 * @example normalizeLimitValue('cpu.weight', 100) // null
 * @example normalizeLimitValue('memory.swapMaxBytes', 0) // 0 (no swap is a limit, not the default)
 */
export function normalizeLimitValue(
  path: LimitFieldPath,
  value: number | null | undefined,
): number | null | undefined {
  const info = limitField(path);
  return info.defaultValue !== undefined && value === info.defaultValue ? null : value;
}

/**
 * Returns a copy of `limits` with every field spelled as {@link normalizeLimitValue} says: a field at its
 * backend default becomes `null`. Adapters return what `limits.get` and `limits.set` read back in this
 * form, so `set(patch)` then `get()` gives back `normalizeLimits(patch)` for every field the adapter can set,
 * and a desired-state tool compares `normalizeLimits(desired)` with what `get()` returns. The input is not
 * modified; absent fields stay absent.
 *
 * @example normalizeLimits({ cpu: { weight: 100, maxCores: 2 } }) // { cpu: { weight: null, maxCores: 2 } }
 */
export function normalizeLimits(limits: ResourceLimits): ResourceLimits {
  const out = structuredClone(limits);
  for (const info of LIMIT_FIELDS) {
    if (info.defaultValue === undefined) continue;
    forEachLimitHolder(out, info, (h) => {
      if (h[info.key] === info.defaultValue) h[info.key] = null;
    });
  }
  return out;
}
