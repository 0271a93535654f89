/**
 * Domain events: subscriptions (a bounded buffer of decoded events consumed with `for await`) and the
 * router of a connection (callback registration and deregistration, dispatch of event messages).
 */

import type { HvkitError, Logger } from '@hvkit/core';
import type { CallOptions } from './calls';
import { DOMAIN_EVENT_ID, REMOTE_PROC } from './constants';
import type { PacketHeader } from './packet';
import {
  type DomainLifecycleEvent,
  type RemoteProcedure,
  remoteMessages,
  remoteProcedures,
} from './remote-protocol';
import type { RemoteDomain } from './types';
import { XdrReader } from './xdr';

/** Options of a domain event subscription. */
export interface DomainEventSubscriptionOptions {
  /** Events kept while the consumer is busy; beyond it the oldest are dropped (default 1024). */
  bufferSize?: number;
  /** Ends the iteration and deregisters. */
  signal?: AbortSignal;
}

/** What a subscription needs from its connection (package-internal). */
export interface SubscriptionChannel {
  deregister(options: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
}

/**
 * Lifecycle events of one registration. Iterate with `for await`; the iteration ends after `close()`,
 * when the signal aborts or the client closes, and throws `CONNECTION_LOST` when the connection is lost.
 */
export class DomainEventSubscription implements AsyncIterable<DomainLifecycleEvent> {
  private readonly buffer: DomainLifecycleEvent[] = [];
  private readonly bufferSize: number;
  private waiter: (() => void) | undefined;
  private ended = false;
  private error: HvkitError | undefined;
  private droppedCount = 0;
  private closing: Promise<void> | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = () => {
    this.close().catch(() => {});
  };

  /** @internal Created by `LibvirtRpcClient.subscribeDomainLifecycle()`. */
  constructor(
    /** The daemon's callback id of this registration. */
    readonly callbackId: number,
    options: DomainEventSubscriptionOptions,
    private readonly channel: SubscriptionChannel,
  ) {
    this.bufferSize = options.bufferSize ?? 1024;
    if (!Number.isInteger(this.bufferSize) || this.bufferSize < 1) {
      throw new TypeError('bufferSize must be a positive integer.');
    }
    this.signal = options.signal;
    if (this.signal?.aborted) queueMicrotask(this.onAbort);
    else this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Events dropped because the buffer was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** True once the subscription ended. */
  get closed(): boolean {
    return this.ended;
  }

  /** @internal Delivers an event. */
  push(event: DomainLifecycleEvent): void {
    if (this.ended) return;
    if (this.buffer.length >= this.bufferSize) {
      this.buffer.shift();
      this.droppedCount++;
    }
    this.buffer.push(event);
    this.wake();
  }

  /** @internal Ends the iteration (with an error when the connection was lost). */
  end(error: HvkitError | undefined): void {
    if (this.ended) return;
    this.ended = true;
    this.error = error;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.wake();
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.();
  }

  /**
   * Deregisters (CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY, bounded by `timeoutMs`, default 5000) and
   * ends the iteration. Idempotent; a failing deregistration is ignored when the connection is gone.
   */
  close(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (!this.closing) {
      this.end(undefined);
      this.closing = this.channel.deregister({
        signal: options.signal,
        timeoutMs: options.timeoutMs ?? 5000,
      });
    }
    return this.closing;
  }

  [Symbol.asyncIterator](): AsyncIterator<DomainLifecycleEvent> {
    return {
      next: async (): Promise<IteratorResult<DomainLifecycleEvent>> => {
        for (;;) {
          const event = this.buffer.shift();
          if (event !== undefined) return { done: false, value: event };
          if (this.ended) {
            if (this.error) {
              const e = this.error;
              this.error = undefined;
              throw e;
            }
            return { done: true, value: undefined };
          }
          await new Promise<void>((resolve) => {
            this.waiter = resolve;
          });
        }
      },
      return: async () => {
        await this.close().catch(() => {});
        return { done: true, value: undefined };
      },
    };
  }
}

/** What the event router needs from its client (package-internal). */
export interface EventChannel {
  /** True while new calls may be made (the client is open). */
  isOpen(): boolean;
  /** Makes a call on the connection. */
  call<A, R>(procedure: RemoteProcedure<A, R>, args: A, options: CallOptions): Promise<R>;
  logger: Logger | undefined;
}

/**
 * The event registrations of one connection: registers and deregisters lifecycle callbacks, routes the
 * daemon's event messages to their subscription by callback id, and ends them when the connection ends
 * (package-internal).
 */
export class DomainEventRouter {
  private readonly subscriptions = new Map<number, DomainEventSubscription>();
  private readonly eventCalls = new Set<Promise<void>>();
  private readonly orphanEvents: DomainLifecycleEvent[] = [];
  private received = 0;

