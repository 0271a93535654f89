import { describe, expect, it } from 'vitest';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import {
  type ConnectionStateChange,
  ConnectionStatus,
  DEFAULT_RECONNECT,
  isResyncEvent,
  reconnectDelayMs,
  reconnectWithBackoff,
  resolveReconnect,
  resyncEvent,
} from './connection';

const lost = hvkitError('CONNECTION_LOST', 'socket closed', { adapter: 'x' });

describe('ConnectionStatus', () => {
  it('starts open, reports each change once and in order, and closed is final', () => {
    const status = new ConnectionStatus({ adapter: 'x' });
    const seen: ConnectionStateChange[] = [];
    status.onChange((c) => seen.push(c));
    status.onChange(() => {
      throw new Error('a failing listener is ignored');
    });
    expect(status.state).toBe('open');
    status.update('reconnecting', lost);
    status.update('reconnecting', lost);
    status.update('open');
    status.update('closed');
    status.update('open');
    expect(seen.map((c) => [c.previous, c.state, c.error?.message])).toEqual([
      ['open', 'reconnecting', lost.message],
      ['reconnecting', 'open', undefined],
      ['open', 'closed', undefined],
    ]);
    expect(status.state).toBe('closed');
    expect(status.lastError).toBe(lost);
  });

  it('changes() yields every change and ends after closed; an aborted signal ends it without error', async () => {
    const status = new ConnectionStatus({ adapter: 'x' });
    const collected = (async () => {
      const states: string[] = [];
      for await (const c of status.changes()) states.push(c.state);
      return states;
    })();
    await Promise.resolve();
    status.update('reconnecting', lost);
    status.update('open');
    status.update('closed');
    expect(await collected).toEqual(['reconnecting', 'open', 'closed']);

    const other = new ConnectionStatus({ adapter: 'x' });
    const controller = new AbortController();
    const iterator = other.changes({ signal: controller.signal })[Symbol.asyncIterator]();
    const next = iterator.next();
    controller.abort();
    expect(await next).toEqual({ done: true, value: undefined });
  });

  it('waitUntilOpen: resolves on open, CONNECTION_LOST not retryable on closed, retryable after its timeout', async () => {
    const status = new ConnectionStatus({ adapter: 'x', target: 'host' });
    await status.waitUntilOpen({ operation: 'op' });
    status.update('reconnecting', lost);
    const waiting = status.waitUntilOpen({ operation: 'op' });
    status.update('open');
    await waiting;

    status.update('reconnecting', lost);
    const timedOut = await status.waitUntilOpen({ operation: 'op', timeoutMs: 20 }).catch((e) => e);
    expect(HvkitError.isInstance(timedOut, 'CONNECTION_LOST')).toBe(true);
    expect(timedOut.retryable).toBe(true);
    expect(timedOut.message).toMatch(/still reconnecting after \d+ ms \(lost: socket closed\)/);

    const controller = new AbortController();
    const aborted = status.waitUntilOpen({ operation: 'op', signal: controller.signal }).catch((e) => e);
    controller.abort();
    expect(HvkitError.isInstance(await aborted, 'ABORTED')).toBe(true);

    const closing = status.waitUntilOpen({ operation: 'op' }).catch((e) => e);
    status.update('closed', lost);
    const closed = await closing;
    expect(HvkitError.isInstance(closed, 'CONNECTION_LOST')).toBe(true);
    expect(closed.retryable).toBe(false);
    expect(closed.cause).toBe(lost);
    const after = await status.waitUntilOpen({ operation: 'op' }).catch((e) => e);
    expect(after.retryable).toBe(false);
  });
});

