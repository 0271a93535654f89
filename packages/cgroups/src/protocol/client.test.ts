import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createLocalFiles } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection } from '../../../core/src/__test-utils__';
import { CgroupsClient, HELLO_FILES, MAX_FILE_BYTES } from './client';

// A real directory tree on disk through core's local files transport, laid out like a hybrid host.
let root: string;
const HYBRID = [
  '31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755',
  '32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu',
  '35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory',
  '41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw',
  '',
].join('\n');

beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'hvkit-cgroups-'));
  mkdirSync(join(root, 'proc/self'), { recursive: true });
  mkdirSync(join(root, 'proc/sys/kernel'), { recursive: true });
  mkdirSync(join(root, 'sys/fs/cgroup/unified'), { recursive: true });
  writeFileSync(join(root, HELLO_FILES.mountinfo), HYBRID);
  writeFileSync(join(root, HELLO_FILES.version), '6.18.0\n');
  writeFileSync(join(root, 'sys/fs/cgroup/unified/cgroup.controllers'), 'hugetlb\n');
  writeFileSync(join(root, 'huge'), Buffer.alloc(MAX_FILE_BYTES + 1, 'x'));
  writeFileSync(join(root, 'binary'), Buffer.from([0xff, 0xfe, 0x00]));
  writeFileSync(join(root, 'empty'), '');
});

afterAll(() => rmSync(root, { recursive: true, force: true }));

function client(dir = root): CgroupsClient {
  return new CgroupsClient(createLocalFiles(), dir, 10_000);
}

describe('CgroupsClient (files)', () => {
  it('reads the mode, the mounts and where each controller lives', async () => {
    const hello = await client().hello();
    expect(hello).toMatchObject({ product: 'cgroup-hybrid', version: '6.18.0', mode: 'hybrid' });
    expect(hello.v2Controllers).toEqual(['hugetlb']);
    expect(hello.controllers).toEqual({
      cpu: { version: 1, mountPoint: '/sys/fs/cgroup/cpu' },
      memory: { version: 1, mountPoint: '/sys/fs/cgroup/memory' },
    });
  });

  it('says UNSUPPORTED for a host without mountinfo or without cgroup mounts', async () => {
    expect(await rejection(client(join(root, 'nowhere')).hello())).toMatchObject({ code: 'UNSUPPORTED' });
    const dir = mkdtempSync(join(tmpdir(), 'hvkit-cgroups-none-'));
    mkdirSync(join(dir, 'proc/self'), { recursive: true });
    mkdirSync(join(dir, 'proc/sys/kernel'), { recursive: true });
    writeFileSync(join(dir, HELLO_FILES.mountinfo), '22 27 0:21 / /proc rw,relatime - proc proc rw\n');
    writeFileSync(join(dir, HELLO_FILES.version), '6.1.0\n');
    expect(await rejection(client(dir).hello())).toMatchObject({ code: 'UNSUPPORTED' });
    rmSync(dir, { recursive: true, force: true });
  });

  it('refuses a file above MAX_FILE_BYTES and one that is not text', async () => {
    expect(await rejection(client().readText('/huge'))).toMatchObject({ code: 'PROTOCOL' });
    expect(await rejection(client().readText('/binary'))).toMatchObject({ code: 'PROTOCOL' });
  });

  it('maps a missing file to NOT_FOUND, and tryReadText and list to undefined', async () => {
    expect(await rejection(client().readText('/missing'))).toMatchObject({
      code: 'NOT_FOUND',
      backendCode: 'ENOENT',
    });
    expect(await client().tryReadText('/missing')).toBeUndefined();
    expect(await client().list('/missing')).toBeUndefined();
    expect(await client().exists('/missing')).toBe(false);
    expect(await client().exists('/empty')).toBe(true);
  });

  it('refuses paths that are relative or leave the root', async () => {
    await expect(client().readText('../etc/passwd')).rejects.toThrow(TypeError);
    await expect(client().readText('/sys/../../etc/passwd')).rejects.toThrow(TypeError);
    expect(client().resolve('/sys/fs')).toBe(join(root, 'sys/fs'));
  });

  it('stops at once when the signal has aborted', async () => {
    expect(await rejection(client().readText('/empty', { signal: AbortSignal.abort() }))).toMatchObject({
      code: 'ABORTED',
    });
  });
});
