/**
 * What every capability of the cgroups adapter shares: the file client, what `hello` learnt about the
 * host's hierarchies, the extra groups and the defaults `connect` settled.
 */

import type { DeepReadonly, Logger, SupportsManifest } from '@hvkit/core';
import type { BackendHello, CgroupsClient } from './protocol/client';

/** The shared state of one connection. */
export interface AdapterContext {
  /** The file client (see `protocol/client.ts`). */
  readonly client: CgroupsClient;
  /** Mode, mounts and controller placement, read at connect. */
  readonly hello: BackendHello;
  /** Extra groups the user named (`connect({ extraGroups })`), relative to the hierarchy roots. */
  readonly extraGroups: readonly string[];
  /** This connection's manifest (narrowed to the controllers the host has). */
  readonly supports: DeepReadonly<SupportsManifest>;
  /** Receives debug lines and warnings. */
  readonly logger: Logger;
  /** Default timeout of one file call, in ms. */
  readonly callTimeoutMs: number;
}
