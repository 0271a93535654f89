/**
 * Deterministic disk contents for the in-memory adapter: every block is generated from a seed, its index
 * and its generation (how often it was written), so a test can recompute what a backup must contain.
 */

/** Size of one block of a simulated disk: 64 KiB. Incremental backups copy whole blocks. */
export const IN_MEMORY_BLOCK_BYTES = 64 * 1024;

/** Length of the header before each block in an incremental (`.delta`) file: offset (8) + length (4). */
export const IN_MEMORY_DELTA_HEADER_BYTES = 12;

/** FNV-1a 32-bit hash of a string: turns a guest id and device into a disk seed. */
export function seedFromString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

function mix(a: number, b: number, c: number): number {
  // A few rounds of a 32-bit avalanche so nearby (index, generation) pairs give unrelated streams.
  let h = (a ^ Math.imul(b + 0x9e3779b9, 0x85ebca6b) ^ Math.imul(c + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h ^= h >>> 16;
  h = Math.imul(h, 0x7feb352d) >>> 0;
  h ^= h >>> 15;
  h = Math.imul(h, 0x846ca68b) >>> 0;
  h ^= h >>> 16;
  return h === 0 ? 0x6d2b79f5 : h;
}

/**
 * The bytes of one block: `length` bytes from an xorshift32 stream seeded by (seed, index, generation).
 * Pure and deterministic.
 */
export function generateBlock(seed: number, index: number, generation: number, length: number): Uint8Array {
  const words = Math.ceil(length / 4);
  const buf = new Uint32Array(words);
  let x = mix(seed, index, generation);
  for (let i = 0; i < words; i++) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    buf[i] = x;
  }
  return new Uint8Array(buf.buffer, 0, length);
}

/**
 * Applies an in-memory incremental file to the disk image it is relative to and returns the new image.
 *
 * Format of a `.delta` file: a sequence of records, each a 12-byte header (byte offset as unsigned 64-bit
 * big-endian, then data length as unsigned 32-bit big-endian) followed by the data. An image shorter than a
 * record's end is extended.
 *
 * @throws TypeError for a truncated or malformed delta.
 */
export function applyInMemoryDelta(base: Uint8Array, delta: Uint8Array): Uint8Array {
  let size = base.length;
  const records: { offset: number; start: number; length: number }[] = [];
  const view = new DataView(delta.buffer, delta.byteOffset, delta.byteLength);
  let pos = 0;
  while (pos < delta.length) {
    if (pos + IN_MEMORY_DELTA_HEADER_BYTES > delta.length)
      throw new TypeError(`truncated delta header at byte ${pos}`);
    const offset = Number(view.getBigUint64(pos));
    const length = view.getUint32(pos + 8);
    const start = pos + IN_MEMORY_DELTA_HEADER_BYTES;
    if (start + length > delta.length) throw new TypeError(`truncated delta record at byte ${pos}`);
    if (!Number.isSafeInteger(offset + length))
      throw new TypeError(`delta offset out of range at byte ${pos}`);
    records.push({ offset, start, length });
    size = Math.max(size, offset + length);
    pos = start + length;
  }
  const out = new Uint8Array(size);
  out.set(base);
  for (const r of records) out.set(delta.subarray(r.start, r.start + r.length), r.offset);
  return out;
}
