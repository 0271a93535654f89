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

/** Expects `f` to throw an HvkitError of `code` from this module, with exactly this message and details. */
function refusal(
  f: () => unknown,
  code: 'PROTOCOL' | 'INVALID_ARGUMENT',
  message: string,
  details?: unknown,
): void {
  const error = expectCode(f, code);
  expect(error.message).toBe(`XDR ${code === 'PROTOCOL' ? 'decode' : 'encode'}: ${message}`);
  expect(error.adapter).toBe('kvm-libvirt');
  expect(error.details).toEqual(details);
}

/** A reader over `bytes` that starts at `start`: what it reads is at offsets from `start` on. */
const at = (start: number, ...bytes: number[]) => new XdrReader(Uint8Array.from(bytes), start);

describe('XdrReader: what each refusal says', () => {
  it('names the item, the bytes needed and left, and the offset of a truncated read', () => {
    const cases: [(r: XdrReader) => unknown, string][] = [
      [(r) => r.int(), 'int: need 4 bytes, 3 left'],
      [(r) => r.uint(), 'unsigned int: need 4 bytes, 3 left'],
      [(r) => r.hyper(), 'hyper: need 8 bytes, 3 left'],
      [(r) => r.uhyper(), 'unsigned hyper: need 8 bytes, 3 left'],
      [(r) => r.double(), 'double: need 8 bytes, 3 left'],
      [(r) => r.fixedOpaque(5), 'opaque[5]: need 5 bytes, 3 left'],
      [(r) => r.fixedCharArray(1), 'char[1]: need 4 bytes, 3 left'],
    ];
    for (const [read, message] of cases) {
      refusal(() => read(at(1, 9, 0, 0, 0)), 'PROTOCOL', `truncated ${message}`, { offset: 1 });
    }
    refusal(() => reader('00000005 616263').opaque(), 'PROTOCOL', 'truncated opaque: need 5 bytes, 3 left', {
      offset: 4,
    });
    refusal(() => reader('00000005 616263').string(), 'PROTOCOL', 'truncated string: need 5 bytes, 3 left', {
      offset: 4,
    });
    refusal(
      () => reader('00000001 61 0000').string(),
      'PROTOCOL',
      'truncated string padding: need 3 bytes, 2 left',
      {
        offset: 5,
      },
    );
    refusal(
      () => reader('6162 00').fixedOpaque(2),
      'PROTOCOL',
      'truncated opaque[2] padding: need 2 bytes, 1 left',
      {
        offset: 2,
      },
    );
    refusal(
      () => reader('00000001 61').opaque(),
      'PROTOCOL',
      'truncated opaque padding: need 3 bytes, 0 left',
      {
        offset: 5,
      },
    );
  });

  it('names the offset of the first non-zero padding byte', () => {
    refusal(() => reader('00000001 61 000100').string(), 'PROTOCOL', 'non-zero padding after string', {
      offset: 6,
    });
    refusal(() => reader('00000002 6162 0001').opaque(), 'PROTOCOL', 'non-zero padding after opaque', {
      offset: 7,
    });
    refusal(() => reader('61 010000').fixedOpaque(1), 'PROTOCOL', 'non-zero padding after opaque[1]', {
      offset: 1,
    });
    // No padding after a multiple of 4.
    expect(reader('61626364').fixedOpaque(4)).toEqual(Uint8Array.of(0x61, 0x62, 0x63, 0x64));
  });

  it('refuses a bool other than 0 or 1, and a char outside -128..255, at their offsets', () => {
    refusal(() => at(4, 0, 0, 0, 0, 0, 0, 0, 2).bool(), 'PROTOCOL', 'bool must be 0 or 1, got 2', {
      offset: 4,
    });
    expect(reader('00000001').bool()).toBe(true);
    const chars = (...values: number[]) => {
      const w = new XdrWriter();
      for (const v of values) w.int(v);
      return new XdrReader(w.bytes());
    };
    // -128 and 255 are the same byte 0x80 / 0xff a C char holds; as UTF-8 they are not valid on their own.
    expect(chars(0x41, -128, 255, 0x42).fixedCharArray(4)).toBe('A\uFFFD\uFFFDB');
    expect(chars(-61, -87).fixedCharArray(2)).toBe('é');
    refusal(() => chars(0x41, -129).fixedCharArray(2), 'PROTOCOL', 'char value -129 out of range', {
      offset: 4,
    });
    refusal(() => chars(256).fixedCharArray(1), 'PROTOCOL', 'char value 256 out of range', { offset: 0 });
  });

  it('reads a char array up to its first NUL, or whole when it has none', () => {
    const w = new XdrWriter();
    w.fixedCharArray('abcd', 4).fixedCharArray('ab', 4).charArray('xyz', 4);
    const r = new XdrReader(w.bytes());
    expect(r.fixedCharArray(4)).toBe('abcd');
    expect(r.fixedCharArray(4)).toBe('ab');
    expect(r.charArray(4)).toBe('xyz');
    r.finish();
  });

  it('refuses an array count the bytes left cannot hold, before reading an item', () => {
    refusal(
      () => reader('00000003 00000001 00000002').array(8, (x) => x.int()),
      'PROTOCOL',
      'array count 3 exceeds the 8 bytes left',
      {
        offset: 0,
      },
    );
    // Exactly enough bytes is fine; a larger minimum item size refuses sooner.
    expect(reader('00000002 00000001 00000002').array(8, (x) => x.int())).toEqual([1, 2]);
    refusal(
      () => reader('00000002 00000001 00000002').array(8, (x) => x.int(), 8),
      'PROTOCOL',
      'array count 2 exceeds the 8 bytes left',
      {
        offset: 0,
      },
    );
    expect(reader('00000002 00000001 00000002').array(8, (x) => x.int(), 4)).toEqual([1, 2]);
  });

  it('says how many bytes trail a payload, and where', () => {
    const r = reader('00000001 0000000200000003');
    r.int();
    refusal(() => r.finish(), 'PROTOCOL', '8 unexpected trailing bytes after payload', { offset: 4 });
    refusal(() => r.finish('remote_error'), 'PROTOCOL', '8 unexpected trailing bytes after remote_error', {
      offset: 4,
    });
    expect(r.remaining).toBe(8);
    expect(r.offset).toBe(4);
    expect(r.rest()).toEqual(Uint8Array.of(0, 0, 0, 2, 0, 0, 0, 3));
    expect(r.remaining).toBe(0);
    expect(r.offset).toBe(12);
    r.finish();
  });

  it('reads only its range of a larger buffer', () => {
    const bytes = Uint8Array.of(0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3);
    const r = new XdrReader(bytes, 4, 8);
    expect(r.offset).toBe(4);
    expect(r.remaining).toBe(4);
    expect(r.int()).toBe(2);
    refusal(() => r.int(), 'PROTOCOL', 'truncated int: need 4 bytes, 0 left', { offset: 8 });
    expect(new XdrReader(bytes, 12).remaining).toBe(0);
    expect(new XdrReader(bytes.subarray(4)).int()).toBe(2);
  });

  it('refuses a bad range or a non-byte input with TypeError', () => {
    const bytes = new Uint8Array(8);
    for (const [start, end] of [
      [1.5, 8],
      [0, 7.5],
      [-1, 8],
      [0, 9],
      [5, 4],
    ] as const) {
      expect(() => new XdrReader(bytes, start, end), `${start}-${end}`).toThrow('XdrReader: invalid range.');
    }
    expect(new XdrReader(bytes, 8, 8).remaining).toBe(0);
    expect(() => new XdrReader([0, 0, 0, 1] as unknown as Uint8Array)).toThrow(
      'XdrReader: bytes must be a Uint8Array.',
    );
  });
});

