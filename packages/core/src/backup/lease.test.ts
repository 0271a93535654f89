import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import {
  type BackupLease,
  holdLease,
  leaseIsLive,
  leaseOwner,
  newLease,
  parseLease,
  renewedLease,
} from './lease';

const T0 = new Date('2026-12-07T12:00:00.000Z');

describe('leases', () => {
  it('newLease: owner <hostname>:<pid>, start and expiry', () => {
    const lease = newLease('20261207T120000Z-full-abc', 120_000, { now: T0 });
    expect(lease).toEqual({
      owner: `${hostname()}:${process.pid}`,
      run: '20261207T120000Z-full-abc',
      startedAt: '2026-12-07T12:00:00.000Z',
      expiresAt: '2026-12-07T12:02:00.000Z',
    });
    expect(leaseOwner()).toBe(lease.owner);
    expect(() => newLease('')).toThrow(TypeError);
    expect(() => newLease('r', 0)).toThrow(TypeError);
    expect(() => newLease('r', 1.5)).toThrow(TypeError);
  });

  it('leaseIsLive: until expiresAt, not after; a malformed time is not live', () => {
    const lease = newLease('r', 1000, { now: T0 });
    expect(leaseIsLive(lease, new Date(T0.getTime() + 999))).toBe(true);
    expect(leaseIsLive(lease, new Date(T0.getTime() + 1000))).toBe(false);
    expect(leaseIsLive({ ...lease, expiresAt: 'soon' }, T0)).toBe(false);
    expect(
      leaseIsLive(renewedLease(lease, 5000, new Date(T0.getTime() + 900)), new Date(T0.getTime() + 5000)),
    ).toBe(true);
  });

  it('parseLease: a round trip through JSON; anything else is PROTOCOL', () => {
    const lease = newLease('r', 1000, { now: T0, owner: 'h:1' });
    expect(parseLease(JSON.stringify(lease))).toEqual(lease);
    expect(parseLease({ ...lease, extra: 1 })).toEqual(lease);
    for (const bad of [
      '{',
      '[]',
      'null',
      JSON.stringify({ ...lease, run: '' }),
      JSON.stringify({ ...lease, expiresAt: 'x' }),
      'x'.repeat(5000),
    ]) {
      expect(() => parseLease(bad)).toThrow(HvkitError);
      try {
        parseLease(bad);
      } catch (e) {
        expect((e as HvkitError).code).toBe('PROTOCOL');
      }
    }
  });
});

describe('holdLease', () => {
  it('stores a renewed lease every renewMs until stopped', async () => {
    const stored: BackupLease[] = [];
    const lease = newLease('r', 1000);
    const holder = holdLease(lease, {
      renewMs: 20,
      ttlMs: 1000,
      store: async (l) => {
        stored.push(l);
      },
    });
    await new Promise((r) => setTimeout(r, 110));
    await holder.stop();
    const count = stored.length;
    expect(count).toBeGreaterThanOrEqual(3);
    expect(holder.lease).toEqual(stored.at(-1));
    for (const l of stored) {
      expect(l.run).toBe('r');
      expect(l.startedAt).toBe(lease.startedAt);
      expect(Date.parse(l.expiresAt)).toBeGreaterThan(Date.parse(lease.startedAt));
    }
    await new Promise((r) => setTimeout(r, 60));
    expect(stored.length).toBe(count);
    await holder.stop();
  });

  it('reports store failures to onError and keeps renewing', async () => {
    const errors: unknown[] = [];
    let calls = 0;
    const holder = holdLease(newLease('r'), {
      renewMs: 10,
      ttlMs: 100,
      store: async () => {
        calls++;
        throw new Error(`store failed ${calls}`);
      },
      onError: (e) => {
        errors.push(e);
        throw new Error('the reporter fails too');
      },
    });
    await new Promise((r) => setTimeout(r, 60));
    await holder.stop();
    expect(calls).toBeGreaterThanOrEqual(2);
    expect(errors.length).toBe(holder.failures);
    expect(String(errors[0])).toMatch(/store failed 1/);
  });

  it('stop() aborts a renewal in progress and waits for it', async () => {
    let seen: AbortSignal | undefined;
    let settled = false;
    const holder = holdLease(newLease('r'), {
      renewMs: 5,
      ttlMs: 100,
      store: (_l, { signal }) =>
        new Promise<void>((_resolve, reject) => {
          seen = signal;
          signal.addEventListener('abort', () => {
            setTimeout(() => {
              settled = true;
              reject(new Error('aborted'));
            }, 10);
          });
        }),
      onError: () => {
        throw new Error('an aborted renewal after stop() is not an error');
      },
    });
    await new Promise((r) => setTimeout(r, 30));
    expect(seen).toBeDefined();
    await holder.stop();
    expect(seen?.aborted).toBe(true);
    expect(settled).toBe(true);
    expect(holder.failures).toBe(0);
  });

  it('checks its options', () => {
    const lease = newLease('r');
    expect(() => holdLease(lease, {} as never)).toThrow(TypeError);
    expect(() => holdLease(lease, { store: async () => {}, renewMs: 100, ttlMs: 100 })).toThrow(/exceed/);
    expect(() => holdLease(lease, { store: async () => {}, renewMs: -1 })).toThrow(TypeError);
    expect(() => holdLease(lease, { store: async () => {}, onError: 1 as never })).toThrow(TypeError);
  });
});
