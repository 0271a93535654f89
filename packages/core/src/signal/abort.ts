/**
 * Cancellation and timeouts: every hvkit call takes `{ signal, timeoutMs }` and none can hang forever.
 */

import { HvkitError, hvkitError } from '../errors/hvkit-error';

/** Default timeout of one call: 30 seconds. */
export const DEFAULT_TIMEOUT_MS = 30_000;

/** Adapter and operation named in errors. */
export interface ErrorContext {
  adapter?: string;
  operation?: string;
}

/**
 * The error a call rejects with when `signal` has aborted: the reason itself when it already is an
 * `HvkitError` (e.g. the `TIMEOUT` of a derived signal), a `TIMEOUT` error for a `TimeoutError` reason
 * (`AbortSignal.timeout()`), an `ABORTED` error otherwise, with the reason as `cause`.
 */
export function abortError(signal: AbortSignal | undefined, context: ErrorContext = {}): HvkitError {
  const reason: unknown = signal?.reason;
  if (HvkitError.isInstance(reason)) return reason;
  const where = describe(context);
  if (isNamedError(reason, 'TimeoutError')) {
    return hvkitError('TIMEOUT', `${where}timed out.`, { ...context, cause: reason });
  }
  return hvkitError('ABORTED', `${where}aborted.`, { ...context, cause: reason });
}

/** Throws the {@link abortError} when `signal` is aborted; does nothing otherwise. */
export function throwIfAborted(signal: AbortSignal | undefined, context: ErrorContext = {}): void {
  if (signal?.aborted) throw abortError(signal, context);
}

/** Options a call takes for cancellation. */
export interface SignalOptions {
  signal?: AbortSignal;
  /** Milliseconds; `Infinity` disables the timeout (use with care: the call can then wait forever). */
  timeoutMs?: number;
}

/** Settings of {@link deriveSignal}. */
export interface DeriveSignalSettings extends ErrorContext {
  /** Used when the call gives no `timeoutMs` (default {@link DEFAULT_TIMEOUT_MS}). */
  defaultTimeoutMs?: number;
}

/** A per-call signal and its cleanup. */
export interface DerivedSignal extends Disposable {
  /**
   * Aborts when the caller's signal aborts (reason: an `ABORTED` HvkitError whose cause is the caller's
   * reason) or when the timeout elapses (reason: a `TIMEOUT` HvkitError).
   */
  readonly signal: AbortSignal;
  /** The timeout in force (`Infinity` when none). */
  readonly timeoutMs: number;
  /** Clears the timer and removes the listener on the caller's signal. Idempotent. */
  dispose(): void;
}

/**
 * Validates a `timeoutMs` option: a positive number or `Infinity`.
 *
 * @throws TypeError for anything else (API misuse).
 */
export function checkTimeoutMs(timeoutMs: unknown, name = 'timeoutMs'): number {
  if (typeof timeoutMs !== 'number' || Number.isNaN(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError(
      `${name} must be a positive number of milliseconds or Infinity, got ${String(timeoutMs)}.`,
    );
  }
  return timeoutMs;
}

/**
 * Validates a `signal` option.
 *
 * @throws TypeError when it is present but not an `AbortSignal`.
 */
export function checkSignal(signal: unknown): AbortSignal | undefined {
  if (signal === undefined) return undefined;
  if (!isAbortSignal(signal)) throw new TypeError('signal must be an AbortSignal.');
  return signal;
}

/**
 * Derives the signal of one call from the caller's `{ signal, timeoutMs }` and a default timeout. The
 * timer is `unref`'d (it never keeps the process alive on its own). Call `dispose()` (or use `using`)
 * when the call settles so the listener and timer go away.
 *
 * @throws TypeError for a non-signal `signal` or a bad `timeoutMs`.
 */
export function deriveSignal(
  options: SignalOptions = {},
  settings: DeriveSignalSettings = {},
): DerivedSignal {
  const parent = checkSignal(options.signal);
  const timeoutMs = checkTimeoutMs(
    options.timeoutMs ?? settings.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    options.timeoutMs === undefined ? 'defaultTimeoutMs' : 'timeoutMs',
  );
  const context: ErrorContext = { adapter: settings.adapter, operation: settings.operation };
  const controller = new AbortController();
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onParentAbort: (() => void) | undefined;

  const dispose = () => {
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    if (onParentAbort) parent?.removeEventListener('abort', onParentAbort);
    onParentAbort = undefined;
  };

  if (parent?.aborted) {
    controller.abort(abortError(parent, context));
  } else {
    if (parent) {
      onParentAbort = () => {
        controller.abort(abortError(parent, context));
        dispose();
      };
      parent.addEventListener('abort', onParentAbort, { once: true });
    }
    if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(() => {
        timer = undefined;
        controller.abort(timeoutError(context, timeoutMs));
        dispose();
      }, timeoutMs);
      timer.unref?.();
    }
  }

  return { signal: controller.signal, timeoutMs, dispose, [Symbol.dispose]: dispose };
}

