import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import type { ResourceLimits } from '../hypervisor/v1/model';
import type { SupportsManifest } from '../hypervisor/v1/supports';
import { isLimitFieldSupported, LIMIT_FIELDS, limitPatch, readLimitField } from './fields';
import { normalizeLimits, normalizeLimitValue } from './normalize';
import { mergeLimits, validateLimits } from './validate';

type LimitsManifest = Exclude<SupportsManifest['limits'], false>;

const ALL: LimitsManifest = {
  applies: 'live',
  modes: ['live', 'persistent', 'both'],
  cpu: { weight: true, maxCores: true, reservationMHz: true },
  memory: { maxBytes: true, softBytes: true, minBytes: true, swapMaxBytes: true },
  disks: { readBytesPerSec: true, writeBytesPerSec: true, readIops: true, writeIops: true },
  network: {
    inboundAverage: true,
    inboundPeak: true,
    inboundBurst: true,
    outboundAverage: true,
    outboundPeak: true,
    outboundBurst: true,
  },
  pids: true,
};

const CPU_ONLY: LimitsManifest = {
  ...ALL,
  cpu: { weight: true, maxCores: true, reservationMHz: false },
  memory: { maxBytes: true, softBytes: false, minBytes: false, swapMaxBytes: false },
  disks: false,
  network: false,
  pids: false,
};

function errorOf(fn: () => void): HvkitError {
  try {
    fn();
  } catch (e) {
    if (HvkitError.isInstance(e)) return e;
    throw e;
  }
  throw new Error('expected an HvkitError, but the call returned');
}

