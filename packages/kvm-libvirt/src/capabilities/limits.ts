/**
 * Resource limits: scheduler (CPU weight and caps), memory, per-disk block IO tune and per-NIC bandwidth,
 * read and written through libvirt's typed-parameter APIs, live, persistent or both.
 */

import {
  type DiskLimits,
  HvkitError,
  type HvkitWarning,
  hvkitError,
  LIMIT_FIELDS,
  type LimitsCapability,
  type LimitsGetOptions,
  type LimitsHostFacts,
  type LimitsSetOptions,
  type LimitsSetResult,
  type NicLimits,
  normalizeLimits,
  type ResourceLimits,
  readLimitField,
  validateLimits,
} from '@hvkit/core';
import { type AdapterContext, type DomainHandle, domainHandle, domainXml, rpcOptions } from '../context';
import { ADAPTER_ID, VIR_ERR } from '../errors';
import { type DomainXmlDetails, parseDomainXmlDetails } from '../mapping/domain';
import {
  blockIoTuneToDiskLimits,
  cpuLimitsToSchedulerParams,
  diskLimitsToBlockIoTuneParams,
  interfaceParamsToNicLimits,
  LIBVIRT_MEMORY_UNLIMITED_KIB,
  memoryLimitsToParams,
  memoryParamsToLimits,
  nicLimitsToInterfaceParams,
  schedulerParamsToCpuLimits,
} from '../mapping/limits';
import { paramBigInt } from '../mapping/typed-params';
import { AFFECT } from '../protocol/constants';
import { type GetParamsRet, remoteProcedures } from '../protocol/remote-protocol';
import type { RemoteDomain, TypedParam } from '../protocol/types';

type Rpc = { signal?: AbortSignal; timeoutMs?: number };

/** Disks whose IO can be tuned: real disks (not cdroms/floppies) with a source. */
function tunableDisks(details: DomainXmlDetails) {
  return details.disks.filter((d) => d.deviceType === 'disk' || d.deviceType === 'lun');
}

interface RawParams {
  scheduler?: TypedParam[];
  memory: TypedParam[];
  disks: Map<string, TypedParam[]>;
  nics: Map<string, TypedParam[]>;
}

async function readScheduler(ctx: AdapterContext, dom: RemoteDomain, flags: number, rpc: Rpc) {
  if (ctx.driver === 'TEST') return undefined;
  const { nparams } = await ctx.client.call(remoteProcedures.DOMAIN_GET_SCHEDULER_TYPE, { dom }, rpc);
  return ctx.client.call(
    remoteProcedures.DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS,
    { dom, nparams, flags },
    rpc,
  );
}

/** libvirt's two-step parameter read: `nparams: 0` asks for the count, then the values are read (none: no second call). */
async function readTwoStep(get: (nparams: number) => Promise<GetParamsRet>): Promise<TypedParam[]> {
  const { nparams } = await get(0);
  return nparams === 0 ? [] : (await get(nparams)).params;
}

function readMemory(ctx: AdapterContext, dom: RemoteDomain, flags: number, rpc: Rpc) {
  return readTwoStep((nparams) =>
    ctx.client.call(remoteProcedures.DOMAIN_GET_MEMORY_PARAMETERS, { dom, nparams, flags }, rpc),
  );
}

function readIoTune(ctx: AdapterContext, dom: RemoteDomain, disk: string, flags: number, rpc: Rpc) {
  return readTwoStep((nparams) =>
    ctx.client.call(remoteProcedures.DOMAIN_GET_BLOCK_IO_TUNE, { dom, disk, nparams, flags }, rpc),
  );
}

function readIface(ctx: AdapterContext, dom: RemoteDomain, device: string, flags: number, rpc: Rpc) {
  return readTwoStep((nparams) =>
    ctx.client.call(remoteProcedures.DOMAIN_GET_INTERFACE_PARAMETERS, { dom, device, nparams, flags }, rpc),
  );
}

/**
 * Reads every parameter group. The two-step reads go one after another: the order of calls then does not
 * depend on the order replies arrive in, so a recorded session replays byte for byte.
 */