function timeoutError(context: ErrorContext, timeoutMs: number): HvkitError {
  return hvkitError('TIMEOUT', `${describe(context)}timed out after ${timeoutMs} ms.`, {
    ...context,
    details: { timeoutMs },
  });
}

/**
 * Callbacks waiting on each signal, behind one 'abort' listener per signal: thousands of pipelined calls
 * sharing a signal would otherwise each add a listener, and EventTarget's add and remove walk the list.
 * The listener goes away with the last callback, so nothing keeps the signal alive afterwards.
 */
const abortWatchers = new WeakMap<AbortSignal, { callbacks: Set<() => void>; listener: () => void }>();

function watchAbort(signal: AbortSignal, callback: () => void): () => void {
  let entry = abortWatchers.get(signal);
  if (entry === undefined) {
    const callbacks = new Set<() => void>();
    const listener = () => {
      abortWatchers.delete(signal);
      for (const watcher of callbacks) {
        try {
          watcher();
        } catch (error) {
          // One failing callback must not keep the others from their abort.
          queueMicrotask(() => {
            throw error;
          });
        }
      }
      callbacks.clear();
    };
    entry = { callbacks, listener };
    abortWatchers.set(signal, entry);
    signal.addEventListener('abort', listener, { once: true });
  }
  const current = entry;
  current.callbacks.add(callback);
  return () => {
    if (!current.callbacks.delete(callback) || current.callbacks.size > 0) return;
    if (abortWatchers.get(signal) === current) {
      abortWatchers.delete(signal);
      signal.removeEventListener('abort', current.listener);
    }
  };
}

/**
 * Watches one call's `{ signal, timeoutMs }` without creating a signal: `onEnd` runs once, with the same
 * `ABORTED` or `TIMEOUT` error {@link deriveSignal} would give, unless the returned function (which clears
 * the timer and the watch; idempotent) ran first. The timer is `unref`'d. For paths that issue thousands of
 * calls: there is no AbortController per call, and calls that share a signal share one listener on it.
 * Use `deriveSignal` when a signal must be handed on.
 *
 * When the caller's signal has already aborted, `onEnd` runs before this returns.
 *
 * @throws TypeError for a non-signal `signal` or a bad `timeoutMs`.
 */
export function watchDeadline(
  options: SignalOptions,
  settings: DeriveSignalSettings,
  onEnd: (error: HvkitError) => void,
): () => void {
  const parent = checkSignal(options.signal);
  const timeoutMs = checkTimeoutMs(
    options.timeoutMs ?? settings.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS,
    options.timeoutMs === undefined ? 'defaultTimeoutMs' : 'timeoutMs',
  );
  const context: ErrorContext = { adapter: settings.adapter, operation: settings.operation };
  if (parent?.aborted) {
    onEnd(abortError(parent, context));
    return () => {};
  }
  let timer: ReturnType<typeof setTimeout> | undefined;
  let unwatch: (() => void) | undefined;
  let done = false;
  const stop = () => {
    if (done) return;
    done = true;
    if (timer !== undefined) clearTimeout(timer);
    timer = undefined;
    unwatch?.();
  };
  if (parent) {
    unwatch = watchAbort(parent, () => {
      if (done) return;
      stop();
      onEnd(abortError(parent, context));
    });
  }
  if (Number.isFinite(timeoutMs)) {
    timer = setTimeout(() => {
      timer = undefined;
      if (done) return;
      stop();
      onEnd(timeoutError(context, timeoutMs));
    }, timeoutMs);
    timer.unref?.();
  }
  return stop;
}

/** Options of {@link withDeadline}. */
export interface DeadlineOptions extends SignalOptions, DeriveSignalSettings {
  /**
   * After the derived signal fires, how long to wait for `fn`'s promise to settle before rejecting
   * (default 0: reject at once). Work that reacts to the signal by undoing what it did (cancelling a job,
   * deleting a temporary snapshot) can then finish that first, so the caller sees a clean state when the
   * call rejects. The call still rejects with the abort or timeout error, never later than this.
   */
  settleMs?: number;
}

