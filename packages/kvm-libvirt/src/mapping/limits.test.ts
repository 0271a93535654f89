import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample, typedParamsSample } from './__samples__/load';
import { parseDomainXmlDetails } from './domain';
import {
  blkioParamsToBlkio,
  blkioParamsToDeviceLimits,
  blockIoTuneToDiskLimits,
  cpuLimitsToSchedulerParams,
  deviceLimitsToBlkioParams,
  diskLimitsToBlockIoTuneParams,
  interfaceParamsToNicLimits,
  LIBVIRT_MEMORY_UNLIMITED_KIB,
  memoryLimitsToParams,
  memoryParamsToLimits,
  nicLimitsToInterfaceParams,
  parseBlkioDeviceString,
  schedulerParamsToCpuLimits,
} from './limits';
import { findParam, type LibvirtTypedParam, paramLike, TYPED_PARAM_TYPE, typedParam } from './typed-params';

const live = typedParamsSample('qemu-live-typed-params-live.json');
const liveConfig = typedParamsSample('qemu-live-typed-params-config.json');
const rich = typedParamsSample('qemu-rich-typed-params-config.json');
const testDriver = typedParamsSample('test-default-typed-params.json');

function expectCode(fn: () => unknown, code: 'INVALID_ARGUMENT' | 'UNSUPPORTED'): HvkitError {
  try {
    fn();
  } catch (error) {
    expect(HvkitError.isInstance(error, code)).toBe(true);
    return error as HvkitError;
  }
  throw new Error(`expected ${code}`);
}

/** What libvirt does with a set call's parameters: replace the values of the fields sent. */
function apply(
  current: readonly LibvirtTypedParam[],
  sent: readonly LibvirtTypedParam[],
): LibvirtTypedParam[] {
  return current.map((p) => sent.find((s) => s.field === p.field) ?? p);
}

/** A parameter set like `base` with some values changed (same fields and types as the driver reported). */
function withValues(
  base: readonly LibvirtTypedParam[],
  values: Record<string, bigint | number>,
): LibvirtTypedParam[] {
  return base.map((p) => (p.field in values ? { ...p, value: values[p.field] as bigint | number } : p));
}

const sched = (s: { scheduler: LibvirtTypedParam[] | null }) => s.scheduler ?? [];
const mem = (s: { memory: LibvirtTypedParam[] | null }) => s.memory ?? [];

describe('typed parameters', () => {
  it('keeps the reported types and checks ranges', () => {
    const shares = paramLike(sched(live), 'cpu_shares', 2048n);
    expect(shares).toEqual({ field: 'cpu_shares', type: TYPED_PARAM_TYPE.ULLONG, value: 2048n });
    expect(paramLike(rich.blkio ?? [], 'weight', 300)).toEqual({
      field: 'weight',
      type: TYPED_PARAM_TYPE.UINT,
      value: 300,
    });
    expect(typedParam('x', TYPED_PARAM_TYPE.LLONG, -1)).toEqual({ field: 'x', type: 3, value: -1n });
    expect(typedParam('x', TYPED_PARAM_TYPE.BOOLEAN, true).value).toBe(true);
    expect(typedParam('x', TYPED_PARAM_TYPE.DOUBLE, 1.5).value).toBe(1.5);
    expectCode(() => typedParam('x', TYPED_PARAM_TYPE.UINT, -1), 'INVALID_ARGUMENT');
    expectCode(() => typedParam('x', TYPED_PARAM_TYPE.UINT, 2 ** 32), 'INVALID_ARGUMENT');
    expectCode(() => typedParam('x', TYPED_PARAM_TYPE.INT, 1.5), 'INVALID_ARGUMENT');
    expectCode(() => typedParam('x', TYPED_PARAM_TYPE.ULLONG, -1n), 'INVALID_ARGUMENT');
    expectCode(() => typedParam('x', TYPED_PARAM_TYPE.STRING, 1), 'INVALID_ARGUMENT');
    expectCode(() => typedParam('x', TYPED_PARAM_TYPE.DOUBLE, Number.NaN), 'INVALID_ARGUMENT');
    const e = expectCode(() => paramLike(sched(testDriver), 'cpu_shares', 1n, 'cpu.weight'), 'UNSUPPORTED');
    expect(e.details).toMatchObject({ field: 'cpu.weight', parameter: 'cpu_shares' });
  });
});

