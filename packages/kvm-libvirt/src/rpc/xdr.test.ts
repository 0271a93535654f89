import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { LIMITS } from './constants';
import { readTypedParam, TYPED_PARAM, type TypedParam, writeTypedParam, writeTypedParams } from './types';
import { formatUuid, isSafeBigInt, numberIfSafe, parseUuid, toSafeNumber, XdrReader, XdrWriter } from './xdr';

function hex(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function reader(h: string): XdrReader {
  return new XdrReader(Uint8Array.from(Buffer.from(h.replace(/\s/g, ''), 'hex')));
}

function expectCode(f: () => unknown, code: string): HvkitError {
  let caught: unknown;
  try {
    f();
  } catch (error) {
    caught = error;
  }
  expect(HvkitError.isInstance(caught), `expected an HvkitError, got ${String(caught)}`).toBe(true);
  expect((caught as HvkitError).code).toBe(code);
  return caught as HvkitError;
}

describe('XdrWriter', () => {
  it('writes integers big-endian, 4 bytes each, and 64-bit values as 8 bytes', () => {
    const w = new XdrWriter(16);
    w.int(-2)
      .uint(0xdeadbeef)
      .hyper(-1n)
      .uhyper(2n ** 64n - 1n)
      .bool(true)
      .double(1.5);
    expect(hex(w.bytes())).toBe(
      'fffffffe' + 'deadbeef' + 'ffffffffffffffff' + 'ffffffffffffffff' + '00000001' + '3ff8000000000000',
    );
  });

  it('pads strings and opaque data with zeros to a multiple of 4, without a NUL', () => {
    const w = new XdrWriter();
    w.string('abcde').opaque(Uint8Array.of(1, 2)).string('');
    expect(hex(w.bytes())).toBe('00000005' + '6162636465000000' + '00000002' + '01020000' + '00000000');
  });

  it('writes remote_string as a pointer flag then the string', () => {
    const w = new XdrWriter();
    w.optString(null).optString('qemu:///system');
    expect(hex(w.bytes()).slice(0, 16)).toBe('0000000000000001');
    expect(new XdrReader(w.bytes()).optString()).toBeNull();
  });

  it('writes char arrays with 4 bytes per char', () => {
    const w = new XdrWriter();
    w.fixedCharArray('ab', 4).charArray('x', 8);
    expect(hex(w.bytes())).toBe(
      '00000061' + '00000062' + '00000000' + '00000000' + '00000002' + '00000078' + '00000000',
    );
  });

  it('refuses values that do not fit their type with INVALID_ARGUMENT', () => {
    const w = new XdrWriter();
    expectCode(() => w.int(2 ** 31), 'INVALID_ARGUMENT');
    expectCode(() => w.int(1.5), 'INVALID_ARGUMENT');
    expectCode(() => w.uint(-1), 'INVALID_ARGUMENT');
    expectCode(() => w.hyper(2n ** 63n), 'INVALID_ARGUMENT');
    expectCode(() => w.uhyper(-1n), 'INVALID_ARGUMENT');
    expectCode(() => w.uhyper(2 ** 60), 'INVALID_ARGUMENT');
    expectCode(() => w.string('x'.repeat(9), 8), 'INVALID_ARGUMENT');
    expectCode(() => w.array([1, 2, 3], 2, (x, v) => x.int(v)), 'INVALID_ARGUMENT');
    expectCode(() => w.fixedOpaque(new Uint8Array(3), 16), 'INVALID_ARGUMENT');
    // The writer stays usable and wrote nothing for the refused values.
    expect(w.length).toBe(0);
  });

  it('refuses a string with a NUL byte (libvirt reads C strings: the daemon would see only the part before it)', () => {
    const w = new XdrWriter();
    const error = expectCode(() => w.string('hvkit-guest1\0evil', 4096, 'domain name'), 'INVALID_ARGUMENT');
    expect(error.message).toMatch(/domain name contains a NUL byte/);
    expectCode(() => w.optString('a\0', 4096), 'INVALID_ARGUMENT');
    expect(w.length).toBe(0);
  });

  it('grows its buffer for large payloads', () => {
    const w = new XdrWriter(16);
    const big = new Uint8Array(100_000).fill(7);
    w.opaque(big);
    const r = new XdrReader(w.bytes());
    expect(Buffer.from(r.opaque()).equals(Buffer.from(big))).toBe(true);
    r.finish();
  });
});

describe('XdrReader', () => {
  it('round-trips every primitive', () => {
    const w = new XdrWriter();
    w.int(-123)
      .uint(4_000_000_000)
      .hyper(-(2n ** 62n))
      .uhyper(1_795_700_604_092_414_000n)
      .double(-0.25);
    w.bool(false)
      .string('héllo')
      .opaque(Uint8Array.of(9, 8, 7))
      .fixedOpaque(Uint8Array.of(1, 2, 3, 4, 5), 5);
    w.array(['a', 'bb'], 4, (x, v) => x.string(v)).optional(7, (x, v) => x.int(v));
    const r = new XdrReader(w.bytes());
    expect(r.int()).toBe(-123);
    expect(r.uint()).toBe(4_000_000_000);
    expect(r.hyper()).toBe(-(2n ** 62n));
    expect(r.uhyper()).toBe(1_795_700_604_092_414_000n);
    expect(r.double()).toBe(-0.25);
    expect(r.bool()).toBe(false);
    expect(r.string()).toBe('héllo');
    expect(r.opaque()).toEqual(Uint8Array.of(9, 8, 7));
    expect(r.fixedOpaque(5)).toEqual(Uint8Array.of(1, 2, 3, 4, 5));
    expect(r.array(4, (x) => x.string())).toEqual(['a', 'bb']);
    expect(r.optional((x) => x.int())).toBe(7);
    r.finish();
  });

  it('reads char[32] (4 bytes per char) up to the NUL, as NODE_GET_INFO sends it', () => {
    const w = new XdrWriter();
    w.fixedCharArray('x86_64', 32);
    expect(w.length).toBe(128);
    expect(new XdrReader(w.bytes()).fixedCharArray(32)).toBe('x86_64');
  });

  it('reads char<257> with its counted NUL, as NODE_GET_SECURITY_MODEL sends it', () => {
    // count 13, then "testSecurity\0", 4 bytes per char.
    const chars = [...'testSecurity'].map((c) => c.charCodeAt(0).toString(16).padStart(8, '0')).join('');
    const r = reader(`0000000d${chars}00000000`);
    expect(r.charArray(LIMITS.SECURITY_MODEL_MAX)).toBe('testSecurity');
    r.finish();
  });

  it('throws PROTOCOL on truncated input, never RangeError', () => {
    expectCode(() => reader('000000').int(), 'PROTOCOL');
    expectCode(() => reader('00000000 000000').hyper(), 'PROTOCOL');
    expectCode(() => reader('00000005 6162').string(), 'PROTOCOL');
    expectCode(() => reader('00000003 616263').string(), 'PROTOCOL'); // padding missing
    expectCode(() => reader('00000001').fixedCharArray(2), 'PROTOCOL');
  });

  it('throws PROTOCOL on lengths and counts beyond their maxima or the bytes left', () => {
    expectCode(() => reader('00400001').string(), 'PROTOCOL'); // 4 MiB + 1
    expectCode(() => reader('00000009 00000000').string(8), 'PROTOCOL');
    expectCode(() => reader('00004001').array(16384, (x) => x.int()), 'PROTOCOL');
    // A count within the maximum but far beyond the bytes left is refused before allocating.
    expectCode(() => reader('00003fff 00000001').array(16384, (x) => x.int()), 'PROTOCOL');
    expectCode(() => reader('ffffffff').opaque(), 'PROTOCOL');
  });

  it('refuses a length beyond its maximum even when the bytes are all there', () => {
    // Each declared length is one over its maximum and followed by enough bytes to read it, so only the
    // maximum can refuse it.
    const over = (max: number, itemBytes: number) => {
      const w = new XdrWriter();
      w.uint(max + 1).raw(new Uint8Array((max + 1) * itemBytes + 4));
      return new XdrReader(w.bytes());
    };
    const refused = (f: () => unknown, what: string, max: number) => {
      const error = expectCode(f, 'PROTOCOL');
      expect(error.message).toBe(`XDR decode: ${what} length ${max + 1} exceeds its maximum ${max}`);
      expect(error.details).toEqual({ offset: 0 });
    };
    refused(() => over(8, 1).string(8), 'string', 8);
    refused(() => over(7, 1).opaque(7), 'opaque', 7);
    refused(() => over(3, 4).array(3, (x) => x.int()), 'array', 3);
    refused(() => over(4, 4).charArray(4), 'char array', 4);
    const present = new XdrWriter().uint(1).uint(5).raw(new Uint8Array(8));
    const error = expectCode(() => new XdrReader(present.bytes()).optString(4), 'PROTOCOL');
    expect(error.message).toBe('XDR decode: string length 5 exceeds its maximum 4');
    // Exactly at the maximum is fine.
    const w = new XdrWriter();
    w.string('x'.repeat(8))
      .opaque(new Uint8Array(7))
      .array([1, 2, 3], 3, (x, v) => x.int(v))
      .charArray('abc', 4);
    const r = new XdrReader(w.bytes());
    expect(r.string(8)).toBe('xxxxxxxx');
    expect(r.opaque(7)).toEqual(new Uint8Array(7));
    expect(r.array(3, (x) => x.int())).toEqual([1, 2, 3]);
    expect(r.charArray(4)).toBe('abc');
    r.finish();
  });

  it('throws PROTOCOL on non-zero padding, bad bools, bad chars and trailing bytes', () => {
    expectCode(() => reader('00000001 61000100').string(), 'PROTOCOL');
    expectCode(() => reader('00000002').bool(), 'PROTOCOL');
    expectCode(() => reader('00000001 00000100').charArray(4), 'PROTOCOL');
    const r = reader('00000001 00000002');
    r.int();
    expectCode(() => r.finish(), 'PROTOCOL');
  });

  it('rejects misuse with TypeError', () => {
    expect(() => new XdrReader('x' as unknown as Uint8Array)).toThrow(TypeError);
    expect(() => new XdrReader(new Uint8Array(4), 3, 2)).toThrow(TypeError);
  });
});

describe('typed parameters', () => {
  const all: TypedParam[] = [
    { field: 'i', type: TYPED_PARAM.INT, value: -5 },
    { field: 'u', type: TYPED_PARAM.UINT, value: 4_000_000_000 },
    { field: 'l', type: TYPED_PARAM.LLONG, value: -1n },
    { field: 'ul', type: TYPED_PARAM.ULLONG, value: 2n ** 64n - 1n },
    { field: 'd', type: TYPED_PARAM.DOUBLE, value: 0.5 },
    { field: 'b', type: TYPED_PARAM.BOOLEAN, value: true },
    { field: 's', type: TYPED_PARAM.STRING, value: '/dev/vda,100' },
  ];

  it('round-trips all 7 types', () => {
    const w = new XdrWriter();
    writeTypedParams(w, all, 16);
    const r = new XdrReader(w.bytes());
    expect(r.array(16, readTypedParam)).toEqual(all);
    r.finish();
  });

  it('encodes the wire form field, type, value', () => {
    const w = new XdrWriter();
    writeTypedParam(w, { field: 'weight', type: TYPED_PARAM.UINT, value: 100 });
    expect(hex(w.bytes())).toBe('00000006' + '776569676874' + '0000' + '00000002' + '00000064');
  });

  it('accepts numbers for 64-bit types and 0/1 for booleans, bigint for 32-bit types in range', () => {
    const w = new XdrWriter();
    writeTypedParam(w, { field: 'cpu_shares', type: TYPED_PARAM.ULLONG, value: 1024 });
    writeTypedParam(w, { field: 'b', type: TYPED_PARAM.BOOLEAN, value: 1 });
    writeTypedParam(w, { field: 'u', type: TYPED_PARAM.UINT, value: 7n });
    const r = new XdrReader(w.bytes());
    expect(readTypedParam(r).value).toBe(1024n);
    expect(readTypedParam(r).value).toBe(true);
    expect(readTypedParam(r).value).toBe(7);
  });

  it('refuses bad parameters with INVALID_ARGUMENT', () => {
    const w = new XdrWriter();
    expectCode(
      () => writeTypedParam(w, { field: 'x'.repeat(80), type: TYPED_PARAM.INT, value: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => writeTypedParam(w, { field: 'u', type: TYPED_PARAM.UINT, value: -1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => writeTypedParam(w, { field: 'i', type: TYPED_PARAM.INT, value: 2n ** 31n }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => writeTypedParam(w, { field: 'l', type: TYPED_PARAM.LLONG, value: 2 ** 60 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => writeTypedParam(w, { field: 's', type: TYPED_PARAM.STRING, value: 5 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => writeTypedParam(w, { field: 'b', type: TYPED_PARAM.BOOLEAN, value: 2 }),
      'INVALID_ARGUMENT',
    );
    expectCode(
      () => writeTypedParam(w, { field: 'z', type: 9 as typeof TYPED_PARAM.INT, value: 1 }),
      'INVALID_ARGUMENT',
    );
    expectCode(() => writeTypedParams(w, new Array(17).fill(all[0]), 16), 'INVALID_ARGUMENT');
  });

  it('refuses an unknown type on decode with PROTOCOL', () => {
    const w = new XdrWriter();
    w.string('f').int(8).int(0);
    expectCode(() => readTypedParam(new XdrReader(w.bytes())), 'PROTOCOL');
  });
});

describe('helpers', () => {
  it('converts 64-bit values to numbers only when exact', () => {
    expect(toSafeNumber(3_145_728n)).toBe(3_145_728);
    expect(isSafeBigInt(2n ** 53n)).toBe(false);
    expect(numberIfSafe(2n ** 53n)).toBe(2n ** 53n);
    expect(numberIfSafe(-1n)).toBe(-1);
    expectCode(() => toSafeNumber(1_795_700_604_092_414_000n), 'PROTOCOL');
  });

  it('formats and parses UUIDs', () => {
    const uuid = '68766b69-7431-4000-8000-000000000001';
    expect(formatUuid(parseUuid(uuid))).toBe(uuid);
    expect(formatUuid(parseUuid(uuid.replace(/-/g, '').toUpperCase()))).toBe(uuid);
    expectCode(() => parseUuid('not-a-uuid'), 'INVALID_ARGUMENT');
  });
});
