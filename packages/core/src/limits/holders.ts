import type { ResourceLimits } from '../hypervisor/v1/model';
import type { LimitFieldInfo } from './fields';

/**
 * Calls `fn` on each object of `limits` that holds `info`'s key: the section object (`cpu`, `memory`,
 * `pids`), or every entry of `disks`/`nics`. Internal to core (not exported from the package).
 */
export function forEachLimitHolder(
  limits: ResourceLimits,
  info: LimitFieldInfo,
  fn: (holder: Record<string, unknown>) => void,
): void {
  const holders =
    info.section === 'disks' || info.section === 'nics'
      ? ((limits[info.section] ?? []) as unknown as Record<string, unknown>[])
      : limits[info.section]
        ? [limits[info.section] as unknown as Record<string, unknown>]
        : [];
  for (const h of holders) fn(h);
}
