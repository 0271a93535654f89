import { describe, expect, it } from 'vitest';
import { prng } from '../../test/fake-libvirtd';
import { dataAndHoles } from './restore';

const K64 = 64 * 1024;

/** Rebuilds the bytes from the pieces (holes as zeros) and checks that holes are whole aligned 64 KiB blocks. */
function rebuild(chunk: Uint8Array, at: number): { bytes: Uint8Array; holes: number[] } {
  const out = new Uint8Array(chunk.byteLength);
  const holes: number[] = [];
  let i = 0;
  for (const piece of dataAndHoles(chunk, at)) {
    if (typeof piece === 'number') {
      expect((at + i) % K64).toBe(0);
      expect(piece % K64).toBe(0);
      holes.push(piece);
      i += piece;
    } else {
      out.set(piece, i);
      i += piece.byteLength;
    }
  }
  expect(i).toBe(chunk.byteLength);
  return { bytes: out, holes };
}

describe('dataAndHoles (restore upload)', () => {
  it('sends aligned 64 KiB zero runs as holes, everything else as data, in order', () => {
    const chunk = new Uint8Array(6 * K64);
    chunk[10] = 1;
    chunk[4 * K64 + 5] = 2;
    const { bytes, holes } = rebuild(chunk, 0);
    expect(Buffer.compare(bytes, chunk)).toBe(0);
    // Blocks 1-3 are zero (one hole of 3 blocks), block 5 is zero.
    expect(holes).toEqual([3 * K64, K64]);
  });

  it('respects the chunk offset: a zero run not aligned in the file is data', () => {
    const chunk = new Uint8Array(2 * K64);
    const { holes } = rebuild(chunk, 100);
    // Aligned blocks inside [100, 100 + 128 KiB): only [64 KiB, 128 KiB) fits.
    expect(holes).toEqual([K64]);
    expect(rebuild(new Uint8Array(K64 - 1), 0).holes).toEqual([]);
  });

  it('rebuilds random sparse chunks exactly', () => {
    const rand = prng(7);
    for (let round = 0; round < 50; round++) {
      const len = Math.floor(rand() * 8 * K64);
      const chunk = new Uint8Array(len);
      for (let b = 0; b < len; b += K64)
        if (rand() < 0.4) chunk[b + Math.floor(rand() * Math.min(K64, len - b))] = 9;
      const at = Math.floor(rand() * 4) * 4096;
      expect(Buffer.compare(rebuild(chunk, at).bytes, chunk)).toBe(0);
    }
  });
});
