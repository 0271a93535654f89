import { createHash, randomBytes } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunksOf, listAll, rejection, testTempDir } from '../__test-utils__';
import { HvkitError } from '../errors/hvkit-error';
import type { Progress } from '../hypervisor/v1/model';
import { createDirectorySink, DIRECTORY_SINK_TEMP_PREFIX } from './directory-sink';

const root = testTempDir('hvkit-dirsink-');
let counter = 0;
function freshDir(): string {
  return join(root(), `d${++counter}`);
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
    expect(listAll(root()).some((n) => n.includes('escape'))).toBe(false);
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
    const file = join(root(), 'not-a-dir');
    writeFileSync(file, 'x');
    const error = (await rejection(
      createDirectorySink(file).writeFile('a', chunksOf(Buffer.alloc(1), 1)),
    )) as HvkitError;
    expect(HvkitError.isInstance(error)).toBe(true);
    expect(['NOT_FOUND', 'CONFLICT', 'REMOTE']).toContain(error.code);
    expect(error.backendCode).toMatch(/^E[A-Z]+$/);
    const missing = (await rejection(
      createDirectorySink(join(root(), 'missing-parent'), { createDirectory: false }).writeFile(
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

describe('createDirectorySink: symbolic links and long names', () => {
  /** A sink directory and a directory outside it that a planted link points to. */
  function plant(): { dir: string; outside: string } {
    const dir = freshDir();
    const outside = freshDir();
    mkdirSync(dir, { recursive: true });
    mkdirSync(outside, { recursive: true });
    return { dir, outside };
  }

  it('refuses a symlinked subdirectory planted in the sink: nothing is written outside', async () => {
    const { dir, outside } = plant();
    symlinkSync(outside, join(dir, 'guest-1'));
    const sink = createDirectorySink(dir);
    const error = await rejection(sink.writeFile('guest-1/disk.raw', chunksOf(Buffer.from('secret'), 2)));
    expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
    expect(error.message).toContain('symbolic link');
    expect(error.details?.path).toBe(join(dir, 'guest-1'));
    expect(listAll(outside)).toEqual([]);
    // The link is left as it was, and nothing else appeared in the sink.
    expect(lstatSync(join(dir, 'guest-1')).isSymbolicLink()).toBe(true);
    expect(listAll(dir)).toEqual(['guest-1']);
  });

  it('refuses a symlink deeper in the path, also one that points back into the sink', async () => {
    const { dir, outside } = plant();
    mkdirSync(join(dir, 'a'));
    symlinkSync(outside, join(dir, 'a', 'b'));
    symlinkSync('.', join(dir, 'loop'));
    const sink = createDirectorySink(dir);
    for (const name of ['a/b/c/disk.raw', 'a/b/disk.raw', 'loop/disk.raw']) {
      const error = await rejection(sink.writeFile(name, chunksOf(Buffer.from('x'), 1)));
      expect(HvkitError.isInstance(error, 'CONFLICT'), name).toBe(true);
    }
    expect(listAll(outside)).toEqual([]);
    // (Listed one level at a time: a recursive listing would follow the loop.)
    expect(readdirSync(dir).sort()).toEqual(['a', 'loop']);
    expect(readdirSync(join(dir, 'a'))).toEqual(['b']);
  });

  it('refuses a regular file where a directory is needed with CONFLICT', async () => {
    const { dir } = plant();
    writeFileSync(join(dir, 'f'), 'x');
    const error = await rejection(
      createDirectorySink(dir).writeFile('f/disk.raw', chunksOf(Buffer.from('x'), 1)),
    );
    expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
  });

  it('removeFile does not delete through a symlinked directory', async () => {
    const { dir, outside } = plant();
    writeFileSync(join(outside, 'victim.raw'), 'keep me');
    symlinkSync(outside, join(dir, 'guest-1'));
    const sink = createDirectorySink(dir);
    const error = await rejection(sink.removeFile?.('guest-1/victim.raw') as Promise<void>);
    expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
    expect(readFileSync(join(outside, 'victim.raw'), 'utf8')).toBe('keep me');
    // A missing parent directory is a missing file: nothing to remove.
    await sink.removeFile?.('no-such-dir/x.raw');
  });

  it('replaces a symlink at the file name itself instead of writing through it', async () => {
    const { dir, outside } = plant();
    writeFileSync(join(outside, 'target'), 'untouched');
    symlinkSync(join(outside, 'target'), join(dir, 'disk.raw'));
    const sink = createDirectorySink(dir, { fsync: false });
    await sink.writeFile('disk.raw', chunksOf(Buffer.from('backup data'), 4));
    expect(lstatSync(join(dir, 'disk.raw')).isFile()).toBe(true);
    expect(readFileSync(join(dir, 'disk.raw'), 'utf8')).toBe('backup data');
    expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('untouched');
    // removeFile removes a link, never its target.
    symlinkSync(join(outside, 'target'), join(dir, 'link.raw'));
    await sink.removeFile?.('link.raw');
    expect(listAll(dir)).toEqual(['disk.raw']);
    expect(readFileSync(join(outside, 'target'), 'utf8')).toBe('untouched');
  });

  it('follows a symlink that is the sink directory itself (the caller chose it)', async () => {
    const { dir, outside } = plant();
    const link = join(dir, 'backups');
    symlinkSync(outside, link);
    const sink = createDirectorySink(link, { fsync: false });
    await sink.writeFile('guest/disk.raw', chunksOf(Buffer.from('via the root link'), 4));
    expect(readFileSync(join(outside, 'guest', 'disk.raw'), 'utf8')).toBe('via the root link');
    await sink.removeFile?.('guest/disk.raw');
    expect(listAll(outside)).toEqual(['guest']);
  });

  it('writes names up to 255 bytes per segment in any script, and refuses longer ones with INVALID_ARGUMENT', async () => {
    const { dir } = plant();
    const sink = createDirectorySink(dir, { fsync: false });
    const names = ['日'.repeat(85), 'é'.repeat(127) + 'x', '\u{1F600}'.repeat(63) + 'abc', 'x'.repeat(255)];
    for (const name of names) {
      expect(Buffer.byteLength(name)).toBe(255);
      await sink.writeFile(`${name}/${name}`, chunksOf(Buffer.from(name), 7));
      expect(readFileSync(join(dir, name, name), 'utf8')).toBe(name);
    }
    for (const name of ['x'.repeat(256), '日'.repeat(86)]) {
      const error = await rejection(sink.writeFile(name, chunksOf(Buffer.from('x'), 1)));
      expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT')).toBe(true);
    }
  });

  it('a directory path too long for the system is INVALID_ARGUMENT, not REMOTE', async () => {
    const { dir } = plant();
    const deep = join(dir, ...Array.from({ length: 20 }, () => 'd'.repeat(250)));
    const error = await rejection(
      createDirectorySink(deep).writeFile('x.raw', chunksOf(Buffer.from('x'), 1)),
    );
    expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT')).toBe(true);
    expect(error.backendCode).toBe('ENAMETOOLONG');
    expect(listAll(dir)).toEqual([]);
  });
});
