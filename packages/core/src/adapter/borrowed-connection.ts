/**
 * The connection state of an adapter whose connection belongs to the caller (an `SshClient` of
 * `@hvkit/ssh` given as `connect({ ssh })`): the adapter mirrors it and never reconnects it. Locally (no
 * such connection) the state is `open` until `close()`. Once the caller's connection is closed or lost the
 * adapter is `closed` for good, with a `CONNECTION_LOST` lastError, and every call fails `CONNECTION_LOST`
 * with `retryable: false`: the caller reconnects by opening a new connection and a new adapter.
 *
 * The state is read from the connection's `closed` before every call, on every read of the state and after
 * every failed call; `onChange` listeners hear of a loss while no call runs through the connection's
 * `onClose` (`connectSsh()`'s clients have it), or, on a connection that only has `closed`, by a look every
 * {@link BORROWED_CONNECTION_WATCH_MS}.
 */

import { type HvkitError, hvkitError } from '../errors/hvkit-error';
import { type AdapterConnection, type ConnectionStateChange, ConnectionStatus } from './connection';

/** How often an idle adapter looks at `closed` of a connection without `onClose`, in ms. */
export const BORROWED_CONNECTION_WATCH_MS = 250;

/** What the state is read from: a connection's `closed`, and its `onClose` (`connectSsh()`'s clients). */
export interface ClosableConnection {
  readonly closed?: boolean;
  onClose?(listener: () => void): () => void;
}

/**
 * The connection state of one adapter on a caller's connection (see the module comment); the adapter's
 * calls go through {@link BorrowedConnection.ensureOpen} and {@link BorrowedConnection.closedErrorAfter}.
 */
export class BorrowedConnection implements AdapterConnection {
  readonly #status: ConnectionStatus;
  readonly #adapter: string;
  readonly #target: string;
  readonly #connection: ClosableConnection | undefined;
  #unwatch: (() => void) | undefined;

  /**
   * `context`: the adapter's id and its target (in messages). `connection`: the caller's connection whose
   * loss closes the adapter (none, or one without a boolean `closed`: the state is `open` until `close()`).
   */
  constructor(context: { adapter: string; target: string }, connection?: ClosableConnection) {
    this.#adapter = context.adapter;
    this.#target = context.target;
    this.#status = new ConnectionStatus(context);
    this.#connection =
      connection !== undefined && typeof connection.closed === 'boolean' ? connection : undefined;
    const watched = this.#connection;
    if (watched !== undefined) {
      // A WeakRef, so that an adapter dropped without close() is not kept alive by the connection or a timer.
      const self = new WeakRef(this);
      if (typeof watched.onClose === 'function') {
        this.#unwatch = watched.onClose(() => self.deref()?.refresh());
      } else {
        const watch = setInterval(() => {
          const state = self.deref();
          if (state === undefined) clearInterval(watch);
          else state.refresh();
        }, BORROWED_CONNECTION_WATCH_MS);
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

  /** Moves to `closed` when the caller's connection is gone (`cause`: the error of the call that found out). */
  refresh(cause?: unknown): void {
    if (this.#connection?.closed !== true || this.#status.state === 'closed') return;
    this.#stopWatch();
    this.#status.update(
      'closed',
      hvkitError(
        'CONNECTION_LOST',
        `the SSH connection to ${this.#target} was closed or lost; it is the caller's, so this adapter cannot reconnect it: open a new SSH client and a new adapter`,
        { adapter: this.#adapter, operation: 'ssh.connection', cause, retryable: false },
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

  /** `close()`: `closed` for good. The caller's connection stays open (it is the caller's). */
  close(): void {
    this.#stopWatch();
    this.#status.update('closed');
  }

  #stopWatch(): void {
    this.#unwatch?.();
    this.#unwatch = undefined;
  }
}
