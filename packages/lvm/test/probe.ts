/**
 * The reference-client probe of the lvm adapter: reads the backend WITHOUT the adapter, so the live
 * conformance suite can tell what an adapter call really did (see `ConformanceProbe` in
 * `@hvkit/conformance`). With every capability `false` the suite needs none of its methods; add them as you
 * add capabilities (`guestExists` and `getGuestFacts` with inventory, `getLimits` with limits, ...), using
 * the backend's own tool or API directly, never this package's code.
 */

import type { ConformanceProbe } from '@hvkit/conformance';

/** A probe for the live tier; `close()` releases what it opened. */
export interface LvmProbe extends ConformanceProbe {
  close(): Promise<void>;
}

/** Opens the probe (nothing to open yet). */
export function lvmProbe(): LvmProbe {
  return {
    async close() {
      // nothing opened yet
    },
  };
}
