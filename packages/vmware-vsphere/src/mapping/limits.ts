/**
 * vSphere resource allocation ↔ spec v1 `ResourceLimits`:
 * - CPU: `limit` MHz ÷ host core MHz → `maxCores`; `reservation` → `reservationMHz`; shares normalised per
 *   vCPU (normal = 1000/vCPU = weight 100) with `./cpu.ts`;
 * - memory: `limit`/`reservation` MB → `maxBytes`/`minBytes`;
 * - disks: `storageIOAllocation.limit` IOPS → both `readIops` and `writeIops`;
 * - NICs: `resourceAllocation.limit` Mbit/s × 125 000 → `outboundAverageBytesPerSec`.
 * vSphere's −1 (unlimited) is `null`. The adapter reports these through core's `normalizeLimits`, so a field
 * at its default (normal shares = weight 100, reservation 0) reads `null`, as `null` sets it.
 */

import { type HvkitWarning, hvkitError, type ResourceLimits } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import type { DataObject } from '../protocol/soap/schema';
import { vsphereSharesInfoToWeight, weightToVsphereSharesInfo } from './cpu';
import { diskDeviceName, isDisk, isNic, nicDeviceName } from './vm';

const MiB = 1024 * 1024;
/** Bytes per second in one Mbit/s. */
export const BYTES_PER_MBIT = 125_000;

/** The VirtualMachine properties limits are read from. */
export const LIMIT_PATHS = [
  'config.cpuAllocation',
  'config.memoryAllocation',
  'config.hardware.device',
  'config.hardware.numCPU',
  'runtime.host',
] as const;

/**
 * The HostSystem properties limits need: the core speed (`maxCores` ↔ MHz) and what bounds them, the
 * host's logical CPUs and memory in bytes.
 */
export const HOST_LIMIT_PATHS = [
  'summary.hardware.cpuMhz',
  'summary.hardware.numCpuThreads',
  'summary.hardware.memorySize',
] as const;

function unlimited(value: unknown): boolean {
  return value === undefined || value === null || (typeof value === 'number' && value < 0);
}

/** Maps VM properties (by path) and the host's core MHz to `ResourceLimits`. */
export function mapLimits(props: Record<string, unknown>, hostCoreMhz: number | undefined): ResourceLimits {
  const cpu = (props['config.cpuAllocation'] ?? {}) as DataObject;
  const mem = (props['config.memoryAllocation'] ?? {}) as DataObject;
  const vcpus = Math.max(1, Number(props['config.hardware.numCPU'] ?? 1));
  const devices = (props['config.hardware.device'] ?? []) as DataObject[];
  const shares = cpu.shares as DataObject | undefined;
  const limits: ResourceLimits = {
    cpu: {
      weight:
        shares && typeof shares.level === 'string'
          ? vsphereSharesInfoToWeight(
              { level: shares.level as 'normal', shares: Number(shares.shares ?? 0) },
              vcpus,
            )
          : 100,
      maxCores: unlimited(cpu.limit) || !hostCoreMhz ? null : (cpu.limit as number) / hostCoreMhz,
      reservationMHz: typeof cpu.reservation === 'number' ? cpu.reservation : 0,
    },
    memory: {
      maxBytes: unlimited(mem.limit) ? null : (mem.limit as number) * MiB,
      minBytes: typeof mem.reservation === 'number' ? mem.reservation * MiB : 0,
    },
    disks: devices.filter(isDisk).map((d) => {
      const limit = (d.storageIOAllocation as DataObject | undefined)?.limit;
      const iops = unlimited(limit) ? null : (limit as number);
      return { device: diskDeviceName(d, devices), readIops: iops, writeIops: iops };
    }),
    nics: devices.filter(isNic).map((n) => {
      const limit = (n.resourceAllocation as DataObject | undefined)?.limit;
      return {
        device: nicDeviceName(n),
        outboundAverageBytesPerSec: unlimited(limit) ? null : (limit as number) * BYTES_PER_MBIT,
      };
    }),
  };
  return limits;
}

/** What {@link buildLimitsSpec} produces: the ReconfigVM spec (or undefined when nothing changes) and notes. */
export interface LimitsSpec {
  spec: Record<string, unknown> | undefined;
  warnings: HvkitWarning[];
}

/**
 * Builds the `VirtualMachineConfigSpec` for a validated patch: CPU and memory allocation (merged with the
 * current values) and device edits that send each changed device back whole, as read.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a `maxCores` when the host's core speed is unknown.
 */
