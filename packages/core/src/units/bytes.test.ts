import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { bytesToKib, bytesToKibExact, formatByteSize, kibToBytes, parseByteSize } from './bytes';

function expectInvalid(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT')).toBe(true);
    return;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('parseByteSize', () => {
  it.each([
    ['0', 0],
    ['4096', 4096],
    [' 4096 ', 4096],
    ['1B', 1],
    ['12 bytes', 12],
    ['7b', 7],
    ['1KiB', 1024],
    ['1 KiB', 1024],
    ['1kiB', 1024],
    ['1MiB', 1024 ** 2],
    ['1GiB', 1024 ** 3],
    ['1TiB', 1024 ** 4],
    ['2PiB', 2 * 1024 ** 5],
    ['1.5GiB', 1.5 * 1024 ** 3],
    ['0.5KiB', 512],
    ['1kB', 1000],
    ['1KB', 1000],
    ['1MB', 1_000_000],
    ['1.1MB', 1_100_000],
    ['3GB', 3_000_000_000],
    ['1TB', 1e12],
    ['1k', 1024],
    ['1K', 1024],
    ['256M', 256 * 1024 ** 2],
    ['256m', 256 * 1024 ** 2],
    ['2G', 2 * 1024 ** 3],
    ['1T', 1024 ** 4],
    ['007', 7],
  ])('%j = %d', (input, bytes) => {
    expect(parseByteSize(input)).toBe(bytes);
  });

  it('accepts non-negative safe numbers and bigints', () => {
    expect(parseByteSize(0)).toBe(0);
    expect(parseByteSize(Number.MAX_SAFE_INTEGER)).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseByteSize(123n)).toBe(123);
  });

  it('parses exactly (no floating-point error)', () => {
    // 1.1 * 1e6 is 1100000.0000000002 in floating point.
    expect(parseByteSize('1.1MB')).toBe(1_100_000);
    expect(parseByteSize('0.001GB')).toBe(1_000_000);
    expect(parseByteSize('8191.875KiB')).toBe(8_388_480);
  });

  it.each([
    '',
    '   ',
    'abc',
    '-1',
    '-1KiB',
    '+5',
    '1e3',
    '1.5',
    '1.1KiB',
    '0.3k',
    '1 KIB',
    '1 kib',
    '1Kb',
    '1 XB',
    '1 ZiB',
    '0x10',
    '1,024',
    '1 2',
    '.5K',
    '5.K',
    '10 KiB extra',
    'NaN',
    'Infinity',
    '9007199254740992',
    '8 EiB',
    '9P',
  ])('rejects %j with INVALID_ARGUMENT', (input) => {
    expectInvalid(() => parseByteSize(input));
  });

  it('rejects bad numbers', () => {
    for (const n of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53])
      expectInvalid(() => parseByteSize(n));
    expectInvalid(() => parseByteSize(-1n));
    expectInvalid(() => parseByteSize(2n ** 53n));
  });

  it('throws TypeError for other types', () => {
    expect(() => parseByteSize({} as unknown as string)).toThrow(TypeError);
  });

  it('keeps the largest safe value and refuses one more', () => {
    expect(parseByteSize('9007199254740991')).toBe(Number.MAX_SAFE_INTEGER);
    expect(parseByteSize('7 PiB')).toBe(7 * 1024 ** 5);
    expectInvalid(() => parseByteSize('8192 TiB'));
  });
});

