/**
 * The `limits` capability: `VCPUs_params` weight and cap (next start), the memory balloon range (live on
 * a running VM through `VM.set_memory_dynamic_range`, run as an XAPI task; `VM.set_memory_limits` on a
 * halted one, raising the static limits when the range goes beyond them), and VIF rate limits (next plug).
 * Every value is checked before anything is sent; `appliesAt` says when the change takes effect.
 */

import {
  type GuestRef,
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
import { type AdapterContext, getRecord, type ResolvedVm, resolveVm } from '../context';
import { ADAPTER_ID } from '../errors';
import { dynamicRangeAfter, limitsOf, vcpusParamsAfter } from '../mapping/limits';
import type { XapiCallOptions } from '../protocol/client';
import { normaliseRecords, type XapiRecord } from '../protocol/values';
import { XEN_XAPI_SUPPORTS } from '../supports';

async function vifsOf(ctx: AdapterContext, vm: ResolvedVm, o: XapiCallOptions): Promise<XapiRecord[]> {
  const out: XapiRecord[] = [];
  for (const ref of (vm.record.VIFs as string[]) ?? [])
    out.push({ ...(await getRecord(ctx, 'VIF', ref, o)), $ref: ref });
  return out;
}

/** The pool master's logical CPUs and memory: what bounds limits. */
async function hostBounds(
  ctx: AdapterContext,
  o: XapiCallOptions,
): Promise<{ logicalCpus?: number; memoryBytes?: number }> {
  const pools = normaliseRecords('pool', await ctx.client.call('pool.get_all_records', [], o));
  const master = [...pools.values()][0]?.master as string | undefined;
  if (!master) return {};
  const host = await getRecord(ctx, 'host', master, o);
  const cpus = Number((host.cpu_info as Record<string, string>)?.cpu_count);
  const metrics = host.metrics ? await getRecord(ctx, 'host_metrics', host.metrics as string, o) : undefined;
  const memory = Number(metrics?.memory_total);
  return {
    ...(Number.isSafeInteger(cpus) && cpus > 0 ? { logicalCpus: cpus } : {}),
    ...(Number.isSafeInteger(memory) && memory > 0 ? { memoryBytes: memory } : {}),
  };
}

const invalid = (message: string) =>
  hvkitError('INVALID_ARGUMENT', message, { adapter: ADAPTER_ID, operation: 'limits.set' });

/** The limits capability of one adapter. */
export function createLimits(ctx: AdapterContext): LimitsCapability {
  const supports = XEN_XAPI_SUPPORTS.limits;
  const read = async (vm: ResolvedVm, o: XapiCallOptions) =>
    normalizeLimits(limitsOf(vm.record, await vifsOf(ctx, vm, o)));
  return {
    /**
     * The VM record's limits. XAPI keeps one value per field (it does not report the running domain's
     * scheduler values), so `from: 'live'` and `from: 'persistent'` read the same record.
     */
    async get(ref: GuestRef, o: LimitsGetOptions = {}): Promise<ResourceLimits> {
      if (o.from !== undefined && o.from !== 'live' && o.from !== 'persistent')
        throw new TypeError(`Unknown from ${String(o.from)}.`);
      return read(await resolveVm(ctx, ref, 'limits.get', o), o);
    },

    async set(ref: GuestRef, patch: ResourceLimits, o: LimitsSetOptions = {}): Promise<LimitsSetResult> {
      validateLimits(patch, supports, { adapter: ADAPTER_ID });
      if (o.apply !== undefined && o.apply !== 'both') {
        if (o.apply !== 'live' && o.apply !== 'persistent')
          throw new TypeError(`Unknown apply mode ${String(o.apply)}.`);
        throw hvkitError(
          'UNSUPPORTED',
          `XAPI writes a VM's limits to its record and applies what it can at once; apply '${o.apply}' is not possible (use 'both').`,
          { adapter: ADAPTER_ID, operation: 'limits.set' },
        );
      }
      const vm = await resolveVm(ctx, ref, 'limits.set', o);
      const vifs = await vifsOf(ctx, vm, o);
      validateLimits(patch, supports, {
        adapter: ADAPTER_ID,
        devices: { nics: vifs.map((v) => String(v.device)) },
        host: await hostBounds(ctx, o),
      });
      const rec = vm.record;
      const state = String(rec.power_state);
      const running = state === 'Running';
      const warnings: HvkitWarning[] = [];

      // Everything is computed and checked before the first change.
      const cpuChange = patch.cpu && (patch.cpu.weight !== undefined || patch.cpu.maxCores !== undefined);
      const params = cpuChange
        ? vcpusParamsAfter(rec.VCPUs_params as Record<string, string>, patch.cpu)
        : undefined;
      if (params?.cap !== undefined && Number(params.cap) < 1)
        throw invalid('cpu.maxCores must be at least 0.01 (XAPI caps are whole percents of a CPU).');
      const memChange =
        patch.memory && (patch.memory.maxBytes !== undefined || patch.memory.minBytes !== undefined);
      const range = memChange ? dynamicRangeAfter(rec, patch.memory) : undefined;
      const smin = Number(rec.memory_static_min);
      const smax = Number(rec.memory_static_max);
      if (range) {
        if (range.min > range.max)
          throw invalid(`memory.minBytes (${range.min}) is above memory.maxBytes (${range.max}).`);
        if (state !== 'Halted' && (range.max > smax || range.min < smin))
          throw invalid(
            `On a ${state.toLowerCase()} VM the memory range must stay within its static limits (${smin}..${smax} bytes); change those while it is halted.`,
          );
      }
      const nicChanges: { ref: string; kbps: number | null; had: boolean }[] = [];
      for (const nic of patch.nics ?? []) {
        if (nic.outboundAverageBytesPerSec === undefined) continue;
        const vif = vifs.find((v) => String(v.device) === nic.device) as XapiRecord;
        const value = nic.outboundAverageBytesPerSec;
        let kbps: number | null = null;
        if (value !== null) {
          kbps = Math.round(value / 1024);
          if (kbps < 1)
            throw invalid(
              `nics[${nic.device}].outboundAverageBytesPerSec must be at least 1024 (XAPI rates are KiB/s).`,
            );
          if (kbps * 1024 !== value)
            warnings.push({
              type: 'compatibility',
              field: 'nics.outboundAverageBytesPerSec',
              message: `XAPI rate limits are whole KiB/s: ${value} B/s was set as ${kbps * 1024}.`,
            });
        }
        nicChanges.push({
          ref: vif.$ref as string,
          kbps,
          had: Object.hasOwn((vif.qos_algorithm_params ?? {}) as object, 'kbps'),
        });
      }

      if (params) await ctx.client.call('VM.set_VCPUs_params', [vm.ref, params], o);
      if (range) {
        if (state === 'Halted') {
          await ctx.client.call(
            'VM.set_memory_limits',
            [vm.ref, Math.min(smin, range.min), Math.max(smax, range.max), range.min, range.max],
            o,
          );
        } else {
          // Ballooning can take a while: run it as a task (cancelled if the caller aborts).
          await ctx.client.callAsync('VM.set_memory_dynamic_range', [vm.ref, range.min, range.max], o);
        }
      }
      for (const c of nicChanges) {
        if (c.had) await ctx.client.call('VIF.remove_from_qos_algorithm_params', [c.ref, 'kbps'], o);
        if (c.kbps === null) {
          await ctx.client.call('VIF.set_qos_algorithm_type', [c.ref, ''], o);
        } else {
          await ctx.client.call('VIF.set_qos_algorithm_type', [c.ref, 'ratelimit'], o);
          await ctx.client.call('VIF.add_to_qos_algorithm_params', [c.ref, 'kbps', String(c.kbps)], o);
        }
      }
      const live = running && !params && nicChanges.length === 0 && range !== undefined;
      const after = await resolveVm(ctx, vm.record.uuid as string, 'limits.set', o);
      return { limits: await read(after, o), appliesAt: live ? 'live' : 'next-boot', warnings };
    },
  };
}
