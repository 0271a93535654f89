import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rejection } from '../__test-utils__';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import {
  abortError,
  DEFAULT_TIMEOUT_MS,
  deriveSignal,
  raceAbort,
  sleep,
  throwIfAborted,
  watchDeadline,
  withDeadline,
} from './abort';

describe('throwIfAborted / abortError', () => {
  it('does nothing without an aborted signal', () => {
    expect(() => throwIfAborted(undefined)).not.toThrow();
    expect(() => throwIfAborted(new AbortController().signal)).not.toThrow();
  });

  it('throws ABORTED with the reason as cause and the context', () => {
    const controller = new AbortController();
    const reason = new Error('user pressed ctrl-c');
    controller.abort(reason);
    let thrown: unknown;
    try {
      throwIfAborted(controller.signal, { adapter: 'kvm-libvirt', operation: 'limits.set' });
    } catch (error) {
      thrown = error;
    }
    expect(HvkitError.isInstance(thrown, 'ABORTED')).toBe(true);
    const error = thrown as HvkitError;
    expect(error.name).toBe('AbortError');
    expect(error.cause).toBe(reason);
    expect(error.adapter).toBe('kvm-libvirt');
    expect(error.operation).toBe('limits.set');
    expect(error.message).toContain('limits.set');
  });

  it('keeps an HvkitError reason and maps TimeoutError reasons to TIMEOUT', () => {
    const timeout = hvkitError('TIMEOUT', 'too slow');
    const c1 = new AbortController();
    c1.abort(timeout);
    expect(abortError(c1.signal)).toBe(timeout);
    const c2 = new AbortController();
    c2.abort(new DOMException('t', 'TimeoutError'));
    expect(abortError(c2.signal).code).toBe('TIMEOUT');
  });
});

describe('deriveSignal', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('has a 30 s default', () => {
    expect(DEFAULT_TIMEOUT_MS).toBe(30_000);
    const derived = deriveSignal();
    expect(derived.timeoutMs).toBe(30_000);
    vi.advanceTimersByTime(29_999);
    expect(derived.signal.aborted).toBe(false);
    vi.advanceTimersByTime(1);
    expect(derived.signal.aborted).toBe(true);
    expect(HvkitError.isInstance(derived.signal.reason, 'TIMEOUT')).toBe(true);
    expect((derived.signal.reason as HvkitError).retryable).toBe(true);
  });

  it('uses timeoutMs over the default, and the default setting over 30 s', () => {
    expect(deriveSignal({ timeoutMs: 50 }, { defaultTimeoutMs: 1000 }).timeoutMs).toBe(50);
    const derived = deriveSignal({}, { defaultTimeoutMs: 1000, adapter: 'a', operation: 'op' });
    vi.advanceTimersByTime(1000);
    const reason = derived.signal.reason as HvkitError;
    expect(reason.code).toBe('TIMEOUT');
    expect(reason.adapter).toBe('a');
    expect(reason.operation).toBe('op');
    expect(reason.details).toEqual({ timeoutMs: 1000 });
  });

  it('Infinity disables the timer', () => {
    const derived = deriveSignal({ timeoutMs: Number.POSITIVE_INFINITY });
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10 ** 9);
    expect(derived.signal.aborted).toBe(false);
  });

  it('follows the parent signal with ABORTED', () => {
    const parent = new AbortController();
    const derived = deriveSignal({ signal: parent.signal, timeoutMs: 1000 });
    const reason = new Error('stop');
    parent.abort(reason);
    expect(derived.signal.aborted).toBe(true);
    expect((derived.signal.reason as HvkitError).code).toBe('ABORTED');
    expect((derived.signal.reason as HvkitError).cause).toBe(reason);
    // The timer is gone once it aborted.
    expect(vi.getTimerCount()).toBe(0);
  });

  it('is aborted at once for an already-aborted parent', () => {
    const parent = new AbortController();
    parent.abort();
    const derived = deriveSignal({ signal: parent.signal });
    expect(derived.signal.aborted).toBe(true);
    expect((derived.signal.reason as HvkitError).code).toBe('ABORTED');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('dispose clears the timer and the parent listener', () => {
    const parent = new AbortController();
    const add = vi.spyOn(parent.signal, 'addEventListener');
    const remove = vi.spyOn(parent.signal, 'removeEventListener');
    const derived = deriveSignal({ signal: parent.signal, timeoutMs: 1000 });
    expect(vi.getTimerCount()).toBe(1);
    expect(add).toHaveBeenCalledTimes(1);
    derived.dispose();
    derived.dispose();
    expect(vi.getTimerCount()).toBe(0);
    expect(remove).toHaveBeenCalledTimes(1);
    expect(remove.mock.calls[0]?.[1]).toBe(add.mock.calls[0]?.[1]);
    parent.abort();
    expect(derived.signal.aborted).toBe(false);
  });

  it('works with `using`', () => {
    {
      using derived = deriveSignal({ timeoutMs: 1000 });
      expect(derived.signal.aborted).toBe(false);
      expect(vi.getTimerCount()).toBe(1);
    }
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects misuse with TypeError', () => {
    for (const timeoutMs of [0, -1, Number.NaN, '10' as unknown as number]) {
      expect(() => deriveSignal({ timeoutMs })).toThrow(TypeError);
    }
    expect(() => deriveSignal({ signal: {} as AbortSignal })).toThrow(TypeError);
    expect(() => deriveSignal({}, { defaultTimeoutMs: -5 })).toThrow(TypeError);
  });
});

