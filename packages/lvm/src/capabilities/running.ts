/**
 * Backups and restores that `close()` stops: each runs under a signal that also aborts when `close()` starts,
 * and is kept in the context's `running` set until it settled (its cleanup done), so `close()` can wait for
 * it. Started after `close()`, they fail `CONNECTION_LOST` (not retryable) without running.
 */

import { hvkitError } from '@hvkit/core';
import type { AdapterContext } from '../context';
import { ADAPTER_ID } from '../errors';

/** The error of a call made after `close()`. */
export function closedError(operation: string) {
  return hvkitError('CONNECTION_LOST', 'The adapter was closed.', {
    adapter: ADAPTER_ID,
    operation,
    retryable: false,
  });
}

/**
 * Runs `run` with a signal that aborts with the caller's `signal` or when `close()` starts, and tracks it in
 * `context.running` until it settled.
 */
export function trackRunning<T>(
  context: AdapterContext,
  operation: string,
  signal: AbortSignal | undefined,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  if (context.closeSignal.aborted) return Promise.reject(closedError(operation));
  const combined = signal ? AbortSignal.any([signal, context.closeSignal]) : context.closeSignal;
  const promise = run(combined);
  context.running.add(promise);
  const done = () => context.running.delete(promise);
  promise.then(done, done);
  return promise;
}

/**
 * Waits until every running backup and restore settled, at most `ms`; when they have not by then, logs a
 * warning naming how many still run (what they leave is for `backups.cleanup` once their lease expired).
 */
export async function settleRunning(context: AdapterContext, ms: number): Promise<void> {
  const running = [...context.running];
  if (running.length === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const settled = await Promise.race([
    Promise.allSettled(running).then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, ms, false);
    }),
  ]);
  clearTimeout(timer);
  if (!settled) {
    context.logger.warn(
      `lvm: close() stopped waiting after ${ms} ms (closeTimeoutMs) for ${context.running.size} running backup(s) or restore(s) to remove their snapshots; run backups.cleanup once their leases expired`,
    );
  }
}
