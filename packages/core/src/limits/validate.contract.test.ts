/**
 * `validateLimits` field by field: for every limit field, the rule its message states, whether 0 is
 * allowed, the host bound it has, and the exact wording of every other refusal (unknown keys, entries,
 * devices, host facts, unsupported fields). validate.test.ts has the common cases.
 */

import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import type { ResourceLimits } from '../hypervisor/v1/model';
import type { SupportsManifest } from '../hypervisor/v1/supports';
import { LIMIT_FIELDS } from './fields';
import { findLimitsIssues, findUnsupportedLimits, mergeLimits, validateLimits } from './validate';

type LimitsManifest = Exclude<SupportsManifest['limits'], false>;

/** A manifest that supports every limit field (built from LIMIT_FIELDS, so it follows the field list). */
const ALL = { applies: 'live', modes: ['live', 'persistent', 'both'] } as Record<string, unknown>;
for (const field of LIMIT_FIELDS) {
  const [section, key] = field.supportsPath.split('.') as [string, string | undefined];
  if (key === undefined) ALL[section] = true;
  else ALL[section] = { ...(ALL[section] as object | undefined), [key]: true };
}

/** Each field's rule as its message states it, and whether 0 is a valid value. */
const RULES: Record<string, [rule: string, zero: boolean]> = {
  'cpu.weight': ['an integer 1..10000 or null', false],
  'cpu.maxCores': ['a finite number > 0 or null', false],
  'cpu.reservationMHz': ['a non-negative safe integer (MHz) or null', true],
  'memory.maxBytes': ['a positive safe integer (bytes) or null', false],
  'memory.softBytes': ['a positive safe integer (bytes) or null', false],
  'memory.minBytes': ['a non-negative safe integer (bytes) or null', true],
  'memory.swapMaxBytes': ['a non-negative safe integer (bytes) or null', true],
  'disks.readBytesPerSec': ['a positive finite number (bytes/s) or null', false],
  'disks.writeBytesPerSec': ['a positive finite number (bytes/s) or null', false],
  'disks.readIops': ['a positive finite number (operations/s) or null', false],
  'disks.writeIops': ['a positive finite number (operations/s) or null', false],
  'nics.inboundAverageBytesPerSec': ['a positive finite number (bytes/s) or null', false],
  'nics.inboundPeakBytesPerSec': ['a positive finite number (bytes/s) or null', false],
  'nics.inboundBurstBytes': ['a positive safe integer (bytes) or null', false],
  'nics.outboundAverageBytesPerSec': ['a positive finite number (bytes/s) or null', false],
  'nics.outboundPeakBytesPerSec': ['a positive finite number (bytes/s) or null', false],
  'nics.outboundBurstBytes': ['a positive safe integer (bytes) or null', false],
  'pids.max': ['a positive safe integer or null', false],
};

/** A patch setting one field (`disks.x` → `{ disks: [{ device: 'vda', x }] }`) and the path issues name. */
function patchOf(path: string, value: unknown): { patch: ResourceLimits; at: string } {
  const [section, key] = path.split('.') as [string, string];
  if (section === 'disks' || section === 'nics') {
    return {
      patch: { [section]: [{ device: 'dev0', [key]: value }] } as ResourceLimits,
      at: `${section}[0].${key}`,
    };
  }
  return { patch: { [section]: { [key]: value } } as ResourceLimits, at: path };
}

function invalid(patch: unknown, options = {}): HvkitError {
  try {
    validateLimits(patch as ResourceLimits, ALL as LimitsManifest, options);
  } catch (error) {
    expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT'), String(error)).toBe(true);
    return error as HvkitError;
  }
  throw new Error(`${JSON.stringify(patch)} was accepted`);
}

describe('every limit field', () => {
  it('is in the table', () => {
    expect(LIMIT_FIELDS.map((f) => f.path).sort()).toEqual(Object.keys(RULES).sort());
  });

  it.each(Object.entries(RULES).map(([path, [rule, zero]]) => [path, rule, zero] as const))(
    '%s: %s (0 allowed: %s)',
    (path, rule, zero) => {
      const { patch, at } = patchOf(path, -1);
      expect(invalid(patch).message).toBe(`invalid limits: ${at} must be ${rule} (got -1)`);
      for (const [bad, shown] of [
        ['5', '"5"'],
        [Number.NaN, 'NaN'],
        [Number.POSITIVE_INFINITY, 'Infinity'],
        [true, 'true'],
        [{}, '{}'],
      ] as const) {
        expect(invalid(patchOf(path, bad).patch).message).toBe(
          `invalid limits: ${at} must be ${rule} (got ${shown})`,
        );
      }
      if (zero) {
        expect(() => validateLimits(patchOf(path, 0).patch, ALL as LimitsManifest)).not.toThrow();
      } else {
        const hint = path === 'cpu.weight' ? '' : '; null means unlimited';
        expect(invalid(patchOf(path, 0).patch).message).toBe(
          `invalid limits: ${at} must be ${rule} (got 0${hint})`,
        );
      }
      expect(() => validateLimits(patchOf(path, null).patch, ALL as LimitsManifest)).not.toThrow();
      expect(() => validateLimits(patchOf(path, undefined).patch, ALL as LimitsManifest)).not.toThrow();
    },
  );

  it('keeps integers integral and weights within 1..10000; rates and cores may be fractions', () => {
    for (const path of [
      'cpu.reservationMHz',
      'memory.maxBytes',
      'nics.inboundBurstBytes',
      'pids.max',
      'cpu.weight',
    ]) {
      expect(invalid(patchOf(path, 1.5).patch).message, path).toContain('(got 1.5)');
      expect(invalid(patchOf(path, 2 ** 53).patch).message, path).toContain(`(got ${2 ** 53})`);
    }
    for (const [path, value] of [
      ['cpu.weight', 1],
      ['cpu.weight', 10000],
      ['cpu.maxCores', 0.01],
      ['disks.readBytesPerSec', 0.5],
      ['disks.readIops', 0.5],
      ['pids.max', 1],
      ['memory.maxBytes', Number.MAX_SAFE_INTEGER],
    ] as const) {
      expect(
        () => validateLimits(patchOf(path, value).patch, ALL as LimitsManifest),
        `${path} ${value}`,
      ).not.toThrow();
    }
    expect(invalid({ cpu: { weight: 10001 } }).message).toBe(
      'invalid limits: cpu.weight must be an integer 1..10000 or null (got 10001)',
    );
  });
});