describe('formatByteSize', () => {
  it.each([
    [0, '0 B'],
    [1, '1 B'],
    [1023, '1023 B'],
    [1024, '1 KiB'],
    [1536, '1.5 KiB'],
    [1024 ** 3, '1 GiB'],
    [1.25 * 1024 ** 3, '1.25 GiB'],
    [1048575, '1 MiB'],
    [1234567, '1.18 MiB'],
    [1024 ** 5, '1 PiB'],
    [Number.MAX_SAFE_INTEGER, '8 PiB'],
  ])('iec %d → %s', (bytes, text) => {
    expect(formatByteSize(bytes)).toBe(text);
  });

  it('formats SI units', () => {
    expect(formatByteSize(1000, { standard: 'si' })).toBe('1 kB');
    expect(formatByteSize(1_500_000, { standard: 'si' })).toBe('1.5 MB');
    expect(formatByteSize(999, { standard: 'si' })).toBe('999 B');
  });

  it('honours maximumFractionDigits and separator', () => {
    expect(formatByteSize(1234567, { maximumFractionDigits: 4 })).toBe('1.1774 MiB');
    expect(formatByteSize(1234567, { maximumFractionDigits: 0 })).toBe('1 MiB');
    expect(formatByteSize(2048, { separator: '' })).toBe('2KiB');
  });

  it('exact output reads back as the same value', () => {
    for (const bytes of [0, 1, 1023, 1536, 1024 ** 2, 3 * 1024 ** 3, 5 * 1024 ** 4 + 1024, 123456789]) {
      const text = formatByteSize(bytes, { exact: true });
      expect(parseByteSize(text)).toBe(bytes);
    }
    expect(formatByteSize(1536, { exact: true })).toBe('1536 B');
    expect(formatByteSize(3 * 1024 ** 3, { exact: true })).toBe('3 GiB');
    expect(formatByteSize(2_000_000, { exact: true, standard: 'si' })).toBe('2 MB');
    expect(parseByteSize(formatByteSize(2_000_000, { exact: true, standard: 'si' }))).toBe(2_000_000);
  });

  it('rejects invalid byte counts', () => {
    for (const n of [-1, 0.5, Number.NaN, 2 ** 53]) expectInvalid(() => formatByteSize(n));
  });
});

describe('libvirt KiB', () => {
  it('KiB → bytes is exact', () => {
    expect(kibToBytes(0)).toBe(0);
    expect(kibToBytes(1)).toBe(1024);
    expect(kibToBytes(1048576)).toBe(1024 ** 3);
    expect(kibToBytes('2097152')).toBe(2 * 1024 ** 3);
    expect(kibToBytes(4n)).toBe(4096);
    // The largest KiB value whose byte count is still a safe integer.
    expect(kibToBytes(Math.floor(Number.MAX_SAFE_INTEGER / 1024))).toBe(
      Math.floor(Number.MAX_SAFE_INTEGER / 1024) * 1024,
    );
  });

  it('KiB → bytes rejects unlimited, negatives and garbage', () => {
    expectInvalid(() => kibToBytes(9007199254740991));
    expectInvalid(() => kibToBytes(Math.floor(Number.MAX_SAFE_INTEGER / 1024) + 1));
    expectInvalid(() => kibToBytes(-1));
    expectInvalid(() => kibToBytes(1.5));
    expectInvalid(() => kibToBytes('12 KiB'));
    expectInvalid(() => kibToBytes(-3n));
  });

  it('bytes → KiB rounds up to the next whole KiB', () => {
    expect(bytesToKib(0)).toBe(0);
    expect(bytesToKib(1)).toBe(1);
    expect(bytesToKib(1023)).toBe(1);
    expect(bytesToKib(1024)).toBe(1);
    expect(bytesToKib(1025)).toBe(2);
    expect(bytesToKib(1024 ** 3)).toBe(1048576);
    expect(bytesToKib(Number.MAX_SAFE_INTEGER)).toBe(2 ** 43);
  });

  it('bytes → KiB exact refuses partial KiB', () => {
    expect(bytesToKibExact(2048)).toBe(2);
    expect(bytesToKibExact(0)).toBe(0);
    expectInvalid(() => bytesToKibExact(1025));
  });

  it('bytes → KiB rejects invalid input', () => {
    for (const n of [-1, 0.5, Number.NaN, 2 ** 53]) expectInvalid(() => bytesToKib(n));
  });

  it('round trips through KiB for multiples of 1024', () => {
    for (const bytes of [0, 1024, 4096 * 1024, 7 * 1024 ** 3])
      expect(kibToBytes(bytesToKib(bytes))).toBe(bytes);
  });
});