describe('XdrWriter: ranges and what each refusal says', () => {
  it('accepts each integer type exactly up to its bounds', () => {
    const w = new XdrWriter(0);
    w.int(-(2 ** 31))
      .int(2 ** 31 - 1)
      .uint(0)
      .uint(2 ** 32 - 1)
      .hyper(-(2n ** 63n))
      .hyper(2n ** 63n - 1n)
      .uhyper(0)
      .uhyper(2n ** 64n - 1n)
      .hyper(Number.MIN_SAFE_INTEGER);
    const r = new XdrReader(w.bytes());
    expect([r.int(), r.int(), r.uint(), r.uint()]).toEqual([-(2 ** 31), 2 ** 31 - 1, 0, 2 ** 32 - 1]);
    expect([r.hyper(), r.hyper(), r.uhyper(), r.uhyper(), r.hyper()]).toEqual([
      -(2n ** 63n),
      2n ** 63n - 1n,
      0n,
      2n ** 64n - 1n,
      BigInt(Number.MIN_SAFE_INTEGER),
    ]);
    r.finish();
  });

  it('names the value and the type it does not fit, or its own name for it', () => {
    const w = new XdrWriter();
    refusal(
      () => w.int(-(2 ** 31) - 1),
      'INVALID_ARGUMENT',
      'int must be a 32-bit signed integer, got -2147483649',
    );
    refusal(
      () => w.int(2 ** 31, 'weight'),
      'INVALID_ARGUMENT',
      'weight must be a 32-bit signed integer, got 2147483648',
    );
    refusal(
      () => w.uint(2 ** 32),
      'INVALID_ARGUMENT',
      'unsigned int must be a 32-bit unsigned integer, got 4294967296',
    );
    refusal(() => w.uint(0.5), 'INVALID_ARGUMENT', 'unsigned int must be a 32-bit unsigned integer, got 0.5');
    refusal(() => w.bool(1 as unknown as boolean), 'INVALID_ARGUMENT', 'bool must be a boolean, got number');
    refusal(() => w.hyper(-(2n ** 63n) - 1n), 'INVALID_ARGUMENT', 'hyper out of range: -9223372036854775809');
    refusal(
      () => w.uhyper(2n ** 64n),
      'INVALID_ARGUMENT',
      'unsigned hyper out of range: 18446744073709551616',
    );
    refusal(() => w.uhyper(-1, 'size'), 'INVALID_ARGUMENT', 'size out of range: -1');
    refusal(
      () => w.hyper('5' as unknown as number),
      'INVALID_ARGUMENT',
      'hyper must be a bigint or a safe integer, got 5',
    );
    refusal(
      () => w.hyper(2 ** 53),
      'INVALID_ARGUMENT',
      'hyper must be a bigint or a safe integer, got 9007199254740992',
    );
    refusal(
      () => w.double('1' as unknown as number),
      'INVALID_ARGUMENT',
      'double must be a number, got string',
    );
    refusal(() => w.opaque([1] as unknown as Uint8Array), 'INVALID_ARGUMENT', 'opaque must be a Uint8Array');
    refusal(
      () => w.opaque(new Uint8Array(5), 4, 'cookie'),
      'INVALID_ARGUMENT',
      'cookie is 5 bytes, more than its maximum 4',
    );
    refusal(
      () => w.fixedOpaque(new Uint8Array(15), 16, 'uuid'),
      'INVALID_ARGUMENT',
      'uuid must be exactly 16 bytes',
    );
    refusal(
      () => w.string(5 as unknown as string),
      'INVALID_ARGUMENT',
      'string must be a string, got number',
    );
    refusal(
      () => w.string('abc', 2, 'name'),
      'INVALID_ARGUMENT',
      'name is 3 bytes, more than its maximum 2',
      { max: 2 },
    );
    refusal(
      () => w.array('ab' as unknown as string[], 4, () => {}),
      'INVALID_ARGUMENT',
      'array must be an array',
    );
    refusal(
      () => w.array([1, 2], 1, () => {}, 'disks'),
      'INVALID_ARGUMENT',
      'disks has 2 items, more than its maximum 1',
    );
    refusal(() => w.fixedCharArray('abcde', 4), 'INVALID_ARGUMENT', 'char array is 5 bytes, more than 4');
    refusal(
      () => w.charArray('abcd', 4, 'model'),
      'INVALID_ARGUMENT',
      'model is 5 bytes with its NUL, more than 4',
    );
    expect(w.length).toBe(0);
  });

  it('writes items exactly at their maxima', () => {
    const w = new XdrWriter(16);
    w.opaque(new Uint8Array(4), 4)
      .string('ab', 2)
      .array([7], 1, (x, v) => x.int(v))
      .fixedCharArray('x'.repeat(32), 32)
      .charArray('abc', 4);
    const r = new XdrReader(w.bytes());
    expect(r.opaque(4)).toEqual(new Uint8Array(4));
    expect(r.string(2)).toBe('ab');
    expect(r.array(1, (x) => x.int())).toEqual([7]);
    expect(r.fixedCharArray(32)).toBe('x'.repeat(32));
    expect(r.charArray(4)).toBe('abc');
    r.finish();
  });

  it('writes absent optional values as a 0 flag', () => {
    const w = new XdrWriter();
    w.optString(undefined)
      .optional(undefined, (x, v: number) => x.int(v))
      .optional(null, (x, v: number) => x.int(v));
    expect(hex(w.bytes())).toBe('000000000000000000000000');
  });
});

