/**
 * The confined directory's errors and re-checks in detail: each refusal's code, backend code, path,
 * operation and cause in both modes, and what `confirm` finds when a component or the entry was
 * removed, replaced by a directory, a file or a link after the walk. confined-dir.test.ts covers the walk
 * itself.
 */

import {
  existsSync,
  mkdirSync,
  readdirSync,
  renameSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rejection, testTempDir } from '../__test-utils__';
import { HvkitError } from '../errors/hvkit-error';
import { type ConfinedDirectory, openConfinedDirectory } from './confined-dir';

const scratch = testTempDir('hvkit-confined-contract-');
let counter = 0;

function setup(): { root: string; outside: string } {
  const base = join(scratch(), `t${++counter}`);
  const root = join(base, 'root');
  const outside = join(base, 'outside');
  mkdirSync(root, { recursive: true });
  mkdirSync(outside, { recursive: true });
  return { root, outside };
}

const operation = 'sink.test';

async function conflict(promise: Promise<unknown>, backendCode: string, path: string): Promise<HvkitError> {
  const error = await rejection(promise);
  expect(HvkitError.isInstance(error, 'CONFLICT'), String(error)).toBe(true);
  expect([error.backendCode, error.operation, error.details?.path]).toEqual([backendCode, operation, path]);
  return error;
}

const what = {
  ELOOP: 'is a symbolic link',
  ENOTDIR: 'is not a directory',
  ESTALE: 'was replaced while in use',
};

describe.each([
  { mode: 'anchored', anchored: true },
  { mode: 'walked', anchored: false },
])('openConfinedDirectory ($mode): refusals', ({ anchored }) => {
  it('names the link or the file on the way, with the operation, and the errno as cause where there is one', async () => {
    const { root, outside } = setup();
    symlinkSync(outside, join(root, 'link'));
    writeFileSync(join(root, 'file'), 'x');
    for (const [segments, code] of [
      [['link'], 'ELOOP'],
      [['link', 'deeper'], 'ELOOP'],
      [['file'], 'ENOTDIR'],
      [['file', 'deeper'], 'ENOTDIR'],
    ] as const) {
      const path = join(root, segments[0]);
      const error = await conflict(
        openConfinedDirectory(root, segments, { create: true, anchored, operation }),
        code,
        path,
      );
      expect(error.message).toBe(
        `${operation}: ${JSON.stringify(path)} ${what[code]}; a sink does not follow symbolic links below its directory.`,
      );
      if (anchored) expect(typeof (error.cause as NodeJS.ErrnoException).code).toBe('string');
    }
  });

  it('maps a missing component or root to NOT_FOUND with the operation and the path shown', async () => {
    const { root } = setup();
    const missing = await rejection(openConfinedDirectory(root, ['a', 'b'], { anchored, operation }));
    expect(HvkitError.isInstance(missing, 'NOT_FOUND')).toBe(true);
    expect(missing.operation).toBe(operation);
    expect(missing.message).toContain(join(root, 'a'));
    const noRoot = await rejection(openConfinedDirectory(join(root, 'none'), [], { anchored, operation }));
    expect(HvkitError.isInstance(noRoot, 'NOT_FOUND')).toBe(true);
    expect(noRoot.operation).toBe(operation);
    expect(noRoot.message).toContain(join(root, 'none'));
  });

  it('opens the root itself with no segments, also when the root is a link the caller chose', async () => {
    const { root, outside } = setup();
    const link = join(root, '..', 'root-link');
    symlinkSync(outside, link);
    for (const dirPath of [root, link]) {
      const dir = await openConfinedDirectory(dirPath, [], { anchored, operation });
      try {
        expect(dir.path).toBe(dirPath);
        await fsp.writeFile(dir.entryPath('f'), 'x');
        await dir.confirm();
        await dir.sync();
        await dir.sync();
      } finally {
        await dir.close();
        await dir.close();
      }
    }
    expect(await fsp.readFile(join(outside, 'f'), 'utf8')).toBe('x');
  });
});

describe('openConfinedDirectory (walked): confirm', () => {
  async function walked(root: string): Promise<ConfinedDirectory> {
    return openConfinedDirectory(root, ['a', 'b'], { create: true, anchored: false, operation });
  }

  // Replacements keep the old directory (moved aside), so the new one cannot reuse its inode number.
  const CHANGES: Record<string, [(p: string) => void, string]> = {
    removed: [(p) => renameSync(p, `${p}.old`), 'ESTALE'],
    'replaced by another directory': [
      (p) => {
        renameSync(p, `${p}.old`);
        mkdirSync(p);
      },
      'ESTALE',
    ],
    'replaced by a file': [
      (p) => {
        renameSync(p, `${p}.old`);
        writeFileSync(p, 'x');
      },
      'ESTALE',
    ],
    'replaced by a link to itself elsewhere': [
      (p) => {
        renameSync(p, `${p}.old`);
        symlinkSync(`${p}.old`, p);
      },
      'ELOOP',
    ],
  };

  it.each(Object.keys(CHANGES))('a component %s after the walk is refused', async (change) => {
    const [apply, code] = CHANGES[change] as [(p: string) => void, string];
    for (const which of ['a', 'a/b']) {
      const { root } = setup();
      const dir = await walked(root);
      try {
        await dir.confirm();
        apply(join(root, which));
        await conflict(dir.confirm(), code, join(root, which));
      } finally {
        await dir.close();
      }
    }
  });

  it('re-checks the root itself too', async () => {
    const { root } = setup();
    const dir = await openConfinedDirectory(root, [], { anchored: false, operation });
    try {
      renameSync(root, `${root}.old`);
      mkdirSync(root);
      await conflict(dir.confirm(), 'ESTALE', root);
    } finally {
      await dir.close();
    }
  });

  it('checks the entry against the open file only when both are given', async () => {
    const { root } = setup();
    const dir = await walked(root);
    try {
      const handle = await fsp.open(dir.entryPath('t'), 'wx');
      try {
        await dir.confirm('t', handle);
        unlinkSync(dir.entryPath('t'));
        await dir.confirm('t');
        await dir.confirm(undefined, handle);
        await conflict(dir.confirm('t', handle), 'ESTALE', join(root, 'a', 'b', 't'));
        writeFileSync(dir.entryPath('t'), 'other');
        await conflict(dir.confirm('t', handle), 'ESTALE', join(root, 'a', 'b', 't'));
      } finally {
        await handle.close();
      }
    } finally {
      await dir.close();
    }
  });

  it.skipIf(!existsSync('/proc/self/fd'))('closes the directory it opened to sync it', async () => {
    const open = () => readdirSync('/proc/self/fd').length;
    const { root } = setup();
    const warm = await walked(root);
    await warm.sync();
    await warm.close();
    const before = open();
    const dir = await walked(root);
    await dir.sync();
    await dir.close();
    expect(open()).toBe(before);
  });

  it('syncs through one handle it keeps, and ignores a directory that cannot be synced any more', async () => {
    const { root } = setup();
    const dir = await walked(root);
    await dir.sync();
    await dir.sync();
    rmSync(join(root, 'a'), { recursive: true });
    await dir.close();
    const gone = await walked(setup().root);
    rmSync(gone.entryPath('..'), { recursive: true });
    await expect(gone.sync()).resolves.toBeUndefined();
    await gone.close();
  });
});
