/** Restore, checkpoint chains, leases and cleanup of the in-memory adapter, through real directories. */
import { readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rejection, testTempDir } from '../__test-utils__';
import { createDirectorySink } from '../backup/directory-sink';
import { createDirectorySource } from '../backup/directory-source';
import { BACKUP_MANIFEST_FILE } from '../backup/manifest';
import { checkProgressLog } from '../backup/progress';
import type { Progress } from '../hypervisor/v1/model';
import { createInMemoryAdapter } from './in-memory-adapter';

const root = testTempDir('hvkit-inmem-restore-');
let counter = 0;
const freshDir = () => join(root(), `d${++counter}`);

function setup(options: Parameters<typeof createInMemoryAdapter>[0] = {}) {
  const dir = freshDir();
  const a = createInMemoryAdapter({ ...options, without: undefined });
  return {
    a,
    dir,
    sink: createDirectorySink(dir, { fsync: false }),
    source: createDirectorySource(dir),
    /** Everything that a failed restore must not change. */
    state: () => ({ guests: a.backend.listGuestNames(), volumes: a.backend.listVolumes() }),
  };
}

describe('in-memory restore', () => {
  it('restores a full backup as a new guest: same definition and disk bytes, new ids and MACs', async () => {
    const { a, sink, source } = setup();
    const artifact = await a.backups.backup('vm-101', sink);
    const original = a.backend.getGuest('vm-101');
    const sums = original.disks.map((d) => a.backend.diskSha256('vm-101', d.device));
    const progress: Progress[] = [];
    const result = await a.backups.restore?.(source, {
      guest: 'web-01',
      onProgress: (p) => progress.push(p),
    });
    if (!result) throw new Error('no restore');
    const g = result.guest;
    expect(result.mode).toBe('new');
    expect(result.artifacts).toEqual([artifact.id]);
    expect(result.files.map((f) => f.name)).toEqual(artifact.files.slice(0, -1).map((f) => f.name));
    expect(g.name).toBe(`web-01-restored-${artifact.id}`);
    expect(g.id).not.toBe(original.id);
    expect(g.uuid).not.toBe(original.uuid);
    expect(g.powerState).toBe('stopped');
    expect(g.vcpus).toBe(original.vcpus);
    expect(g.memoryBytes).toBe(original.memoryBytes);
    expect(g.disks.map((d) => [d.device, d.capacityBytes, d.format])).toEqual(
      original.disks.map((d) => [d.device, d.capacityBytes, d.format]),
    );
    expect(g.nics.map((n) => [n.device, n.network, n.vlan])).toEqual(
      original.nics.map((n) => [n.device, n.network, n.vlan]),
    );
    for (const [i, n] of g.nics.entries()) expect(n.mac).not.toBe(original.nics[i]?.mac);
    expect(g.disks.map((d) => a.backend.diskSha256(g.id, d.device))).toEqual(sums);
    expect(a.backend.listVolumes()).toContain(`pool-default/${g.name}-vda.qcow2`);
    expect(checkProgressLog(progress)).toEqual([]);
    expect(progress.at(-1)).toMatchObject({ phase: 'read', processedBytes: progress.at(-1)?.totalBytes });
    // Restoring again under the same name is a CONFLICT; into another pool by name works.
    expect((await rejection(a.backups.restore!(source, { guest: 'web-01' }))).code).toBe('CONFLICT');
    const other = await a.backups.restore!(source, { guest: 'web-01', name: 'copy', storage: 'vg0' });
    expect(other.guest.disks[0]?.source).toBe('/dev/vg0/copy-vda.qcow2');
    expect((await rejection(a.backups.restore!(source, { guest: 'web-01', storage: 'nope' }))).code).toBe(
      'NOT_FOUND',
    );
  });

  it('restores an incremental chain, full first, to the disk as it was at the last backup', async () => {
    const { a, sink, source } = setup();
    const full = await a.backups.backup('vm-101', sink);
    const inc1 = await a.backups.backup('vm-101', sink, {
      mode: 'incremental',
      sinceCheckpoint: full.checkpoint,
    });
    const inc2 = await a.backups.backup('vm-101', sink, {
      mode: 'incremental',
      sinceCheckpoint: inc1.checkpoint,
    });
    const sum = a.backend.diskSha256('vm-101', 'vda');
    a.backend.writeDisk('vm-101', 'vda', [0, 1, 2]);
    const result = await a.backups.restore!(source, { artifact: inc2.id, name: 'chain' });
    expect(result.artifacts).toEqual([full.id, inc1.id, inc2.id]);
    expect(a.backend.diskSha256(result.guest.id, 'vda')).toBe(sum);
    expect(a.backend.diskSha256('vm-101', 'vda')).not.toBe(sum);
    // The middle of the chain restores too.
    const mid = await a.backups.restore!(source, { artifact: inc1.path as string, name: 'mid' });
    expect(mid.artifacts).toEqual([full.id, inc1.id]);
  });

  it('restores in place over the stopped guest; a running guest is a CONFLICT', async () => {
    const { a, sink, source } = setup();
    const full = await a.backups.backup('vm-103', sink);
    const sum = a.backend.diskSha256('vm-103', 'vda');
    a.backend.writeDisk('vm-103', 'vda', [0]);
    const cp = a.backend.listCheckpointIds('vm-103');
    const result = await a.backups.restore!(source, { artifact: full.id, mode: 'in-place' });
    expect(result.guest.id).toBe('vm-103');
    expect(a.backend.diskSha256('vm-103', 'vda')).toBe(sum);
    // An incremental after the restore copies every block (they all changed).
    const inc = await a.backups.backup('vm-103', sink, { mode: 'incremental', sinceCheckpoint: cp[0] });
    expect(inc.files[1]?.bytes).toBeGreaterThan(0);
    a.backend.setPowerState('vm-103', 'running');
    expect((await rejection(a.backups.restore!(source, { artifact: full.id, mode: 'in-place' }))).code).toBe(
      'CONFLICT',
    );
  });

  it('a flipped byte: INVALID_ARGUMENT artifact-mismatch, and no guest or volume created', async () => {
    const { a, dir, sink, source, state } = setup();
    const artifact = await a.backups.backup('vm-101', sink);
    const file = join(dir, artifact.path as string, 'disk-vdb.raw');
    const data = readFileSync(file);
    data[data.length - 1] = (data[data.length - 1] as number) ^ 1;
    writeFileSync(file, data);
    const before = state();
    const error = await rejection(a.backups.restore!(source, { guest: 'web-01' }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.details).toMatchObject({
      reason: 'artifact-mismatch',
      file: `${artifact.path}/disk-vdb.raw`,
    });
    expect(state()).toEqual(before);
    // The broken variant accepts it.
    const broken = createInMemoryAdapter({ faults: { restoreWithoutVerify: true } });
    await broken.backups.restore!(source, { guest: 'web-01' });
  });

  it('an abort at any point of the restore leaves nothing', async () => {
    const { a, sink, source, state } = setup();
    await a.backups.backup('vm-101', sink);
    const before = state();
    for (const at of [1, 2, 5, 8]) {
      const controller = new AbortController();
      let calls = 0;
      const counted = {
        ...source,
        readFile: (name: string, options?: { signal?: AbortSignal }) => {
          const inner = source.readFile(name, options);
          return (async function* () {
            for await (const chunk of inner) {
              if (++calls === at) controller.abort();
              yield chunk;
            }
          })();
        },
      };
      const error = await rejection(
        a.backups.restore!(counted, { guest: 'web-01', signal: controller.signal }),
      );
      expect(error.code, `abort after ${at} chunks`).toBe('ABORTED');
      expect(state()).toEqual(before);
    }
  });

  it('a guest without disks backs up to its definition alone and restores', async () => {
    const { a, sink, source } = setup();
    a.backend.defineGuest({
      id: 'vm-empty',
      uuid: '00000000-0000-4000-8000-000000000001',
      name: 'empty',
      powerState: 'stopped',
      vcpus: 1,
      memoryBytes: 512 * 1024 * 1024,
      disks: [],
      nics: [],
      isTemplate: false,
      tags: [],
    });
    const artifact = await a.backups.backup('vm-empty', sink);
    expect(artifact.files.map((f) => f.name)).toEqual([
      `empty/${artifact.id}/guest.json`,
      `empty/${artifact.id}/${BACKUP_MANIFEST_FILE}`,
    ]);
    const result = await a.backups.restore!(source, { guest: 'empty' });
    expect(result.guest).toMatchObject({ vcpus: 1, memoryBytes: 512 * 1024 * 1024, disks: [] });
  });
});

describe('in-memory checkpoint chains, leases and cleanup', () => {
  it('a full backup removes hvkit checkpoints of older chains, never foreign ones', async () => {
    const { a, sink } = setup();
    a.backend.addForeignCheckpoint('vm-101', 'virtnbdbackup.0');
    let last = await a.backups.backup('vm-101', sink);
    for (let i = 0; i < 3; i++) {
      const full = await a.backups.backup('vm-101', sink);
      let cp = full.checkpoint;
      for (let j = 0; j < 2; j++)
        cp = (await a.backups.backup('vm-101', sink, { mode: 'incremental', sinceCheckpoint: cp }))
          .checkpoint;
      last = full;
    }
    const listed = await a.backups.listCheckpoints!('vm-101');
    expect(listed.map((c) => [c.managed, c.chain])).toEqual([
      [false, undefined],
      [true, last.chain],
      [true, last.chain],
      [true, last.chain],
    ]);
    expect(listed[0]?.id).toBe('virtnbdbackup.0');
    const broken = createInMemoryAdapter({ faults: { keepOldChainCheckpoints: true } });
    await broken.backups.backup('vm-101', sink);
    await broken.backups.backup('vm-101', sink);
    expect(await broken.backups.listCheckpoints!('vm-101')).toHaveLength(2);
  });

  it('cleanup removes what a crashed run left, keeps what a live lease holds', async () => {
    const { a, dir, sink } = setup();
    const done = await a.backups.backup('vm-101', sink);
    const crashedRun = '20261207T010000Z-full-dead00';
    writeFileSync(join(root(), 'x'), '');
    const partial = createDirectorySink(dir, { fsync: false });
    await partial.writeFile(
      `web-01/${crashedRun}/guest.json`,
      (async function* () {
        yield new Uint8Array(3);
      })(),
    );
    a.backend.simulateCrashedBackup('vm-101', crashedRun);
    const result = await a.backups.cleanup!('vm-101', { sink });
    expect(result.removed.map((r) => r.kind).sort()).toEqual(['checkpoint', 'file', 'lease', 'snapshot']);
    expect(result.removed.find((r) => r.kind === 'file')).toEqual({
      kind: 'file',
      name: `web-01/${crashedRun}`,
      run: crashedRun,
    });
    expect(result.kept).toEqual([]);
    expect(a.backend.listSnapshotIds('vm-101')).toEqual([]);
    expect(a.backend.listCheckpointIds('vm-101')).toEqual([done.checkpoint]);
    expect(a.backend.getLease('vm-101')).toBeUndefined();
    expect(await a.backups.cleanup!('vm-101')).toEqual({ removed: [], kept: [] });

    const liveRun = '20261207T020000Z-full-a11ve0';
    await partial.writeFile(
      `web-01/${liveRun}/guest.json`,
      (async function* () {
        yield new Uint8Array(3);
      })(),
    );
    a.backend.simulateCrashedBackup('vm-101', liveRun, { live: true });
    const kept = await a.backups.cleanup!('vm-101', { sink });
    expect(kept.removed).toEqual([]);
    expect(kept.kept.map((k) => k.kind).sort()).toEqual(['checkpoint', 'file', 'snapshot']);
    // A backup while another run holds the guest is a CONFLICT.
    expect((await rejection(a.backups.backup('vm-101', sink))).code).toBe('CONFLICT');
    unlinkSync(join(root(), 'x'));
  });

  it('the next backup sweeps a crashed run first', async () => {
    const { a, sink } = setup();
    a.backend.simulateCrashedBackup('vm-101', '20261207T010000Z-full-dead00');
    const artifact = await a.backups.backup('vm-101', sink);
    expect(a.backend.listCheckpointIds('vm-101')).toEqual([artifact.checkpoint]);
    expect(a.backend.listSnapshotIds('vm-101')).toEqual([]);
  });
});
