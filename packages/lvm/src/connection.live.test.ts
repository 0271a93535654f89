/**
 * Live (lab VM): the adapter's connection state over SSH mirrors the caller's SSH connection. A private SSH
 * connection to the VM is ended from the VM's side (its sshd processes killed); the adapter goes `closed`
 * with a `CONNECTION_LOST` lastError, and every later call fails `CONNECTION_LOST`, not retryable, at once,
 * without reaching the network. Then the conformance `service` group, with the same kill as the peer's.
 * Nothing on the VM is changed (inventory reads only).
 */

import { runAdapterConformance, serviceOnlyOnCallersConnection } from '@hvkit/conformance';
import { type ConnectionStateChange, HvkitError } from '@hvkit/core';
import type { SshClient } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectLab, killLabSession, lab, labClientPort, labTitle, untilClosed } from '../test/lab';
import { connect, type LvmAdapter } from './connect';

/** Longest a call on a closed adapter may take (it must not reach the network). */
const CLOSED_CALL_MS = 1000;

/**
 * The error of a call on a closed adapter, and how long it took to fail (a call that resolves is a failure;
 * one that hangs fails the test by its timeout).
 */
async function closedCallError(call: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = Date.now();
  const error = await call().then(
    () => new Error('the call succeeded on a closed adapter'),
    (e: unknown) => e,
  );
  return { error, ms: Date.now() - started };
}

function expectClosedError(error: unknown): void {
  expect(HvkitError.isInstance(error, 'CONNECTION_LOST'), String(error)).toBe(true);
  expect(error).toMatchObject({ code: 'CONNECTION_LOST', retryable: false, adapter: 'lvm' });
}

/** Every kind of call the adapter has (the volume need not exist: nothing may run). */
function everyCall(hv: LvmAdapter): [string, () => Promise<unknown>][] {
  const volume = 'hvkit-no-such-vg/lv';
  return [
    ['inventory.listGuests()', async () => hv.inventory?.listGuests()],
    ['inventory.listStoragePools()', async () => hv.inventory?.listStoragePools?.()],
    ['backups.listSnapshots()', async () => hv.backups?.listSnapshots(volume)],
    ['backups.cleanup()', async () => hv.backups?.cleanup?.(volume)],
  ];
}

describe.skipIf(!lab.available)(
  labTitle('lvm connection state over SSH (private connections to the lab VM)'),
  () => {
    let admin: SshClient;
    const clients: SshClient[] = [];
    const open = async () => {
      const ssh = await connectLab();
      clients.push(ssh);
      const hv = await connect({ ssh, timeoutMs: 60_000 });
      return { ssh, hv };
    };
    beforeAll(async () => {
      admin = await connectLab();
    }, 60_000);
    afterAll(async () => {
      for (const ssh of clients.splice(0)) await ssh.close();
      await admin?.close();
    });

    it('is open after connect, and goes closed with lastError CONNECTION_LOST when the VM ends the SSH connection; every later call fails CONNECTION_LOST, not retryable, at once', async () => {
      const { ssh, hv } = await open();
      const connection = hv.connection;
      expect(connection.state).toBe('open');
      expect(connection.lastError).toBeUndefined();
      expect(Array.isArray(await hv.inventory?.listStoragePools?.())).toBe(true);
      const changes: ConnectionStateChange[] = [];
      connection.onChange((change) => changes.push(change));
      const iterated: ConnectionStateChange[] = [];
      const iteration = (async () => {
        for await (const change of connection.changes()) iterated.push(change);
      })();

      const port = await labClientPort(ssh);
      const killedAt = Date.now();
      await killLabSession(admin, port);
      const deadline = Date.now() + 10_000;
      while (changes.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 5));
      const noticedMs = Date.now() - killedAt;
      console.log(
        `lvm over SSH: the VM-side kill (a command over a second connection) was reported as closed ${noticedMs} ms after it was sent`,
      );
      expect(changes).toHaveLength(1);
      expect(changes[0]).toMatchObject({ previous: 'open', state: 'closed' });
      expect(changes[0]?.error).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
      expect(changes[0]?.error?.message).toContain('new adapter');
      expect(connection.state).toBe('closed');
      expect(connection.lastError).toBe(changes[0]?.error);
      await iteration;
      expect(iterated.map((c) => c.state)).toEqual(['closed']);

      for (const [what, call] of everyCall(hv)) {
        const { error, ms } = await closedCallError(call);
        expectClosedError(error);
        expect(ms, what).toBeLessThan(CLOSED_CALL_MS);
      }
      const started = Date.now();
      await hv.close();
      expect(Date.now() - started).toBeLessThan(500);
      expect(changes).toHaveLength(1);
    }, 120_000);

    it('calls in flight when the connection is lost fail CONNECTION_LOST, not retryable, and none hangs', async () => {
      const { ssh, hv } = await open();
      const port = await labClientPort(ssh);
      const inFlight = Array.from({ length: 4 }, () =>
        (hv.inventory?.listGuests() ?? Promise.resolve()).then(
          () => undefined,
          (error: unknown) => error,
        ),
      );
      await killLabSession(admin, port);
      const outcomes = await Promise.race([
        Promise.all(inFlight),
        new Promise<never>((_, reject) =>
          setTimeout(() => reject(new Error('calls in flight hung')), 30_000),
        ),
      ]);
      const failed = outcomes.filter((o) => o !== undefined);
      console.log(`lvm over SSH: ${failed.length} of ${outcomes.length} calls in flight failed`);
      for (const error of failed) expectClosedError(error);
      await untilClosed(ssh);
      expect(hv.connection.state).toBe('closed');
      expectClosedError((await closedCallError(async () => hv.inventory?.listGuests())).error);
    }, 120_000);

    it('a caller that closes its own SSH client closes the adapter the same way', async () => {
      const { ssh, hv } = await open();
      await ssh.close();
      expectClosedError((await closedCallError(async () => hv.inventory?.listGuests())).error);
      expect(hv.connection.state).toBe('closed');
    }, 120_000);
  },
);

// The conformance `service` group: the "peer" is the test's own SSH connection to the VM, ended from the VM's
// side; the VM's sshd keeps running (it is shared), so a restart has nothing to do. runAdapterConformance
// connects while the file is collected, so it is declared only when the VM is there.
if (!lab.available) {
  describe.skip(labTitle('lvm conformance, service group'), () => {
    it('needs the lab-vm peer', () => {});
  });
} else {
  describe(labTitle('lvm conformance, service group (private SSH connections to the lab VM)'), () => {
    const clients: SshClient[] = [];
    let admin: Promise<SshClient> | undefined;
    let current: SshClient | undefined;
    afterAll(async () => {
      for (const ssh of clients.splice(0)) await ssh.close();
    });
    const fresh = async () => {
      current = await connectLab();
      clients.push(current);
      return connect({ ssh: current, timeoutMs: 60_000 });
    };
    const COVERED_ELSEWHERE = 'run against the lab VM by conformance.live.test.ts';
    runAdapterConformance({
      name: 'lvm (lab VM, a private SSH connection)',
      mode: 'live',
      factory: fresh,
      // Reconnection is always off: the adapter does not own the SSH connection.
      factoryWithoutReconnect: fresh,
      peer: {
        kill: async () => {
          if (!current) throw new Error('no SSH connection is open');
          admin ??= connectLab().then((ssh) => {
            clients.push(ssh);
            return ssh;
          });
          await killLabSession(await admin, await labClientPort(current));
          await untilClosed(current);
        },
        restart: async () => {},
      },
      probe: {},
      skip: serviceOnlyOnCallersConnection(COVERED_ELSEWHERE),
    });
  });
}