describe('scheduler parameters ↔ CPU limits', () => {
  it('reads the running guest (cgroup v1 and v2 meanings)', () => {
    // cpu_shares 512, global_quota 50000 per 100000 µs.
    expect(schedulerParamsToCpuLimits(sched(live), { cgroupVersion: 1 })).toEqual({
      weight: 50,
      maxCores: 0.5,
    });
    expect(schedulerParamsToCpuLimits(sched(live), { cgroupVersion: 2 })).toEqual({
      weight: 512,
      maxCores: 0.5,
    });
    expect(schedulerParamsToCpuLimits(sched(rich), { cgroupVersion: 1 })).toEqual({
      weight: 200,
      maxCores: 1.5,
    });
  });

  it('treats -1, 0 and the maxima as no cap and falls back to the per-vCPU quota', () => {
    for (const q of [-1n, 0n, 17592186044415n, 18446744073709551n]) {
      const p = withValues(sched(live), { global_quota: q, vcpu_quota: -1n });
      expect(schedulerParamsToCpuLimits(p, { cgroupVersion: 1 }).maxCores).toBeNull();
    }
    const perVcpu = withValues(sched(live), { global_quota: -1n, vcpu_quota: 50000n, vcpu_period: 100000n });
    expect(schedulerParamsToCpuLimits(perVcpu, { cgroupVersion: 1, vcpus: 4 }).maxCores).toBe(2);
    expect(schedulerParamsToCpuLimits(perVcpu, { cgroupVersion: 1 }).maxCores).toBeUndefined();
    // A period of 0 (unset in a definition) means the kernel default of 100000 µs.
    const noPeriod = withValues(sched(live), { global_quota: 25000n, global_period: 0n });
    expect(schedulerParamsToCpuLimits(noPeriod, { cgroupVersion: 1 }).maxCores).toBe(0.25);
    expect(
      schedulerParamsToCpuLimits(withValues(sched(live), { cpu_shares: 0n }), { cgroupVersion: 2 }).weight,
    ).toBeNull();
    expect(
      schedulerParamsToCpuLimits(withValues(sched(live), { cpu_shares: 262144n }), { cgroupVersion: 2 })
        .weight,
    ).toBe(10000);
  });

  it('reads nothing from the test driver (its scheduler only has a weight of its own)', () => {
    expect(schedulerParamsToCpuLimits(sched(testDriver), { cgroupVersion: 1 })).toEqual({});
    expect(() => schedulerParamsToCpuLimits(sched(live), { cgroupVersion: 3 as never })).toThrow(TypeError);
  });

  it('writes cpu_shares with the reported ULLONG type', () => {
    expect(cpuLimitsToSchedulerParams({ weight: 200 }, sched(live), { cgroupVersion: 1 })).toEqual({
      params: [{ field: 'cpu_shares', type: TYPED_PARAM_TYPE.ULLONG, value: 2048n }],
      warnings: [],
    });
    expect(
      cpuLimitsToSchedulerParams({ weight: 200 }, sched(live), { cgroupVersion: 2 }).params[0]?.value,
    ).toBe(200n);
    expect(
      cpuLimitsToSchedulerParams({ weight: null }, sched(live), { cgroupVersion: 1 }).params[0]?.value,
    ).toBe(1024n);
    expect(
      cpuLimitsToSchedulerParams({ weight: null }, sched(live), { cgroupVersion: 2 }).params[0]?.value,
    ).toBe(100n);
    const one = cpuLimitsToSchedulerParams({ weight: 1 }, sched(live), { cgroupVersion: 2 });
    expect(one.params[0]?.value).toBe(2n);
    expect(one.warnings).toEqual([expect.objectContaining({ type: 'compatibility', field: 'cpu.weight' })]);
  });

  it('writes maxCores as global_quota (LLONG) with the domain period', () => {
    expect(cpuLimitsToSchedulerParams({ maxCores: 1.5 }, sched(live), { cgroupVersion: 1 })).toEqual({
      params: [{ field: 'global_quota', type: TYPED_PARAM_TYPE.LLONG, value: 150000n }],
      warnings: [],
    });
    expect(cpuLimitsToSchedulerParams({ maxCores: null }, sched(live), { cgroupVersion: 1 }).params).toEqual([
      { field: 'global_quota', type: TYPED_PARAM_TYPE.LLONG, value: -1n },
    ]);
    const noPeriod = withValues(sched(live), { global_period: 0n });
    expect(cpuLimitsToSchedulerParams({ maxCores: 2 }, noPeriod, { cgroupVersion: 1 }).params).toEqual([
      { field: 'global_period', type: TYPED_PARAM_TYPE.ULLONG, value: 100000n },
      { field: 'global_quota', type: TYPED_PARAM_TYPE.LLONG, value: 200000n },
    ]);
    const third = cpuLimitsToSchedulerParams({ maxCores: 1 / 3 }, sched(live), { cgroupVersion: 1 });
    expect(third.params[0]?.value).toBe(33333n);
    expect(third.warnings[0]).toMatchObject({ type: 'compatibility', field: 'cpu.maxCores' });
    // The rich domain also has a per-vCPU quota.
    const withVcpuQuota = cpuLimitsToSchedulerParams({ maxCores: 2 }, sched(rich), { cgroupVersion: 1 });
    expect(withVcpuQuota.warnings).toEqual([
      expect.objectContaining({ type: 'other', field: 'cpu.maxCores' }),
    ]);
  });

  it('rejects what libvirt cannot take', () => {
    expectCode(
      () => cpuLimitsToSchedulerParams({ maxCores: 0.005 }, sched(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => cpuLimitsToSchedulerParams({ maxCores: 2e11 }, sched(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => cpuLimitsToSchedulerParams({ weight: 0 }, sched(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => cpuLimitsToSchedulerParams({ weight: 1.5 }, sched(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => cpuLimitsToSchedulerParams({ weight: 10001 }, sched(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => cpuLimitsToSchedulerParams({ maxCores: -1 }, sched(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => cpuLimitsToSchedulerParams({ reservationMHz: 100 }, sched(live), { cgroupVersion: 1 }),
      'UNSUPPORTED',
    );
    expect(
      cpuLimitsToSchedulerParams({ reservationMHz: null }, sched(live), { cgroupVersion: 1 }).params,
    ).toEqual([]);
    expectCode(
      () => cpuLimitsToSchedulerParams({ weight: 100 }, sched(testDriver), { cgroupVersion: 1 }),
      'UNSUPPORTED',
    );
  });

  it('round-trips every weight and a range of core caps', () => {
    for (const cgroupVersion of [1, 2] as const) {
      for (let weight = 1; weight <= 10000; weight++) {
        if (cgroupVersion === 2 && weight === 1) continue; // raised to 2, with a warning
        const { params } = cpuLimitsToSchedulerParams({ weight }, sched(live), { cgroupVersion });
        expect(schedulerParamsToCpuLimits(apply(sched(live), params), { cgroupVersion }).weight).toBe(weight);
      }
    }
    for (const maxCores of [0.01, 0.25, 0.5, 1, 1.5, 2, 3.75, 16, 64, 1000, null]) {
      const { params, warnings } = cpuLimitsToSchedulerParams({ maxCores }, sched(live), {
        cgroupVersion: 1,
      });
      expect(warnings).toEqual([]);
      expect(schedulerParamsToCpuLimits(apply(sched(live), params), { cgroupVersion: 1 }).maxCores).toBe(
        maxCores,
      );
    }
  });
});

describe('memory parameters ↔ memory limits', () => {
  it('reads KiB values and the unlimited sentinel', () => {
    expect(memoryParamsToLimits(mem(live), { cgroupVersion: 1 })).toEqual({
      maxBytes: null,
      softBytes: 512 * 1024 ** 2,
      swapMaxBytes: null,
    });
    expect(memoryParamsToLimits(mem(rich), { cgroupVersion: 1 })).toEqual({
      maxBytes: 1536 * 1024 ** 2,
      softBytes: 768 * 1024 ** 2,
      swapMaxBytes: 512 * 1024 ** 2, // memsw 2 GiB − 1.5 GiB
    });
    expect(memoryParamsToLimits(mem(rich), { cgroupVersion: 2 }).swapMaxBytes).toBe(2 * 1024 ** 3);
    expect(memoryParamsToLimits(mem(testDriver), { cgroupVersion: 1 })).toEqual({
      maxBytes: null,
      softBytes: null,
      swapMaxBytes: null,
    });
    // v1 with an unlimited hard limit: the memory + swap bound is the swap bound.
    const swapOnly = withValues(mem(live), { swap_hard_limit: 1048576n });
    expect(memoryParamsToLimits(swapOnly, { cgroupVersion: 1 }).swapMaxBytes).toBe(1024 ** 3);
  });

  it('writes hard and soft limits in KiB with the reported types', () => {
    expect(
      memoryLimitsToParams({ maxBytes: 2 * 1024 ** 3, softBytes: null }, mem(live), { cgroupVersion: 1 }),
    ).toEqual({
      params: [
        { field: 'hard_limit', type: TYPED_PARAM_TYPE.ULLONG, value: 2097152n },
        { field: 'soft_limit', type: TYPED_PARAM_TYPE.ULLONG, value: LIBVIRT_MEMORY_UNLIMITED_KIB },
      ],
      warnings: [],
    });
  });

  it('rounds partial KiB up with a warning', () => {
    const r = memoryLimitsToParams({ maxBytes: 1000 }, mem(live), { cgroupVersion: 1 });
    expect(r.params).toEqual([{ field: 'hard_limit', type: TYPED_PARAM_TYPE.ULLONG, value: 1n }]);
    expect(r.warnings).toEqual([
      expect.objectContaining({ type: 'compatibility', field: 'memory.maxBytes' }),
    ]);
    expect(memoryLimitsToParams({ maxBytes: 1025 }, mem(live), { cgroupVersion: 1 }).params[0]?.value).toBe(
      2n,
    );
  });

  it('converts swap to memory + swap on cgroup v1 and keeps it when only the hard limit changes', () => {
    const both = memoryLimitsToParams({ maxBytes: 1024 ** 3, swapMaxBytes: 256 * 1024 ** 2 }, mem(live), {
      cgroupVersion: 1,
    });
    expect(both.params).toEqual([
      { field: 'hard_limit', type: TYPED_PARAM_TYPE.ULLONG, value: 1048576n },
      { field: 'swap_hard_limit', type: TYPED_PARAM_TYPE.ULLONG, value: 1048576n + 262144n },
    ]);
    // rich: hard 1.5 GiB, swap 0.5 GiB. Raising the hard limit to 2 GiB re-sends memsw = 2.5 GiB.
    const keep = memoryLimitsToParams({ maxBytes: 2 * 1024 ** 3 }, mem(rich), { cgroupVersion: 1 });
    expect(keep.params).toEqual([
      { field: 'hard_limit', type: TYPED_PARAM_TYPE.ULLONG, value: 2097152n },
      { field: 'swap_hard_limit', type: TYPED_PARAM_TYPE.ULLONG, value: 2621440n },
    ]);
    expect(memoryParamsToLimits(apply(mem(rich), keep.params), { cgroupVersion: 1 })).toEqual({
      maxBytes: 2 * 1024 ** 3,
      softBytes: 768 * 1024 ** 2,
      swapMaxBytes: 512 * 1024 ** 2,
    });
    const unlimited = memoryLimitsToParams({ maxBytes: null }, mem(rich), { cgroupVersion: 1 });
    expect(unlimited.params.map((p) => p.value)).toEqual([
      LIBVIRT_MEMORY_UNLIMITED_KIB,
      LIBVIRT_MEMORY_UNLIMITED_KIB,
    ]);
    expect(unlimited.warnings).toHaveLength(1);
    // v2: swap is swap, and nothing else is re-sent.
    expect(
      memoryLimitsToParams({ maxBytes: 2 * 1024 ** 3 }, mem(rich), { cgroupVersion: 2 }).params,
    ).toHaveLength(1);
    expect(memoryLimitsToParams({ swapMaxBytes: 1024 ** 3 }, mem(live), { cgroupVersion: 2 }).params).toEqual(
      [{ field: 'swap_hard_limit', type: TYPED_PARAM_TYPE.ULLONG, value: 1048576n }],
    );
  });

  it('rejects what cannot be represented', () => {
    expectCode(
      () => memoryLimitsToParams({ swapMaxBytes: 1024 }, mem(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => memoryLimitsToParams({ maxBytes: -1 }, mem(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => memoryLimitsToParams({ maxBytes: 1.5 }, mem(live), { cgroupVersion: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => memoryLimitsToParams({ minBytes: 1024 }, mem(live), { cgroupVersion: 1 }),
      'UNSUPPORTED',
    );
    expect(memoryLimitsToParams({ minBytes: null }, mem(live), { cgroupVersion: 1 }).params).toEqual([]);
  });

  it('round-trips whole-KiB values', () => {
    for (const cgroupVersion of [1, 2] as const) {
      for (const limits of [
        { maxBytes: 4 * 1024 ** 3, softBytes: 3 * 1024 ** 3, swapMaxBytes: 1024 ** 3 },
        { maxBytes: 1024, softBytes: null, swapMaxBytes: 0 },
        { maxBytes: null, softBytes: 123 * 1024, swapMaxBytes: null },
        { maxBytes: 7 * 1024 ** 4, softBytes: 7 * 1024 ** 4, swapMaxBytes: 5 * 1024 ** 2 },
      ]) {
        const { params, warnings } = memoryLimitsToParams(limits, mem(live), { cgroupVersion });
        expect(warnings).toEqual([]);
        expect(memoryParamsToLimits(apply(mem(live), params), { cgroupVersion })).toEqual(limits);
      }
    }
  });
});

describe('block IO tune ↔ disk limits', () => {
  it('reads per-disk limits, 0 as none and total as each direction', () => {
    expect(blockIoTuneToDiskLimits('vda', live.blockIoTune.vda ?? [])).toEqual({
      device: 'vda',
      readBytesPerSec: 20971520,
      writeBytesPerSec: null,
      readIops: null,
      writeIops: 1000,
    });
    expect(blockIoTuneToDiskLimits('vdb', live.blockIoTune.vdb ?? [])).toEqual({
      device: 'vdb',
      readBytesPerSec: null,
      writeBytesPerSec: null,
      readIops: null,
      writeIops: null,
    });
    expect(blockIoTuneToDiskLimits('vdb', rich.blockIoTune.vdb ?? [])).toEqual({
      device: 'vdb',
      readBytesPerSec: 31457280,
      writeBytesPerSec: 31457280,
      readIops: 3000,
      writeIops: 3000,
    });
  });

  it('re-sends the other direction and clears total, with ULLONG types', () => {
    const r = diskLimitsToBlockIoTuneParams(
      { device: 'vda', writeBytesPerSec: 1048576 },
      live.blockIoTune.vda ?? [],
    );
    expect(r).toEqual({
      params: [
        { field: 'total_bytes_sec', type: TYPED_PARAM_TYPE.ULLONG, value: 0n },
        { field: 'read_bytes_sec', type: TYPED_PARAM_TYPE.ULLONG, value: 20971520n },
        { field: 'write_bytes_sec', type: TYPED_PARAM_TYPE.ULLONG, value: 1048576n },
      ],
      warnings: [],
    });
    // A total limit becomes per-direction limits, keeping the reported view of the untouched direction.
    const fromTotal = diskLimitsToBlockIoTuneParams(
      { device: 'vdb', readIops: 100 },
      rich.blockIoTune.vdb ?? [],
    );
    expect(fromTotal.params).toEqual([
      { field: 'total_iops_sec', type: TYPED_PARAM_TYPE.ULLONG, value: 0n },
      { field: 'read_iops_sec', type: TYPED_PARAM_TYPE.ULLONG, value: 100n },
      { field: 'write_iops_sec', type: TYPED_PARAM_TYPE.ULLONG, value: 3000n },
    ]);
    const frac = diskLimitsToBlockIoTuneParams(
      { device: 'vda', readIops: 10.5, writeIops: null },
      live.blockIoTune.vda ?? [],
    );
    expect(frac.params.map((p) => [p.field, p.value])).toEqual([
      ['total_iops_sec', 0n],
      ['read_iops_sec', 11n],
      ['write_iops_sec', 0n],
    ]);
    expect(frac.warnings).toHaveLength(1);
    expect(diskLimitsToBlockIoTuneParams({ device: 'vda' }, live.blockIoTune.vda ?? []).params).toEqual([]);
  });

  it('round-trips', () => {
    for (const limits of [
      { device: 'vda', readBytesPerSec: 1, writeBytesPerSec: 2, readIops: 3, writeIops: 4 },
      {
        device: 'vda',
        readBytesPerSec: null,
        writeBytesPerSec: 10 * 1024 ** 2,
        readIops: null,
        writeIops: null,
      },
      { device: 'vda', readBytesPerSec: 2 ** 40, writeBytesPerSec: null, readIops: 1e6, writeIops: 7 },
    ]) {
      const current = live.blockIoTune.vda ?? [];
      const { params } = diskLimitsToBlockIoTuneParams(limits, current);
      expect(blockIoTuneToDiskLimits('vda', apply(current, params))).toEqual(limits);
    }
  });

  it('rejects bad values and unsupported drivers', () => {
    expectCode(
      () => diskLimitsToBlockIoTuneParams({ device: 'vda', readIops: -1 }, live.blockIoTune.vda ?? []),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => diskLimitsToBlockIoTuneParams({ device: '', readIops: 1 }, live.blockIoTune.vda ?? []),
      'INVALID_ARGUMENT',
    );
    expectCode(() => diskLimitsToBlockIoTuneParams({ device: 'vda', readIops: 1 }, []), 'UNSUPPORTED');
  });
});

describe('blkio ↔ host device limits', () => {
  it('reads device strings', () => {
    expect(parseBlkioDeviceString('/dev/sda,100,/dev/sdb,200')).toEqual([
      { path: '/dev/sda', value: 100 },
      { path: '/dev/sdb', value: 200 },
    ]);
    expect(parseBlkioDeviceString('')).toEqual([]);
    expect(parseBlkioDeviceString('/dev/sda,x,/dev/sdb')).toEqual([]);
    expect(blkioParamsToBlkio(live.blkio ?? [])).toEqual({
      weight: 100,
      devices: [{ path: '/dev/loop0', writeIopsSec: 500, readBytesSec: 10485760 }],
    });
    expect(blkioParamsToDeviceLimits(rich.blkio ?? [])).toEqual([
      {
        device: '/dev/loop0',
        readBytesPerSec: 10485760,
        writeBytesPerSec: 5242880,
        readIops: 1000,
        writeIops: 500,
      },
    ]);
    expect(blkioParamsToDeviceLimits(testDriver.blkio ?? [])).toEqual([]);
  });

  it('writes device strings per path', () => {
    expect(
      deviceLimitsToBlkioParams(
        { device: '/dev/loop0', readBytesPerSec: 5242880, writeIops: null },
        live.blkio ?? [],
      ),
    ).toEqual({
      params: [
        { field: 'device_read_bytes_sec', type: TYPED_PARAM_TYPE.STRING, value: '/dev/loop0,5242880' },
        { field: 'device_write_iops_sec', type: TYPED_PARAM_TYPE.STRING, value: '/dev/loop0,0' },
      ],
      warnings: [],
    });
    expectCode(
      () => deviceLimitsToBlkioParams({ device: 'vda', readIops: 1 }, live.blkio ?? []),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => deviceLimitsToBlkioParams({ device: '/dev/a,b', readIops: 1 }, live.blkio ?? []),
      'INVALID_ARGUMENT',
    );
    // Without VIR_TYPED_PARAM_STRING_OKAY the daemon leaves the strings out: then they cannot be set.
    expectCode(
      () =>
        deviceLimitsToBlkioParams({ device: '/dev/loop0', readIops: 1 }, [
          findParam(live.blkio ?? [], 'weight')!,
        ]),
      'UNSUPPORTED',
    );
  });
});

describe('interface parameters ↔ NIC limits', () => {
  const nic1 = rich.interface['52:54:00:5a:4d:01'] ?? [];
  const nic4 = rich.interface['52:54:00:5a:4d:04'] ?? [];

  it('reads KiB/s and KiB as bytes', () => {
    expect(interfaceParamsToNicLimits('net0', nic1)).toEqual({
      device: 'net0',
      inboundAverageBytesPerSec: 1000 * 1024,
      inboundPeakBytesPerSec: 5000 * 1024,
      inboundBurstBytes: 1024 * 1024,
      outboundAverageBytesPerSec: 128 * 1024,
      outboundPeakBytesPerSec: 256 * 1024,
      outboundBurstBytes: 256 * 1024,
    });
    expect(interfaceParamsToNicLimits('net3', nic4)).toEqual({
      device: 'net3',
      inboundAverageBytesPerSec: 2048 * 1024,
      inboundPeakBytesPerSec: null,
      inboundBurstBytes: null,
      outboundAverageBytesPerSec: null,
      outboundPeakBytesPerSec: null,
      outboundBurstBytes: null,
    });
  });

  it('writes UINT KiB values, only the given fields', () => {
    expect(
      nicLimitsToInterfaceParams({ device: 'net0', outboundAverageBytesPerSec: 1024 ** 2 }, nic1),
    ).toEqual({
      params: [{ field: 'outbound.average', type: TYPED_PARAM_TYPE.UINT, value: 1024 }],
      warnings: [],
    });
    const rounded = nicLimitsToInterfaceParams({ device: 'net0', inboundBurstBytes: 1000 }, nic1);
    expect(rounded.params).toEqual([{ field: 'inbound.burst', type: TYPED_PARAM_TYPE.UINT, value: 1 }]);
    expect(rounded.warnings).toHaveLength(1);
    const fractional = nicLimitsToInterfaceParams({ device: 'net0', outboundPeakBytesPerSec: 2048.5 }, nic1);
    expect(fractional.params).toEqual([{ field: 'outbound.peak', type: TYPED_PARAM_TYPE.UINT, value: 3 }]);
    expect(fractional.warnings).toHaveLength(1);
  });

  it('clears a direction with its average, and needs an average for peak and burst', () => {
    expect(
      nicLimitsToInterfaceParams({ device: 'net0', inboundAverageBytesPerSec: null }, nic1).params,
    ).toEqual([
      { field: 'inbound.average', type: TYPED_PARAM_TYPE.UINT, value: 0 },
      { field: 'inbound.peak', type: TYPED_PARAM_TYPE.UINT, value: 0 },
      { field: 'inbound.burst', type: TYPED_PARAM_TYPE.UINT, value: 0 },
    ]);
    expectCode(
      () => nicLimitsToInterfaceParams({ device: 'net3', outboundPeakBytesPerSec: 4096 }, nic4),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () =>
        nicLimitsToInterfaceParams(
          { device: 'net0', inboundAverageBytesPerSec: null, inboundPeakBytesPerSec: 2048 },
          nic1,
        ),
      'INVALID_ARGUMENT',
    );
    expect(
      nicLimitsToInterfaceParams(
        { device: 'net3', outboundAverageBytesPerSec: 2048, outboundPeakBytesPerSec: 4096 },
        nic4,
      ).params,
    ).toEqual([
      { field: 'outbound.average', type: TYPED_PARAM_TYPE.UINT, value: 2 },
      { field: 'outbound.peak', type: TYPED_PARAM_TYPE.UINT, value: 4 },
    ]);
    expectCode(
      () => nicLimitsToInterfaceParams({ device: 'n', inboundAverageBytesPerSec: 2 ** 52 }, nic1),
      'INVALID_ARGUMENT',
    );
  });

  it('round-trips whole-KiB values', () => {
    for (const limits of [
      {
        device: 'net0',
        inboundAverageBytesPerSec: 1024 ** 2,
        inboundPeakBytesPerSec: 2 * 1024 ** 2,
        inboundBurstBytes: 64 * 1024,
        outboundAverageBytesPerSec: 10 * 1024,
        outboundPeakBytesPerSec: null,
        outboundBurstBytes: null,
      },
      {
        device: 'net0',
        inboundAverageBytesPerSec: null,
        inboundPeakBytesPerSec: null,
        inboundBurstBytes: null,
        outboundAverageBytesPerSec: 4294967295 * 1024,
        outboundPeakBytesPerSec: 1024,
        outboundBurstBytes: 1024,
      },
    ]) {
      const { params, warnings } = nicLimitsToInterfaceParams(limits, nic1);
      expect(warnings).toEqual([]);
      expect(interfaceParamsToNicLimits('net0', apply(nic1, params))).toEqual(limits);
    }
  });
});

describe('XML view = typed-parameter view', () => {
  /** Limits of one domain read through the tuning APIs (config flags), keyed like the XML view. */
  function fromParams(s: ReturnType<typeof typedParamsSample>, xmlFile: string, cgroupVersion: 1 | 2) {
    const details = parseDomainXmlDetails(sample(xmlFile), { cgroupVersion });
    return {
      details,
      cpu: schedulerParamsToCpuLimits(sched(s), { cgroupVersion, vcpus: details.vcpus.max }),
      memory: memoryParamsToLimits(mem(s), { cgroupVersion }),
      disks: Object.entries(s.blockIoTune).map(([d, p]) => blockIoTuneToDiskLimits(d, p)),
      nics: Object.entries(s.interface).map(([key, p]) => {
        const nic = details.interfaces.find((n) => n.paramsDevice === key || n.mac === key);
        return interfaceParamsToNicLimits(nic?.device ?? key, p);
      }),
    };
  }

  for (const cgroupVersion of [1, 2] as const) {
    it(`agrees for the rich definition (cgroup v${cgroupVersion})`, () => {
      const v = fromParams(rich, 'qemu-rich-inactive.xml', cgroupVersion);
      expect(v.details.limits.cpu).toEqual(v.cpu);
      expect(v.details.limits.memory).toEqual(v.memory);
      for (const d of v.disks) expect(v.details.limits.disks).toContainEqual(d);
      for (const n of v.nics) expect(v.details.limits.nics).toContainEqual(n);
      expect(v.disks).toHaveLength(3);
      expect(v.nics).toHaveLength(3);
    });

    it(`agrees for the running guest's definition and its live XML (cgroup v${cgroupVersion})`, () => {
      const c = fromParams(liveConfig, 'qemu-live-rich-inactive.xml', cgroupVersion);
      expect(c.details.limits.cpu).toEqual(c.cpu);
      expect(c.details.limits.memory).toEqual(c.memory);
      // hdc (an empty cdrom) was not captured through the API.
      expect(c.details.limits.disks?.slice(0, 2)).toEqual(c.disks);
      expect(c.nics).toEqual([c.details.limits.nics?.[0]]);
      const l = fromParams(live, 'qemu-live-rich-live.xml', cgroupVersion);
      expect(l.details.limits.cpu).toEqual(l.cpu);
      expect(l.details.limits.memory).toEqual(l.memory);
      expect(l.details.limits.disks?.slice(0, 2)).toEqual(l.disks);
    });
  }
});
