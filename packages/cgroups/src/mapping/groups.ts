/**
 * Group names → guests (notes §1.2): libvirt's cgroupfs layout (`machine/qemu-3-g1.libvirt-qemu`, custom
 * partitions as `prod.partition`), systemd machine scopes (`machine.slice/machine-qemu\x2d3\x2dg1.scope`,
 * partitions as `machine-prod.slice`), and the user's extra groups. Pure functions.
 */

import { createHash } from 'node:crypto';

/** Where a guest's group came from. */
export type GroupSource = 'libvirt' | 'systemd' | 'extra';

/** A group directory entry that is a guest. */
export interface GuestGroupName {
  /** The guest's name: the libvirt domain name, the machine name, or the extra group's path. */
  name: string;
  /** The libvirt driver (`qemu`, `lxc`), when the name says. */
  driver?: string;
  /** The libvirt domain id, when the name says. */
  domainId?: number;
}

/** Undoes systemd's unit-name escaping: `\x2d` → `-` (any `\xNN`). */
export function unescapeSystemdName(name: string): string {
  return name.replace(/\\x([0-9a-fA-F]{2})/g, (_, hex: string) =>
    String.fromCharCode(Number.parseInt(hex, 16)),
  );
}

/** libvirt's `<driver>-<id>-<name>` machine name, split. */
function splitMachineName(machine: string): GuestGroupName {
  const m = /^([a-z]+)-(\d+)-(.+)$/.exec(machine);
  if (!m) return { name: machine };
  return { name: m[3] as string, driver: m[1] as string, domainId: Number(m[2]) };
}

/**
 * The guest a directory under a cgroupfs machine partition names: `qemu-3-g1.libvirt-qemu` → `g1`
 * (driver `qemu`, id 3). `undefined` for anything else.
 */
export function libvirtGroupName(dir: string): GuestGroupName | undefined {
  const m = /^(.+)\.libvirt-([a-z]+)$/.exec(dir);
  if (!m) return undefined;
  const split = splitMachineName(m[1] as string);
  return split.driver ? split : { ...split, driver: m[2] as string };
}

/**
 * The guest a systemd machine scope names: `machine-qemu\x2d3\x2dg1.scope` → `g1` (driver `qemu`, id 3);
 * another machine (`machine-web.scope`, systemd-nspawn) keeps its machine name. `undefined` for others.
 */
export function systemdScopeName(dir: string): GuestGroupName | undefined {
  const m = /^machine-(.+)\.scope$/.exec(dir);
  if (!m) return undefined;
  return splitMachineName(unescapeSystemdName(m[1] as string));
}

/** Whether a directory is a libvirt partition to look into (`prod.partition`, `machine-prod.slice`). */
export function isPartition(dir: string, layout: 'cgroupfs' | 'systemd'): boolean {
  return layout === 'cgroupfs' ? dir.endsWith('.partition') : /^machine-.+\.slice$/.test(dir);
}

/**
 * A stable RFC 4122 UUID (version 5 layout, SHA-1) for a group id: cgroups carry no guest UUID, so the
 * adapter derives one from the host's name and the group path; the same group on the same host keeps it.
 */
export function groupUuid(hostName: string, groupId: string): string {
  const hash = createHash('sha1').update(`hvkit-cgroups\0${hostName}\0${groupId}`).digest();
  hash[6] = ((hash[6] as number) & 0x0f) | 0x50;
  hash[8] = ((hash[8] as number) & 0x3f) | 0x80;
  const hex = hash.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/**
 * Checks an extra group path given to `connect`: relative to the hierarchy root, no `.`/`..` parts, no
 * empty parts. Returns it without a leading or trailing slash, or `undefined` when invalid.
 */
export function normaliseGroupPath(path: string): string | undefined {
  const trimmed = path.replace(/^\/+|\/+$/g, '');
  if (trimmed === '' || trimmed.includes('\0')) return undefined;
  const parts = trimmed.split('/');
  if (parts.some((p) => p === '' || p === '.' || p === '..')) return undefined;
  return trimmed;
}

/** The number of CPUs in a cpu list (`0-3,8,10-11` → 7); `undefined` when it is empty or malformed. */
export function countCpuList(list: string): number | undefined {
  const text = list.trim();
  if (text === '') return undefined;
  let n = 0;
  for (const part of text.split(',')) {
    const m = /^(\d+)(?:-(\d+))?$/.exec(part);
    if (!m) return undefined;
    const from = Number(m[1]);
    const to = m[2] === undefined ? from : Number(m[2]);
    if (to < from) return undefined;
    n += to - from + 1;
  }
  return n;
}