describe('resolveReconnect', () => {
  it('reads false, true, undefined and settings; refuses bad values with TypeError', () => {
    expect(resolveReconnect(false)).toBe(false);
    expect(resolveReconnect(undefined)).toEqual(DEFAULT_RECONNECT);
    expect(resolveReconnect(true)).toEqual(DEFAULT_RECONNECT);
    expect(resolveReconnect({ maxAttempts: 3, initialDelayMs: 10 })).toEqual({
      initialDelayMs: 10,
      maxDelayMs: DEFAULT_RECONNECT.maxDelayMs,
      maxAttempts: 3,
    });
    expect(() => resolveReconnect({ maxAttempts: 0 })).toThrow(TypeError);
    expect(() => resolveReconnect({ initialDelayMs: -1 })).toThrow(TypeError);
    expect(() => resolveReconnect({ initialDelayMs: 100, maxDelayMs: 10 })).toThrow(TypeError);
    expect(() => resolveReconnect({ delay: 1 } as never)).toThrow(/unknown key "delay"/);
    expect(() => resolveReconnect('yes' as never)).toThrow(TypeError);
  });

  it('delays double from initialDelayMs and stay within maxDelayMs', () => {
    const s = resolveReconnect({ initialDelayMs: 100, maxDelayMs: 1000 }) as typeof DEFAULT_RECONNECT;
    expect(reconnectDelayMs(1, s, () => 0.999)).toBe(100);
    expect(reconnectDelayMs(3, s, () => 0.999)).toBe(400);
    expect(reconnectDelayMs(30, s, () => 0.999)).toBe(999);
    expect(reconnectDelayMs(30, s, () => 0)).toBe(100);
  });
});

describe('resync events', () => {
  it('builds the notice and recognises it', () => {
    const since = new Date('2026-01-01T00:00:00Z');
    const e = resyncEvent(since, 'reconnected');
    expect(e).toMatchObject({ type: 'resync', detail: 'reconnected', guest: { id: '', name: '' }, since });
    expect(isResyncEvent(e)).toBe(true);
    expect(isResyncEvent({ type: 'started', guest: { id: 'a', name: 'a' }, at: since })).toBe(false);
  });
});

describe('reconnectWithBackoff', () => {
  const settings = resolveReconnect({ initialDelayMs: 1, maxDelayMs: 2, maxAttempts: 3 }) as Exclude<
    ReturnType<typeof resolveReconnect>,
    false
  >;
  const reconnecting = () => {
    const status = new ConnectionStatus({ adapter: 'x' });
    status.update('reconnecting', lost);
    return status;
  };
  const giveUpError = (cause: unknown) => hvkitError('CONNECTION_LOST', 'gave up', { adapter: 'x', cause });

  it('retries failed attempts and moves to open after the first that works', async () => {
    const status = reconnecting();
    const attempts: number[] = [];
    const outcome = await reconnectWithBackoff({
      status,
      settings,
      signal: new AbortController().signal,
      attempt: async (_signal, n) => {
        attempts.push(n);
        if (n < 2) throw lost;
      },
      giveUpError,
    });
    expect(outcome).toBe('open');
    expect(attempts).toEqual([1, 2]);
    expect(status.state).toBe('open');
  });

  it('closes with the error on AUTH_FAILED at once, and with giveUpError after maxAttempts', async () => {
    const status = reconnecting();
    const auth = hvkitError('AUTH_FAILED', 'no', { adapter: 'x' });
    let calls = 0;
    const first = await reconnectWithBackoff({
      status,
      settings,
      signal: new AbortController().signal,
      attempt: async () => {
        calls++;
        throw auth;
      },
      giveUpError,
    });
    expect([first, calls, status.state, status.lastError]).toEqual(['closed', 1, 'closed', auth]);
    const other = reconnecting();
    const failures: number[] = [];
    const second = await reconnectWithBackoff({
      status: other,
      settings,
      signal: new AbortController().signal,
      attempt: async () => {
        throw new Error('refused');
      },
      giveUpError,
      onFailedAttempt: (n) => failures.push(n),
    });
    expect(second).toBe('closed');
    expect(failures).toEqual([1, 2, 3]);
    expect(other.lastError?.message).toBe('gave up');
  });

  it('stops without changing the state when its signal aborts', async () => {
    const status = reconnecting();
    const stop = new AbortController();
    const outcome = reconnectWithBackoff({
      status,
      settings: resolveReconnect({ initialDelayMs: 50 }) as typeof settings,
      signal: stop.signal,
      attempt: async () => {},
      giveUpError,
    });
    stop.abort();
    expect(await outcome).toBe('stopped');
    expect(status.state).toBe('reconnecting');
  });
});
