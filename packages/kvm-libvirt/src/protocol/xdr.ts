/**
 * XDR (RFC 4506) as libvirt's RPC uses it: big-endian, 4-byte aligned, 64-bit integers as BigInt.
 *
 * The reader never trusts its input: every read checks the bytes left, every variable-length item is
 * checked against its declared maximum and the bytes left before anything is allocated, padding must be
 * present and zero. Any malformed input throws an HvkitError with code `PROTOCOL`, never a RangeError or
 * TypeError. The writer validates the values it is given and throws `INVALID_ARGUMENT` for values that
 * do not fit their XDR type.
 */

import { type HvkitError, hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

/** libvirt's `REMOTE_STRING_MAX` / `VIR_NET_MESSAGE_STRING_MAX`: 4 MiB. */
export const XDR_STRING_MAX = 4_194_304;

const INT32_MIN = -0x8000_0000;
const INT32_MAX = 0x7fff_ffff;
const UINT32_MAX = 0xffff_ffff;
const INT64_MIN = -(1n << 63n);
const INT64_MAX = (1n << 63n) - 1n;
const UINT64_MAX = (1n << 64n) - 1n;

const utf8Decoder = new TextDecoder('utf-8');
const utf8Encoder = new TextEncoder();

function protocolError(message: string, details?: Record<string, unknown>): HvkitError {
  return hvkitError('PROTOCOL', `XDR decode: ${message}`, { adapter: ADAPTER_ID, details });
}

function invalid(message: string, details?: Record<string, unknown>): HvkitError {
  return hvkitError('INVALID_ARGUMENT', `XDR encode: ${message}`, { adapter: ADAPTER_ID, details });
}

/** A string's UTF-8 bytes, checked for XDR `string<max>`. */
function stringBytes(s: string, max: number, what: string): Uint8Array {
  if (typeof s !== 'string') throw invalid(`${what} must be a string, got ${typeof s}`);
  // libvirt reads every string as a C string: the daemon would act on the part before a NUL.
  if (s.includes('\0')) throw invalid(`${what} contains a NUL byte`);
  const bytes = utf8Encoder.encode(s);
  if (bytes.length > max) {
    throw invalid(`${what} is ${bytes.length} bytes, more than its maximum ${max}`, { max });
  }
  return bytes;
}

function pad4(n: number): number {
  return (4 - (n & 3)) & 3;
}

/**
 * Reads XDR values from a byte range. Each method throws an HvkitError `PROTOCOL` when the input is
 * short, a length exceeds its maximum, padding is missing or non-zero, or a value is out of range.
 */
export class XdrReader {
  private readonly view: DataView;
  private pos: number;
  private readonly end: number;

  /**
   * @param bytes the buffer to read
   * @param start first byte (default 0)
   * @param end one past the last byte (default `bytes.length`)
   */
  constructor(
    private readonly bytes: Uint8Array,
    start = 0,
    end = bytes.length,
  ) {
    if (!(bytes instanceof Uint8Array)) throw new TypeError('XdrReader: bytes must be a Uint8Array.');
    if (
      !Number.isInteger(start) ||
      !Number.isInteger(end) ||
      start < 0 ||
      end > bytes.length ||
      start > end
    ) {
      throw new TypeError('XdrReader: invalid range.');
    }
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.pos = start;
    this.end = end;
  }

  /** Bytes not read yet. */
  get remaining(): number {
    return this.end - this.pos;
  }

  /** Current offset in the underlying buffer. */
  get offset(): number {
    return this.pos;
  }

  private need(n: number, what: string): void {
    if (n > this.end - this.pos) {
      throw protocolError(`truncated ${what}: need ${n} bytes, ${this.end - this.pos} left`, {
        offset: this.pos,
      });
    }
  }

  /** Signed 32-bit integer (`int`, `enum`). */
  int(): number {
    this.need(4, 'int');
    const v = this.view.getInt32(this.pos);
    this.pos += 4;
    return v;
  }

  /** Unsigned 32-bit integer. */
  uint(): number {
    this.need(4, 'unsigned int');
    const v = this.view.getUint32(this.pos);
    this.pos += 4;
    return v;
  }

  /** XDR `bool`: exactly 0 or 1. */
  bool(): boolean {
    const at = this.pos;
    const v = this.uint();
    if (v > 1) throw protocolError(`bool must be 0 or 1, got ${v}`, { offset: at });
    return v === 1;
  }

  /** Signed 64-bit integer (`hyper`). */
  hyper(): bigint {
    this.need(8, 'hyper');
    const v = this.view.getBigInt64(this.pos);
    this.pos += 8;
    return v;
  }

  /** Unsigned 64-bit integer (`unsigned hyper`). */
  uhyper(): bigint {
    this.need(8, 'unsigned hyper');
    const v = this.view.getBigUint64(this.pos);
    this.pos += 8;
    return v;
  }

  /** IEEE-754 double. */
  double(): number {
    this.need(8, 'double');
    const v = this.view.getFloat64(this.pos);
    this.pos += 8;
    return v;
  }

  private checkPadding(length: number, what: string): void {
    const p = pad4(length);
    this.need(p, `${what} padding`);
    for (let i = 0; i < p; i++) {
      if (this.bytes[this.pos + i] !== 0) {
        throw protocolError(`non-zero padding after ${what}`, { offset: this.pos + i });
      }
    }
    this.pos += p;
  }

  private length(max: number, what: string): number {
    const at = this.pos;
    const n = this.uint();
    if (n > max) throw protocolError(`${what} length ${n} exceeds its maximum ${max}`, { offset: at });
    return n;
  }

  /** Variable-length opaque data `opaque<max>` (a copy). */
  opaque(max: number = UINT32_MAX): Uint8Array {
    const n = this.length(max, 'opaque');
    this.need(n, 'opaque');
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    this.checkPadding(n, 'opaque');
    return out;
  }

  /** Fixed-length opaque data `opaque[n]` (a copy). */
  fixedOpaque(n: number): Uint8Array {
    this.need(n, `opaque[${n}]`);
    const out = this.bytes.slice(this.pos, this.pos + n);
    this.pos += n;
    this.checkPadding(n, `opaque[${n}]`);
    return out;
  }

  /** `string<max>` (libvirt `remote_nonnull_string`), UTF-8; invalid sequences become U+FFFD. */
  string(max: number = XDR_STRING_MAX): string {
    const n = this.length(max, 'string');
    this.need(n, 'string');
    const s = utf8Decoder.decode(this.bytes.subarray(this.pos, this.pos + n));
    this.pos += n;
    this.checkPadding(n, 'string');
    return s;
  }

  /** Optional data (`T *`): a bool, then the value when present. */
  optional<T>(read: (r: XdrReader) => T): T | null {
    return this.bool() ? read(this) : null;
  }

  /** `remote_string`: an optional string. */
  optString(max: number = XDR_STRING_MAX): string | null {
    return this.bool() ? this.string(max) : null;
  }

  /**
   * Variable-length array `T x<max>`. `minItemBytes` (at least 4 for any XDR item) lets a huge count be
   * refused before any element is read.
   */
  array<T>(max: number, read: (r: XdrReader) => T, minItemBytes = 4): T[] {
    const at = this.pos;
    const n = this.length(max, 'array');
    if (n * minItemBytes > this.end - this.pos) {
      throw protocolError(`array count ${n} exceeds the ${this.end - this.pos} bytes left`, { offset: at });
    }
    const out: T[] = new Array(n);
    for (let i = 0; i < n; i++) out[i] = read(this);
    return out;
  }

  private charsToString(chars: Uint8Array): string {
    const nul = chars.indexOf(0);
    return utf8Decoder.decode(nul >= 0 ? chars.subarray(0, nul) : chars);
  }

  private chars(n: number): Uint8Array {
    this.need(n * 4, `char[${n}]`);
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      const v = this.view.getInt32(this.pos);
      if (v < -128 || v > 255) throw protocolError(`char value ${v} out of range`, { offset: this.pos });
      out[i] = v & 0xff;
      this.pos += 4;
    }
    return out;
  }

  /** `char x[n]` (rpcgen: 4 bytes per char), up to the first NUL, as UTF-8. */
  fixedCharArray(n: number): string {
    return this.charsToString(this.chars(n));
  }

  /** `char x<max>` (rpcgen: count, then 4 bytes per char), up to the first NUL, as UTF-8. */
  charArray(max: number): string {
    const n = this.length(max, 'char array');
    return this.charsToString(this.chars(n));
  }

  /** The bytes not read yet (a copy); afterwards nothing is left. */
  rest(): Uint8Array {
    const out = this.bytes.slice(this.pos, this.end);
    this.pos = this.end;
    return out;
  }

  /**
   * Asserts that every byte was consumed; a reply with trailing bytes means the layout is not the one
   * expected.
   */
  finish(what = 'payload'): void {
    if (this.pos !== this.end) {
      throw protocolError(`${this.end - this.pos} unexpected trailing bytes after ${what}`, {
        offset: this.pos,
      });
    }
  }
}

