import { randomBytes } from 'node:crypto';
import { mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { listAll, rejection, testTempDir } from '../__test-utils__';
import { writeArtifact } from '../__test-utils__/artifacts';
import { createDirectorySink } from './directory-sink';
import { createDirectorySource } from './directory-source';
import { BACKUP_MANIFEST_FILE, BACKUP_MANIFEST_MAX_BYTES } from './manifest';

const root = testTempDir('hvkit-dirsource-');
let counter = 0;
const freshDir = () => join(root(), `d${++counter}`);

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of iterable) parts.push(c);
  return Buffer.concat(parts);
}

describe('createDirectorySource', () => {
  it('lists complete and incomplete artifacts, oldest first, filtered by guest', async () => {
    const dir = freshDir();
    const a = await writeArtifact(dir, { id: '20261207T120000Z-full-a' });
    const b = await writeArtifact(dir, { id: '20261207T130000Z-full-b', complete: false });
    const c = await writeArtifact(dir, { id: '20261207T110000Z-full-c', guestName: 'db' });
    mkdirSync(join(dir, 'web', '.hidden'));
    writeFileSync(join(dir, 'web', 'stray-file'), 'x');
    const source = createDirectorySource(dir);
    expect(source.kind).toBe('directory');
    expect(source.location).toBe(dir);
    const all = await source.list();
    expect(all.map((l) => [l.path, l.complete])).toEqual([
      [c.path, true],
      [a.path, true],
      [b.path, false],
    ]);
    expect(all[1]?.manifest).toEqual(a.manifest);
    expect(all[2]?.manifest).toBeUndefined();
    expect((await source.list({ guest: 'web' })).map((l) => l.id)).toEqual([a.manifest.id, b.manifest.id]);
    expect((await source.list({ guest: 'vm-1' })).map((l) => l.id)).toHaveLength(2);
    expect(await createDirectorySource(join(dir, 'missing')).list()).toEqual([]);
  });

  it('reports an invalid manifest as incomplete, with the reason', async () => {
    const dir = freshDir();
    const a = await writeArtifact(dir, { id: '20261207T120000Z-full-a' });
    writeFileSync(join(dir, a.path, BACKUP_MANIFEST_FILE), '{"format":"hvkit-backup","version":2}');
    const [listing] = await createDirectorySource(dir).list();
    expect(listing).toMatchObject({ path: a.path, complete: false });
    expect(listing?.invalid).toMatch(/version 2/);
  });

  it('reads a manifest and files; a missing manifest is NOT_FOUND, a huge one PROTOCOL', async () => {
    const dir = freshDir();
    const a = await writeArtifact(dir, { disk: randomBytes(3 * 1024 * 1024 + 5) });
    const source = createDirectorySource(dir);
    expect(await source.readManifest(a.path)).toEqual(a.manifest);
    expect(
      Buffer.compare(await collect(source.readFile(`${a.path}/disk-vda.raw`)), Buffer.from(a.disk)),
    ).toBe(0);
    expect((await rejection(source.readManifest('web/none'))).code).toBe('NOT_FOUND');
    writeFileSync(join(dir, a.path, BACKUP_MANIFEST_FILE), Buffer.alloc(BACKUP_MANIFEST_MAX_BYTES + 10, 32));
    const huge = await rejection(source.readManifest(a.path));
    expect(huge.code).toBe('PROTOCOL');
    expect(huge.message).toMatch(/over the 1048576 limit/);
    const limited = await rejection(collect(source.readFile(`${a.path}/disk-vda.raw`, { maxBytes: 1000 })));
    expect(limited.code).toBe('PROTOCOL');
  });

  it('refuses names with .. and absolute names, and symbolic links anywhere below the root', async () => {
    const dir = freshDir();
    const a = await writeArtifact(dir);
    const outside = freshDir();
    mkdirSync(outside);
    writeFileSync(join(outside, 'secret'), 'secret');
    const source = createDirectorySource(dir);
    expect(() => source.readFile('../x')).toThrow(/"\.\." segment/);
    expect(() => source.readFile('/etc/passwd')).toThrow(/absolute/);
    expect((await rejection(source.readManifest('web/../..'))).code).toBe('INVALID_ARGUMENT');
    symlinkSync(join(outside, 'secret'), join(dir, a.path, 'link'));
    symlinkSync(outside, join(dir, 'web', 'linked-artifact'));
    symlinkSync(outside, join(dir, 'linked-guest'));
    expect((await rejection(collect(source.readFile(`${a.path}/link`)))).code).toBe('CONFLICT');
    expect((await rejection(collect(source.readFile('linked-guest/secret')))).code).toBe('CONFLICT');
    expect((await rejection(source.readManifest('web/linked-artifact'))).code).toBe('CONFLICT');
    // Links are not artifacts.
    expect((await source.list()).map((l) => l.path)).toEqual([a.path]);
    mkdirSync(join(dir, a.path, 'sub'));
    expect((await rejection(collect(source.readFile(`${a.path}/sub`)))).code).toBe('CONFLICT');
  });

  it('stops reading on abort', async () => {
    const dir = freshDir();
    const a = await writeArtifact(dir, { disk: randomBytes(4 * 1024 * 1024) });
    const source = createDirectorySource(dir, { chunkBytes: 64 * 1024 });
    const controller = new AbortController();
    let chunks = 0;
    const error = await rejection(
      (async () => {
        for await (const _ of source.readFile(`${a.path}/disk-vda.raw`, { signal: controller.signal })) {
          if (++chunks === 3) controller.abort();
        }
      })(),
    );
    expect(error.code).toBe('ABORTED');
    expect(chunks).toBe(3);
    const pre = new AbortController();
    pre.abort();
    expect((await rejection(source.list({ signal: pre.signal }))).code).toBe('ABORTED');
    expect((await rejection(source.readManifest(a.path, { signal: pre.signal }))).code).toBe('ABORTED');
  });

  it('checks its arguments', () => {
    expect(() => createDirectorySource(1 as never)).toThrow(TypeError);
    expect(() => createDirectorySource('')).toThrow(/invalid directory/);
    expect(() => createDirectorySource('/tmp', { chunkBytes: 0 })).toThrow(TypeError);
    expect(() => createDirectorySource('/tmp').readFile('a', { maxBytes: -1 })).toThrow(TypeError);
  });
});

