/**
 * qemu+ssh:// through @hvkit/ssh against the sshd peer (root@127.0.0.1 with its key and known_hosts)
 * and the libvirtd peer behind it: the remote command is virsh's `sh -c` (virt-ssh-helper, else nc).
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { HvkitError } from '@hvkit/core';
import { connectSsh } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { detectLocalCgroupVersion } from '../capabilities/cgroup';
import { connect, connectRpc } from '../connect';
import type { LibvirtRpcClient } from './client';
import { remoteProcedures as P } from './remote-protocol';

let hasNetcat = false;
try {
  execFileSync('sh', ['-c', 'command -v nc'], { stdio: 'ignore' });
  hasNetcat = true;
} catch {
  // no nc here
}

const peer = livePeer('sshd+libvirtd', [
  'HVKIT_SSH_HOST',
  'HVKIT_SSH_PORT',
  'HVKIT_SSH_USER',
  'HVKIT_SSH_KEY',
  'HVKIT_SSH_KNOWN_HOSTS',
  'HVKIT_LIBVIRT_GUEST',
]);

describe.skipIf(!peer.available)(
  `qemu+ssh transport, live (peers sshd and libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const uri = (path = 'system', query = '') =>
      `qemu+ssh://${env.HVKIT_SSH_USER}@${env.HVKIT_SSH_HOST}:${env.HVKIT_SSH_PORT}/${path}?keyfile=${env.HVKIT_SSH_KEY}&known_hosts=${env.HVKIT_SSH_KNOWN_HOSTS}${query}`;

    it('lists domains over qemu+ssh:// (virt-ssh-helper on the remote side)', async () => {
      await using c = await connectRpc({ uri: uri() });
      expect(c.openUri).toBe('qemu:///system');
      expect(c.keepaliveActive).toBe(true);
      const { domains } = await c.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 });
      expect(domains.map((d) => d.name)).toContain(env.HVKIT_LIBVIRT_GUEST);
      expect(await c.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
      // A sibling shares the SSH connection (a new channel).
      await using sibling = await c.openSibling();
      expect((await sibling.call(P.NODE_GET_INFO)).model).toBe('x86_64');
    });

    it('the adapter over qemu+ssh://: connect({ uri }), listGuests, limits and labels of the remote guest', async () => {
      await using hv = await connect({ uri: uri() });
      expect(hv.driver).toBe('QEMU');
      // The remote host's cgroup layout is read through the SSH connection (the sshd peer runs here).
      expect(hv.cgroupVersion).toBe(await detectLocalCgroupVersion());
      const guests = await hv.inventory!.listGuests();
      const guest = guests.find((g) => g.name === env.HVKIT_LIBVIRT_GUEST);
      expect(guest).toMatchObject({ powerState: 'running', vcpus: 2, memoryBytes: 128 * 1024 * 1024 });
      const limits = await hv.limits!.get({ name: env.HVKIT_LIBVIRT_GUEST as string });
      expect(typeof limits.cpu?.weight === 'number' || limits.cpu?.weight === null).toBe(true);
      const labels = await hv.labels!.get({ name: env.HVKIT_LIBVIRT_GUEST as string });
      expect(labels.some((l) => l.source === 'live')).toBe(true);
    });

    it('reaches the test driver with proxy=native, and read-only with virt-ssh-helper -r', async () => {
      await using t = await connectRpc({
        uri: uri('default', '&proxy=native').replace('qemu+ssh', 'test+ssh'),
      });
      expect(await t.call(P.CONNECT_GET_URI)).toBe('test:///default');
      await using ro = await connectRpc({ uri: uri(), readOnly: true });
      const dom = await ro.call(P.DOMAIN_LOOKUP_BY_NAME, { name: env.HVKIT_LIBVIRT_GUEST as string });
      const denied = await ro.call(P.DOMAIN_SUSPEND, { dom }).catch((e: unknown) => e);
      expect(HvkitError.isInstance(denied, 'PERMISSION_DENIED')).toBe(true);
    });

    // The sshd peer runs on this machine, so the remote netcat is the local one (netcat-openbsd).
    it.skipIf(!hasNetcat)('connects through netcat on the daemon socket with proxy=netcat', async () => {
      await using c = await connectRpc({ uri: uri('system', '&proxy=netcat') });
      expect(await c.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
      const { domains } = await c.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 });
      expect(domains.map((d) => d.name)).toContain(env.HVKIT_LIBVIRT_GUEST);
    });

    it('reuses a given SSH connection and leaves it open', async () => {
      const ssh = await connectSsh({
        host: env.HVKIT_SSH_HOST as string,
        port: Number(env.HVKIT_SSH_PORT),
        username: env.HVKIT_SSH_USER as string,
        auth: { privateKey: env.HVKIT_SSH_KEY as string },
        hostKey: { knownHostsFile: env.HVKIT_SSH_KNOWN_HOSTS as string },
      });
      try {
        const c = await connectRpc({
          uri: `qemu+ssh://${env.HVKIT_SSH_HOST}/system`,
          transport: { ssh: { client: ssh } },
        });
        expect((await c.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 })).ret).toBeGreaterThan(
          0,
        );
        await c.close();
        expect(ssh.closed).toBe(false);
      } finally {
        await ssh.close();
      }
    });

    describe('?no_verify=1 never makes a URI accept a changed host key', () => {
      let dir = '';
      beforeAll(() => {
        dir = mkdtempSync(join(tmpdir(), 'hvkit-kvm-kh-'));
      });
      afterAll(() => {
        if (dir) rmSync(dir, { recursive: true, force: true });
      });
      const knownHosts = (name: string, lines: string[]) => {
        const file = join(dir, name);
        writeFileSync(file, lines.length > 0 ? `${lines.join('\n')}\n` : '');
        return file;
      };
      /** A known_hosts line for the peer's host and port holding a freshly made (wrong) ed25519 key. */
      const wrongKeyLine = () => {
        const key = join(dir, `wrong-${Date.now()}`);
        execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', key]);
        const [type, blob] = readFileSync(`${key}.pub`, 'utf8').trim().split(/\s+/);
        return `[${env.HVKIT_SSH_HOST}]:${env.HVKIT_SSH_PORT} ${type} ${blob}`;
      };
      const sshUri = (knownHostsFile: string) =>
        `qemu+ssh://${env.HVKIT_SSH_USER}@${env.HVKIT_SSH_HOST}:${env.HVKIT_SSH_PORT}/system?keyfile=${env.HVKIT_SSH_KEY}&known_hosts=${knownHostsFile}&no_verify=1`;
      const refusal = async (promise: Promise<unknown>) => {
        const error = await promise.then(
          async (c) => {
            await (c as LibvirtRpcClient).close();
            return undefined;
          },
          (e: unknown) => e,
        );
        expect(HvkitError.isInstance(error, 'AUTH_FAILED'), String(error)).toBe(true);
        return error as HvkitError;
      };

      it('a WRONG key in known_hosts is refused with AUTH_FAILED, with or without the named option', async () => {
        const file = knownHosts('wrong', [wrongKeyLine()]);
        const plain = await refusal(connectRpc({ uri: sshUri(file), timeoutMs: 15_000 }));
        expect(plain.backendCode).toBe('HOST_KEY_MISMATCH');
        expect(plain.message).toMatch(/insecureAllowUriNoVerify/);
        const named = await refusal(
          connectRpc({
            uri: sshUri(file),
            transport: { insecureAllowUriNoVerify: true },
            timeoutMs: 15_000,
          }),
        );
        expect(named.backendCode).toBe('HOST_KEY_MISMATCH');
        expect(named.message).toMatch(/changed or revoked key is always refused/);
      });

      it('an unknown host: refused without the named option, accepted with it (libvirt’s meaning)', async () => {
        const file = knownHosts('empty', []);
        const plain = await refusal(connectRpc({ uri: sshUri(file), timeoutMs: 15_000 }));
        expect(plain.backendCode).toBe('HOST_KEY_UNKNOWN');
        await using c = await connectRpc({
          uri: sshUri(file),
          transport: { insecureAllowUriNoVerify: true },
          timeoutMs: 15_000,
        });
        expect(await c.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
        // The known_hosts file is left as it was (nothing is learned from the connection).
        expect(readFileSync(file, 'utf8')).toBe('');
      });
    });

    it('fails with a clear error when the remote netcat path is missing or the host key is unknown', async () => {
      const nc = await connectRpc({
        uri: uri('system', '&netcat=/nonexistent/nc'),
        timeoutMs: 10_000,
      }).catch((e: unknown) => e);
      expect(HvkitError.isInstance(nc)).toBe(true);
      expect(['REMOTE', 'CONNECTION_LOST']).toContain((nc as HvkitError).code);
      expect((nc as HvkitError).message).toMatch(/nonexistent|not found|closed/);
      const unknownHost = await connectRpc({
        uri: `qemu+ssh://${env.HVKIT_SSH_USER}@${env.HVKIT_SSH_HOST}:${env.HVKIT_SSH_PORT}/system?keyfile=${env.HVKIT_SSH_KEY}&known_hosts=/dev/null`,
      }).catch((e: unknown) => e);
      expect(HvkitError.isInstance(unknownHost, 'AUTH_FAILED')).toBe(true);
    });
  },
);
