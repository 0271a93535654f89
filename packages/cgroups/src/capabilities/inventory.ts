/**
 * The `inventory` capability: the host (kernel, CPUs, memory) and the guests found in the cgroup tree
 * (libvirt groups, systemd machine scopes, extra groups), each with its processes, CPU time and memory in
 * use (`CgroupGuest.cgroup`).
 */

import { posix } from 'node:path';
import type { CallOptions, Disk, Guest, GuestRef, Host, InventoryCapability } from '@hvkit/core';
import type { AdapterContext } from '../context';
import { countCpuList } from '../mapping/groups';
import { toHypervisorInfo } from '../mapping/hypervisor';
import { parseMaxValue } from '../mapping/limits';
import type { Controller } from '../protocol/mountinfo';
import {
  discoverGroups,
  findGroup,
  type GuestGroup,
  groupDir,
  groupPids,
  hostName,
  primaryPlace,
} from './groups';

/** What the cgroup tree says about a guest beyond the spec's `Guest`. */
export interface CgroupGuestInfo {
  /** The group path relative to the hierarchy roots (the guest's id). */
  path: string;
  /** Where the group came from: libvirt's cgroupfs layout, a systemd machine scope, or `extraGroups`. */
  source: GuestGroup['source'];
  /** The libvirt driver and domain id, when the group name says. */
  driver?: string;
  domainId?: number;
  /** Controllers whose hierarchy has the group. */
  controllers: Controller[];
  /** Processes in the group and its descendants (`cgroup.procs`). */
  pids: number[];
  /** CPU time used, µs (v2 `cpu.stat usage_usec`, v1 `cpuacct.usage` / 1000), when accounted. */
  cpuUsageUs?: number;
  /** Memory in use, bytes (v2 `memory.current`, v1 `memory.usage_in_bytes`), when accounted. */
  memoryCurrentBytes?: number;
}

/** A guest of the cgroups adapter: the spec's `Guest` plus its group's facts. */
export interface CgroupGuest extends Guest {
  cgroup: CgroupGuestInfo;
}

/** The host's logical CPUs and memory (bytes), as bounds for limits. */
export interface HostFacts {
  logicalCpus: number;
  memoryBytes: number;
}

/** Reads the host's online CPUs and MemTotal. */
export async function readHostFacts(ctx: AdapterContext, options: CallOptions): Promise<HostFacts> {
  const online = (await ctx.client.tryReadText('/sys/devices/system/cpu/online', options)) ?? '';
  const meminfo = (await ctx.client.tryReadText('/proc/meminfo', options)) ?? '';
  const kib = /^MemTotal:\s+(\d+)\s+kB/m.exec(meminfo)?.[1];
  return { logicalCpus: countCpuList(online) ?? 1, memoryBytes: kib ? Number(kib) * 1024 : 0 };
}

/**
 * The host's disks that can carry IO limits: `/sys/block` without virtual devices (loop, ram, zram,
 * device-mapper, md, nbd), whose set changes as volumes come and go. Limits for any other block device
 * can still be set by name, `/dev/` path or `MAJ:MIN`.
 */
export async function hostDisks(
  ctx: AdapterContext,
  options: CallOptions,
): Promise<(Disk & { dev: string })[]> {
  const out: (Disk & { dev: string })[] = [];
  for (const entry of (await ctx.client.list('/sys/block', options)) ?? []) {
    if (/^(loop|ram|zram|dm-|md|nbd|sr|fd)\d+$/.test(entry.name)) continue;
    const dev = (await ctx.client.tryReadText(`/sys/block/${entry.name}/dev`, options))?.trim();
    const sectors = Number((await ctx.client.tryReadText(`/sys/block/${entry.name}/size`, options))?.trim());
    if (!dev || !/^\d+:\d+$/.test(dev) || !(sectors > 0)) continue;
    out.push({
      device: entry.name,
      source: `/dev/${entry.name}`,
      backing: 'block',
      capacityBytes: sectors * 512,
      dev,
    });
  }
  return out;
}

function num(text: string | undefined): number | undefined {
  if (text === undefined || !/^\d+$/.test(text.trim())) return undefined;
  const n = Number(text.trim());
  return Number.isSafeInteger(n) ? n : undefined;
}

