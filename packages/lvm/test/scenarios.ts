/**
 * The recorded LVM scenarios of the `lab-vm-scenarios` fixture, shared by the recorder (test/record.ts, which
 * runs them in the lab VM through `recordingExec`) and the replay test (src/scenarios.test.ts, which runs the
 * same calls against the transcript and asserts what each scenario shows).
 *
 * The group {@link SCENARIO_VG} (extents of 256 KiB, on a loop file) holds, as {@link SCENARIO_SETUP} makes it:
 * - `linear1`: a 1 MiB linear volume of known content, with a snapshot `linear1-keep` a user made (256 KiB
 *   copy-on-write area): backed up through a COW snapshot, the user's snapshot listed and left alone;
 * - `filling1`: a 1 MiB linear volume backed up with a copy-on-write area far too small (the
 *   {@link FILLING_SNAPSHOT_SIZE} policy gives one 256 KiB extent); the recorder overwrites the whole origin
 *   right after the backup's snapshot is made ({@link FILLING_OVERWRITE}), so the snapshot fills and becomes
 *   invalid before it is read, every time;
 * - `pool`, a thin pool, with `thin1`, a 1 MiB thin volume of known content, and `thin1-keep`, a thin snapshot
 *   a user made: a full backup through a thin snapshot (kept as the base of the next incremental), then, after
 *   the recorder rewrote the first 64 KiB ({@link THIN_REWRITE}), an incremental one.
 *
 * Every call goes through an adapter connected with `naming` (test/replay-options.ts), so a re-recording
 * repeats the same commands with the same names.
 */

import { createHash } from 'node:crypto';
import type { BackupArtifact, BackupCheckpoint, Guest, StorageVolume } from '@hvkit/core';
import { createMemorySink, type MemorySink } from '@hvkit/core/testing';
import type { LvmBackupsCapability, LvmSnapshot } from '../src/capabilities/backups';
import type { LvmAdapter } from '../src/connect';
import type { SnapshotSizePolicy } from '../src/context';

/** The fixture folder under test/fixtures/. */
export const SCENARIO_FIXTURE = 'lab-vm-scenarios';

/** The volume group the scenarios run in (a fixed name, so the transcript replays). */
export const SCENARIO_VG = 'hvkit-test-scenarios';

/** Size of each data volume. */
export const VOLUME_BYTES = 1024 * 1024;

/** The byte each data volume is filled with before the scenarios run. */
export const CONTENT = { linear1: 'l', filling1: 'f', thin1: 't' } as const;

/** Bytes of `thin1` the recorder rewrites (with `u`) between the full and the incremental backup. */
export const THIN_REWRITE_BYTES = 64 * 1024;

/** sha256 (hex) of `bytes` bytes of `fill`, followed by `rest` bytes of `tail` when given. */
export function patternSha256(fill: string, bytes: number, tail?: { fill: string; bytes: number }): string {
  const h = createHash('sha256').update(Buffer.alloc(bytes, fill));
  if (tail) h.update(Buffer.alloc(tail.bytes, tail.fill));
  return h.digest('hex');
}

/** The COW policy of the filling scenario: 1 % of 1 MiB, which LVM rounds up to one 256 KiB extent. */
export const FILLING_SNAPSHOT_SIZE: SnapshotSizePolicy = { percent: 1, minBytes: 0 };

/** Makes {@link SCENARIO_VG} with its volumes (bash, run by the recorder; never recorded). */
export const SCENARIO_SETUP = `modprobe dm-snapshot; modprobe dm-thin-pool; modprobe loop
mkdir -p /root/${SCENARIO_VG}; truncate -s 64M /root/${SCENARIO_VG}/pv.img
loop=$(losetup -f --show /root/${SCENARIO_VG}/pv.img)
pvcreate -q "$loop" >/dev/null; vgcreate -q -s 256k ${SCENARIO_VG} "$loop" >/dev/null
fill() { head -c ${VOLUME_BYTES} /dev/zero | tr '\\0' "$2" > /dev/${SCENARIO_VG}/$1; }
lvcreate -q -y -L 1M -n linear1 ${SCENARIO_VG} >/dev/null 2>&1; fill linear1 ${CONTENT.linear1}
lvcreate -q -y -L 1M -n filling1 ${SCENARIO_VG} >/dev/null 2>&1; fill filling1 ${CONTENT.filling1}
lvcreate -q -y -L 8M -T ${SCENARIO_VG}/pool >/dev/null 2>&1
lvcreate -q -y -V 1M -T ${SCENARIO_VG}/pool -n thin1 >/dev/null 2>&1; fill thin1 ${CONTENT.thin1}
sync
lvcreate -q -y -s -L 256k -n linear1-keep ${SCENARIO_VG}/linear1 >/dev/null 2>&1
lvcreate -q -y -s -n thin1-keep ${SCENARIO_VG}/thin1 >/dev/null 2>&1`;

/** Overwrites all of `filling1` (run by the recorder right after the backup's snapshot of it is made). */
export const FILLING_OVERWRITE = `head -c ${VOLUME_BYTES} /dev/zero | tr '\\0' F | dd of=/dev/${SCENARIO_VG}/filling1 oflag=direct bs=64k status=none; sync`;

