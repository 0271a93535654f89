import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rejection } from '../__test-utils__';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import type {
  CallOptions,
  HypervisorAdapterV1,
  SubscribeOptions,
} from '../hypervisor/v1/hypervisor-adapter-v1';
import { specV1Methods } from '../hypervisor/v1/methods';
import type { Guest, GuestEvent, GuestRef, Host } from '../hypervisor/v1/model';
import type { DeepReadonly, SupportsManifest } from '../hypervisor/v1/supports';
import type { Logger } from '../transport/types';
import { ConnectionStatus } from './connection';
import { isWrappedAdapter, wrapAdapter } from './wrap';

const supports: DeepReadonly<SupportsManifest> = {
  inventory: { host: true, guests: true, networks: false, storage: false, vlans: false },
  limits: false,
  labels: false,
  backups: false,
  events: { lifecycle: true },
};

const host: Host = {
  id: 'h1',
  name: 'host',
  hypervisor: { kind: 'Test', version: '1' },
  cpu: {},
  securityModels: [],
};

function guest(name: string): Guest {
  return {
    id: name,
    uuid: '6f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b',
    name,
    powerState: 'running',
    vcpus: 1,
    memoryBytes: 1024,
    disks: [],
    nics: [],
    isTemplate: false,
    tags: [],
  };
}

/** A small in-memory adapter whose behaviour each test sets. */
class MemoryAdapter implements HypervisorAdapterV1<'memory'> {
  readonly specificationVersion = 'v1' as const;
  readonly adapter = 'memory' as const;
  readonly supports = supports;
  readonly extra = 'kept';
  declare readonly limits?: HypervisorAdapterV1['limits'];
  closed = 0;
  lastOptions: CallOptions | undefined;
  behaviour: (options: CallOptions | undefined) => Promise<unknown> = async () => host;

  readonly inventory = {
    host: (options?: CallOptions) => {
      this.lastOptions = options;
      return this.behaviour(options) as Promise<Host>;
    },
    listGuests: async (_options?: CallOptions) => [guest('a'), guest('b')],
    getGuest: async (ref: GuestRef, options?: CallOptions) => {
      this.lastOptions = options;
      if (typeof ref !== 'string') throw new TypeError('string refs only here');
      return guest(ref);
    },
  };

  async close() {
    this.closed++;
  }

  async [Symbol.asyncDispose]() {
    await this.close();
  }
}

class EventsAdapter extends MemoryAdapter {
  failAfter: number | undefined;
  returned = 0;
  readonly eventsImpl = {
    subscribe: (options?: SubscribeOptions): AsyncIterable<GuestEvent> => {
      const self = this;
      return {
        [Symbol.asyncIterator]() {
          let i = 0;
          return {
            async next() {
              if (options?.signal?.aborted) return { done: true, value: undefined };
              if (self.failAfter !== undefined && i >= self.failAfter) throw new Error('stream broke');
              i++;
              return {
                done: false,
                value: { guest: { id: `g${i}`, name: `g${i}` }, type: 'started', at: new Date(0) },
              };
            },
            async return() {
              self.returned++;
              return { done: true, value: undefined };
            },
          };
        },
      };
    },
  };
}

function withEvents(): EventsAdapter & {
  events: { subscribe(o?: SubscribeOptions): AsyncIterable<GuestEvent> };
} {
  const a = new EventsAdapter();
  Object.defineProperty(a, 'events', { value: a.eventsImpl });
  return a as never;
}

function recordingLogger() {
  const lines: { message: string; meta?: Record<string, unknown> }[] = [];
  const logger: Logger = {
    debug: (message, meta) => lines.push({ message, meta }),
    info: () => {},
    warn: () => {},
    error: () => {},
  };
  return { logger, lines };
}

