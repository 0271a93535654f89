/**
 * Limits: CPU and memory allocation, per-disk IOPS and vNIC bandwidth, read and changed with
 * `ReconfigVM_Task` (live and in the configuration at once).
 */

import {
  type GuestRef,
  hvkitError,
  type LimitsCapability,
  type LimitsGetOptions,
  type LimitsHostFacts,
  type LimitsSetOptions,
  type LimitsSetResult,
  normalizeLimits,
  type ResourceLimits,
  validateLimits,
} from '@hvkit/core';
import { readObject, resolveVm, type VsphereContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { buildLimitsSpec, HOST_LIMIT_PATHS, LIMIT_PATHS, mapLimits } from '../mapping/limits';
import type { MoRef } from '../protocol/soap/schema';
import { waitForTask } from '../protocol/soap/task';
import { VMWARE_VSPHERE_SUPPORTS } from '../supports';

/** A positive safe integer (a bigint too), else undefined. */
function positive(value: unknown): number | undefined {
  const n = typeof value === 'bigint' ? Number(value) : value;
  return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : undefined;
}

/**
 * The VM's host: its core speed (for `maxCores` ↔ MHz) and what bounds limits, its logical CPUs
 * (`numCpuThreads`) and memory (`memorySize`).
 */
async function hostFacts(
  ctx: VsphereContext,
  host: unknown,
  signal?: AbortSignal,
): Promise<{ mhz?: number; bounds: LimitsHostFacts }> {
  const ref = host as MoRef | undefined;
  if (!ref?.value) return { bounds: {} };
  const props = await readObject(ctx, ref, HOST_LIMIT_PATHS, signal);
  const mhz = positive(props['summary.hardware.cpuMhz']);
  const logicalCpus = positive(props['summary.hardware.numCpuThreads']);
  const memoryBytes = positive(props['summary.hardware.memorySize']);
  return {
    ...(mhz !== undefined ? { mhz } : {}),
    bounds: {
      ...(logicalCpus !== undefined ? { logicalCpus } : {}),
      ...(memoryBytes !== undefined ? { memoryBytes } : {}),
    },
  };
}

/** The limits capability of one adapter. */
export function createLimits(ctx: VsphereContext): LimitsCapability {
  const supports = VMWARE_VSPHERE_SUPPORTS.limits;
  return {
    /** Limits as reported: a field at its default (normal shares, no reservation) is `null`. */
    async get(ref: GuestRef, o: LimitsGetOptions = {}): Promise<ResourceLimits> {
      const vm = await resolveVm(ctx, ref, 'limits.get', o.signal);
      const props = await readObject(ctx, vm, LIMIT_PATHS, o.signal);
      const { mhz } = await hostFacts(ctx, props['runtime.host'], o.signal);
      return normalizeLimits(mapLimits(props, mhz));
    },

    async set(ref: GuestRef, patch: ResourceLimits, o: LimitsSetOptions = {}): Promise<LimitsSetResult> {
      validateLimits(patch, supports, { adapter: ADAPTER_ID });
      if (o.apply !== undefined && o.apply !== 'both') {
        if (o.apply !== 'live' && o.apply !== 'persistent')
          throw new TypeError(`Unknown apply mode ${String(o.apply)}.`);
        throw hvkitError(
          'UNSUPPORTED',
          `vSphere changes a VM's allocation live and in its configuration at once; apply '${o.apply}' is not possible (use 'both').`,
          { adapter: ADAPTER_ID, operation: 'limits.set' },
        );
      }
      const vm = await resolveVm(ctx, ref, 'limits.set', o.signal);
      const props = await readObject(ctx, vm, LIMIT_PATHS, o.signal);
      const current = mapLimits(props, undefined);
      const { mhz, bounds } = await hostFacts(ctx, props['runtime.host'], o.signal);
      validateLimits(patch, supports, {
        adapter: ADAPTER_ID,
        devices: {
          disks: (current.disks ?? []).map((d) => d.device),
          nics: (current.nics ?? []).map((n) => n.device),
        },
        host: bounds,
      });
      const { spec, warnings } = buildLimitsSpec(patch, props, mhz);
      if (spec) {
        const task = await ctx.session.call<MoRef>('ReconfigVM_Task', vm, { spec }, { signal: o.signal });
        await waitForTask(ctx.session, task, { signal: o.signal });
      }
      const after = await readObject(ctx, vm, LIMIT_PATHS, o.signal);
      return { limits: normalizeLimits(mapLimits(after, mhz)), appliesAt: 'live', warnings };
    },
  };
}
