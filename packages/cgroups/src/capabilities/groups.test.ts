/**
 * Guest discovery end to end on a directory tree laid out like the hosts of the notes' §1.2 (a cgroup v2
 * systemd host with libvirt machine scopes and a partition, plus libvirt's cgroupfs layout with a custom
 * partition), read through core's local files below a root directory.
 */

import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalFiles, hvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../connect';
import type { CgroupGuest } from './inventory';

let root: string;
const CG = 'sys/fs/cgroup';

function group(path: string, files: Record<string, string> = {}) {
  const dir = join(root, CG, path);
  mkdirSync(dir, { recursive: true });
  const all = {
    'cgroup.procs': '',
    'cpu.weight': '100\n',
    'cpu.max': 'max 100000\n',
    'memory.max': 'max\n',
    ...files,
  };
  for (const [name, content] of Object.entries(all)) writeFileSync(join(dir, name), content);
}

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hvkit-cgroups-discovery-'));
  mkdirSync(join(root, 'proc/self'), { recursive: true });
  mkdirSync(join(root, 'proc/sys/kernel'), { recursive: true });
  writeFileSync(
    join(root, 'proc/self/mountinfo'),
    '25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate\n',
  );
  writeFileSync(join(root, 'proc/sys/kernel/osrelease'), '6.1.0\n');
  writeFileSync(join(root, 'proc/sys/kernel/hostname'), 'kvm1\n');
  writeFileSync(join(root, 'proc/meminfo'), 'MemTotal:        8388608 kB\n');
  mkdirSync(join(root, 'sys/devices/system/cpu'), { recursive: true });
  writeFileSync(join(root, 'sys/devices/system/cpu/online'), '0-3\n');
  mkdirSync(join(root, CG), { recursive: true });
  writeFileSync(join(root, CG, 'cgroup.controllers'), 'cpuset cpu io memory pids\n');
  // systemd: machine.slice/machine-qemu\x2d3\x2dweb\x2d1.scope with libvirt's libvirt/vcpuN below it.
  group('machine.slice/machine-qemu\\x2d3\\x2dweb\\x2d1.scope', {
    'cpu.weight': '200\n',
    'cpu.max': '50000 100000\n',
  });
  group('machine.slice/machine-qemu\\x2d3\\x2dweb\\x2d1.scope/libvirt/vcpu0', { 'cgroup.procs': '4242\n' });
  group('machine.slice/machine-prod.slice/machine-qemu\\x2d9\\x2ddb.scope', { 'memory.max': '1073741824\n' });
  group('machine.slice/machine-nspawn1.scope');
  group('machine.slice/systemd-machined.service');
  // libvirt cgroupfs layout, with a custom partition.
  group('machine/qemu-4-g1.libvirt-qemu');
  group('machine/qemu-4-g1.libvirt-qemu/vcpu0');
  group('machine/qemu-4-g1.libvirt-qemu/vcpu1');
  group('machine/prod.partition/lxc-2-ct1.libvirt-lxc');
  group('machine/not-a-guest');
  group('hvkit-bar');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

describe('guest discovery', () => {
  it('finds libvirt cgroupfs groups (partitions too), systemd machine scopes (unescaped) and extra groups', async () => {
    await using hv = await connect({
      files: createLocalFiles(),
      root,
      extraGroups: ['hvkit-bar', 'hvkit-missing'],
    });
    expect(hv.server).toMatchObject({ mode: 'unified', product: 'cgroup-v2' });
    const guests = (await hv.inventory.listGuests()) as CgroupGuest[];
    expect(guests.map((g) => [g.id, g.name, g.cgroup.source, g.cgroup.driver, g.cgroup.domainId])).toEqual([
      ['hvkit-bar', 'hvkit-bar', 'extra', undefined, undefined],
      ['machine.slice/machine-nspawn1.scope', 'nspawn1', 'systemd', undefined, undefined],
      ['machine.slice/machine-prod.slice/machine-qemu\\x2d9\\x2ddb.scope', 'db', 'systemd', 'qemu', 9],
      ['machine.slice/machine-qemu\\x2d3\\x2dweb\\x2d1.scope', 'web-1', 'systemd', 'qemu', 3],
      ['machine/prod.partition/lxc-2-ct1.libvirt-lxc', 'ct1', 'libvirt', 'lxc', 2],
      ['machine/qemu-4-g1.libvirt-qemu', 'g1', 'libvirt', 'qemu', 4],
    ]);
    const web = guests.find((g) => g.name === 'web-1') as CgroupGuest;
    expect(web).toMatchObject({ powerState: 'running', vcpus: 4, memoryBytes: 8 * 1024 * 1024 * 1024 });
    expect(web.cgroup.pids).toEqual([4242]);
    expect(guests.find((g) => g.name === 'g1')).toMatchObject({ powerState: 'stopped', vcpus: 2 });
    expect(guests.find((g) => g.name === 'db')?.memoryBytes).toBe(1073741824);
    expect(await hv.limits.get({ name: 'web-1' })).toMatchObject({ cpu: { weight: 200, maxCores: 0.5 } });
    expect((await hv.inventory.getGuest({ name: 'hvkit-missing' }).catch((e) => e)).code).toBe('NOT_FOUND');
  });

  it('refuses extra group paths that leave the hierarchy, before reading anything', async () => {
    await expect(connect({ files: createLocalFiles(), root, extraGroups: ['../etc'] })).rejects.toMatchObject(
      {
        code: 'INVALID_ARGUMENT',
      },
    );
    await expect(connect({ root, extraGroups: 'hvkit-bar' as never })).rejects.toThrow(TypeError);
    await expect(connect({ root, ssh: {} as never, files: createLocalFiles() })).rejects.toThrow(TypeError);
  });

  it('a discovery whose walk fails before the host name read fails leaves no unhandled rejection', async () => {
    const local = createLocalFiles();
    let broken = false;
    const failing = (ms: number) =>
      new Promise<never>((_, reject) =>
        setTimeout(() => reject(hvkitError('REMOTE', 'transport failed', { operation: 'test' })), ms),
      );
    const files = {
      ...local,
      target: 'test',
      readFile: (path: string, call?: { signal?: AbortSignal; timeoutMs?: number }) =>
        broken && path.endsWith('/proc/sys/kernel/hostname') ? failing(50) : local.readFile(path, call),
      list: (path: string, call?: { signal?: AbortSignal; timeoutMs?: number }) =>
        broken ? failing(0) : local.list(path, call),
    };
    const unhandled: unknown[] = [];
    const onUnhandled = (reason: unknown) => unhandled.push(reason);
    process.on('unhandledRejection', onUnhandled);
    try {
      await using hv = await connect({ files, root });
      broken = true;
      const error = await hv.inventory.listGuests().catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'REMOTE' });
      await new Promise((resolve) => setTimeout(resolve, 200));
    } finally {
      process.off('unhandledRejection', onUnhandled);
    }
    expect(unhandled).toEqual([]);
  });
});
