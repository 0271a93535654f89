/**
 * The kvm-libvirt adapter as a long-running service, against a private libvirtd this file starts and
 * kills (peer libvirtd: its binary; the shared daemon is never touched): connection state, reconnection,
 * event subscriptions across a restart, two subscriptions on one adapter, errors of a closed adapter, and
 * the bounds of connect() and close() against a hung (SIGSTOPped) daemon.
 */

import {
  drainEvents as drain,
  livePeer,
  runAdapterConformance,
  waitUntil as until,
} from '@hvkit/conformance';
import { type ConnectionStateChange, type GuestEvent, HvkitError, isResyncEvent } from '@hvkit/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { libvirtdAvailable, ThrowawayLibvirtd } from '../test/throwaway-libvirtd';
import { connect, connectRpc, type KvmLibvirtAdapter } from './connect';
import { remoteProcedures as P } from './protocol/remote-protocol';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_SOCKET']);
const usable = peer.available && libvirtdAvailable();

/** Suspends and resumes the test driver's running domain `test` on its own connection: two events. */
async function pokeTestDomain(uri: string): Promise<void> {
  await using raw = await connectRpc({ uri, timeoutMs: 5000 });
  const dom = await raw.call(P.DOMAIN_LOOKUP_BY_NAME, { name: 'test' });
  await raw.call(P.DOMAIN_SUSPEND, { dom });
  await raw.call(P.DOMAIN_RESUME, { dom });
}