/** Rewrites the first {@link THIN_REWRITE_BYTES} of `thin1` with `u` (run by the recorder between the backups). */
export const THIN_REWRITE = `head -c ${THIN_REWRITE_BYTES} /dev/zero | tr '\\0' u | dd of=/dev/${SCENARIO_VG}/thin1 oflag=direct bs=64k conv=notrunc status=none; sync`;

/** Whether `argv` is the backup's `lvcreate -s` of `filling1` (after which the recorder overwrites it). */
export function isFillingSnapshot(argv: readonly string[]): boolean {
  return argv[0] === 'lvcreate' && argv.includes('-s') && argv.at(-1) === `${SCENARIO_VG}/filling1`;
}

/** Ids of the scenario's volumes. */
export const LINEAR = `${SCENARIO_VG}/linear1`;
export const FILLING = `${SCENARIO_VG}/filling1`;
export const THIN = `${SCENARIO_VG}/thin1`;

/** What the inventory scenario saw. */
export interface InventoryScenario {
  guests: Guest[];
  volumes: StorageVolume[];
  linearSnapshots: LvmSnapshot[];
  thinSnapshots: LvmSnapshot[];
}

/** Inventory and snapshots of the group: the user's snapshots are volumes and snapshots, not guests. */
export async function inventoryScenario(hv: LvmAdapter): Promise<InventoryScenario> {
  const backups = required(hv);
  const guests = (await hv.inventory?.listGuests()) ?? [];
  const volumes = (await hv.inventory?.listStorageVolumes?.(SCENARIO_VG)) ?? [];
  return {
    guests: guests.filter((g) => g.id.startsWith(`${SCENARIO_VG}/`)),
    volumes,
    linearSnapshots: await backups.listSnapshots(LINEAR),
    thinSnapshots: await backups.listSnapshots(THIN),
  };
}

/** What the linear scenario saw. */
export interface LinearScenario {
  artifact: BackupArtifact;
  sink: MemorySink;
  snapshotsAfter: LvmSnapshot[];
}

/** A full backup of `linear1` through a COW snapshot; then its snapshots again. */
export async function linearScenario(hv: LvmAdapter): Promise<LinearScenario> {
  const backups = required(hv);
  const sink = createMemorySink();
  const artifact = await backups.backup(LINEAR, sink);
  return { artifact, sink, snapshotsAfter: await backups.listSnapshots(LINEAR) };
}

/** What the filling scenario saw. */
export interface FillingScenario {
  error: unknown;
  sink: MemorySink;
  snapshotsAfter: LvmSnapshot[];
  volumesAfter: StorageVolume[];
}

/**
 * A backup of `filling1` by an adapter connected with {@link FILLING_SNAPSHOT_SIZE}, whose snapshot fills up
 * (the recorder overwrites the origin right after it is made); then what is left.
 */
export async function fillingScenario(hv: LvmAdapter): Promise<FillingScenario> {
  const backups = required(hv);
  const sink = createMemorySink();
  const error = await backups.backup(FILLING, sink).then(
    () => undefined,
    (e: unknown) => e,
  );
  return {
    error,
    sink,
    snapshotsAfter: await backups.listSnapshots(FILLING, { includeIncrementalBases: true }),
    volumesAfter: (await hv.inventory?.listStorageVolumes?.(SCENARIO_VG)) ?? [],
  };
}

/** What the thin scenario saw. */
export interface ThinScenario {
  full: BackupArtifact;
  fullSink: MemorySink;
  checkpointsAfterFull: BackupCheckpoint[];
  incremental: BackupArtifact;
  incrementalSink: MemorySink;
  checkpointsAfterIncremental: BackupCheckpoint[];
  snapshotsAfter: LvmSnapshot[];
  basesAfter: LvmSnapshot[];
}

/**
 * A full backup of `thin1` through a thin snapshot, `between()` (the recorder rewrites the volume's first
 * 64 KiB; nothing in replay), then an incremental backup since the full one's checkpoint.
 */
export async function thinScenario(hv: LvmAdapter, between: () => Promise<void>): Promise<ThinScenario> {
  const backups = required(hv);
  const fullSink = createMemorySink();
  const full = await backups.backup(THIN, fullSink);
  const checkpointsAfterFull = await backups.listCheckpoints(THIN);
  await between();
  const incrementalSink = createMemorySink();
  const incremental = await backups.backup(THIN, incrementalSink, {
    mode: 'incremental',
    sinceCheckpoint: full.checkpoint as string,
  });
  return {
    full,
    fullSink,
    checkpointsAfterFull,
    incremental,
    incrementalSink,
    checkpointsAfterIncremental: await backups.listCheckpoints(THIN),
    snapshotsAfter: await backups.listSnapshots(THIN),
    basesAfter: (await backups.listSnapshots(THIN, { includeIncrementalBases: true })).filter(
      (s) => s.incrementalBase,
    ),
  };
}

function required(hv: LvmAdapter) {
  const backups = hv.backups as LvmBackupsCapability | undefined;
  if (!backups) throw new Error('the lvm adapter has no backups capability');
  return backups;
}
