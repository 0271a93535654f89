import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statfsSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rejection, testTempDir } from '../__test-utils__';
import { HvkitError } from '../errors/hvkit-error';
import { openConfinedDirectory } from './confined-dir';

const scratch = testTempDir('hvkit-confined-');
let counter = 0;

function setup(): { root: string; outside: string } {
  const base = join(scratch(), `t${++counter}`);
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(root, { recursive: true });
  mkdirSync(outside, { recursive: true });
  return { root, outside };
}

// /proc/self/fd exists on the Linux machines CI runs on; the lstat walk is what other systems get.
const procFd = existsSync('/proc/self/fd');
// sysfs refuses mkdir even to root (EPERM): a real file system error on the create path, without mocks.
const SYSFS_MAGIC = 0x62656572;
const sysfs = (() => {
  try {
    return statfsSync('/sys').type === SYSFS_MAGIC;
  } catch {
    return false;
  }
})();

describe.each([
  { mode: 'anchored (/proc/self/fd)', anchored: true },
  { mode: 'walked (lstat, then confirm)', anchored: false },
])('openConfinedDirectory, $mode', ({ anchored }) => {
  it('creates and opens nested directories; entries are reached through it', async () => {
    const { root } = setup();
    const dir = await openConfinedDirectory(root, ['a', 'b'], { create: true, anchored });
    try {
      expect(dir.anchored).toBe(anchored && procFd);
      expect(dir.path).toBe(join(root, 'a', 'b'));
      await fsp.writeFile(dir.entryPath('f'), 'data');
      await dir.confirm();
      await fsp.rename(dir.entryPath('f'), dir.entryPath('g'));
      await dir.sync();
    } finally {
      await dir.close();
    }
    expect(readFileSync(join(root, 'a', 'b', 'g'), 'utf8')).toBe('data');
  });

  it('refuses a symbolic link, a file where a directory is needed, and a missing component', async () => {
    const { root, outside } = setup();
    mkdirSync(join(root, 'a'));
    symlinkSync(outside, join(root, 'a', 'link'));
    writeFileSync(join(root, 'file'), 'x');
    const link = await rejection(openConfinedDirectory(root, ['a', 'link', 'c'], { create: true, anchored }));
    expect(HvkitError.isInstance(link, 'CONFLICT')).toBe(true);
    expect(link.backendCode).toBe('ELOOP');
    expect(link.details?.path).toBe(join(root, 'a', 'link'));
    expect(link.message).toContain('is a symbolic link');
    const file = await rejection(openConfinedDirectory(root, ['file'], { create: true, anchored }));
    expect(HvkitError.isInstance(file, 'CONFLICT')).toBe(true);
    expect(file.backendCode).toBe('ENOTDIR');
    expect(file.message).toContain('is not a directory');
    const missing = await rejection(openConfinedDirectory(root, ['nope'], { anchored }));
    expect(HvkitError.isInstance(missing, 'NOT_FOUND')).toBe(true);
    expect(readdirSync(outside)).toEqual([]);
    expect(existsSync(join(root, 'nope'))).toBe(false);
  });

  it.skipIf(!sysfs)(
    'maps a directory the file system refuses to create to its own code (needs sysfs at /sys: EPERM)',
    async () => {
      const name = `hvkit-confined-${process.pid}`;
      const error = await rejection(openConfinedDirectory('/sys', [name, 'b'], { create: true, anchored }));
      expect(HvkitError.isInstance(error, 'PERMISSION_DENIED')).toBe(true);
      expect(error.backendCode).toBe('EPERM');
      expect(error.details?.path).toBe(join('/sys', name));
    },
  );

  it('is not redirected by a directory swapped for a link after the walk', async () => {
    const { root, outside } = setup();
    const dir = await openConfinedDirectory(root, ['sub'], { create: true, anchored });
    try {
      renameSync(join(root, 'sub'), join(root, 'sub.moved'));
      symlinkSync(outside, join(root, 'sub'));
      if (dir.anchored) {
        // The open directory is the one that was checked, wherever it is now.
        await fsp.writeFile(dir.entryPath('f'), 'data');
        expect(readFileSync(join(root, 'sub.moved', 'f'), 'utf8')).toBe('data');
      } else {
        const error = await rejection(dir.confirm());
        expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
        expect(error.details?.path).toBe(join(root, 'sub'));
      }
      expect(readdirSync(outside)).toEqual([]);
    } finally {
      await dir.close();
    }
  });

  it('confirm tells whether a file created by path is the one in the directory', async () => {
    const { root, outside } = setup();
    const dir = await openConfinedDirectory(root, ['sub'], { create: true, anchored });
    try {
      const handle = await fsp.open(dir.entryPath('t'), 'wx');
      try {
        await dir.confirm('t', handle);
        if (!dir.anchored) {
          // The entry now names another file than the one open: a swap happened in between.
          renameSync(join(root, 'sub', 't'), join(outside, 't'));
          writeFileSync(join(root, 'sub', 't'), 'planted');
          const error = await rejection(dir.confirm('t', handle));
          expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
        }
      } finally {
        await handle.close();
      }
    } finally {
      await dir.close();
    }
  });
});
