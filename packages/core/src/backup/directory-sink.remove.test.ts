/**
 * `removeIncomplete` of the directory sink, rule by rule: what counts as an incomplete artifact folder, what
 * is never touched, its order, its bounds (depth, abort) and the operation its errors name.
 */
import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rejection, testTempDir } from '../__test-utils__';
import { createDirectorySink } from './directory-sink';
import { BACKUP_MANIFEST_FILE } from './manifest';

const base = testTempDir('hvkit-remove-incomplete-');
let n = 0;
function freshDir(): string {
  const dir = join(base(), `d${n++}`);
  mkdirSync(dir);
  return dir;
}

/** An artifact folder `web/<id>` with a disk file and, when `complete`, a manifest. */
function folder(dir: string, id: string, complete = false): string {
  const path = join(dir, 'web', id);
  mkdirSync(path, { recursive: true });
  writeFileSync(join(path, 'disk-vda.raw'), 'data');
  if (complete) writeFileSync(join(path, BACKUP_MANIFEST_FILE), '{}');
  return `web/${id}`;
}

const openFds = () => readdirSync('/proc/self/fd').length;

describe('directory sink: removeIncomplete', () => {
  it('removes every incomplete folder, in name order, whatever order the directory lists them in', async () => {
    const dir = freshDir();
    const ids = ['m', 'c', 'x', 'a', 'q', 'f', 'z', 'b', 'k', 'e'].map((c) => `20261207T1200${c}Z-full-${c}`);
    for (const id of ids) folder(dir, id);
    const removed = await createDirectorySink(dir).removeIncomplete?.('web', []);
    expect(removed).toEqual(ids.map((id) => `web/${id}`).sort());
    expect(readdirSync(join(dir, 'web'))).toEqual([]);
  });

  it('leaves files, dot folders, complete artifacts and kept runs; a name ending in a dot is still a folder', async () => {
    const dir = freshDir();
    folder(dir, 'done', true);
    folder(dir, '.hidden');
    folder(dir, 'kept');
    const dotted = folder(dir, 'dotted.');
    writeFileSync(join(dir, 'web', 'a-file'), 'not a folder');
    const removed = await createDirectorySink(dir).removeIncomplete?.('web', ['kept']);
    expect(removed).toEqual([dotted]);
    expect(readdirSync(join(dir, 'web')).sort()).toEqual(['.hidden', 'a-file', 'done', 'kept']);
    expect(readdirSync(join(dir, 'web', 'done')).sort()).toEqual(
      ['disk-vda.raw', BACKUP_MANIFEST_FILE].sort(),
    );
    expect(readdirSync(join(dir, 'web', 'kept'))).toEqual(['disk-vda.raw']);
    expect(readdirSync(join(dir, 'web', '.hidden'))).toEqual(['disk-vda.raw']);
  });

  it('a manifest that is a folder does not make an artifact complete', async () => {
    const dir = freshDir();
    const path = folder(dir, 'odd');
    mkdirSync(join(dir, path, BACKUP_MANIFEST_FILE));
    expect(await createDirectorySink(dir).removeIncomplete?.('web', [])).toEqual([path]);
  });

  it('empties nested folders 16 levels deep, and refuses deeper ones with CONFLICT naming the operation', async () => {
    const dir = freshDir();
    const ok = folder(dir, 'deep-ok');
    mkdirSync(join(dir, ok, ...Array.from({ length: 16 }, (_, i) => `l${i}`)), { recursive: true });
    expect(await createDirectorySink(dir).removeIncomplete?.('web', [])).toEqual([ok]);

    const tooDeep = folder(dir, 'deep-bad');
    mkdirSync(join(dir, tooDeep, ...Array.from({ length: 17 }, (_, i) => `l${i}`)), { recursive: true });
    const error = await rejection(createDirectorySink(dir).removeIncomplete?.('web', []) as Promise<unknown>);
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toBe('sink.removeIncomplete: directories nested too deep to remove.');
  });

  it('an aborted signal: nothing removed; an abort between folders stops with ABORTED', async () => {
    const dir = freshDir();
    const a = folder(dir, 'a');
    folder(dir, 'b');
    const sink = createDirectorySink(dir);
    const pre = await rejection(
      sink.removeIncomplete?.('web', [], { signal: AbortSignal.abort() }) as Promise<unknown>,
    );
    expect(pre.code).toBe('ABORTED');
    expect(pre.operation).toBe('sink.removeIncomplete');
    expect(readdirSync(join(dir, 'web')).sort()).toEqual(['a', 'b']);

    // Aborted after the call started: the loop sees it before it removes anything more.
    const controller = new AbortController();
    const during = sink.removeIncomplete?.('web', [], { signal: controller.signal }) as Promise<unknown>;
    controller.abort();
    const error = await rejection(during);
    expect(error.code).toBe('ABORTED');
    expect(error.operation).toBe('sink.removeIncomplete');
    expect(readdirSync(join(dir, 'web')).sort()).toEqual([a.slice('web/'.length), 'b']);
  });

  it('an aborted signal is ABORTED even when there is no guest folder', async () => {
    const dir = freshDir();
    const error = await rejection(
      createDirectorySink(dir).removeIncomplete?.('nobody', [], {
        signal: AbortSignal.abort(),
      }) as Promise<unknown>,
    );
    expect(error.code).toBe('ABORTED');
  });

  it('an abort after the call started stops before the next folder, even an empty one', async () => {
    const dir = freshDir();
    mkdirSync(join(dir, 'web', 'empty'), { recursive: true });
    const controller = new AbortController();
    const during = createDirectorySink(dir).removeIncomplete?.('web', [], {
      signal: controller.signal,
    }) as Promise<unknown>;
    controller.abort();
    expect((await rejection(during)).code).toBe('ABORTED');
    expect(readdirSync(join(dir, 'web'))).toEqual(['empty']);
  });

  it('an abort while a folder is emptied stops between its entries', async () => {
    const dir = freshDir();
    const path = folder(dir, 'one');
    writeFileSync(join(dir, path, 'second'), 'x');
    // A signal that turns aborted at its third look: the call's start, the folder, then inside the folder.
    const controller = new AbortController();
    let looks = 0;
    Object.defineProperty(controller.signal, 'aborted', {
      get: () => {
        looks += 1;
        if (looks === 3) controller.abort();
        return looks >= 3;
      },
    });
    const error = await rejection(
      createDirectorySink(dir).removeIncomplete?.('web', [], {
        signal: controller.signal,
      }) as Promise<unknown>,
    );
    expect(error.code).toBe('ABORTED');
    expect(error.operation).toBe('sink.removeIncomplete');
    expect(readdirSync(join(dir, path)).length).toBe(2);
  });

  it('errors name the operation; a guest folder that is a file is CONFLICT', async () => {
    const dir = freshDir();
    writeFileSync(join(dir, 'web'), 'a file');
    const error = await rejection(createDirectorySink(dir).removeIncomplete?.('web', []) as Promise<unknown>);
    expect(error.code).toBe('CONFLICT');
    expect(error.operation).toBe('sink.removeIncomplete');
  });

  it('closes every directory it opened, on success and on failure', async () => {
    const dir = freshDir();
    for (const id of ['a', 'b', 'c']) folder(dir, id);
    const sink = createDirectorySink(dir);
    const before = openFds();
    await sink.removeIncomplete?.('web', []);
    expect(openFds()).toBe(before);

    const deep = folder(dir, 'deep');
    mkdirSync(join(dir, deep, ...Array.from({ length: 17 }, (_, i) => `l${i}`)), { recursive: true });
    const again = openFds();
    await rejection(sink.removeIncomplete?.('web', []) as Promise<unknown>);
    expect(openFds()).toBe(again);
  });
});
