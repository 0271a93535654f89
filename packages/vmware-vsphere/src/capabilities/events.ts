/**
 * Guest lifecycle events from a vim25 change feed: a private PropertyCollector with a filter on every
 * VirtualMachine's `name` and `runtime.powerState` (through a ContainerView), long-polled with
 * `WaitForUpdatesEx`. The first update set is the baseline; later ones become events: `enter` → `defined`,
 * `leave` → `undefined`, power state changes → `started`, `stopped` or `suspended`.
 */

import { type GuestEvent, HvkitError } from '@hvkit/core';
import { createContainerView, destroyView } from './soap/property-collector';
import type { DataObject, MoRef } from './soap/schema';
import type { VimSession } from './soap/session';

/** Seconds one WaitForUpdatesEx may wait on the server. */
export const EVENTS_MAX_WAIT_SECONDS = 10;

const POWER_EVENT: Record<string, string> = {
  poweredOn: 'started',
  poweredOff: 'stopped',
  suspended: 'suspended',
};

/** Maps one ObjectUpdate to events, updating the known names and states. */
export function objectUpdateEvents(
  update: DataObject,
  known: Map<string, { name: string; state?: string }>,
  at: Date,
): GuestEvent[] {
  const obj = update.obj as MoRef | undefined;
  if (!obj?.value) return [];
  const changes = (update.changeSet ?? []) as DataObject[];
  const value = (name: string) => changes.find((c) => c.name === name)?.val;
  const before = known.get(obj.value);
  const name = typeof value('name') === 'string' ? (value('name') as string) : (before?.name ?? obj.value);
  const state =
    typeof value('runtime.powerState') === 'string' ? (value('runtime.powerState') as string) : before?.state;
  const guest = { id: obj.value, name };
  if (update.kind === 'leave') {
    known.delete(obj.value);
    return [{ guest, type: 'undefined', at }];
  }
  known.set(obj.value, { name, ...(state !== undefined ? { state } : {}) });
  if (update.kind === 'enter') return [{ guest, type: 'defined', at }];
  if (state !== undefined && state !== before?.state && POWER_EVENT[state])
    return [{ guest, type: POWER_EVENT[state] as string, detail: state, at }];
  return [];
}

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
