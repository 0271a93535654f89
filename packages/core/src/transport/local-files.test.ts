import {
  mkdirSync,
  readdirSync,
  readFileSync,
  rmdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rejection, testTempDir } from '../__test-utils__';
import { HvkitError } from '../errors/hvkit-error';
import { createLocalFiles, errnoToHvkitError } from './local-files';

const files = createLocalFiles();
const scratch = testTempDir('hvkit-files-');

describe('createLocalFiles', () => {
  it('writes atomically and reads back', async () => {
    const path = join(scratch(), 'a.txt');
    await files.writeFile(path, 'hello');
    expect((await files.readFile(path)).toString()).toBe('hello');
    await files.writeFile(path, new Uint8Array([1, 2, 3]));
    expect([...(await files.readFile(path))]).toEqual([1, 2, 3]);
    // No temporary file is left beside it.
    expect(readdirSync(scratch()).filter((n) => n.startsWith('.'))).toEqual([]);
  });

  it('applies mode to new files and keeps the mode of replaced ones', async () => {
    const path = join(scratch(), 'secret.conf');
    await files.writeFile(path, 'x', { mode: 0o600 });
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await files.writeFile(path, 'y');
    expect(statSync(path).mode & 0o777).toBe(0o600);
    await files.writeFile(path, 'z', { mode: 0o640 });
    expect(statSync(path).mode & 0o777).toBe(0o640);
  });

  it('can write in place', async () => {
    const path = join(scratch(), 'inplace.txt');
    writeFileSync(path, 'old content that is long');
    const inode = statSync(path).ino;
    await files.writeFile(path, 'new', { atomic: false });
    expect(readFileSync(path, 'utf8')).toBe('new');
    expect(statSync(path).ino).toBe(inode);
    // In place never creates a file.
    expect(
      (await rejection(files.writeFile(join(scratch(), 'absent.txt'), 'x', { atomic: false }))).code,
    ).toBe('NOT_FOUND');
  });

  it('writes pseudo-file-system files in place (a scratch cgroup)', async (context) => {
    const root = '/sys/fs/cgroup/pids';
    const group = join(root, `hvkit-files-test-${process.pid}`);
    try {
      mkdirSync(group);
    } catch (error) {
      context.skip(`cannot create a scratch cgroup under ${root}: ${(error as Error).message}`);
      return;
    }
    try {
      // cgroupfs refuses new files, so an atomic (temp + rename) write could not work here.
      await files.writeFile(join(group, 'pids.max'), '42');
      expect(readFileSync(join(group, 'pids.max'), 'utf8')).toBe('42\n');
      await files.writeFile(join(group, 'pids.max'), 'max\n');
      expect((await files.readFile(join(group, 'pids.max'))).toString()).toBe('max\n');
      // The kernel's EINVAL travels as the backend code.
      const error = await rejection(files.writeFile(join(group, 'pids.max'), '-3'));
      expect(error.code).toBe('REMOTE');
      expect(error.backendCode).toBe('EINVAL');
    } finally {
      rmdirSync(group);
    }
  });

  it('lists and stats', async () => {
    const dir = join(scratch(), 'tree');
    mkdirSync(dir);
    writeFileSync(join(dir, 'f1'), '12345');
    mkdirSync(join(dir, 'sub'));
    symlinkSync('f1', join(dir, 'link'));
    const entries = await files.list(dir);
    expect(entries.map((e) => [e.name, e.type])).toEqual([
      ['f1', 'file'],
      ['link', 'symlink'],
      ['sub', 'directory'],
    ]);
    expect(entries[0]?.size).toBe(5);
    expect(entries[0]?.mtime).toBeInstanceOf(Date);
    const stat = await files.stat(join(dir, 'link'));
    expect(stat).toMatchObject({ name: 'link', type: 'file', size: 5 });
  });

  it('streams a file from an offset', async () => {
    const path = join(scratch(), 'stream.bin');
    writeFileSync(path, 'abcdefghij');
    const stream = await files.createReadStream(path, { start: 4 });
    let text = '';
    for await (const chunk of stream) text += chunk.toString();
    expect(text).toBe('efghij');
    expect((await rejection(files.createReadStream(join(scratch(), 'nope')))).code).toBe('NOT_FOUND');
  });

  it('removes files and empty directories, ignores missing paths', async () => {
    const path = join(scratch(), 'rm.txt');
    writeFileSync(path, 'x');
    await files.remove(path);
    await files.remove(path);
    const dir = join(scratch(), 'rmdir');
    mkdirSync(dir);
    writeFileSync(join(dir, 'inside'), 'x');
    expect((await rejection(files.remove(dir))).code).toBe('CONFLICT');
    rmSync(join(dir, 'inside'));
    await files.remove(dir);
    expect(readdirSync(scratch())).not.toContain('rmdir');
  });

  it('maps errors to codes with the path', async () => {
    const missing = join(scratch(), 'missing.txt');
    const error = await rejection(files.readFile(missing));
    expect(error.code).toBe('NOT_FOUND');
    expect(error.backendCode).toBe('ENOENT');
    expect(error.operation).toBe('files.readFile');
    expect(error.message).toContain(missing);
    expect((await rejection(files.list(missing))).code).toBe('NOT_FOUND');
    expect((await rejection(files.stat(missing))).code).toBe('NOT_FOUND');
    expect((await rejection(files.writeFile(join(scratch(), 'no-dir', 'x'), 'x'))).code).toBe('NOT_FOUND');
    const isDir = await rejection(files.readFile(scratch()));
    expect(isDir.code).toBe('REMOTE');
    expect(isDir.backendCode).toBe('EISDIR');
  });

  it('rejects an already-aborted signal and bad input', async () => {
    const controller = new AbortController();
    controller.abort();
    const path = join(scratch(), 'aborted.txt');
    expect((await rejection(files.writeFile(path, 'x', { signal: controller.signal }))).code).toBe('ABORTED');
    expect(readdirSync(scratch())).not.toContain('aborted.txt');
    expect((await rejection(files.readFile(path, { signal: controller.signal }))).code).toBe('ABORTED');
    expect(() => files.readFile('')).toThrow(HvkitError);
    expect(() => files.readFile('a\0b')).toThrow(/NUL/);
    expect(() => files.readFile(5 as unknown as string)).toThrow(TypeError);
    expect(() => files.writeFile(path, 5 as unknown as string)).toThrow(TypeError);
  });
});

