import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { type DeltaRange, deltaFileBytes, deltaHeader, parseThinDelta, readDelta } from './delta';

// Recorded in the lab VM: a 64 MiB thin volume, 1 MiB rewritten at 10 MiB between two thin snapshots.
const RECORDED = `<superblock uuid="" time="2" transaction="3" data_block_size="128" nr_data_blocks="0">
  <diff left="2" right="3">
    <same begin="0" length="160"/>
    <different begin="160" length="16"/>
    <same begin="176" length="848"/>
  </diff>
</superblock>
`;

async function* chunks(parts: Uint8Array[], size: number) {
  const all = Buffer.concat(parts);
  for (let i = 0; i < all.length; i += size) yield all.subarray(i, i + size);
}

describe('thin deltas', () => {
  it('reads thin_delta output into byte ranges', () => {
    expect(parseThinDelta(RECORDED, 64 * 1024 * 1024)).toEqual([
      { kind: 'data', offset: 10 * 1024 * 1024, length: 1024 * 1024 },
    ]);
    const xml = `<superblock data_block_size="128"><diff left="1" right="2">
      <right_only begin="0" length="2"/><different begin="2" length="1"/><left_only begin="5" length="3"/>
      <right_only begin="1000" length="100"/></diff></superblock>`;
    expect(parseThinDelta(xml, 512 * 1024)).toEqual([
      { kind: 'data', offset: 0, length: 3 * 65536 },
      { kind: 'zero', offset: 5 * 65536, length: 3 * 65536 },
    ]);
  });

  it('refuses other output with PROTOCOL', () => {
    for (const bad of [
      '',
      '<x/>',
      '<superblock data_block_size="abc"><diff/></superblock>',
      '<superblock data_block_size="128"></superblock>',
      '<superblock data_block_size="128"><diff><different begin="-1" length="1"/></diff></superblock>',
      '<superblock data_block_size="128"><diff><different begin="0" length="4"/><left_only begin="2" length="1"/></diff></superblock>',
      '<!DOCTYPE x [<!ENTITY a "b">]><superblock/>',
    ]) {
      let error: unknown;
      try {
        parseThinDelta(bad, 1 << 30);
      } catch (e) {
        error = e;
      }
      expect(HvkitError.isInstance(error, 'PROTOCOL'), bad).toBe(true);
    }
  });

  it('writes records that read back, across any chunking', async () => {
    const ranges: DeltaRange[] = [
      { kind: 'data', offset: 0, length: 5 },
      { kind: 'zero', offset: 100, length: 50 },
      { kind: 'data', offset: 200, length: 3 },
    ];
    const data = [Buffer.from('hello'), Buffer.from('abc')];
    const parts = [
      deltaHeader(ranges[0] as DeltaRange),
      data[0] as Buffer,
      deltaHeader(ranges[1] as DeltaRange),
      deltaHeader(ranges[2] as DeltaRange),
      data[1] as Buffer,
    ];
    expect(Buffer.concat(parts).length).toBe(deltaFileBytes(ranges));
    for (const size of [1, 4, 17, 1000]) {
      const got: [DeltaRange, string][] = [];
      for await (const rec of readDelta(chunks(parts, size), 1000)) {
        const bytes: Uint8Array[] = [];
        for await (const c of rec.data) bytes.push(c);
        got.push([rec.range, Buffer.concat(bytes).toString()]);
      }
      expect(got).toEqual([
        [ranges[0], 'hello'],
        [ranges[1], ''],
        [ranges[2], 'abc'],
      ]);
    }
  });

  it('refuses a cut or hostile delta file', async () => {
    const read = async (parts: Uint8Array[], volume = 1000) => {
      try {
        for await (const rec of readDelta(chunks(parts, 7), volume)) for await (const _ of rec.data);
      } catch (e) {
        return e;
      }
      return undefined;
    };
    const h = deltaHeader({ kind: 'data', offset: 0, length: 10 });
    expect(HvkitError.isInstance(await read([h.subarray(0, 10)]), 'PROTOCOL')).toBe(true);
    expect(HvkitError.isInstance(await read([h, Buffer.from('short')]), 'PROTOCOL')).toBe(true);
    expect(HvkitError.isInstance(await read([h, Buffer.alloc(10)], 5), 'PROTOCOL')).toBe(true);
    const bad = Buffer.from(h);
    bad[0] = 9;
    expect(HvkitError.isInstance(await read([bad, Buffer.alloc(10)]), 'PROTOCOL')).toBe(true);
  });
});
