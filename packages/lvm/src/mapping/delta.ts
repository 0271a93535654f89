/**
 * Thin incremental backups: what `thin_delta` (thin-provisioning-tools) says changed between two thin
 * devices of a pool, and the file format an incremental artifact stores the changed blocks in.
 *
 * `thin_delta -m --snap1 A --snap2 B <metadata device>` prints
 *
 * ```xml
 * <superblock uuid="" time="2" transaction="3" data_block_size="128" nr_data_blocks="0">
 *   <diff left="2" right="3">
 *     <same begin="0" length="160"/>
 *     <different begin="160" length="16"/>
 *     <same begin="176" length="848"/>
 *   </diff>
 * </superblock>
 * ```
 *
 * in blocks of `data_block_size` sectors of 512 bytes. `different` and `right_only` blocks hold new data;
 * `left_only` blocks are unmapped in the newer device (read as zeros).
 *
 * The delta file (`disk.incremental: 'hvkit-lvm-thin-delta-v1'`) is a sequence of records, each a 17-byte
 * header (kind: 1 = data, 2 = zeros; offset and length in bytes, unsigned 64-bit big-endian) followed, for
 * data, by `length` bytes to write at `offset`.
 */

import { hvkitError, parseXml, type XmlValue, xmlArray, xmlAttr } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

/** The `disk.incremental` scheme of a delta file. */
export const DELTA_SCHEME = 'hvkit-lvm-thin-delta-v1';
/** Bytes of a record header. */
export const DELTA_HEADER_BYTES = 17;
/** Record kinds. */
export const DELTA_DATA = 1;
export const DELTA_ZERO = 2;

/** A byte range of the volume. */
export interface DeltaRange {
  kind: 'data' | 'zero';
  offset: number;
  length: number;
}

function protocol(message: string) {
  return hvkitError('PROTOCOL', `thin_delta: ${message}`, { adapter: ADAPTER_ID, operation: 'thin_delta' });
}

function int(value: string | undefined, what: string): number {
  const n = value !== undefined && /^\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw protocol(`${what} ${JSON.stringify(value)} is not a whole number.`);
  return n;
}

/**
 * Reads `thin_delta` output into byte ranges of a volume of `volumeBytes`, sorted, neighbours of one kind
 * merged, clipped to the volume.
 *
 * @throws HvkitError `PROTOCOL` for output of another shape.
 */
export function parseThinDelta(xml: string, volumeBytes: number): DeltaRange[] {
  const doc = parseXml(xml, { adapter: ADAPTER_ID, operation: 'thin_delta', maxBytes: 64 * 1024 * 1024 });
  const sb = doc.superblock as XmlValue | undefined;
  if (sb === undefined || typeof sb === 'string' || Array.isArray(sb)) throw protocol('no <superblock>.');
  const blockBytes = int(xmlAttr(sb, 'data_block_size'), 'data_block_size') * 512;
  if (blockBytes <= 0) throw protocol('data_block_size is 0.');
  const diffs = xmlArray(sb.diff as XmlValue | XmlValue[] | undefined);
  if (diffs.length !== 1) throw protocol(`${diffs.length} <diff> elements, not 1.`);
  const diff = diffs[0] as XmlValue;
  if (typeof diff === 'string' || Array.isArray(diff)) throw protocol('<diff> is empty.');
  const ranges: DeltaRange[] = [];
  for (const [tag, kind] of [
    ['different', 'data'],
    ['right_only', 'data'],
    ['left_only', 'zero'],
  ] as const) {
    for (const el of xmlArray(diff[tag] as XmlValue | XmlValue[] | undefined)) {
      const begin = int(xmlAttr(el, 'begin'), `${tag} begin`) * blockBytes;
      const length = int(xmlAttr(el, 'length'), `${tag} length`) * blockBytes;
      const end = Math.min(begin + length, volumeBytes);
      if (end > begin) ranges.push({ kind, offset: begin, length: end - begin });
    }
  }
  ranges.sort((a, b) => a.offset - b.offset);
  const merged: DeltaRange[] = [];
  for (const r of ranges) {
    const last = merged.at(-1);
    if (last && r.offset < last.offset + last.length) throw protocol('ranges overlap.');
    if (last && last.kind === r.kind && last.offset + last.length === r.offset) last.length += r.length;
    else merged.push({ ...r });
  }
  return merged;
}

/** The size of the delta file for `ranges`. */
export function deltaFileBytes(ranges: readonly DeltaRange[]): number {
  return ranges.reduce((sum, r) => sum + DELTA_HEADER_BYTES + (r.kind === 'data' ? r.length : 0), 0);
}

/** One record header. */
export function deltaHeader(range: DeltaRange): Uint8Array {
  const h = Buffer.alloc(DELTA_HEADER_BYTES);
  h[0] = range.kind === 'data' ? DELTA_DATA : DELTA_ZERO;
  h.writeBigUInt64BE(BigInt(range.offset), 1);
  h.writeBigUInt64BE(BigInt(range.length), 9);
  return h;
}

/** A record read back: its range, and for data the bytes as they arrive. */
export interface DeltaRecord {
  range: DeltaRange;
  data: AsyncIterable<Uint8Array>;
}

/**
 * Reads a delta file record by record. Each record's `data` must be read to its end before the next record
 * is asked for.
 *
 * @throws HvkitError `PROTOCOL` for a record that is cut short, of an unknown kind, or reaching past
 *   `volumeBytes`.
 */
export async function* readDelta(
  input: AsyncIterable<Uint8Array>,
  volumeBytes: number,
): AsyncGenerator<DeltaRecord> {
  const it = input[Symbol.asyncIterator]();
  let buf: Buffer = Buffer.alloc(0);
  let ended = false;
  const fill = async (n: number): Promise<boolean> => {
    while (buf.length < n && !ended) {
      const step = await it.next();
      if (step.done) ended = true;
      else buf = buf.length === 0 ? Buffer.from(step.value) : Buffer.concat([buf, step.value]);
    }
    return buf.length >= n;
  };
  for (;;) {
    if (!(await fill(1))) return;
    if (!(await fill(DELTA_HEADER_BYTES))) throw protocol('the delta file ends inside a record header.');
    const kind = buf[0];
    const offset = Number(buf.readBigUInt64BE(1));
    const length = Number(buf.readBigUInt64BE(9));
    buf = buf.subarray(DELTA_HEADER_BYTES);
    if (kind !== DELTA_DATA && kind !== DELTA_ZERO) throw protocol(`record kind ${kind} is unknown.`);
    if (!Number.isSafeInteger(offset + length) || offset + length > volumeBytes || length === 0) {
      throw protocol(`record ${offset}+${length} does not fit the ${volumeBytes}-byte volume.`);
    }
    const range: DeltaRange = { kind: kind === DELTA_DATA ? 'data' : 'zero', offset, length };
    if (range.kind === 'zero') {
      yield { range, data: (async function* () {})() };
      continue;
    }
    let left = length;
    let done = false;
    const data = (async function* () {
      while (left > 0) {
        if (buf.length === 0 && !(await fill(1))) throw protocol('the delta file ends inside a record.');
        const take = buf.subarray(0, Math.min(left, buf.length));
        buf = buf.subarray(take.length);
        left -= take.length;
        yield take;
      }
      done = true;
    })();
    yield { range, data };
    if (!done) throw new TypeError('readDelta: a record was not read to its end.');
  }
}