async function readRaw(
  ctx: AdapterContext,
  dom: RemoteDomain,
  details: DomainXmlDetails,
  flags: number,
  rpc: Rpc,
): Promise<RawParams> {
  const scheduler = await readScheduler(ctx, dom, flags, rpc);
  const memory = await readMemory(ctx, dom, flags, rpc);
  const disks = new Map<string, TypedParam[]>();
  for (const d of tunableDisks(details))
    disks.set(d.device, await readIoTune(ctx, dom, d.device, flags, rpc));
  const nics = new Map<string, TypedParam[]>();
  for (const n of details.interfaces)
    nics.set(n.device, await readIface(ctx, dom, n.mac ?? n.paramsDevice, flags, rpc));
  return { ...(scheduler !== undefined ? { scheduler } : {}), memory, disks, nics };
}

/** Linux's EBUSY, which libvirt passes on as `int1` of a VIR_ERR_SYSTEM_ERROR. */
const EBUSY = 16;

/**
 * libvirt's EBUSY from a memory limit → `CONFLICT` with a hint: on cgroup v1 the kernel refuses a hard
 * limit below what the guest uses when it cannot reclaim the difference (cgroup v2 reclaims, then OOM-kills
 * instead). Other errors are returned unchanged.
 */
function memoryLimitConflict(error: unknown): unknown {
  if (!HvkitError.isInstance(error) || error.backendCode !== VIR_ERR.SYSTEM_ERROR) return error;
  const message = error.backendMessage ?? '';
  if (error.details?.int1 !== EBUSY && !/Device or resource busy/i.test(message)) return error;
  return hvkitError(
    'CONFLICT',
    `The memory limit is below the guest's current memory usage, which the host cannot reclaim; set a higher limit (libvirt: ${message}).`,
    {
      adapter: ADAPTER_ID,
      operation: 'limits.set',
      cause: error,
      backendCode: error.backendCode,
      backendMessage: message,
      retryable: false,
      details: { errno: 'EBUSY' },
    },
  );
}

/** Whether the patch sets a number in a field the host bounds (`cpu.maxCores`, memory max, soft, min). */
function setsHostBoundField(patch: ResourceLimits): boolean {
  return LIMIT_FIELDS.some((f) => f.hostBound && typeof readLimitField(patch, f.path) === 'number');
}

/** The host's logical CPUs and memory (`NODE_GET_INFO`, as `inventory.host()` reports them). */
async function hostFacts(ctx: AdapterContext, rpc: Rpc): Promise<LimitsHostFacts> {
  const info = await ctx.client.call(remoteProcedures.NODE_GET_INFO, undefined, rpc);
  const out: LimitsHostFacts = {};
  if (info.cpus > 0) out.logicalCpus = info.cpus;
  const bytes = BigInt(info.memory) * 1024n;
  if (bytes > 0n && bytes <= BigInt(Number.MAX_SAFE_INTEGER)) out.memoryBytes = Number(bytes);
  return out;
}

/** Limits whose conversion depends on the daemon host's cgroup version. */
const CGROUP_DEPENDENT = ['cpu.weight', 'memory.swapMaxBytes'] as const;

/** Why a cgroup-dependent field cannot be converted, and what to do about it. */
function cgroupUnknownMessage(ctx: AdapterContext, fields: readonly string[]): string {
  return (
    `${fields.join(', ')} cannot be converted: the cgroup version of the daemon host is unknown ` +
    `(${ctx.cgroupUnknownReason ?? 'not detected'}), and libvirt's cpu_shares and swap_hard_limit mean ` +
    'different things on cgroup v1 (cpu.shares; memory + swap) and v2 (cpu.weight; swap only). ' +
    'Pass the connect option cgroupVersion (1 or 2).'
  );
}

/**
 * Converts what was read; a field at its backend default is `null` (`normalizeLimits`). With an unknown
 * cgroup version the fields that depend on it are left out (the others are the same on v1 and v2, so the
 * v1 formulas used for them are no guess).
 */
function toLimits(ctx: AdapterContext, raw: RawParams, details: DomainXmlDetails): ResourceLimits {
  const opts = { cgroupVersion: ctx.cgroupVersion ?? 1 };
  const out: ResourceLimits = {};
  if (raw.scheduler !== undefined) {
    out.cpu = schedulerParamsToCpuLimits(raw.scheduler, {
      ...opts,
      vcpus: details.vcpus.max,
    });
  }
  out.memory = memoryParamsToLimits(raw.memory, opts);
  const disks: DiskLimits[] = [];
  for (const [device, params] of raw.disks) disks.push(blockIoTuneToDiskLimits(device, params));
  out.disks = disks;
  const nics: NicLimits[] = [];
  for (const [device, params] of raw.nics) nics.push(interfaceParamsToNicLimits(device, params));
  out.nics = nics;
  if (ctx.cgroupVersion === undefined) {
    if (out.cpu) delete out.cpu.weight;
    delete out.memory.swapMaxBytes;
  }
  return normalizeLimits(out);
}

