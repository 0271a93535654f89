import { randomBytes } from 'node:crypto';
import { appendFileSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rejection, testTempDir } from '../__test-utils__';
import { writeArtifact } from '../__test-utils__/artifacts';
import { createDirectorySource } from './directory-source';
import { BACKUP_MANIFEST_FILE, type BackupManifestFile } from './manifest';
import { readVerifiedBytes, readVerifiedFile, resolveRestoreChain } from './restore';

const root = testTempDir('hvkit-restore-');
let counter = 0;
const freshDir = () => join(root(), `d${++counter}`);

async function consume(iterable: AsyncIterable<Uint8Array>): Promise<{ bytes: number; chunks: number }> {
  let bytes = 0;
  let chunks = 0;
  for await (const c of iterable) {
    bytes += c.byteLength;
    chunks++;
  }
  return { bytes, chunks };
}

describe('readVerifiedFile', () => {
  async function setup(size = 200_000) {
    const dir = freshDir();
    const a = await writeArtifact(dir, { disk: randomBytes(size) });
    const source = createDirectorySource(dir, { chunkBytes: 16 * 1024 });
    const disk = a.manifest.files.find((f) => f.role === 'disk') as BackupManifestFile;
    return { dir, a, source, disk, file: join(dir, a.path, 'disk-vda.raw') };
  }

  it('hands on every byte of a file that matches, reporting each chunk', async () => {
    const { a, source, disk } = await setup();
    let reported = 0;
    const got = await consume(readVerifiedFile(source, a.path, disk, { onBytes: (n) => (reported += n) }));
    expect(got.bytes).toBe(disk.bytes);
    expect(reported).toBe(disk.bytes);
  });

  it('a flipped byte: artifact-mismatch before the last chunk is handed on', async () => {
    const { a, source, disk, file } = await setup();
    const data = Buffer.from(a.disk);
    data[1234] = (data[1234] as number) ^ 0xff;
    writeFileSync(file, data);
    let handed = 0;
    const error = await rejection(
      (async () => {
        for await (const c of readVerifiedFile(source, a.path, disk)) handed += c.byteLength;
      })(),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.details).toMatchObject({
      reason: 'artifact-mismatch',
      file: `${a.path}/disk-vda.raw`,
      expected: { bytes: disk.bytes, sha256: disk.sha256 },
      actual: { bytes: disk.bytes },
    });
    expect(error.message).toMatch(/sha256 [0-9a-f]{64}, the manifest lists/);
    expect(handed).toBeLessThan(disk.bytes);
  });

  it('a file too long fails before the chunk that passes the size; too short and missing fail too', async () => {
    const { a, source, disk, file } = await setup();
    appendFileSync(file, 'x');
    let handed = 0;
    const long = await rejection(
      (async () => {
        for await (const c of readVerifiedFile(source, a.path, disk)) handed += c.byteLength;
      })(),
    );
    expect(long.details).toMatchObject({ reason: 'artifact-mismatch', actual: { bytes: disk.bytes + 1 } });
    expect(handed).toBeLessThan(disk.bytes);
    writeFileSync(file, Buffer.from(a.disk).subarray(0, 100));
    const short = await rejection(consume(readVerifiedFile(source, a.path, disk)));
    expect(short.details).toMatchObject({ reason: 'artifact-mismatch', actual: { bytes: 100 } });
    unlinkSync(file);
    const missing = await rejection(consume(readVerifiedFile(source, a.path, disk)));
    expect(missing.details).toMatchObject({ reason: 'artifact-mismatch', actual: { missing: true } });
  });

  it('readVerifiedBytes reads small files and refuses big ones', async () => {
    const { a, source, disk } = await setup(1000);
    const def = a.manifest.files.find((f) => f.role === 'definition') as BackupManifestFile;
    expect(new TextDecoder().decode(await readVerifiedBytes(source, a.path, def))).toBe('{"name":"web"}');
    const big = await rejection(readVerifiedBytes(source, a.path, disk, { maxBytes: 10 }));
    expect(big.details).toMatchObject({ reason: 'artifact-invalid' });
  });

  it('stops on abort and refuses names with ..', async () => {
    const { a, source, disk } = await setup();
    const controller = new AbortController();
    controller.abort();
    expect(
      (await rejection(consume(readVerifiedFile(source, a.path, disk, { signal: controller.signal })))).code,
    ).toBe('ABORTED');
    expect((await rejection(consume(readVerifiedFile(source, '..', disk)))).code).toBe('INVALID_ARGUMENT');
  });
});

