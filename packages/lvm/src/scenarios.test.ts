/**
 * Replay of the recorded LVM scenarios (test/scenarios.ts, recorded in the lab VM by
 * test/record-scenarios.ts): the same adapter calls against the transcript, served by `replayExec`, and what
 * each scenario shows asserted from the recorded answers. Every recorded command must be used.
 */

import { join } from 'node:path';
import { type ExecTranscript, readFixture, replayExec } from '@hvkit/conformance/fixtures';
import { HvkitError, parseBackupManifest } from '@hvkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { fixtureNaming } from '../test/replay-options';
import {
  CONTENT,
  FILLING,
  FILLING_SNAPSHOT_SIZE,
  fillingScenario,
  inventoryScenario,
  LINEAR,
  linearScenario,
  patternSha256,
  SCENARIO_FIXTURE,
  SCENARIO_VG,
  THIN,
  THIN_REWRITE_BYTES,
  thinScenario,
  VOLUME_BYTES,
} from '../test/scenarios';
import { connect } from './connect';

const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', SCENARIO_FIXTURE));
const transcript = (await fixture.readJson('transcript.json')) as ExecTranscript;
const exec = replayExec(transcript);
const naming = fixtureNaming();
// The recorder's two adapters, connected in the same order.
const hv = await connect({ exec, naming });
const small = await connect({ exec, naming, snapshotSize: FILLING_SNAPSHOT_SIZE });
afterAll(async () => {
  await small.close();
  await hv.close();
});

/** The disk file of an artifact and its bytes as the sink received them. */
function diskOf(artifact: { files: { name: string; sha256: string; bytes: number }[] }) {
  const disks = artifact.files.filter((f) => /\.(raw|delta)$/.test(f.name));
  expect(disks).toHaveLength(1);
  return disks[0] as { name: string; sha256: string; bytes: number };
}

