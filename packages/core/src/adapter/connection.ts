/**
 * Connection state for long-running use (spec v1's optional `adapter.connection`): the state an adapter
 * reports (`open`, `reconnecting`, `closed`), its changes, the reconnection settings every adapter reads
 * the same way, and the "events may have been missed" notice an event stream yields after it resumed.
 *
 * Adapters keep one {@link ConnectionStatus} and expose it as `connection`; calls made while it is
 * `reconnecting` wait with {@link ConnectionStatus.waitUntilOpen} within their own deadline.
 */

import { HvkitError, hvkitError } from '../errors/hvkit-error';
import type { GuestEvent, ResyncEvent } from '../hypervisor/v1/model';
import { abortError, checkSignal, type ErrorContext, sleep } from '../signal/abort';
import { backoffDelay } from '../signal/waiter';

/**
 * The state of an adapter's connection to its server:
 * - `open`: calls go to the server;
 * - `reconnecting`: the connection was lost and the adapter is connecting again on its own; calls wait
 *   (within their own deadline) and event streams resume afterwards;
 * - `closed`: for good, after `close()`, or after a loss the adapter does not (or no longer) reconnect
 *   from. Every call then fails with `CONNECTION_LOST` (`retryable: false`).
 */
export type ConnectionState = 'open' | 'reconnecting' | 'closed';

/** One change of {@link AdapterConnection.state}. */
export interface ConnectionStateChange {
  state: ConnectionState;
  previous: ConnectionState;
  /** Why: the loss (for `reconnecting`, or `closed` after a loss), undefined after `close()` or a reconnect. */
  error: HvkitError | undefined;
  at: Date;
}

/**
 * What an adapter reports about its connection (`adapter.connection`, optional in spec v1). The state
 * is `open` after `connect()`; `closed` is final.
 */
export interface AdapterConnection {
  readonly state: ConnectionState;
  /** The last connection failure (kept after a successful reconnect), or undefined. */
  readonly lastError: HvkitError | undefined;
  /** When the current state began. */
  readonly since: Date;
  /**
   * Calls `listener` on every change (synchronously, in order). Returns a function that removes it. A
   * listener that throws is ignored.
   */
  onChange(listener: (change: ConnectionStateChange) => void): () => void;
  /**
   * The changes from now on as an async iterable. It ends after yielding the change to `closed`, or when
   * `signal` aborts (without an error); it never ends otherwise.
   */
  changes(options?: { signal?: AbortSignal }): AsyncIterable<ConnectionStateChange>;
}

/** Reconnection settings of an adapter (`connect({ reconnect })`); `false` turns reconnection off. */
export interface ReconnectOptions {
  /** Delay before the first attempt, and the shortest delay between attempts (default 200 ms). */
  initialDelayMs?: number;
  /** Longest delay between attempts; the delay doubles (with jitter) up to it (default 5000 ms). */
  maxDelayMs?: number;
  /** Attempts before giving up (the adapter is then `closed`). Default `Infinity`: never give up. */
  maxAttempts?: number;
}

/** Reconnection settings in force. */
export type ResolvedReconnect = Readonly<Required<ReconnectOptions>>;

/** Default {@link ReconnectOptions}. */
export const DEFAULT_RECONNECT: ResolvedReconnect = Object.freeze({
  initialDelayMs: 200,
  maxDelayMs: 5000,
  maxAttempts: Number.POSITIVE_INFINITY,
});

/**
 * Checks `connect({ reconnect })`: `false` (off), `true` or `undefined` (the defaults), or settings.
 *
 * @throws TypeError for malformed settings.
 */