describe('resolveRestoreChain', () => {
  /** web: full a, incrementals a1, a2; a second chain b; db: one full. */
  async function chains() {
    const dir = freshDir();
    const mk = (id: string, position: number, chain: string, base?: string, guestName = 'web') =>
      writeArtifact(dir, {
        id,
        guestName,
        kind: position === 0 ? 'full' : 'incremental',
        chain: { id: chain, position },
        checkpoint: `cp-${id}`,
        ...(base ? { base, parentCheckpoint: `cp-${base}` } : {}),
        ...(guestName === 'db' ? { guest: { id: 'vm-2', name: 'db' } } : {}),
      });
    const a = await mk('20261201T000000Z-full-a', 0, '20261201T000000Z-full-a');
    const a1 = await mk('20261202T000000Z-incremental-a1', 1, a.manifest.id, a.manifest.id);
    const a2 = await mk('20261203T000000Z-incremental-a2', 2, a.manifest.id, a1.manifest.id);
    const b = await mk('20261204T000000Z-full-b', 0, '20261204T000000Z-full-b');
    const db = await mk('20261205T000000Z-full-db', 0, '20261205T000000Z-full-db', undefined, 'db');
    return { dir, source: createDirectorySource(dir), a, a1, a2, b, db };
  }

  it('an incremental brings its chain, full first; the newest of a guest by default', async () => {
    const { source, a, a1, a2, b } = await chains();
    const chain = await resolveRestoreChain(source, { artifact: a2.manifest.id });
    expect(chain.links.map((l) => l.path)).toEqual([a.path, a1.path, a2.path]);
    expect(chain.target.manifest).toEqual(a2.manifest);
    expect((await resolveRestoreChain(source, { artifact: a1.path })).links).toHaveLength(2);
    expect((await resolveRestoreChain(source, { guest: 'web' })).target.path).toBe(b.path);
    expect((await resolveRestoreChain(source, { guest: 'vm-2' })).target.manifest.guest.name).toBe('db');
  });

  it('typed errors: ambiguous, unknown, another guest, missing or incomplete links', async () => {
    const { dir, source, a, a1, a2, db } = await chains();
    expect((await rejection(resolveRestoreChain(source))).details).toMatchObject({ reason: 'ambiguous' });
    expect((await rejection(resolveRestoreChain(source, { artifact: 'nope' }))).code).toBe('NOT_FOUND');
    expect((await rejection(resolveRestoreChain(source, { guest: 'nobody' }))).code).toBe('NOT_FOUND');
    const other = await rejection(resolveRestoreChain(source, { artifact: db.manifest.id, guest: 'web' }));
    expect(other.code).toBe('INVALID_ARGUMENT');
    unlinkSync(join(dir, a1.path, BACKUP_MANIFEST_FILE));
    const incomplete = await rejection(resolveRestoreChain(source, { artifact: a2.manifest.id }));
    expect(incomplete.details).toMatchObject({ reason: 'artifact-invalid', artifact: a1.path });
    rmSync(join(dir, a1.path), { recursive: true });
    const missing = await rejection(resolveRestoreChain(source, { artifact: a2.manifest.id }));
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.details).toMatchObject({ reason: 'chain-link-missing', missing: a1.manifest.id });
    expect((await resolveRestoreChain(source, { artifact: a.manifest.id })).links).toHaveLength(1);
  });

  it('refuses a link that does not fit (another chain) and bad arguments', async () => {
    const dir = freshDir();
    const a = await writeArtifact(dir, {
      id: '20261201T000000Z-full-a',
      chain: { id: 'other', position: 0 },
    });
    await writeArtifact(dir, {
      id: '20261202T000000Z-incremental-x',
      kind: 'incremental',
      base: a.manifest.id,
      chain: { id: a.manifest.id, position: 1 },
    });
    const source = createDirectorySource(dir);
    const error = await rejection(
      resolveRestoreChain(source, { artifact: '20261202T000000Z-incremental-x' }),
    );
    expect(error.details).toMatchObject({ reason: 'artifact-invalid' });
    await expect(resolveRestoreChain({} as never)).rejects.toThrow(TypeError);
    await expect(resolveRestoreChain(source, { artifact: '' })).rejects.toThrow(TypeError);
    await expect(resolveRestoreChain(source, { guest: 3 as never })).rejects.toThrow(TypeError);
  });
});