/** Writes XDR values into a growing buffer. Values that do not fit their type throw `INVALID_ARGUMENT`. */
export class XdrWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(Math.max(16, initialSize));
    this.view = new DataView(this.buf.buffer);
  }

  /** Bytes written so far. */
  get length(): number {
    return this.pos;
  }

  private ensure(n: number): void {
    if (this.pos + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.pos + n) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  /** Signed 32-bit integer. */
  int(v: number, what = 'int'): this {
    if (!Number.isInteger(v) || v < INT32_MIN || v > INT32_MAX) {
      throw invalid(`${what} must be a 32-bit signed integer, got ${String(v)}`);
    }
    this.ensure(4);
    this.view.setInt32(this.pos, v);
    this.pos += 4;
    return this;
  }

  /** Unsigned 32-bit integer. */
  uint(v: number, what = 'unsigned int'): this {
    if (!Number.isInteger(v) || v < 0 || v > UINT32_MAX) {
      throw invalid(`${what} must be a 32-bit unsigned integer, got ${String(v)}`);
    }
    this.ensure(4);
    this.view.setUint32(this.pos, v);
    this.pos += 4;
    return this;
  }

  /** XDR bool. */
  bool(v: boolean): this {
    if (typeof v !== 'boolean') throw invalid(`bool must be a boolean, got ${typeof v}`);
    return this.uint(v ? 1 : 0);
  }

  private big(v: bigint | number, min: bigint, max: bigint, what: string): bigint {
    let b: bigint;
    if (typeof v === 'bigint') b = v;
    else if (typeof v === 'number' && Number.isSafeInteger(v)) b = BigInt(v);
    else throw invalid(`${what} must be a bigint or a safe integer, got ${String(v)}`);
    if (b < min || b > max) throw invalid(`${what} out of range: ${b}`);
    return b;
  }

  /** Signed 64-bit integer (accepts a bigint or a safe integer number). */
  hyper(v: bigint | number, what = 'hyper'): this {
    const b = this.big(v, INT64_MIN, INT64_MAX, what);
    this.ensure(8);
    this.view.setBigInt64(this.pos, b);
    this.pos += 8;
    return this;
  }

  /** Unsigned 64-bit integer (accepts a bigint or a safe non-negative integer number). */
  uhyper(v: bigint | number, what = 'unsigned hyper'): this {
    const b = this.big(v, 0n, UINT64_MAX, what);
    this.ensure(8);
    this.view.setBigUint64(this.pos, b);
    this.pos += 8;
    return this;
  }

  /** IEEE-754 double. */
  double(v: number, what = 'double'): this {
    if (typeof v !== 'number') throw invalid(`${what} must be a number, got ${typeof v}`);
    this.ensure(8);
    this.view.setFloat64(this.pos, v);
    this.pos += 8;
    return this;
  }

  private padding(n: number): void {
    const p = pad4(n);
    this.ensure(p);
    for (let i = 0; i < p; i++) this.buf[this.pos++] = 0;
  }

  /** Raw bytes without a length (for pre-encoded payloads). */
  raw(bytes: Uint8Array): this {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
    return this;
  }

  /** Variable-length opaque `opaque<max>`. */
  opaque(bytes: Uint8Array, max: number = UINT32_MAX, what = 'opaque'): this {
    if (!(bytes instanceof Uint8Array)) throw invalid(`${what} must be a Uint8Array`);
    if (bytes.length > max) throw invalid(`${what} is ${bytes.length} bytes, more than its maximum ${max}`);
    this.uint(bytes.length);
    this.raw(bytes);
    this.padding(bytes.length);
    return this;
  }

  /** Fixed-length opaque `opaque[n]`. */
  fixedOpaque(bytes: Uint8Array, n: number, what = 'opaque'): this {
    if (!(bytes instanceof Uint8Array) || bytes.length !== n) {
      throw invalid(`${what} must be exactly ${n} bytes`);
    }
    this.raw(bytes);
    this.padding(n);
    return this;
  }

  /** `string<max>` as UTF-8. */
  string(s: string, max: number = XDR_STRING_MAX, what = 'string'): this {
    return this.stringBytes(stringBytes(s, max, what));
  }

  /** `remote_string`: null, or the string. */
  optString(s: string | null | undefined, max: number = XDR_STRING_MAX, what = 'string'): this {
    if (s === null || s === undefined) return this.uint(0);
    const bytes = stringBytes(s, max, what);
    this.uint(1);
    return this.stringBytes(bytes);
  }

  private stringBytes(bytes: Uint8Array): this {
    this.uint(bytes.length);
    this.raw(bytes);
    this.padding(bytes.length);
    return this;
  }

  /** Optional data (`T *`). */
  optional<T>(value: T | null | undefined, write: (w: XdrWriter, v: T) => void): this {
    if (value === null || value === undefined) return this.uint(0);
    this.uint(1);
    write(this, value);
    return this;
  }

  /** Variable-length array `T x<max>`. */
  array<T>(items: readonly T[], max: number, write: (w: XdrWriter, v: T) => void, what = 'array'): this {
    if (!Array.isArray(items)) throw invalid(`${what} must be an array`);
    if (items.length > max) throw invalid(`${what} has ${items.length} items, more than its maximum ${max}`);
    this.uint(items.length);
    for (const item of items) write(this, item);
    return this;
  }

  /** `char x[n]` (4 bytes per char), NUL-padded. */
  fixedCharArray(s: string, n: number, what = 'char array'): this {
    const bytes = utf8Encoder.encode(s);
    if (bytes.length > n) throw invalid(`${what} is ${bytes.length} bytes, more than ${n}`);
    this.ensure(n * 4);
    for (let i = 0; i < n; i++) {
      this.view.setInt32(this.pos, i < bytes.length ? (bytes[i] as number) : 0);
      this.pos += 4;
    }
    return this;
  }

  /** `char x<max>` (count, then 4 bytes per char); a terminating NUL is appended, as libvirt does. */
  charArray(s: string, max: number, what = 'char array'): this {
    const bytes = utf8Encoder.encode(s);
    const n = bytes.length + 1;
    if (n > max) throw invalid(`${what} is ${n} bytes with its NUL, more than ${max}`);
    this.uint(n);
    this.ensure(n * 4);
    for (let i = 0; i < n; i++) {
      this.view.setInt32(this.pos, i < bytes.length ? (bytes[i] as number) : 0);
      this.pos += 4;
    }
    return this;
  }

  /** The bytes written (a view of the internal buffer; copy it before writing more). */
  bytes(): Uint8Array {
    return this.buf.subarray(0, this.pos);
  }
}

