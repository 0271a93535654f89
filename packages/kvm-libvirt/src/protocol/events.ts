/**
 * Domain events: subscriptions (a bounded buffer of decoded events consumed with `for await`) and the
 * router of a client (callback registration and deregistration, dispatch of event messages).
 *
 * Subscriptions share registrations: all subscriptions to every domain's lifecycle events use one
 * CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY at the daemon (and the subscriptions to one domain one per
 * domain), and the router hands each event to every subscription of its registration (fan-out in the
 * client). The daemon's callback list is per connection, so after a reconnect the router registers again
 * and tells each subscription that events may have been missed (a {@link DomainEventResync} item).
 */

import { abortError, type HvkitError, type Logger } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
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
  /**
   * Events kept while the consumer is busy; beyond it the oldest are dropped, counted in `dropped`, and
   * a {@link DomainEventResync} item (`reason: 'overflow'`) comes before the events kept (default 1024).
   */
  bufferSize?: number;
  /** Ends the iteration and leaves the registration. */
  signal?: AbortSignal;
}

/**
 * An item of a subscription saying that events may have been missed since `since`: after the client
 * reconnected (`reconnected`; the registration was made again on the new connection) or after the
 * buffer overflowed (`overflow`).
 */
export interface DomainEventResync {
  type: 'resync';
  reason: 'reconnected' | 'overflow';
  since: Date;
}

/** What a subscription yields: lifecycle events, and resync notices. */
export type DomainEventItem = DomainLifecycleEvent | DomainEventResync;

/** True for a {@link DomainEventResync} item. */
export function isDomainEventResync(item: DomainEventItem): item is DomainEventResync {
  return (item as DomainEventResync).type === 'resync';
}

/** What a subscription needs from its router (package-internal). */
export interface SubscriptionChannel {
  /** The daemon's callback id of the shared registration (undefined while not registered). */
  callbackId(): number | undefined;
  /** Leaves the registration; the last one out deregisters at the daemon. */
  leave(options: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
}

/**
 * Lifecycle events of one subscription. Iterate with `for await`; the iteration ends after `close()`,
 * when the signal aborts or the client is closed, and throws `CONNECTION_LOST` when the connection is
 * lost and the client does not reconnect (or gives up). Across a reconnect it goes on, and yields a
 * {@link DomainEventResync} item first.
 */
export class DomainEventSubscription implements AsyncIterable<DomainEventItem> {
  private readonly buffer: DomainEventItem[] = [];
  private readonly bufferSize: number;
  private waiter: (() => void) | undefined;
  private ended = false;
  private error: HvkitError | undefined;
  private droppedCount = 0;
  private overflowSince: Date | undefined;
  private closing: Promise<void> | undefined;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = () => {
    this.close().catch(() => {});
  };

