/**
 * The `backups` capability: absent, because `LVM_SUPPORTS.backups` is `false`. To add it, return an
 * object implementing `BackupsCapability` from `@hvkit/core` built on `context.client` and the pure
 * functions of `mapping/`, and describe it in `supports.ts`; the conformance suite then runs its checks.
 */

import type { BackupsCapability } from '@hvkit/core';
import type { AdapterContext } from '../context';

/** The `backups` capability object, or `undefined` while the manifest says `backups: false`. */
export function createBackups(_context: AdapterContext): BackupsCapability | undefined {
  return undefined;
}
