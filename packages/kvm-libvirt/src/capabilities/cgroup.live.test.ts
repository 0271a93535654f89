/**
 * The cgroup version of a remote daemon host, live: qemu+ssh:// to the sshd peer on this machine, whose
 * kernel keeps the `cpu` and `memory` controllers on cgroup v1 (hybrid: cgroup2 at
 * /sys/fs/cgroup/unified holds none of them), and qemu+tcp:// through a loopback TCP forwarder to the
 * libvirtd peer's socket, over which the host's files cannot be read.
 *
 * The probe is the guest's own cgroup files: the QEMU process's groups from /proc/<pid>/cgroup (pid from
 * /var/run/libvirt/qemu/<guest>.pid), read on this machine, which is the daemon host.
 */

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { HvkitError, hvkitError, type Logger } from '@hvkit/core';
import { connectSsh } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../connect';
import { detectCgroupVersion, detectLocalCgroupVersion, sshHostFileReader } from './cgroup';

/**
 * The weight hvkit reports for cgroup v1 `cpu.shares`: shares × 100 / 1024, and `null` at the default
 * (1024 shares, weight 100), since a field at its backend default reads `null`. Read as v2, 1024 shares
 * would be weight 1024, so the default still tells the versions apart.
 */
function v1Weight(shares: number): number | null {
  const weight = Math.round((shares * 100) / 1024);
  return weight === 100 ? null : weight;
}

const peer = livePeer('sshd+libvirtd', [
  'HVKIT_SSH_HOST',
  'HVKIT_SSH_PORT',
  'HVKIT_SSH_USER',
  'HVKIT_SSH_KEY',
  'HVKIT_SSH_KNOWN_HOSTS',
  'HVKIT_LIBVIRT_GUEST',
  'HVKIT_LIBVIRT_SOCKET',
]);

/** Where the cgroup v1 hierarchy holding `controller` is mounted on this machine. */
function v1Mount(controller: string): string {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , options = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup' && options.split(',').includes(controller)) {
      return line.slice(0, sep).split(' ')[4] as string;
    }
  }
  throw new Error(`no cgroup v1 mount with ${controller}`);
}

/** The guest's own cgroup directory for `controller` (the domain's group, above emulator/vcpuN). */
function guestCgroupDir(guest: string, controller: 'cpu' | 'memory'): string {
  const pid = readFileSync(`/var/run/libvirt/qemu/${guest}.pid`, 'utf8').trim();
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => (l.split(':')[1] ?? '').split(',').includes(controller));
  if (!line) throw new Error(`QEMU pid ${pid} has no ${controller} cgroup`);
  const path = (line.split(':')[2] as string).replace(/\/(emulator|vcpu\d+|iothread\d+)$/, '');
  return join(v1Mount(controller), path);
}

function readNumber(dir: string, file: string): number {
  return Number(readFileSync(join(dir, file), 'utf8').trim());
}

/** A logger that keeps its warnings. */
function warnSpy(): Logger & { warnings: string[] } {
  const warnings: string[] = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn(message) {
      warnings.push(message);
    },
    error() {},
  };
}

