/**
 * Resource limits: libvirt tuning values (typed parameters of the scheduler, memory, blkio, block IO tune
 * and interface APIs, or the same settings in domain XML) to and from the spec's {@link ResourceLimits}.
 *
 * Pure functions, no I/O. Conventions:
 * - The read side never throws on values the driver reported; values it cannot represent are left out.
 * - The write side takes the parameters the driver reported for the same API call (`current`) and reuses
 *   their types, because libvirt rejects any other type. A field the driver did not report is
 *   `UNSUPPORTED`; a value that cannot be represented is `INVALID_ARGUMENT`; both are thrown before
 *   anything is returned, so nothing is sent.
 * - Byte sizes and rates that are not a whole KiB (memory, interface bandwidth) are **rounded up** to the
 *   next KiB (a limit never ends up below what was asked) and a `compatibility` warning says so.
 */

import {
  type CpuLimits,
  type DiskLimits,
  findLimitsIssues,
  type HvkitWarning,
  hvkitError,
  type MemoryLimits,
  type NicLimits,
  type ResourceLimits,
  sharesToWeight,
  weightToShares,
} from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import { findParam, type LibvirtTypedParam, paramBigInt, paramLike, paramString } from './typed-params';

/** Which cgroup version the host's CPU and memory controllers use (hybrid hosts: where `cpu` is bound). */
export type CgroupVersion = 1 | 2;

/** Options of the limit conversions that depend on the host. */
export interface LimitsMappingOptions {
  /**
   * cgroup version of the host. On v1, libvirt's `cpu_shares` is `cpu.shares` (weight = shares × 100 / 1024)
   * and `swap_hard_limit` is memory + swap. On v2, libvirt writes `cpu_shares` unconverted into `cpu.weight`
   * (weight = shares) and `swap_hard_limit` unchanged into `memory.swap.max` (swap only).
   */
  cgroupVersion: CgroupVersion;
}

/** Options of the CPU conversions. */
export interface CpuLimitsMappingOptions extends LimitsMappingOptions {
  /**
   * Number of vCPUs of the guest. Needed only for the per-vCPU fallback of `maxCores` (when no
   * `global_quota` is set): `vcpu_quota × vcpus / vcpu_period`.
   */
  vcpus?: number;
}

/** Parameters to send in one libvirt call, and notes about values that were adjusted. */
export interface LimitsConversion {
  params: LibvirtTypedParam[];
  warnings: HvkitWarning[];
}

/** libvirt's largest CFS quota in µs (`VIR_CGROUP_CPU_QUOTA_MAX`, 2^44 − 1); at or above it = no cap. */
export const LIBVIRT_CPU_QUOTA_MAX = 17_592_186_044_415;
/** libvirt's smallest CFS quota in µs. */
export const LIBVIRT_CPU_QUOTA_MIN = 1000;
/** libvirt's CFS period range in µs. */
export const LIBVIRT_CPU_PERIOD_MIN = 1000;
/** libvirt's largest CFS period in µs. */
export const LIBVIRT_CPU_PERIOD_MAX = 1_000_000;
/** The kernel's default CFS period (µs), used when the domain has none configured. */
export const DEFAULT_CPU_PERIOD_US = 100_000;
/** libvirt's "unlimited" for memory parameters, in KiB (`VIR_DOMAIN_MEMORY_PARAM_UNLIMITED`). */
export const LIBVIRT_MEMORY_UNLIMITED_KIB = 9_007_199_254_740_991n;
/** cgroup v1 `cpu.shares` for weight 100, what `cpu.weight = null` (backend default) sets on v1. */
const DEFAULT_SHARES_V1 = 1024n;
/** cgroup v2 default `cpu.weight`, what `cpu.weight = null` sets on v2. */
const DEFAULT_WEIGHT_V2 = 100n;
/** libvirt's accepted `cpu_shares` range. */
const SHARES_MIN = 2n;
const SHARES_MAX = 262_144n;
/** Interface bandwidth values are UINT KiB/s or KiB. */
const UINT_MAX = 4_294_967_295;
/** What cgroup v2 `cpu.max` = `max` reads back as through libvirt (`ULLONG_MAX / 1000`). */
const V2_QUOTA_MAX_READBACK = 18_446_744_073_709_551n;

const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function toSafe(value: bigint): number | undefined {
  return value >= -MAX_SAFE && value <= MAX_SAFE ? Number(value) : undefined;
}

function checkOptions(options: LimitsMappingOptions): void {
  if (
    typeof options !== 'object' ||
    options === null ||
    (options.cgroupVersion !== 1 && options.cgroupVersion !== 2)
  ) {
    throw new TypeError('limits mapping: options.cgroupVersion must be 1 or 2.');
  }
}

function invalid(message: string, field: string, details: Record<string, unknown> = {}) {
  return hvkitError('INVALID_ARGUMENT', message, { adapter: ADAPTER_ID, details: { field, ...details } });
}

