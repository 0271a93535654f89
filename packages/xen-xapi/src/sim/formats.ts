/**
 * The byte formats the simulator's HTTP endpoints produce and accept, each a documented subset of the real
 * one (docs/adapters/xen-xapi.md, "Simulator formats"):
 *
 * - **tar** (POSIX ustar): regular files only, names up to 100 bytes, no extensions; the archive ends with
 *   two zero records.
 * - **VHD** (Microsoft VHD 1.0, as `vhd-tool` streams it): a dynamic disk only, 2 MiB blocks (each a
 *   512-byte sector bitmap, all ones, then the data), the BAT right after the dynamic header, a footer
 *   copy at both ends, checksums as the specification defines them. No parent locators: a delta against
 *   `base` is a dynamic disk whose allocated blocks are the changed ones (XAPI's `export_raw_vdi` with
 *   `base` does the same), and an import writes only the allocated blocks.
 * - **XVA** (XAPI's export format, version 2): `ova.xml` (an XML-RPC struct `{version, objects}` whose
 *   objects are `{class, id, snapshot}` records with `Ref:<n>` ids) then, per disk, its non-zero 1 MiB
 *   chunks as `Ref:<n>/<8-digit chunk number>` each followed by `<name>.checksum` (SHA-1, hex). Chunks
 *   not in the archive are zeros.
 */

import { createHash } from 'node:crypto';

/** Size of a tar record. */
const RECORD = 512;

/** One tar member. */
export interface TarEntry {
  name: string;
  data: Uint8Array;
}

function octal(value: number, width: number): string {
  return `${value.toString(8).padStart(width - 1, '0')}\0`;
}

/** The 512-byte ustar header of a regular file (mode 0644, owner 0, mtime 0: deterministic). */
export function tarHeader(name: string, size: number): Buffer {
  const h = Buffer.alloc(RECORD);
  const nameBytes = Buffer.from(name, 'utf8');
  if (nameBytes.length > 100) throw new RangeError(`tar: name ${name} is longer than 100 bytes`);
  nameBytes.copy(h, 0);
  h.write(octal(0o644, 8), 100, 'latin1');
  h.write(octal(0, 8), 108, 'latin1');
  h.write(octal(0, 8), 116, 'latin1');
  h.write(octal(size, 12), 124, 'latin1');
  h.write(octal(0, 12), 136, 'latin1');
  h.write('        ', 148, 'latin1');
  h.write('0', 156, 'latin1');
  h.write('ustar\u000000', 257, 'latin1');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
  return h;
}

/** A tar member as the chunks of its archive form (header, data, padding). */
export function* tarMember(entry: TarEntry): Generator<Uint8Array> {
  yield tarHeader(entry.name, entry.data.byteLength);
  if (entry.data.byteLength > 0) yield entry.data;
  const pad = (RECORD - (entry.data.byteLength % RECORD)) % RECORD;
  if (pad > 0) yield Buffer.alloc(pad);
}

/** The end of a tar archive (two zero records). */
export const TAR_END: Uint8Array = new Uint8Array(2 * RECORD);

/**
 * Reads a whole ustar archive.
 *
 * @throws Error with a reason for anything else (bad checksum, truncated member, non-file member).
 */
export function readTar(bytes: Uint8Array): TarEntry[] {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: TarEntry[] = [];
  let at = 0;
  for (;;) {
    if (at + RECORD > buf.length) throw new Error('tar: truncated archive');
    const h = buf.subarray(at, at + RECORD);
    if (h.every((b) => b === 0)) return out;
    let sum = 0;
    for (let i = 0; i < RECORD; i++) sum += i >= 148 && i < 156 ? 32 : (h[i] as number);
    if (Number.parseInt(h.toString('latin1', 148, 156).replace(/\0.*$/, '').trim(), 8) !== sum)
      throw new Error('tar: bad header checksum');
    const type = h.toString('latin1', 156, 157);
    if (type !== '0' && type !== '\0')
      throw new Error(`tar: member type ${JSON.stringify(type)} is not a file`);
    const name = h.toString('utf8', 0, 100).replace(/\0.*$/s, '');
    const size = Number.parseInt(h.toString('latin1', 124, 136).replace(/\0.*$/, '').trim(), 8);
    if (!Number.isSafeInteger(size) || size < 0) throw new Error('tar: bad member size');
    at += RECORD;
    if (at + size > buf.length) throw new Error(`tar: member ${name} is truncated`);
    out.push({ name, data: buf.subarray(at, at + size) });
    at += size + ((RECORD - (size % RECORD)) % RECORD);
  }
}

