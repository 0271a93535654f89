/**
 * The `limits` capability: reads and writes a guest group's cgroup files (live only). `set` validates the
 * whole patch and plans every write from the files' current values before it writes anything; a write the
 * kernel refuses becomes a typed error carrying the errno, and the files already written are put back.
 */

import { posix } from 'node:path';
import {
  type CallOptions,
  type DiskLimits,
  type GuestRef,
  HvkitError,
  type HvkitWarning,
  hvkitError,
  type LimitsCapability,
  type LimitsGetOptions,
  type LimitsSetOptions,
  type LimitsSetResult,
  normalizeLimits,
  type ResourceLimits,
  validateLimits,
} from '@hvkit/core';
import type { AdapterContext } from '../context';
import { ADAPTER_ID } from '../errors';
import {
  bandwidthToMaxCores,
  type CfsBandwidth,
  cpuWeightToLimit,
  type DeviceIoCaps,
  formatCpuMax,
  formatIoMax,
  formatMaxValue,
  limitToCpuWeight,
  limitToShares,
  maxCoresToQuota,
  memswToSwap,
  parseCfs,
  parseCpuMax,
  parseIoMax,
  parseMaxValue,
  parseThrottleFile,
  sharesToLimit,
  swapToMemsw,
  THROTTLE_FILES,
  wholeRate,
} from '../mapping/limits';
import type { Controller } from '../protocol/mountinfo';
import { findGroup, groupDir } from './groups';
import { hostDisks, readHostFacts } from './inventory';

type DiskField = keyof DeviceIoCaps;
const DISK_FIELDS: readonly DiskField[] = ['readBytesPerSec', 'writeBytesPerSec', 'readIops', 'writeIops'];

/** The current values of a group's limit files. */
interface GroupState {
  cpu?: { version: 1 | 2; dir: string; weight: number | null; bw: CfsBandwidth };
  memory?: {
    version: 1 | 2;
    dir: string;
    max: number | null;
    soft: number | null;
    /** v1 memsw (memory + swap), when swap accounting is on. */
    memsw?: number | null;
    /** v2 only. */
    min?: number | null;
    /** v2 swap only. */
    swapMax?: number | null;
  };
  io?: { version: 1 | 2; dir: string; caps: Map<string, DeviceIoCaps> };
  pids?: { dir: string; max: number | null };
}

/** One planned write, with the text that puts the old value back. */
interface Step {
  path: string;
  value: string;
  undo: string;
}

async function dirOf(
  ctx: AdapterContext,
  controller: Controller,
  id: string,
  options: CallOptions,
): Promise<{ dir: string; version: 1 | 2 } | undefined> {
  const place = ctx.hello.controllers[controller];
  const dir = groupDir(ctx, controller, id);
  if (!place || !dir || !(await ctx.client.exists(dir, options))) return undefined;
  return { dir, version: place.version };
}

