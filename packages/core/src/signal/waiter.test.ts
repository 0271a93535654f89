import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rejection } from '../__test-utils__';
import type { HvkitError } from '../errors/hvkit-error';
import { backoffDelay, waitFor } from './waiter';

describe('backoffDelay', () => {
  it('grows exponentially between min and max', () => {
    const top = () => 0.999999;
    expect(backoffDelay(1, 100, 10_000, top)).toBe(100);
    expect(backoffDelay(2, 100, 10_000, top)).toBe(200);
    expect(backoffDelay(3, 100, 10_000, top)).toBe(400);
    expect(backoffDelay(8, 100, 10_000, top)).toBe(10_000);
    expect(backoffDelay(500, 100, 10_000, top)).toBe(10_000);
  });

  it('jitters down to the minimum', () => {
    expect(backoffDelay(5, 100, 10_000, () => 0)).toBe(100);
    expect(backoffDelay(5, 100, 10_000, () => 0.5)).toBe(850); // 100 + 0.5 * (1600 - 100)
  });
});

describe('waitFor', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('checks at once and returns the value when done', async () => {
    const check = vi.fn(async () => ({ done: true as const, value: 'ok' }));
    expect(await waitFor(check, { maxWaitTimeMs: 1000 })).toBe('ok');
    expect(check).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('polls with backoff until done', async () => {
    const times: number[] = [];
    const start = Date.now();
    let n = 0;
    const promise = waitFor(
      async (_signal, attempt) => {
        times.push(Date.now() - start);
        expect(attempt).toBe(++n);
        return n < 4 ? { done: false, reason: `progress ${n}` } : { done: true, value: n };
      },
      { minDelayMs: 100, maxDelayMs: 1000, maxWaitTimeMs: 60_000, random: () => 0.999999 },
    );
    await vi.advanceTimersByTimeAsync(2000);
    expect(await promise).toBe(4);
    // Delays: 100, 200, 400 (the ceiling doubles each time).
    expect(times).toEqual([0, 100, 300, 700]);
  });

  it('caps the delay at maxDelayMs', async () => {
    const times: number[] = [];
    const start = Date.now();
    const promise = waitFor(
      async () => {
        times.push(Date.now() - start);
        return times.length < 6 ? { done: false } : { done: true, value: true };
      },
      { minDelayMs: 100, maxDelayMs: 300, maxWaitTimeMs: 60_000, random: () => 0.999999 },
    );
    await vi.advanceTimersByTimeAsync(5000);
    await promise;
    const gaps = times.slice(1).map((t, i) => t - (times[i] as number));
    expect(gaps).toEqual([100, 200, 300, 300, 300]);
  });

  it('ends in TIMEOUT with the last reason', async () => {
    const check = vi.fn(async () => ({ done: false as const, reason: 'state=running' }));
    const caught = rejection(
      waitFor(check, {
        minDelayMs: 100,
        maxDelayMs: 100,
        maxWaitTimeMs: 1000,
        description: 'backup job 7',
        adapter: 'kvm-libvirt',
        operation: 'backups.backup',
      }),
    );
    await vi.advanceTimersByTimeAsync(1500);
    const error = (await caught) as HvkitError;
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toContain('backup job 7');
    expect(error.message).toContain('state=running');
    expect(error.adapter).toBe('kvm-libvirt');
    expect(error.details?.attempts).toBe(check.mock.calls.length);
    // It gave up instead of sleeping past the deadline: checks at 0, 100, ..., 900.
    expect(check.mock.calls.length).toBe(10);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('abandons a hanging check at the deadline with TIMEOUT', async () => {
    let checkSignal: AbortSignal | undefined;
    const caught = rejection(
      waitFor(
        (signal) => {
          checkSignal = signal;
          return new Promise<never>(() => {});
        },
        { maxWaitTimeMs: 5000 },
      ),
    );
    await vi.advanceTimersByTimeAsync(5000);
    expect(((await caught) as HvkitError).code).toBe('TIMEOUT');
    expect(checkSignal?.aborted).toBe(true);
  });

  it('ends in ABORTED when the caller aborts during a wait', async () => {
    const controller = new AbortController();
    const caught = rejection(
      waitFor(async () => ({ done: false }), {
        signal: controller.signal,
        minDelayMs: 1000,
        maxWaitTimeMs: 60_000,
      }),
    );
    await vi.advanceTimersByTimeAsync(500);
    controller.abort();
    expect(((await caught) as HvkitError).code).toBe('ABORTED');
    expect(vi.getTimerCount()).toBe(0);
  });

  it('ends in ABORTED for an already-aborted signal without checking', async () => {
    const controller = new AbortController();
    controller.abort();
    const check = vi.fn(async () => ({ done: true as const, value: 1 }));
    expect(
      ((await rejection(waitFor(check, { signal: controller.signal, maxWaitTimeMs: 100 }))) as HvkitError)
        .code,
    ).toBe('ABORTED');
    expect(check).not.toHaveBeenCalled();
  });

  it('passes errors of the check through', async () => {
    const boom = new Error('task failed');
    expect(await rejection(waitFor(async () => Promise.reject(boom), { maxWaitTimeMs: 100 }))).toBe(boom);
  });

  it('rejects bad options with TypeError', async () => {
    const check = async () => ({ done: true as const, value: 1 });
    await expect(waitFor(check, {} as { maxWaitTimeMs: number })).rejects.toThrow(TypeError);
    await expect(waitFor(check, { maxWaitTimeMs: Number.POSITIVE_INFINITY })).rejects.toThrow(TypeError);
    await expect(waitFor(check, { maxWaitTimeMs: 10, minDelayMs: 5, maxDelayMs: 1 })).rejects.toThrow(
      TypeError,
    );
    await expect(waitFor(null as unknown as typeof check, { maxWaitTimeMs: 10 })).rejects.toThrow(TypeError);
  });
});
