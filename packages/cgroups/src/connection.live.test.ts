/**
 * Live: the adapter's connection state over SSH mirrors the caller's SSH connection. A private SSH
 * connection to the sshd peer is ended from the server side (its sshd processes killed); the adapter
 * goes `closed` with a `CONNECTION_LOST` lastError, and every later call fails `CONNECTION_LOST`, not
 * retryable, at once. Then the conformance `service` group, with the same kill as the peer's.
 */

import { livePeer, runAdapterConformance, serviceOnlyOnCallersConnection } from '@hvkit/conformance';
import { type ConnectionStateChange, HvkitError, type HypervisorAdapterV1 } from '@hvkit/core';
import type { SshClient } from '@hvkit/ssh';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import {
  killFromServer,
  killPids,
  openPeerSsh,
  SSHD_VARIABLES,
  sshdServing,
  untilClosed,
} from '../test/ssh-peer';
import { type CgroupsAdapter, connect } from './connect';

const sshd = livePeer('sshd', [...SSHD_VARIABLES, 'HVKIT_LIBVIRT_GUEST']);

/** Longest a call on a closed adapter may take (it must not reach the network). */
const CLOSED_CALL_MS = 1000;

/** The outcome of `promise` within `ms`: its error, or a failure when it resolves or hangs. */
async function rejection(promise: Promise<unknown>, ms: number, what: string): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not settle within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, hang]).then(
      () => {
        throw new Error(`${what} succeeded on a closed adapter`);
      },
      (error: unknown) => {
        if (error instanceof Error && error.message.startsWith(what)) throw error;
        return error;
      },
    );
  } finally {
    clearTimeout(timer);
  }
}

function expectClosedError(error: unknown): void {
  expect(HvkitError.isInstance(error, 'CONNECTION_LOST'), String(error)).toBe(true);
  expect(error).toMatchObject({ code: 'CONNECTION_LOST', retryable: false, adapter: 'cgroups' });
}

/** Every kind of call the adapter has, on a guest that exists. */
function everyCall(hv: CgroupsAdapter, guest: string): [string, () => Promise<unknown>][] {
  return [
    ['inventory.host()', () => hv.inventory.host()],
    ['inventory.listGuests()', () => hv.inventory.listGuests()],
    ['inventory.getGuest()', () => hv.inventory.getGuest({ name: guest })],
    ['limits.get()', () => hv.limits.get({ name: guest })],
    // A guest that does not exist: nothing may be written, whatever happens.
    ['limits.set()', () => hv.limits.set({ name: 'hvkit-no-such-guest' }, { cpu: { weight: 100 } })],
  ];
}

