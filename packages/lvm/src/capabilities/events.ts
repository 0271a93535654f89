/**
 * The `events` capability: absent, because `LVM_SUPPORTS.events` is `false`. To add it, return an
 * object implementing `EventsCapability` from `@hvkit/core` built on `context.client` and the pure
 * functions of `mapping/`, and describe it in `supports.ts`; the conformance suite then runs its checks.
 */

import type { EventsCapability } from '@hvkit/core';
import type { AdapterContext } from '../context';

/** The `events` capability object, or `undefined` while the manifest says `events: false`. */
export function createEvents(_context: AdapterContext): EventsCapability | undefined {
  return undefined;
}
