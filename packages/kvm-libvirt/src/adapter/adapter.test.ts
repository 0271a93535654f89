import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { detectLocalCgroupVersion } from './connect';
import { toGuestEvent } from './events';
import { readSelinuxEnforcing } from './inventory';
import {
  KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS,
  KVM_LIBVIRT_SUPPORTS,
  KVM_LIBVIRT_TEST_DRIVER_SUPPORTS,
  supportsForDriver,
} from './supports';

// /proc/self/mountinfo lines: "<id> <parent> <maj:min> <root> <mount point> <options> ... - <fstype> <source> <super options>"
const HYBRID = [
  '30 25 0:26 / /sys/fs/cgroup rw,nosuid - tmpfs tmpfs ro,mode=755',
  '31 30 0:27 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw,nsdelegate',
  '33 30 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,nosuid - cgroup cgroup rw,cpu,cpuacct',
].join('\n');
const UNIFIED = '30 25 0:26 / /sys/fs/cgroup rw,nosuid - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot';
const V1_WITHOUT_CPU = '33 30 0:29 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory';

describe('detectLocalCgroupVersion', () => {
  it('finds the cpu controller on v1 in a hybrid layout', async () => {
    expect(await detectLocalCgroupVersion(HYBRID)).toBe(1);
  });
  it('reports 2 for a unified hierarchy', async () => {
    expect(await detectLocalCgroupVersion(UNIFIED)).toBe(2);
  });
  it('is undefined without a cpu controller or cgroup2 mount', async () => {
    expect(await detectLocalCgroupVersion(V1_WITHOUT_CPU)).toBeUndefined();
    expect(await detectLocalCgroupVersion('')).toBeUndefined();
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