describe('errnoToHvkitError', () => {
  function errno(code: string): NodeJS.ErrnoException {
    return Object.assign(new Error(`${code}: failed`), { code, syscall: 'open' });
  }

  it.each([
    ['ENOENT', 'NOT_FOUND'],
    ['ENOTDIR', 'NOT_FOUND'],
    ['EACCES', 'PERMISSION_DENIED'],
    ['EPERM', 'PERMISSION_DENIED'],
    ['EROFS', 'PERMISSION_DENIED'],
    ['EEXIST', 'CONFLICT'],
    ['ENOTEMPTY', 'CONFLICT'],
    ['ENAMETOOLONG', 'INVALID_ARGUMENT'],
    ['EINVAL', 'REMOTE'],
    ['EBUSY', 'REMOTE'],
    ['ENOSPC', 'REMOTE'],
  ])('%s → %s', (code, expected) => {
    const error = errnoToHvkitError(errno(code), { operation: 'files.writeFile', path: '/x' });
    expect(error.code).toBe(expected);
    expect(error.backendCode).toBe(code);
    expect(error.details).toEqual({ path: '/x' });
    expect(error.cause).toBeInstanceOf(Error);
  });

  it('passes HvkitErrors through and copes with odd values', () => {
    const e = new HvkitError({ code: 'TIMEOUT', message: 't' });
    expect(errnoToHvkitError(e)).toBe(e);
    expect(errnoToHvkitError('weird').code).toBe('REMOTE');
  });
});
