/**
 * How tests find real peers. `scripts/peers/start` starts them and writes their coordinates as
 * environment variables (also into `.peers/env`, which the shared vitest config loads).
 *
 * `HVKIT_LIVE` decides what a missing peer means:
 * - unset or `auto`: live tests run when their peer's variables are present and are skipped, with a
 *   reason, when they are not;
 * - `require`: a missing peer fails the run (CI);
 * - `off`: live tests are skipped even when peers are present.
 */

import { HvkitError } from '@hvkit/core';

/** The live-test policy read from `HVKIT_LIVE`. */
export type LiveMode = 'auto' | 'require' | 'off';

/** Reads `HVKIT_LIVE`. */
export function liveMode(env: NodeJS.ProcessEnv = process.env): LiveMode {
  const v = (env.HVKIT_LIVE ?? 'auto').toLowerCase();
  if (v === 'require' || v === 'required' || v === '1' || v === 'true') return 'require';
  if (v === 'off' || v === '0' || v === 'false' || v === 'skip') return 'off';
  return 'auto';
}

/** The result of looking up a peer: its variables, or why it is not available. */
export type PeerLookup<K extends string> =
  | { available: true; env: Record<K, string> }
  | { available: false; reason: string };

/**
 * Looks up a peer by the environment variables it needs. With `HVKIT_LIVE=require` a missing variable
 * throws, so the test file fails instead of skipping.
 *
 * @example
 * const sshd = livePeer('sshd', ['HVKIT_SSH_HOST', 'HVKIT_SSH_PORT']);
 * describe.skipIf(!sshd.available)(`live sshd${sshd.available ? '' : ` (skipped: ${sshd.reason})`}`, ...)
 */
export function livePeer<K extends string>(
  name: string,
  variables: readonly K[],
  env: NodeJS.ProcessEnv = process.env,
): PeerLookup<K> {
  const mode = liveMode(env);
  if (mode === 'off') return { available: false, reason: `HVKIT_LIVE=off, live ${name} tests disabled` };
  const missing = variables.filter((k) => !env[k]);
  if (missing.length > 0) {
    const reason = `peer ${name} not running (missing ${missing.join(', ')}; start it with scripts/peers/start ${name})`;
    if (mode === 'require') throw new Error(`HVKIT_LIVE=require: ${reason}`);
    return { available: false, reason };
  }
  const out = {} as Record<K, string>;
  for (const k of variables) out[k] = env[k] as string;
  return { available: true, env: out };
}

/**
 * For live tests of long-running behaviour: reads `iterable` (an `events.subscribe()` result) into `into`
 * until it ends, and resolves to `'done'` when it ended without an error, or to the `HvkitError` it threw
 * (anything else rejects), so a test can tell an iteration that ended silently from one that failed.
 */
export function drainEvents<T>(iterable: AsyncIterable<T>, into: T[]): Promise<'done' | HvkitError> {
  return (async () => {
    try {
      for await (const item of iterable) into.push(item);
      return 'done' as const;
    } catch (error) {
      if (HvkitError.isInstance(error)) return error;
      throw error;
    }
  })();
}

/** Polls `condition` every 25 ms until it holds; rejects with an Error naming `what` after `ms` (default 15 s). */
export async function waitUntil(what: string, condition: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} (${ms} ms)`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