/** True when `value` converts to a number without losing precision. */
export function isSafeBigInt(value: bigint): boolean {
  return value >= BigInt(Number.MIN_SAFE_INTEGER) && value <= BigInt(Number.MAX_SAFE_INTEGER);
}

/**
 * Converts a 64-bit value to a number.
 *
 * @throws HvkitError `PROTOCOL` when the value is beyond ±(2^53 − 1) (use the bigint then).
 */
export function toSafeNumber(value: bigint, what = 'value'): number {
  if (typeof value !== 'bigint') throw new TypeError('toSafeNumber: value must be a bigint.');
  if (!isSafeBigInt(value)) {
    throw hvkitError('PROTOCOL', `${what} ${value} does not fit a JavaScript number exactly`, {
      adapter: ADAPTER_ID,
      details: { value: value.toString() },
    });
  }
  return Number(value);
}

/** Converts a 64-bit value to a number when exact, else keeps the bigint. */
export function numberIfSafe(value: bigint): number | bigint {
  return isSafeBigInt(value) ? Number(value) : value;
}

const HEX_BYTE = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, '0'));

/** Formats 16 UUID bytes as `xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx`. */
export function formatUuid(bytes: Uint8Array): string {
  if (!(bytes instanceof Uint8Array) || bytes.length !== 16) {
    throw new TypeError('formatUuid: expected 16 bytes.');
  }
  let out = '';
  for (let i = 0; i < 16; i++) {
    if (i === 4 || i === 6 || i === 8 || i === 10) out += '-';
    out += HEX_BYTE[bytes[i] as number];
  }
  return out;
}

function hexValue(c: number): number {
  if (c >= 0x30 && c <= 0x39) return c - 0x30;
  if (c >= 0x61 && c <= 0x66) return c - 0x57;
  if (c >= 0x41 && c <= 0x46) return c - 0x37;
  return -1;
}

/**
 * Parses a UUID (with or without dashes, any case) into 16 bytes.
 *
 * @throws HvkitError `INVALID_ARGUMENT` when it is not a UUID.
 */
export function parseUuid(uuid: string): Uint8Array {
  if (typeof uuid !== 'string') throw invalid('uuid must be a string');
  const out = new Uint8Array(16);
  let n = 0;
  let high = -1;
  for (let i = 0; i < uuid.length; i++) {
    const c = uuid.charCodeAt(i);
    if (c === 0x2d) continue; // '-'
    const v = hexValue(c);
    if (v < 0 || n === 16) throw invalid(`not a UUID: ${JSON.stringify(uuid)}`);
    if (high < 0) high = v;
    else {
      out[n++] = (high << 4) | v;
      high = -1;
    }
  }
  if (n !== 16 || high >= 0) throw invalid(`not a UUID: ${JSON.stringify(uuid)}`);
  return out;
}