describe('host bounds', () => {
  const host = { logicalCpus: 4, memoryBytes: 1024 };

  it('bound maxCores by the logical CPUs and the memory sizes by the memory, exactly', () => {
    expect(invalid({ cpu: { maxCores: 4.5 } }, { host }).message).toBe(
      "invalid limits: cpu.maxCores must be at most the host's 4 logical CPUs (got 4.5)",
    );
    for (const key of ['maxBytes', 'softBytes', 'minBytes']) {
      expect(invalid({ memory: { [key]: 1025 } }, { host }).message).toBe(
        `invalid limits: memory.${key} must be at most the host's memory, 1024 bytes (got 1025)`,
      );
    }
    expect(() =>
      validateLimits(
        { cpu: { maxCores: 4 }, memory: { maxBytes: 1024, swapMaxBytes: 10 ** 9 } },
        ALL as LimitsManifest,
        {
          host,
        },
      ),
    ).not.toThrow();
    // A fact left out bounds nothing, nor does null.
    expect(() =>
      validateLimits({ cpu: { maxCores: 64 } }, ALL as LimitsManifest, { host: { memoryBytes: 1 } }),
    ).not.toThrow();
    expect(() =>
      validateLimits({ memory: { maxBytes: null } }, ALL as LimitsManifest, { host }),
    ).not.toThrow();
    expect(() => validateLimits({ cpu: { maxCores: 64 } }, ALL as LimitsManifest)).not.toThrow();
  });

  it('refuses host facts that are not positive numbers with TypeError', () => {
    expect(() => findLimitsIssues({}, { host: 'big' as never })).toThrow(
      'options.host must be an object (got "big")',
    );
    expect(() => findLimitsIssues({}, { host: [] as never })).toThrow(
      'options.host must be an object (got [])',
    );
    for (const [key, value, shown] of [
      ['logicalCpus', 0, '0'],
      ['memoryBytes', -1, '-1'],
      ['logicalCpus', Number.POSITIVE_INFINITY, 'Infinity'],
      ['memoryBytes', '8', '"8"'],
    ] as const) {
      expect(() => findLimitsIssues({}, { host: { [key]: value } as never })).toThrow(
        `options.host.${key} must be a positive number (got ${shown})`,
      );
    }
  });
});