async function readState(ctx: AdapterContext, id: string, options: CallOptions): Promise<GroupState> {
  const read = (dir: string, name: string) => ctx.client.tryReadText(posix.join(dir, name), options);
  const state: GroupState = {};
  const [cpu, mem, io, pids] = await Promise.all(
    (['cpu', 'memory', 'io', 'pids'] as const).map((c) => dirOf(ctx, c, id, options)),
  );
  await Promise.all([readCpu(), readMemory(), readIo(), readPids()]);
  return state;

  async function readCpu() {
    if (cpu) {
      if (cpu.version === 1) {
        const [shares, quota, period] = await Promise.all(
          ['cpu.shares', 'cpu.cfs_quota_us', 'cpu.cfs_period_us'].map((f) => read(cpu.dir, f)),
        );
        if (shares !== undefined && quota !== undefined && period !== undefined) {
          state.cpu = {
            version: 1,
            dir: cpu.dir,
            weight: sharesToLimit(shares),
            bw: parseCfs(quota, period),
          };
        }
      } else {
        const [weight, max] = await Promise.all(['cpu.weight', 'cpu.max'].map((f) => read(cpu.dir, f)));
        if (weight !== undefined && max !== undefined) {
          state.cpu = { version: 2, dir: cpu.dir, weight: cpuWeightToLimit(weight), bw: parseCpuMax(max) };
        }
      }
    }
  }
  async function readMemory() {
    if (mem) {
      const value = async (name: string) => {
        const text = await read(mem.dir, name);
        return text === undefined ? undefined : parseMaxValue(text, name);
      };
      if (mem.version === 1) {
        const [max, soft, memsw] = await Promise.all(
          ['memory.limit_in_bytes', 'memory.soft_limit_in_bytes', 'memory.memsw.limit_in_bytes'].map(value),
        );
        if (max !== undefined && soft !== undefined) {
          state.memory = { version: 1, dir: mem.dir, max, soft };
          if (memsw !== undefined) state.memory.memsw = memsw;
        }
      } else {
        const [max, soft, min, swapMax] = await Promise.all(
          ['memory.max', 'memory.high', 'memory.min', 'memory.swap.max'].map(value),
        );
        if (max !== undefined && soft !== undefined) {
          state.memory = { version: 2, dir: mem.dir, max, soft };
          if (min !== undefined) state.memory.min = min;
          if (swapMax !== undefined) state.memory.swapMax = swapMax;
        }
      }
    }
  }
  async function readIo() {
    if (io) {
      if (io.version === 1) {
        const caps = new Map<string, DeviceIoCaps>();
        let any = false;
        const texts = await Promise.all(DISK_FIELDS.map((field) => read(io.dir, THROTTLE_FILES[field])));
        for (const [i, field] of DISK_FIELDS.entries()) {
          const text = texts[i];
          if (text === undefined) continue;
          any = true;
          for (const [dev, value] of parseThrottleFile(text)) {
            const entry = caps.get(dev) ?? emptyCaps();
            entry[field] = value;
            caps.set(dev, entry);
          }
        }
        if (any) state.io = { version: 1, dir: io.dir, caps };
      } else {
        const text = await read(io.dir, 'io.max');
        if (text !== undefined) state.io = { version: 2, dir: io.dir, caps: parseIoMax(text) };
      }
    }
  }
  async function readPids() {
    if (pids) {
      const text = await read(pids.dir, 'pids.max');
      if (text !== undefined) state.pids = { dir: pids.dir, max: parseMaxValue(text, 'pids.max') };
    }
  }
}

function emptyCaps(): DeviceIoCaps {
  return { readBytesPerSec: null, writeBytesPerSec: null, readIops: null, writeIops: null };
}

/** Host block devices by name and by MAJ:MIN. */
interface DeviceMap {
  byName: Map<string, string>;
  byDev: Map<string, string>;
}

async function deviceMap(ctx: AdapterContext, options: CallOptions): Promise<DeviceMap> {
  const byName = new Map<string, string>();
  const byDev = new Map<string, string>();
  for (const d of await hostDisks(ctx, options)) {
    byName.set(d.device, d.dev);
    byDev.set(d.dev, d.device);
  }
  return { byName, byDev };
}

/**
 * The MAJ:MIN of a device named in a patch: a `/sys/block` name (`vda`), a `/dev/` path (`/dev/vda`,
 * partitions too, through `/sys/class/block/<name>/dev`) or `MAJ:MIN` itself; `undefined` when the host has
 * no such block device.
 */
async function resolveDevice(
  ctx: AdapterContext,
  devices: DeviceMap,
  device: string,
  options: CallOptions,
): Promise<string | undefined> {
  const known = devices.byName.get(device);
  if (known) return known;
  if (/^\d+:\d+$/.test(device)) {
    return (await ctx.client.exists(`/sys/dev/block/${device}`, options)) ? device : undefined;
  }
  const name = device.startsWith('/dev/') ? device.slice(5) : device;
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return undefined;
  const dev = (await ctx.client.tryReadText(`/sys/class/block/${name}/dev`, options))?.trim();
  return dev && /^\d+:\d+$/.test(dev) ? dev : undefined;
}

