/**
 * Polling long operations (tasks, jobs) until they finish, with exponential backoff and jitter, ending in
 * `TIMEOUT` or `ABORTED` (the shape of smithy's util-waiter).
 */

import { hvkitError } from '../errors/hvkit-error';
import { abortError, checkSignal, deriveSignal, type ErrorContext, raceAbort, sleep } from './abort';

/** What one check of {@link waitFor} found. */
export type WaiterCheckResult<T> = { done: true; value: T } | { done: false; reason?: string };

/** Options of {@link waitFor}. */
export interface WaiterOptions extends ErrorContext {
  signal?: AbortSignal;
  /** Shortest wait between checks (default 250 ms). */
  minDelayMs?: number;
  /** Longest wait between checks (default 30 s). */
  maxDelayMs?: number;
  /** Total time after which waiting fails with `TIMEOUT`; also bounds a check that hangs. Required. */
  maxWaitTimeMs: number;
  /** Source of randomness for the jitter, in [0, 1) (default `Math.random`). */
  random?: () => number;
  /** What is being waited for, for the `TIMEOUT` message (e.g. `backup job 7`). */
  description?: string;
}

/**
 * The delay before check number `attempt + 1` (attempt ≥ 1): a random value between `minDelayMs` and
 * `min(maxDelayMs, minDelayMs × 2^(attempt − 1))`.
 */
export function backoffDelay(
  attempt: number,
  minDelayMs: number,
  maxDelayMs: number,
  random: () => number,
): number {
  const exponent = Math.min(Math.max(attempt - 1, 0), 52);
  const ceiling = Math.min(maxDelayMs, minDelayMs * 2 ** exponent);
  if (ceiling <= minDelayMs) return minDelayMs;
  return Math.round(minDelayMs + random() * (ceiling - minDelayMs));
}

/**
 * Calls `check` until it reports `{ done: true, value }`, then resolves with the value. The first check runs
 * at once; later ones after an exponential backoff. Each check receives a signal that aborts at the deadline
 * or when the caller aborts; a check that ignores it is abandoned at that moment.
 *
 * Ends with `TIMEOUT` when `maxWaitTimeMs` has passed (or the next check would come after it), with
 * `ABORTED` when `signal` aborts, or with whatever `check` throws.
 *
 * @throws TypeError for bad options.
 */
export async function waitFor<T>(
  check: (signal: AbortSignal, attempt: number) => Promise<WaiterCheckResult<T>> | WaiterCheckResult<T>,
  options: WaiterOptions,
): Promise<T> {
  if (typeof check !== 'function') throw new TypeError('waitFor: check must be a function.');
  const minDelayMs = options.minDelayMs ?? 250;
  const maxDelayMs = options.maxDelayMs ?? 30_000;
  const { maxWaitTimeMs } = options;
  if (!(typeof minDelayMs === 'number' && minDelayMs >= 0 && Number.isFinite(minDelayMs))) {
    throw new TypeError('waitFor: minDelayMs must be a finite non-negative number.');
  }
  if (!(typeof maxDelayMs === 'number' && maxDelayMs >= minDelayMs && Number.isFinite(maxDelayMs))) {
    throw new TypeError('waitFor: maxDelayMs must be a finite number not below minDelayMs.');
  }
  if (!(typeof maxWaitTimeMs === 'number' && maxWaitTimeMs > 0 && Number.isFinite(maxWaitTimeMs))) {
    throw new TypeError('waitFor: maxWaitTimeMs must be a finite positive number.');
  }
  checkSignal(options.signal);
  const random = options.random ?? Math.random;
  const context: ErrorContext = { adapter: options.adapter, operation: options.operation };
  const what = options.description ?? 'operation';
  const started = Date.now();
  let attempt = 0;
  let lastReason: string | undefined;

  const timeout = () =>
    hvkitError(
      'TIMEOUT',
      `Waiting for ${what} timed out after ${maxWaitTimeMs} ms (${attempt} checks${lastReason ? `; last: ${lastReason}` : ''}).`,
      { ...context, details: { maxWaitTimeMs, attempts: attempt, lastReason } },
    );

  const derived = deriveSignal({ signal: options.signal, timeoutMs: maxWaitTimeMs }, context);
  try {
    const { signal } = derived;
    for (;;) {
      if (signal.aborted) {
        if (!options.signal?.aborted) throw timeout();
        throw abortError(signal, context);
      }
      attempt++;
      let result: WaiterCheckResult<T>;
      try {
        result = await raceAbort(
          Promise.resolve().then(() => check(signal, attempt)),
          signal,
          context,
        );
      } catch (error) {
        if (signal.aborted && !options.signal?.aborted) throw timeout();
        throw error;
      }
      if (result.done) return result.value;
      lastReason = result.reason;
      const delay = backoffDelay(attempt, minDelayMs, maxDelayMs, random);
      if (Date.now() - started + delay >= maxWaitTimeMs) throw timeout();
      try {
        await sleep(delay, { signal, ...context });
      } catch (error) {
        if (signal.aborted && !options.signal?.aborted) throw timeout();
        throw error;
      }
    }
  } finally {
    derived.dispose();
  }
}