  /** @internal Created by `LibvirtRpcClient.subscribeDomainLifecycle()`. */
  constructor(
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

  /** The daemon's callback id of the registration this subscription shares (it changes on reconnect). */
  get callbackId(): number | undefined {
    return this.channel.callbackId();
  }

  /** Events dropped because the buffer was full. */
  get dropped(): number {
    return this.droppedCount;
  }

  /** True once the subscription ended. */
  get closed(): boolean {
    return this.ended;
  }

  /** @internal Delivers an event or a resync notice. */
  push(item: DomainEventItem): void {
    if (this.ended) return;
    if (this.buffer.length >= this.bufferSize) {
      this.buffer.shift();
      this.droppedCount++;
      this.overflowSince ??= new Date();
    }
    this.buffer.push(item);
    this.wake();
  }

  /** @internal Ends the iteration (with an error when the connection was lost for good). */
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
   * Leaves the registration (the last subscription out sends CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
   * bounded by `timeoutMs`, default 5000) and ends the iteration. Idempotent; a failing deregistration is
   * ignored when the connection is gone.
   */
  close(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (!this.closing) {
      this.end(undefined);
      this.closing = this.channel.leave({ signal: options.signal, timeoutMs: options.timeoutMs ?? 5000 });
    }
    return this.closing;
  }

  [Symbol.asyncIterator](): AsyncIterator<DomainEventItem> {
    return {
      next: async (): Promise<IteratorResult<DomainEventItem>> => {
        for (;;) {
          if (this.overflowSince !== undefined) {
            const since = this.overflowSince;
            this.overflowSince = undefined;
            return { done: false, value: { type: 'resync', reason: 'overflow', since } };
          }
          const item = this.buffer.shift();
          if (item !== undefined) return { done: false, value: item };
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
  /** `open`: calls go out; `reconnecting`: registrations wait for {@link DomainEventRouter.resume}. */
  state(): 'open' | 'reconnecting' | 'closing' | 'closed';
  /** Makes a call on the connection. */
  call<A, R>(procedure: RemoteProcedure<A, R>, args: A, options: CallOptions): Promise<R>;
  logger: Logger | undefined;
}

/** One registration at the daemon, shared by the subscriptions to the same events. */
interface Registration {
  key: string;
  domain: RemoteDomain | undefined;
  callbackId: number | undefined;
  subscribers: Set<DomainEventSubscription>;
  registering: Promise<void> | undefined;
  /** Set when the connection was lost while registered: the subscribers get a resync notice. */
  missedSince: Date | undefined;
}

/**
 * The event registrations of one client: registers and deregisters lifecycle callbacks (one per distinct
 * filter, shared by its subscriptions), routes the daemon's event messages to every subscription of
 * their registration, registers again after a reconnect, and ends the subscriptions when the client ends
 * (package-internal).
 */
export class DomainEventRouter {
  private readonly registrations = new Map<string, Registration>();
  private readonly byCallback = new Map<number, Registration>();
  private readonly eventCalls = new Set<Promise<void>>();
  private readonly orphanEvents: DomainLifecycleEvent[] = [];
  private received = 0;

  constructor(private readonly channel: EventChannel) {}

  /** Event messages received. */
  get eventsReceived(): number {
    return this.received;
  }

  /** Registrations at the daemon (or pending), for diagnostics and tests. */
  get registrationCount(): number {
    return this.registrations.size;
  }

  /**
   * See `LibvirtRpcClient.subscribeDomainLifecycle`. While the client reconnects, the subscription is
   * returned at once and registered with the others once the connection is back.
   */
  async subscribeLifecycle(
    options: DomainEventSubscriptionOptions & { domain?: RemoteDomain; timeoutMs?: number },
  ): Promise<DomainEventSubscription> {
    const key = options.domain === undefined ? '*' : `uuid:${options.domain.uuid.toLowerCase()}`;
    let reg = this.registrations.get(key);
    if (!reg) {
      reg = {
        key,
        domain: options.domain,
        callbackId: undefined,
        subscribers: new Set(),
        registering: undefined,
        missedSince: undefined,
      };
      this.registrations.set(key, reg);
    }
    const registration = reg;
    const subscription: DomainEventSubscription = new DomainEventSubscription(options, {
      callbackId: () => registration.callbackId,
      leave: (closeOptions) => this.leave(registration, subscription, closeOptions),
    });
    registration.subscribers.add(subscription);
    if (this.channel.state() === 'reconnecting') return subscription;
    try {
      await this.ensureRegistered(registration, options);
    } catch (error) {
      await subscription.close().catch(() => {});
      throw error;
    }
    return subscription;
  }

  /** Registers `reg` at the daemon unless it is, sharing a registration already running. */
  private async ensureRegistered(
    reg: Registration,
    options: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<void> {
    if (reg.callbackId !== undefined) return;
    reg.registering ??= this.register(reg, options.timeoutMs).finally(() => {
      reg.registering = undefined;
    });
    const running = reg.registering;
    if (!options.signal) return running;
    // The shared call goes on for the others when this caller gives up.
    const signal = options.signal;
    return new Promise<void>((resolve, reject) => {
      const onAbort = () =>
        reject(abortError(signal, { adapter: ADAPTER_ID, operation: 'rpc.subscribeDomainLifecycle' }));
      if (signal.aborted) onAbort();
      signal.addEventListener('abort', onAbort, { once: true });
      running.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
    });
  }

  private async register(reg: Registration, timeoutMs: number | undefined): Promise<void> {
    const callbackId = await this.trackEventCall(
      this.channel.call(
        remoteProcedures.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
        { eventId: DOMAIN_EVENT_ID.LIFECYCLE, dom: reg.domain ?? null },
        { timeoutMs },
      ),
    );
    if (this.registrations.get(reg.key) !== reg || reg.subscribers.size === 0) {
      // Everyone left meanwhile.
      await this.deregister(callbackId, { timeoutMs: 5000 }).catch(() => {});
      return;
    }
    // The notice comes before any event of the new registration.
    if (reg.missedSince !== undefined) {
      const notice: DomainEventResync = { type: 'resync', reason: 'reconnected', since: reg.missedSince };
      reg.missedSince = undefined;
      for (const s of reg.subscribers) s.push(notice);
    }
    reg.callbackId = callbackId;
    this.byCallback.set(callbackId, reg);
    for (let i = 0; i < this.orphanEvents.length; ) {
      const event = this.orphanEvents[i] as DomainLifecycleEvent;
      if (event.callbackId === callbackId) {
        this.orphanEvents.splice(i, 1);
        for (const s of reg.subscribers) s.push(event);
      } else i++;
    }
  }

  private async leave(
    reg: Registration,
    subscription: DomainEventSubscription,
    options: { signal?: AbortSignal; timeoutMs?: number },
  ): Promise<void> {
    reg.subscribers.delete(subscription);
    if (reg.subscribers.size > 0) return;
    if (this.registrations.get(reg.key) === reg) this.registrations.delete(reg.key);
    const callbackId = reg.callbackId;
    if (callbackId === undefined) return; // a running registration deregisters when it completes
    reg.callbackId = undefined;
    this.byCallback.delete(callbackId);
    if (this.channel.state() !== 'open') return;
    await this.deregister(callbackId, options);
  }

  private deregister(callbackId: number, options: { signal?: AbortSignal; timeoutMs?: number }) {
    return this.trackEventCall(
      this.channel.call(
        remoteProcedures.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
        { callbackId },
        options,
      ),
    );
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

  /** An event MESSAGE of the remote program: decoded and given to every subscription of its registration. */
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
    const reg = this.byCallback.get(event.callbackId);
    if (reg) {
      for (const s of reg.subscribers) s.push(event);
      return;
    }
    // An event can overtake the reply of its registration; keep a few for a moment.
    this.orphanEvents.push(event);
    if (this.orphanEvents.length > 64) this.orphanEvents.shift();
  }

  /**
   * The connection was lost and the client reconnects: the daemon forgot every registration. Each one
   * with subscribers remembers since when events may be missing.
   */
  suspend(lostAt: Date): void {
    this.byCallback.clear();
    this.orphanEvents.length = 0;
    for (const reg of this.registrations.values()) {
      reg.callbackId = undefined;
      reg.missedSince ??= lostAt;
    }
  }

  /**
   * The client reconnected: registers every registration again; its subscribers get a resync notice
   * first. A registration that fails for another reason than a new loss ends its subscriptions with the
   * error (never silently).
   */
  async resume(timeoutMs: number): Promise<void> {
    await Promise.all(
      [...this.registrations.values()].map(async (reg) => {
        try {
          await this.ensureRegistered(reg, { timeoutMs });
        } catch (error) {
          const e = error as HvkitError;
          if (e?.code === 'CONNECTION_LOST' && this.channel.state() !== 'closed') return;
          this.channel.logger?.warn('libvirt: registering events again failed', { error: String(error) });
          if (this.registrations.get(reg.key) === reg) this.registrations.delete(reg.key);
          for (const s of [...reg.subscribers]) s.end(e);
          reg.subscribers.clear();
        }
      }),
    );
  }

  /**
   * `close()` began: ends every subscription, then waits (at most `timeoutMs`) for running register and
   * deregister calls, so that CONNECT_CLOSE never races one in the daemon (see `trackEventCall`).
   */
  async closing(timeoutMs: number): Promise<void> {
    this.endAll(undefined);
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

  /** The client ended: every subscription ends (with `error` when the connection was lost for good). */
  endAll(error: HvkitError | undefined): void {
    const regs = [...this.registrations.values()];
    this.registrations.clear();
    this.byCallback.clear();
    for (const reg of regs) {
      for (const s of [...reg.subscribers]) s.end(error);
      reg.subscribers.clear();
    }
  }
}