describe.skipIf(!usable)(
  `kvm-libvirt as a service (private libvirtd)${usable ? '' : ` (skipped: ${peer.available ? 'no libvirtd binary' : peer.reason})`}`,
  () => {
    let daemon: ThrowawayLibvirtd;
    const adapters: KvmLibvirtAdapter[] = [];
    const open = async (options: Partial<Parameters<typeof connect>[0]> = {}) => {
      const a = await connect({ uri: daemon.uri, keepalive: { intervalMs: 250, countMax: 4 }, ...options });
      adapters.push(a);
      return a;
    };

    beforeAll(async () => {
      daemon = await ThrowawayLibvirtd.start();
    });
    afterEach(async () => {
      for (const a of adapters.splice(0)) await a.close();
      if (daemon.pid === undefined) await daemon.restart();
      else daemon.signal('SIGCONT');
    });
    afterAll(async () => {
      await daemon?.dispose();
    });

    it('two concurrent subscriptions on one adapter both receive every event', async () => {
      const hv = await open();
      const controller = new AbortController();
      const first: GuestEvent[] = [];
      const second: GuestEvent[] = [];
      const a = drain(hv.events.subscribe({ signal: controller.signal }), first);
      const b = drain(hv.events.subscribe({ signal: controller.signal }), second);
      // Both registrations are in place once an event reaches both.
      for (let i = 0; i < 50 && (first.length === 0 || second.length === 0); i++) {
        await pokeTestDomain(daemon.uri);
        await new Promise((r) => setTimeout(r, 50));
      }
      first.length = 0;
      second.length = 0;
      for (let i = 0; i < 5; i++) await pokeTestDomain(daemon.uri);
      await until('10 events on both subscriptions', () => first.length >= 10 && second.length >= 10);
      controller.abort();
      expect(await a).toBe('done');
      expect(await b).toBe('done');
      const types = (events: GuestEvent[]) => events.map((e) => `${e.guest.name}:${e.type}`);
      expect(types(first)).toEqual(types(second));
      expect(types(first).slice(0, 2)).toEqual(['test:suspended', 'test:resumed']);
      expect(first).toHaveLength(10);
    });

    it('reconnects after the daemon is killed and restarted: state changes, calls wait, the subscription resumes with a resync notice', async () => {
      const hv = await open();
      expect(hv.connection.state).toBe('open');
      const changes: ConnectionStateChange[] = [];
      hv.connection.onChange((c) => changes.push(c));
      const controller = new AbortController();
      const events: GuestEvent[] = [];
      const ended = drain(hv.events.subscribe({ signal: controller.signal }), events);
      for (let i = 0; i < 20 && events.length === 0; i++) {
        await pokeTestDomain(daemon.uri);
        await new Promise((r) => setTimeout(r, 50));
      }
      expect(events.length).toBeGreaterThan(0);
      // A call in flight when the daemon dies: it fails (retryable) or, if it was answered first, succeeds.
      const inFlight = hv.inventory.listGuests().then(
        () => undefined,
        (e: unknown) => e,
      );
      await daemon.kill();
      await until('reconnecting', () => hv.connection.state === 'reconnecting');
      // A call made while reconnecting waits for the new connection within its own deadline.
      const waiting = hv.inventory.listGuests({ timeoutMs: 20_000 });
      const lostCall = await inFlight;
      if (lostCall !== undefined) {
        expect(HvkitError.isInstance(lostCall, 'CONNECTION_LOST')).toBe(true);
        expect((lostCall as HvkitError).retryable).toBe(true);
      }
      const restartedAt = Date.now();
      await daemon.restart();
      const guests = await waiting;
      expect(guests.map((g) => g.name)).toContain('test');
      expect(hv.connection.state).toBe('open');
      expect(changes.map((c) => c.state)).toEqual(['reconnecting', 'open']);
      expect(HvkitError.isInstance(changes[0]?.error, 'CONNECTION_LOST')).toBe(true);
      // The subscription says events may have been missed, then delivers again.
      const before = events.length;
      await until(
        'the resync notice',
        () => events.slice(Math.max(0, before - 1)).some(isResyncEvent) || events.some(isResyncEvent),
      );
      const resync = events.find(isResyncEvent);
      expect(resync).toMatchObject({ type: 'resync', detail: 'reconnected' });
      const afterResync = () => events.slice(events.indexOf(resync as GuestEvent) + 1);
      for (let i = 0; i < 20 && afterResync().length === 0; i++) await pokeTestDomain(daemon.uri);
      await until('an event after the reconnect', () => afterResync().length > 0);
      expect(afterResync()[0]).toMatchObject({ guest: { name: 'test' } });
      expect(Date.now() - restartedAt).toBeLessThan(15_000);
      controller.abort();
      expect(await ended).toBe('done');
    });

    it('with reconnect off, a lost connection throws CONNECTION_LOST from the subscription and closes the adapter; its errors are not retryable', async () => {
      const hv = await open({ reconnect: false });
      const events: GuestEvent[] = [];
      const ended = drain(hv.events.subscribe(), events);
      await new Promise((r) => setTimeout(r, 200));
      await daemon.kill();
      const outcome = await ended;
      expect(HvkitError.isInstance(outcome, 'CONNECTION_LOST')).toBe(true);
      expect(hv.connection.state).toBe('closed');
      const call = await hv.inventory.listGuests().catch((e: unknown) => e);
      expect(HvkitError.isInstance(call, 'CONNECTION_LOST')).toBe(true);
      expect((call as HvkitError).retryable).toBe(false);
      // Subscribing again on the dead adapter fails at once instead of ending quietly.
      const again = await drain(hv.events.subscribe(), []);
      expect(HvkitError.isInstance(again, 'CONNECTION_LOST')).toBe(true);
      expect((again as HvkitError).retryable).toBe(false);
    });

    it('errors of a closed adapter are not retryable; a subscription ends without error at close()', async () => {
      const hv = await open();
      const ended = drain(hv.events.subscribe(), []);
      await new Promise((r) => setTimeout(r, 100));
      await hv.close();
      expect(await ended).toBe('done');
      expect(hv.connection.state).toBe('closed');
      const call = await hv.inventory.listGuests().catch((e: unknown) => e);
      expect(HvkitError.isInstance(call, 'CONNECTION_LOST')).toBe(true);
      expect((call as HvkitError).retryable).toBe(false);
      const raw = await hv.rpc.call(P.CONNECT_GET_TYPE).catch((e: unknown) => e);
      expect(HvkitError.isInstance(raw, 'CONNECTION_LOST')).toBe(true);
      expect((raw as HvkitError).retryable).toBe(false);
    });

    it('close() is bounded against a hung daemon, also while reconnecting', async () => {
      const hv = await open();
      const sub = drain(hv.events.subscribe(), []);
      await new Promise((r) => setTimeout(r, 100));
      daemon.signal('SIGSTOP');
      const started = Date.now();
      await hv.close();
      const closeMs = Date.now() - started;
      expect(await sub).toBe('done');
      expect(closeMs).toBeLessThan(2500);
      daemon.signal('SIGCONT');

      const hv2 = await open();
      await daemon.kill();
      await until('reconnecting', () => hv2.connection.state === 'reconnecting');
      const started2 = Date.now();
      await hv2.close();
      expect(Date.now() - started2).toBeLessThan(500);
      expect(hv2.connection.state).toBe('closed');
    });

    it('connect() to a hung daemon fails within its timeoutMs', async () => {
      daemon.signal('SIGSTOP');
      const started = Date.now();
      const error = await connect({ uri: daemon.uri, timeoutMs: 1500 }).catch((e: unknown) => e);
      const ms = Date.now() - started;
      daemon.signal('SIGCONT');
      expect(HvkitError.isInstance(error, 'TIMEOUT')).toBe(true);
      expect(ms).toBeLessThan(2500);
    });

    it('a keepalive-detected hang reconnects once the daemon answers again', async () => {
      const hv = await open();
      daemon.signal('SIGSTOP');
      const stoppedAt = Date.now();
      await until('reconnecting', () => hv.connection.state === 'reconnecting', 5000);
      const detectMs = Date.now() - stoppedAt;
      expect(detectMs).toBeLessThan(2000);
      daemon.signal('SIGCONT');
      await until('open', () => hv.connection.state === 'open', 15_000);
      expect((await hv.inventory.host()).hypervisor.kind).toBeTruthy();
    });
  },
);

