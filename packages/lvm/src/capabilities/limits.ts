/**
 * The `limits` capability: absent, because `LVM_SUPPORTS.limits` is `false`. To add it, return an
 * object implementing `LimitsCapability` from `@hvkit/core` built on `context.client` and the pure
 * functions of `mapping/`, and describe it in `supports.ts`; the conformance suite then runs its checks.
 */

import type { LimitsCapability } from '@hvkit/core';
import type { AdapterContext } from '../context';

/** The `limits` capability object, or `undefined` while the manifest says `limits: false`. */
export function createLimits(_context: AdapterContext): LimitsCapability | undefined {
  return undefined;
}
