import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { rejection } from '../__test-utils__';
import { HvkitError } from '../errors/hvkit-error';
import type { Progress } from '../hypervisor/v1/model';
import { createDirectorySink, DIRECTORY_SINK_TEMP_PREFIX } from './directory-sink';

const root = mkdtempSync(join(tmpdir(), 'hvkit-dirsink-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let counter = 0;
function freshDir(): string {
  return join(root, `d${++counter}`);
}

/** Every entry below `dir`, relative, sorted (dot files included). */
function listAll(dir: string): string[] {
  try {
    return (readdirSync(dir, { recursive: true }) as string[]).sort();
  } catch {
    return [];
  }
}

async function* chunksOf(data: Buffer, size: number) {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

describe('createDirectorySink', () => {
  it('writes a multi-MiB stream with the right sha256, size and progress', async () => {
    const dir = freshDir();
    const sink = createDirectorySink(dir);
    expect(sink.kind).toBe('directory');
    expect(sink.location).toBe(dir);
    const data = randomBytes(6 * 1024 * 1024 + 123);
    const progress: Progress[] = [];
    const file = await sink.writeFile('vda.qcow2', chunksOf(data, 64 * 1024), {
      expectedBytes: data.length,
      onProgress: (p) => progress.push(p),
    });
    const expected = createHash('sha256').update(data).digest('hex');
    expect(file).toEqual({ name: 'vda.qcow2', bytes: data.length, sha256: expected });
    expect(
      createHash('sha256')
        .update(readFileSync(join(dir, 'vda.qcow2')))
        .digest('hex'),
    ).toBe(expected);
    expect(listAll(dir)).toEqual(['vda.qcow2']);
    expect(statSync(join(dir, 'vda.qcow2')).mode & 0o777).toBe(0o600);
    expect(progress.length).toBeGreaterThan(10);
    for (let i = 1; i < progress.length; i++) {
      expect(progress[i]!.processedBytes).toBeGreaterThan(progress[i - 1]!.processedBytes);
    }
    expect(progress.at(-1)?.processedBytes).toBe(data.length);
    expect(progress.every((p) => p.file === 'vda.qcow2' && p.totalBytes === data.length)).toBe(true);
  });

  it('creates subdirectories and replaces an older file of the same name', async () => {
    const dir = freshDir();
    const sink = createDirectorySink(dir, { fsync: false, mode: 0o640 });
    await sink.writeFile('guest-1/disk.raw', chunksOf(Buffer.from('first version'), 4));
    await sink.writeFile('guest-1/disk.raw', chunksOf(Buffer.from('second'), 4));
    expect(readFileSync(join(dir, 'guest-1/disk.raw'), 'utf8')).toBe('second');
    expect(statSync(join(dir, 'guest-1/disk.raw')).mode & 0o777).toBe(0o640);
    expect(listAll(dir)).toEqual(['guest-1', join('guest-1', 'disk.raw')]);
  });

  it('leaves nothing that looks complete after an abort mid-stream', async () => {
    const dir = freshDir();
    const sink = createDirectorySink(dir);
    const controller = new AbortController();
    let yielded = 0;
    let closed = false;
    async function* producer() {
      try {
        for (let i = 0; i < 1000; i++) {
          if (i === 20) {
            // The temporary file exists and holds data at this point.
            const partial = listAll(dir);
            expect(partial).toHaveLength(1);
            expect(partial[0]?.startsWith(DIRECTORY_SINK_TEMP_PREFIX)).toBe(true);
            controller.abort();
          }
          yielded++;
          yield randomBytes(64 * 1024);
        }
      } finally {
        closed = true;
      }
    }
    const error = (await rejection(
      sink.writeFile('vda.qcow2', producer(), { signal: controller.signal }),
    )) as HvkitError;
    expect(error.code).toBe('ABORTED');
    expect(yielded).toBeLessThan(30);
    // Neither a file with the final name nor a temporary file is left.
    expect(listAll(dir)).toEqual([]);
    await new Promise((r) => setImmediate(r));
    expect(closed).toBe(true);
  });

  it('removes the temporary file when the source fails, with the original error', async () => {
    const dir = freshDir();
    const boom = new Error('NBD connection dropped');
    async function* failing() {
      yield randomBytes(300_000);
      throw boom;
    }
    const error = await rejection(createDirectorySink(dir).writeFile('sda.raw', failing()));
    expect(error).toBe(boom);
    expect(listAll(dir)).toEqual([]);
  });

  it('fails with PROTOCOL on an expectedBytes mismatch and keeps nothing', async () => {
    const dir = freshDir();
    const sink = createDirectorySink(dir);
    const short = (await rejection(
      sink.writeFile('a.raw', chunksOf(Buffer.alloc(4096), 1024), { expectedBytes: 5000 }),
    )) as HvkitError;
    expect(short.code).toBe('PROTOCOL');
    expect(short.message).toContain('5000');
    const long = (await rejection(
      sink.writeFile('b.raw', chunksOf(Buffer.alloc(4096), 1024), { expectedBytes: 2000 }),
    )) as HvkitError;
    expect(long.code).toBe('PROTOCOL');
    expect(listAll(dir)).toEqual([]);
    // The right count succeeds.
    expect(
      (await sink.writeFile('c.raw', chunksOf(Buffer.alloc(4096), 1024), { expectedBytes: 4096 })).bytes,
    ).toBe(4096);
  });

  it('does not pull or create anything for an already-aborted signal', async () => {
    const dir = freshDir();
    const controller = new AbortController();
    controller.abort();
    let pulled = false;
    async function* producer() {
      pulled = true;
      yield Buffer.alloc(1);
    }
    const error = (await rejection(
      createDirectorySink(dir).writeFile('x', producer(), { signal: controller.signal }),
    )) as HvkitError;
    expect(error.code).toBe('ABORTED');
    expect(pulled).toBe(false);
    expect(listAll(dir)).toEqual([]);
  });

  it('rejects unsafe names with INVALID_ARGUMENT and writes nothing', async () => {
    const dir = freshDir();
    const sink = createDirectorySink(dir);
    for (const name of ['../escape', '/etc/passwd', 'a/../../b', '', 'a\0b', 'a\\b', 'a//b', '.', '..']) {
      const error = (await rejection(sink.writeFile(name, chunksOf(Buffer.alloc(1), 1)))) as HvkitError;
      expect(error.code).toBe('INVALID_ARGUMENT');
    }
    expect(listAll(dir)).toEqual([]);
    expect(listAll(root).some((n) => n.includes('escape'))).toBe(false);
  });

  it('writes an empty file', async () => {
    const dir = freshDir();
    const file = await createDirectorySink(dir).writeFile('empty', (async function* () {})());
    expect(file.bytes).toBe(0);
    expect(file.sha256).toBe('e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855');
    expect(statSync(join(dir, 'empty')).size).toBe(0);
  });

  it('removeFile removes and ignores missing files', async () => {
    const dir = freshDir();
    const sink = createDirectorySink(dir);
    await sink.writeFile('old.raw', chunksOf(Buffer.alloc(10), 5));
    await sink.removeFile?.('old.raw');
    await sink.removeFile?.('old.raw');
    expect(listAll(dir)).toEqual([]);
    await expect(sink.removeFile?.('../x')).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
  });

  it('maps file system errors', async () => {
    const file = join(root, 'not-a-dir');
    writeFileSync(file, 'x');
    const error = (await rejection(
      createDirectorySink(file).writeFile('a', chunksOf(Buffer.alloc(1), 1)),
    )) as HvkitError;
    expect(HvkitError.isInstance(error)).toBe(true);
    expect(['NOT_FOUND', 'CONFLICT', 'REMOTE']).toContain(error.code);
    expect(error.backendCode).toMatch(/^E[A-Z]+$/);
    const missing = (await rejection(
      createDirectorySink(join(root, 'missing-parent'), { createDirectory: false }).writeFile(
        'a',
        chunksOf(Buffer.alloc(1), 1),
      ),
    )) as HvkitError;
    expect(missing.code).toBe('NOT_FOUND');
  });

  it('validates its arguments', () => {
    expect(() => createDirectorySink('')).toThrow(HvkitError);
    expect(() => createDirectorySink(5 as unknown as string)).toThrow(TypeError);
  });
});