function validate(patch: ResourceLimits): void {
  const issues = findLimitsIssues(patch);
  if (issues.length > 0) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `invalid limits: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      {
        adapter: ADAPTER_ID,
        details: { issues },
      },
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// CPU

/** Raw CPU tuning values in libvirt's units (µs; shares relative). Absent values are undefined. */
export interface LibvirtCpuTune {
  shares?: bigint;
  period?: bigint;
  quota?: bigint;
  globalPeriod?: bigint;
  globalQuota?: bigint;
  emulatorPeriod?: bigint;
  emulatorQuota?: bigint;
  iothreadPeriod?: bigint;
  iothreadQuota?: bigint;
}

/** Scheduler parameter names of {@link LibvirtCpuTune} keys. */
const SCHED_FIELDS: ReadonlyArray<readonly [keyof LibvirtCpuTune, string]> = [
  ['shares', 'cpu_shares'],
  ['period', 'vcpu_period'],
  ['quota', 'vcpu_quota'],
  ['globalPeriod', 'global_period'],
  ['globalQuota', 'global_quota'],
  ['emulatorPeriod', 'emulator_period'],
  ['emulatorQuota', 'emulator_quota'],
  ['iothreadPeriod', 'iothread_period'],
  ['iothreadQuota', 'iothread_quota'],
];

/** Reads the scheduler parameters (`DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS`) into {@link LibvirtCpuTune}. */
export function schedulerParamsToCpuTune(params: readonly LibvirtTypedParam[]): LibvirtCpuTune {
  const out: LibvirtCpuTune = {};
  for (const [key, field] of SCHED_FIELDS) {
    const v = paramBigInt(params, field);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

/** Whether a CFS quota means "a cap": > 0 and below libvirt's maximum (−1, 0 and the maxima mean none). */
function isCap(quota: bigint | undefined): quota is bigint {
  return (
    quota !== undefined &&
    quota > 0n &&
    quota < BigInt(LIBVIRT_CPU_QUOTA_MAX) &&
    quota !== V2_QUOTA_MAX_READBACK
  );
}

function effectivePeriod(period: bigint | undefined): bigint {
  return period !== undefined && period > 0n ? period : BigInt(DEFAULT_CPU_PERIOD_US);
}

/**
 * {@link LibvirtCpuTune} → {@link CpuLimits}.
 *
 * - `weight`: from `shares`. cgroup v1: `sharesToWeight` (shares × 100 / 1024, 1024 → 100); cgroup v2:
 *   the shares value itself (libvirt writes it into `cpu.weight` unconverted), clamped to 1..10000.
 *   Shares 0 or absent (a definition without `<shares>`) → `null` (backend default).
 * - `maxCores`: `global_quota / global_period` (whole domain). Only when no global cap is set, the per-vCPU
 *   cap `vcpu_quota × vcpus / vcpu_period` is used (needs `options.vcpus`; without it `maxCores` is left
 *   out). A quota ≤ 0 (−1 = none, 0 = unset) or ≥ 17592186044415 (libvirt's maximum; cgroup v2 `max`)
 *   is no cap: `null`. A period of 0 (unset) means the kernel default, 100000 µs. Emulator and iothread
 *   quotas do not count (they cap helper threads, not the vCPUs).
 * - `reservationMHz` is not a libvirt concept and stays undefined.
 */
export function cpuTuneToCpuLimits(tune: LibvirtCpuTune, options: CpuLimitsMappingOptions): CpuLimits {
  checkOptions(options);
  const out: CpuLimits = {};
  if (tune.shares !== undefined) {
    if (tune.shares <= 0n) out.weight = null;
    else if (options.cgroupVersion === 1)
      out.weight = sharesToWeight(Number(tune.shares > SHARES_MAX ? SHARES_MAX : tune.shares));
    else out.weight = Number(tune.shares < 1n ? 1n : tune.shares > 10_000n ? 10_000n : tune.shares);
  }
  if (isCap(tune.globalQuota)) {
    out.maxCores = Number(tune.globalQuota) / Number(effectivePeriod(tune.globalPeriod));
  } else if (isCap(tune.quota)) {
    const vcpus = options.vcpus;
    if (vcpus !== undefined && Number.isSafeInteger(vcpus) && vcpus > 0) {
      out.maxCores = (Number(tune.quota) * vcpus) / Number(effectivePeriod(tune.period));
    }
  } else if (tune.globalQuota !== undefined || tune.quota !== undefined) {
    out.maxCores = null;
  }
  return out;
}

/** Scheduler parameters → {@link CpuLimits}; see {@link cpuTuneToCpuLimits} for the rules. */
export function schedulerParamsToCpuLimits(
  params: readonly LibvirtTypedParam[],
  options: CpuLimitsMappingOptions,
): CpuLimits {
  return cpuTuneToCpuLimits(schedulerParamsToCpuTune(params), options);
}

/**
 * {@link CpuLimits} patch → scheduler parameters for `DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS`, with the types
 * of `current` (the parameters read from the same domain with the same flags).
 *
 * - `weight`: v1 → `cpu_shares` = round(weight × 1024 / 100) (`weightToShares`); v2 → `cpu_shares` = weight,
 *   raised to 2 (libvirt's minimum) with a warning for weight 1. `null` → the default (1024 on v1, 100 on v2).
 * - `maxCores`: `global_quota` = round(maxCores × period) with the domain's `global_period`, or 100000 µs when
 *   none is set (then `global_period` is sent too). A quota below 1000 µs or above libvirt's maximum is
 *   `INVALID_ARGUMENT`; rounding is reported as a warning. `null` → `global_quota` = −1 (no cap). A per-vCPU
 *   `vcpu_quota` that is also set is left alone and reported as a warning (it may cap lower).
 * - `reservationMHz`: a number is `UNSUPPORTED`; `null` (none) is accepted and sends nothing.
 *
 * @throws HvkitError `INVALID_ARGUMENT`, `UNSUPPORTED` (see above; also when the driver does not report
 *   `cpu_shares` or `global_quota`, e.g. the test driver, whose scheduler has only `weight`).
 */
export function cpuLimitsToSchedulerParams(
  cpu: CpuLimits,
  current: readonly LibvirtTypedParam[],
  options: LimitsMappingOptions,
): LimitsConversion {
  checkOptions(options);
  validate({ cpu });
  const params: LibvirtTypedParam[] = [];
  const warnings: HvkitWarning[] = [];
  if (cpu.reservationMHz !== undefined && cpu.reservationMHz !== null) {
    throw hvkitError('UNSUPPORTED', 'libvirt has no CPU reservation in MHz (cpu.reservationMHz).', {
      adapter: ADAPTER_ID,
      details: { field: 'cpu.reservationMHz' },
    });
  }
  if (cpu.weight !== undefined) {
    let shares: bigint;
    if (cpu.weight === null) shares = options.cgroupVersion === 1 ? DEFAULT_SHARES_V1 : DEFAULT_WEIGHT_V2;
    else if (options.cgroupVersion === 1) shares = BigInt(weightToShares(cpu.weight));
    else {
      shares = BigInt(cpu.weight);
      if (shares < SHARES_MIN) {
        shares = SHARES_MIN;
        warnings.push({
          type: 'compatibility',
          field: 'cpu.weight',
          message: `libvirt accepts cpu_shares from 2; weight ${cpu.weight} was set as 2.`,
        });
      }
    }
    params.push(paramLike(current, 'cpu_shares', shares, 'cpu.weight'));
  }
  if (cpu.maxCores !== undefined) {
    if (cpu.maxCores === null) {
      params.push(paramLike(current, 'global_quota', -1n, 'cpu.maxCores'));
    } else {
      const reportedPeriod = paramBigInt(current, 'global_period');
      const period = effectivePeriod(reportedPeriod);
      const quota = Math.round(cpu.maxCores * Number(period));
      if (quota < LIBVIRT_CPU_QUOTA_MIN) {
        throw invalid(
          `cpu.maxCores ${cpu.maxCores} is below libvirt's minimum quota of ${LIBVIRT_CPU_QUOTA_MIN} µs per ${period} µs period (smallest: ${LIBVIRT_CPU_QUOTA_MIN / Number(period)}).`,
          'cpu.maxCores',
          { value: cpu.maxCores },
        );
      }
      if (quota >= LIBVIRT_CPU_QUOTA_MAX) {
        throw invalid(`cpu.maxCores ${cpu.maxCores} is above libvirt's maximum quota.`, 'cpu.maxCores', {
          value: cpu.maxCores,
        });
      }
      if (reportedPeriod === undefined || reportedPeriod <= 0n) {
        params.push(paramLike(current, 'global_period', period, 'cpu.maxCores'));
      }
      params.push(paramLike(current, 'global_quota', BigInt(quota), 'cpu.maxCores'));
      const applied = quota / Number(period);
      if (applied !== cpu.maxCores) {
        warnings.push({
          type: 'compatibility',
          field: 'cpu.maxCores',
          message: `cpu.maxCores ${cpu.maxCores} was rounded to ${applied} (quota ${quota} µs per ${period} µs).`,
        });
      }
      if (isCap(paramBigInt(current, 'vcpu_quota'))) {
        warnings.push({
          type: 'other',
          field: 'cpu.maxCores',
          message: 'A per-vCPU quota (vcpu_quota) is also set and may cap the guest lower than cpu.maxCores.',
        });
      }
    }
  }
  return { params, warnings };
}