describe('validateLimits', () => {
  it('accepts valid values, null and an empty patch', () => {
    const good: ResourceLimits = {
      cpu: { weight: 1, maxCores: 0.5, reservationMHz: 0 },
      memory: { maxBytes: 2 ** 31, softBytes: null, minBytes: 0, swapMaxBytes: 0 },
      disks: [{ device: 'vda', readBytesPerSec: 10.5, writeIops: 1 }],
      nics: [{ device: 'vnet0', inboundAverageBytesPerSec: 16_000_000, outboundBurstBytes: 1024 }],
      pids: { max: 1 },
    };
    expect(() => validateLimits(good, ALL)).not.toThrow();
    expect(() => validateLimits({ cpu: { weight: 10000, maxCores: null } }, ALL)).not.toThrow();
    expect(() => validateLimits({}, ALL)).not.toThrow();
    expect(() => validateLimits({ cpu: { weight: undefined } }, CPU_ONLY)).not.toThrow();
  });

  it.each([
    ['weight 0', { cpu: { weight: 0 } }, 'cpu.weight'],
    ['weight 10001', { cpu: { weight: 10001 } }, 'cpu.weight'],
    ['weight 1.5', { cpu: { weight: 1.5 } }, 'cpu.weight'],
    ['weight as string', { cpu: { weight: '100' } }, 'cpu.weight'],
    ['maxCores 0', { cpu: { maxCores: 0 } }, 'cpu.maxCores'],
    ['maxCores NaN', { cpu: { maxCores: Number.NaN } }, 'cpu.maxCores'],
    ['maxCores Infinity', { cpu: { maxCores: Number.POSITIVE_INFINITY } }, 'cpu.maxCores'],
    ['reservationMHz -1', { cpu: { reservationMHz: -1 } }, 'cpu.reservationMHz'],
    ['maxBytes -1', { memory: { maxBytes: -1 } }, 'memory.maxBytes'],
    ['maxBytes 1.5', { memory: { maxBytes: 1.5 } }, 'memory.maxBytes'],
    ['maxBytes beyond safe integers', { memory: { maxBytes: 2 ** 60 } }, 'memory.maxBytes'],
    ['disk rate negative', { disks: [{ device: 'vda', readBytesPerSec: -5 }] }, 'disks[0].readBytesPerSec'],
    ['disk iops NaN', { disks: [{ device: 'vda', writeIops: Number.NaN }] }, 'disks[0].writeIops'],
    [
      'nic burst fraction',
      { nics: [{ device: 'vnet0', inboundBurstBytes: 0.5 }] },
      'nics[0].inboundBurstBytes',
    ],
    ['pids 0', { pids: { max: 0 } }, 'pids.max'],
    ['pids 1.5', { pids: { max: 1.5 } }, 'pids.max'],
    ['reservationMHz 1.5', { cpu: { reservationMHz: 1.5 } }, 'cpu.reservationMHz'],
    // Zero where it has no meaning: a cap of 0 would stop the guest, and backends read 0 as "no limit".
    ['maxBytes 0', { memory: { maxBytes: 0 } }, 'memory.maxBytes'],
    ['softBytes 0', { memory: { softBytes: 0 } }, 'memory.softBytes'],
    ['disk rate 0', { disks: [{ device: 'vda', readBytesPerSec: 0 }] }, 'disks[0].readBytesPerSec'],
    ['disk iops 0', { disks: [{ device: 'vda', writeIops: 0 }] }, 'disks[0].writeIops'],
    [
      'nic average 0',
      { nics: [{ device: 'vnet0', outboundAverageBytesPerSec: 0 }] },
      'nics[0].outboundAverageBytesPerSec',
    ],
    ['nic burst 0', { nics: [{ device: 'vnet0', inboundBurstBytes: 0 }] }, 'nics[0].inboundBurstBytes'],
    ['unknown top-level key', { blkio: {} }, 'blkio'],
    ['unknown cpu key', { cpu: { shares: 1024 } }, 'cpu.shares'],
    ['unknown disk key', { disks: [{ device: 'vda', bps: 1 }] }, 'disks[0].bps'],
    ['cpu not an object', { cpu: 5 }, 'cpu'],
    ['disks not an array', { disks: { device: 'vda' } }, 'disks'],
    ['missing device', { disks: [{ readIops: 1 }] }, 'disks[0].device'],
    ['empty device', { nics: [{ device: ' ', inboundPeakBytesPerSec: 1 }] }, 'nics[0].device'],
    [
      'duplicate device',
      {
        disks: [
          { device: 'vda', readIops: 1 },
          { device: 'vda', writeIops: 1 },
        ],
      },
      'disks[1].device',
    ],
  ])('rejects %s with INVALID_ARGUMENT naming the field', (_label, patch, path) => {
    const err = errorOf(() => validateLimits(patch as ResourceLimits, ALL, { adapter: 'test-adapter' }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.adapter).toBe('test-adapter');
    expect(err.operation).toBe('limits.set');
    expect(err.message).toContain(path);
    const issues = err.details?.issues as { path: string }[];
    expect(issues.map((i) => i.path)).toContain(path);
  });

  it('says to use null instead of 0 for a cap', () => {
    const err = errorOf(() => validateLimits({ memory: { maxBytes: 0 } }, ALL));
    expect(err.message).toBe(
      'invalid limits: memory.maxBytes must be a positive safe integer (bytes) or null (got 0; null means unlimited)',
    );
  });

  it("rejects maxCores above the host's logical CPUs and memory above its memory, when given", () => {
    const host = { logicalCpus: 8, memoryBytes: 16 * 2 ** 30 };
    expect(() =>
      validateLimits(
        { cpu: { maxCores: 8 }, memory: { maxBytes: 16 * 2 ** 30, softBytes: 2 ** 30, minBytes: 2 ** 30 } },
        ALL,
        { host },
      ),
    ).not.toThrow();
    let err = errorOf(() => validateLimits({ cpu: { maxCores: 8.5 } }, ALL, { adapter: 'x', host }));
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toBe(
      "invalid limits: cpu.maxCores must be at most the host's 8 logical CPUs (got 8.5)",
    );
    err = errorOf(() => validateLimits({ cpu: { maxCores: 1e9 } }, ALL, { host }));
    expect(err.details?.issues).toEqual([
      { path: 'cpu.maxCores', message: "must be at most the host's 8 logical CPUs (got 1000000000)" },
    ]);
    for (const key of ['maxBytes', 'softBytes', 'minBytes'] as const) {
      err = errorOf(() => validateLimits({ memory: { [key]: 16 * 2 ** 30 + 4096 } }, ALL, { host }));
      expect(err.message).toContain(`memory.${key} must be at most the host's memory, 17179869184 bytes`);
    }
    // Swap is not host memory; null is always fine; without host facts nothing is bounded.
    expect(() =>
      validateLimits({ memory: { swapMaxBytes: 2 ** 40, maxBytes: null }, cpu: { maxCores: null } }, ALL, {
        host,
      }),
    ).not.toThrow();
    expect(() => validateLimits({ cpu: { maxCores: 1e9 } }, ALL)).not.toThrow();
    expect(() => validateLimits({ cpu: { maxCores: 1e9 } }, ALL, { host: {} })).not.toThrow();
  });

  it('throws TypeError for host facts that are not positive numbers (API misuse)', () => {
    expect(() => validateLimits({}, ALL, { host: { logicalCpus: 0 } })).toThrow(TypeError);
    expect(() => validateLimits({}, ALL, { host: { memoryBytes: Number.NaN } })).toThrow(TypeError);
  });

  it('reports every problem at once', () => {
    const err = errorOf(() =>
      validateLimits({ cpu: { weight: 0, maxCores: -1 }, memory: { maxBytes: -1 } }, ALL),
    );
    expect(err.details?.issues).toHaveLength(3);
  });

  it('rejects devices the guest does not have when devices are given', () => {
    const devices = { disks: ['vda', 'vdb'], nics: ['vnet0'] };
    expect(() => validateLimits({ disks: [{ device: 'vdb', readIops: 5 }] }, ALL, { devices })).not.toThrow();
    const err = errorOf(() =>
      validateLimits({ nics: [{ device: 'vnet9', inboundPeakBytesPerSec: 5 }] }, ALL, { devices }),
    );
    expect(err.code).toBe('INVALID_ARGUMENT');
    expect(err.message).toContain('"vnet9" is not a NIC of the guest (known: vnet0)');
  });

  it('rejects unsupported fields with UNSUPPORTED, naming the manifest entry', () => {
    let err = errorOf(() => validateLimits({ cpu: { reservationMHz: 100 } }, CPU_ONLY, { adapter: 'x' }));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain('cpu.reservationMHz');
    expect(err.message).toContain('supports.limits.cpu.reservationMHz = false');
    expect(err.details?.fields).toEqual(['cpu.reservationMHz']);

    err = errorOf(() => validateLimits({ nics: [{ device: 'vnet0', outboundBurstBytes: null }] }, CPU_ONLY));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain('supports.limits.network.outboundBurst = false');

    err = errorOf(() => validateLimits({ pids: { max: 10 } }, CPU_ONLY));
    expect(err.details?.fields).toEqual(['pids.max']);

    err = errorOf(() => validateLimits({ cpu: { weight: 100 } }, false));
    expect(err.code).toBe('UNSUPPORTED');
    expect(err.message).toContain('supports.limits = false');
  });

  it('rejects null on an unsupported field like a number (null is a setting too)', () => {
    for (const patch of [
      { cpu: { reservationMHz: null } },
      { memory: { minBytes: null } },
      { memory: { swapMaxBytes: null } },
      { pids: { max: null } },
    ] as ResourceLimits[]) {
      expect(errorOf(() => validateLimits(patch, CPU_ONLY)).code).toBe('UNSUPPORTED');
    }
  });

  it('checks values before support, and an empty device list is not a use', () => {
    expect(errorOf(() => validateLimits({ pids: { max: -1 } }, CPU_ONLY)).code).toBe('INVALID_ARGUMENT');
    expect(() => validateLimits({ disks: [] }, CPU_ONLY)).not.toThrow();
  });

  it('throws TypeError for a patch that is not an object', () => {
    expect(() => validateLimits(null as unknown as ResourceLimits, ALL)).toThrow(TypeError);
    expect(() => validateLimits([] as unknown as ResourceLimits, ALL)).toThrow(TypeError);
  });
});

describe('mergeLimits', () => {
  const current: ResourceLimits = {
    cpu: { weight: 100, maxCores: 2 },
    memory: { maxBytes: 1024 },
    disks: [{ device: 'vda', readIops: 10, writeIops: 20 }],
    nics: [{ device: 'vnet0', inboundAverageBytesPerSec: 1000 }],
  };

  it('overrides patched fields, keeps the rest and does not modify its inputs', () => {
    const snapshot = structuredClone(current);
    const patch: ResourceLimits = {
      cpu: { weight: 300, maxCores: undefined },
      memory: { softBytes: null },
      disks: [
        { device: 'vda', writeIops: null },
        { device: 'vdb', readBytesPerSec: 5 },
      ],
      pids: { max: 64 },
    };
    const merged = mergeLimits(current, patch);
    expect(merged).toEqual({
      cpu: { weight: 300, maxCores: 2 },
      memory: { maxBytes: 1024, softBytes: null },
      disks: [
        { device: 'vda', readIops: 10, writeIops: null },
        { device: 'vdb', readBytesPerSec: 5 },
      ],
      nics: [{ device: 'vnet0', inboundAverageBytesPerSec: 1000 }],
      pids: { max: 64 },
    });
    expect(current).toEqual(snapshot);
    const first = merged.disks?.[0];
    if (first) first.readIops = 99;
    expect(current.disks?.[0]?.readIops).toBe(10);
  });

  it('returns an equal copy for an empty patch', () => {
    const merged = mergeLimits(current, {});
    expect(merged).toEqual(current);
    expect(merged).not.toBe(current);
  });
});

describe('limit field helpers', () => {
  it('builds and reads patches for every field', () => {
    for (const f of LIMIT_FIELDS) {
      const device = f.section === 'disks' ? 'vda' : f.section === 'nics' ? 'vnet0' : undefined;
      const patch = limitPatch(f.path, 7, device);
      expect(f.allowsZero).toBe(
        f.path === 'memory.minBytes' || f.path === 'memory.swapMaxBytes' || f.path === 'cpu.reservationMHz',
      );
      expect(readLimitField(patch, f.path, device)).toBe(7);
      expect(readLimitField(limitPatch(f.path, null, device), f.path, device)).toBeNull();
      expect(readLimitField({}, f.path, device)).toBeUndefined();
      expect(() => validateLimits(patch, ALL)).not.toThrow();
      expect(isLimitFieldSupported(ALL, f.path)).toBe(true);
    }
    expect(() => limitPatch('disks.readIops', 1)).toThrow(TypeError);
  });

  it('reads support from the manifest', () => {
    expect(isLimitFieldSupported(CPU_ONLY, 'cpu.weight')).toBe(true);
    expect(isLimitFieldSupported(CPU_ONLY, 'cpu.reservationMHz')).toBe(false);
    expect(isLimitFieldSupported(CPU_ONLY, 'nics.inboundBurstBytes')).toBe(false);
    expect(isLimitFieldSupported(CPU_ONLY, 'pids.max')).toBe(false);
    expect(isLimitFieldSupported(false, 'cpu.weight')).toBe(false);
  });
});

describe('normalizeLimits', () => {
  it('reports a field at its backend default as null, the one spelling of the default', () => {
    expect(normalizeLimitValue('cpu.weight', 100)).toBeNull();
    expect(normalizeLimitValue('cpu.weight', null)).toBeNull();
    expect(normalizeLimitValue('cpu.weight', 200)).toBe(200);
    expect(normalizeLimitValue('cpu.reservationMHz', 0)).toBeNull();
    expect(normalizeLimitValue('memory.minBytes', 0)).toBeNull();
    expect(normalizeLimitValue('memory.swapMaxBytes', 0)).toBe(0);
    expect(normalizeLimitValue('memory.maxBytes', undefined)).toBeUndefined();
    const defaults = LIMIT_FIELDS.filter((f) => f.defaultValue !== undefined).map((f) => [
      f.path,
      f.defaultValue,
    ]);
    expect(defaults).toEqual([
      ['cpu.weight', 100],
      ['cpu.reservationMHz', 0],
      ['memory.minBytes', 0],
    ]);
  });

  it('normalises every field of a limits object and modifies nothing', () => {
    const limits: ResourceLimits = {
      cpu: { weight: 100, maxCores: 2, reservationMHz: 0 },
      memory: { maxBytes: null, minBytes: 0, swapMaxBytes: 0 },
      disks: [{ device: 'vda', readIops: 5, writeIops: null }],
      pids: { max: 10 },
    };
    const copy = structuredClone(limits);
    expect(normalizeLimits(limits)).toEqual({
      cpu: { weight: null, maxCores: 2, reservationMHz: null },
      memory: { maxBytes: null, minBytes: null, swapMaxBytes: 0 },
      disks: [{ device: 'vda', readIops: 5, writeIops: null }],
      pids: { max: 10 },
    });
    expect(limits).toEqual(copy);
    expect(normalizeLimits({})).toEqual({});
  });
});