describe('wrapAdapter', () => {
  it('keeps identity fields, supports, extras and close', async () => {
    const inner = new MemoryAdapter();
    const wrapped = wrapAdapter(inner);
    expect(wrapped.specificationVersion).toBe('v1');
    expect(wrapped.adapter).toBe('memory');
    expect(wrapped.supports).toBe(inner.supports);
    expect(wrapped.extra).toBe('kept');
    expect(wrapped.limits).toBeUndefined();
    expect(isWrappedAdapter(wrapped)).toBe(true);
    expect(isWrappedAdapter(inner)).toBe(false);
    expect(wrapAdapter(wrapped)).toBe(wrapped);
    await wrapped.close();
    await wrapped[Symbol.asyncDispose]();
    expect(inner.closed).toBe(2);
  });

  it('passes the connection state through as an own property', () => {
    const inner = new MemoryAdapter();
    const connection = new ConnectionStatus({ adapter: 'memory' });
    Object.defineProperty(inner, 'connection', { value: connection });
    const wrapped: HypervisorAdapterV1 = wrapAdapter(inner);
    expect(Object.hasOwn(wrapped, 'connection')).toBe(true);
    expect(wrapped.connection).toBe(connection);
    expect((wrapAdapter(new MemoryAdapter()) as HypervisorAdapterV1).connection).toBeUndefined();
  });

  it('passes results through and a derived signal down', async () => {
    const inner = new MemoryAdapter();
    const wrapped = wrapAdapter(inner);
    const controller = new AbortController();
    expect(await wrapped.inventory?.host({ signal: controller.signal, timeoutMs: 5000 })).toBe(host);
    expect(inner.lastOptions?.signal).toBeInstanceOf(AbortSignal);
    expect(inner.lastOptions?.signal).not.toBe(controller.signal);
    expect(inner.lastOptions?.timeoutMs).toBe(5000);
    // Without options the adapter still gets a signal (the default timeout's).
    await wrapped.inventory?.host();
    expect(inner.lastOptions?.signal).toBeInstanceOf(AbortSignal);
    expect((await wrapped.inventory?.getGuest('x', {}))?.name).toBe('x');
    expect(inner.lastOptions?.signal).toBeInstanceOf(AbortSignal);
    expect((await wrapped.inventory?.listGuests())?.length).toBe(2);
  });

  it('rejects at once with ABORTED for an already-aborted signal, without calling the adapter', async () => {
    const inner = new MemoryAdapter();
    const spy = vi.fn(async () => host);
    inner.behaviour = spy;
    const wrapped = wrapAdapter(inner);
    const controller = new AbortController();
    controller.abort();
    const error = (await rejection(wrapped.inventory!.host({ signal: controller.signal }))) as HvkitError;
    expect(error.code).toBe('ABORTED');
    expect(error.adapter).toBe('memory');
    expect(error.operation).toBe('inventory.host');
    expect(spy).not.toHaveBeenCalled();
  });

  describe('with fake timers', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('applies the default timeout to a call that hangs', async () => {
      const inner = new MemoryAdapter();
      inner.behaviour = () => new Promise(() => {});
      const wrapped = wrapAdapter(inner, { defaultTimeoutMs: 1000 });
      let outcome: unknown;
      const caught = rejection(wrapped.inventory!.host()).then((e) => {
        outcome = e;
        return e;
      });
      await vi.advanceTimersByTimeAsync(1000);
      expect(inner.lastOptions?.signal?.aborted).toBe(true);
      // The adapter ignores its signal: the wrapper waits abortSettleMs (5 s) for it, then rejects.
      await vi.advanceTimersByTimeAsync(4999);
      expect(outcome).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      const error = (await caught) as HvkitError;
      expect(error.code).toBe('TIMEOUT');
      expect(error.operation).toBe('inventory.host');
      expect(inner.lastOptions?.signal?.aborted).toBe(true);
    });

    it('a deadline that passes while the adapter is reconnecting is CONNECTION_LOST (retryable), not TIMEOUT', async () => {
      const inner = new MemoryAdapter();
      const connection = new ConnectionStatus({ adapter: 'memory' });
      Object.defineProperty(inner, 'connection', { value: connection });
      inner.behaviour = () => new Promise(() => {});
      const wrapped = wrapAdapter(inner, { abortSettleMs: 0 });
      connection.update('reconnecting');
      const caught = rejection(wrapped.inventory!.host({ timeoutMs: 1000 }));
      await vi.advanceTimersByTimeAsync(1000);
      const error = (await caught) as HvkitError;
      expect(error.code).toBe('CONNECTION_LOST');
      expect(error.retryable).toBe(true);
      expect(error.message).toMatch(/still reconnecting after \d+ ms/);
      expect((error.cause as HvkitError).code).toBe('TIMEOUT');
      // Open again: a deadline is a plain TIMEOUT.
      connection.update('open');
      const again = rejection(wrapped.inventory!.host({ timeoutMs: 1000 }));
      await vi.advanceTimersByTimeAsync(1000);
      expect(((await again) as HvkitError).code).toBe('TIMEOUT');
    });

    it('a call timeoutMs overrides the default', async () => {
      const inner = new MemoryAdapter();
      inner.behaviour = () => new Promise(() => {});
      const wrapped = wrapAdapter(inner, { defaultTimeoutMs: 1000 });
      const caught = rejection(wrapped.inventory!.host({ timeoutMs: 5000 }));
      await vi.advanceTimersByTimeAsync(1000);
      expect(inner.lastOptions?.signal?.aborted).toBe(false);
      await vi.advanceTimersByTimeAsync(4000 + 5000);
      expect(((await caught) as HvkitError).code).toBe('TIMEOUT');
    });

    it('rejects with ABORTED when the caller aborts mid-call', async () => {
      const inner = new MemoryAdapter();
      inner.behaviour = () => new Promise(() => {});
      const wrapped = wrapAdapter(inner, { abortSettleMs: 0 });
      const controller = new AbortController();
      const caught = rejection(wrapped.inventory!.host({ signal: controller.signal }));
      await vi.advanceTimersByTimeAsync(10);
      controller.abort(new Error('stop'));
      // abortSettleMs 0: at once, without waiting for the adapter.
      const error = (await caught) as HvkitError;
      expect(error.code).toBe('ABORTED');
      expect(inner.lastOptions?.signal?.aborted).toBe(true);
      expect(vi.getTimerCount()).toBe(0);
    });
  });

  describe('abortSettleMs', () => {
    beforeEach(() => {
      vi.useFakeTimers();
    });
    afterEach(() => {
      vi.useRealTimers();
    });

    it('waits for an adapter that cleans up on abort, then rejects with ABORTED (not its own error)', async () => {
      const inner = new MemoryAdapter();
      let cleanedUp = false;
      inner.behaviour = (options) =>
        new Promise((_, reject) => {
          options?.signal?.addEventListener('abort', () => {
            setTimeout(() => {
              cleanedUp = true;
              reject(new Error('stream closed'));
            }, 200);
          });
        });
      const wrapped = wrapAdapter(inner);
      const controller = new AbortController();
      let settledAt: number | undefined;
      const caught = rejection(wrapped.inventory!.host({ signal: controller.signal })).then((e) => {
        settledAt = Date.now();
        return e;
      });
      await vi.advanceTimersByTimeAsync(10);
      const abortedAt = Date.now();
      controller.abort();
      await vi.advanceTimersByTimeAsync(199);
      expect(settledAt).toBeUndefined();
      await vi.advanceTimersByTimeAsync(1);
      const error = (await caught) as HvkitError;
      expect(error.code).toBe('ABORTED');
      expect(cleanedUp).toBe(true);
      expect((settledAt as number) - abortedAt).toBe(200);
      expect(vi.getTimerCount()).toBe(0);
    });

    it('rejects with misuse for a bad value', () => {
      expect(() => wrapAdapter(new MemoryAdapter(), { abortSettleMs: -1 })).toThrow(TypeError);
      expect(() => wrapAdapter(new MemoryAdapter(), { abortSettleMs: Number.POSITIVE_INFINITY })).toThrow(
        TypeError,
      );
    });
  });

  it('converts plain errors to REMOTE with cause, redacting secrets', async () => {
    const inner = new MemoryAdapter();
    const original = Object.assign(new Error('login failed for password=hunter2 and s3cr3t-token'), {
      code: 'ECONNRESET',
    });
    inner.behaviour = async () => {
      throw original;
    };
    const wrapped = wrapAdapter(inner, { secrets: ['s3cr3t-token'] });
    const error = (await rejection(wrapped.inventory!.host())) as HvkitError;
    expect(HvkitError.isInstance(error, 'REMOTE')).toBe(true);
    expect(error.cause).toBe(original);
    expect(error.adapter).toBe('memory');
    expect(error.operation).toBe('inventory.host');
    expect(error.backendCode).toBe('ECONNRESET');
    expect(error.message).not.toContain('hunter2');
    expect(error.message).not.toContain('s3cr3t-token');
    expect(error.message).toContain('[REDACTED]');
  });

  it('removes the secrets it was given from HvkitErrors the adapter throws, cause included', async () => {
    const inner = new MemoryAdapter();
    const cause = new Error('server echoed s3cr3t-token');
    const fault = hvkitError('AUTH_FAILED', 'login as root with s3cr3t-token refused', {
      backendMessage: 'InvalidLogin s3cr3t-token',
      details: { fault: { text: 's3cr3t-token' } },
      cause,
    });
    inner.behaviour = async () => {
      throw fault;
    };
    const wrapped = wrapAdapter(inner, { secrets: ['s3cr3t-token'] });
    const error = (await rejection(wrapped.inventory!.host())) as HvkitError;
    expect(error).toBe(fault);
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toBe('login as root with [REDACTED] refused');
    expect(error.backendMessage).toBe('InvalidLogin [REDACTED]');
    expect(JSON.stringify(error)).not.toContain('s3cr3t-token');
    expect(error.stack).not.toContain('s3cr3t-token');
    expect(cause.message).toBe('server echoed [REDACTED]');
    const closeFault = new Error('close failed: s3cr3t-token');
    inner.close = async () => {
      throw closeFault;
    };
    const closeError = (await rejection(wrapped.close())) as HvkitError;
    expect(closeError.message).not.toContain('s3cr3t-token');
    expect(closeFault.message).not.toContain('s3cr3t-token');
  });

  it('converts non-Error throws and DOMException aborts', async () => {
    const inner = new MemoryAdapter();
    inner.behaviour = async () => {
      throw 'a string';
    };
    const wrapped = wrapAdapter(inner);
    expect(((await rejection(wrapped.inventory!.host())) as HvkitError).code).toBe('REMOTE');
    inner.behaviour = async () => {
      throw new DOMException('gone', 'AbortError');
    };
    expect(((await rejection(wrapped.inventory!.host())) as HvkitError).code).toBe('ABORTED');
    inner.behaviour = async () => {
      throw new DOMException('slow', 'TimeoutError');
    };
    expect(((await rejection(wrapped.inventory!.host())) as HvkitError).code).toBe('TIMEOUT');
  });

  it('passes HvkitErrors and TypeErrors through unchanged', async () => {
    const inner = new MemoryAdapter();
    const notFound = hvkitError('NOT_FOUND', 'no guest');
    inner.behaviour = async () => {
      throw notFound;
    };
    const wrapped = wrapAdapter(inner);
    expect(await rejection(wrapped.inventory!.host())).toBe(notFound);
    const misuse = (await rejection(wrapped.inventory!.getGuest({ name: 'x' }))) as Error;
    expect(misuse).toBeInstanceOf(TypeError);
    expect(misuse.message).toBe('string refs only here');
  });

  it('rejects bad options with TypeError', async () => {
    const wrapped = wrapAdapter(new MemoryAdapter());
    await expect(wrapped.inventory!.host('nope' as unknown as CallOptions)).rejects.toThrow(TypeError);
    await expect(wrapped.inventory!.host({ signal: {} as AbortSignal })).rejects.toThrow(TypeError);
    await expect(wrapped.inventory!.host({ timeoutMs: -1 })).rejects.toThrow(TypeError);
    expect(() => wrapAdapter(new MemoryAdapter(), { defaultTimeoutMs: 0 })).toThrow(TypeError);
  });

  it('rejects adapters of another spec version', () => {
    const v2 = { ...new MemoryAdapter(), specificationVersion: 'v2' } as unknown as HypervisorAdapterV1;
    expect(() => wrapAdapter(v2)).toThrow(/specification version "v2"/);
  });

  it('logs one debug line per call with duration and outcome', async () => {
    const { logger, lines } = recordingLogger();
    const inner = new MemoryAdapter();
    const wrapped = wrapAdapter(inner, { logger });
    await wrapped.inventory!.host();
    inner.behaviour = async () => {
      throw hvkitError('NOT_FOUND', 'x');
    };
    await rejection(wrapped.inventory!.host());
    expect(lines).toHaveLength(2);
    expect(lines[0]?.meta).toMatchObject({ adapter: 'memory', operation: 'inventory.host', outcome: 'ok' });
    expect(typeof lines[0]?.meta?.durationMs).toBe('number');
    expect(lines[1]?.meta).toMatchObject({
      operation: 'inventory.host',
      outcome: 'error',
      code: 'NOT_FOUND',
    });
  });

  it('a throwing logger does not change the result', async () => {
    const logger: Logger = {
      debug: () => {
        throw new Error('logger broke');
      },
      info: () => {},
      warn: () => {},
      error: () => {},
    };
    expect(await wrapAdapter(new MemoryAdapter(), { logger }).inventory!.host()).toBe(host);
  });

  it('wraps class-based capabilities (methods on the prototype) with `this` intact', async () => {
    class Limits {
      private readonly value = { cpu: { weight: 100 } };
      async get(_ref: GuestRef, options?: CallOptions) {
        expect(options?.signal).toBeInstanceOf(AbortSignal);
        return this.value;
      }
      async set(_ref: GuestRef, limits: object, options?: CallOptions) {
        expect(options?.signal).toBeInstanceOf(AbortSignal);
        return { limits, appliesAt: 'live' as const, warnings: [] };
      }
    }
    const inner = new MemoryAdapter();
    Object.defineProperty(inner, 'limits', { value: new Limits() });
    const wrapped = wrapAdapter(inner);
    expect(await wrapped.limits!.get('g')).toEqual({ cpu: { weight: 100 } });
    // Options at index 2 even when the caller leaves it out.
    expect((await wrapped.limits!.set('g', { pids: { max: 5 } })).limits).toEqual({ pids: { max: 5 } });
  });
});