async function readGuest(
  ctx: AdapterContext,
  group: GuestGroup,
  host: HostFacts,
  hostId: string,
  disks: Disk[],
  options: CallOptions,
): Promise<CgroupGuest> {
  const controllers: Controller[] = [];
  for (const [controller, place] of Object.entries(ctx.hello.controllers)) {
    if (place && (await ctx.client.exists(posix.join(place.mountPoint, group.id), options))) {
      controllers.push(controller as Controller);
    }
  }
  const primary = primaryPlace(ctx);
  const pids = primary ? await groupPids(ctx, posix.join(primary.mountPoint, group.id), options) : [];
  const file = async (controller: Controller, name: string) => {
    const dir = controllers.includes(controller) ? groupDir(ctx, controller, group.id) : undefined;
    return dir ? ctx.client.tryReadText(posix.join(dir, name), options) : undefined;
  };
  // vCPUs: libvirt's vcpuN groups, else the CPUs the group may run on, else the host's.
  const cpuDir = controllers.includes('cpu') ? groupDir(ctx, 'cpu', group.id) : undefined;
  const vcpuGroups = cpuDir
    ? ((await ctx.client.list(cpuDir, options)) ?? []).filter(
        (e) => e.type === 'directory' && /^vcpu\d+$/.test(e.name),
      ).length
    : 0;
  const cpuset = ctx.hello.controllers.cpuset?.version === 2 ? 'cpuset.cpus.effective' : 'cpuset.cpus';
  const allowed = countCpuList((await file('cpuset', cpuset)) ?? '');
  const vcpus = vcpuGroups > 0 ? vcpuGroups : Math.min(allowed ?? host.logicalCpus, host.logicalCpus);
  const memVersion = ctx.hello.controllers.memory?.version;
  const maxText = await file('memory', memVersion === 2 ? 'memory.max' : 'memory.limit_in_bytes');
  const max = maxText === undefined ? null : parseMaxValue(maxText, 'memory limit');
  const memoryBytes = max !== null && max > 0 && max < host.memoryBytes ? max : host.memoryBytes;

  const info: CgroupGuestInfo = { path: group.id, source: group.source, controllers, pids };
  if (group.driver) info.driver = group.driver;
  if (group.domainId !== undefined) info.domainId = group.domainId;
  if (ctx.hello.controllers.cpuacct?.version === 1) {
    const ns = num(await file('cpuacct', 'cpuacct.usage'));
    if (ns !== undefined) info.cpuUsageUs = Math.floor(ns / 1000);
  } else {
    const v2 = ctx.hello.mounts.find((m) => m.version === 2);
    const stat = v2
      ? await ctx.client.tryReadText(posix.join(v2.mountPoint, group.id, 'cpu.stat'), options)
      : undefined;
    const usec = num(/^usage_usec (\d+)$/m.exec(stat ?? '')?.[1]);
    if (usec !== undefined) info.cpuUsageUs = usec;
  }
  const current = num(await file('memory', memVersion === 2 ? 'memory.current' : 'memory.usage_in_bytes'));
  if (current !== undefined) info.memoryCurrentBytes = current;

  return {
    id: group.id,
    uuid: group.uuid,
    name: group.name,
    powerState: pids.length > 0 ? 'running' : 'stopped',
    vcpus: Math.max(1, vcpus),
    memoryBytes,
    hostId,
    disks: disks.map((d) => ({ ...d })),
    nics: [],
    isTemplate: false,
    tags: [`cgroup:${group.source}`],
    cgroup: info,
  };
}

/** The inventory capability. */
export function createInventory(ctx: AdapterContext): InventoryCapability {
  const context = async (options: CallOptions) => {
    const host = await readHostFacts(ctx, options);
    const id = await hostName(ctx, options);
    const disks = (await hostDisks(ctx, options)).map(({ dev: _dev, ...d }) => d);
    return { host, id, disks };
  };
  return {
    async host(options: CallOptions = {}): Promise<Host> {
      const { host, id } = await context(options);
      const out: Host = {
        id,
        name: id,
        hypervisor: toHypervisorInfo(ctx.hello),
        cpu: { threads: host.logicalCpus },
        securityModels: [],
      };
      if (host.memoryBytes > 0) out.memoryBytes = host.memoryBytes;
      return out;
    },
    async listGuests(options: CallOptions = {}): Promise<Guest[]> {
      const groups = await discoverGroups(ctx, options);
      const { host, id, disks } = await context(options);
      const out: Guest[] = [];
      for (const g of groups) out.push(await readGuest(ctx, g, host, id, disks, options));
      return out;
    },
    async getGuest(ref: GuestRef, options: CallOptions = {}): Promise<Guest> {
      const group = await findGroup(ctx, ref, options, 'inventory.getGuest');
      const { host, id, disks } = await context(options);
      return readGuest(ctx, group, host, id, disks, options);
    },
  };
}