async function readLimits(
  ctx: AdapterContext,
  h: DomainHandle,
  from: 'live' | 'persistent',
  rpc: Rpc,
): Promise<ResourceLimits> {
  const live = from === 'live';
  if (live && !h.active) {
    throw hvkitError('CONFLICT', 'The guest is not running; read its persistent limits instead.', {
      adapter: ADAPTER_ID,
      operation: 'limits.get',
    });
  }
  // Only device lists are used from the details (not their cgroup-dependent limits).
  const details = parseDomainXmlDetails(await domainXml(ctx, h.dom, !live, rpc));
  const raw = await readRaw(ctx, h.dom, details, live ? AFFECT.LIVE : AFFECT.CONFIG, rpc);
  return toLimits(ctx, raw, details);
}

/** Whether `swap_hard_limit` is set to a limit (not unlimited). */
function swapLimited(memory: readonly TypedParam[]): boolean {
  const swap = paramBigInt(memory, 'swap_hard_limit');
  return swap !== undefined && swap >= 0n && swap < LIBVIRT_MEMORY_UNLIMITED_KIB;
}

/** The limits capability. */
export function createLimits(
  ctx: AdapterContext,
  supports: Parameters<typeof validateLimits>[1],
): LimitsCapability {
  let warned = false;
  /** The fields a read leaves out for an unknown cgroup version, as warnings (logged once per adapter). */
  function omittedFields(): HvkitWarning[] {
    if (ctx.cgroupVersion !== undefined) return [];
    const message = `${cgroupUnknownMessage(ctx, CGROUP_DEPENDENT)} They are left out of the limits read.`;
    if (!warned) {
      warned = true;
      try {
        ctx.logger?.warn(`kvm-libvirt: ${message}`, { fields: [...CGROUP_DEPENDENT] });
      } catch {
        // A failing logger must not change the outcome of the call.
      }
    }
    return CGROUP_DEPENDENT.map((field) => ({ type: 'unsupported' as const, field, message }));
  }

  return {
    async get(ref, options: LimitsGetOptions = {}): Promise<ResourceLimits> {
      const from = options.from;
      if (from !== undefined && from !== 'live' && from !== 'persistent') {
        throw new TypeError("options.from must be 'live' or 'persistent'.");
      }
      const rpc = rpcOptions(options);
      const h = await domainHandle(ctx, ref, 'limits.get', options);
      const limits = await readLimits(ctx, h, from ?? (h.active ? 'live' : 'persistent'), rpc);
      omittedFields();
      return limits;
    },

    async set(ref, patch: ResourceLimits, options: LimitsSetOptions = {}): Promise<LimitsSetResult> {
      if (typeof patch !== 'object' || patch === null || Array.isArray(patch)) {
        throw new TypeError('limits must be an object.');
      }
      const apply = options.apply;
      if (apply !== undefined && apply !== 'live' && apply !== 'persistent' && apply !== 'both') {
        throw new TypeError("options.apply must be 'live', 'persistent' or 'both'.");
      }
      if (ctx.cgroupVersion === undefined) {
        const given = CGROUP_DEPENDENT.filter((f) => {
          const [group, key] = f.split('.') as ['cpu' | 'memory', string];
          const part = patch[group] as Record<string, unknown> | undefined;
          return typeof part === 'object' && part !== null && part[key] !== undefined;
        });
        if (given.length > 0) {
          throw hvkitError('UNSUPPORTED', cgroupUnknownMessage(ctx, given), {
            adapter: ADAPTER_ID,
            operation: 'limits.set',
            details: { fields: given, option: 'cgroupVersion' },
          });
        }
      }
      // Bad values and unsupported fields are rejected before any call.
      validateLimits(patch, supports, { adapter: ADAPTER_ID });
      const rpc = rpcOptions(options);
      const h = await domainHandle(ctx, ref, 'limits.set', options);
      const mode = apply ?? (h.active ? 'both' : 'persistent');
      const live = mode !== 'persistent';
      // Device names from the XML the change applies to (live when live is involved).
      const details = parseDomainXmlDetails(await domainXml(ctx, h.dom, !live, rpc));
      validateLimits(patch, supports, {
        adapter: ADAPTER_ID,
        devices: {
          disks: tunableDisks(details).map((d) => d.device),
          nics: details.interfaces.map((n) => n.device),
        },
        ...(setsHostBoundField(patch) ? { host: await hostFacts(ctx, rpc) } : {}),
      });
      if (live && !h.active) {
        throw hvkitError(
          'CONFLICT',
          `apply '${mode}' needs a running guest; use apply 'persistent' for a stopped one.`,
          { adapter: ADAPTER_ID, operation: 'limits.set' },
        );
      }
      const splitBoth = mode === 'both' && ctx.driver === 'TEST';
      const flags = splitBoth
        ? AFFECT.LIVE
        : (live ? AFFECT.LIVE : 0) | (mode !== 'live' ? AFFECT.CONFIG : 0);
      const readFlags = live ? AFFECT.LIVE : AFFECT.CONFIG;
      const raw = await readRaw(ctx, h.dom, details, readFlags, rpc);
      if (
        ctx.cgroupVersion === undefined &&
        patch.memory?.maxBytes !== undefined &&
        swapLimited(raw.memory)
      ) {
        // On v1 the swap limit (memory + swap) has to move with the hard limit; on v2 it stays.
        throw hvkitError(
          'UNSUPPORTED',
          `${cgroupUnknownMessage(ctx, ['memory.maxBytes'])} (The guest has a swap limit, which on cgroup v1 is memory + swap and must be re-sent with a new hard limit.)`,
          {
            adapter: ADAPTER_ID,
            operation: 'limits.set',
            details: { fields: ['memory.maxBytes'], option: 'cgroupVersion' },
          },
        );
      }
      // With an unknown cgroup version nothing that depends on it is left in the patch (checked above).
      const opts = { cgroupVersion: ctx.cgroupVersion ?? 1 };
      const warnings: HvkitWarning[] = [];

      // Convert everything first: a bad value rejects before anything is changed.
      const calls: ((flags: number) => Promise<void>)[] = [];
      if (patch.cpu !== undefined && Object.keys(patch.cpu).length > 0) {
        const conv = cpuLimitsToSchedulerParams(patch.cpu, raw.scheduler ?? [], opts);
        warnings.push(...conv.warnings);
        if (conv.params.length > 0)
          calls.push((flags) =>
            ctx.client.call(
              remoteProcedures.DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS,
              { dom: h.dom, params: conv.params, flags },
              rpc,
            ),
          );
      }
      if (patch.memory !== undefined && Object.keys(patch.memory).length > 0) {
        const conv = memoryLimitsToParams(patch.memory, raw.memory, opts);
        warnings.push(...conv.warnings);
        if (conv.params.length > 0)
          calls.push((flags) =>
            ctx.client
              .call(
                remoteProcedures.DOMAIN_SET_MEMORY_PARAMETERS,
                { dom: h.dom, params: conv.params, flags },
                rpc,
              )
              .catch((error: unknown) => {
                throw memoryLimitConflict(error);
              }),
          );
      }
      for (const disk of patch.disks ?? []) {
        const conv = diskLimitsToBlockIoTuneParams(disk, raw.disks.get(disk.device) ?? []);
        warnings.push(...conv.warnings);
        if (conv.params.length > 0)
          calls.push((flags) =>
            ctx.client.call(
              remoteProcedures.DOMAIN_SET_BLOCK_IO_TUNE,
              { dom: h.dom, disk: disk.device, params: conv.params, flags },
              rpc,
            ),
          );
      }
      for (const nic of patch.nics ?? []) {
        const iface = details.interfaces.find((n) => n.device === nic.device);
        const conv = nicLimitsToInterfaceParams(nic, raw.nics.get(nic.device) ?? []);
        warnings.push(...conv.warnings);
        if (conv.params.length > 0 && iface)
          calls.push((flags) =>
            ctx.client.call(
              remoteProcedures.DOMAIN_SET_INTERFACE_PARAMETERS,
              {
                dom: h.dom,
                device: iface.mac ?? iface.paramsDevice,
                params: conv.params,
                flags,
              },
              rpc,
            ),
          );
      }
      // One after another: libvirt takes a job per call on the domain anyway.
      for (const call of calls) await call(flags);
      // The test driver refuses LIVE|CONFIG together: apply 'both' there as a live call, then a config one.
      if (splitBoth) for (const call of calls) await call(AFFECT.CONFIG);
      const limits = await readLimits(ctx, h, live ? 'live' : 'persistent', rpc);
      warnings.push(...omittedFields());
      return { limits, appliesAt: live ? 'live' : 'next-boot', warnings };
    },
  };
}
