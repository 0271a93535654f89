/**
 * The snapshot-and-stream backup in the lab VM (peer lab-vm): a volume group of its own on a loop file,
 * an SSH sink on the VM itself (another directory), and LVM's own tools (never the adapter) to check what
 * is left.
 */

import type { Progress } from '@hvkit/core';
import { HvkitError } from '@hvkit/core';
import { createSshSink, createSshSource, type SshClient } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectLab,
  createTestVg,
  lab,
  labTitle,
  remoteFiles,
  remoteSha256,
  sh,
  type TestVg,
} from '../../test/lab';
import { connect, type LvmAdapter } from '../connect';
import type { ListSnapshotsOptions, LvmSnapshot } from './backups';

const MiB = 1024 * 1024;

describe.skipIf(!lab.available)(labTitle('lvm backups in the lab VM'), { timeout: 600_000 }, () => {
  let ssh: SshClient;
  let vg: TestVg;
  let hv: LvmAdapter;
  let sinkDir: string;
  let data: string;
  let thin: string;

  /** hvkit's snapshots and every snapshot of the group, by LVM's own lvs. */
  const snapshotsLeft = async () =>
    (
      await sh(
        ssh,
        `lvs --noheadings -o lv_name,lv_attr,lv_tags ${vg.name} | awk '$2 ~ /^[sSV]/ && $2 !~ /^Vwi-a-tz--$/ || /hvkit/ {print $1}'`,
      )
    )
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '');
  /** Every file under the sink directory. */
  const sinkFiles = () => remoteFiles(ssh, sinkDir);
  const startWriter = async (dev: string, mib: number) =>
    (
      await sh(
        ssh,
        `nohup bash -c 'while true; do dd if=/dev/urandom of=${dev} bs=1M count=1 seek=$((RANDOM % ${mib})) oflag=direct conv=notrunc status=none; done' >/dev/null 2>&1 & echo $!`,
      )
    ).trim();
  const stopWriter = async (pid: string) =>
    sh(ssh, `kill ${pid} 2>/dev/null || true; while kill -0 ${pid} 2>/dev/null; do sleep 0.1; done`);

  beforeAll(async () => {
    ssh = await connectLab();
    vg = await createTestVg(ssh, 512);
    sinkDir = `/root/${vg.name}-sink`;
    data = `${vg.name}/data`;
    thin = `${vg.name}/thin`;
    await sh(
      ssh,
      `lvcreate -q -y -L 32M -n data ${vg.name} >/dev/null
dd if=/dev/urandom of=/dev/${data} bs=1M count=32 status=none conv=fsync
lvcreate -q -y -L 320M -T ${vg.name}/pool >/dev/null 2>&1
lvcreate -q -y -V 64M -T ${vg.name}/pool -n thin >/dev/null 2>&1
dd if=/dev/urandom of=/dev/${thin} bs=1M count=64 status=none conv=fsync`,
    );
    hv = await connect({ ssh, snapshotSize: { percent: 100 } });
  }, 180_000);
  afterAll(async () => {
    await hv?.close();
    if (ssh) await sh(ssh, `rm -rf /root/${vg?.name}-sink*`).catch(() => {});
    await vg?.remove();
    await ssh?.close();
  });

  it('backs up a volume through a snapshot to an SSH target while the origin keeps being written; sha256 is the origin at snapshot time; no snapshot is left', async () => {
    // The writer stays in the first 16 MiB: however slow the copy, the changed chunks fit the 32 MiB
    // copy-on-write area, so the snapshot cannot fill up (that case has its own test below).
    const writer = await startWriter(`/dev/${data}`, 16);
    let atSnapshot = '';
    try {
      await using frozen = await connect({
        ssh,
        snapshotSize: { percent: 100 },
        freeze: {
          // The writer pauses while the snapshot is taken: the origin's hash then is what the snapshot holds.
          freeze: async () => {
            await sh(ssh, `kill -STOP ${writer}; sync`);
            atSnapshot = await remoteSha256(ssh, `/dev/${data}`);
          },
          thaw: async () => {
            await sh(ssh, `kill -CONT ${writer}`);
          },
        },
      });
      const sink = createSshSink(ssh, sinkDir);
      const progress: Progress[] = [];
      const artifact = await frozen.backups?.backup(data, sink, { onProgress: (p) => progress.push(p) });
      const disk = artifact?.files.find((f) => f.name.endsWith('.raw'));
      expect(disk?.bytes).toBe(32 * MiB);
      expect(disk?.sha256).toBe(atSnapshot);
      expect(artifact).toMatchObject({ kind: 'full', method: 'lvm-cow-snapshot', consistency: 'fs-frozen' });
      expect(artifact?.files.at(-1)?.name).toMatch(/hvkit-backup\.json$/);
      // The file in the target is what was hashed.
      expect(await remoteSha256(ssh, `${sinkDir}/${disk?.name}`)).toBe(atSnapshot);
      expect(progress.at(-1)).toMatchObject({
        phase: 'transfer',
        processedBytes: 32 * MiB,
        totalBytes: 32 * MiB,
      });
      // The origin kept changing after the snapshot.
      expect(await remoteSha256(ssh, `/dev/${data}`)).not.toBe(atSnapshot);
    } finally {
      await stopWriter(writer);
    }
    expect(await snapshotsLeft()).toEqual([]);
  });

  it('fails a backup whose copy-on-write area is too small with a clear error, and leaves nothing behind', async () => {
    await using small = await connect({ ssh, snapshotSize: { percent: 1, minBytes: 0 } });
    // The writer stays in the first 16 MiB: however slow the copy, the changed chunks fit the 32 MiB
    // copy-on-write area, so the snapshot cannot fill up (that case has its own test below).
    const writer = await startWriter(`/dev/${data}`, 16);
    const dir = `${sinkDir}-small`;
    try {
      const error = await small.backups?.backup(data, createSshSink(ssh, dir)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(HvkitError.isInstance(error)).toBe(true);
      expect(error).toMatchObject({ details: { reason: 'snapshot-invalid' } });
      expect((error as Error).message).toMatch(/copy-on-write area .* filled up/);
    } finally {
      await stopWriter(writer);
    }
    expect(await snapshotsLeft()).toEqual([]);
    expect((await sh(ssh, `mkdir -p ${dir}; find ${dir} -type f`)).trim()).toBe('');
  });

  it('an abort at any point leaves no snapshot and no file that looks complete', async () => {
    const points: [string, (p: Progress) => boolean][] = [
      ['snapshot phase', (p) => p.phase === 'snapshot'],
      ['transfer start', (p) => p.phase === 'transfer'],
      ['transfer at a quarter', (p) => p.phase === 'transfer' && p.processedBytes >= 8 * MiB],
      ['transfer at three quarters', (p) => p.phase === 'transfer' && p.processedBytes >= 24 * MiB],
    ];
    const pre = new AbortController();
    pre.abort();
    await expect(
      hv.backups?.backup(data, createSshSink(ssh, sinkDir), { signal: pre.signal }),
    ).rejects.toMatchObject({
      code: 'ABORTED',
    });
    const before = await sinkFiles();
    for (const [what, when] of points) {
      const controller = new AbortController();
      const error = await hv.backups
        ?.backup(data, createSshSink(ssh, sinkDir), {
          signal: controller.signal,
          onProgress: (p) => {
            if (when(p)) controller.abort();
          },
        })
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(HvkitError.isInstance(error, 'ABORTED'), `${what}: ${String(error)}`).toBe(true);
      expect(await snapshotsLeft(), what).toEqual([]);
      expect(await sinkFiles(), what).toEqual(before);
    }
  });

  it('two backups of one volume started together: one runs, the other is CONFLICT naming the volume; the volume gets no tag, no snapshot or file of the loser is left', async () => {
    // The lease is stored on each run's snapshot; whichever order LVM ran them in, one run sees the other's
    // live lease (before its lvcreate, or in the lvs after it, where the later run gives way).
    const second = await connect({ ssh, snapshotSize: { percent: 100 } });
    const dirs = [`${sinkDir}-race-a`, `${sinkDir}-race-b`];
    try {
      const results = await Promise.allSettled([
        hv.backups?.backup(data, createSshSink(ssh, dirs[0] as string)),
        second.backups?.backup(data, createSshSink(ssh, dirs[1] as string)),
      ]);
      const lost = results.findIndex((r) => r.status === 'rejected');
      expect(
        results.map((r) => r.status),
        String(results.map((r) => (r.status === 'rejected' ? r.reason : 'ok'))),
      ).toEqual(lost === 0 ? ['rejected', 'fulfilled'] : ['fulfilled', 'rejected']);
      const error = (results[lost] as PromiseRejectedResult).reason;
      expect(HvkitError.isInstance(error, 'CONFLICT'), String(error)).toBe(true);
      expect((error as HvkitError).message).toMatch(new RegExp(`^${data} is being backed up by run `));
      const won = (results[1 - lost] as PromiseFulfilledResult<{ files: unknown[] } | undefined>).value;
      expect(won?.files.length).toBe(3);
      expect(await snapshotsLeft()).toEqual([]);
      expect((await sh(ssh, `lvs --noheadings -o lv_tags ${data}`)).trim()).toBe('');
      expect(await remoteFiles(ssh, dirs[lost] as string)).toEqual([]);
    } finally {
      await second.close();
    }
  });

  it('thin: a full, then an incremental after 1 MiB was rewritten sends at most 2 MiB; one base snapshot is kept and listed; full + incremental restore bit for bit', async () => {
    const dir = `${sinkDir}-thin`;
    const sink = createSshSink(ssh, dir);
    const full = await hv.backups?.backup(thin, sink);
    expect(full).toMatchObject({ kind: 'full', method: 'lvm-thin-snapshot', checkpoint: full?.id });
    const atFull = await remoteSha256(ssh, `/dev/${thin}`);
    expect(full?.files.find((f) => f.name.endsWith('.raw'))?.sha256).toBe(atFull);
    await sh(ssh, `dd if=/dev/urandom of=/dev/${thin} bs=1M count=1 seek=37 conv=notrunc,fsync status=none`);
    const atIncremental = await remoteSha256(ssh, `/dev/${thin}`);
    const inc = await hv.backups?.backup(thin, sink, {
      mode: 'incremental',
      sinceCheckpoint: full?.checkpoint as string,
    });
    const delta = inc?.files.find((f) => f.name.endsWith('.delta'));
    expect(delta?.bytes).toBeGreaterThanOrEqual(MiB);
    expect(delta?.bytes).toBeLessThanOrEqual(2 * MiB);
    expect(inc).toMatchObject({ kind: 'incremental', parentCheckpoint: full?.id, chain: full?.chain });

    // Exactly one base snapshot is left, named and listed as such.
    expect(await hv.backups?.listSnapshots(thin)).toEqual([]);
    const listAll = hv.backups?.listSnapshots as (
      ref: string,
      o: ListSnapshotsOptions,
    ) => Promise<LvmSnapshot[]>;
    const snaps = await listAll(thin, { includeIncrementalBases: true });
    expect(snaps.map((s) => [s.incrementalBase, s.managed])).toEqual([[true, true]]);
    expect(snaps[0]?.description).toContain(inc?.id);
    expect(await hv.backups?.listCheckpoints?.(thin)).toEqual([
      expect.objectContaining({ id: inc?.id, chain: full?.chain, managed: true }),
    ]);
    const lvmSnaps = (
      await sh(ssh, `lvs --noheadings -o lv_name,origin,lv_tags ${vg.name} | awk '$2 == "thin"'`)
    )
      .trim()
      .split('\n');
    expect(lvmSnaps).toHaveLength(1);
    expect(lvmSnaps[0]).toContain('hvkit-base');

    // Restore the chain as a new volume: the origin at the incremental's snapshot, bit for bit.
    const source = createSshSource(ssh, dir);
    const restored = await hv.backups?.restore?.(source, {
      artifact: inc?.id as string,
      name: 'thin-restored',
    });
    expect(restored?.artifacts).toEqual([full?.id, inc?.id]);
    expect(restored?.guest.id).toBe(`${vg.name}/thin-restored`);
    expect(await remoteSha256(ssh, `/dev/${vg.name}/thin-restored`)).toBe(atIncremental);
    // And the full alone gives the origin at the full backup.
    await hv.backups?.restore?.(source, { artifact: full?.id as string, name: 'thin-full-restored' });
    expect(await remoteSha256(ssh, `/dev/${vg.name}/thin-full-restored`)).toBe(atFull);
    await sh(ssh, `lvremove -q -y ${vg.name}/thin-restored ${vg.name}/thin-full-restored`);
  });

  it('a flipped byte fails the restore before anything becomes visible; in place restores over an inactive volume only', async () => {
    const dir = `${sinkDir}-restore`;
    const artifact = await hv.backups?.backup(data, createSshSink(ssh, dir));
    const disk = artifact?.files.find((f) => f.name.endsWith('.raw'));
    const source = createSshSource(ssh, dir);
    const lvsBefore = await sh(ssh, `lvs --noheadings -o lv_name ${vg.name} | sort`);
    // Flip one byte of a copy of the artifact.
    const bad = `${dir}-bad`;
    await sh(
      ssh,
      `rm -rf ${bad}; cp -a ${dir} ${bad}; printf '\\x01' | dd of=${bad}/${disk?.name} bs=1 seek=1000000 conv=notrunc status=none`,
    );
    const error = await hv.backups?.restore?.(createSshSource(ssh, bad), { name: 'never' }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'INVALID_ARGUMENT', details: { reason: 'artifact-mismatch' } });
    expect(await sh(ssh, `lvs --noheadings -o lv_name ${vg.name} | sort`)).toBe(lvsBefore);

    // In place: refused while the volume is active, done after it was deactivated.
    await expect(hv.backups?.restore?.(source, { mode: 'in-place' })).rejects.toMatchObject({
      code: 'CONFLICT',
    });
    await sh(
      ssh,
      `dd if=/dev/zero of=/dev/${data} bs=1M count=1 conv=notrunc,fsync status=none; lvchange -an ${data}`,
    );
    const result = await hv.backups?.restore?.(source, { mode: 'in-place' });
    expect(result?.mode).toBe('in-place');
    await sh(ssh, `lvchange -ay ${data}`);
    expect(await remoteSha256(ssh, `/dev/${data}`)).toBe(disk?.sha256);
    expect(await sh(ssh, `lvs --noheadings -o lv_name ${vg.name} | sort`)).toBe(lvsBefore);
  });
});
