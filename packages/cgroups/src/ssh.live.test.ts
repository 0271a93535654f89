/**
 * Live over SSH to the sshd peer, which is this same machine: the hybrid tree read over SFTP and written
 * with `dd` over exec on one connection. A scratch group created (over the same connection), limited,
 * read back through raw local file reads, a kernel refusal typed with its errno, the group removed; and
 * the libvirt peer's running QEMU guest discovered and its limits read (read only).
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { HvkitError } from '@hvkit/core';
import { connectSsh, type SshClient } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { localTree } from '../test/local-tree';
import { createScratchGroup, type ScratchGroup } from '../test/scratch';
import type { CgroupGuest } from './capabilities/inventory';
import { connect } from './connect';
import { sshCgroupFiles as sshCgroupWrite } from './protocol/ssh-files';

const sshd = livePeer('sshd', [
  'HVKIT_SSH_HOST',
  'HVKIT_SSH_PORT',
  'HVKIT_SSH_USER',
  'HVKIT_SSH_KEY',
  'HVKIT_SSH_KNOWN_HOSTS',
  'HVKIT_LIBVIRT_GUEST',
]);
const tree = localTree();
const raw = (path: string) => readFileSync(path, 'utf8').trim();

if (!sshd.available || !tree.available) {
  describe('cgroups over SSH', () => {
    it.skip(`skipped: ${sshd.available ? (tree.available ? '' : tree.reason) : sshd.reason}`, () => {});
  });
} else {
  const { cpu, memory, blkio, pids } = tree.mounts;
  describe('cgroups over SSH to the sshd peer (this machine)', () => {
    let ssh: SshClient;
    let group: ScratchGroup;
    let pid: number;
    beforeAll(async () => {
      ssh = await connectSsh({
        host: sshd.env.HVKIT_SSH_HOST,
        port: Number(sshd.env.HVKIT_SSH_PORT),
        username: sshd.env.HVKIT_SSH_USER,
        auth: { privateKey: sshd.env.HVKIT_SSH_KEY },
        hostKey: { knownHostsFile: sshd.env.HVKIT_SSH_KNOWN_HOSTS },
      });
      group = await createScratchGroup(ssh.exec, [cpu, memory, blkio, pids]);
      pid = await group.populate();
    });
    afterAll(async () => {
      try {
        await group?.remove();
      } finally {
        await ssh?.close();
      }
    });

    it('detects the hybrid mode and each controller over SFTP', async () => {
      await using hv = await connect({ ssh });
      expect(hv.server).toMatchObject({ mode: 'hybrid', product: 'cgroup-hybrid' });
      expect(hv.server.controllers.cpu).toEqual({ version: 1, mountPoint: cpu });
      expect(hv.supports.limits).toMatchObject({
        modes: ['live'],
        memory: { minBytes: false, swapMaxBytes: true },
      });
    });

    it('limits the scratch group over SSH; the local files say the same', async () => {
      await using hv = await connect({ ssh, extraGroups: [group.id] });
      const guest = (await hv.inventory.getGuest(group.id)) as CgroupGuest;
      expect(guest.cgroup.pids).toEqual([pid]);
      const { limits } = await hv.limits.set(group.id, {
        cpu: { weight: 50, maxCores: 0.25 },
        memory: { maxBytes: 128 * 1024 * 1024 },
        disks: [{ device: '/dev/vda', writeBytesPerSec: 1048576 }],
        pids: { max: 16 },
      });
      expect(raw(join(cpu, group.id, 'cpu.shares'))).toBe('512');
      expect(raw(join(cpu, group.id, 'cpu.cfs_quota_us'))).toBe('25000');
      expect(raw(join(memory, group.id, 'memory.limit_in_bytes'))).toBe(String(128 * 1024 * 1024));
      expect(raw(join(blkio, group.id, 'blkio.throttle.write_bps_device'))).toBe(
        `${raw('/sys/block/vda/dev')} 1048576`,
      );
      expect(raw(join(pids, group.id, 'pids.max'))).toBe('16');
      expect(limits).toMatchObject({ cpu: { weight: 50, maxCores: 0.25 }, pids: { max: 16 } });
      expect(await hv.limits.get(group.id)).toEqual(limits);
    });

    it("carries the kernel's errno over SSH: a quota of 0.001 cores is refused before writing, an unknown device is refused before writing; dd's errno survives (ENODEV, EINVAL, ENOENT)", async () => {
      await using hv = await connect({ ssh, extraGroups: [group.id] });
      const e1 = await hv.limits.set(group.id, { cpu: { maxCores: 0.001 } }).catch((e: unknown) => e);
      expect(HvkitError.isInstance(e1) && e1.code).toBe('INVALID_ARGUMENT');
      // 1:3 is /dev/null, a character device: no block device has it, so it is refused before writing.
      const e2 = await hv.limits
        .set(group.id, { disks: [{ device: '1:3', readIops: 5 }] })
        .catch((e: unknown) => e);
      expect(HvkitError.isInstance(e2) && e2.code).toBe('INVALID_ARGUMENT');
      // The SSH writer itself, where the kernel decides: ENODEV, EINVAL, and ENOENT (dd's nocreat).
      const files = sshCgroupWrite(ssh);
      const e3 = await files
        .writeFile(join(blkio, group.id, 'blkio.throttle.read_iops_device'), '250:77 5')
        .catch((e: unknown) => e);
      expect(e3).toMatchObject({ code: 'NOT_FOUND', backendCode: 'ENODEV' });
      const e4 = await files
        .writeFile(join(cpu, group.id, 'cpu.cfs_quota_us'), '500')
        .catch((e: unknown) => e);
      expect(e4).toMatchObject({ code: 'INVALID_ARGUMENT', backendCode: 'EINVAL' });
      const e5 = await files.writeFile(join(cpu, group.id, 'no-such-file'), '1').catch((e: unknown) => e);
      expect(e5).toMatchObject({ code: 'NOT_FOUND', backendCode: 'ENOENT' });
    });

    it("discovers the libvirt peer's running QEMU guest and reads its limits (read only)", async () => {
      await using hv = await connect({ ssh });
      const name = sshd.env.HVKIT_LIBVIRT_GUEST;
      const guest = (await hv.inventory.getGuest({ name })) as CgroupGuest;
      expect(guest).toMatchObject({ name, powerState: 'running' });
      expect(guest.cgroup.pids).toContain(Number(raw(`/var/run/libvirt/qemu/${name}.pid`)));
      const limits = await hv.limits.get({ name });
      const shares = Number(raw(join(cpu, guest.id, 'cpu.shares')));
      expect(limits.cpu?.weight ?? 100).toBe(Math.round((shares * 100) / 1024));
      await using local = await connect();
      expect(await local.limits.get({ name })).toEqual(limits);
    });
  });
}