describe.skipIf(!peer.available)(
  `cgroup version of the daemon host, live (peers sshd and libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const guest = env.HVKIT_LIBVIRT_GUEST as string;
    const sshUri = `qemu+ssh://${env.HVKIT_SSH_USER}@${env.HVKIT_SSH_HOST}:${env.HVKIT_SSH_PORT}/system?keyfile=${env.HVKIT_SSH_KEY}&known_hosts=${env.HVKIT_SSH_KNOWN_HOSTS}`;

    it('the peer host is cgroup v1 for the cpu controller (what the checks below rely on)', async () => {
      expect(await detectLocalCgroupVersion()).toBe(1);
    });

    it('reads the remote files over SFTP, and with cat where the server has no SFTP subsystem', async () => {
      await using ssh = await connectSsh({
        host: env.HVKIT_SSH_HOST as string,
        port: Number(env.HVKIT_SSH_PORT),
        username: env.HVKIT_SSH_USER as string,
        auth: { privateKey: env.HVKIT_SSH_KEY as string },
        hostKey: { knownHostsFile: env.HVKIT_SSH_KNOWN_HOSTS as string },
      });
      const local = readFileSync('/sys/fs/cgroup/cpu/cpu.shares', 'utf8');
      expect(await sshHostFileReader(ssh)('/sys/fs/cgroup/cpu/cpu.shares')).toBe(local);
      expect(await sshHostFileReader(ssh)('/nonexistent/cgroup.controllers')).toBeUndefined();
      expect(await detectCgroupVersion(sshHostFileReader(ssh))).toBe(1);
      // The same connection with its SFTP subsystem refused (as sshd without `Subsystem sftp` does).
      const noSftp = Object.create(ssh, {
        files: {
          value: {
            readFile: () =>
              Promise.reject(
                hvkitError('REMOTE', 'Unable to start subsystem: sftp', { operation: 'ssh.files' }),
              ),
          },
        },
      }) as typeof ssh;
      expect(await sshHostFileReader(noSftp)('/sys/fs/cgroup/cpu/cpu.shares')).toBe(local);
      expect(await sshHostFileReader(noSftp)('/nonexistent/cgroup.controllers')).toBeUndefined();
      expect(await detectCgroupVersion(sshHostFileReader(noSftp))).toBe(1);
    });

    it('qemu+ssh:// detects cgroup v1 on the remote host; weights and swap read and write the v1 files', async () => {
      await using hv = await connect({ uri: sshUri });
      expect(hv.cgroupVersion).toBe(1);
      const supports = hv.supports.limits;
      expect(supports !== false && [supports.cpu.weight, supports.memory.swapMaxBytes]).toEqual([true, true]);
      const cpuDir = guestCgroupDir(guest, 'cpu');
      const memDir = guestCgroupDir(guest, 'memory');
      const sharesBefore = readNumber(cpuDir, 'cpu.shares');
      const read = await hv.limits!.get({ name: guest }, { from: 'live' });
      // v1: weight = shares × 100 / 1024 (1024 is weight 100), not the shares themselves.
      expect(read.cpu?.weight).toBe(v1Weight(sharesBefore));
      try {
        await hv.limits!.set({ name: guest }, { cpu: { weight: 150 } }, { apply: 'live' });
        expect(readNumber(cpuDir, 'cpu.shares')).toBe(1536);
        expect((await hv.limits!.get({ name: guest }, { from: 'live' })).cpu?.weight).toBe(150);

        const mib = 1024 * 1024;
        const set = await hv.limits!.set(
          { name: guest },
          { memory: { maxBytes: 512 * mib, swapMaxBytes: 256 * mib } },
          { apply: 'live' },
        );
        // v1: memory.memsw.limit_in_bytes is memory + swap.
        expect(readNumber(memDir, 'memory.limit_in_bytes')).toBe(512 * mib);
        expect(readNumber(memDir, 'memory.memsw.limit_in_bytes')).toBe(768 * mib);
        expect(set.limits.memory).toMatchObject({ maxBytes: 512 * mib, swapMaxBytes: 256 * mib });
      } finally {
        await hv.limits!.set(
          { name: guest },
          {
            cpu: { weight: Math.round((sharesBefore * 100) / 1024) },
            memory: { maxBytes: null, swapMaxBytes: null },
          },
          { apply: 'live' },
        );
      }
      expect(readNumber(cpuDir, 'cpu.shares')).toBe(sharesBefore);
      expect(readNumber(memDir, 'memory.memsw.limit_in_bytes')).toBeGreaterThan(2 ** 60);
    });

    describe('qemu+tcp:// (the host cannot be read): no conversion on a guess', () => {
      let server: Server;
      let port = 0;
      const sockets = new Set<Socket>();
      beforeAll(async () => {
        // A plain TCP forwarder to the daemon's Unix socket: the adapter takes its qemu+tcp code path.
        server = createServer((client) => {
          const upstream = netConnect(env.HVKIT_LIBVIRT_SOCKET as string);
          for (const s of [client, upstream]) {
            sockets.add(s);
            s.on('error', () => {
              client.destroy();
              upstream.destroy();
            });
            s.on('close', () => sockets.delete(s));
          }
          client.pipe(upstream).pipe(client);
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        port = (server.address() as { port: number }).port;
      });
      afterAll(async () => {
        for (const s of sockets) s.destroy();
        await new Promise((resolve) => server.close(resolve));
      });

      it('limits.get leaves out cpu.weight and memory.swapMaxBytes, with one warning naming the option', async () => {
        const logger = warnSpy();
        await using hv = await connect({ uri: `qemu+tcp://127.0.0.1:${port}/system`, logger });
        expect(hv.cgroupVersion).toBeUndefined();
        const supports = hv.supports.limits;
        expect(supports !== false && [supports.cpu.weight, supports.memory.swapMaxBytes]).toEqual([
          false,
          false,
        ]);
        const limits = await hv.limits!.get({ name: guest }, { from: 'live' });
        expect(limits.cpu).not.toHaveProperty('weight');
        expect(limits.memory).not.toHaveProperty('swapMaxBytes');
        // What does not depend on the version is still there.
        expect(limits.cpu).toHaveProperty('maxCores');
        expect(limits.memory).toHaveProperty('maxBytes');
        await hv.limits!.get({ name: guest }, { from: 'persistent' });
        expect(logger.warnings).toHaveLength(1);
        expect(logger.warnings[0]).toMatch(/cpu\.weight, memory\.swapMaxBytes .*cgroupVersion/);
      });

      it('limits.set rejects them with UNSUPPORTED naming the option, and changes nothing', async () => {
        await using hv = await connect({ uri: `qemu+tcp://127.0.0.1:${port}/system` });
        const cpuDir = guestCgroupDir(guest, 'cpu');
        const memDir = guestCgroupDir(guest, 'memory');
        const before = [
          readNumber(cpuDir, 'cpu.shares'),
          readNumber(memDir, 'memory.limit_in_bytes'),
          readNumber(memDir, 'memory.memsw.limit_in_bytes'),
        ];
        try {
          for (const patch of [
            { cpu: { weight: 150 } },
            { cpu: { weight: 150, maxCores: 1 } },
            { memory: { swapMaxBytes: 256 * 1024 * 1024 } },
            { memory: { maxBytes: 512 * 1024 * 1024, swapMaxBytes: null } },
          ]) {
            const error = await hv
              .limits!.set({ name: guest }, patch, { apply: 'live' })
              .catch((e: unknown) => e);
            expect(HvkitError.isInstance(error, 'UNSUPPORTED'), String(error)).toBe(true);
            expect((error as HvkitError).message).toMatch(/cgroupVersion/);
            expect((error as HvkitError).message).toMatch(/cpu\.weight|memory\.swapMaxBytes/);
          }
          expect([
            readNumber(cpuDir, 'cpu.shares'),
            readNumber(memDir, 'memory.limit_in_bytes'),
            readNumber(memDir, 'memory.memsw.limit_in_bytes'),
          ]).toEqual(before);
        } finally {
          // Put the shares back should a broken build have written them (the bug this guards against).
          if (readNumber(cpuDir, 'cpu.shares') !== before[0]) {
            execFileSync('virsh', [
              '-c',
              'qemu:///system',
              'schedinfo',
              guest,
              '--live',
              '--set',
              `cpu_shares=${before[0]}`,
            ]);
          }
        }
      });

      it('limits.set refuses memory.maxBytes alone while a swap limit is set (v1 would re-send it)', async () => {
        const mib = 1024 * 1024;
        await using v1 = await connect({ uri: sshUri });
        await v1.limits!.set(
          { name: guest },
          { memory: { maxBytes: 512 * mib, swapMaxBytes: 256 * mib } },
          { apply: 'live' },
        );
        try {
          await using hv = await connect({ uri: `qemu+tcp://127.0.0.1:${port}/system` });
          const error = await hv
            .limits!.set({ name: guest }, { memory: { maxBytes: 640 * mib } }, { apply: 'live' })
            .catch((e: unknown) => e);
          expect(HvkitError.isInstance(error, 'UNSUPPORTED'), String(error)).toBe(true);
          expect((error as HvkitError).message).toMatch(/memory\.maxBytes.*cgroupVersion/s);
          const memDir = guestCgroupDir(guest, 'memory');
          expect(readNumber(memDir, 'memory.limit_in_bytes')).toBe(512 * mib);
          expect(readNumber(memDir, 'memory.memsw.limit_in_bytes')).toBe(768 * mib);
        } finally {
          await v1.limits!.set(
            { name: guest },
            { memory: { maxBytes: null, swapMaxBytes: null } },
            { apply: 'live' },
          );
        }
      });

      it('with cgroupVersion given, qemu+tcp:// converts as told', async () => {
        await using hv = await connect({ uri: `qemu+tcp://127.0.0.1:${port}/system`, cgroupVersion: 1 });
        expect(hv.cgroupVersion).toBe(1);
        const shares = readNumber(guestCgroupDir(guest, 'cpu'), 'cpu.shares');
        const limits = await hv.limits!.get({ name: guest }, { from: 'live' });
        expect(limits.cpu?.weight).toBe(v1Weight(shares));
      });
    });
  },
);
