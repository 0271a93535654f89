/**
 * Guest lifecycle events from a vim25 change feed: a private PropertyCollector with a filter on every
 * VirtualMachine's `name` and `runtime.powerState` (through a ContainerView), long-polled with
 * `WaitForUpdatesEx`. The first update set is the baseline; later ones become events: `enter` → `defined`,
 * `leave` → `undefined`, power state changes → `started`, `stopped` or `suspended`.
 */

import { type EventsCapability, type GuestEvent, HvkitError, type SubscribeOptions } from '@hvkit/core';
import type { VsphereContext } from '../context';
import { objectUpdateEvents } from '../mapping/events';
import { createContainerView, destroyView } from '../protocol/soap/property-collector';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import type { VimSession } from '../protocol/soap/session';

/** Seconds one WaitForUpdatesEx may wait on the server. */
export const EVENTS_MAX_WAIT_SECONDS = 10;

/** The change feed as an async iterable; ends when `signal` or `closed` aborts. */
export async function* vmEvents(
  session: VimSession,
  signal: AbortSignal | undefined,
  closed: AbortSignal,
): AsyncGenerator<GuestEvent> {
  const stop = signal ? AbortSignal.any([signal, closed]) : closed;
  if (stop.aborted) return;
  let collector: MoRef | undefined;
  let view: MoRef | undefined;
  try {
    collector = await session.call<MoRef>(
      'CreatePropertyCollector',
      session.serviceContent.propertyCollector,
      undefined,
      {
        signal: stop,
      },
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
        { signal: stop, timeoutMs: (EVENTS_MAX_WAIT_SECONDS + 30) * 1000 },
      )) as DataObject | undefined;
      if (!set) continue;
      if (typeof set.version === 'string') version = set.version;
      const at = new Date();
      for (const filter of (set.filterSet ?? []) as DataObject[]) {
        for (const update of (filter.objectSet ?? []) as DataObject[]) {
          const events = objectUpdateEvents(update, known, at);
          if (!baseline) yield* events;
        }
      }
      baseline = false;
    }
  } catch (error) {
    if (
      stop.aborted &&
      (HvkitError.isInstance(error, 'ABORTED') ||
        HvkitError.isInstance(error, 'TIMEOUT') ||
        (error as Error)?.name === 'AbortError')
    )
      return;
    if (closed.aborted || session.closed) return;
    throw error;
  } finally {
    if (!session.closed) {
      if (collector)
        await session
          .call('DestroyPropertyCollector', collector, undefined, { timeoutMs: 5_000 })
          .catch(() => {});
      if (view) await destroyView(session, view, { timeoutMs: 5_000 }).catch(() => {});
    }
  }
}

/** The events capability of one adapter: the change feed ends when the adapter closes. */
export function createEvents(ctx: VsphereContext): EventsCapability {
  return {
    subscribe: (o: SubscribeOptions = {}) => vmEvents(ctx.session, o.signal, ctx.closeSignal),
  };
}