if (!sshd.available) {
  describe('cgroups connection state over SSH', () => {
    it.skip(`skipped: ${sshd.reason}`, () => {});
  });
} else {
  const port = Number(sshd.env.HVKIT_SSH_PORT);
  const guest = sshd.env.HVKIT_LIBVIRT_GUEST;
  const clients: SshClient[] = [];
  const adapters: HypervisorAdapterV1[] = [];
  const open = async () => {
    const ssh = await openPeerSsh(sshd.env);
    clients.push(ssh);
    const hv = await connect({ ssh, timeoutMs: 10_000 });
    adapters.push(hv);
    return { ssh, hv };
  };
  afterAll(async () => {
    for (const ssh of clients.splice(0)) await ssh.close();
  });

  describe('cgroups connection state over SSH (a private connection to the sshd peer)', () => {
    afterEach(async () => {
      for (const hv of adapters.splice(0)) await hv.close();
    });

    it('is open after connect, and goes closed with lastError CONNECTION_LOST when the server ends the SSH connection; every later call fails CONNECTION_LOST, not retryable, at once', async () => {
      const { ssh, hv } = await open();
      const connection = hv.connection;
      expect(connection).toBeDefined();
      expect(connection.state).toBe('open');
      expect(connection.lastError).toBeUndefined();
      expect((await hv.inventory.host()).hypervisor.kind).toMatch(/^cgroup-/);
      const changes: ConnectionStateChange[] = [];
      connection.onChange((change) => changes.push(change));
      const iterated: ConnectionStateChange[] = [];
      const iteration = (async () => {
        for await (const change of connection.changes()) iterated.push(change);
      })();

      const pids = await sshdServing(ssh, port);
      const killedAt = Date.now();
      killPids(pids);
      const deadline = Date.now() + 5000;
      while (changes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const noticedMs = Date.now() - killedAt;
      console.log(`cgroups over SSH: the server-side kill was reported as closed after ${noticedMs} ms`);
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({ previous: 'open', state: 'closed' });
      expect(changes[0]?.error).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
      expect(changes[0]?.error?.message).toContain('new adapter');
      expect(noticedMs).toBeLessThan(2000);
      expect(connection.state).toBe('closed');
      expect(connection.lastError).toBe(changes[0]?.error);
      // The change stream ends after `closed`.
      await iteration;
      expect(iterated.map((c) => c.state)).toEqual(['closed']);

      for (const [what, call] of everyCall(hv, guest)) {
        const started = Date.now();
        const error = await rejection(call(), CLOSED_CALL_MS, what);
        expectClosedError(error);
        expect((error as HvkitError).cause).toBe(connection.lastError);
        expect(Date.now() - started).toBeLessThan(CLOSED_CALL_MS);
      }
      // close() is quick and final; nothing changes any more.
      const started = Date.now();
      await hv.close();
      await hv.close();
      expect(Date.now() - started).toBeLessThan(500);
      expect(connection.state).toBe('closed');
      expect(changes).toHaveLength(1);
    });

    it('a call made right after the loss, before any poll, fails CONNECTION_LOST not retryable and closes the adapter', async () => {
      const { ssh, hv } = await open();
      await killFromServer(ssh, port);
      await untilClosed(ssh);
      const error = await rejection(hv.inventory.listGuests(), CLOSED_CALL_MS, 'inventory.listGuests()');
      expectClosedError(error);
      expect(hv.connection.state).toBe('closed');
      expect(hv.connection.lastError).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
    });

    it('calls in flight when the connection is lost fail CONNECTION_LOST, not retryable, and none hangs', async () => {
      const { ssh, hv } = await open();
      const pids = await sshdServing(ssh, port);
      const inFlight = Array.from({ length: 6 }, () =>
        hv.inventory.listGuests().then(
          () => undefined,
          (error: unknown) => error,
        ),
      );
      killPids(pids);
      const outcomes = await Promise.race([
        Promise.all(inFlight),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('calls in flight hung')), 10_000),
        ),
      ]);
      const failed = outcomes.filter((o) => o !== undefined);
      console.log(`cgroups over SSH: ${failed.length} of ${outcomes.length} calls in flight failed`);
      for (const error of failed) expectClosedError(error);
      await untilClosed(ssh);
      expect(hv.connection.state).toBe('closed');
    });

    it('a caller that closes its own SSH client closes the adapter the same way', async () => {
      const { ssh, hv } = await open();
      await ssh.close();
      expectClosedError(await rejection(hv.inventory.host(), CLOSED_CALL_MS, 'inventory.host()'));
      expect(hv.connection.state).toBe('closed');
    });

    it('connect() on an SSH client that is already closed fails CONNECTION_LOST, not retryable', async () => {
      const ssh = await openPeerSsh(sshd.env);
      await ssh.close();
      const error = await rejection(connect({ ssh }), 5000, 'connect()');
      expectClosedError(error);
    });
  });

  // The `service` group: the "peer" is the test's own SSH connection, killed from the server side; the
  // sshd listener keeps running (it is shared), so a restart has nothing to do.
  let current: SshClient | undefined;
  const fresh = async () => {
    current = await openPeerSsh(sshd.env);
    clients.push(current);
    return connect({ ssh: current, timeoutMs: 10_000 });
  };
  const COVERED_ELSEWHERE = 'run over SSH by ssh.live.test.ts and conformance.live.test.ts';
  runAdapterConformance({
    name: 'cgroups (sshd peer, a private SSH connection)',
    mode: 'live',
    factory: fresh,
    // Reconnection is always off: the adapter does not own the SSH connection.
    factoryWithoutReconnect: fresh,
    peer: {
      kill: async () => {
        if (!current) throw new Error('no SSH connection is open');
        await killFromServer(current, port);
        await untilClosed(current);
      },
      restart: async () => {},
    },
    probe: {},
    skip: serviceOnlyOnCallersConnection(COVERED_ELSEWHERE),
  });
}
