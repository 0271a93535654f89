/**
 * The `labels` capability: absent, because `LVM_SUPPORTS.labels` is `false`. To add it, return an
 * object implementing `LabelsCapability` from `@hvkit/core` built on `context.client` and the pure
 * functions of `mapping/`, and describe it in `supports.ts`; the conformance suite then runs its checks.
 */

import type { LabelsCapability } from '@hvkit/core';
import type { AdapterContext } from '../context';

/** The `labels` capability object, or `undefined` while the manifest says `labels: false`. */
export function createLabels(_context: AdapterContext): LabelsCapability | undefined {
  return undefined;
}
