/**
 * What every capability of the lvm adapter shares: the wire client, the adapter id and the defaults
 * `connect` settled. Capabilities receive it from `connect` and never build their own client.
 */

import type { Logger } from '@hvkit/core';
import type { LvmClient } from './protocol/client';

/** The shared state of one connection. */
export interface AdapterContext {
  /** The wire client (see `protocol/client.ts`). */
  readonly client: LvmClient;
  /** Receives debug lines and warnings. */
  readonly logger: Logger;
  /** Default timeout of one backend call, in ms. */
  readonly callTimeoutMs: number;
}
