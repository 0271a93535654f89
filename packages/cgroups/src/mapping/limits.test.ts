import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import {
  bandwidthToMaxCores,
  cpuWeightToLimit,
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
} from './limits';

const codeOf = (fn: () => unknown) => {
  try {
    fn();
  } catch (e) {
    if (HvkitError.isInstance(e)) return e.code;
    throw e;
  }
  throw new Error('did not throw');
};

describe('cpu weight', () => {
  it('v1 shares = round(weight × 1024 / 100) and back; the default 1024 reads null', () => {
    expect(limitToShares(200)).toBe('2048');
    expect(limitToShares(1)).toBe('10');
    expect(limitToShares(10000)).toBe('102400');
    expect(limitToShares(null)).toBe('1024');
    expect(sharesToLimit('2048\n')).toBe(200);
    expect(sharesToLimit('1024')).toBeNull();
    expect(sharesToLimit('2')).toBe(1);
    expect(sharesToLimit('262144')).toBe(10000);
    for (let w = 1; w <= 10000; w += 37) expect(sharesToLimit(limitToShares(w))).toBe(w === 100 ? null : w);
  });

  it('v2 cpu.weight is the weight itself; 100 reads null', () => {
    expect(limitToCpuWeight(200)).toBe('200');
    expect(limitToCpuWeight(null)).toBe('100');
    expect(cpuWeightToLimit('100\n')).toBeNull();
    expect(cpuWeightToLimit('10000')).toBe(10000);
  });

  it('a file that is not a number is PROTOCOL', () => {
    expect(codeOf(() => sharesToLimit('abc'))).toBe('PROTOCOL');
  });
});

describe('cpu cap (maxCores = quota / period)', () => {
  it('reads v1 quota/period and v2 cpu.max; -1 and max are null', () => {
    expect(bandwidthToMaxCores(parseCfs('50000', '100000'))).toBe(0.5);
    expect(bandwidthToMaxCores(parseCfs('-1', '100000'))).toBeNull();
    expect(bandwidthToMaxCores(parseCpuMax('150000 100000\n'))).toBe(1.5);
    expect(bandwidthToMaxCores(parseCpuMax('max 100000'))).toBeNull();
    expect(parseCpuMax('20000')).toEqual({ quotaUs: 20000, periodUs: 100000 });
  });

  it('writes round(maxCores × period) with the group period', () => {
    expect(maxCoresToQuota(0.5, 100000)).toBe(50000);
    expect(maxCoresToQuota(2, 250000)).toBe(500000);
    expect(formatCpuMax({ quotaUs: 50000, periodUs: 100000 })).toBe('50000 100000');
    expect(formatCpuMax({ quotaUs: null, periodUs: 100000 })).toBe('max 100000');
  });

  it('refuses a cap below the kernel minimum quota of 1000 µs with INVALID_ARGUMENT', () => {
    expect(codeOf(() => maxCoresToQuota(0.005, 100000))).toBe('INVALID_ARGUMENT');
    expect(maxCoresToQuota(0.01, 100000)).toBe(1000);
  });
});

describe('memory, pids and swap', () => {
  it('reads -1, max and v1 9223372036854771712 as null', () => {
    expect(parseMaxValue('9223372036854771712\n', 'memory.limit_in_bytes')).toBeNull();
    expect(parseMaxValue('-1', 'x')).toBeNull();
    expect(parseMaxValue('max\n', 'memory.max')).toBeNull();
    expect(parseMaxValue('268435456', 'x')).toBe(268435456);
    expect(codeOf(() => parseMaxValue('lots', 'x'))).toBe('PROTOCOL');
  });

  it('writes null as -1 on v1 and max on v2', () => {
    expect(formatMaxValue(null, 1)).toBe('-1');
    expect(formatMaxValue(null, 2)).toBe('max');
    expect(formatMaxValue(64, 2)).toBe('64');
  });

  it('v1 swap = memsw − limit, memsw = limit + swap (v2 swap.max is swap only)', () => {
    expect(memswToSwap(512, 576)).toBe(64);
    expect(memswToSwap(512, null)).toBeNull();
    expect(memswToSwap(null, null)).toBeNull();
    expect(swapToMemsw(512, 64)).toBe(576);
    expect(swapToMemsw(512, null)).toBeNull();
    expect(swapToMemsw(512, 0)).toBe(512);
  });
});

describe('block IO', () => {
  it('reads v1 throttle lines per device', () => {
    expect(parseThrottleFile('254:0 10485760\n8:0 5\n')).toEqual(
      new Map([
        ['254:0', 10485760],
        ['8:0', 5],
      ]),
    );
    expect(parseThrottleFile('')).toEqual(new Map());
    expect(codeOf(() => parseThrottleFile('vda 5'))).toBe('PROTOCOL');
  });

  it('reads and writes v2 io.max lines; max is null', () => {
    expect(parseIoMax('254:0 rbps=1048576 wbps=max riops=max wiops=120\n').get('254:0')).toEqual({
      readBytesPerSec: 1048576,
      writeBytesPerSec: null,
      readIops: null,
      writeIops: 120,
    });
    expect(
      formatIoMax('254:0', {
        readBytesPerSec: 1048576,
        writeBytesPerSec: null,
        readIops: null,
        writeIops: 120,
      }),
    ).toBe('254:0 rbps=1048576 wbps=max riops=max wiops=120');
  });
});
