/**
 * The adapter's connection state (`adapter.connection`): core's {@link BorrowedConnection}. Locally, or on
 * a given `files` transport, it is `open` until `close()`. Over SSH it mirrors the caller's SSH connection:
 * once that is closed or lost the adapter is `closed` for good, with a `CONNECTION_LOST` lastError, and
 * every call fails `CONNECTION_LOST` with `retryable: false`. The adapter does not reconnect: the SSH
 * connection is the caller's, who reconnects by opening a new SSH client and a new adapter.
 */

import { BORROWED_CONNECTION_WATCH_MS, BorrowedConnection, type ClosableConnection } from '@hvkit/core';
import { ADAPTER_ID } from './errors';

export type { ClosableConnection };

/** How often an idle adapter looks at `closed` of a connection without `onClose`, in ms. */
export const SSH_WATCH_INTERVAL_MS = BORROWED_CONNECTION_WATCH_MS;

/** The connection state of one adapter; calls go through `ensureOpen` and `closedErrorAfter`. */
export class CgroupsConnection extends BorrowedConnection {
  /** `ssh`: the caller's SSH client whose loss closes the adapter (none for local files). */
  constructor(target: string, ssh?: ClosableConnection) {
    super({ adapter: ADAPTER_ID, target }, ssh);
  }
}
