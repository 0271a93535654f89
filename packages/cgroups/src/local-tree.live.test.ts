/**
 * Live, on this machine's real cgroup tree (v1 hierarchies plus cgroup2 at /sys/fs/cgroup/unified: hybrid):
 * the issue's hvkit-bar example exactly as written, a scratch group created, limited, read back through
 * raw file reads and removed, the kernel's refusals as typed errors with their errno, the rollback of a
 * change that fails midway, and the libvirt peer's running QEMU guest discovered and its limits read
 * (read-only: other tests use that guest).
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { createLocalExec, type ResourceLimits } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection } from '../../core/src/__test-utils__';
import { localTree } from '../test/local-tree';
import { createScratchGroup, type ScratchGroup } from '../test/scratch';
import type { CgroupGuest } from './capabilities/inventory';
import { connect } from './connect';

const tree = localTree();
const raw = (path: string) => readFileSync(path, 'utf8').trim();

if (!tree.available) {
  describe('cgroups on the local tree', () => {
    it.skip(`skipped: ${tree.reason}`, () => {});
  });
} else {
  const { cpu, memory, blkio, pids } = tree.mounts;

  describe('the issue example: hvkit-bar made by hand in the cpu and memory hierarchies', () => {
    const dirs = [join(cpu, 'hvkit-bar'), join(memory, 'hvkit-bar')];
    beforeAll(() => {
      for (const d of dirs) mkdirSync(d);
    });
    afterAll(() => {
      for (const d of dirs) if (existsSync(d)) rmdirSync(d);
      for (const d of dirs) expect(existsSync(d)).toBe(false);
    });

    it('sets weight 200, maxCores 0.5 and 256 MiB as shares 2048, quota 50000/100000 and limit_in_bytes; weight 0 is INVALID_ARGUMENT and changes no file', async () => {
      await using hv = await connect({ extraGroups: ['hvkit-bar'] });
      const result = await hv.limits.set('hvkit-bar', {
        cpu: { weight: 200, maxCores: 0.5 },
        memory: { maxBytes: 268435456 },
      });
      expect(raw(join(cpu, 'hvkit-bar/cpu.shares'))).toBe('2048');
      expect(raw(join(cpu, 'hvkit-bar/cpu.cfs_quota_us'))).toBe('50000');
      expect(raw(join(cpu, 'hvkit-bar/cpu.cfs_period_us'))).toBe('100000');
      expect(raw(join(memory, 'hvkit-bar/memory.limit_in_bytes'))).toBe('268435456');
      expect(result.limits.cpu).toEqual({ weight: 200, maxCores: 0.5 });
      expect(result.limits.memory?.maxBytes).toBe(268435456);

      const before = ['cpu.shares', 'cpu.cfs_quota_us', 'cpu.cfs_period_us'].map((f) =>
        raw(join(cpu, 'hvkit-bar', f)),
      );
      const e = await rejection(hv.limits.set('hvkit-bar', { cpu: { weight: 0 } }));
      expect(e.code).toBe('INVALID_ARGUMENT');
      expect(
        ['cpu.shares', 'cpu.cfs_quota_us', 'cpu.cfs_period_us'].map((f) => raw(join(cpu, 'hvkit-bar', f))),
      ).toEqual(before);
      expect(raw(join(memory, 'hvkit-bar/memory.limit_in_bytes'))).toBe('268435456');
    });
  });

  describe('a scratch group on the local tree', () => {
    const exec = createLocalExec();
    let group: ScratchGroup;
    let pid: number;
    beforeAll(async () => {
      group = await createScratchGroup(exec, [cpu, memory, blkio, pids]);
      pid = await group.populate();
    });
    afterAll(async () => {
      await group?.remove();
    });

    it('is discovered as a running guest with its process, CPU time and memory', async () => {
      await using hv = await connect({ extraGroups: [group.id] });
      expect(hv.server.mode).toBe('hybrid');
      const guest = (await hv.inventory.getGuest(group.id)) as CgroupGuest;
      expect(guest).toMatchObject({ id: group.id, name: group.id, powerState: 'running', isTemplate: false });
      expect(guest.cgroup.pids).toEqual([pid]);
      expect(guest.cgroup.controllers).toEqual(expect.arrayContaining(['cpu', 'memory', 'io', 'pids']));
      expect(guest.cgroup.memoryCurrentBytes).toBeGreaterThanOrEqual(0);
      expect((await hv.inventory.listGuests()).map((g) => g.id)).toContain(group.id);
    });

    it('is limited, read back through raw files, and the adapter reads the same', async () => {
      await using hv = await connect({ extraGroups: [group.id] });
      const dev = raw('/sys/block/vda/dev');
      const patch: ResourceLimits = {
        cpu: { weight: 300, maxCores: 1.5 },
        memory: { maxBytes: 512 * 1024 * 1024, softBytes: 256 * 1024 * 1024, swapMaxBytes: 64 * 1024 * 1024 },
        disks: [{ device: 'vda', readBytesPerSec: 10 * 1024 * 1024, writeIops: 250 }],
        pids: { max: 64 },
      };
      const { limits } = await hv.limits.set(group.id, patch);
      const at = (m: string, f: string) => raw(join(m, group.id, f));
      expect(at(cpu, 'cpu.shares')).toBe('3072');
      expect(at(cpu, 'cpu.cfs_quota_us')).toBe('150000');
      expect(at(memory, 'memory.limit_in_bytes')).toBe(String(512 * 1024 * 1024));
      expect(at(memory, 'memory.soft_limit_in_bytes')).toBe(String(256 * 1024 * 1024));
      expect(at(memory, 'memory.memsw.limit_in_bytes')).toBe(String((512 + 64) * 1024 * 1024));
      expect(at(blkio, 'blkio.throttle.read_bps_device')).toBe(`${dev} ${10 * 1024 * 1024}`);
      expect(at(blkio, 'blkio.throttle.write_iops_device')).toBe(`${dev} 250`);
      expect(at(pids, 'pids.max')).toBe('64');
      const read = await hv.limits.get(group.id);
      expect(read).toEqual(limits);
      expect(read.cpu).toEqual({ weight: 300, maxCores: 1.5 });
      expect(read.memory).toEqual({
        maxBytes: 512 * 1024 * 1024,
        softBytes: 256 * 1024 * 1024,
        swapMaxBytes: 64 * 1024 * 1024,
      });
      expect(read.disks?.find((d) => d.device === 'vda')).toEqual({
        device: 'vda',
        readBytesPerSec: 10 * 1024 * 1024,
        writeBytesPerSec: null,
        readIops: null,
        writeIops: 250,
      });
      expect(read.pids).toEqual({ max: 64 });

      // Back to unlimited: -1 reads back as 9223372036854771712 on v1, which is null; a 0 rule deletes it.
      await hv.limits.set(group.id, {
        cpu: { weight: null, maxCores: null },
        memory: { maxBytes: null, softBytes: null, swapMaxBytes: null },
        disks: [{ device: '/dev/vda', readBytesPerSec: null, writeIops: null }],
        pids: { max: null },
      });
      expect(at(cpu, 'cpu.shares')).toBe('1024');
      expect(at(cpu, 'cpu.cfs_quota_us')).toBe('-1');
      expect(at(memory, 'memory.limit_in_bytes')).toBe('9223372036854771712');
      expect(at(memory, 'memory.memsw.limit_in_bytes')).toBe('9223372036854771712');
      expect(at(blkio, 'blkio.throttle.read_bps_device')).toBe('');
      expect(at(pids, 'pids.max')).toBe('max');
      expect(await hv.limits.get(group.id)).toMatchObject({
        cpu: { weight: null, maxCores: null },
        memory: { maxBytes: null, softBytes: null, swapMaxBytes: null },
        pids: { max: null },
      });
    });

    it('refuses what it can check before writing, and nothing changes', async () => {
      await using hv = await connect({ extraGroups: [group.id] });
      const files = ['cpu.shares', 'cpu.cfs_quota_us'].map((f) => join(cpu, group.id, f));
      const before = files.map(raw);
      for (const patch of [
        { cpu: { maxCores: 0.005 } }, // a 500 µs quota: below the kernel's 1000 µs
        { cpu: { weight: 10001 } },
        { disks: [{ device: 'hvkit-no-such-disk', readIops: 10 }] },
      ] as ResourceLimits[]) {
        expect((await rejection(hv.limits.set(group.id, patch))).code).toBe('INVALID_ARGUMENT');
      }
      expect(
        (await rejection(hv.limits.set(group.id, { cpu: { weight: 200 } }, { apply: 'persistent' }))).code,
      ).toBe('UNSUPPORTED');
      expect((await rejection(hv.limits.set(group.id, { memory: { minBytes: 1 << 20 } }))).code).toBe(
        'UNSUPPORTED',
      );
      expect(files.map(raw)).toEqual(before);
    });
  });

  describe('a change the kernel refuses midway is put back', () => {
    const exec = createLocalExec();
    let group: ScratchGroup;
    let parent: string;
    beforeAll(async () => {
      group = await createScratchGroup(exec, [cpu, memory], { child: true });
      parent = group.id.split('/')[0] as string;
      // cgroup v1 refuses a child quota above its parent's (EINVAL): half a core on the parent.
      execFileSync('sh', ['-c', 'echo 50000 > "$1"', 'sh', join(cpu, parent, 'cpu.cfs_quota_us')]);
    });
    afterAll(async () => {
      await group?.remove();
    });

    it('writes cpu.shares, gets EINVAL for the quota, puts cpu.shares back and says so', async () => {
      await using hv = await connect({ extraGroups: [group.id] });
      const shares = join(cpu, group.id, 'cpu.shares');
      const quota = join(cpu, group.id, 'cpu.cfs_quota_us');
      expect(raw(shares)).toBe('1024');
      const e = await rejection(hv.limits.set(group.id, { cpu: { weight: 300, maxCores: 1 } }));
      expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', backendCode: 'EINVAL', adapter: 'cgroups' });
      expect(e.details).toMatchObject({
        errno: 'EINVAL',
        path: quota,
        value: '100000',
        rolledBack: [shares],
      });
      expect(raw(shares)).toBe('1024');
      expect(raw(quota)).toBe('-1');
    });
  });

  const libvirt = livePeer('libvirtd', ['HVKIT_LIBVIRT_GUEST']);
  describe.skipIf(!libvirt.available)(
    `the libvirt peer's running QEMU guest${libvirt.available ? '' : ` (skipped: ${libvirt.reason})`}`,
    () => {
      it('is discovered in machine/ and its limits read as the raw files say (read only)', async () => {
        const name = libvirt.available ? libvirt.env.HVKIT_LIBVIRT_GUEST : '';
        await using hv = await connect();
        const guest = (await hv.inventory.getGuest({ name })) as CgroupGuest;
        expect(guest.id).toMatch(new RegExp(`^machine/qemu-\\d+-${name}\\.libvirt-qemu$`));
        expect(guest.cgroup).toMatchObject({ source: 'libvirt', driver: 'qemu' });
        expect(guest.powerState).toBe('running');
        const qemuPid = Number(raw(`/var/run/libvirt/qemu/${name}.pid`));
        expect(guest.cgroup.pids).toContain(qemuPid);
        const vcpuDirs = execFileSync('ls', [join(cpu, guest.id)], { encoding: 'utf8' })
          .split('\n')
          .filter((n) => /^vcpu\d+$/.test(n)).length;
        expect(guest.vcpus).toBe(vcpuDirs);
        const limits = await hv.limits.get(guest.id);
        const shares = Number(raw(join(cpu, guest.id, 'cpu.shares')));
        const weight = Math.round((shares * 100) / 1024);
        expect(limits.cpu?.weight).toBe(weight === 100 ? null : weight);
        const q = Number(raw(join(cpu, guest.id, 'cpu.cfs_quota_us')));
        const p = Number(raw(join(cpu, guest.id, 'cpu.cfs_period_us')));
        expect(limits.cpu?.maxCores).toBe(q < 0 ? null : q / p);
        const mem = raw(join(memory, guest.id, 'memory.limit_in_bytes'));
        expect(limits.memory?.maxBytes).toBe(mem === '9223372036854771712' ? null : Number(mem));
      });
    },
  );
}
