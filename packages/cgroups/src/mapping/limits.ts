/**
 * cgroup files ↔ the spec v1 limits model (notes §1.1 and §6). Pure functions, each conversion tested in
 * `limits.test.ts`:
 * - weight: v1 `cpu.shares` = round(weight × 1024 / 100) (the kernel's and systemd's linear mapping), read
 *   back as round(shares × 100 / 1024); v2 `cpu.weight` is the weight itself; the default (1024 / 100)
 *   reads `null`;
 * - `maxCores` = quota / period (v1 `cpu.cfs_quota_us` / `cpu.cfs_period_us`, v2 `cpu.max`), `-1`/`max`
 *   = `null`; a cap is written as round(maxCores × period) with the group's period;
 * - memory in bytes; v1's `-1`/9223372036854771712 and v2's `max` are `null`;
 * - swap: v2 `memory.swap.max` is swap only, as the model; v1 `memory.memsw.limit_in_bytes` is memory +
 *   swap, so `swapMaxBytes` = memsw − limit and memsw = limit + swapMaxBytes;
 * - block IO: v1 `blkio.throttle.*_device` lines `MAJ:MIN value` (0 deletes a rule), v2 `io.max` lines
 *   `MAJ:MIN rbps= wbps= riops= wiops=` (`max` = none);
 * - pids: `pids.max`, `max` = `null`.
 */

import {
  CPU_WEIGHT_DEFAULT,
  hvkitError,
  normalizeUnlimited,
  sharesToWeight,
  weightToShares,
} from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

/** v1's default `cpu.shares`. */
export const CPU_SHARES_DEFAULT = 1024;

/** Smallest and largest CFS period and smallest quota the kernel accepts, in µs (notes §1.4). */
export const CFS_PERIOD_MIN_US = 1000;
/** Largest CFS period, µs. */
export const CFS_PERIOD_MAX_US = 1_000_000;
/** Smallest CFS quota, µs. */
export const CFS_QUOTA_MIN_US = 1000;
/** The default CFS period, µs. */
export const CFS_PERIOD_DEFAULT_US = 100_000;

function protocol(message: string): Error {
  return hvkitError('PROTOCOL', message, { adapter: ADAPTER_ID, operation: 'limits.get' });
}

function integer(text: string, what: string): number {
  const t = text.trim();
  if (!/^-?\d+$/.test(t)) throw protocol(`${what}: ${JSON.stringify(t.slice(0, 40))} is not an integer.`);
  const n = Number(t);
  if (!Number.isSafeInteger(n)) throw protocol(`${what}: ${t} is out of range.`);
  return n;
}

/** v1 `cpu.shares` → weight (`null` at the default 1024). */
export function sharesToLimit(text: string): number | null {
  const weight = sharesToWeight(integer(text, 'cpu.shares'));
  return weight === CPU_WEIGHT_DEFAULT ? null : weight;
}

/** weight (`null` = default) → the v1 `cpu.shares` text. */
export function limitToShares(weight: number | null): string {
  return String(weight === null ? CPU_SHARES_DEFAULT : weightToShares(weight));
}

/** v2 `cpu.weight` → weight (`null` at the default 100). */
export function cpuWeightToLimit(text: string): number | null {
  const weight = integer(text, 'cpu.weight');
  return weight === CPU_WEIGHT_DEFAULT ? null : weight;
}

/** weight (`null` = default) → the v2 `cpu.weight` text. */
export function limitToCpuWeight(weight: number | null): string {
  return String(weight ?? CPU_WEIGHT_DEFAULT);
}

/** A CFS bandwidth: quota (`null` = none) and period, µs. */
export interface CfsBandwidth {
  quotaUs: number | null;
  periodUs: number;
}

/** v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` → bandwidth (a negative quota is none). */
export function parseCfs(quota: string, period: string): CfsBandwidth {
  const q = integer(quota, 'cpu.cfs_quota_us');
  return { quotaUs: q < 0 ? null : q, periodUs: integer(period, 'cpu.cfs_period_us') };
}

/** v2 `cpu.max` (`max 100000`, `50000 100000`; one number is the quota with the default period). */
export function parseCpuMax(text: string): CfsBandwidth {
  const [quota = '', period] = text.trim().split(/\s+/);
  return {
    quotaUs: quota === 'max' ? null : integer(quota, 'cpu.max quota'),
    periodUs: period === undefined ? CFS_PERIOD_DEFAULT_US : integer(period, 'cpu.max period'),
  };
}

/** The v2 `cpu.max` text of a bandwidth. */
export function formatCpuMax(bw: CfsBandwidth): string {
  return `${bw.quotaUs === null ? 'max' : bw.quotaUs} ${bw.periodUs}`;
}

/** Bandwidth → `maxCores` (quota / period; `null` without a quota). */
export function bandwidthToMaxCores(bw: CfsBandwidth): number | null {
  if (bw.quotaUs === null) return null;
  if (bw.periodUs <= 0) throw protocol(`the CFS period is ${bw.periodUs}.`);
  return bw.quotaUs / bw.periodUs;
}