// ---------------------------------------------------------------------------------------------------------
// Memory

/** Raw memory tuning values in KiB (unlimited = 9007199254740991). Absent values are undefined. */
export interface LibvirtMemTune {
  hardLimitKib?: bigint;
  softLimitKib?: bigint;
  swapHardLimitKib?: bigint;
  minGuaranteeKib?: bigint;
}

/** Reads the memory parameters (`DOMAIN_GET_MEMORY_PARAMETERS`) into {@link LibvirtMemTune}. */
export function memoryParamsToMemTune(params: readonly LibvirtTypedParam[]): LibvirtMemTune {
  const out: LibvirtMemTune = {};
  const hard = paramBigInt(params, 'hard_limit');
  const soft = paramBigInt(params, 'soft_limit');
  const swap = paramBigInt(params, 'swap_hard_limit');
  const min = paramBigInt(params, 'min_guarantee');
  if (hard !== undefined) out.hardLimitKib = hard;
  if (soft !== undefined) out.softLimitKib = soft;
  if (swap !== undefined) out.swapHardLimitKib = swap;
  if (min !== undefined) out.minGuaranteeKib = min;
  return out;
}

function isUnlimitedKib(kib: bigint): boolean {
  return kib < 0n || kib >= LIBVIRT_MEMORY_UNLIMITED_KIB;
}

