import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS,
  KVM_LIBVIRT_SUPPORTS,
  KVM_LIBVIRT_TEST_DRIVER_SUPPORTS,
  supportsForDriver,
  withoutCgroupDependentLimits,
} from '../supports';
import { detectCgroupVersion, parseCgroupMounts } from './cgroup';
import { toGuestEvent } from './events';
import { readSelinuxEnforcing } from './inventory';

// /proc/self/mountinfo lines: "<id> <parent> <maj:min> <root> <mount point> <options> ... - <fstype> <source> <super options>"
const HYBRID = [
  '30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755',
  '31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
  '33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
].join('\n');
const UNIFIED = '30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';
const V1_WITHOUT_CPU = '33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory';
/** A hybrid host whose cpu controller is on no v1 hierarchy (and so free for the unified one). */
const HYBRID_CPU_ON_V2 = [
  '31 30 0:27 / /sys/fs/cgroup/unified\\040dir rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
  '35 30 0:31 / /sys/fs/cgroup/memory rw,nosuid - cgroup cgroup rw,memory',
].join('\n');

/** Reads from a fixed set of host files (the reader the SSH and local detections pass in). */
function files(map: Record<string, string>) {
  return async (path: string) => map[path];
}

describe('cgroup version detection', () => {
  it('finds the cpu controller on v1 in a hybrid layout', async () => {
    expect(parseCgroupMounts(HYBRID)).toEqual({ v1Cpu: true, unified: '/sys/fs/cgroup/unified' });
    expect(await detectCgroupVersion(files({ '/proc/self/mountinfo': HYBRID }))).toBe(1);
  });
  it('reports 2 only when the unified hierarchy holds the cpu controller', async () => {
    const mountinfo = '/proc/self/mountinfo';
    expect(
      await detectCgroupVersion(
        files({ [mountinfo]: UNIFIED, '/sys/fs/cgroup/cgroup.controllers': 'cpuset cpu io memory pids\n' }),
      ),
    ).toBe(2);
    // cgroup2 mounted, but its controllers (read from the mount point, octal escapes undone) lack cpu.
    expect(
      await detectCgroupVersion(
        files({ [mountinfo]: UNIFIED, '/sys/fs/cgroup/cgroup.controllers': 'hugetlb\n' }),
      ),
    ).toBeUndefined();
    expect(parseCgroupMounts(HYBRID_CPU_ON_V2).unified).toBe('/sys/fs/cgroup/unified dir');
    expect(
      await detectCgroupVersion(
        files({ [mountinfo]: HYBRID_CPU_ON_V2, '/sys/fs/cgroup/unified dir/cgroup.controllers': 'cpu pids' }),
      ),
    ).toBe(2);
    // The controllers file cannot be read: no guess.
    expect(await detectCgroupVersion(files({ [mountinfo]: UNIFIED }))).toBeUndefined();
  });
  it('is undefined without a cpu controller or cgroup2 mount, or without mountinfo', async () => {
    expect(await detectCgroupVersion(files({ '/proc/self/mountinfo': V1_WITHOUT_CPU }))).toBeUndefined();
    expect(await detectCgroupVersion(files({ '/proc/self/mountinfo': '' }))).toBeUndefined();
    expect(await detectCgroupVersion(files({}))).toBeUndefined();
  });
});

describe('toGuestEvent', () => {
  const dom = { name: 'g1', uuid: '68766B69-7431-4000-8000-000000000001', id: 3 };
  it('names the event type and detail, with the lower-case uuid as id', () => {
    const at = new Date(0);
    expect(toGuestEvent({ callbackId: 1, dom, event: 5, detail: 1 }, at)).toEqual({
      guest: {
        id: '68766b69-7431-4000-8000-000000000001',
        uuid: '68766b69-7431-4000-8000-000000000001',
        name: 'g1',
      },
      type: 'stopped',
      detail: 'destroyed',
      at,
    });
    expect(toGuestEvent({ callbackId: 1, dom, event: 3, detail: 0 }, at).type).toBe('suspended');
  });
  it('keeps unknown numbers visible', () => {
    const e = toGuestEvent({ callbackId: 1, dom, event: 42, detail: 7 });
    expect([e.type, e.detail]).toEqual(['event-42', '7']);
  });
});

describe('supportsForDriver', () => {
  it('picks the test driver manifest for TEST only', () => {
    expect(supportsForDriver('TEST')).toBe(KVM_LIBVIRT_TEST_DRIVER_SUPPORTS);
    expect(supportsForDriver('test')).toBe(KVM_LIBVIRT_TEST_DRIVER_SUPPORTS);
    expect(supportsForDriver('QEMU')).toBe(KVM_LIBVIRT_SUPPORTS);
    expect(supportsForDriver('LXC')).toBe(KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS);
    expect(supportsForDriver('Xen')).toBe(KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS);
    expect(KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS.limits).toBe(false);
    const t = KVM_LIBVIRT_TEST_DRIVER_SUPPORTS;
    expect(t.backups !== false && t.backups.full).toBe(false);
    expect(t.limits !== false && t.limits.cpu.weight).toBe(false);
  });
  it('drops the cgroup-dependent limits for an unknown cgroup version', () => {
    const m = withoutCgroupDependentLimits(KVM_LIBVIRT_SUPPORTS);
    expect(m.limits !== false && [m.limits.cpu.weight, m.limits.memory.swapMaxBytes]).toEqual([false, false]);
    expect(m.limits !== false && [m.limits.cpu.maxCores, m.limits.memory.maxBytes]).toEqual([true, true]);
    expect(KVM_LIBVIRT_SUPPORTS.limits !== false && KVM_LIBVIRT_SUPPORTS.limits.cpu.weight).toBe(true);
    expect(withoutCgroupDependentLimits(KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS)).toBe(
      KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS,
    );
  });
});

describe('readSelinuxEnforcing', () => {
  it("reads selinuxfs's enforce file: 1 enforcing, 0 permissive, anything else or no file unknown", async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvkit-selinux-'));
    try {
      const file = (name: string, text: string) => {
        writeFileSync(join(dir, name), text);
        return join(dir, name);
      };
      expect(await readSelinuxEnforcing(file('on', '1'))).toBe(true);
      expect(await readSelinuxEnforcing(file('off', '0\n'))).toBe(false);
      expect(await readSelinuxEnforcing(file('odd', 'x'))).toBeUndefined();
      expect(await readSelinuxEnforcing(join(dir, 'missing'))).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
