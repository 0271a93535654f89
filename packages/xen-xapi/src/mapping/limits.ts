/**
 * Limits <-> XAPI fields:
 * - `cpu.weight` <-> `VCPUs_params.weight` (256 = 100, see ./cpu.ts); `cpu.maxCores` <-> `VCPUs_params.cap`
 *   / 100 (cap 0 or absent = null). Both take effect at the VM's next start.
 * - `memory.maxBytes` <-> `memory_dynamic_max`, `memory.minBytes` <-> `memory_dynamic_min`: the balloon
 *   range, live on a running VM; null when the range reaches the static limit (`memory_static_max`,
 *   `memory_static_min`).
 * - `nics[].outboundAverageBytesPerSec` <-> a VIF's `qos_algorithm_type=ratelimit` and
 *   `qos_algorithm_params.kbps` (KiB/s, × 1024); applied when the VIF is next plugged.
 */

import type { NicLimits, ResourceLimits } from '@hvkit/core';
import type { XapiRecord } from '../protocol/values';
import { weightToXapiWeight, xapiWeightToWeight } from './cpu';

const int = (v: unknown): number | undefined => {
  const n =
    typeof v === 'bigint'
      ? Number(v)
      : typeof v === 'number'
        ? v
        : typeof v === 'string' && /^\d+$/.test(v)
          ? Number(v)
          : undefined;
  return n !== undefined && Number.isSafeInteger(n) ? n : undefined;
};

/** The limits a VM record and its VIFs describe. */
export function limitsOf(vm: XapiRecord, vifs: readonly XapiRecord[]): ResourceLimits {
  const params = (vm.VCPUs_params ?? {}) as Record<string, string>;
  const weight = int(params.weight);
  const cap = int(params.cap);
  const smin = int(vm.memory_static_min);
  const smax = int(vm.memory_static_max);
  const dmin = int(vm.memory_dynamic_min);
  const dmax = int(vm.memory_dynamic_max);
  const nics: NicLimits[] = vifs
    .map((vif) => {
      const qos = (vif.qos_algorithm_params ?? {}) as Record<string, string>;
      const kbps = vif.qos_algorithm_type === 'ratelimit' ? int(qos.kbps) : undefined;
      return {
        device: String(vif.device),
        outboundAverageBytesPerSec: kbps !== undefined && kbps > 0 ? kbps * 1024 : null,
      };
    })
    .sort((a, b) => a.device.localeCompare(b.device, 'en', { numeric: true }));
  return {
    cpu: {
      weight: weight !== undefined && weight > 0 ? xapiWeightToWeight(weight) : null,
      maxCores: cap !== undefined && cap > 0 ? cap / 100 : null,
    },
    memory: {
      maxBytes: dmax === undefined || dmax === smax ? null : dmax,
      minBytes: dmin === undefined || dmin === smin ? null : dmin,
    },
    ...(nics.length ? { nics } : {}),
  };
}

/** `VCPUs_params` after a CPU patch (keys not named by the patch kept). */
export function vcpusParamsAfter(
  params: Readonly<Record<string, string>>,
  cpu: ResourceLimits['cpu'],
): Record<string, string> {
  const out: Record<string, string> = { ...params };
  if (cpu?.weight !== undefined) {
    if (cpu.weight === null) delete out.weight;
    else out.weight = String(weightToXapiWeight(cpu.weight));
  }
  if (cpu?.maxCores !== undefined) {
    if (cpu.maxCores === null) delete out.cap;
    else out.cap = String(Math.round(cpu.maxCores * 100));
  }
  return out;
}

/** The dynamic range after a memory patch: null bounds reach the static limits. */
export function dynamicRangeAfter(
  vm: XapiRecord,
  memory: ResourceLimits['memory'],
): { min: number; max: number } {
  const smin = int(vm.memory_static_min) ?? 0;
  const smax = int(vm.memory_static_max) ?? 0;
  let min = int(vm.memory_dynamic_min) ?? smin;
  let max = int(vm.memory_dynamic_max) ?? smax;
  // 0 (no reservation, the field's default) is the static minimum, as null is.
  if (memory?.minBytes !== undefined)
    min = memory.minBytes === null || memory.minBytes === 0 ? smin : memory.minBytes;
  if (memory?.maxBytes !== undefined) max = memory.maxBytes === null ? smax : memory.maxBytes;
  return { min, max };
}
