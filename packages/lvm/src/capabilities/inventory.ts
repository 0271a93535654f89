/**
 * The `inventory` capability: absent, because `LVM_SUPPORTS.inventory` is `false`. To add it, return an
 * object implementing `InventoryCapability` from `@hvkit/core` built on `context.client` and the pure
 * functions of `mapping/`, and describe it in `supports.ts`; the conformance suite then runs its checks.
 */

import type { InventoryCapability } from '@hvkit/core';
import type { AdapterContext } from '../context';

/** The `inventory` capability object, or `undefined` while the manifest says `inventory: false`. */
export function createInventory(_context: AdapterContext): InventoryCapability | undefined {
  return undefined;
}
