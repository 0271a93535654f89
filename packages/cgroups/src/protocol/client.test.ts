import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalFiles, HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CgroupsClient, HELLO_FILES, MAX_FILE_BYTES } from './client';

// A real directory tree on disk through core's local files transport.
let root: string;

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hvkit-cgroups-'));
  mkdirSync(join(root, 'proc/sys/kernel'), { recursive: true });
  writeFileSync(join(root, HELLO_FILES.product), 'Stub\n');
  writeFileSync(join(root, HELLO_FILES.version), '1.2.3\n');
  writeFileSync(join(root, 'huge'), Buffer.alloc(MAX_FILE_BYTES + 1, 'x'));
  writeFileSync(join(root, 'binary'), Buffer.from([0xff, 0xfe, 0x00]));
  writeFileSync(join(root, 'empty'), '');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function client(dir = root): CgroupsClient {
  return new CgroupsClient(createLocalFiles(), dir, 10_000);
}

async function failure(promise: Promise<unknown>): Promise<HvkitError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!HvkitError.isInstance(error)) throw new Error(`expected an HvkitError, got ${String(error)}`);
  return error;
}

describe('CgroupsClient (files)', () => {
  it('reads what the backend says about itself', async () => {
    expect(await client().hello()).toEqual({ product: 'Stub', version: '1.2.3' });
  });

  it('maps a missing file through errors.ts', async () => {
    expect(await failure(client(join(root, 'nowhere')).hello())).toMatchObject({ code: 'UNSUPPORTED' });
  });

  it('refuses a file above MAX_FILE_BYTES and one that is not text', async () => {
    expect(await failure(client().readText('huge'))).toMatchObject({ code: 'PROTOCOL' });
    expect(await failure(client().readText('binary'))).toMatchObject({ code: 'PROTOCOL' });
  });

  it('refuses paths that leave the root', async () => {
    await expect(client().readText('../etc/passwd')).rejects.toThrow(TypeError);
    await expect(client().readText('/etc/passwd')).rejects.toThrow(TypeError);
  });

  it('stops at once when the signal has aborted', async () => {
    expect(await failure(client().readText('empty', { signal: AbortSignal.abort() }))).toMatchObject({
      code: 'ABORTED',
    });
  });

  it('refuses empty hello files', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvkit-cgroups-empty-'));
    mkdirSync(join(dir, 'proc/sys/kernel'), { recursive: true });
    writeFileSync(join(dir, HELLO_FILES.product), '');
    writeFileSync(join(dir, HELLO_FILES.version), '');
    expect(await failure(client(dir).hello())).toMatchObject({ code: 'PROTOCOL' });
    rmSync(dir, { recursive: true, force: true });
  });
});
