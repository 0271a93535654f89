/**
 * Guest lifecycle events from XAPI's `event.from`, the way Xen Orchestra's client keeps its object cache:
 * a starting token from `event.inject("pool", pool)` (or, on hosts without it, the token of an
 * `event.from` with an empty token) taken BEFORE the initial `VM.get_all_records`, so nothing falls
 * between the two; then `event.from(["vm"], token, timeout)` in a loop, with a call deadline longer than
 * the server-side timeout. `EVENTS_LOST` (the token fell out of the host's event log) means a full
 * refetch and a `resync` event (`overflow`); across a reconnect (a lost host, or a new session after a
 * toolstack restart) the same with `reconnected`.
 *
 * All subscriptions of one adapter share one loop (fan-out): it starts with the first subscription and
 * stops with the last. Each subscription has its own bounded buffer; a consumer that falls behind loses
 * the oldest events and gets a `resync` (`overflow`) first.
 */

import {
  checkSignal,
  type EventsCapability,
  type GuestEvent,
  HvkitError,
  resyncEvent,
  type SubscribeOptions,
} from '@hvkit/core';
import type { AdapterContext } from '../context';
import { type KnownVm, knownVm, vmEventToGuestEvents } from '../mapping/events';
import { normaliseRecord, normaliseRecords } from '../protocol/values';
import { XapiFloat } from '../protocol/wire';

/** Seconds one `event.from` may wait on the host (its `timeout` parameter). */
export const EVENTS_WAIT_SECONDS = 10;

/** Events a subscription keeps while its consumer is busy; beyond it the oldest are dropped. */
export const EVENTS_BUFFER_SIZE = 1024;

const OPERATION = 'events.subscribe';

/** One subscription's buffer. */
class Subscriber {
  readonly #queue: GuestEvent[] = [];
  #overflowSince: Date | undefined;
  #wake: (() => void) | undefined;
  error: unknown;
  failed = false;

  push(event: GuestEvent): void {
    if (this.#queue.length >= EVENTS_BUFFER_SIZE) {
      this.#queue.shift();
      this.#overflowSince ??= event.at;
    }
    this.#queue.push(event);
    this.wake();
  }

  fail(error: unknown): void {
    this.failed = true;
    this.error = error;
    this.wake();
  }

  take(): GuestEvent | undefined {
    if (this.#overflowSince !== undefined) {
      const since = this.#overflowSince;
      this.#overflowSince = undefined;
      return resyncEvent(since, 'overflow');
    }
    return this.#queue.shift();
  }

  wake(): void {
    const w = this.#wake;
    this.#wake = undefined;
    w?.();
  }

  wait(): Promise<void> {
    return new Promise((resolve) => {
      this.#wake = resolve;
    });
  }
}

/** The token to start from: `event.inject` on the pool, or the empty-token `event.from` on older hosts. */
async function startToken(ctx: AdapterContext, signal: AbortSignal): Promise<string> {
  const pools = (await ctx.client.call('pool.get_all', [], { signal })) as unknown;
  const pool = Array.isArray(pools) && typeof pools[0] === 'string' ? pools[0] : undefined;
  if (pool !== undefined) {
    try {
      return String(await ctx.client.call('event.inject', ['pool', pool], { signal }));
    } catch (error) {
      if (!HvkitError.isInstance(error) || error.backendCode !== 'MESSAGE_METHOD_UNKNOWN') throw error;
    }
  }
  const result = (await ctx.client.call('event.from', [['pool'], '', new XapiFloat(0)], {
    signal,
  })) as { token?: unknown };
  return String(result?.token ?? '');
}

interface XapiEventRecord {
  class?: unknown;
  operation?: unknown;
  ref?: unknown;
  snapshot?: unknown;
}

