import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { rejection } from '../__test-utils__';
import { type HvkitError, hvkitError } from '../errors/hvkit-error';
import { parseRetryAfter, type RetryEvent, retry, retryAfterMsOf } from './retry';

describe('retry', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  it('returns at once on success', async () => {
    const fn = vi.fn(async () => 'ok');
    expect(await retry(fn)).toBe('ok');
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('retries retryable HvkitErrors with growing jittered delays', async () => {
    const events: RetryEvent[] = [];
    let calls = 0;
    const promise = retry(
      async (attempt) => {
        calls++;
        expect(attempt).toBe(calls);
        if (calls < 4) throw hvkitError('CONNECTION_LOST', 'reset');
        return calls;
      },
      { maxAttempts: 5, initialDelayMs: 100, random: () => 0.999999, onRetry: (e) => events.push(e) },
    );
    await vi.advanceTimersByTimeAsync(10_000);
    expect(await promise).toBe(4);
    expect(events.map((e) => e.delayMs)).toEqual([100, 200, 400]);
    expect(events.map((e) => e.attempt)).toEqual([1, 2, 3]);
  });

  it('uses half to all of the ceiling as jitter and caps at maxDelayMs', async () => {
    const events: RetryEvent[] = [];
    const promise = retry(
      async () => {
        throw hvkitError('TIMEOUT', 'slow');
      },
      {
        maxAttempts: 6,
        initialDelayMs: 1000,
        maxDelayMs: 3000,
        random: () => 0,
        onRetry: (e) => events.push(e),
      },
    );
    const caught = rejection(promise);
    await vi.advanceTimersByTimeAsync(60_000);
    expect(((await caught) as HvkitError).code).toBe('TIMEOUT');
    expect(events.map((e) => e.delayMs)).toEqual([500, 1000, 1500, 1500, 1500]);
  });

  it('gives up after maxAttempts with the last error', async () => {
    let n = 0;
    const caught = rejection(
      retry(
        async () => {
          n++;
          throw hvkitError('CONNECTION_LOST', `try ${n}`);
        },
        { maxAttempts: 3, initialDelayMs: 10 },
      ),
    );
    await vi.advanceTimersByTimeAsync(1000);
    expect(((await caught) as HvkitError).message).toBe('try 3');
    expect(n).toBe(3);
  });

  it('does not retry non-retryable errors, plain errors or TypeErrors', async () => {
    for (const error of [
      hvkitError('NOT_FOUND', 'x'),
      new Error('plain'),
      new TypeError('misuse'),
      hvkitError('REMOTE', 'r'),
    ]) {
      const fn = vi.fn(async () => {
        throw error;
      });
      expect(await rejection(retry(fn, { maxAttempts: 5 }))).toBe(error);
      expect(fn).toHaveBeenCalledTimes(1);
    }
    // retryable can be set on any code.
    const fn = vi.fn(async () => {
      throw hvkitError('TIMEOUT', 'explicitly not retryable', { retryable: false });
    });
    await rejection(retry(fn, { maxAttempts: 5 }));
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('honours a retryAfterMs hint', async () => {
    const events: RetryEvent[] = [];
    let n = 0;
    const started = Date.now();
    const promise = retry(
      async () => {
        if (++n === 1)
          throw hvkitError('REMOTE', 'busy', { retryable: true, details: { retryAfterMs: 7000 } });
        return Date.now() - started;
      },
      { initialDelayMs: 10, onRetry: (e) => events.push(e) },
    );
    await vi.advanceTimersByTimeAsync(6999);
    expect(n).toBe(1);
    await vi.advanceTimersByTimeAsync(1);
    expect(await promise).toBe(7000);
    expect(events[0]?.delayMs).toBe(7000);
  });

  it('rethrows at once when the hint is longer than maxRetryAfterMs', async () => {
    const error = hvkitError('REMOTE', 'come back in an hour', {
      retryable: true,
      details: { retryAfterMs: 3_600_000 },
    });
    const fn = vi.fn(async () => {
      throw error;
    });
    expect(await rejection(retry(fn, { maxRetryAfterMs: 60_000 }))).toBe(error);
    expect(fn).toHaveBeenCalledTimes(1);
  });

  it('stops with ABORTED when aborted during the wait', async () => {
    const controller = new AbortController();
    const fn = vi.fn(async () => {
      throw hvkitError('CONNECTION_LOST', 'x');
    });
    const caught = rejection(retry(fn, { signal: controller.signal, initialDelayMs: 5000, maxAttempts: 5 }));
    await vi.advanceTimersByTimeAsync(100);
    controller.abort();
    expect(((await caught) as HvkitError).code).toBe('ABORTED');
    expect(fn).toHaveBeenCalledTimes(1);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('does not start for an already-aborted signal', async () => {
    const controller = new AbortController();
    controller.abort();
    const fn = vi.fn(async () => 1);
    expect(((await rejection(retry(fn, { signal: controller.signal }))) as HvkitError).code).toBe('ABORTED');
    expect(fn).not.toHaveBeenCalled();
  });

  it('rejects bad options with TypeError', async () => {
    const fn = async () => 1;
    await expect(retry(fn, { maxAttempts: 0 })).rejects.toThrow(TypeError);
    await expect(retry(fn, { initialDelayMs: -1 })).rejects.toThrow(TypeError);
    await expect(retry(fn, { backoffFactor: 0.5 })).rejects.toThrow(TypeError);
    await expect(retry(null as unknown as typeof fn)).rejects.toThrow(TypeError);
  });
});

describe('retry hints', () => {
  it('reads details.retryAfterMs', () => {
    expect(retryAfterMsOf(hvkitError('REMOTE', 'x', { details: { retryAfterMs: 5 } }))).toBe(5);
    expect(retryAfterMsOf(hvkitError('REMOTE', 'x', { details: { retryAfterMs: -5 } }))).toBeUndefined();
    expect(retryAfterMsOf(hvkitError('REMOTE', 'x'))).toBeUndefined();
    expect(retryAfterMsOf(new Error('x'))).toBeUndefined();
  });

  it('parses Retry-After seconds and dates', () => {
    const now = Date.parse('2025-01-01T00:00:00Z');
    expect(parseRetryAfter('120', now)).toBe(120_000);
    expect(parseRetryAfter('1.5', now)).toBe(1500);
    expect(parseRetryAfter('Wed, 01 Jan 2025 00:00:30 GMT', now)).toBe(30_000);
    expect(parseRetryAfter('Tue, 31 Dec 2024 23:00:00 GMT', now)).toBe(0);
    expect(parseRetryAfter('soon', now)).toBeUndefined();
    expect(parseRetryAfter(null, now)).toBeUndefined();
  });
});