/**
 * Runs `fn` with a derived signal (see {@link deriveSignal}) and rejects when that signal aborts, even
 * when `fn` ignores it: at once, or once `fn`'s promise settles but at most `settleMs` later. The promise
 * `fn` returned is then left to settle on its own (its rejection is swallowed). Errors `fn` throws pass
 * through unchanged.
 *
 * @throws TypeError for a bad `settleMs` (and see {@link deriveSignal}).
 */
export async function withDeadline<T>(
  fn: (signal: AbortSignal) => Promise<T> | T,
  options: DeadlineOptions = {},
): Promise<T> {
  const settleMs = options.settleMs ?? 0;
  if (typeof settleMs !== 'number' || Number.isNaN(settleMs) || settleMs < 0 || !Number.isFinite(settleMs)) {
    throw new TypeError(`settleMs must be a finite number of milliseconds >= 0, got ${String(settleMs)}.`);
  }
  const derived = deriveSignal(options, options);
  const { signal } = derived;
  let settleTimer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    if (signal.aborted) throw signal.reason;
    const work = Promise.resolve().then(() => fn(signal));
    return await new Promise<T>((resolve, reject) => {
      let done = false;
      let aborted = false;
      const end = (settle: () => void) => {
        if (done) return;
        done = true;
        settle();
      };
      work.then(
        (value) => {
          if (!aborted) end(() => resolve(value));
        },
        (error: unknown) => {
          if (!aborted) end(() => reject(error));
        },
      );
      onAbort = () => {
        aborted = true;
        const reason: unknown = signal.reason;
        const fail = () => end(() => reject(reason));
        if (settleMs === 0) {
          fail();
          return;
        }
        settleTimer = setTimeout(fail, settleMs);
        settleTimer.unref?.();
        work.then(fail, fail);
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
  } finally {
    clearTimeout(settleTimer);
    if (onAbort) signal.removeEventListener('abort', onAbort);
    derived.dispose();
  }
}

/**
 * Races `promise` against `signal`: rejects with the {@link abortError} as soon as the signal aborts.
 * The listener is removed when either settles. `promise`'s later rejection is swallowed.
 */
export function raceAbort<T>(
  promise: PromiseLike<T>,
  signal: AbortSignal | undefined,
  context: ErrorContext = {},
): Promise<T> {
  const work = Promise.resolve(promise);
  if (!signal) return work;
  if (signal.aborted) {
    work.catch(() => {});
    return Promise.reject(abortError(signal, context));
  }
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => {
      work.catch(() => {});
      reject(abortError(signal, context));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    work.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolve(value);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error);
      },
    );
  });
}

/**
 * Waits `ms` milliseconds; rejects with the {@link abortError} (`ABORTED`, or the signal's own HvkitError
 * reason) as soon as `signal` aborts. The timer keeps the process alive, like `setTimeout`.
 */
export function sleep(ms: number, options: { signal?: AbortSignal } & ErrorContext = {}): Promise<void> {
  const signal = checkSignal(options.signal);
  if (typeof ms !== 'number' || Number.isNaN(ms) || ms < 0) {
    throw new TypeError(`sleep: ms must be a non-negative number, got ${String(ms)}.`);
  }
  const context: ErrorContext = { adapter: options.adapter, operation: options.operation };
  if (signal?.aborted) return Promise.reject(abortError(signal, context));
  return new Promise<void>((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(signal, context));
    };
    const timer = setTimeout(
      () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      },
      Math.min(ms, 2_147_483_647),
    );
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** True for an `AbortSignal`, also one from another realm. */
export function isAbortSignal(value: unknown): value is AbortSignal {
  return (
    value instanceof AbortSignal ||
    (typeof value === 'object' &&
      value !== null &&
      typeof (value as AbortSignal).aborted === 'boolean' &&
      typeof (value as AbortSignal).addEventListener === 'function' &&
      typeof (value as AbortSignal).removeEventListener === 'function')
  );
}

function isNamedError(value: unknown, name: string): boolean {
  return typeof value === 'object' && value !== null && (value as { name?: unknown }).name === name;
}

function describe(context: ErrorContext): string {
  const parts = [context.adapter, context.operation].filter(Boolean);
  return parts.length ? `${parts.join(' ')}: ` : 'Call ';
}