describe('XDR helpers: bounds', () => {
  it('counts ±(2^53 − 1) as safe and nothing beyond', () => {
    const max = BigInt(Number.MAX_SAFE_INTEGER);
    expect([isSafeBigInt(max), isSafeBigInt(-max), isSafeBigInt(max + 1n), isSafeBigInt(-max - 1n)]).toEqual([
      true,
      true,
      false,
      false,
    ]);
    expect(toSafeNumber(-max)).toBe(-Number.MAX_SAFE_INTEGER);
  });

  it('names the value that does not fit a number, and refuses a non-bigint with TypeError', () => {
    const error = expectCode(() => toSafeNumber(2n ** 60n, 'capacity'), 'PROTOCOL');
    expect(error.message).toBe('capacity 1152921504606846976 does not fit a JavaScript number exactly');
    expect(error.adapter).toBe('kvm-libvirt');
    expect(error.details).toEqual({ value: '1152921504606846976' });
    expect(expectCode(() => toSafeNumber(-(2n ** 60n)), 'PROTOCOL').message).toMatch(
      /^value -1152921504606846976 /,
    );
    expect(() => toSafeNumber(1 as unknown as bigint)).toThrow('toSafeNumber: value must be a bigint.');
  });

  it('parses every hex digit in either case, and nothing next to them', () => {
    expect(formatUuid(parseUuid('0123456789abcdefABCDEF0123456789'))).toBe(
      '01234567-89ab-cdef-abcd-ef0123456789',
    );
    expect(formatUuid(parseUuid('-fedcba98-7654-3210-FEDC-BA9876543210-'))).toBe(
      'fedcba98-7654-3210-fedc-ba9876543210',
    );
    for (const c of ['/', ':', '@', 'G', '`', 'g', ' ']) {
      const uuid = `${c}${'0'.repeat(31)}`;
      const error = expectCode(() => parseUuid(uuid), 'INVALID_ARGUMENT');
      expect(error.message).toBe(`XDR encode: not a UUID: ${JSON.stringify(uuid)}`);
    }
    for (const uuid of ['0'.repeat(31), '0'.repeat(33), '0'.repeat(34), '']) {
      expect(expectCode(() => parseUuid(uuid), 'INVALID_ARGUMENT').message).toBe(
        `XDR encode: not a UUID: ${JSON.stringify(uuid)}`,
      );
    }
    expect(expectCode(() => parseUuid(7 as unknown as string), 'INVALID_ARGUMENT').message).toBe(
      'XDR encode: uuid must be a string',
    );
  });

  it('formats only 16 bytes', () => {
    expect(() => formatUuid(new Uint8Array(15))).toThrow('formatUuid: expected 16 bytes.');
    expect(() => formatUuid(Array(16).fill(0) as unknown as Uint8Array)).toThrow(
      'formatUuid: expected 16 bytes.',
    );
    expect(formatUuid(new Uint8Array(16).fill(0xff))).toBe('ffffffff-ffff-ffff-ffff-ffffffffffff');
  });
});
