import { describe, expect, it } from 'vitest';
import {
  countCpuList,
  groupUuid,
  isPartition,
  libvirtGroupName,
  normaliseGroupPath,
  systemdScopeName,
  unescapeSystemdName,
} from './groups';

describe('guest names from group names', () => {
  it('libvirt cgroupfs: qemu-3-g1.libvirt-qemu is g1 (driver qemu, id 3); dashes in the name stay', () => {
    expect(libvirtGroupName('qemu-3-g1.libvirt-qemu')).toEqual({ name: 'g1', driver: 'qemu', domainId: 3 });
    expect(libvirtGroupName('qemu-1-hvkit-guest1.libvirt-qemu')).toEqual({
      name: 'hvkit-guest1',
      driver: 'qemu',
      domainId: 1,
    });
    expect(libvirtGroupName('lxc-12-web.libvirt-lxc')).toMatchObject({ name: 'web', driver: 'lxc' });
    expect(libvirtGroupName('emulator')).toBeUndefined();
  });

  it('systemd scopes: the \\x2d escaping is undone', () => {
    expect(unescapeSystemdName('qemu\\x2d3\\x2dg1')).toBe('qemu-3-g1');
    expect(systemdScopeName('machine-qemu\\x2d3\\x2dg1.scope')).toEqual({
      name: 'g1',
      driver: 'qemu',
      domainId: 3,
    });
    expect(systemdScopeName('machine-qemu\\x2d7\\x2dweb\\x2dfront.scope')).toMatchObject({
      name: 'web-front',
    });
    expect(systemdScopeName('machine-nspawn1.scope')).toEqual({ name: 'nspawn1' });
    expect(systemdScopeName('user.slice')).toBeUndefined();
  });

  it('partitions: prod.partition (cgroupfs), machine-prod.slice (systemd)', () => {
    expect(isPartition('prod.partition', 'cgroupfs')).toBe(true);
    expect(isPartition('machine-prod.slice', 'systemd')).toBe(true);
    expect(isPartition('machine-qemu\\x2d1\\x2dg.scope', 'systemd')).toBe(false);
  });
});

describe('helpers', () => {
  it('derives a stable lower-case RFC 4122 uuid from host and group', () => {
    const a = groupUuid('h', 'machine/qemu-1-g.libvirt-qemu');
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(groupUuid('h', 'machine/qemu-1-g.libvirt-qemu')).toBe(a);
    expect(groupUuid('other', 'machine/qemu-1-g.libvirt-qemu')).not.toBe(a);
  });

  it('normalises extra group paths and refuses . and ..', () => {
    expect(normaliseGroupPath('/hvkit-bar/')).toBe('hvkit-bar');
    expect(normaliseGroupPath('system.slice/x.service')).toBe('system.slice/x.service');
    expect(normaliseGroupPath('../etc')).toBeUndefined();
    expect(normaliseGroupPath('a//b')).toBeUndefined();
    expect(normaliseGroupPath('')).toBeUndefined();
  });

  it('counts cpu lists', () => {
    expect(countCpuList('0-3,8,10-11\n')).toBe(7);
    expect(countCpuList('0')).toBe(1);
    expect(countCpuList('')).toBeUndefined();
    expect(countCpuList('3-1')).toBeUndefined();
  });
});