describe('wrapAdapter events.subscribe', () => {
  it('keeps the async iterable working', async () => {
    const inner = withEvents();
    const wrapped = wrapAdapter(inner);
    const seen: string[] = [];
    for await (const event of wrapped.events!.subscribe()) {
      seen.push(event.guest.id);
      if (seen.length === 3) break;
    }
    expect(seen).toEqual(['g1', 'g2', 'g3']);
    expect(inner.returned).toBe(1);
  });

  it('converts iteration errors', async () => {
    const inner = withEvents();
    inner.failAfter = 1;
    const wrapped = wrapAdapter(inner);
    const iterator = wrapped.events!.subscribe()[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    const error = (await rejection(iterator.next())) as HvkitError;
    expect(error.code).toBe('REMOTE');
    expect(error.operation).toBe('events.subscribe');
  });

  it('ends when the signal aborts, and rejects with ABORTED when already aborted', async () => {
    const inner = withEvents();
    const wrapped = wrapAdapter(inner);
    const controller = new AbortController();
    const iterator = wrapped.events!.subscribe({ signal: controller.signal })[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(false);
    controller.abort();
    expect((await iterator.next()).done).toBe(true);

    const pre = wrapped.events!.subscribe({ signal: controller.signal })[Symbol.asyncIterator]();
    expect(((await rejection(pre.next())) as HvkitError).code).toBe('ABORTED');
    expect((await pre.next()).done).toBe(true);
  });
});

describe('wrapAdapter covers every method of the spec', () => {
  /** Arguments before the options of each method: enough for a call, the adapter below ignores them. */
  const leading = (optionsIndex: number) => Array.from({ length: optionsIndex }, (_, i) => `arg${i}`);

  /**
   * An adapter with every method of SPEC_V1_METHODS. Each call records the options it got and waits for
   * their signal: it rejects with the signal's reason when it aborts, or resolves `'no-deadline'` after
   * 300 ms.
   */
  function everyMethodAdapter() {
    const seen = new Map<string, { options: CallOptions | undefined; args: unknown[] }>();
    const capabilities: Record<string, Record<string, unknown>> = {};
    for (const row of specV1Methods()) {
      capabilities[row.capability] ??= {};
      const cap = capabilities[row.capability]!;
      cap[row.method] =
        row.kind === 'stream'
          ? (options?: SubscribeOptions): AsyncIterable<GuestEvent> => {
              seen.set(row.operation, { options, args: [options] });
              return (async function* () {})();
            }
          : (...args: unknown[]) => {
              const options = args[row.optionsIndex] as CallOptions | undefined;
              seen.set(row.operation, { options, args });
              return new Promise((resolve, reject) => {
                const timer = setTimeout(() => resolve('no-deadline'), 300);
                options?.signal?.addEventListener('abort', () => {
                  clearTimeout(timer);
                  reject(options.signal?.reason);
                });
              });
            };
    }
    const adapter = {
      specificationVersion: 'v1' as const,
      adapter: 'every-method',
      supports,
      ...capabilities,
      close: async () => {},
      [Symbol.asyncDispose]: async () => {},
    } as unknown as HypervisorAdapterV1;
    return { adapter, seen };
  }

  it("passes every call method a derived signal at its options index, with the caller's other options", async () => {
    const { adapter, seen } = everyMethodAdapter();
    const wrapped = wrapAdapter(adapter) as unknown as Record<string, Record<string, Function>>;
    const controller = new AbortController();
    const calls = specV1Methods()
      .filter((row) => row.kind === 'call')
      .map((row) => {
        const pending = wrapped[row.capability]![row.method]!(...leading(row.optionsIndex), {
          signal: controller.signal,
          timeoutMs: 60_000,
          marker: row.operation,
        }).catch((e: unknown) => e);
        return { row, pending };
      });
    await new Promise((r) => setTimeout(r, 10));
    for (const row of specV1Methods()) {
      if (row.kind === 'stream') continue;
      const got = seen.get(row.operation);
      expect(got, `${row.operation} was not called through the wrapper`).toBeDefined();
      expect(got?.args.slice(0, row.optionsIndex), row.operation).toEqual(leading(row.optionsIndex));
      expect(got?.options?.signal, `${row.operation} got no signal`).toBeInstanceOf(AbortSignal);
      expect(got?.options?.signal, `${row.operation} got the caller's own signal`).not.toBe(
        controller.signal,
      );
      expect(got?.options, row.operation).toMatchObject({ timeoutMs: 60_000, marker: row.operation });
    }
    // Aborting the caller's signal reaches the adapter through the signal it was given.
    controller.abort();
    for (const { row, pending } of calls) {
      const error = (await pending) as HvkitError;
      expect(HvkitError.isInstance(error, 'ABORTED'), `${row.operation}: ${String(error)}`).toBe(true);
      expect(error.operation).toBe(row.operation);
      expect(seen.get(row.operation)?.options?.signal?.aborted, row.operation).toBe(true);
    }
  });

  it('puts every call method under the default deadline, except the long-running ones', async () => {
    const { adapter, seen } = everyMethodAdapter();
    const wrapped = wrapAdapter(adapter, { defaultTimeoutMs: 30, abortSettleMs: 0 }) as unknown as Record<
      string,
      Record<string, Function>
    >;
    const rows = specV1Methods().filter((row) => row.kind === 'call');
    const outcomes = await Promise.all(
      rows.map((row) =>
        wrapped[row.capability]![row.method]!(...leading(row.optionsIndex)).then(
          (value: unknown) => value,
          (error: unknown) => (HvkitError.isInstance(error) ? error.code : error),
        ),
      ),
    );
    for (const [i, row] of rows.entries()) {
      expect(outcomes[i], row.operation).toBe(row.longRunning ? 'no-deadline' : 'TIMEOUT');
      // The signal reaches the adapter even when the caller gives no options.
      expect(seen.get(row.operation)?.options?.signal, row.operation).toBeInstanceOf(AbortSignal);
    }
    expect(rows.filter((r) => r.longRunning).map((r) => r.operation)).toEqual([
      'backups.backup',
      'backups.backupHostConfig',
      'backups.restore',
    ]);
  });

  it('passes events.subscribe its options and refuses an aborted signal', async () => {
    const { adapter, seen } = everyMethodAdapter();
    const wrapped = wrapAdapter(adapter);
    const controller = new AbortController();
    const iterator = wrapped.events!.subscribe({ signal: controller.signal })[Symbol.asyncIterator]();
    expect((await iterator.next()).done).toBe(true);
    expect(seen.get('events.subscribe')?.options?.signal).toBe(controller.signal);
    const aborted = wrapped.events!.subscribe({ signal: AbortSignal.abort() })[Symbol.asyncIterator]();
    expect(((await rejection(aborted.next())) as HvkitError).code).toBe('ABORTED');
  });
});