  constructor(private readonly channel: EventChannel) {}

  /** Event messages received. */
  get eventsReceived(): number {
    return this.received;
  }

  /** See `LibvirtRpcClient.subscribeDomainLifecycle`. */
  async subscribeLifecycle(
    options: DomainEventSubscriptionOptions & { domain?: RemoteDomain; timeoutMs?: number },
  ): Promise<DomainEventSubscription> {
    const callbackId = await this.trackEventCall(
      this.channel.call(
        remoteProcedures.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
        { eventId: DOMAIN_EVENT_ID.LIFECYCLE, dom: options.domain ?? null },
        { signal: options.signal, timeoutMs: options.timeoutMs },
      ),
    );
    const subscription = new DomainEventSubscription(callbackId, options, {
      deregister: async (closeOptions) => {
        this.subscriptions.delete(callbackId);
        if (!this.channel.isOpen()) return;
        await this.trackEventCall(
          this.channel.call(
            remoteProcedures.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
            { callbackId },
            closeOptions,
          ),
        );
      },
    });
    this.subscriptions.set(callbackId, subscription);
    for (let i = 0; i < this.orphanEvents.length; ) {
      const event = this.orphanEvents[i] as DomainLifecycleEvent;
      if (event.callbackId === callbackId) {
        this.orphanEvents.splice(i, 1);
        subscription.push(event);
      } else i++;
    }
    return subscription;
  }

  /**
   * Remembers an event register/deregister call until it settles. libvirtd 9.0 can crash (a NULL
   * dereference while it frees a client's callback list) when CONNECT_CLOSE or the socket's close is
   * processed while such a call is still running in another worker thread, so `close()` waits for them.
   */
  private trackEventCall<T>(call: Promise<T>): Promise<T> {
    const settled = call.then(
      () => undefined,
      () => undefined,
    );
    this.eventCalls.add(settled);
    void settled.then(() => this.eventCalls.delete(settled));
    return call;
  }

  /** An event MESSAGE of the remote program: decoded and given to its subscription. */
  dispatch(header: PacketHeader, payload: Uint8Array): void {
    this.received++;
    if (header.procedure !== REMOTE_PROC.DOMAIN_EVENT_CALLBACK_LIFECYCLE) {
      this.channel.logger?.debug('libvirt: unhandled event', { procedure: header.procedure });
      return;
    }
    let event: DomainLifecycleEvent;
    try {
      const r = new XdrReader(payload);
      event = remoteMessages.DOMAIN_EVENT_CALLBACK_LIFECYCLE.decodeMsg(r);
      r.finish('lifecycle event');
    } catch (error) {
      this.channel.logger?.warn('libvirt: undecodable lifecycle event dropped', { error: String(error) });
      return;
    }
    const subscription = this.subscriptions.get(event.callbackId);
    if (subscription) {
      subscription.push(event);
      return;
    }
    // An event can overtake the reply of its registration; keep a few for a moment.
    this.orphanEvents.push(event);
    if (this.orphanEvents.length > 64) this.orphanEvents.shift();
  }

  /**
   * `close()` began: ends every subscription, then waits (at most `timeoutMs`) for running register and
   * deregister calls, so that CONNECT_CLOSE never races one in the daemon (see `trackEventCall`).
   */
  async closing(timeoutMs: number): Promise<void> {
    for (const s of [...this.subscriptions.values()]) s.end(undefined);
    if (this.eventCalls.size > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        Promise.all([...this.eventCalls]),
        new Promise<void>((resolve) => {
          timer = setTimeout(resolve, timeoutMs);
          timer.unref?.();
        }),
      ]);
      clearTimeout(timer);
    }
  }

  /** The connection ended: every subscription ends (with `error` when it was lost). */
  endAll(error: HvkitError | undefined): void {
    const subscriptions = [...this.subscriptions.values()];
    this.subscriptions.clear();
    for (const s of subscriptions) s.end(error);
  }
}
