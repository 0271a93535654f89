/**
 * The adapter's connection state (`adapter.connection`). Locally, or on a given `files` transport, it is
 * `open` until `close()`. Over SSH it mirrors the caller's SSH connection: once that is closed or lost the
 * adapter is `closed` for good, with a `CONNECTION_LOST` lastError, and every call fails `CONNECTION_LOST`
 * with `retryable: false`. The adapter does not reconnect: the SSH connection is the caller's, who
 * reconnects by opening a new SSH client and a new adapter.
 *
 * The state is read from the SSH client's `closed` before every call, on every read of the state and after
 * every failed call; `onChange` listeners hear of a loss while no call runs through the client's `onClose`
 * (`connectSsh()`'s clients have it), or, on a connection that only has `closed`, by a look every
 * {@link SSH_WATCH_INTERVAL_MS}.
 */

import {
  type AdapterConnection,
  type ConnectionStateChange,
  ConnectionStatus,
  type HvkitError,
  hvkitError,
} from '@hvkit/core';
import { ADAPTER_ID } from './errors';

/** How often an idle adapter looks at `closed` of a connection without `onClose`, in ms. */
export const SSH_WATCH_INTERVAL_MS = 250;

/** What the state is read from: an SSH client's `closed`, and its `onClose` (`connectSsh()`'s). */
export interface ClosableConnection {
  readonly closed?: boolean;
  onClose?(listener: () => void): () => void;
}

/** The connection state of one adapter; calls go through {@link ensureOpen} and {@link closedErrorAfter}. */
export class CgroupsConnection implements AdapterConnection {
  readonly #status: ConnectionStatus;
  readonly #target: string;
  readonly #ssh: ClosableConnection | undefined;
  #unwatch: (() => void) | undefined;

  /** `ssh`: the caller's SSH client whose loss closes the adapter (none for local files). */
  constructor(target: string, ssh?: ClosableConnection) {
    this.#target = target;
    this.#status = new ConnectionStatus({ adapter: ADAPTER_ID, target });
    this.#ssh = ssh !== undefined && typeof ssh.closed === 'boolean' ? ssh : undefined;
    const watched = this.#ssh;
    if (watched !== undefined) {
      // A WeakRef, so that an adapter dropped without close() is not kept alive by its SSH client or timer.
      const self = new WeakRef(this);
      if (typeof watched.onClose === 'function') {
        this.#unwatch = watched.onClose(() => self.deref()?.refresh());
      } else {
        const watch = setInterval(() => {
          const connection = self.deref();
          if (connection === undefined) clearInterval(watch);
          else connection.refresh();
        }, SSH_WATCH_INTERVAL_MS);
        watch.unref?.();
        this.#unwatch = () => clearInterval(watch);
      }
      this.refresh();
    }
  }

  get state() {
    this.refresh();
    return this.#status.state;
  }

  get lastError(): HvkitError | undefined {
    this.refresh();
    return this.#status.lastError;
  }

  get since(): Date {
    this.refresh();
    return this.#status.since;
  }

  onChange(listener: (change: ConnectionStateChange) => void): () => void {
    this.refresh();
    return this.#status.onChange(listener);
  }

  changes(options?: { signal?: AbortSignal }): AsyncIterable<ConnectionStateChange> {
    this.refresh();
    return this.#status.changes(options);
  }

  /**
   * Moves to `closed` when the SSH connection is gone (`cause`: the error of the call that found out).
   */
  refresh(cause?: unknown): void {
    if (this.#ssh?.closed !== true || this.#status.state === 'closed') return;
    this.#stopWatch();
    this.#status.update(
      'closed',
      hvkitError(
        'CONNECTION_LOST',
        `the SSH connection to ${this.#target} was closed or lost; it is the caller's, so this adapter cannot reconnect it: open a new SSH client and a new adapter`,
        { adapter: ADAPTER_ID, operation: 'ssh.connection', cause, retryable: false },
      ),
    );
  }

  /** @throws HvkitError `CONNECTION_LOST` (not retryable) when the adapter is closed. */
  ensureOpen(operation: string): void {
    this.refresh();
    if (this.#status.state === 'closed') throw this.#status.closedError(operation);
  }

  /** After a failed call: the error to throw instead when the connection is gone (else undefined). */
  closedErrorAfter(operation: string, error: unknown): HvkitError | undefined {
    this.refresh(error);
    return this.#status.state === 'closed' ? this.#status.closedError(operation) : undefined;
  }

  /** `close()`: `closed` for good. The SSH connection stays open (it is the caller's). */
  close(): void {
    this.#stopWatch();
    this.#status.update('closed');
  }

  #stopWatch(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }
}
