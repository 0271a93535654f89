/**
 * Retrying calls that failed with a retryable HvkitError. Adapters classify errors (`retryable`, and a
 * `details.retryAfterMs` hint from e.g. an HTTP `Retry-After` header); the core decides when to retry.
 */

import { HvkitError } from '../errors/hvkit-error';
import { checkSignal, type ErrorContext, sleep, throwIfAborted } from './abort';

/** Information passed to {@link RetryOptions.onRetry}. */
export interface RetryEvent {
  /** The attempt that failed (1-based). */
  attempt: number;
  /** Milliseconds before the next attempt. */
  delayMs: number;
  error: HvkitError;
}

/** Options of {@link retry}. */
export interface RetryOptions extends ErrorContext {
  signal?: AbortSignal;
  /** Total attempts including the first (default 3). */
  maxAttempts?: number;
  /** Delay ceiling before the second attempt (default 250 ms); multiplied by `backoffFactor` each time. */
  initialDelayMs?: number;
  /** Largest computed delay (default 10 s). */
  maxDelayMs?: number;
  /** Growth of the delay ceiling per attempt (default 2). */
  backoffFactor?: number;
  /**
   * Largest `retryAfterMs` hint that is honoured (default 60 s). When the server asks for a longer wait the
   * error is rethrown at once rather than retried early.
   */
  maxRetryAfterMs?: number;
  /** Source of randomness for the jitter, in [0, 1) (default `Math.random`). */
  random?: () => number;
  /** Called before each wait, e.g. for logging. */
  onRetry?: (event: RetryEvent) => void;
}

/** Reads the retry hint adapters put in `error.details.retryAfterMs`, if any. */
export function retryAfterMsOf(error: unknown): number | undefined {
  if (!HvkitError.isInstance(error)) return undefined;
  const hint = error.details?.retryAfterMs;
  return typeof hint === 'number' && Number.isFinite(hint) && hint >= 0 ? hint : undefined;
}

/**
 * Parses an HTTP `Retry-After` header (delay in seconds, or an HTTP date) into milliseconds from `now`.
 * Returns `undefined` when absent or unreadable.
 */
export function parseRetryAfter(
  header: string | null | undefined,
  now: number = Date.now(),
): number | undefined {
  if (header === null || header === undefined) return undefined;
  const text = header.trim();
  if (/^\d+(?:\.\d+)?$/.test(text)) return Math.round(Number(text) * 1000);
  const at = Date.parse(text);
  if (Number.isNaN(at)) return undefined;
  return Math.max(0, at - now);
}

/**
 * Calls `fn` and retries it while it fails with an HvkitError whose `retryable` is true, up to
 * `maxAttempts` attempts in all. Between attempts it waits `details.retryAfterMs` when the error carries
 * that hint, else a jittered exponential delay between half and all of
 * `min(maxDelayMs, initialDelayMs × backoffFactor^(attempt − 1))`.
 *
 * Anything else (non-retryable HvkitErrors, other errors, TypeErrors) is rethrown at once, and so is the
 * last retryable error. An abort during a wait rejects with `ABORTED`.
 */
export async function retry<T>(fn: (attempt: number) => Promise<T>, options: RetryOptions = {}): Promise<T> {
  if (typeof fn !== 'function') throw new TypeError('retry: fn must be a function.');
  const signal = checkSignal(options.signal);
  const maxAttempts = options.maxAttempts ?? 3;
  const initialDelayMs = options.initialDelayMs ?? 250;
  const maxDelayMs = options.maxDelayMs ?? 10_000;
  const backoffFactor = options.backoffFactor ?? 2;
  const maxRetryAfterMs = options.maxRetryAfterMs ?? 60_000;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1) {
    throw new TypeError('retry: maxAttempts must be a positive integer.');
  }
  for (const [name, value] of [
    ['initialDelayMs', initialDelayMs],
    ['maxDelayMs', maxDelayMs],
    ['maxRetryAfterMs', maxRetryAfterMs],
  ] as const) {
    if (typeof value !== 'number' || !(value >= 0) || !Number.isFinite(value)) {
      throw new TypeError(`retry: ${name} must be a finite non-negative number.`);
    }
  }
  if (typeof backoffFactor !== 'number' || !(backoffFactor >= 1) || !Number.isFinite(backoffFactor)) {
    throw new TypeError('retry: backoffFactor must be a finite number of at least 1.');
  }
  const random = options.random ?? Math.random;
  const context: ErrorContext = { adapter: options.adapter, operation: options.operation };

  for (let attempt = 1; ; attempt++) {
    throwIfAborted(signal, context);
    try {
      return await fn(attempt);
    } catch (error) {
      if (!HvkitError.isInstance(error) || !error.retryable || attempt >= maxAttempts) throw error;
      if (signal?.aborted) throw error;
      const hint = retryAfterMsOf(error);
      let delayMs: number;
      if (hint !== undefined) {
        if (hint > maxRetryAfterMs) throw error;
        delayMs = hint;
      } else {
        const ceiling = Math.min(maxDelayMs, initialDelayMs * backoffFactor ** (attempt - 1));
        delayMs = Math.round(ceiling / 2 + random() * (ceiling / 2));
      }
      options.onRetry?.({ attempt, delayMs, error });
      await sleep(delayMs, { signal, ...context });
    }
  }
}