/** The VHD block size the simulator writes and reads (2 MiB, the size XAPI's VHDs use). */
export const VHD_BLOCK_BYTES = 2 * 1024 * 1024;
const SECTOR = 512;
/** A block's sector bitmap: one bit per sector, padded to a sector. */
const BITMAP_BYTES = SECTOR;
/** VHD timestamps count seconds from 2000-01-01T00:00:00Z; the simulator writes 0 (deterministic). */
const VHD_EPOCH_ZERO = 0;

function vhdChecksum(buf: Buffer, skipAt: number): number {
  let sum = 0;
  for (let i = 0; i < buf.length; i++) if (i < skipAt || i >= skipAt + 4) sum += buf[i] as number;
  return ~sum >>> 0;
}

/** The 512-byte VHD footer of a dynamic disk of `size` bytes with the given (deterministic) id. */
function vhdFooter(size: number, id: Uint8Array): Buffer {
  const f = Buffer.alloc(SECTOR);
  f.write('conectix', 0, 'latin1');
  f.writeUInt32BE(2, 8); // features: reserved bit
  f.writeUInt32BE(0x00010000, 12); // format version 1.0
  f.writeBigUInt64BE(BigInt(SECTOR), 16); // data offset: the dynamic header
  f.writeUInt32BE(VHD_EPOCH_ZERO, 24);
  f.write('hvks', 28, 'latin1'); // creator application
  f.writeUInt32BE(0x00010000, 32);
  f.write('Wi2k', 36, 'latin1');
  f.writeBigUInt64BE(BigInt(size), 40);
  f.writeBigUInt64BE(BigInt(size), 48);
  // CHS geometry as the specification computes it (capped at 65535 x 16 x 255).
  const sectors = Math.min(Math.floor(size / SECTOR), 65535 * 16 * 255);
  let spt = 17;
  let heads = Math.max(4, Math.ceil(sectors / spt / 1024));
  if (sectors >= 65535 * 16 * 63) {
    spt = 255;
    heads = 16;
  } else if (heads > 16) {
    spt = 31;
    heads = Math.min(16, Math.max(heads, Math.ceil(sectors / spt / 1024)));
    if (heads > 16 || sectors / spt / heads >= 1024) {
      spt = 63;
      heads = 16;
    }
  }
  const cyl = Math.min(65535, Math.floor(sectors / spt / heads));
  f.writeUInt16BE(cyl, 56);
  f.writeUInt8(heads, 58);
  f.writeUInt8(spt, 59);
  f.writeUInt32BE(3, 60); // disk type: dynamic
  Buffer.from(id).copy(f, 68, 0, 16);
  f.writeUInt32BE(vhdChecksum(f, 64), 64);
  return f;
}

/**
 * A dynamic VHD of a disk of `size` bytes whose allocated blocks are `blocks` (block index -> its
 * {@link VHD_BLOCK_BYTES} bytes), as chunks.
 */
