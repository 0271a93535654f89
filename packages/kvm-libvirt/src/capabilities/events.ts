/**
 * Lifecycle events: a typed async iterator over DOMAIN_EVENT_CALLBACK_LIFECYCLE messages.
 */

import type { EventsCapability, GuestEvent, SubscribeOptions } from '@hvkit/core';
import { checkSignal, resyncEvent } from '@hvkit/core';
import { type AdapterContext, closedError } from '../context';
import { isDomainEventResync } from '../protocol/events';
import type { DomainLifecycleEvent } from '../protocol/remote-protocol';

/** `virDomainEventType` → hvkit event type. */
export const LIFECYCLE_EVENT_TYPES: readonly string[] = [
  'defined',
  'undefined',
  'started',
  'suspended',
  'resumed',
  'stopped',
  'shutdown',
  'pmsuspended',
  'crashed',
];

/** Detail names per event type (libvirt's `virDomainEvent*DetailType` enums). */
const DETAILS: Readonly<Record<string, readonly string[]>> = {
  defined: ['added', 'updated', 'renamed', 'from-snapshot'],
  undefined: ['removed', 'renamed'],
  started: ['booted', 'migrated', 'restored', 'from-snapshot', 'wakeup', 'recreated'],
  suspended: [
    'paused',
    'migrated',
    'ioerror',
    'watchdog',
    'restored',
    'from-snapshot',
    'api-error',
    'postcopy',
    'postcopy-failed',
  ],
  resumed: ['unpaused', 'migrated', 'from-snapshot', 'postcopy', 'postcopy-failed'],
  stopped: ['shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from-snapshot'],
  shutdown: ['finished', 'guest', 'host'],
  pmsuspended: ['memory', 'disk'],
  crashed: ['panicked', 'crashloaded'],
};

/** A libvirt lifecycle event → {@link GuestEvent}. */
export function toGuestEvent(event: DomainLifecycleEvent, at: Date = new Date()): GuestEvent {
  const type = LIFECYCLE_EVENT_TYPES[event.event] ?? `event-${event.event}`;
  const detail = DETAILS[type]?.[event.detail] ?? String(event.detail);
  const uuid = event.dom.uuid.toLowerCase();
  return { guest: { id: uuid, name: event.dom.name, uuid }, type, detail, at };
}

/**
 * The events capability. Subscriptions share one daemon registration (fan-out in the client). Across a
 * reconnect the iteration goes on and first yields a `resync` event (`@hvkit/core`'s `ResyncEvent`);
 * when the connection is lost for good it throws `CONNECTION_LOST`. It ends without an error only when
 * its signal aborts or the adapter is closed; on an adapter already closed it throws `CONNECTION_LOST`
 * (not retryable).
 */
export function createEvents(ctx: AdapterContext): EventsCapability {
  return {
    subscribe(options: SubscribeOptions = {}): AsyncIterable<GuestEvent> {
      const signal = checkSignal(options.signal);
      return {
        async *[Symbol.asyncIterator]() {
          if (signal?.aborted) return;
          if (ctx.closeSignal.aborted) throw closedError('events.subscribe');
          // The iteration ends without an error when the signal aborts or the adapter is being closed,
          // also while the registration is still in flight.
          const ended = () => signal?.aborted === true || ctx.closeSignal.aborted;
          let subscription: Awaited<ReturnType<typeof ctx.client.subscribeDomainLifecycle>>;
          try {
            subscription = await ctx.client.subscribeDomainLifecycle(signal ? { signal } : {});
          } catch (error) {
            if (ended()) return;
            throw error;
          }
          try {
            for await (const item of subscription) {
              yield isDomainEventResync(item) ? resyncEvent(item.since, item.reason) : toGuestEvent(item);
            }
          } catch (error) {
            if (!ended()) throw error;
          } finally {
            await subscription.close().catch(() => {});
          }
        },
      };
    },
  };
}