/** KiB → bytes, `null` for unlimited, undefined when the byte count is not a safe integer. */
function kibToBytesOrNull(kib: bigint): number | null | undefined {
  if (isUnlimitedKib(kib)) return null;
  return toSafe(kib * 1024n);
}

/**
 * {@link LibvirtMemTune} → {@link MemoryLimits}. KiB × 1024; 9007199254740991 (unlimited) → `null`.
 *
 * - `maxBytes` ← `hard_limit`; `softBytes` ← `soft_limit`; `minBytes` ← `min_guarantee` (drivers that
 *   have it; QEMU does not).
 * - `swapMaxBytes` ← `swap_hard_limit`. cgroup v1: libvirt's value is memory + swap (`memsw`), so swap =
 *   `swap_hard_limit − hard_limit` (0 if lower); with an unlimited `hard_limit` the whole `swap_hard_limit`
 *   is the bound. cgroup v2: libvirt writes the value unchanged into `memory.swap.max`, which limits swap
 *   only, so it is taken as is.
 */
export function memTuneToMemoryLimits(tune: LibvirtMemTune, options: LimitsMappingOptions): MemoryLimits {
  checkOptions(options);
  const out: MemoryLimits = {};
  const set = (key: keyof MemoryLimits, kib: bigint | undefined) => {
    if (kib === undefined) return;
    const v = kibToBytesOrNull(kib);
    if (v !== undefined) out[key] = v;
  };
  set('maxBytes', tune.hardLimitKib);
  set('softBytes', tune.softLimitKib);
  set('minBytes', tune.minGuaranteeKib);
  const swap = tune.swapHardLimitKib;
  if (swap !== undefined) {
    if (isUnlimitedKib(swap)) out.swapMaxBytes = null;
    else if (options.cgroupVersion === 2) set('swapMaxBytes', swap);
    else {
      const hard = tune.hardLimitKib;
      if (hard === undefined || isUnlimitedKib(hard)) set('swapMaxBytes', swap);
      else set('swapMaxBytes', swap > hard ? swap - hard : 0n);
    }
  }
  return out;
}

/** Memory parameters → {@link MemoryLimits}; see {@link memTuneToMemoryLimits}. */
export function memoryParamsToLimits(
  params: readonly LibvirtTypedParam[],
  options: LimitsMappingOptions,
): MemoryLimits {
  return memTuneToMemoryLimits(memoryParamsToMemTune(params), options);
}

/** Bytes → KiB, rounding up with a warning when not a whole KiB. */
function bytesToKibUp(bytes: number, field: string, warnings: HvkitWarning[]): bigint {
  const kib = (BigInt(bytes) + 1023n) / 1024n;
  if (kib * 1024n !== BigInt(bytes)) {
    warnings.push({
      type: 'compatibility',
      field,
      message: `${field} ${bytes} is not a whole KiB; libvirt takes KiB, so ${kib * 1024n} bytes (${kib} KiB) was set.`,
    });
  }
  return kib;
}

/**
 * {@link MemoryLimits} patch → memory parameters for `DOMAIN_SET_MEMORY_PARAMETERS`, with the types of
 * `current` (the parameters read from the same domain with the same flags). Values not a whole KiB are
 * rounded up (warning). `null` → 9007199254740991 (unlimited).
 *
 * - `maxBytes` → `hard_limit`, `softBytes` → `soft_limit`, `minBytes` → `min_guarantee` (`UNSUPPORTED` when
 *   the driver does not report it, as QEMU; `null` is then a no-op).
 * - `swapMaxBytes`, cgroup v1: `swap_hard_limit` = hard limit + swap, with the hard limit from the patch or
 *   else from `current`. Swap alone cannot be limited while the hard limit is unlimited (`INVALID_ARGUMENT`).
 *   When only `maxBytes` changes and a swap limit is set, `swap_hard_limit` is re-sent so the swap amount
 *   stays the same (with an unlimited new hard limit, the swap limit becomes unlimited too, with a warning).
 * - `swapMaxBytes`, cgroup v2: `swap_hard_limit` = swap, unchanged.
 *
 * @throws HvkitError `INVALID_ARGUMENT` or `UNSUPPORTED` (see above).
 */