describe('directory sink: removeIncomplete', () => {
  it('removes incomplete artifact folders of the guest, keeps complete ones and live runs', async () => {
    const dir = freshDir();
    const done = await writeArtifact(dir, { id: '20261207T120000Z-full-a' });
    const crashed = await writeArtifact(dir, { id: '20261207T130000Z-full-b', complete: false });
    const running = await writeArtifact(dir, { id: '20261207T140000Z-full-c', complete: false });
    const other = await writeArtifact(dir, {
      id: '20261207T150000Z-full-d',
      complete: false,
      guestName: 'db',
    });
    writeFileSync(join(dir, crashed.path, '.hvkit-partial-0a0b0c-disk-vdb.raw'), 'partial');
    mkdirSync(join(dir, crashed.path, 'nested', 'deeper'), { recursive: true });
    writeFileSync(join(dir, crashed.path, 'nested', 'deeper', 'f'), 'x');
    const outside = freshDir();
    mkdirSync(outside);
    writeFileSync(join(outside, 'keep-me'), 'x');
    symlinkSync(outside, join(dir, crashed.path, 'link-to-outside'));
    const sink = createDirectorySink(dir);
    const removed = await sink.removeIncomplete?.('web', [running.manifest.id]);
    expect(removed).toEqual([crashed.path]);
    expect(listAll(outside)).toEqual(['keep-me']);
    const left = listAll(dir);
    expect(left.some((p) => p.startsWith(crashed.path))).toBe(false);
    expect(left).toContain(`${done.path}/${BACKUP_MANIFEST_FILE}`);
    expect(left).toContain(`${running.path}/disk-vda.raw`);
    expect(left).toContain(`${other.path}/disk-vda.raw`);
    expect(await sink.removeIncomplete?.('web', [running.manifest.id])).toEqual([]);
    expect(await sink.removeIncomplete?.('nobody', [])).toEqual([]);
  });

  it('refuses a guest folder that is a link, a path, or bad arguments', async () => {
    const dir = freshDir();
    const outside = freshDir();
    mkdirSync(join(outside, 'x'), { recursive: true });
    mkdirSync(dir);
    symlinkSync(outside, join(dir, 'web'));
    const sink = createDirectorySink(dir);
    expect((await rejection(sink.removeIncomplete?.('web', []) as Promise<unknown>)).code).toBe('CONFLICT');
    expect(listAll(outside)).toEqual(['x']);
    expect((await rejection(sink.removeIncomplete?.('a/b', []) as Promise<unknown>)).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect((await rejection(sink.removeIncomplete?.('..', []) as Promise<unknown>)).code).toBe(
      'INVALID_ARGUMENT',
    );
    await expect(sink.removeIncomplete?.('web', 'x' as never)).rejects.toThrow(TypeError);
  });
});