describe(`lvm scenarios (${SCENARIO_FIXTURE} fixture)`, () => {
  it('inventory: linear and thin volumes are guests; the users’ COW and thin snapshots are volumes and snapshots, not guests', async () => {
    const r = await inventoryScenario(hv);
    expect(r.guests.map((g) => g.id).sort()).toEqual([FILLING, LINEAR, THIN]);
    for (const g of r.guests) {
      expect(g.disks).toEqual([expect.objectContaining({ device: g.id, capacityBytes: VOLUME_BYTES })]);
    }
    const volumes = new Map(r.volumes.map((v) => [v.id, v]));
    expect(volumes.get(`${SCENARIO_VG}/linear1-keep`)).toMatchObject({ poolId: SCENARIO_VG });
    expect(volumes.get(`${SCENARIO_VG}/thin1-keep`)).toMatchObject({ capacityBytes: VOLUME_BYTES });
    expect(volumes.has(`${SCENARIO_VG}/pool`)).toBe(true);
    // The user's COW snapshot: a 256 KiB area, still empty (the origin was not written since).
    expect(r.linearSnapshots).toEqual([
      expect.objectContaining({
        id: `${SCENARIO_VG}/linear1-keep`,
        name: 'linear1-keep',
        origin: LINEAR,
        type: 'cow',
        invalid: false,
        managed: false,
        sizeBytes: 256 * 1024,
        fillPercent: 0,
      }),
    ]);
    expect(r.thinSnapshots).toEqual([
      expect.objectContaining({
        id: `${SCENARIO_VG}/thin1-keep`,
        origin: THIN,
        type: 'thin',
        managed: false,
      }),
    ]);
  });

  it('linear volume: a full backup through a COW snapshot holds the volume’s content; only the user’s snapshot is left', async () => {
    const r = await linearScenario(hv);
    expect(r.artifact).toMatchObject({ kind: 'full', method: 'lvm-cow-snapshot', consistency: 'crash' });
    expect(r.artifact.checkpoint).toBeUndefined();
    const disk = diskOf(r.artifact);
    expect(disk).toMatchObject({ bytes: VOLUME_BYTES, sha256: patternSha256(CONTENT.linear1, VOLUME_BYTES) });
    expect(
      Buffer.from(r.sink.read(disk.name) ?? []).equals(Buffer.alloc(VOLUME_BYTES, CONTENT.linear1)),
    ).toBe(true);
    expect(r.snapshotsAfter.map((s) => s.id)).toEqual([`${SCENARIO_VG}/linear1-keep`]);
  });

  it('filling snapshot: a copy-on-write area too small fails the backup with snapshot-invalid and leaves nothing', async () => {
    const r = await fillingScenario(small);
    expect(HvkitError.isInstance(r.error, 'REMOTE')).toBe(true);
    expect(r.error).toMatchObject({
      operation: 'backups.backup',
      details: { reason: 'snapshot-invalid', origin: FILLING, snapshot: `${FILLING}-hvkit-rec2` },
    });
    const message = (r.error as Error).message;
    expect(message).toMatch(/became invalid while it was copied/);
    expect(message).toMatch(/copy-on-write area \(262144 bytes\) filled up/);
    expect(message).toMatch(/connect option snapshotSize/);
    // The invalid snapshot itself was in the recorded report the adapter read before failing.
    const invalid = transcript.commands
      .filter((c) => c.argv[0] === 'lvs' && c.stdout.includes('"report"'))
      .flatMap(
        (c) => (JSON.parse(c.stdout) as { report: { lv?: { lv_name: string; lv_attr: string }[] }[] }).report,
      )
      .flatMap((section) => section.lv ?? [])
      .filter((lv) => lv.lv_name.startsWith('filling1-') && lv.lv_attr[4] === 'I');
    expect(invalid.length, 'the transcript shows the invalid snapshot (lv_attr state I)').toBeGreaterThan(0);
    // Nothing left: no snapshot of the volume, no hvkit volume in the group, no complete file in the sink.
    expect(r.snapshotsAfter).toEqual([]);
    expect(r.volumesAfter.map((v) => v.name).filter((n) => n.startsWith('filling1-'))).toEqual([]);
    expect(r.sink.files.size).toBe(0);
    expect(r.sink.writes.every((w) => w.status !== 'complete')).toBe(true);
  });

  it('thin pool and thin snapshot: a full backup keeps one base snapshot; the incremental sends only the rewritten blocks', async () => {
    const r = await thinScenario(hv, async () => {});
    expect(r.full).toMatchObject({ kind: 'full', method: 'lvm-thin-snapshot' });
    expect(diskOf(r.full)).toMatchObject({
      bytes: VOLUME_BYTES,
      sha256: patternSha256(CONTENT.thin1, VOLUME_BYTES),
    });
    expect(r.checkpointsAfterFull.filter((c) => c.managed).map((c) => c.id)).toEqual([r.full.checkpoint]);
    expect(r.incremental).toMatchObject({
      kind: 'incremental',
      method: 'lvm-thin-delta',
      parentCheckpoint: r.full.checkpoint,
      chain: r.full.chain,
    });
    // The artifact names its base in its manifest.
    const manifestFile = r.incremental.files.at(-1)?.name as string;
    const manifest = parseBackupManifest(r.incrementalSink.read(manifestFile) as Uint8Array);
    expect(manifest).toMatchObject({ kind: 'incremental', base: r.full.id });
    // The delta holds the rewritten 64 KiB (rounded to the pool's chunks) and headers, far less than the volume.
    const delta = diskOf(r.incremental);
    expect(delta.bytes).toBeGreaterThanOrEqual(THIN_REWRITE_BYTES);
    expect(delta.bytes).toBeLessThan(VOLUME_BYTES / 2);
    // One base snapshot, the incremental's; the user's thin snapshot is still there.
    expect(r.checkpointsAfterIncremental.filter((c) => c.managed).map((c) => c.id)).toEqual([
      r.incremental.checkpoint,
    ]);
    expect(r.basesAfter).toHaveLength(1);
    expect(r.basesAfter[0]).toMatchObject({
      type: 'thin',
      managed: true,
      incrementalBase: true,
      origin: THIN,
    });
    expect(r.snapshotsAfter.map((s) => s.id)).toEqual([`${SCENARIO_VG}/thin1-keep`]);
  });

  it('used every recorded command', () => {
    expect(exec.calls.filter((call) => call.matched !== null)).toHaveLength(transcript.commands.length);
  });
});