export function memoryLimitsToParams(
  memory: MemoryLimits,
  current: readonly LibvirtTypedParam[],
  options: LimitsMappingOptions,
): LimitsConversion {
  checkOptions(options);
  validate({ memory });
  const params: LibvirtTypedParam[] = [];
  const warnings: HvkitWarning[] = [];
  const toKib = (bytes: number | null, field: string) =>
    bytes === null ? LIBVIRT_MEMORY_UNLIMITED_KIB : bytesToKibUp(bytes, field, warnings);

  let newHardKib: bigint | undefined;
  if (memory.maxBytes !== undefined) {
    newHardKib = toKib(memory.maxBytes, 'memory.maxBytes');
    params.push(paramLike(current, 'hard_limit', newHardKib, 'memory.maxBytes'));
  }
  if (memory.softBytes !== undefined) {
    params.push(
      paramLike(current, 'soft_limit', toKib(memory.softBytes, 'memory.softBytes'), 'memory.softBytes'),
    );
  }
  if (memory.minBytes !== undefined) {
    if (memory.minBytes !== null || findParam(current, 'min_guarantee')) {
      params.push(
        paramLike(
          current,
          'min_guarantee',
          memory.minBytes === null ? 0n : bytesToKibUp(memory.minBytes, 'memory.minBytes', warnings),
          'memory.minBytes',
        ),
      );
    }
  }
  const currentHard = paramBigInt(current, 'hard_limit');
  const hardKib = newHardKib ?? currentHard;
  if (memory.swapMaxBytes !== undefined) {
    let swapKib: bigint;
    if (memory.swapMaxBytes === null) swapKib = LIBVIRT_MEMORY_UNLIMITED_KIB;
    else if (options.cgroupVersion === 2)
      swapKib = bytesToKibUp(memory.swapMaxBytes, 'memory.swapMaxBytes', warnings);
    else {
      if (hardKib === undefined || isUnlimitedKib(hardKib)) {
        throw invalid(
          'On cgroup v1 libvirt limits memory + swap together, so memory.swapMaxBytes needs a memory.maxBytes limit (the hard limit is unlimited).',
          'memory.swapMaxBytes',
        );
      }
      swapKib = hardKib + bytesToKibUp(memory.swapMaxBytes, 'memory.swapMaxBytes', warnings);
    }
    params.push(paramLike(current, 'swap_hard_limit', swapKib, 'memory.swapMaxBytes'));
  } else if (options.cgroupVersion === 1 && newHardKib !== undefined) {
    const currentSwap = paramBigInt(current, 'swap_hard_limit');
    if (currentSwap !== undefined && !isUnlimitedKib(currentSwap)) {
      const swapOnly =
        currentHard === undefined || isUnlimitedKib(currentHard)
          ? currentSwap
          : currentSwap > currentHard
            ? currentSwap - currentHard
            : 0n;
      let swapKib: bigint;
      if (isUnlimitedKib(newHardKib)) {
        swapKib = LIBVIRT_MEMORY_UNLIMITED_KIB;
        warnings.push({
          type: 'compatibility',
          field: 'memory.swapMaxBytes',
          message:
            'On cgroup v1 the swap limit cannot stay without a memory limit; it was made unlimited too.',
        });
      } else {
        swapKib = newHardKib + swapOnly;
      }
      params.push(paramLike(current, 'swap_hard_limit', swapKib, 'memory.swapMaxBytes'));
    }
  }
  return { params, warnings };
}

// ---------------------------------------------------------------------------------------------------------
// Block IO

/** Raw per-disk block IO tuning (`<iotune>`, `DOMAIN_GET_BLOCK_IO_TUNE`): bytes/s and IOPS, 0 = none. */
export interface LibvirtIoTune {
  totalBytesSec?: bigint;
  readBytesSec?: bigint;
  writeBytesSec?: bigint;
  totalIopsSec?: bigint;
  readIopsSec?: bigint;
  writeIopsSec?: bigint;
}

/** {@link LibvirtIoTune} keys and libvirt's names for them (typed parameters and `<iotune>` children). */
export const IOTUNE_FIELDS: ReadonlyArray<readonly [keyof LibvirtIoTune, string]> = [
  ['totalBytesSec', 'total_bytes_sec'],
  ['readBytesSec', 'read_bytes_sec'],
  ['writeBytesSec', 'write_bytes_sec'],
  ['totalIopsSec', 'total_iops_sec'],
  ['readIopsSec', 'read_iops_sec'],
  ['writeIopsSec', 'write_iops_sec'],
];