describe('the shape of a patch', () => {
  it('names unknown keys, sections of the wrong type, and bad entries', () => {
    const issues = findLimitsIssues({
      cpu: { weight: 100, quota: 1, max: 2 },
      memory: 5,
      pids: { weight: 1 },
      disks: { device: 'vda' },
      nics: [
        7,
        { device: '' },
        { device: 'n0', bogus: 1 },
        { device: 'n0' },
        { device: 'n1', inboundBurstBytes: 0 },
      ],
      extra: true,
    } as unknown as ResourceLimits);
    expect(issues).toEqual([
      { path: 'extra', message: 'unknown key "extra"' },
      { path: 'cpu.quota', message: 'unknown key "quota"' },
      { path: 'cpu.max', message: 'unknown key "max"' },
      { path: 'memory', message: 'must be an object (got 5)' },
      { path: 'pids.weight', message: 'unknown key "weight"' },
      { path: 'disks', message: 'must be an array of entries (got {"device":"vda"})' },
      { path: 'nics[0]', message: 'must be an object (got 7)' },
      { path: 'nics[1].device', message: 'must be a non-empty device name (got "")' },
      { path: 'nics[2].bogus', message: 'unknown key "bogus"' },
      { path: 'nics[3].device', message: 'duplicate device "n0"' },
      {
        path: 'nics[4].inboundBurstBytes',
        message: 'must be a positive safe integer (bytes) or null (got 0; null means unlimited)',
      },
    ]);
    expect(findLimitsIssues({ disks: [{ device: '  ' }, {}] } as unknown as ResourceLimits)).toEqual([
      { path: 'disks[0].device', message: 'must be a non-empty device name (got "  ")' },
      { path: 'disks[1].device', message: 'must be a non-empty device name (got undefined)' },
    ]);
  });

  it('names devices the guest does not have, with the ones it has', () => {
    const devices = { disks: ['vda', 'vdb'], nics: [] };
    expect(
      findLimitsIssues(
        { disks: [{ device: 'vdc' }, { device: 'vda' }], nics: [{ device: 'eth0' }] },
        { devices },
      ),
    ).toEqual([
      { path: 'disks[0].device', message: '"vdc" is not a disk of the guest (known: vda, vdb)' },
      { path: 'nics[0].device', message: '"eth0" is not a NIC of the guest (known: none)' },
    ]);
    expect(findLimitsIssues({ disks: [{ device: 'anything' }] }, { devices: { nics: ['n'] } })).toEqual([]);
  });

  it('shows values it cannot serialise, and refuses a patch that is not an object with TypeError', () => {
    const circular: Record<string, unknown> = {};
    circular.self = circular;
    expect(findLimitsIssues({ memory: circular } as unknown as ResourceLimits)).toEqual([
      { path: 'memory.self', message: 'unknown key "self"' },
    ]);
    expect(findLimitsIssues({ cpu: { weight: circular } } as unknown as ResourceLimits)[0]?.message).toBe(
      'must be an integer 1..10000 or null (got [object Object])',
    );
    expect(findLimitsIssues({ cpu: { weight: 10n } } as unknown as ResourceLimits)[0]?.message).toBe(
      'must be an integer 1..10000 or null (got 10)',
    );
    for (const patch of [null, 5, 'cpu', [], undefined]) {
      expect(() => validateLimits(patch as unknown as ResourceLimits, ALL as LimitsManifest)).toThrow(
        `limits must be an object (got ${patch === undefined ? 'undefined' : JSON.stringify(patch)})`,
      );
    }
  });

  it('reports every problem at once in details.issues, with the operation and adapter', () => {
    const error = invalid({ cpu: { weight: 0, maxCores: -1 } }, { adapter: 'x', operation: 'limits.check' });
    expect(error.message).toBe(
      'invalid limits: cpu.weight must be an integer 1..10000 or null (got 0); cpu.maxCores must be a finite number > 0 or null (got -1)',
    );
    expect([error.adapter, error.operation]).toEqual(['x', 'limits.check']);
    expect((error.details?.issues as unknown[] | undefined)?.length).toBe(2);
    expect(invalid({ cpu: { weight: 0 } }).operation).toBe('limits.set');
  });
});

describe('unsupported fields', () => {
  const NO_DISKS = {
    ...ALL,
    disks: false,
    memory: { ...(ALL.memory as object), softBytes: false },
  } as LimitsManifest;

  it('are named with the manifest entries that leave them out, and the adapter', () => {
    const patch: ResourceLimits = { memory: { softBytes: 1 }, disks: [{ device: 'vda', readIops: 5 }] };
    let error: HvkitError | undefined;
    try {
      validateLimits(patch, NO_DISKS, { adapter: 'kvm-libvirt' });
    } catch (e) {
      error = e as HvkitError;
    }
    expect(error?.code).toBe('UNSUPPORTED');
    expect(error?.message).toBe(
      'memory.softBytes, disks.readIops cannot be set by the kvm-libvirt adapter (supports.limits.memory.softBytes = false, supports.limits.disks.readIops = false)',
    );
    expect(error?.details).toEqual({ fields: ['memory.softBytes', 'disks.readIops'] });
    try {
      validateLimits({ pids: { max: null } }, false);
    } catch (e) {
      error = e as HvkitError;
    }
    expect(error?.message).toBe('pids.max cannot be set by this adapter (supports.limits = false)');
  });

  it('counts a field as used when any entry sets it, and only then', () => {
    expect(
      findUnsupportedLimits({ disks: [{ device: 'a' }, { device: 'b', writeIops: 1 }] }, NO_DISKS),
    ).toEqual(['disks.writeIops']);
    expect(findUnsupportedLimits({ disks: [{ device: 'a' }], memory: {} }, NO_DISKS)).toEqual([]);
    expect(findUnsupportedLimits({ memory: { softBytes: undefined } }, NO_DISKS)).toEqual([]);
  });
});

describe('mergeLimits', () => {
  it('leaves out disks and NICs neither side has, and appends new devices after the current ones', () => {
    expect(mergeLimits({ cpu: { weight: 1 } }, { memory: { maxBytes: 2 } })).toEqual({
      cpu: { weight: 1 },
      memory: { maxBytes: 2 },
    });
    expect(mergeLimits({}, { nics: [{ device: 'n', inboundBurstBytes: 1 }] })).toEqual({
      nics: [{ device: 'n', inboundBurstBytes: 1 }],
    });
    expect(mergeLimits({ disks: [{ device: 'a', readIops: 1 }] }, {})).toEqual({
      disks: [{ device: 'a', readIops: 1 }],
    });
  });
});