export function buildLimitsSpec(
  patch: ResourceLimits,
  props: Record<string, unknown>,
  hostCoreMhz: number | undefined,
): LimitsSpec {
  const warnings: HvkitWarning[] = [];
  const spec: Record<string, unknown> = {};
  const vcpus = Math.max(1, Number(props['config.hardware.numCPU'] ?? 1));
  const cpuNow = (props['config.cpuAllocation'] ?? {}) as DataObject;
  const memNow = (props['config.memoryAllocation'] ?? {}) as DataObject;
  if (patch.cpu && Object.values(patch.cpu).some((v) => v !== undefined)) {
    const alloc: Record<string, unknown> = {
      reservation: typeof cpuNow.reservation === 'number' ? cpuNow.reservation : 0,
      limit: typeof cpuNow.limit === 'number' ? cpuNow.limit : -1,
      shares: cpuNow.shares ?? { shares: 1000 * vcpus, level: 'normal' },
    };
    const { weight, maxCores, reservationMHz } = patch.cpu;
    if (weight !== undefined) {
      const info = weightToVsphereSharesInfo(weight ?? 100, vcpus);
      alloc.shares = { shares: info.shares, level: info.level };
    }
    if (maxCores !== undefined) {
      if (maxCores === null) alloc.limit = -1;
      else {
        if (!hostCoreMhz) {
          throw hvkitError('INVALID_ARGUMENT', 'cpu.maxCores needs the host core speed, which is unknown.', {
            adapter: ADAPTER_ID,
            operation: 'limits.set',
          });
        }
        const mhz = Math.round(maxCores * hostCoreMhz);
        if (mhz / hostCoreMhz !== maxCores) {
          warnings.push({
            type: 'compatibility',
            field: 'cpu.maxCores',
            message: `rounded to ${mhz} MHz (${mhz / hostCoreMhz} cores of ${hostCoreMhz} MHz)`,
          });
        }
        alloc.limit = Math.max(1, mhz);
      }
    }
    if (reservationMHz !== undefined) alloc.reservation = reservationMHz ?? 0;
    spec.cpuAllocation = alloc;
  }
  if (patch.memory && Object.values(patch.memory).some((v) => v !== undefined)) {
    const alloc: Record<string, unknown> = {
      reservation: typeof memNow.reservation === 'number' ? memNow.reservation : 0,
      limit: typeof memNow.limit === 'number' ? memNow.limit : -1,
      shares: memNow.shares ?? { shares: 0, level: 'normal' },
    };
    const toMb = (bytes: number, field: string) => {
      const mb = Math.ceil(bytes / MiB);
      if (mb * MiB !== bytes)
        warnings.push({ type: 'compatibility', field, message: `rounded up to ${mb} MB (whole MB only)` });
      return mb;
    };
    const { maxBytes, minBytes } = patch.memory;
    if (maxBytes !== undefined) alloc.limit = maxBytes === null ? -1 : toMb(maxBytes, 'memory.maxBytes');
    if (minBytes !== undefined) alloc.reservation = minBytes === null ? 0 : toMb(minBytes, 'memory.minBytes');
    spec.memoryAllocation = alloc;
  }
  const devices = (props['config.hardware.device'] ?? []) as DataObject[];
  const changes: Record<string, unknown>[] = [];
  for (const entry of patch.disks ?? []) {
    const { readIops, writeIops } = entry;
    if (readIops === undefined && writeIops === undefined) continue;
    const device = devices.find((d) => isDisk(d) && diskDeviceName(d, devices) === entry.device);
    if (!device) continue;
    let iops: number | null;
    if (readIops !== undefined && writeIops !== undefined && readIops !== writeIops) {
      iops = readIops === null ? writeIops : writeIops === null ? readIops : Math.min(readIops, writeIops);
      warnings.push({
        type: 'compatibility',
        field: `disks[${entry.device}].readIops`,
        message: `vSphere has one IOPS limit per disk for reads and writes together; set ${iops ?? 'unlimited'}`,
      });
    } else {
      iops = (readIops !== undefined ? readIops : writeIops) as number | null;
      if (readIops === undefined || writeIops === undefined) {
        warnings.push({
          type: 'compatibility',
          field: `disks[${entry.device}].${readIops === undefined ? 'readIops' : 'writeIops'}`,
          message: 'vSphere has one IOPS limit per disk: read and write IOPS both change',
        });
      }
    }
    const current = (device.storageIOAllocation ?? {}) as DataObject;
    changes.push({
      _type: 'VirtualDeviceConfigSpec',
      operation: 'edit',
      device: {
        ...device,
        storageIOAllocation: {
          ...current,
          _type: 'StorageIOAllocationInfo',
          limit: iops === null ? -1 : Math.round(iops),
          shares: current.shares ?? { _type: 'SharesInfo', shares: 1000, level: 'normal' },
        },
      },
    });
  }
  for (const entry of patch.nics ?? []) {
    const rate = entry.outboundAverageBytesPerSec;
    if (rate === undefined) continue;
    const device = devices.find((d) => isNic(d) && nicDeviceName(d) === entry.device);
    if (!device) continue;
    let mbit = -1;
    if (rate !== null) {
      mbit = Math.max(1, Math.round(rate / BYTES_PER_MBIT));
      if (mbit * BYTES_PER_MBIT !== rate) {
        warnings.push({
          type: 'compatibility',
          field: `nics[${entry.device}].outboundAverageBytesPerSec`,
          message: `rounded to ${mbit} Mbit/s`,
        });
      }
    }
    const current = (device.resourceAllocation ?? {}) as DataObject;
    changes.push({
      _type: 'VirtualDeviceConfigSpec',
      operation: 'edit',
      device: {
        ...device,
        resourceAllocation: {
          reservation: 0,
          share: { _type: 'SharesInfo', shares: 50, level: 'normal' },
          ...current,
          _type: 'VirtualEthernetCardResourceAllocation',
          limit: mbit,
        },
      },
    });
  }
  if (changes.length > 0) spec.deviceChange = changes;
  return { spec: Object.keys(spec).length > 0 ? spec : undefined, warnings };
}
