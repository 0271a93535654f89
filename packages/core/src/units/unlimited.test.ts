import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { CGROUP_V1_UNLIMITED, INT64_MAX, LIBVIRT_UNLIMITED_KIB, normalizeUnlimited } from './unlimited';

function expectInvalid(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT')).toBe(true);
}

describe('normalizeUnlimited', () => {
  it.each<[number | string | bigint]>([
    [-1],
    ['-1'],
    [' -1\n'],
    [-1n],
    [9007199254740991],
    ['9007199254740991'],
    [9007199254740991n],
    [LIBVIRT_UNLIMITED_KIB],
    ['9223372036854771712'],
    [9223372036854771712n],
    [CGROUP_V1_UNLIMITED],
    [Number('9223372036854771712')],
    ['9223372036854775807'],
    [9223372036854775807n],
    [INT64_MAX],
    [Number('9223372036854775807')], // rounds to 2^63
    ['max'],
    ['max\n'],
    ['MAX'],
    ['infinity'],
    ['Infinity'],
    ['unlimited'],
  ])('%s → null', (value) => {
    expect(normalizeUnlimited(value)).toBeNull();
  });

  it.each<[number | string | bigint, number]>([
    [0, 0],
    ['0', 0],
    [1024, 1024],
    ['1024\n', 1024],
    ['  536870912 ', 536870912],
    [123n, 123],
    [-2, -2],
    ['-3', -3],
    [0.5, 0.5],
    ['0.5', 0.5],
    ['+7', 7],
    [Number.MAX_SAFE_INTEGER - 1, Number.MAX_SAFE_INTEGER - 1],
    [BigInt(Number.MAX_SAFE_INTEGER - 1), Number.MAX_SAFE_INTEGER - 1],
    ['9007199254740990', 9007199254740990],
  ])('%s → %d', (value, expected) => {
    expect(normalizeUnlimited(value)).toBe(expected);
  });

  it('passes null and undefined through', () => {
    expect(normalizeUnlimited(null)).toBeNull();
    expect(normalizeUnlimited(undefined)).toBeUndefined();
  });

  it('rejects garbage and unrepresentable values', () => {
    for (const value of [
      '',
      '  ',
      'abc',
      '1e3',
      '12KiB',
      'max2',
      '0x10',
      '9223372036854771713',
      '18446744073709551615',
    ]) {
      expectInvalid(() => normalizeUnlimited(value));
    }
    expectInvalid(() => normalizeUnlimited(Number.NaN));
    expectInvalid(() => normalizeUnlimited(Number.POSITIVE_INFINITY));
    expectInvalid(() => normalizeUnlimited(2 ** 60));
    expectInvalid(() => normalizeUnlimited(2n ** 60n));
    expectInvalid(() => normalizeUnlimited(-(2n ** 60n)));
    expect(() => normalizeUnlimited({} as unknown as string)).toThrow(TypeError);
  });

  it('honours extra sentinels', () => {
    expect(normalizeUnlimited(0, { sentinels: [0] })).toBeNull();
    expect(normalizeUnlimited('0', { sentinels: [0] })).toBeNull();
    expect(normalizeUnlimited(' none ', { sentinels: ['none'] })).toBeNull();
    expect(normalizeUnlimited(1, { sentinels: [0] })).toBe(1);
  });
});