describe('deriveSignal timers are unref-ed', () => {
  it('does not keep the event loop alive', () => {
    const count = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    // Control: a ref-ed timer is counted.
    const before = count();
    const refed = setTimeout(() => {}, 60_000);
    expect(count()).toBe(before + 1);
    clearTimeout(refed);
    const derived = deriveSignal({ timeoutMs: 60_000 });
    // Node's active resources list counts only ref-ed timers.
    const timeouts = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    derived.dispose();
    const after = process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;
    expect(timeouts).toBe(after);
  });
});

describe('withDeadline', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('returns the result and cleans up', async () => {
    const result = await withDeadline(
      async (signal) => {
        expect(signal.aborted).toBe(false);
        return 42;
      },
      { timeoutMs: 1000 },
    );
    expect(result).toBe(42);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('passes errors of fn through unchanged', async () => {
    const boom = new Error('boom');
    expect(await rejection(withDeadline(async () => Promise.reject(boom), { timeoutMs: 1000 }))).toBe(boom);
    const sync = new TypeError('sync');
    expect(
      await rejection(
        withDeadline(() => {
          throw sync;
        }),
      ),
    ).toBe(sync);
  });

  it('rejects with TIMEOUT even when fn ignores its signal', async () => {
    const seen: AbortSignal[] = [];
    const promise = withDeadline(
      (signal) => {
        seen.push(signal);
        return new Promise<never>(() => {});
      },
      { timeoutMs: 500, operation: 'inventory.host' },
    );
    const caught = rejection(promise);
    await vi.advanceTimersByTimeAsync(500);
    const error = (await caught) as HvkitError;
    expect(error.code).toBe('TIMEOUT');
    expect(error.operation).toBe('inventory.host');
    expect(seen[0]?.aborted).toBe(true);
  });

  it('rejects with ABORTED when the caller aborts', async () => {
    const controller = new AbortController();
    const caught = rejection(withDeadline(() => new Promise<never>(() => {}), { signal: controller.signal }));
    controller.abort();
    expect(((await caught) as HvkitError).code).toBe('ABORTED');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not call fn for an already-aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const fn = vi.fn(async () => 1);
    const error = (await rejection(withDeadline(fn, { signal: controller.signal }))) as HvkitError;
    expect(error.code).toBe('ABORTED');
    expect(fn).not.toHaveBeenCalled();
  });
});

describe('raceAbort', () => {
  it('resolves and rejects with the promise', async () => {
    const controller = new AbortController();
    expect(await raceAbort(Promise.resolve(1), controller.signal)).toBe(1);
    const err = new Error('x');
    expect(await rejection(raceAbort(Promise.reject(err), controller.signal))).toBe(err);
    expect(await raceAbort(Promise.resolve(2), undefined)).toBe(2);
  });

  it('rejects at once on abort', async () => {
    const controller = new AbortController();
    const caught = rejection(raceAbort(new Promise(() => {}), controller.signal, { operation: 'x' }));
    controller.abort();
    const error = (await caught) as HvkitError;
    expect(error.code).toBe('ABORTED');
    expect(error.operation).toBe('x');
    const already = (await rejection(raceAbort(Promise.resolve(1), controller.signal))) as HvkitError;
    expect(already.code).toBe('ABORTED');
  });
});

describe('sleep', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('waits the given time', async () => {
    let done = false;
    const p = sleep(1000).then(() => {
      done = true;
    });
    await vi.advanceTimersByTimeAsync(999);
    expect(done).toBe(false);
    await vi.advanceTimersByTimeAsync(1);
    await p;
    expect(done).toBe(true);
  });

  it('rejects with ABORTED and clears its timer', async () => {
    const controller = new AbortController();
    const caught = rejection(sleep(10_000, { signal: controller.signal }));
    expect(vi.getTimerCount()).toBe(1);
    controller.abort();
    expect(((await caught) as HvkitError).code).toBe('ABORTED');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('rejects at once for an aborted signal and with TypeError for bad ms', async () => {
    const controller = new AbortController();
    controller.abort();
    expect(((await rejection(sleep(10, { signal: controller.signal }))) as HvkitError).code).toBe('ABORTED');
    expect(() => sleep(-1)).toThrow(TypeError);
  });
});

describe('watchDeadline', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('ends with the TIMEOUT deriveSignal gives, once', () => {
    const ends: HvkitError[] = [];
    watchDeadline({}, { defaultTimeoutMs: 1000, adapter: 'a', operation: 'op' }, (e) => ends.push(e));
    vi.advanceTimersByTime(999);
    expect(ends).toEqual([]);
    vi.advanceTimersByTime(1);
    expect(ends).toHaveLength(1);
    expect(ends[0]?.code).toBe('TIMEOUT');
    expect(ends[0]?.message).toBe('a op: timed out after 1000 ms.');
    expect(ends[0]?.details).toEqual({ timeoutMs: 1000 });
    const derived = deriveSignal({}, { defaultTimeoutMs: 1000, adapter: 'a', operation: 'op' });
    vi.advanceTimersByTime(1000);
    expect((derived.signal.reason as HvkitError).message).toBe(ends[0]?.message);
  });

  it('ends with ABORTED when the signal aborts, at once when it already has', () => {
    const controller = new AbortController();
    const ends: HvkitError[] = [];
    watchDeadline({ signal: controller.signal, timeoutMs: 1000 }, {}, (e) => ends.push(e));
    const reason = new Error('stop');
    controller.abort(reason);
    expect(ends.map((e) => e.code)).toEqual(['ABORTED']);
    expect(ends[0]?.cause).toBe(reason);
    expect(vi.getTimerCount()).toBe(0);
    const late: HvkitError[] = [];
    const stop = watchDeadline({ signal: controller.signal }, {}, (e) => late.push(e));
    expect(late.map((e) => e.code)).toEqual(['ABORTED']);
    stop();
  });

  it('stop() clears the timer and the watch; calls sharing a signal share one listener', () => {
    const controller = new AbortController();
    const added = vi.spyOn(controller.signal, 'addEventListener');
    const ends: string[] = [];
    const stops = Array.from({ length: 1000 }, (_, i) =>
      watchDeadline({ signal: controller.signal }, { defaultTimeoutMs: 5000 }, () => ends.push(String(i))),
    );
    expect(added).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(1000);
    for (const stop of stops.slice(0, 998)) stop();
    stops[0]?.(); // idempotent
    expect(vi.getTimerCount()).toBe(2);
    controller.abort();
    expect(ends).toEqual(['998', '999']);
    expect(vi.getTimerCount()).toBe(0);
    vi.advanceTimersByTime(10_000);
    expect(ends).toEqual(['998', '999']);
  });

  it('removes its listener when the last watch on a signal stops, and adds one again for a new watch', () => {
    const controller = new AbortController();
    const added = vi.spyOn(controller.signal, 'addEventListener');
    const removed = vi.spyOn(controller.signal, 'removeEventListener');
    const a = watchDeadline({ signal: controller.signal, timeoutMs: 1000 }, {}, () => {});
    const b = watchDeadline({ signal: controller.signal, timeoutMs: 1000 }, {}, () => {});
    a();
    expect(removed).not.toHaveBeenCalled();
    b();
    b();
    expect(removed).toHaveBeenCalledTimes(1);
    const ends: string[] = [];
    watchDeadline({ signal: controller.signal, timeoutMs: 1000 }, {}, (e) => ends.push(e.code));
    expect(added).toHaveBeenCalledTimes(2);
    controller.abort();
    expect(ends).toEqual(['ABORTED']);
  });

  it('a callback that throws does not keep the others from their abort', async () => {
    const controller = new AbortController();
    const ends: string[] = [];
    const uncaught: unknown[] = [];
    const realQueue = globalThis.queueMicrotask;
    const spy = vi.spyOn(globalThis, 'queueMicrotask').mockImplementation((cb) =>
      realQueue(() => {
        try {
          cb();
        } catch (error) {
          uncaught.push(error);
        }
      }),
    );
    try {
      watchDeadline({ signal: controller.signal }, {}, () => {
        ends.push('a');
        throw new Error('boom');
      });
      watchDeadline({ signal: controller.signal }, {}, () => ends.push('b'));
      controller.abort();
      expect(ends).toEqual(['a', 'b']);
      await new Promise((resolve) => realQueue(() => resolve(undefined)));
      expect(uncaught.map((e) => (e as Error).message)).toEqual(['boom']);
    } finally {
      spy.mockRestore();
    }
  });

  it('rejects misuse with TypeError', () => {
    expect(() => watchDeadline({ timeoutMs: 0 }, {}, () => {})).toThrow(TypeError);
    expect(() => watchDeadline({ signal: {} as AbortSignal }, {}, () => {})).toThrow(TypeError);
  });
});
