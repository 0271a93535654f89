/**
 * The simulator's disk contents: one sparse block store per VDI (1 MiB chunks; a missing chunk reads as
 * zeros). A VDI the database brought with it starts with deterministic content derived from its UUID (a
 * few KiB at its start and at its end), so exports of the seed database always give the same bytes.
 * Snapshots and clones share the chunks of their source (chunks are never changed in place: a write
 * replaces the chunk), so a write after a snapshot makes the two differ, which is what an incremental
 * export (`/export_raw_vdi` with `base`) then finds.
 */

import { createHash } from 'node:crypto';

/** The chunk size of the store (also XVA's chunk size). */
export const CHUNK_BYTES = 1024 * 1024;

/** How many bytes of deterministic content a seeded VDI starts with, at each end. */
const SEED_BYTES = 4096;

function seedBytes(uuid: string, label: string, length: number): Buffer {
  const out = Buffer.alloc(length);
  let at = 0;
  for (let n = 0; at < length; n++) {
    const h = createHash('sha256').update(`${uuid}/${label}/${n}`).digest();
    at += h.copy(out, at);
  }
  return out;
}

/** The block stores of every VDI, by VDI ref. */
export class SimDisks {
  readonly #stores = new Map<string, Map<number, Buffer>>();

  /** The chunks of a VDI (created with its seed content on first use). */
  chunks(ref: string, uuid: string, size: number): Map<number, Buffer> {
    let store = this.#stores.get(ref);
    if (!store) {
      store = new Map();
      if (size > 0) {
        this.#stores.set(ref, store);
        this.write(ref, uuid, size, 0, seedBytes(uuid, 'head', Math.min(SEED_BYTES, size)));
        if (size > 2 * SEED_BYTES)
          this.write(ref, uuid, size, size - SEED_BYTES, seedBytes(uuid, 'tail', SEED_BYTES));
      }
      this.#stores.set(ref, store);
    }
    return store;
  }

  /** Gives `ref` its own copy of the chunk map of `from` (snapshot, clone: the chunks are shared). */
  copy(from: string, fromUuid: string, size: number, ref: string): void {
    this.#stores.set(ref, new Map(this.chunks(from, fromUuid, size)));
  }

  /** Sets a VDI's chunks (an import). */
  set(ref: string, chunks: Map<number, Buffer>): void {
    this.#stores.set(ref, chunks);
  }

  /** Forgets a VDI (`VDI.destroy`). */
  delete(ref: string): void {
    this.#stores.delete(ref);
  }

  /** Writes bytes at an offset (a guest write, or an import), replacing the chunks it touches. */
  write(ref: string, uuid: string, size: number, offset: number, data: Uint8Array): void {
    if (offset < 0 || offset + data.byteLength > size) throw new RangeError('write past the end of the disk');
    const store = this.chunks(ref, uuid, size);
    let at = 0;
    while (at < data.byteLength) {
      const pos = offset + at;
      const k = Math.floor(pos / CHUNK_BYTES);
      const within = pos - k * CHUNK_BYTES;
      const n = Math.min(CHUNK_BYTES - within, data.byteLength - at);
      const chunk = Buffer.alloc(CHUNK_BYTES);
      store.get(k)?.copy(chunk);
      chunk.set(data.subarray(at, at + n), within);
      if (chunk.every((b) => b === 0)) store.delete(k);
      else store.set(k, chunk);
      at += n;
    }
  }
}
