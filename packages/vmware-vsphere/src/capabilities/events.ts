/**
 * Guest lifecycle events from a vim25 change feed: a private PropertyCollector with a filter on every
 * VirtualMachine's `name` and `runtime.powerState` (through a ContainerView), long-polled with
 * `WaitForUpdatesEx`. The first update set is the baseline; later ones become events: `enter` → `defined`,
 * `leave` → `undefined`, power state changes → `started`, `stopped` or `suspended`.
 */

import {
  type EventsCapability,
  type GuestEvent,
  HvkitError,
  hvkitError,
  resyncEvent,
  type SubscribeOptions,
} from '@hvkit/core';
import type { VsphereContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { objectUpdateEvents } from '../mapping/events';
import { createContainerView, destroyView } from '../protocol/soap/property-collector';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import type { VimSession } from '../protocol/soap/session';

/** Seconds one WaitForUpdatesEx may wait on the server. */
export const EVENTS_MAX_WAIT_SECONDS = 10;

/** How long each cleanup call (DestroyPropertyCollector, DestroyView) may take; they run detached. */
const CLEANUP_TIMEOUT_MS = 5_000;

/**
 * True when the feed must be set up again after the session is back: the server was lost (or hung), or
 * it forgot the collector (a re-login happened since it was created, e.g. after a server restart).
 */
function feedLost(error: unknown, session: VimSession, generation: number): boolean {
  if (!HvkitError.isInstance(error)) return false;
  if (error.code === 'CONNECTION_LOST' || error.code === 'TIMEOUT') return true;
  return session.generation !== generation && (error.code === 'NOT_FOUND' || error.code === 'PROTOCOL');
}

/**
 * The change feed as an async iterable; ends when `signal` or `closed` aborts. When the server is lost
 * and the session reconnects, the feed is set up again and yields a `resync` event (events since the
 * loss may be missing); when the session does not reconnect (or gives up), the iteration throws
 * `CONNECTION_LOST`. Cleanup calls (destroying the collector and view) run detached, so they never delay
 * the end of the iteration or its error.
 */
export async function* vmEvents(
  session: VimSession,
  signal: AbortSignal | undefined,
  closed: AbortSignal,
): AsyncGenerator<GuestEvent> {
  const stop = signal ? AbortSignal.any([signal, closed]) : closed;
  if (signal?.aborted) return;
  if (closed.aborted || session.closed || session.connection.state === 'closed') {
    throw hvkitError('CONNECTION_LOST', 'events.subscribe: the vSphere adapter is closed.', {
      adapter: ADAPTER_ID,
      operation: 'events.subscribe',
      cause: session.connection.lastError,
      retryable: false,
    });
  }
  let missedSince: Date | undefined;
  for (;;) {
    let collector: MoRef | undefined;
    let view: MoRef | undefined;
    const release = () => {
      cleanUp(session, collector, view);
      collector = undefined;
      view = undefined;
    };
    const generation = session.generation;
    try {
      collector = await session.call<MoRef>(
        'CreatePropertyCollector',
        session.serviceContent.propertyCollector,
        undefined,
        { signal: stop },
      );
      view = await createContainerView(session, { types: ['VirtualMachine'] }, { signal: stop });
      await session.call(
        'CreateFilter',
        collector,
        {
          spec: {
            propSet: [{ type: 'VirtualMachine', pathSet: ['name', 'runtime.powerState'] }],
            objectSet: [
              {
                obj: view,
                skip: true,
                selectSet: [{ _type: 'TraversalSpec', type: 'ContainerView', path: 'view' }],
              },
            ],
          },
          partialUpdates: false,
        },
        { signal: stop },
      );
      const known = new Map<string, { name: string; state?: string }>();
      let version = '';
      let baseline = true;
      while (!stop.aborted) {
        const set = (await session.call(
          'WaitForUpdatesEx',
          collector,
          {
            version,
            options: { maxWaitSeconds: EVENTS_MAX_WAIT_SECONDS },
          },
          // The server holds the call up to maxWaitSeconds; the session's call timeout comes on top.
          { signal: stop, timeoutMs: EVENTS_MAX_WAIT_SECONDS * 1000 + session.callTimeoutMs },
        )) as DataObject | undefined;
        if (set && typeof set.version === 'string') version = set.version;
        const at = new Date();
        for (const filter of (set?.filterSet ?? []) as DataObject[]) {
          for (const update of (filter.objectSet ?? []) as DataObject[]) {
            const events = objectUpdateEvents(update, known, at);
            if (!baseline) yield* events;
          }
        }
        if (baseline && missedSince !== undefined) {
          // The feed is back: what happened while it was gone is not known.
          yield resyncEvent(missedSince, 'reconnected', at);
          missedSince = undefined;
        }
        baseline = false;
      }
      return;
    } catch (error) {
      release();
      if (stop.aborted) return;
      if (closed.aborted || session.closed) return;
      if (!feedLost(error, session, generation)) throw error;
      // Without reconnection a lost or hung server ends the feed with its error at once (a session that
      // logged in again after a restart is still set up again).
      if (!session.reconnects && (error as HvkitError).code !== 'NOT_FOUND') throw error;
      missedSince ??= new Date();
      // Reconnecting: wait until the session is back (no deadline: the subscription lives until its
      // signal aborts or the adapter closes). Not reconnecting: CONNECTION_LOST, not retryable.
      try {
        await session.waitUntilOpen({ signal: stop, operation: 'events.subscribe' });
      } catch (waitError) {
        if (stop.aborted) return;
        throw waitError;
      }
    } finally {
      release();
    }
  }
}

/** Destroys the collector and view in the background (bounded), never delaying the caller. */
function cleanUp(session: VimSession, collector: MoRef | undefined, view: MoRef | undefined): void {
  if (session.closed || session.connection.state !== 'open') return;
  if (collector)
    void session
      .call('DestroyPropertyCollector', collector, undefined, { timeoutMs: CLEANUP_TIMEOUT_MS })
      .catch(() => {});
  if (view) void destroyView(session, view, { timeoutMs: CLEANUP_TIMEOUT_MS }).catch(() => {});
}

/** The events capability of one adapter: the change feed ends when the adapter closes. */
export function createEvents(ctx: VsphereContext): EventsCapability {
  return {
    subscribe: (o: SubscribeOptions = {}) => vmEvents(ctx.session, o.signal, ctx.closeSignal),
  };
}