function toLimits(state: GroupState, devices: DeviceMap): ResourceLimits {
  const out: ResourceLimits = {};
  if (state.cpu) out.cpu = { weight: state.cpu.weight, maxCores: bandwidthToMaxCores(state.cpu.bw) };
  if (state.memory) {
    const m = state.memory;
    out.memory = { maxBytes: m.max, softBytes: m.soft };
    if (m.version === 1 && m.memsw !== undefined) out.memory.swapMaxBytes = memswToSwap(m.max, m.memsw);
    if (m.version === 2) {
      if (m.min !== undefined) out.memory.minBytes = m.min;
      if (m.swapMax !== undefined) out.memory.swapMaxBytes = m.swapMax;
    }
  }
  if (state.io) {
    const disks: DiskLimits[] = [];
    const seen = new Set<string>();
    for (const [dev, name] of devices.byDev) {
      seen.add(dev);
      disks.push({ device: name, ...(state.io.caps.get(dev) ?? emptyCaps()) });
    }
    for (const [dev, caps] of state.io.caps) if (!seen.has(dev)) disks.push({ device: dev, ...caps });
    out.disks = disks;
  }
  if (state.pids) out.pids = { max: state.pids.max };
  return normalizeLimits(out);
}

function unsupportedHere(operation: string, what: string): HvkitError {
  return hvkitError('UNSUPPORTED', `${operation}: ${what}.`, { adapter: ADAPTER_ID, operation });
}

function invalid(operation: string, message: string, details?: Record<string, unknown>): HvkitError {
  return hvkitError('INVALID_ARGUMENT', `invalid limits: ${message}`, {
    adapter: ADAPTER_ID,
    operation,
    details,
  });
}

const big = (v: number | null) => (v === null ? Number.POSITIVE_INFINITY : v);