/** Groups the shared-peer runs (conformance.live.test.ts) cover; this run is for `service` and `events`. */
const COVERED_ELSEWHERE =
  'covered against the shared peer by conformance.live.test.ts; this run is for the service and events groups';

// runAdapterConformance calls the factory while the file is collected, and the body of a skipped describe
// is collected too (its afterAll is not run): the suite is only declared when the daemon may be started.
if (!usable) {
  describe.skip(`kvm-libvirt conformance, service group (private libvirtd) (skipped: ${peer.available ? 'no libvirtd binary' : peer.reason})`, () => {
    it('needs the libvirtd peer and its binary', () => {});
  });
} else {
  describe('kvm-libvirt conformance, service group (private libvirtd)', () => {
    let started: Promise<ThrowawayLibvirtd> | undefined;
    const daemon = () => {
      started ??= ThrowawayLibvirtd.start();
      return started;
    };
    afterAll(async () => {
      await (await started)?.dispose();
    });
    const options = async (reconnect: boolean) => ({
      uri: (await daemon()).uri,
      keepalive: { intervalMs: 500, countMax: 4 },
      reconnect,
    });
    runAdapterConformance({
      name: 'kvm-libvirt (private libvirtd, test driver)',
      mode: 'live',
      factory: async () => connect(await options(true)),
      factoryWithoutReconnect: async () => connect(await options(false)),
      peer: {
        kill: async () => (await daemon()).kill(),
        restart: async () => (await daemon()).restart(),
      },
      target: { name: 'test' },
      probe: {
        triggerEvent: async () => pokeTestDomain((await daemon()).uri),
      },
      skip: Object.fromEntries(
        ['adapter', 'inventory', 'limits', 'labels', 'backups', 'cancellation'].map((g) => [
          g,
          COVERED_ELSEWHERE,
        ]),
      ),
    });
  });
}

const sshPeer = livePeer('sshd+libvirtd', [
  'HVKIT_SSH_HOST',
  'HVKIT_SSH_PORT',
  'HVKIT_SSH_USER',
  'HVKIT_SSH_KEY',
  'HVKIT_SSH_KNOWN_HOSTS',
  'HVKIT_LIBVIRT_GUEST',
]);

describe.skipIf(!sshPeer.available)(
  `kvm-libvirt over qemu+ssh as a service (peers sshd and libvirtd; only this test's own SSH connection is closed)${sshPeer.available ? '' : ` (skipped: ${sshPeer.reason})`}`,
  () => {
    const env = sshPeer.available ? sshPeer.env : ({} as Record<string, string>);
    const uri = () =>
      `qemu+ssh://${env.HVKIT_SSH_USER}@${env.HVKIT_SSH_HOST}:${env.HVKIT_SSH_PORT}/system?keyfile=${env.HVKIT_SSH_KEY}&known_hosts=${env.HVKIT_SSH_KNOWN_HOSTS}`;

    it('a dropped SSH connection is opened again: reconnecting then open, the same adapter answers, the subscription gets a resync event', async () => {
      await using hv = await connect({ uri: uri() });
      const first = hv.rpc.sshClient;
      expect(first).toBeDefined();
      const changes: string[] = [];
      hv.connection.onChange((c) => changes.push(c.state));
      const controller = new AbortController();
      const events: GuestEvent[] = [];
      const ended = drain(hv.events.subscribe({ signal: controller.signal }), events);
      await new Promise((r) => setTimeout(r, 300));
      await first?.close();
      await until(
        'open again',
        () => changes.includes('reconnecting') && hv.connection.state === 'open',
        20_000,
      );
      expect(hv.rpc.sshClient).not.toBe(first);
      expect(hv.rpc.sshClient?.closed).toBe(false);
      const guests = await hv.inventory.listGuests();
      expect(guests.map((g) => g.name)).toContain(env.HVKIT_LIBVIRT_GUEST);
      await until('the resync notice', () => events.some(isResyncEvent));
      controller.abort();
      expect(await ended).toBe('done');
    });

    it('an SSH connection given in transport.ssh.client that closes cannot be reopened: the adapter closes with CONNECTION_LOST, not retryable', async () => {
      const { connectSsh } = await import('@hvkit/ssh');
      const ssh = await connectSsh({
        host: env.HVKIT_SSH_HOST as string,
        port: Number(env.HVKIT_SSH_PORT),
        username: env.HVKIT_SSH_USER as string,
        auth: { privateKey: env.HVKIT_SSH_KEY as string },
        hostKey: { knownHostsFile: env.HVKIT_SSH_KNOWN_HOSTS as string },
      });
      await using hv = await connect({ uri: uri(), transport: { ssh: { client: ssh } } });
      const ended = drain(hv.events.subscribe(), []);
      await new Promise((r) => setTimeout(r, 300));
      await ssh.close();
      const outcome = await ended;
      expect(outcome).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
      expect(hv.connection.state).toBe('closed');
      expect(await hv.inventory.host().catch((e: unknown) => e)).toMatchObject({
        code: 'CONNECTION_LOST',
        retryable: false,
      });
    });
  },
);