/**
 * `maxCores` → the quota for a period: round(maxCores × period).
 *
 * @throws HvkitError `INVALID_ARGUMENT` when the quota would be below the kernel's 1000 µs (a cap under
 *   1000 / period cores: 0.01 at the default period), before anything is written.
 */
export function maxCoresToQuota(maxCores: number, periodUs: number): number {
  const quota = Math.round(maxCores * periodUs);
  if (quota < CFS_QUOTA_MIN_US) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `invalid limits: cpu.maxCores ${maxCores} is a CFS quota of ${quota} µs per ${periodUs} µs; the kernel's minimum is ${CFS_QUOTA_MIN_US} µs (${CFS_QUOTA_MIN_US / periodUs} cores).`,
      { adapter: ADAPTER_ID, operation: 'limits.set', details: { path: 'cpu.maxCores', quotaUs: quota } },
    );
  }
  return quota;
}

/** A memory or pids file (`-1`, v1's 9223372036854771712, `max` = `null`) → bytes or count. */
export function parseMaxValue(text: string, what: string): number | null {
  try {
    const value = normalizeUnlimited(text.trim());
    if (value !== null && !Number.isSafeInteger(value))
      throw protocol(`${what}: ${text.trim()} is not an integer.`);
    return value;
  } catch (error) {
    throw protocol(`${what}: ${JSON.stringify(text.trim().slice(0, 40))} is not a value (${String(error)}).`);
  }
}

/** A value (`null` = unlimited) → the text written: `-1` on v1, `max` on v2. */
export function formatMaxValue(value: number | null, version: 1 | 2): string {
  if (value === null) return version === 1 ? '-1' : 'max';
  return String(value);
}

/** v1 swap: memsw − limit (`null` when memsw is unlimited; with an unlimited limit, swap is unbounded). */
export function memswToSwap(limit: number | null, memsw: number | null): number | null {
  if (memsw === null || limit === null) return null;
  return Math.max(0, memsw - limit);
}

/** The v1 memsw value for a limit and a swap amount (`null` when either is unlimited). */
export function swapToMemsw(limit: number | null, swap: number | null): number | null {
  if (limit === null || swap === null) return null;
  return limit + swap;
}

/** A `MAJ:MIN` device number. */
export type DeviceNumber = `${number}:${number}`;

/** v1 `blkio.throttle.*_device` → value per device (`MAJ:MIN value` lines). */
export function parseThrottleFile(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const m = /^(\d+:\d+)\s+(\d+)$/.exec(t);
    if (!m) throw protocol(`blkio throttle line ${JSON.stringify(t.slice(0, 60))} is not "MAJ:MIN value".`);
    out.set(m[1] as string, integer(m[2] as string, 'blkio throttle'));
  }
  return out;
}

/** The four `io.max` keys, in the model's names. */
export const IO_MAX_KEYS = {
  rbps: 'readBytesPerSec',
  wbps: 'writeBytesPerSec',
  riops: 'readIops',
  wiops: 'writeIops',
} as const;

/** One device's IO caps (`null` = none). */
export interface DeviceIoCaps {
  readBytesPerSec: number | null;
  writeBytesPerSec: number | null;
  readIops: number | null;
  writeIops: number | null;
}

/** v2 `io.max` → caps per device (`MAJ:MIN rbps=N wbps=max riops=max wiops=max` lines). */
export function parseIoMax(text: string): Map<string, DeviceIoCaps> {
  const out = new Map<string, DeviceIoCaps>();
  for (const line of text.split('\n')) {
    const t = line.trim();
    if (t === '') continue;
    const [dev = '', ...pairs] = t.split(/\s+/);
    if (!/^\d+:\d+$/.test(dev))
      throw protocol(`io.max line ${JSON.stringify(t.slice(0, 60))} has no MAJ:MIN.`);
    const caps: DeviceIoCaps = {
      readBytesPerSec: null,
      writeBytesPerSec: null,
      readIops: null,
      writeIops: null,
    };
    for (const pair of pairs) {
      const [key = '', value = ''] = pair.split('=');
      const field = IO_MAX_KEYS[key as keyof typeof IO_MAX_KEYS];
      if (!field) continue;
      caps[field] = value === 'max' ? null : integer(value, `io.max ${key}`);
    }
    out.set(dev, caps);
  }
  return out;
}

/** The `io.max` line setting every cap of a device (`max` for `null`). */
export function formatIoMax(dev: string, caps: DeviceIoCaps): string {
  const v = (n: number | null) => (n === null ? 'max' : String(n));
  return `${dev} rbps=${v(caps.readBytesPerSec)} wbps=${v(caps.writeBytesPerSec)} riops=${v(caps.readIops)} wiops=${v(caps.writeIops)}`;
}

/** The v1 throttle file of each model field. */
export const THROTTLE_FILES = {
  readBytesPerSec: 'blkio.throttle.read_bps_device',
  writeBytesPerSec: 'blkio.throttle.write_bps_device',
  readIops: 'blkio.throttle.read_iops_device',
  writeIops: 'blkio.throttle.write_iops_device',
} as const;

/** A rate or IOPS as the kernel takes it: a whole number (rates are rounded). */
export function wholeRate(value: number): number {
  return Math.round(value);
}