/** Plans the writes of a valid patch from the current state; throws before anything is written. */
async function plan(
  ctx: AdapterContext,
  state: GroupState,
  patch: ResourceLimits,
  options: CallOptions,
  warnings: HvkitWarning[],
): Promise<Step[]> {
  const op = 'limits.set';
  const steps: Step[] = [];
  const cpu = patch.cpu;
  if (cpu && (cpu.weight !== undefined || cpu.maxCores !== undefined)) {
    const s = state.cpu;
    if (!s) throw unsupportedHere(op, 'the group has no directory in the cpu hierarchy');
    if (cpu.weight !== undefined) {
      if (s.version === 1) {
        steps.push({
          path: posix.join(s.dir, 'cpu.shares'),
          value: limitToShares(cpu.weight),
          undo: limitToShares(s.weight),
        });
      } else {
        steps.push({
          path: posix.join(s.dir, 'cpu.weight'),
          value: limitToCpuWeight(cpu.weight),
          undo: limitToCpuWeight(s.weight),
        });
      }
    }
    if (cpu.maxCores !== undefined) {
      const quota = cpu.maxCores === null ? null : maxCoresToQuota(cpu.maxCores, s.bw.periodUs);
      if (s.version === 1) {
        steps.push({
          path: posix.join(s.dir, 'cpu.cfs_quota_us'),
          value: String(quota ?? -1),
          undo: String(s.bw.quotaUs ?? -1),
        });
      } else {
        steps.push({
          path: posix.join(s.dir, 'cpu.max'),
          value: formatCpuMax({ quotaUs: quota, periodUs: s.bw.periodUs }),
          undo: formatCpuMax(s.bw),
        });
      }
    }
  }
  const mem = patch.memory;
  if (mem && Object.values(mem).some((v) => v !== undefined)) {
    const s = state.memory;
    if (!s) throw unsupportedHere(op, 'the group has no directory in the memory hierarchy');
    const v = s.version;
    const file = (name: string) => posix.join(s.dir, name);
    if (mem.softBytes !== undefined) {
      steps.push({
        path: file(v === 1 ? 'memory.soft_limit_in_bytes' : 'memory.high'),
        value: formatMaxValue(mem.softBytes, v),
        undo: formatMaxValue(s.soft, v),
      });
    }
    if (v === 2) {
      if (mem.minBytes !== undefined) {
        if (s.min === undefined) throw unsupportedHere(op, 'the group has no memory.min');
        steps.push({ path: file('memory.min'), value: String(mem.minBytes ?? 0), undo: String(s.min ?? 0) });
      }
      if (mem.swapMaxBytes !== undefined) {
        if (s.swapMax === undefined)
          throw unsupportedHere(op, 'the group has no memory.swap.max (swap accounting is off)');
        steps.push({
          path: file('memory.swap.max'),
          value: formatMaxValue(mem.swapMaxBytes, 2),
          undo: formatMaxValue(s.swapMax, 2),
        });
      }
      if (mem.maxBytes !== undefined) {
        steps.push({
          path: file('memory.max'),
          value: formatMaxValue(mem.maxBytes, 2),
          undo: formatMaxValue(s.max, 2),
        });
      }
    } else {
      if (mem.minBytes !== undefined) throw unsupportedHere(op, 'cgroup v1 has no memory.min');
      const limit = mem.maxBytes !== undefined ? mem.maxBytes : s.max;
      let memsw: number | null | undefined;
      if (s.memsw !== undefined) {
        const swapNow = memswToSwap(s.max, s.memsw);
        const swap = mem.swapMaxBytes !== undefined ? mem.swapMaxBytes : swapNow;
        if (swap !== null && limit === null) {
          throw invalid(
            op,
            'memory.swapMaxBytes needs a memory.maxBytes on cgroup v1 (memsw = limit + swap)',
            {
              path: 'memory.swapMaxBytes',
            },
          );
        }
        memsw = swapToMemsw(limit, swap);
        if (mem.maxBytes === null && swapNow !== null && mem.swapMaxBytes === undefined) {
          warnings.push({
            type: 'compatibility',
            field: 'memory.swapMaxBytes',
            message: 'cgroup v1 limits memory + swap together: with no memory limit, swap is unlimited too.',
          });
        }
      } else if (mem.swapMaxBytes !== undefined) {
        throw unsupportedHere(op, 'the group has no memory.memsw.limit_in_bytes (swap accounting is off)');
      }
      const limitStep: Step | undefined =
        mem.maxBytes !== undefined
          ? {
              path: file('memory.limit_in_bytes'),
              value: formatMaxValue(limit, 1),
              undo: formatMaxValue(s.max, 1),
            }
          : undefined;
      const memswStep: Step | undefined =
        memsw !== undefined && s.memsw !== undefined && memsw !== s.memsw
          ? {
              path: file('memory.memsw.limit_in_bytes'),
              value: formatMaxValue(memsw, 1),
              undo: formatMaxValue(s.memsw, 1),
            }
          : undefined;
      // The kernel keeps limit ≤ memsw at every step: raise memsw first when it stays above the old limit.
      if (memswStep && big(memsw ?? null) >= big(s.max))
        steps.push(memswStep, ...(limitStep ? [limitStep] : []));
      else steps.push(...(limitStep ? [limitStep] : []), ...(memswStep ? [memswStep] : []));
    }
  }
  if (patch.disks && patch.disks.length > 0) {
    const s = state.io;
    if (!s) throw unsupportedHere(op, 'the group has no directory in the io (blkio) hierarchy');
    const devices = await deviceMap(ctx, options);
    const issues: { path: string; message: string }[] = [];
    const resolved: [string, DiskLimits][] = [];
    for (const [i, entry] of patch.disks.entries()) {
      const dev = await resolveDevice(ctx, devices, entry.device, options);
      if (!dev)
        issues.push({
          path: `disks[${i}].device`,
          message: `${JSON.stringify(entry.device)} is not a block device of the host`,
        });
      else resolved.push([dev, entry]);
    }
    if (issues.length > 0)
      throw invalid(op, issues.map((i) => `${i.path} ${i.message}`).join('; '), { issues });
    for (const [dev, entry] of resolved) {
      const old = s.caps.get(dev) ?? emptyCaps();
      if (s.version === 1) {
        for (const field of DISK_FIELDS) {
          const value = entry[field];
          if (value === undefined) continue;
          steps.push({
            path: posix.join(s.dir, THROTTLE_FILES[field]),
            value: `${dev} ${value === null ? 0 : wholeRate(value)}`,
            undo: `${dev} ${old[field] ?? 0}`,
          });
        }
      } else {
        const next = { ...old };
        for (const field of DISK_FIELDS) {
          const value = entry[field];
          if (value !== undefined) next[field] = value === null ? null : wholeRate(value);
        }
        steps.push({
          path: posix.join(s.dir, 'io.max'),
          value: formatIoMax(dev, next),
          undo: formatIoMax(dev, old),
        });
      }
    }
  }
  if (patch.pids && patch.pids.max !== undefined) {
    const s = state.pids;
    if (!s) throw unsupportedHere(op, 'the group has no directory in the pids hierarchy');
    steps.push({
      path: posix.join(s.dir, 'pids.max'),
      value: formatMaxValue(patch.pids.max, 2),
      undo: formatMaxValue(s.max, 2),
    });
  }
  return steps;
}