export function* writeVhd(
  size: number,
  blocks: ReadonlyMap<number, Uint8Array>,
  id: Uint8Array,
): Generator<Uint8Array> {
  const entries = Math.ceil(size / VHD_BLOCK_BYTES);
  const batBytes = Math.ceil((entries * 4) / SECTOR) * SECTOR;
  const footer = vhdFooter(size, id);
  const header = Buffer.alloc(1024);
  header.write('cxsparse', 0, 'latin1');
  header.writeBigUInt64BE(0xffffffffffffffffn, 8);
  header.writeBigUInt64BE(BigInt(SECTOR + 1024), 16); // BAT offset
  header.writeUInt32BE(0x00010000, 24);
  header.writeUInt32BE(entries, 28);
  header.writeUInt32BE(VHD_BLOCK_BYTES, 32);
  header.writeUInt32BE(vhdChecksum(header, 36), 36);
  const bat = Buffer.alloc(batBytes, 0xff);
  const order = [...blocks.keys()].filter((k) => k >= 0 && k < entries).sort((a, b) => a - b);
  let sector = (SECTOR + 1024 + batBytes) / SECTOR;
  for (const k of order) {
    bat.writeUInt32BE(sector, k * 4);
    sector += (BITMAP_BYTES + VHD_BLOCK_BYTES) / SECTOR;
  }
  yield footer;
  yield header;
  yield bat;
  const bitmap = Buffer.alloc(BITMAP_BYTES, 0xff);
  for (const k of order) {
    yield bitmap;
    const data = blocks.get(k) as Uint8Array;
    yield data.byteLength === VHD_BLOCK_BYTES ? data : padded(data, VHD_BLOCK_BYTES);
  }
  yield footer;
}

function padded(data: Uint8Array, length: number): Uint8Array {
  const out = new Uint8Array(length);
  out.set(data.subarray(0, length));
  return out;
}

/** A parsed VHD: its virtual size and its allocated blocks. */
export interface ParsedVhd {
  size: number;
  blocks: Map<number, Uint8Array>;
}

/**
 * Reads a dynamic VHD (the subset {@link writeVhd} writes: sector bitmaps are not consulted, an allocated
 * block is taken whole).
 *
 * @throws Error with a reason for anything else.
 */
export function readVhd(bytes: Uint8Array): ParsedVhd {
  const buf = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (buf.length < SECTOR + 1024) throw new Error('vhd: too short');
  const footer = buf.subarray(0, SECTOR);
  if (footer.toString('latin1', 0, 8) !== 'conectix') throw new Error('vhd: no footer cookie');
  if (footer.readUInt32BE(64) !== vhdChecksum(footer, 64)) throw new Error('vhd: bad footer checksum');
  if (footer.readUInt32BE(60) !== 3) throw new Error('vhd: only dynamic disks are accepted');
  const size = Number(footer.readBigUInt64BE(48));
  const headerAt = Number(footer.readBigUInt64BE(16));
  const header = buf.subarray(headerAt, headerAt + 1024);
  if (header.length < 1024 || header.toString('latin1', 0, 8) !== 'cxsparse')
    throw new Error('vhd: no dynamic header');
  if (header.readUInt32BE(36) !== vhdChecksum(header, 36)) throw new Error('vhd: bad header checksum');
  const blockBytes = header.readUInt32BE(32);
  if (blockBytes !== VHD_BLOCK_BYTES) throw new Error(`vhd: block size ${blockBytes} is not 2 MiB`);
  const entries = header.readUInt32BE(28);
  const batAt = Number(header.readBigUInt64BE(16));
  if (entries !== Math.ceil(size / VHD_BLOCK_BYTES) || batAt + entries * 4 > buf.length)
    throw new Error('vhd: bad block table');
  const blocks = new Map<number, Uint8Array>();
  for (let k = 0; k < entries; k++) {
    const sector = buf.readUInt32BE(batAt + k * 4);
    if (sector === 0xffffffff) continue;
    const at = sector * SECTOR + BITMAP_BYTES;
    if (at + VHD_BLOCK_BYTES > buf.length) throw new Error(`vhd: block ${k} is truncated`);
    blocks.set(k, buf.subarray(at, at + VHD_BLOCK_BYTES));
  }
  return { size, blocks };
}

/** SHA-1 hex of bytes (XVA chunk checksums). */
export function sha1Hex(data: Uint8Array): string {
  return createHash('sha1').update(data).digest('hex');
}