/** Reads block IO tune parameters into {@link LibvirtIoTune}. */
export function blockIoTuneParamsToIoTune(params: readonly LibvirtTypedParam[]): LibvirtIoTune {
  const out: LibvirtIoTune = {};
  for (const [key, field] of IOTUNE_FIELDS) {
    const v = paramBigInt(params, field);
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function rateOrNull(v: bigint | undefined): number | null {
  if (v === undefined || v <= 0n) return null;
  return toSafe(v) ?? null;
}

/**
 * {@link LibvirtIoTune} → {@link DiskLimits} of `device`. 0 or absent = no limit (`null`). A `total_*`
 * limit (read and write together) is reported as the limit of each direction when that direction has no
 * own limit (libvirt never sets both): an upper bound, since one direction alone can use the whole total.
 * All four fields are always present.
 */
export function ioTuneToDiskLimits(device: string, tune: LibvirtIoTune): DiskLimits {
  const pick = (own: bigint | undefined, total: bigint | undefined) => rateOrNull(own) ?? rateOrNull(total);
  return {
    device,
    readBytesPerSec: pick(tune.readBytesSec, tune.totalBytesSec),
    writeBytesPerSec: pick(tune.writeBytesSec, tune.totalBytesSec),
    readIops: pick(tune.readIopsSec, tune.totalIopsSec),
    writeIops: pick(tune.writeIopsSec, tune.totalIopsSec),
  };
}

/** Block IO tune parameters of one disk → {@link DiskLimits}; see {@link ioTuneToDiskLimits}. */
export function blockIoTuneToDiskLimits(device: string, params: readonly LibvirtTypedParam[]): DiskLimits {
  return ioTuneToDiskLimits(device, blockIoTuneParamsToIoTune(params));
}

/** A rate as a whole number for a ULLONG parameter, rounding up with a warning. */
function wholeRate(value: number, field: string, warnings: HvkitWarning[]): bigint {
  const whole = Math.ceil(value);
  if (!Number.isSafeInteger(whole)) throw invalid(`${field} ${value} is too large.`, field, { value });
  if (whole !== value) {
    warnings.push({ type: 'compatibility', field, message: `${field} ${value} was rounded up to ${whole}.` });
  }
  return BigInt(whole);
}

/**
 * {@link DiskLimits} patch → parameters for `DOMAIN_SET_BLOCK_IO_TUNE` of that disk, with the types of
 * `current` (the disk's parameters read with the same flags).
 *
 * libvirt replaces the bytes group (total/read/write bytes) as a whole when any of it is sent, and the IOPS
 * group likewise, and refuses total together with read/write. So when one direction changes, the other is
 * re-sent with its current value as {@link ioTuneToDiskLimits} reports it, and `total_*` is sent as 0.
 * `null` → 0 (no limit). Fractional values are rounded up (warning).
 *
 * @throws HvkitError `INVALID_ARGUMENT` for invalid values; `UNSUPPORTED` when the driver does not report
 *   the fields.
 */
export function diskLimitsToBlockIoTuneParams(
  limits: DiskLimits,
  current: readonly LibvirtTypedParam[],
): LimitsConversion {
  validate({ disks: [limits] });
  const params: LibvirtTypedParam[] = [];
  const warnings: HvkitWarning[] = [];
  const now = ioTuneToDiskLimits(limits.device, blockIoTuneParamsToIoTune(current));
  const group = (
    readKey: 'readBytesPerSec' | 'readIops',
    writeKey: 'writeBytesPerSec' | 'writeIops',
    fields: readonly [string, string, string],
  ) => {
    if (limits[readKey] === undefined && limits[writeKey] === undefined) return;
    const [totalField, readField, writeField] = fields;
    const value = (key: typeof readKey | typeof writeKey) => {
      const v = limits[key] !== undefined ? limits[key] : now[key];
      return v === null || v === undefined ? 0n : wholeRate(v, `disks.${key}`, warnings);
    };
    params.push(paramLike(current, totalField, 0n, `disks.${readKey}`));
    params.push(paramLike(current, readField, value(readKey), `disks.${readKey}`));
    params.push(paramLike(current, writeField, value(writeKey), `disks.${writeKey}`));
  };
  group('readBytesPerSec', 'writeBytesPerSec', ['total_bytes_sec', 'read_bytes_sec', 'write_bytes_sec']);
  group('readIops', 'writeIops', ['total_iops_sec', 'read_iops_sec', 'write_iops_sec']);
  return { params, warnings };
}

/** One host block device's cgroup throttle (`<blkiotune><device>`, blkio `device_*` parameters). */
export interface LibvirtBlkioDevice {
  /** Host block device path, e.g. `/dev/sda`. */
  path: string;
  weight?: number;
  readBytesSec?: number;
  writeBytesSec?: number;
  readIopsSec?: number;
  writeIopsSec?: number;
}

const BLKIO_DEVICE_FIELDS: ReadonlyArray<readonly [keyof Omit<LibvirtBlkioDevice, 'path'>, string]> = [
  ['weight', 'device_weight'],
  ['readIopsSec', 'device_read_iops_sec'],
  ['writeIopsSec', 'device_write_iops_sec'],
  ['readBytesSec', 'device_read_bytes_sec'],
  ['writeBytesSec', 'device_write_bytes_sec'],
];

/**
 * Parses a blkio device string, `path,value,path,value,...` (e.g. `/dev/loop0,10485760`). Pairs whose
 * value is not a non-negative safe integer are skipped.
 */
export function parseBlkioDeviceString(value: string): { path: string; value: number }[] {
  const parts = value.split(',');
  const out: { path: string; value: number }[] = [];
  for (let i = 0; i + 1 < parts.length; i += 2) {
    const path = (parts[i] as string).trim();
    const v = (parts[i + 1] as string).trim();
    if (path === '' || !/^\d+$/.test(v)) continue;
    const n = Number(v);
    if (Number.isSafeInteger(n)) out.push({ path, value: n });
  }
  return out;
}

/**
 * Blkio parameters (`DOMAIN_GET_BLKIO_PARAMETERS`) → weight and per-device throttles. Read them with
 * `VIR_TYPED_PARAM_STRING_OKAY` (4) in the flags: without it the daemon leaves out the STRING `device_*`
 * parameters (measured on libvirt 9.0: only `weight` came back).
 */
export function blkioParamsToBlkio(params: readonly LibvirtTypedParam[]): {
  weight?: number;
  devices: LibvirtBlkioDevice[];
} {
  const byPath = new Map<string, LibvirtBlkioDevice>();
  for (const [key, field] of BLKIO_DEVICE_FIELDS) {
    const s = paramString(params, field);
    if (s === undefined) continue;
    for (const { path, value } of parseBlkioDeviceString(s)) {
      const d = byPath.get(path) ?? { path };
      d[key] = value;
      byPath.set(path, d);
    }
  }
  const w = paramBigInt(params, 'weight');
  const weight = w === undefined ? undefined : toSafe(w);
  return { ...(weight !== undefined ? { weight } : {}), devices: [...byPath.values()] };
}

/**
 * Blkio device throttles → {@link DiskLimits}, one per **host device path** (`device` is the path, e.g.
 * `/dev/sda`, not a guest disk name: these are cgroup throttles of the host device backing a `block`
 * disk). 0 = no limit (`null`).
 */
export function blkioParamsToDeviceLimits(params: readonly LibvirtTypedParam[]): DiskLimits[] {
  return blkioParamsToBlkio(params).devices.map(blkioDeviceToDiskLimits);
}

/** One {@link LibvirtBlkioDevice} → {@link DiskLimits} keyed by its host path. */
export function blkioDeviceToDiskLimits(d: LibvirtBlkioDevice): DiskLimits {
  const r = (v: number | undefined) => (v === undefined || v <= 0 ? null : v);
  return {
    device: d.path,
    readBytesPerSec: r(d.readBytesSec),
    writeBytesPerSec: r(d.writeBytesSec),
    readIops: r(d.readIopsSec),
    writeIops: r(d.writeIopsSec),
  };
}

/**
 * {@link DiskLimits} keyed by a host device path → blkio `device_*` string parameters for
 * `DOMAIN_SET_BLKIO_PARAMETERS` (`"/dev/sda,10485760"`). libvirt merges them per path, so only the given
 * path is sent; `null` → 0, which removes that throttle. Fractional values are rounded up (warning).
 *
 * @throws HvkitError `INVALID_ARGUMENT` when `device` is not an absolute path or contains a comma;
 *   `UNSUPPORTED` when the driver does not report the fields.
 */
export function deviceLimitsToBlkioParams(
  limits: DiskLimits,
  current: readonly LibvirtTypedParam[],
): LimitsConversion {
  validate({ disks: [limits] });
  if (!limits.device.startsWith('/') || limits.device.includes(',')) {
    throw invalid(
      `Blkio throttles need an absolute host device path without commas, got ${JSON.stringify(limits.device)}.`,
      'disks.device',
    );
  }
  const params: LibvirtTypedParam[] = [];
  const warnings: HvkitWarning[] = [];
  const map: ReadonlyArray<readonly [keyof Omit<DiskLimits, 'device'>, string]> = [
    ['readBytesPerSec', 'device_read_bytes_sec'],
    ['writeBytesPerSec', 'device_write_bytes_sec'],
    ['readIops', 'device_read_iops_sec'],
    ['writeIops', 'device_write_iops_sec'],
  ];
  for (const [key, field] of map) {
    const v = limits[key];
    if (v === undefined) continue;
    const n = v === null ? 0n : wholeRate(v, `disks.${key}`, warnings);
    params.push(paramLike(current, field, `${limits.device},${n}`, `disks.${key}`));
  }
  return { params, warnings };
}

// ---------------------------------------------------------------------------------------------------------
// Network

/** Raw interface bandwidth (`<bandwidth>`, interface parameters): KiB/s, burst KiB, 0 = none. */
export interface LibvirtBandwidth {
  inboundAverage?: number;
  inboundPeak?: number;
  inboundBurst?: number;
  inboundFloor?: number;
  outboundAverage?: number;
  outboundPeak?: number;
  outboundBurst?: number;
}

const BANDWIDTH_FIELDS: ReadonlyArray<
  readonly [keyof LibvirtBandwidth, string, keyof NicLimits | undefined]
> = [
  ['inboundAverage', 'inbound.average', 'inboundAverageBytesPerSec'],
  ['inboundPeak', 'inbound.peak', 'inboundPeakBytesPerSec'],
  ['inboundBurst', 'inbound.burst', 'inboundBurstBytes'],
  ['inboundFloor', 'inbound.floor', undefined],
  ['outboundAverage', 'outbound.average', 'outboundAverageBytesPerSec'],
  ['outboundPeak', 'outbound.peak', 'outboundPeakBytesPerSec'],
  ['outboundBurst', 'outbound.burst', 'outboundBurstBytes'],
];

/** Reads interface parameters (`DOMAIN_GET_INTERFACE_PARAMETERS`) into {@link LibvirtBandwidth}. */
export function interfaceParamsToBandwidth(params: readonly LibvirtTypedParam[]): LibvirtBandwidth {
  const out: LibvirtBandwidth = {};
  for (const [key, field] of BANDWIDTH_FIELDS) {
    const v = paramBigInt(params, field);
    const n = v === undefined ? undefined : toSafe(v);
    if (n !== undefined) out[key] = n;
  }
  return out;
}

/**
 * {@link LibvirtBandwidth} → {@link NicLimits} of `device`: KiB/s × 1024 → bytes/s, burst KiB × 1024 →
 * bytes; 0 or absent = no limit (`null`). All six fields are always present. `floor` has no spec field.
 */
export function bandwidthToNicLimits(device: string, bw: LibvirtBandwidth): NicLimits {
  const out: NicLimits = { device };
  for (const [key, , limitKey] of BANDWIDTH_FIELDS) {
    if (!limitKey || limitKey === 'device') continue;
    const v = bw[key];
    (out as unknown as Record<string, number | null>)[limitKey] =
      v === undefined || v <= 0 ? null : (toSafe(BigInt(v) * 1024n) ?? null);
  }
  return out;
}

/** Interface parameters of one NIC → {@link NicLimits}; see {@link bandwidthToNicLimits}. */
export function interfaceParamsToNicLimits(device: string, params: readonly LibvirtTypedParam[]): NicLimits {
  return bandwidthToNicLimits(device, interfaceParamsToBandwidth(params));
}

/**
 * {@link NicLimits} patch → parameters for `DOMAIN_SET_INTERFACE_PARAMETERS`, with the types of `current`
 * (the NIC's parameters read with the same flags; UINT in libvirt 9.0). Bytes → KiB rounding up (warning);
 * a value above 4294967295 KiB(/s) is `INVALID_ARGUMENT`. `null` → 0.
 *
 * libvirt keeps the fields that are not sent. Its rules are checked first: a direction whose average becomes
 * 0 loses its peak and burst too (so `null` average also sends peak and burst 0), and a peak or burst
 * needs a non-zero average (`INVALID_ARGUMENT` otherwise).
 *
 * @throws HvkitError `INVALID_ARGUMENT` or `UNSUPPORTED`.
 */
export function nicLimitsToInterfaceParams(
  limits: NicLimits,
  current: readonly LibvirtTypedParam[],
): LimitsConversion {
  validate({ nics: [limits] });
  const params: LibvirtTypedParam[] = [];
  const warnings: HvkitWarning[] = [];
  const now = interfaceParamsToBandwidth(current);
  const kib = (bytes: number, field: string): bigint => {
    const whole = Math.ceil(bytes);
    const k = (BigInt(whole) + 1023n) / 1024n;
    if (k > BigInt(UINT_MAX))
      throw invalid(`${field} ${bytes} is above libvirt's maximum of ${UINT_MAX} KiB.`, field);
    if (whole !== bytes || k * 1024n !== BigInt(whole)) {
      warnings.push({
        type: 'compatibility',
        field,
        message: `${field} ${bytes} is not a whole KiB; libvirt takes KiB, so ${k * 1024n} (${k} KiB) was set.`,
      });
    }
    return k;
  };
  for (const dir of ['inbound', 'outbound'] as const) {
    const keys = {
      average: `${dir}AverageBytesPerSec`,
      peak: `${dir}PeakBytesPerSec`,
      burst: `${dir}BurstBytes`,
    } as const;
    const given = {
      average: limits[keys.average],
      peak: limits[keys.peak],
      burst: limits[keys.burst],
    };
    if (given.average === undefined && given.peak === undefined && given.burst === undefined) continue;
    const field = (k: 'average' | 'peak' | 'burst') => `${dir}.${k}`;
    const out: Partial<Record<'average' | 'peak' | 'burst', bigint>> = {};
    for (const k of ['average', 'peak', 'burst'] as const) {
      const v = given[k];
      if (v === undefined) continue;
      out[k] = v === null ? 0n : kib(v, `nics.${keys[k]}`);
    }
    const avgAfter = out.average ?? BigInt(now[`${dir}Average` as const] ?? 0);
    if (avgAfter === 0n) {
      const peakAfter = out.peak ?? BigInt(now[`${dir}Peak` as const] ?? 0);
      const burstAfter = out.burst ?? BigInt(now[`${dir}Burst` as const] ?? 0);
      if ((given.peak !== undefined && peakAfter > 0n) || (given.burst !== undefined && burstAfter > 0n)) {
        throw invalid(
          `nics.${keys.peak}/${keys.burst} need a ${dir} average limit (nics.${keys.average}).`,
          `nics.${keys.average}`,
        );
      }
      out.peak = 0n;
      out.burst = 0n;
    }
    for (const k of ['average', 'peak', 'burst'] as const) {
      const v = out[k];
      if (v !== undefined) params.push(paramLike(current, field(k), v, `nics.${keys[k]}`));
    }
  }
  return { params, warnings };
}