export function resolveReconnect(
  options: ReconnectOptions | boolean | undefined,
  name = 'reconnect',
): ResolvedReconnect | false {
  if (options === false) return false;
  if (options === undefined || options === true) return DEFAULT_RECONNECT;
  if (typeof options !== 'object' || options === null) {
    throw new TypeError(`${name} must be a boolean or an object.`);
  }
  const known = new Set(['initialDelayMs', 'maxDelayMs', 'maxAttempts']);
  for (const key of Object.keys(options)) {
    if (!known.has(key)) throw new TypeError(`${name}: unknown key ${JSON.stringify(key.slice(0, 100))}.`);
  }
  const resolved = { ...DEFAULT_RECONNECT, ...stripUndefined(options) };
  for (const key of ['initialDelayMs', 'maxDelayMs'] as const) {
    const v = resolved[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0) {
      throw new TypeError(`${name}.${key} must be a finite number of milliseconds >= 0.`);
    }
  }
  if (resolved.maxDelayMs < resolved.initialDelayMs) {
    throw new TypeError(`${name}.maxDelayMs must be at least initialDelayMs.`);
  }
  const attempts = resolved.maxAttempts;
  if (!(attempts === Number.POSITIVE_INFINITY || (Number.isSafeInteger(attempts) && attempts >= 1))) {
    throw new TypeError(`${name}.maxAttempts must be a positive integer or Infinity.`);
  }
  return Object.freeze(resolved);
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** The delay before reconnection attempt `attempt` (1-based): jittered, doubling, at most `maxDelayMs`. */
export function reconnectDelayMs(
  attempt: number,
  settings: ResolvedReconnect,
  random: () => number = Math.random,
): number {
  return backoffDelay(attempt, settings.initialDelayMs, settings.maxDelayMs, random);
}

/** Options of {@link reconnectWithBackoff}. */
export interface ReconnectLoopOptions {
  /** The state to move: `open` after a successful attempt, `closed` when reconnecting ends in failure. */
  status: ConnectionStatus;
  settings: ResolvedReconnect;
  /** Stops the loop without changing the state (the adapter is being closed). */
  signal: AbortSignal;
  /** One attempt (number `n`, from 1): resolves once the connection works again, rejects otherwise. */
  attempt(signal: AbortSignal, n: number): Promise<void>;
  /** The `closed` state's error when attempts run out and the last failure was not an HvkitError. */
  giveUpError(cause: unknown): HvkitError;
  /** Told of each failed attempt (logging). */
  onFailedAttempt?(n: number, error: unknown): void;
}

/**
 * Reconnects with bounded backoff while `status` is `reconnecting`: waits {@link reconnectDelayMs}, runs
 * `attempt`, and moves `status` to `open` once one succeeds. A failure with `AUTH_FAILED` or
 * `PERMISSION_DENIED` (credentials that no longer work), or the last of `maxAttempts`, moves it to
 * `closed` with that error. Resolves with the outcome: `open`, `closed`, or `stopped` (`signal` aborted, or
 * the state left `reconnecting` by other means).
 */
export async function reconnectWithBackoff(
  options: ReconnectLoopOptions,
): Promise<'open' | 'closed' | 'stopped'> {
  const { status, settings, signal } = options;
  for (let n = 1; ; n++) {
    try {
      await sleep(reconnectDelayMs(n, settings), { signal });
    } catch {
      return 'stopped';
    }
    if (signal.aborted || status.state !== 'reconnecting') return 'stopped';
    try {
      await options.attempt(signal, n);
    } catch (error) {
      if (signal.aborted) return 'stopped';
      options.onFailedAttempt?.(n, error);
      const typed = HvkitError.isInstance(error) ? error : undefined;
      if (typed?.code === 'AUTH_FAILED' || typed?.code === 'PERMISSION_DENIED' || n >= settings.maxAttempts) {
        status.update('closed', typed ?? options.giveUpError(error));
        return 'closed';
      }
      continue;
    }
    if (signal.aborted || status.state !== 'reconnecting') return 'stopped';
    status.update('open');
    return 'open';
  }
}

/**
 * The state an adapter reports, with its listeners (adapters create one and expose it as
 * `adapter.connection`). `closed` is final: later updates are ignored.
 */
export class ConnectionStatus implements AdapterConnection {
  #state: ConnectionState = 'open';
  #lastError: HvkitError | undefined;
  #since = new Date();
  readonly #listeners = new Set<(change: ConnectionStateChange) => void>();

  /** `context` names the adapter in the errors of {@link waitUntilOpen}. */
  constructor(private readonly context: { adapter: string; target?: string }) {}

  get state(): ConnectionState {
    return this.#state;
  }

  get lastError(): HvkitError | undefined {
    return this.#lastError;
  }

  get since(): Date {
    return this.#since;
  }

  /**
   * Moves to `state` (nothing happens when it is the current one, or after `closed`) and tells the
   * listeners. `error` becomes {@link lastError} when given.
   */
  update(state: ConnectionState, error?: HvkitError): void {
    if (this.#state === 'closed' || state === this.#state) return;
    const previous = this.#state;
    this.#state = state;
    this.#since = new Date();
    if (error !== undefined) this.#lastError = error;
    const change: ConnectionStateChange = { state, previous, error, at: this.#since };
    for (const listener of [...this.#listeners]) {
      try {
        listener(change);
      } catch {
        // A failing listener must not change the adapter's behaviour.
      }
    }
    if (state === 'closed') this.#listeners.clear();
  }

  onChange(listener: (change: ConnectionStateChange) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('onChange: listener must be a function.');
    if (this.#state === 'closed') return () => {};
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  changes(options: { signal?: AbortSignal } = {}): AsyncIterable<ConnectionStateChange> {
    if (typeof options !== 'object' || options === null) {
      throw new TypeError('changes: options must be an object.');
    }
    const signal = checkSignal(options.signal);
    return {
      [Symbol.asyncIterator]: () => {
        const queue: ConnectionStateChange[] = [];
        let wake: (() => void) | undefined;
        let ended = this.#state === 'closed' || signal?.aborted === true;
        const onAbort = () => {
          ended = true;
          stop();
          wake?.();
        };
        const stop = this.onChange((change) => {
          queue.push(change);
          if (queue.length > 1000) queue.shift();
          wake?.();
        });
        signal?.addEventListener('abort', onAbort, { once: true });
        const finish = () => {
          ended = true;
          stop();
          signal?.removeEventListener('abort', onAbort);
        };
        return {
          next: async (): Promise<IteratorResult<ConnectionStateChange>> => {
            for (;;) {
              const change = queue.shift();
              if (change !== undefined) {
                if (change.state === 'closed') finish();
                return { done: false, value: change };
              }
              if (ended || signal?.aborted) {
                finish();
                return { done: true, value: undefined };
              }
              await new Promise<void>((resolve) => {
                wake = resolve;
              });
              wake = undefined;
            }
          },
          return: async () => {
            finish();
            return { done: true, value: undefined };
          },
        };
      },
    };
  }

  /**
   * The `CONNECTION_LOST` error of a call on a closed adapter: not retryable (the same adapter cannot
   * succeed), with the loss as `cause` when there was one.
   */
  closedError(operation: string): HvkitError {
    const where = this.context.target !== undefined ? ` to ${this.context.target}` : '';
    const why = this.#lastError !== undefined ? `: ${this.#lastError.message}` : '';
    return hvkitError('CONNECTION_LOST', `${operation}: the connection${where} is closed${why}`, {
      adapter: this.context.adapter,
      operation,
      cause: this.#lastError,
      retryable: false,
    });
  }

  /**
   * Resolves once the state is `open` (at once when it is). Rejects with `CONNECTION_LOST` when it becomes
   * `closed` (not retryable), or when `timeoutMs` passes while still reconnecting (retryable, with the loss
   * as `cause`); with `ABORTED` when `signal` aborts.
   */
  waitUntilOpen(options: { signal?: AbortSignal; timeoutMs?: number; operation: string }): Promise<void> {
    const { operation } = options;
    const context: ErrorContext = { adapter: this.context.adapter, operation };
    if (this.#state === 'open') return Promise.resolve();
    if (this.#state === 'closed') return Promise.reject(this.closedError(operation));
    const signal = options.signal;
    if (signal?.aborted) return Promise.reject(abortError(signal, context));
    const timeoutMs = options.timeoutMs ?? Number.POSITIVE_INFINITY;
    const started = Date.now();
    return new Promise<void>((resolve, reject) => {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        stop();
        signal?.removeEventListener('abort', onAbort);
      };
      const onAbort = () => {
        cleanup();
        reject(abortError(signal, context));
      };
      const stop = this.onChange((change) => {
        if (change.state === 'open') {
          cleanup();
          resolve();
        } else if (change.state === 'closed') {
          cleanup();
          reject(this.closedError(operation));
        }
      });
      signal?.addEventListener('abort', onAbort, { once: true });
      if (Number.isFinite(timeoutMs)) {
        timer = setTimeout(
          () => {
            cleanup();
            reject(this.stillReconnectingError(operation, Date.now() - started));
          },
          Math.max(0, timeoutMs),
        );
        timer.unref?.();
      }
    });
  }

  /** `CONNECTION_LOST` (retryable) of a call that waited `waitedMs` for a reconnect that did not come. */
  stillReconnectingError(operation: string, waitedMs: number): HvkitError {
    const where = this.context.target !== undefined ? ` to ${this.context.target}` : '';
    const why = this.#lastError !== undefined ? ` (lost: ${this.#lastError.message})` : '';
    return hvkitError(
      'CONNECTION_LOST',
      `${operation}: the connection${where} was lost and is still reconnecting after ${waitedMs} ms${why}`,
      { adapter: this.context.adapter, operation, cause: this.#lastError, retryable: true },
    );
  }
}

/** The `type` of the notice an event stream yields when events may have been missed: `'resync'`. */
export const RESYNC_EVENT_TYPE = 'resync';

/**
 * The notice an event stream yields after it resumed (a reconnect) or after it had to drop events (the
 * consumer fell behind): events since `since` may be missing, so re-read the state you track.
 */
export function resyncEvent(since: Date, reason: ResyncEvent['detail'], at: Date = new Date()): ResyncEvent {
  return { type: RESYNC_EVENT_TYPE, detail: reason, guest: { id: '', name: '' }, since, at };
}

/** True for the "events may have been missed" notice (see {@link resyncEvent}). */
export function isResyncEvent(event: GuestEvent): event is ResyncEvent {
  return event?.type === RESYNC_EVENT_TYPE;
}
