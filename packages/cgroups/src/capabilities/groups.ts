/**
 * Finding guests in the cgroup tree and reading what inventory and limits need of a group. Shared by the
 * `inventory` and `limits` capabilities.
 */

import { posix } from 'node:path';
import { type CallOptions, type GuestRef, hvkitError, resolveGuestRef } from '@hvkit/core';
import type { AdapterContext } from '../context';
import { ADAPTER_ID } from '../errors';
import {
  type GroupSource,
  type GuestGroupName,
  groupUuid,
  isPartition,
  libvirtGroupName,
  systemdScopeName,
} from '../mapping/groups';
import type { Controller, ControllerPlace } from '../protocol/mountinfo';

/** A guest's group, as discovery found it. */
export interface GuestGroup extends GuestGroupName {
  /** Path relative to the hierarchy roots: the guest's id. */
  id: string;
  uuid: string;
  source: GroupSource;
}

/** Deepest partition nesting walked below `machine` / `machine.slice`. */
const MAX_PARTITION_DEPTH = 4;

/** The hierarchy discovery walks: the one holding `cpu`, else `memory`, else the v2 mount. */
export function primaryPlace(ctx: AdapterContext): ControllerPlace | undefined {
  const c = ctx.hello.controllers;
  if (c.cpu) return c.cpu;
  if (c.memory) return c.memory;
  const v2 = ctx.hello.mounts.find((m) => m.version === 2);
  return v2 ? { version: 2, mountPoint: v2.mountPoint } : undefined;
}

/** The host directory of a group in a controller's hierarchy, or `undefined` without the controller. */
export function groupDir(ctx: AdapterContext, controller: Controller, id: string): string | undefined {
  const place = ctx.hello.controllers[controller];
  return place ? posix.join(place.mountPoint, id) : undefined;
}

/** The host's name (`/proc/sys/kernel/hostname`), for ids and uuids. */
export async function hostName(ctx: AdapterContext, options: CallOptions): Promise<string> {
  return ((await ctx.client.tryReadText('/proc/sys/kernel/hostname', options)) ?? '').trim() || 'localhost';
}

async function walk(
  ctx: AdapterContext,
  mount: string,
  rel: string,
  layout: 'cgroupfs' | 'systemd',
  depth: number,
  out: Omit<GuestGroup, 'uuid'>[],
  options: CallOptions,
): Promise<void> {
  const entries = await ctx.client.list(posix.join(mount, rel), options);
  for (const entry of entries ?? []) {
    if (entry.type !== 'directory') continue;
    const id = `${rel}/${entry.name}`;
    const named = layout === 'cgroupfs' ? libvirtGroupName(entry.name) : systemdScopeName(entry.name);
    if (named) out.push({ ...named, id, source: layout === 'cgroupfs' ? 'libvirt' : 'systemd' });
    else if (depth < MAX_PARTITION_DEPTH && isPartition(entry.name, layout)) {
      await walk(ctx, mount, id, layout, depth + 1, out, options);
    }
  }
}

/**
 * Every guest group: libvirt's under `machine/` (and its `*.partition`s), systemd machine scopes under
 * `machine.slice/` (and `machine-*.slice` partitions), then the extra groups that exist in any hierarchy
 * the adapter uses. Sorted by id.
 */
export async function discoverGroups(ctx: AdapterContext, options: CallOptions): Promise<GuestGroup[]> {
  const place = primaryPlace(ctx);
  const found: Omit<GuestGroup, 'uuid'>[] = [];
  const hostPromise = hostName(ctx, options);
  // Awaited below; when a walk fails first its failure must not be left unhandled.
  hostPromise.catch(() => {});
  const libvirt: Omit<GuestGroup, 'uuid'>[] = [];
  const systemd: Omit<GuestGroup, 'uuid'>[] = [];
  if (place) {
    await Promise.all([
      walk(ctx, place.mountPoint, 'machine', 'cgroupfs', 0, libvirt, options),
      walk(ctx, place.mountPoint, 'machine.slice', 'systemd', 0, systemd, options),
    ]);
  }
  found.push(...libvirt, ...systemd);
  const extras = await Promise.all(
    ctx.extraGroups.map(async (extra) => {
      if (found.some((g) => g.id === extra)) return undefined;
      const dirs = [
        ...new Set((['cpu', 'memory', 'io', 'pids'] as const).map((c) => groupDir(ctx, c, extra))),
      ];
      const present = await Promise.all(dirs.map((d) => (d ? ctx.client.exists(d, options) : false)));
      return present.some(Boolean) ? extra : undefined;
    }),
  );
  for (const extra of extras) if (extra) found.push({ id: extra, name: extra, source: 'extra' });
  const host = await hostPromise;
  return found
    .map((g) => ({ ...g, uuid: groupUuid(host, g.id) }))
    .sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
}

/** The guest group a reference names, or NOT_FOUND. */
export async function findGroup(
  ctx: AdapterContext,
  ref: GuestRef,
  options: CallOptions,
  operation: string,
): Promise<GuestGroup> {
  const { by, value } = resolveGuestRef(ref);
  const groups = await discoverGroups(ctx, options);
  const match = groups.filter((g) => g[by] === value);
  if (match.length === 1) return match[0] as GuestGroup;
  if (match.length > 1) {
    throw hvkitError(
      'CONFLICT',
      `${operation}: ${match.length} guests are named ${JSON.stringify(value)}; use the id.`,
      {
        adapter: ADAPTER_ID,
        operation,
        details: { ids: match.map((g) => g.id) },
      },
    );
  }
  throw hvkitError('NOT_FOUND', `${operation}: no guest group with ${by} ${JSON.stringify(value)}.`, {
    adapter: ADAPTER_ID,
    operation,
    details: { [by]: value },
  });
}

/** The process ids in a group and its descendants (libvirt's `emulator`, `vcpuN`), depth-bounded. */
export async function groupPids(
  ctx: AdapterContext,
  dir: string,
  options: CallOptions,
  depth = 0,
): Promise<number[]> {
  const pids = new Set<number>();
  const procs = await ctx.client.tryReadText(posix.join(dir, 'cgroup.procs'), options);
  for (const line of (procs ?? '').split('\n')) if (/^\d+$/.test(line.trim())) pids.add(Number(line.trim()));
  if (depth < 3) {
    for (const entry of (await ctx.client.list(dir, options)) ?? []) {
      if (entry.type !== 'directory') continue;
      for (const pid of await groupPids(ctx, posix.join(dir, entry.name), options, depth + 1)) pids.add(pid);
    }
  }
  return [...pids].sort((a, b) => a - b);
}
