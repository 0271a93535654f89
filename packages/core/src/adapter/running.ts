/**
 * The long operations of one adapter (backups, restores) that `close()` stops: each runs under a signal that
 * also aborts when `close()` starts, and is tracked until it settled (its cleanup done), so `close()` can wait
 * for it. An operation started after `close()` fails `CONNECTION_LOST` (not retryable) without running.
 */

import { hvkitError } from '../errors/hvkit-error';

/** See the module comment. One per adapter; `connect()` makes it, `close()` calls {@link close}. */
export class RunningOperations {
  readonly #adapter: string;
  readonly #closing = new AbortController();
  readonly #running = new Set<Promise<unknown>>();

  /** `adapter`: the adapter id, for the errors. */
  constructor(adapter: string) {
    this.#adapter = adapter;
  }

  /** Aborts when {@link close} starts, with the `ABORTED` "The adapter was closed." as its reason. */
  get closeSignal(): AbortSignal {
    return this.#closing.signal;
  }

  /** How many tracked operations have not settled yet. */
  get size(): number {
    return this.#running.size;
  }

  /**
   * Runs `run` with a signal that aborts with the caller's `signal` or when {@link close} starts, and tracks
   * it until it settled. After {@link close} started it rejects with `CONNECTION_LOST` (not retryable)
   * without calling `run`.
   */
  track<T>(
    operation: string,
    signal: AbortSignal | undefined,
    run: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    if (this.#closing.signal.aborted) {
      return Promise.reject(
        hvkitError('CONNECTION_LOST', 'The adapter was closed.', {
          adapter: this.#adapter,
          operation,
          retryable: false,
        }),
      );
    }
    const combined = signal ? AbortSignal.any([signal, this.#closing.signal]) : this.#closing.signal;
    const promise = run(combined);
    this.#running.add(promise);
    const done = () => this.#running.delete(promise);
    promise.then(done, done);
    return promise;
  }

  /**
   * Aborts every tracked operation and waits until all settled, at most `ms`. Resolves `true` when they
   * did, `false` when it stopped waiting (they still run; the caller says what they may leave).
   * Idempotent: later calls wait for what still runs.
   */
  async close(ms: number): Promise<boolean> {
    if (!this.#closing.signal.aborted) {
      this.#closing.abort(
        hvkitError('ABORTED', 'The adapter was closed.', {
          adapter: this.#adapter,
          operation: 'close',
          retryable: false,
        }),
      );
    }
    const running = [...this.#running];
    if (running.length === 0) return true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const settled = await Promise.race([
      Promise.allSettled(running).then(() => true),
      new Promise<boolean>((resolve) => {
        timer = setTimeout(resolve, ms, false);
      }),
    ]);
    clearTimeout(timer);
    return settled;
  }
}
