/**
 * limits.set on this machine's recorded hybrid tree (test/fixtures/hybrid-local), replayed with a kernel
 * that refuses chosen writes: the plan's order, and the rollback of the files already written when a
 * later write fails.
 */

import { join } from 'node:path';
import { type FileTreeSnapshot, readFixture, replayFiles } from '@hvkit/conformance/fixtures';
import { hvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { rejection } from '../../../core/src/__test-utils__';
import { cgroupOnWrite } from '../../test/replay-kernel';
import { FIXTURE_GROUP, FIXTURES } from '../../test/replay-options';
import { connect } from '../connect';

const fixture = await readFixture(join(import.meta.dirname, '..', '..', 'test', 'fixtures', FIXTURES.v1));
const snapshot = (await fixture.readJson('files.json')) as FileTreeSnapshot;
const CPU = `/sys/fs/cgroup/cpu/${FIXTURE_GROUP}`;
const MEM = `/sys/fs/cgroup/memory/${FIXTURE_GROUP}`;
const MiB = 1024 * 1024;

/** A replayed tree whose kernel refuses writes to files matching `refuse` with `errno`. */
function tree(refuse: (path: string, value: string) => string | undefined) {
  return replayFiles(snapshot, {
    allowCreate: false,
    onWrite(path, data, current) {
      const errno = refuse(path, data.toString());
      if (errno) {
        throw hvkitError('REMOTE', `${path}: ${errno}`, { operation: 'files.writeFile', backendCode: errno });
      }
      return cgroupOnWrite(path, data, current);
    },
  });
}

const text = async (files: ReturnType<typeof tree>, path: string) =>
  (await files.readFile(path)).toString().trim();

describe('limits.set rollback', () => {
  it('puts cpu.shares back when the memory limit then fails with EBUSY, and reports CONFLICT with the errno', async () => {
    const files = tree((path) => (path.endsWith('/memory.limit_in_bytes') ? 'EBUSY' : undefined));
    await using hv = await connect({ files, extraGroups: [FIXTURE_GROUP] });
    const e = await rejection(
      hv.limits.set(FIXTURE_GROUP, { cpu: { weight: 300, maxCores: 1 }, memory: { maxBytes: 256 * MiB } }),
    );
    expect(e).toMatchObject({ code: 'CONFLICT', backendCode: 'EBUSY', operation: 'limits.set' });
    expect(e.details).toMatchObject({
      errno: 'EBUSY',
      path: `${MEM}/memory.limit_in_bytes`,
      rolledBack: [`${CPU}/cpu.shares`, `${CPU}/cpu.cfs_quota_us`],
    });
    expect(e.message).toContain('put back');
    expect(files.writes.map((w) => [w.path, w.data.toString()])).toEqual([
      [`${CPU}/cpu.shares`, '3072'],
      [`${CPU}/cpu.cfs_quota_us`, '100000'],
      [`${CPU}/cpu.cfs_quota_us`, '-1'],
      [`${CPU}/cpu.shares`, '1024'],
    ]);
    expect(await text(files, `${CPU}/cpu.shares`)).toBe('1024');
    expect(await text(files, `${CPU}/cpu.cfs_quota_us`)).toBe('-1');
  });

  it('says which files it could not put back', async () => {
    let sharesWrites = 0;
    const files = tree((path) => {
      if (path.endsWith('/cpu.shares') && ++sharesWrites === 2) return 'EIO';
      return path.endsWith('/pids.max') ? 'EINVAL' : undefined;
    });
    await using hv = await connect({ files, extraGroups: [FIXTURE_GROUP] });
    const e = await rejection(hv.limits.set(FIXTURE_GROUP, { cpu: { weight: 300 }, pids: { max: 10 } }));
    expect(e).toMatchObject({ code: 'INVALID_ARGUMENT', backendCode: 'EINVAL' });
    expect(e.details?.rollbackFailed).toEqual([
      { path: `${CPU}/cpu.shares`, error: expect.stringContaining('EIO') },
    ]);
    expect(e.message).toContain('failed for');
  });

  it('writes nothing for a patch that fails validation', async () => {
    const files = tree(() => undefined);
    await using hv = await connect({ files, extraGroups: [FIXTURE_GROUP] });
    expect((await rejection(hv.limits.set(FIXTURE_GROUP, { cpu: { weight: 0 } }))).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(
      (await rejection(hv.limits.set(FIXTURE_GROUP, { cpu: { weight: 300, maxCores: 0.001 } }))).code,
    ).toBe('INVALID_ARGUMENT');
    expect(files.writes).toEqual([]);
  });
});

describe('limits.set on v1 memory keeps limit ≤ memsw at every step', () => {
  it('raising the limit above memsw writes memsw first; lowering memsw below the limit writes the limit first', async () => {
    const files = tree(() => undefined);
    await using hv = await connect({ files, extraGroups: [FIXTURE_GROUP] });
    // Recorded: limit 768 MiB, memsw unlimited. Set limit 512 MiB + 64 MiB swap: memsw 576 MiB is below
    // the old limit, so the limit goes first.
    await hv.limits.set(FIXTURE_GROUP, { memory: { maxBytes: 512 * MiB, swapMaxBytes: 64 * MiB } });
    expect(files.writes.map((w) => w.path.split('/').pop())).toEqual([
      'memory.limit_in_bytes',
      'memory.memsw.limit_in_bytes',
    ]);
    // Raise the limit to 1 GiB keeping 64 MiB of swap: memsw (1 GiB + 64 MiB) goes first.
    await hv.limits.set(FIXTURE_GROUP, { memory: { maxBytes: 1024 * MiB } });
    expect(files.writes.slice(2).map((w) => [w.path.split('/').pop(), w.data.toString()])).toEqual([
      ['memory.memsw.limit_in_bytes', String(1088 * MiB)],
      ['memory.limit_in_bytes', String(1024 * MiB)],
    ]);
    expect((await hv.limits.get(FIXTURE_GROUP)).memory).toMatchObject({
      maxBytes: 1024 * MiB,
      swapMaxBytes: 64 * MiB,
    });
  });
});
