/**
 * Domain event subscriptions: a bounded buffer of decoded events consumed with `for await`.
 */

import type { HvkitError } from '@hvkit/core';
import type { DomainLifecycleEvent } from './remote-protocol';

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