/** Writes the steps in order; when one fails, puts back the ones already written (newest first). */
async function applySteps(ctx: AdapterContext, steps: Step[], options: CallOptions): Promise<void> {
  const done: Step[] = [];
  for (const step of steps) {
    try {
      await ctx.client.write(step.path, step.value, options);
      done.push(step);
    } catch (error) {
      const failedRollback: { path: string; error: string }[] = [];
      // The rollback runs even when the call was aborted: the files must not stay half-changed.
      for (const back of [...done].reverse()) {
        try {
          await ctx.client.write(back.path, back.undo, {
            timeoutMs: ctx.callTimeoutMs,
            operation: 'limits.set (rollback)',
          });
        } catch (undoError) {
          failedRollback.push({ path: back.path, error: String((undoError as Error)?.message ?? undoError) });
        }
      }
      if (HvkitError.isInstance(error)) {
        const details = { ...(error.details ?? {}), rolledBack: done.map((s) => s.path) } as Record<
          string,
          unknown
        >;
        if (failedRollback.length > 0) details.rollbackFailed = failedRollback;
        throw hvkitError(
          error.code,
          failedRollback.length > 0
            ? `${error.message} Putting back the files already written failed for ${failedRollback.map((f) => f.path).join(', ')}.`
            : done.length > 0
              ? `${error.message} The ${done.length} file(s) already written were put back.`
              : error.message,
          {
            adapter: ADAPTER_ID,
            operation: 'limits.set',
            cause: error.cause ?? error,
            backendCode: error.backendCode,
            backendMessage: error.backendMessage,
            details,
          },
        );
      }
      throw error;
    }
  }
}

/** The limits capability. */
export function createLimits(ctx: AdapterContext): LimitsCapability {
  const read = async (id: string, options: CallOptions) => {
    const state = await readState(ctx, id, options);
    return { state, limits: toLimits(state, await deviceMap(ctx, options)) };
  };
  return {
    async get(ref: GuestRef, options: LimitsGetOptions = {}): Promise<ResourceLimits> {
      if (options.from === 'persistent') {
        throw hvkitError(
          'UNSUPPORTED',
          'limits.get: cgroups hold live values only; there is no persistent definition.',
          {
            adapter: ADAPTER_ID,
            operation: 'limits.get',
          },
        );
      }
      const group = await findGroup(ctx, ref, options, 'limits.get');
      return (await read(group.id, options)).limits;
    },
    async set(
      ref: GuestRef,
      patch: ResourceLimits,
      options: LimitsSetOptions = {},
    ): Promise<LimitsSetResult> {
      const supports = ctx.supports.limits;
      const apply = options.apply ?? 'live';
      if (apply !== 'live' && apply !== 'persistent' && apply !== 'both') {
        throw new TypeError(
          `limits.set: apply must be 'live', 'persistent' or 'both', got ${JSON.stringify(apply)}.`,
        );
      }
      const host = await readHostFacts(ctx, options);
      validateLimits(patch, supports, {
        adapter: ADAPTER_ID,
        host: host.memoryBytes > 0 ? host : { logicalCpus: host.logicalCpus },
      });
      if (apply !== 'live') {
        throw hvkitError(
          'UNSUPPORTED',
          `limits.set: apply '${apply}' is not supported: cgroup writes are live only (libvirt and systemd may rewrite a guest's groups when it restarts).`,
          { adapter: ADAPTER_ID, operation: 'limits.set', details: { apply } },
        );
      }
      const group = await findGroup(ctx, ref, options, 'limits.set');
      const state = await readState(ctx, group.id, options);
      const warnings: HvkitWarning[] = [];
      const steps = await plan(ctx, state, patch, options, warnings);
      await applySteps(ctx, steps, options);
      ctx.logger.debug('limits.set', { guest: group.id, files: steps.map((s) => s.path) });
      const after = await read(group.id, options);
      return { limits: after.limits, appliesAt: 'live', warnings };
    },
  };
}