/** The events capability of one adapter: one shared `event.from` loop, fanned out to every subscription. */
export function createEvents(ctx: AdapterContext): EventsCapability {
  const subscribers = new Set<Subscriber>();
  let loop: AbortController | undefined;
  const broadcast = (event: GuestEvent) => {
    for (const s of subscribers) s.push(event);
  };

  /** The loop: baseline, then event.from until stopped; its failure ends every subscription. */
  const run = async (own: AbortController): Promise<void> => {
    const stop = AbortSignal.any([own.signal, ctx.closeSignal]);
    let missed: { since: Date; detail: 'reconnected' | 'overflow' } | undefined;
    try {
      for (;;) {
        const generation = ctx.client.generation;
        try {
          const first = await startToken(ctx, stop);
          const records = normaliseRecords(
            'VM',
            await ctx.client.call('VM.get_all_records', [], { signal: stop }),
          );
          const known = new Map<string, KnownVm>();
          for (const [ref, record] of records) known.set(ref, knownVm(record));
          if (missed) {
            broadcast(resyncEvent(missed.since, missed.detail));
            missed = undefined;
          }
          let token = first;
          for (;;) {
            let result: { events?: unknown; token?: unknown };
            try {
              result = (await ctx.client.call(
                'event.from',
                [['vm'], token, new XapiFloat(EVENTS_WAIT_SECONDS)],
                // The host holds the call up to EVENTS_WAIT_SECONDS; the call timeout comes on top.
                { signal: stop, timeoutMs: EVENTS_WAIT_SECONDS * 1000 + ctx.client.callTimeoutMs },
              )) as typeof result;
            } catch (error) {
              if (!HvkitError.isInstance(error, 'TIMEOUT') || stop.aborted) throw error;
              // A timed-out poll: the client checks whether the host still answers. If it does, poll
              // again from the same token (nothing was missed); if not, it is reconnecting or closed.
              await ctx.client.livenessChecked();
              if (ctx.client.connection.state === 'open') continue;
              throw error;
            }
            if (typeof result?.token === 'string') token = result.token;
            const at = new Date();
            for (const e of Array.isArray(result?.events) ? (result.events as XapiEventRecord[]) : []) {
              if (typeof e?.class !== 'string' || e.class.toLowerCase() !== 'vm') continue;
              if (typeof e.ref !== 'string' || typeof e.operation !== 'string') continue;
              const record =
                e.operation !== 'del' && e.snapshot !== undefined && e.snapshot !== null
                  ? normaliseRecord('VM', e.snapshot)
                  : undefined;
              for (const g of vmEventToGuestEvents(e.operation, e.ref, record, known, at)) broadcast(g);
            }
          }
        } catch (error) {
          if (stop.aborted) return;
          if (HvkitError.isInstance(error) && error.backendCode === 'EVENTS_LOST') {
            // A new session since the token was taken: the host restarted (or we reconnected).
            const detail =
              missed?.detail ?? (ctx.client.generation !== generation ? 'reconnected' : 'overflow');
            missed = { since: missed?.since ?? new Date(), detail };
            continue;
          }
          if (
            !HvkitError.isInstance(error) ||
            (error.code !== 'CONNECTION_LOST' && error.code !== 'TIMEOUT') ||
            ctx.client.connection.state === 'closed' ||
            !ctx.client.reconnects
          ) {
            throw ctx.client.connection.state === 'closed' ? ctx.client.closedError(OPERATION) : error;
          }
          missed = { since: missed?.since ?? new Date(), detail: 'reconnected' };
          // Reconnecting: wait for the host without a deadline (the subscription lives until its signal
          // aborts or the adapter closes); CONNECTION_LOST (not retryable) when the client gives up.
          await ctx.client.waitUntilOpen({ signal: stop, operation: OPERATION });
        }
      }
    } catch (error) {
      if (stop.aborted) return;
      for (const s of subscribers) s.fail(error);
    } finally {
      if (loop === own) loop = undefined;
    }
  };

  const ensureLoop = () => {
    if (loop !== undefined) return;
    const own = new AbortController();
    loop = own;
    void run(own);
  };

  return {
    subscribe(options: SubscribeOptions = {}): AsyncIterable<GuestEvent> {
      if (typeof options !== 'object' || options === null)
        throw new TypeError(`${OPERATION}: options must be an object.`);
      const signal = checkSignal(options.signal);
      return {
        async *[Symbol.asyncIterator]() {
          if (signal?.aborted) return;
          if (ctx.closeSignal.aborted || ctx.client.connection.state === 'closed')
            throw ctx.client.closedError(OPERATION);
          const me = new Subscriber();
          const onEnd = () => me.wake();
          signal?.addEventListener('abort', onEnd, { once: true });
          ctx.closeSignal.addEventListener('abort', onEnd, { once: true });
          subscribers.add(me);
          ensureLoop();
          try {
            for (;;) {
              if (signal?.aborted || ctx.closeSignal.aborted) return;
              const event = me.take();
              if (event !== undefined) {
                yield event;
                continue;
              }
              if (me.failed) throw me.error;
              await me.wait();
            }
          } finally {
            signal?.removeEventListener('abort', onEnd);
            ctx.closeSignal.removeEventListener('abort', onEnd);
            subscribers.delete(me);
            if (subscribers.size === 0) loop?.abort();
          }
        },
      };
    },
  };
}
