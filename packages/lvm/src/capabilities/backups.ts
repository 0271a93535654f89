/**
 * The `backups` capability: LVM snapshots, and the snapshot-and-stream backup.
 *
 * A backup of a guest (its volumes):
 * 1. optional freeze through the caller's hook; one snapshot per volume (`lvcreate -s`: with a copy-on-write
 *    area sized by the policy for a normal volume, a thin snapshot without `-L` for a thin one); thaw;
 * 2. each snapshot device is streamed (`dd`) into the sink, which hashes it (sha256) while it writes;
 *    incrementals of thin volumes stream only the blocks `thin_delta` names as changed since the base;
 * 3. the snapshot is checked once more after the copy (`dmsetup status`): a COW snapshot that became invalid
 *    (its area filled while the origin was written) fails the artifact with `details.reason: 'snapshot-invalid'`;
 * 4. the manifest is written last; then the snapshots are removed in every case (success, failure, abort),
 *    except, for thin volumes, the newest one, kept as the base of the next incremental (tag `hvkit-base`).
 *
 * Every volume hvkit creates carries the tag `hvkit`, so it is never listed as a guest, and a tag naming its
 * run (`hvkit-run-<artifact id>`), by which the end of the run finds and removes it even when the command
 * that created it was cut short by an abort. A backup's snapshots also carry the run's lease (see lease.ts).
 */

import { randomBytes } from 'node:crypto';
import {
  abortError,
  artifactPath,
  type BackupArtifact,
  type BackupCheckpoint,
  type BackupCleanupOptions,
  type BackupCleanupResult,
  type BackupFile,
  type BackupLease,
  type BackupManifest,
  type BackupManifestFile,
  type BackupOptions,
  type BackupSink,
  type BackupSource,
  type BackupsCapability,
  type CallOptions,
  type CreateSnapshotOptions,
  createProgressReporter,
  type GuestRef,
  HvkitError,
  hvkitError,
  leaseIsLive,
  newArtifactId,
  type ProgressReporter,
  type RestoreOptions,
  type RestoreResult,
  readVerifiedBytes,
  readVerifiedFile,
  resolveRestoreChain,
  type Snapshot,
  sleep,
  writeBackupManifest,
} from '@hvkit/core';
import type { AdapterContext } from '../context';
import { ADAPTER_ID } from '../errors';
import {
  DELTA_SCHEME,
  type DeltaRange,
  deltaFileBytes,
  deltaHeader,
  parseThinDelta,
  readDelta,
} from '../mapping/delta';
import { guestOf, HVKIT_BASE_TAG, HVKIT_RESTORE_TAG, HVKIT_RUN_TAG, HVKIT_TAG } from '../mapping/guests';
import { isSnapshot, type LvmLogicalVolume } from '../mapping/report';
import {
  checkLvName,
  checkVgName,
  type LvId,
  lvDevicePath,
  lvDmName,
  lvIdString,
  parseLvId,
} from '../protocol/names';
import {
  type FoundLease,
  holdStoredLease,
  leaseClock,
  leaseConflict,
  leaseHoldersOf,
  leasesOf,
  leaseTag,
  liveLeaseOfOther,
  newRunLease,
  type StoredLease,
} from './lease';
import { resolveGuest } from './resolve';

/** The definition file of an artifact: the guest's volumes as LVM had them. */
export const VOLUMES_FILE = 'volumes.json';

/** `dd` block size for device reads and writes. */
const DD_BS = '4M';

/** A snapshot as `backups.listSnapshots` reports it: spec v1's fields and LVM's own. */
export interface LvmSnapshot extends Snapshot {
  /** The volume it is a snapshot of (`vg/lv`). */
  origin: string;
  /** `cow` (`lvcreate -s -L`) or `thin`. */
  type: 'cow' | 'thin';
  /** How full the COW area is (COW snapshots), or how much of the pool it maps (active thin snapshots), 0..100. */
  fillPercent?: number;
  /** A COW snapshot whose area filled up: its content is lost. */
  invalid: boolean;
  /** The snapshot's size (the COW area for COW snapshots, the virtual size for thin ones). */
  sizeBytes?: number;
  /** Seconds since it was created. */
  ageSeconds?: number;
  /** hvkit made it (tag `hvkit`). */
  managed: boolean;
  /** Kept as the base of the next incremental backup (tag `hvkit-base`); its `description` says of which artifact. */
  incrementalBase: boolean;
}

/** Options of the lvm adapter's `backups.listSnapshots`. */
export interface ListSnapshotsOptions extends CallOptions {
  /**
   * Also list the thin snapshots hvkit keeps as the bases of the next incremental backups (`incrementalBase:
   * true`). They are left out by default: they are checkpoints (`backups.listCheckpoints`), not snapshots a
   * user made.
   */
  includeIncrementalBases?: boolean;
}

/** The backups capability of this adapter: spec v1's, with `restore`, `listCheckpoints` and `cleanup`. */
export type LvmBackupsCapability = Omit<BackupsCapability, 'listSnapshots'> &
  Required<Pick<BackupsCapability, 'restore' | 'listCheckpoints' | 'cleanup'>> & {
    listSnapshots(ref: GuestRef, options?: ListSnapshotsOptions): Promise<LvmSnapshot[]>;
  };

/** One volume of the definition file. */
interface DefinitionVolume {
  id: string;
  vg: string;
  name: string;
  sizeBytes: number;
  thin: boolean;
  pool?: string;
  file: string;
}

/** The definition file's content. */
interface Definition {
  format: 'hvkit-lvm-volumes';
  version: 1;
  guest: { id: string; name: string; uuid: string };
  volumes: DefinitionVolume[];
}

function fail(
  code: Parameters<typeof hvkitError>[0],
  message: string,
  operation: string,
  details?: Record<string, unknown>,
) {
  return hvkitError(code, message, { adapter: ADAPTER_ID, operation, ...(details ? { details } : {}) });
}

function tagValue(lv: LvmLogicalVolume, prefix: string): string | undefined {
  return lv.tags.find((t) => t.startsWith(prefix))?.slice(prefix.length);
}

function snapshotOf(lv: LvmLogicalVolume, now = Date.now()): LvmSnapshot {
  const created = lv.createdAt ?? new Date(0);
  const base = lv.tags.includes(HVKIT_BASE_TAG);
  const artifact = tagValue(lv, 'hvkit-artifact-');
  const s: LvmSnapshot = {
    id: lv.fullName,
    name: lv.name,
    createdAt: created,
    kind: 'disk',
    origin: `${lv.vgName}/${lv.origin ?? ''}`,
    type: lv.kind === 'thin-snapshot' ? 'thin' : 'cow',
    invalid: lv.snapshotInvalid,
    managed: lv.tags.includes(HVKIT_TAG),
    incrementalBase: base,
  };
  if (base && artifact) s.description = `base of the next incremental after artifact ${artifact}`;
  if (lv.dataPercent !== undefined) s.fillPercent = lv.dataPercent;
  if (lv.sizeBytes !== undefined) s.sizeBytes = lv.sizeBytes;
  if (lv.createdAt) s.ageSeconds = Math.max(0, Math.floor((now - lv.createdAt.getTime()) / 1000));
  return s;
}

/** The COW size for a snapshot of `sizeBytes`, in KiB (LVM rounds up to the extent size). */
function cowKiB(context: AdapterContext, sizeBytes: number): number {
  const { percent, minBytes } = context.snapshotSize;
  const bytes = Math.max(Math.ceil((sizeBytes * percent) / 100), minBytes, 512);
  return Math.ceil(bytes / 1024);
}

/** A snapshot name from a volume name and a suffix, within LVM's 127 characters. */
function snapName(lv: string, suffix: string): string {
  return checkLvName(`${lv.slice(0, 127 - suffix.length - 1)}-${suffix}`);
}

/** A deadline of its own for cleanup steps, which must run even after the caller's signal aborted. */
function cleanupOptions(context: AdapterContext) {
  return { timeoutMs: context.callTimeoutMs, operation: 'backups.cleanup' };
}

export function createBackups(context: AdapterContext): LvmBackupsCapability {
  const { client, logger } = context;
  const now = leaseClock(context);
  /** The unique part of artifact ids, snapshot names and restore runs. */
  const uniqueId = () => {
    const value = context.naming.uniqueId?.() ?? randomBytes(3).toString('hex');
    if (typeof value !== 'string' || !/^[A-Za-z0-9]{1,16}$/.test(value)) {
      throw new TypeError('lvm: naming.uniqueId must return 1-16 characters of A-Z a-z 0-9.');
    }
    return value;
  };

  /** Creates a snapshot of `lv`: thin (no -L, activated) for a thin volume, else COW sized by the policy. */
  async function createLvSnapshot(
    lv: LvmLogicalVolume,
    name: string,
    tags: readonly string[],
    options: CallOptions & { operation: string },
  ): Promise<void> {
    const tagArgs = tags.flatMap((t) => ['--addtag', t]);
    const argv =
      lv.kind === 'thin'
        ? ['lvcreate', '-q', '-s', '-kn', '-n', name, ...tagArgs, lv.fullName]
        : [
            'lvcreate',
            '-q',
            '-s',
            '-n',
            name,
            '-L',
            `${cowKiB(context, lv.sizeBytes ?? 0)}k`,
            ...tagArgs,
            lv.fullName,
          ];
    await client.run(argv, options);
  }

  /** Runs a removal, retrying a few times while a just-killed reader still holds a volume open. */
  async function retryRemoval(what: string, remove: () => Promise<void>): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await remove();
        return;
      } catch (error) {
        if (HvkitError.isInstance(error, 'NOT_FOUND')) return;
        if (attempt >= 10) {
          logger.warn(`lvm: could not remove ${what}`, { error: (error as Error).message });
          throw error;
        }
        await sleep(300);
      }
    }
  }

  /** Removes volumes, retrying a few times while a just-killed reader still holds one open. */
  async function removeVolumes(ids: readonly LvId[]): Promise<void> {
    for (const id of ids) {
      await retryRemoval(lvIdString(id), () => client.lvremove(id, cleanupOptions(context)));
    }
  }

  /**
   * Removes every volume carrying the run's tag, in every group, with one `lvremove @tag` (what a backup or
   * restore run created, also a volume whose lvcreate an abort cut short).
   */
  async function removeRun(tag: string): Promise<void> {
    await retryRemoval(`the volumes tagged ${tag}`, () => client.lvremoveByTag(tag, cleanupOptions(context)));
  }

  /**
   * Undoes the swap of an in-place restore of run `run` in group `vg` (from `all`, a listing of now): each
   * original marked with the run's swap tag gets its name back (after removing a restored copy of the run
   * that took it) and loses its marks. Returns the restored copies it removed. Used when the swap fails, and
   * by cleanup for a restore whose process died in it. A volume of its name that is not the run's is
   * `CONFLICT` (nothing is renamed over it).
   */
  async function rollBackSwap(
    vg: string,
    run: string,
    all: readonly LvmLogicalVolume[],
    options: CallOptions & { operation?: string } = cleanupOptions(context),
  ): Promise<LvmLogicalVolume[]> {
    const removed: LvmLogicalVolume[] = [];
    for (const original of all.filter((lv) => lv.vgName === vg && lv.tags.includes(swapTag(run)))) {
      const name = tagValue(original, 'hvkit-target-');
      if (name === undefined) continue;
      if (original.name !== name) {
        const copy = all.find((lv) => lv.vgName === vg && lv.name === name);
        if (copy) {
          if (!copy.tags.includes(`${HVKIT_RUN_TAG}-restore-${run}`)) {
            throw fail(
              'CONFLICT',
              `${vg}/${original.name} is ${vg}/${name} put aside by restore run ${run}, but another volume has that name now; rename one of them yourself.`,
              'backups.cleanup',
            );
          }
          await removeVolumes([{ vg, lv: name }]);
          removed.push(copy);
        }
        await client.run(['lvrename', '-q', vg, original.name, name], options);
      }
      await client.run(
        ['lvchange', '-q', '--deltag', swapTag(run), '--deltag', restoreTargetTag(name), `${vg}/${name}`],
        options,
      );
    }
    return removed;
  }

  /**
   * Streams a device (or a byte range of it) with dd. The reads bypass the page cache (`iflag=direct`): a
   * backup reads each block once, so caching it only evicts what the host's guests use, and the copy into
   * the cache costs CPU (under TCG, reading a snapshot this way takes half the time). Thin delta ranges
   * are pool blocks, so their offsets are aligned as direct I/O needs.
   */
  async function* readDevice(
    path: string,
    range: { offset: number; length: number } | undefined,
    signal: AbortSignal | undefined,
    check: () => Promise<void>,
  ): AsyncGenerator<Uint8Array> {
    const argv = range
      ? [
          'dd',
          `if=${path}`,
          `bs=${DD_BS}`,
          'iflag=skip_bytes,count_bytes,direct',
          `skip=${range.offset}`,
          `count=${range.length}`,
          'status=none',
        ]
      : ['dd', `if=${path}`, `bs=${DD_BS}`, 'iflag=direct', 'status=none'];
    const proc = client.spawn(argv, signal ? { signal } : {});
    // A reader given up early (abort, the sink stopped pulling) is killed below; its end is nobody's error.
    proc.stdout.on('error', () => {});
    proc.wait().catch(() => {});
    proc.stdin.end();
    let ended = false;
    try {
      for await (const chunk of proc.stdout) yield chunk as Uint8Array;
      const result = await proc.wait();
      ended = true;
      if (signal?.aborted) throw abortError(signal, { adapter: ADAPTER_ID, operation: 'backups.backup' });
      if (result.exitCode !== 0) {
        await check();
        throw fail(
          'REMOTE',
          `Reading ${path} failed: dd exited with ${result.exitCode ?? result.signal}.`,
          'backups.backup',
          {
            stderr: result.stderr.toString('utf8').slice(0, 1000),
          },
        );
      }
    } finally {
      if (!ended) proc.kill();
    }
  }

  /** Writes `data` into a device at `offset` (or from its start) with dd. */
  async function writeDevice(
    path: string,
    data: AsyncIterable<Uint8Array>,
    offset: number | undefined,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const argv =
      offset === undefined
        ? ['dd', `of=${path}`, `bs=${DD_BS}`, 'conv=fsync', 'status=none']
        : [
            'dd',
            `of=${path}`,
            `bs=${DD_BS}`,
            'oflag=seek_bytes',
            `seek=${offset}`,
            'conv=notrunc,fsync',
            'status=none',
          ];
    // A source that fails (an artifact that does not match its manifest) kills dd, and wait() rejects with
    // the source's error; an abort kills it too, and wait() rejects with ABORTED.
    const proc = client.spawn(argv, { ...(signal ? { signal } : {}), stdin: data });
    proc.stdout.on('error', () => {});
    proc.stdout.resume();
    const result = await proc.wait();
    if (signal?.aborted) throw abortError(signal, { adapter: ADAPTER_ID, operation: 'backups.restore' });
    if (result.exitCode !== 0) {
      throw fail(
        'REMOTE',
        `Writing ${path} failed: dd exited with ${result.exitCode ?? result.signal}.`,
        'backups.restore',
        {
          stderr: result.stderr.toString('utf8').slice(0, 1000),
        },
      );
    }
  }

  /** Zeroes a byte range of a device (`left_only` blocks of a thin delta). */
  async function zeroDevice(path: string, range: DeltaRange, signal: AbortSignal | undefined): Promise<void> {
    await client.run(
      [
        'dd',
        'if=/dev/zero',
        `of=${path}`,
        `bs=${DD_BS}`,
        'iflag=count_bytes',
        'oflag=seek_bytes',
        `seek=${range.offset}`,
        `count=${range.length}`,
        'conv=notrunc,fsync',
        'status=none',
      ],
      {
        ...(signal ? { signal } : {}),
        timeoutMs: Math.max(context.callTimeoutMs, 600_000),
        operation: 'backups.restore',
      },
    );
  }

  /** Asks thin_delta which blocks of the pool's thin device `right` changed since `left`. */
  async function thinDelta(
    all: LvmLogicalVolume[],
    origin: LvmLogicalVolume,
    left: LvmLogicalVolume,
    right: LvmLogicalVolume,
    signal: AbortSignal | undefined,
  ): Promise<DeltaRange[]> {
    const pool = all.find((lv) => lv.vgName === origin.vgName && lv.name === origin.pool);
    const tmeta = all.find((lv) => lv.vgName === origin.vgName && lv.name === `${origin.pool}_tmeta`);
    if (!pool?.dmPath || !tmeta?.dmPath || left.thinId === undefined || right.thinId === undefined) {
      throw fail(
        'PROTOCOL',
        `lvs did not report the pool, metadata device or thin ids of ${origin.fullName}.`,
        'backups.backup',
      );
    }
    const tpool = `${pool.dmPath}-tpool`;
    const op = { ...(signal ? { signal } : {}), operation: 'backups.backup' };
    await client.run(['dmsetup', 'message', tpool, '0', 'reserve_metadata_snap'], op);
    try {
      const xml = await client.run(
        ['thin_delta', '-m', '--snap1', String(left.thinId), '--snap2', String(right.thinId), tmeta.dmPath],
        op,
      );
      return parseThinDelta(xml, origin.sizeBytes ?? 0);
    } finally {
      await client
        .run(['dmsetup', 'message', tpool, '0', 'release_metadata_snap'], cleanupOptions(context))
        .catch((error) =>
          logger.warn('lvm: release_metadata_snap failed', { error: (error as Error).message }),
        );
    }
  }

  function snapshotInvalidError(snap: string, origin: string, cowBytes: number | undefined, state: string) {
    return fail(
      'REMOTE',
      `The snapshot ${snap} of ${origin} became invalid while it was copied (device-mapper status ${JSON.stringify(state)}): its copy-on-write area${cowBytes === undefined ? '' : ` (${cowBytes} bytes)`} filled up because the origin changed more than that during the copy, so the copy is not consistent and was discarded. Give snapshots more room (connect option snapshotSize) or back up when fewer writes happen.`,
      'backups.backup',
      { reason: 'snapshot-invalid', snapshot: snap, origin, status: state },
    );
  }

  async function backup(
    ref: GuestRef,
    sink: BackupSink,
    options: BackupOptions = {},
  ): Promise<BackupArtifact> {
    if (typeof sink !== 'object' || sink === null || typeof sink.writeFile !== 'function') {
      throw new TypeError('backups.backup: sink must be a BackupSink.');
    }
    const operation = 'backups.backup';
    const mode = options.mode ?? 'full';
    if (mode !== 'full' && mode !== 'incremental')
      throw new TypeError("backups.backup: mode must be 'full' or 'incremental'.");
    const { signal } = options;
    const op = { ...(signal ? { signal } : {}), operation };
    const progress: ProgressReporter = createProgressReporter(options.onProgress);
    const { guest, volumes, all } = await resolveGuest(context, ref, op);

    // Incremental: every volume thin, each with its base of the artifact named by sinceCheckpoint.
    let bases: Map<string, LvmLogicalVolume> | undefined;
    let chain: { id: string; position: number } | undefined;
    let baseArtifact: string | undefined;
    if (mode === 'incremental') {
      const since = options.sinceCheckpoint;
      if (typeof since !== 'string' || since === '') {
        throw fail(
          'INVALID_ARGUMENT',
          'An incremental backup needs sinceCheckpoint (the artifact id of the previous backup).',
          operation,
        );
      }
      bases = new Map();
      for (const lv of volumes) {
        if (lv.kind !== 'thin') {
          throw fail(
            'UNSUPPORTED',
            `Incremental backups need thin volumes; ${lv.fullName} is not one. Take a full backup.`,
            operation,
          );
        }
        const base = all.find(
          (b) =>
            b.vgName === lv.vgName &&
            b.origin === lv.name &&
            b.tags.includes(HVKIT_BASE_TAG) &&
            b.tags.includes(`hvkit-artifact-${since}`),
        );
        if (!base) {
          throw fail(
            'NOT_FOUND',
            `No base snapshot of ${lv.fullName} for checkpoint ${JSON.stringify(since)}; take a full backup.`,
            operation,
            {
              checkpoint: since,
            },
          );
        }
        bases.set(lv.fullName, base);
        const position = Number(tagValue(base, 'hvkit-position-') ?? Number.NaN);
        const chainId = tagValue(base, 'hvkit-chain-');
        if (!chainId || !Number.isSafeInteger(position)) {
          throw fail(
            'NOT_FOUND',
            `The base snapshot ${base.fullName} has no chain tags; take a full backup.`,
            operation,
          );
        }
        chain = { id: chainId, position: position + 1 };
      }
      baseArtifact = since;
    }

    const startedAt = now();
    const unique = uniqueId();
    const id = newArtifactId(mode, startedAt, () => unique);
    chain ??= { id, position: 0 };
    const path = artifactPath(guest.name, id);
    const runTag = `${HVKIT_RUN_TAG}-${id}`;
    const suffix = `hvkit-${unique}`;
    const written: string[] = [];
    const files: BackupFile[] = [];
    const manifestFiles: BackupManifestFile[] = [];
    let froze = false;
    let succeeded = false;
    const plans = volumes.map((lv, i) => ({
      lv,
      snap: { vg: lv.vgName, lv: snapName(lv.name, suffix) } as LvId,
      file: `disk-${i}-${lv.name}.${mode === 'full' ? 'raw' : 'delta'}`,
    }));
    // The run's lease on the guest's volumes: CONFLICT while another run holds one (on a volume or a snapshot
    // of it), before anything runs. The lease tag goes on the run's snapshots with lvcreate itself (no command
    // of its own, and the guest's volumes stay untouched); two runs that got there at the same moment are told
    // apart after both, by the lvs after the snapshots.
    const other = liveLeaseOfOther(context, leaseHoldersOf(all, volumes), id);
    if (other) throw leaseConflict(other, operation);
    /** The lease's renewal on the snapshots, once they all exist. */
    let held: StoredLease | undefined;
    /** The `lvs` after the snapshots, read while the copy of a full backup runs (see below). */
    let reading: Promise<LvmLogicalVolume[]> | undefined;
    /** False once a thin run's snapshots became bases: nothing of the run is left to remove then. */
    let runVolumesLeft = true;
    /** Thin volumes only: the run keeps its snapshots as the bases of the next incremental. */
    const thin = volumes.every((lv) => lv.kind === 'thin');
    /** The definition file, written while the snapshots are made. */
    let defWriting: Promise<BackupFile> | undefined;
    /**
     * Removes what the run left (its snapshots with their lease, unless kept as bases), in every case. Only
     * after the manifest: the snapshots carry the run's lease, which keeps `backups.cleanup` off the
     * artifact folder until it is complete.
     */
    const endRun = async () => {
      // The lvs may still run (a failure before it was awaited): let it end first.
      await reading?.catch(() => {});
      // The renewal stops first: it would only fail on snapshots that are gone.
      await held?.stop();
      if (runVolumesLeft) await removeRun(runTag);
    };
    try {
      progress.phase('snapshot');
      // The definition first, then the disks, the manifest last. The definition needs no snapshot, so it
      // goes to the sink while they are made (the sink's own first round trips overlap LVM's); the sink
      // still gets one file at a time, as the disks start only after it.
      const definition: Definition = {
        format: 'hvkit-lvm-volumes',
        version: 1,
        guest: { id: guest.id, name: guest.name, uuid: guest.uuid },
        volumes: plans.map((p) => ({
          id: p.lv.fullName,
          vg: p.lv.vgName,
          name: p.lv.name,
          sizeBytes: p.lv.sizeBytes ?? 0,
          thin: p.lv.kind === 'thin',
          ...(p.lv.pool ? { pool: p.lv.pool } : {}),
          file: p.file,
        })),
      };
      const defBytes = new TextEncoder().encode(`${JSON.stringify(definition, null, 2)}\n`);
      const defName = `${path}/${VOLUMES_FILE}`;
      written.push(defName);
      defWriting = sink.writeFile(
        defName,
        (async function* () {
          yield defBytes;
        })(),
        { ...(signal ? { signal } : {}), expectedBytes: defBytes.byteLength },
      );
      defWriting.catch(() => {});
      if (context.freeze) {
        await context.freeze.freeze(guest, signal ? { signal } : {});
        froze = true;
      }
      // The lease starts with the first lvcreate (not before the freeze, however long that takes): its
      // lifetime covers the snapshots until the renewal starts, and of two runs the one whose lvcreate came
      // later gives way.
      const lease = newRunLease(context, id);
      try {
        for (const p of plans)
          await createLvSnapshot(p.lv, p.snap.lv, [HVKIT_TAG, runTag, leaseTag(lease)], op);
      } finally {
        if (froze) await context.freeze?.thaw(guest, {});
      }
      held = holdStoredLease(
        context,
        plans.map((p) => lvIdString(p.snap)),
        lease,
      );
      // One lvs after the snapshots: the race of two runs (the later one gives way), each snapshot's
      // existence, thin ids for thin_delta and the bases a thin run replaces. An incremental needs it before
      // the copy; a full backup reads it during the copy and needs it only before the manifest.
      reading = client.lvs(undefined, op);
      reading.catch(() => {});
      const readCurrent = async () => {
        const current = await (reading as Promise<LvmLogicalVolume[]>);
        const race = liveLeaseOfOther(context, leaseHoldersOf(current, volumes), id, lease);
        if (race) throw leaseConflict(race, operation);
        for (const p of plans) {
          if (!current.some((lv) => lv.vgName === p.snap.vg && lv.name === p.snap.lv))
            throw fail(
              'REMOTE',
              `The snapshot ${lvIdString(p.snap)} is missing right after lvcreate.`,
              operation,
            );
        }
        return current;
      };
      const sends: {
        lv: LvmLogicalVolume;
        snap: LvId;
        file: string;
        ranges: DeltaRange[] | undefined;
        bytes: number;
        size: number;
      }[] = [];
      let current: LvmLogicalVolume[] | undefined;
      if (bases) {
        current = await readCurrent();
        const find = (id: LvId) =>
          (current as LvmLogicalVolume[]).find(
            (lv) => lv.vgName === id.vg && lv.name === id.lv,
          ) as LvmLogicalVolume;
        for (const p of plans) {
          const origin = current.find((lv) => lv.fullName === p.lv.fullName) ?? p.lv;
          const ranges = await thinDelta(
            current as LvmLogicalVolume[],
            origin,
            bases.get(p.lv.fullName) as LvmLogicalVolume,
            find(p.snap),
            signal,
          );
          sends.push({ ...p, ranges, bytes: deltaFileBytes(ranges), size: p.lv.sizeBytes ?? 0 });
        }
      } else {
        for (const p of plans) {
          const size = p.lv.sizeBytes ?? 0;
          sends.push({ ...p, ranges: undefined, bytes: size, size });
        }
      }

      const defFile = await defWriting;
      files.push(defFile);
      manifestFiles.push({
        name: VOLUMES_FILE,
        role: 'definition',
        bytes: defFile.bytes,
        sha256: defFile.sha256,
        format: 'hvkit-lvm-volumes-json',
      });

      const total = sends.reduce((sum, s) => sum + s.bytes, 0);
      progress.phase('transfer', { totalBytes: total });
      let before = 0;
      for (const s of sends) {
        const snapPath = lvDevicePath(s.snap);
        // A COW snapshot whose area filled is invalid: checked after the copy (and when dd fails). A thin
        // snapshot cannot become invalid: it has no COW area, and its blocks are never written in place (an
        // origin write goes to a new block of the pool; a full pool fails that write, not the snapshot's
        // data, and a pool in failure mode fails the read, so dd fails). No lvs for it.
        // The check reads the kernel's own state of the snapshot target (`dmsetup status`, tens of ms)
        // rather than an lvs (hundreds of ms under load, and it takes the group's lock).
        const check =
          s.lv.kind === 'thin'
            ? async () => {}
            : async () => {
                const status = await client.run(
                  ['dmsetup', 'status', lvDmName(s.snap)],
                  cleanupOptions(context),
                );
                const state = cowSnapshotState(status);
                if (state !== 'valid') {
                  const row = (await reading?.catch(() => undefined))?.find(
                    (lv) => lv.vgName === s.snap.vg && lv.name === s.snap.lv,
                  );
                  throw snapshotInvalidError(lvIdString(s.snap), s.lv.fullName, row?.sizeBytes, state);
                }
              };
        const source = s.ranges
          ? (async function* () {
              for (const r of s.ranges as DeltaRange[]) {
                yield deltaHeader(r);
                if (r.kind === 'data') yield* readDevice(snapPath, r, signal, check);
              }
              await check();
            })()
          : (async function* () {
              yield* readDevice(snapPath, undefined, signal, check);
              // The copy is good only if the snapshot stayed valid to its end.
              await check();
            })();
        const name = `${path}/${s.file}`;
        written.push(name);
        const start = before;
        const file = await sink.writeFile(name, source, {
          ...(signal ? { signal } : {}),
          expectedBytes: s.bytes,
          onProgress: (p) => progress.update(start + p.processedBytes, { file: name }),
        });
        before += s.bytes;
        files.push(file);
        manifestFiles.push({
          name: s.file,
          role: 'disk',
          bytes: file.bytes,
          sha256: file.sha256,
          disk: {
            device: s.lv.fullName,
            format: 'raw',
            capacityBytes: s.size,
            ...(s.ranges ? { incremental: DELTA_SCHEME } : {}),
          },
        });
      }

      current ??= await readCurrent();
      const manifest: BackupManifest = {
        format: 'hvkit-backup',
        version: 1,
        specificationVersion: 'v1',
        adapter: ADAPTER_ID,
        id,
        kind: mode,
        method: bases ? 'lvm-thin-delta' : thin ? 'lvm-thin-snapshot' : 'lvm-cow-snapshot',
        guest: { id: guest.id, name: guest.name, uuid: guest.uuid },
        startedAt: startedAt.toISOString(),
        completedAt: now().toISOString(),
        consistency: froze ? 'fs-frozen' : 'crash',
        chain,
        ...(baseArtifact ? { base: baseArtifact, parentCheckpoint: baseArtifact } : {}),
        ...(thin ? { checkpoint: id } : {}),
        files: manifestFiles,
      };
      const manifestFile = await writeBackupManifest(sink, path, manifest, signal ? { signal } : {});
      files.push(manifestFile);
      progress.done();
      succeeded = true;

      // Thin volumes keep this run's snapshots as the bases of the next incremental, without the run's tag and
      // lease; older bases go (after the new ones are tagged, so a failure never leaves a volume without a base).
      if (thin) {
        const leaseTags = (await held?.stop()) ?? [];
        for (const s of sends) {
          await client.run(
            [
              'lvchange',
              '-q',
              '--deltag',
              runTag,
              ...leaseTags.flatMap((t) => ['--deltag', t]),
              '--addtag',
              HVKIT_BASE_TAG,
              '--addtag',
              `hvkit-artifact-${id}`,
              '--addtag',
              `hvkit-chain-${chain.id}`,
              '--addtag',
              `hvkit-position-${chain.position}`,
              lvIdString(s.snap),
            ],
            cleanupOptions(context),
          );
        }
        const older = current.filter(
          (lv) =>
            lv.tags.includes(HVKIT_BASE_TAG) &&
            sends.some((s) => s.lv.vgName === lv.vgName && s.lv.name === lv.origin) &&
            !sends.some((s) => s.snap.vg === lv.vgName && s.snap.lv === lv.name),
        );
        await removeVolumes(older.map((lv) => ({ vg: lv.vgName, lv: lv.name })));
        // No volume carries the run's tag any more.
        runVolumesLeft = false;
      }
      return {
        id,
        guest: guest.id,
        kind: mode,
        method: manifest.method,
        createdAt: startedAt,
        files,
        ...(manifest.checkpoint ? { checkpoint: manifest.checkpoint } : {}),
        ...(baseArtifact ? { parentCheckpoint: baseArtifact } : {}),
        consistency: manifest.consistency,
        path,
        chain: chain.id,
      };
    } catch (error) {
      // The definition may still be on its way (a snapshot failed first): its removal waits for it.
      await defWriting?.catch(() => {});
      if (!succeeded && sink.removeFile) {
        for (const name of written.reverse()) {
          await sink.removeFile(name).catch((e: unknown) =>
            logger.warn(`lvm: could not remove ${name} from ${sink.location}`, {
              error: (e as Error).message,
            }),
          );
        }
      }
      throw error;
    } finally {
      await endRun();
    }
  }

  async function restore(source: BackupSource, options: RestoreOptions = {}): Promise<RestoreResult> {
    if (typeof source !== 'object' || source === null || typeof source.readFile !== 'function') {
      throw new TypeError('backups.restore: source must be a BackupSource.');
    }
    const operation = 'backups.restore';
    const { signal } = options;
    const op = { ...(signal ? { signal } : {}), operation };
    const mode = options.mode ?? 'new';
    if (mode !== 'new' && mode !== 'in-place')
      throw new TypeError("backups.restore: mode must be 'new' or 'in-place'.");
    const resolved = await resolveRestoreChain(source, {
      ...(options.artifact !== undefined ? { artifact: options.artifact } : {}),
      ...(options.guest !== undefined ? { guest: options.guest } : {}),
      ...(signal ? { signal } : {}),
    });
    const { links, target } = resolved;
    for (const link of links) {
      if (link.manifest.adapter !== ADAPTER_ID) {
        throw fail(
          'INVALID_ARGUMENT',
          `Artifact ${link.path} was written by ${link.manifest.adapter}, not ${ADAPTER_ID}.`,
          operation,
          {
            reason: 'artifact-invalid',
          },
        );
      }
    }
    const defEntry = (m: BackupManifest) =>
      m.files.find((f) => f.role === 'definition' && f.name === VOLUMES_FILE);
    const targetDef = defEntry(target.manifest);
    if (!targetDef)
      throw fail('INVALID_ARGUMENT', `Artifact ${target.path} has no ${VOLUMES_FILE}.`, operation, {
        reason: 'artifact-invalid',
      });
    const definition = parseDefinition(
      await readVerifiedBytes(source, target.path, targetDef, signal ? { signal } : {}),
      target.path,
    );
    if (options.storage !== undefined) checkVgName(options.storage, operation);
    if (options.name !== undefined && mode === 'in-place') {
      throw fail('INVALID_ARGUMENT', 'name applies to a restore as new, not in place.', operation);
    }
    if (options.name !== undefined && definition.volumes.length !== 1) {
      throw fail('INVALID_ARGUMENT', 'name can be given only for a guest of one volume.', operation);
    }
    const run = uniqueId();
    const all = await client.lvs(undefined, op);
    const plans = definition.volumes.map((v, i) => {
      const vg = mode === 'in-place' ? v.vg : (options.storage ?? v.vg);
      const final =
        mode === 'in-place'
          ? v.name
          : options.name !== undefined
            ? checkLvName(options.name, operation)
            : snapName(v.name, `restored-${run}`);
      return { v, vg, final, temp: `hvkit-restore-${run}-${i}` };
    });
    for (const p of plans) {
      const existing = all.find((lv) => lv.vgName === p.vg && lv.name === p.final);
      if (mode === 'new' && existing) {
        throw fail('CONFLICT', `A volume ${p.vg}/${p.final} exists already.`, operation);
      }
      if (mode === 'in-place') {
        if (!existing)
          throw fail('NOT_FOUND', `The volume ${p.vg}/${p.final} to restore over does not exist.`, operation);
        if (existing.active) {
          throw fail(
            'CONFLICT',
            `The volume ${p.vg}/${p.final} is active; deactivate it (lvchange -an) before restoring over it.`,
            operation,
          );
        }
      }
    }
    const runTag = `${HVKIT_RUN_TAG}-restore-${run}`;
    // The run's lease, stored on its temporary volumes from their creation on (so cleanup never takes them
    // while the run lives). A live lease of another run on a target or its snapshots (a backup of it) or on
    // another restore's temporary volumes for the same target is CONFLICT; of two restores that start together
    // the later gives way.
    const lease = newRunLease(context, `restore-${run}`);
    const holdersOf = (lvs: readonly LvmLogicalVolume[]) =>
      lvs.filter((lv) =>
        plans.some(
          (p) =>
            lv.vgName === p.vg &&
            (lv.name === p.final ||
              (isSnapshot(lv) && lv.origin === p.final) ||
              lv.tags.includes(restoreTargetTag(p.final))),
        ),
      );
    const busy = liveLeaseOfOther(context, holdersOf(all), lease.run);
    if (busy) throw restoreConflict(busy, operation);
    let held: StoredLease | undefined;
    /** Where each temporary volume is: under its temporary name, under its final name, or done (no lease). */
    const whereIs: Record<string, 'temp' | 'named' | 'done'> = Object.fromEntries(
      plans.map((p) => [p.temp, 'temp'] as const),
    );
    /** Runs `fn` after the steps (and lease renewals) queued before it, one at a time. */
    let queue: Promise<unknown> = Promise.resolve();
    const exclusive = <T>(fn: () => Promise<T>): Promise<T> => {
      const next = queue.then(fn);
      queue = next.catch(() => {});
      return next;
    };
    const progress = createProgressReporter(options.onProgress);
    const readFiles: BackupFile[] = [];
    const total = links.reduce(
      (sum, l) => sum + l.manifest.files.filter((f) => f.role === 'disk').reduce((s, f) => s + f.bytes, 0),
      0,
    );
    let onlyCopy = false;
    try {
      // Temporary volumes, written and verified before anything gets its final name.
      for (const p of plans) {
        // A thin volume goes back into its pool when the pool has room for all of it (a pool that fills stops
        // every thin volume in it); otherwise it is restored as a linear volume.
        const candidate =
          p.v.thin && p.vg === p.v.vg
            ? all.find((lv) => lv.vgName === p.vg && lv.name === p.v.pool && lv.kind === 'thin-pool')
            : undefined;
        const poolFree =
          candidate?.sizeBytes !== undefined
            ? candidate.sizeBytes * (1 - (candidate.dataPercent ?? 100) / 100)
            : 0;
        const pool = candidate && poolFree >= p.v.sizeBytes ? candidate : undefined;
        const size = `${Math.ceil(p.v.sizeBytes / 1024)}k`;
        const tags = [
          '--addtag',
          HVKIT_TAG,
          '--addtag',
          HVKIT_RESTORE_TAG,
          '--addtag',
          runTag,
          '--addtag',
          restoreTargetTag(p.final),
          '--addtag',
          leaseTag(lease),
        ];
        await client.run(
          pool
            ? ['lvcreate', '-q', '-y', '-V', size, '-T', pool.fullName, '-n', p.temp, ...tags]
            : ['lvcreate', '-q', '-y', '-Wy', '-L', size, '-n', p.temp, ...tags, p.vg],
          op,
        );
      }
      const race = liveLeaseOfOther(context, holdersOf(await client.lvs(undefined, op)), lease.run, lease);
      if (race) throw restoreConflict(race, operation);
      // The lease is renewed until the end, also while the volumes are renamed (a swap can outlast its
      // lifetime: several volumes, a slow lvremove): on each volume under its name of the moment, one command
      // at a time with the renames and the removal of its tags.
      held = holdStoredLease(
        context,
        () =>
          plans
            .filter((p) => whereIs[p.temp] !== 'done')
            .map((p) => `${p.vg}/${whereIs[p.temp] === 'named' ? p.final : p.temp}`),
        lease,
        { exclusive },
      );
      progress.phase('transfer', { totalBytes: total });
      let done = 0;
      for (const link of links) {
        for (const p of plans) {
          const entry = link.manifest.files.find((f) => f.role === 'disk' && f.disk?.device === p.v.id);
          if (!entry) {
            throw fail(
              'INVALID_ARGUMENT',
              `Artifact ${link.path} has no disk file for ${p.v.id}.`,
              operation,
              { reason: 'artifact-invalid' },
            );
          }
          const dev = lvDevicePath({ vg: p.vg, lv: p.temp });
          const data = readVerifiedFile(source, link.path, entry, {
            ...(signal ? { signal } : {}),
            onBytes: (n) => {
              done += n;
              progress.update(done, { file: `${link.path}/${entry.name}` });
            },
          });
          if (entry.disk?.incremental === undefined) {
            await writeDevice(dev, data, undefined, signal);
          } else if (entry.disk.incremental === DELTA_SCHEME) {
            for await (const record of readDelta(data, p.v.sizeBytes)) {
              if (record.range.kind === 'data')
                await writeDevice(dev, record.data, record.range.offset, signal);
              else await zeroDevice(dev, record.range, signal);
            }
          } else {
            throw fail(
              'UNSUPPORTED',
              `Incremental scheme ${entry.disk.incremental} is not one this adapter reads.`,
              operation,
            );
          }
          readFiles.push({ name: `${link.path}/${entry.name}`, bytes: entry.bytes, sha256: entry.sha256 });
        }
      }
      // Everything verified: give the volumes their names (the lease still renewed, see above).
      if (signal?.aborted) throw signal.reason;
      /** Gives the volume of `p` its final name (in the renewal's order). */
      const takeName = (p: (typeof plans)[number], callOptions: CallOptions & { operation?: string }) =>
        exclusive(async () => {
          await client.run(['lvrename', '-q', p.vg, p.temp, p.final], callOptions);
          whereIs[p.temp] = 'named';
        });
      for (const p of plans) {
        if (mode === 'in-place') {
          // The swap, in steps that each leave a state cleanup can repair if the process dies (see
          // rollBackSwap): the original is marked (the run's swap tag and its own name), renamed aside, the
          // restored volume takes its name, the original is removed; then the restored one loses the run's tags.
          const aside = replacedName(run);
          try {
            await client.run(
              [
                'lvchange',
                '-q',
                '--addtag',
                swapTag(run),
                '--addtag',
                restoreTargetTag(p.final),
                `${p.vg}/${p.final}`,
              ],
              op,
            );
            await client.run(['lvrename', '-q', p.vg, p.final, aside], op);
            await takeName(p, cleanupOptions(context));
            await removeVolumes([{ vg: p.vg, lv: aside }]);
          } catch (error) {
            // No renewal touches this volume from here on (the undo may remove it, or put the original under
            // its name).
            await exclusive(async () => {
              whereIs[p.temp] = 'done';
            });
            // Undone as far as it got: the original gets its name back and loses its marks, a restored copy in
            // its place goes. Until that is known to be done, nothing of the run is removed (the restored
            // volume may be the only copy, if the original's removal went through); cleanup finishes it then.
            onlyCopy = true;
            try {
              const lvs = await client.lvs(undefined, cleanupOptions(context));
              if (lvs.some((lv) => lv.vgName === p.vg && lv.tags.includes(swapTag(run)))) {
                await rollBackSwap(p.vg, run, lvs);
                onlyCopy = false;
              } else if (
                !lvs.some((lv) => lv.vgName === p.vg && lv.name === p.final && lv.tags.includes(runTag))
              ) {
                onlyCopy = false;
              }
            } catch (e) {
              logger.warn(`lvm: could not undo the swap of ${p.vg}/${p.final}; run backups.cleanup`, {
                error: (e as Error).message,
              });
            }
            throw error;
          }
          // From here until its tags are gone the restored volume is the only copy: never removed with the run.
          onlyCopy = true;
          await client.run(['lvchange', '-q', '-an', `${p.vg}/${p.final}`], cleanupOptions(context));
        } else {
          await takeName(p, op);
        }
        await exclusive(async () => {
          await client.run(
            [
              'lvchange',
              '-q',
              '--deltag',
              HVKIT_TAG,
              '--deltag',
              HVKIT_RESTORE_TAG,
              '--deltag',
              runTag,
              '--deltag',
              restoreTargetTag(p.final),
              ...(held as StoredLease).tags().flatMap((t) => ['--deltag', t]),
              `${p.vg}/${p.final}`,
            ],
            cleanupOptions(context),
          );
          whereIs[p.temp] = 'done';
        });
        onlyCopy = false;
      }
      progress.done();
    } finally {
      await held?.stop();
      // The temporary volumes (and a restored one whose swap was undone); never a restored volume that is
      // the only copy left (its original removed), which cleanup completes instead.
      if (!onlyCopy) await removeRun(runTag);
    }
    const after = await client.lvs(undefined, cleanupOptions(context));
    const restored = plans
      .map((p) => after.find((lv) => lv.vgName === p.vg && lv.name === p.final))
      .filter((lv): lv is LvmLogicalVolume => lv !== undefined);
    const guestId =
      restored.length === 1 && context.guests === undefined
        ? (restored[0] as LvmLogicalVolume).fullName
        : mode === 'in-place'
          ? definition.guest.id
          : (options.name ?? `${definition.guest.name}-restored-${run}`);
    return {
      guest: guestOf(guestId, restored),
      mode,
      artifacts: links.map((l) => l.manifest.id),
      files: readFiles,
      warnings: [],
    };
  }

  return {
    async listSnapshots(ref: GuestRef, options: ListSnapshotsOptions = {}): Promise<LvmSnapshot[]> {
      const { includeIncrementalBases, ...callOptions } = options;
      const { volumes, all } = await resolveGuest(context, ref, {
        ...callOptions,
        operation: 'backups.listSnapshots',
      });
      const now = Date.now();
      return all
        .filter((lv) => isSnapshot(lv) && volumes.some((v) => v.vgName === lv.vgName && v.name === lv.origin))
        .filter((lv) => includeIncrementalBases === true || !lv.tags.includes(HVKIT_BASE_TAG))
        .map((lv) => snapshotOf(lv, now))
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.id < b.id ? -1 : 1));
    },

    async createSnapshot(ref: GuestRef, options: CreateSnapshotOptions = {}): Promise<LvmSnapshot> {
      const operation = 'backups.createSnapshot';
      if (options.memory)
        throw fail('UNSUPPORTED', 'LVM snapshots hold disk content only, no memory state.', operation);
      if (options.quiesce && !context.freeze) {
        throw fail('UNSUPPORTED', 'quiesce needs a freeze hook (connect option freeze).', operation);
      }
      if (options.name !== undefined && typeof options.name !== 'string')
        throw new TypeError('createSnapshot: name must be a string.');
      const { guest, volumes } = await resolveGuest(context, ref, { ...options, operation });
      if (volumes.length !== 1) {
        throw fail(
          'UNSUPPORTED',
          `createSnapshot takes a guest of one volume; ${guest.name} has ${volumes.length} (use backups.backup).`,
          operation,
        );
      }
      const lv = volumes[0] as LvmLogicalVolume;
      const name =
        options.name !== undefined
          ? checkLvName(options.name, operation)
          : snapName(lv.name, `snap-${now().getTime().toString(36)}`);
      let froze = false;
      if (options.quiesce && context.freeze) {
        await context.freeze.freeze(guest, options.signal ? { signal: options.signal } : {});
        froze = true;
      }
      try {
        await createLvSnapshot(lv, name, [], { ...options, operation });
      } finally {
        if (froze) await context.freeze?.thaw(guest, {});
      }
      const made = await client.lv({ vg: lv.vgName, lv: name }, { ...options, operation });
      if (!made)
        throw fail('REMOTE', `The snapshot ${lv.vgName}/${name} is missing right after lvcreate.`, operation);
      return snapshotOf(made);
    },

    async deleteSnapshot(ref: GuestRef, snapshotId: string, options: CallOptions = {}): Promise<void> {
      const operation = 'backups.deleteSnapshot';
      if (typeof snapshotId !== 'string')
        throw new TypeError('deleteSnapshot: snapshotId must be a string "vg/lv".');
      // The id is checked before anything runs.
      const given = snapshotId.includes('/')
        ? parseLvId(snapshotId, operation)
        : { vg: undefined, lv: checkLvName(snapshotId, operation) };
      const { volumes, all } = await resolveGuest(context, ref, { ...options, operation });
      const id: LvId = { vg: given.vg ?? volumes[0]?.vgName ?? '', lv: given.lv };
      const snap = all.find(
        (lv) =>
          lv.vgName === id.vg &&
          lv.name === id.lv &&
          isSnapshot(lv) &&
          volumes.some((v) => v.vgName === lv.vgName && v.name === lv.origin),
      );
      if (!snap) {
        throw fail('NOT_FOUND', `No snapshot ${lvIdString(id)} of this guest.`, operation, {
          snapshot: snapshotId.slice(0, 200),
        });
      }
      await client.lvremove(id, { ...options, operation });
    },

    backup: (ref, sink, options = {}) =>
      context.running.track('backups.backup', options?.signal, (signal) =>
        backup(ref, sink, { ...options, signal }),
      ),
    restore: (source, options = {}) =>
      context.running.track('backups.restore', options?.signal, (signal) =>
        restore(source, { ...options, signal }),
      ),

    async cleanup(ref: GuestRef, options: BackupCleanupOptions = {}): Promise<BackupCleanupResult> {
      const operation = 'backups.cleanup';
      const { sink, ...callOptions } = options;
      if (sink !== undefined && (typeof sink !== 'object' || sink === null)) {
        throw new TypeError('backups.cleanup: sink must be a BackupSink.');
      }
      const op = { ...callOptions, operation };
      const { guest, volumes, all } = await resolveGuest(context, ref, op);
      const result: BackupCleanupResult = { removed: [], kept: [] };
      const at = now();
      // Leases on the guest's volumes themselves (removed below once expired) and on their snapshots (the
      // runs' own, removed with the snapshots).
      const leases = leasesOf(volumes);
      const liveRuns = new Set(
        leasesOf(leaseHoldersOf(all, volumes))
          .filter((f) => f.lease && leaseIsLive(f.lease, at))
          .map((f) => (f.lease as BackupLease).run),
      );
      const holdsLiveLease = (lvs: readonly LvmLogicalVolume[]) =>
        leasesOf(lvs).some((f) => f.lease !== undefined && leaseIsLive(f.lease, at));
      // The metadata snapshot of a thin pool of the guest's volumes, reserved by an incremental run that died
      // between reserve_metadata_snap and release_metadata_snap: released when no live lease in the pool may
      // still need it. (First, so that the pool is in its normal state for the removals below.)
      const pools = all.filter(
        (pool) =>
          pool.kind === 'thin-pool' &&
          volumes.some((v) => v.kind === 'thin' && v.vgName === pool.vgName && v.pool === pool.name),
      );
      for (const pool of pools) {
        // An inactive pool has no -tpool device, and nothing can hold its metadata snapshot.
        if (!pool.dmPath || pool.active !== true) continue;
        const tpool = `${pool.dmPath}-tpool`;
        if (heldMetadataRoot(await client.run(['dmsetup', 'status', tpool], op)) === undefined) continue;
        const item = { kind: 'snapshot' as const, name: `${pool.fullName}:metadata-snapshot` };
        if (holdsLiveLease(all.filter((lv) => lv.vgName === pool.vgName && lv.pool === pool.name))) {
          result.kept.push(item);
          continue;
        }
        await client.run(['dmsetup', 'message', tpool, '0', 'release_metadata_snap'], op);
        result.removed.push(item);
      }
      // Snapshots of the guest's volumes that a backup run made and did not remove (its process died).
      for (const lv of all) {
        if (!isSnapshot(lv) || !lv.tags.includes(HVKIT_TAG)) continue;
        if (!volumes.some((v) => v.vgName === lv.vgName && v.name === lv.origin)) continue;
        const run = tagValue(lv, `${HVKIT_RUN_TAG}-`);
        if (run === undefined || run.startsWith('restore-')) continue;
        const item = { kind: 'snapshot' as const, name: lv.fullName, run };
        if (liveRuns.has(run)) {
          result.kept.push(item);
          continue;
        }
        await removeVolumes([{ vg: lv.vgName, lv: lv.name }]);
        result.removed.push(item);
      }
      // Restores into the guest's volume groups whose process died (lease expired), one run at a time: an
      // in-place swap it was in is undone first (the original back under its name); then its temporary volumes
      // go, and a restored volume whose original is gone already (the swap's last step) keeps its name and
      // loses hvkit's tags, since it is the only copy (so does one restored as new that got its name).
      const groups = new Set(volumes.map((v) => v.vgName));
      const restoreRuns = new Map<string, { vg: string; run: string; lvs: LvmLogicalVolume[] }>();
      for (const lv of all) {
        if (!groups.has(lv.vgName) || !lv.tags.includes(HVKIT_RESTORE_TAG)) continue;
        const run = tagValue(lv, `${HVKIT_RUN_TAG}-restore-`);
        if (run === undefined) continue;
        const key = `${lv.vgName}/${run}`;
        const entry = restoreRuns.get(key) ?? { vg: lv.vgName, run, lvs: [] };
        entry.lvs.push(lv);
        restoreRuns.set(key, entry);
      }
      for (const { vg, run, lvs } of restoreRuns.values()) {
        const item = (lv: LvmLogicalVolume) => ({
          kind: 'volume' as const,
          name: lv.fullName,
          run: `restore-${run}`,
        });
        if (holdsLiveLease(lvs)) {
          for (const lv of lvs) result.kept.push(item(lv));
          continue;
        }
        const rolledBack = await rollBackSwap(vg, run, all, op);
        for (const lv of lvs) {
          if (rolledBack.includes(lv)) {
            result.removed.push(item(lv));
            continue;
          }
          if (lv.name === tagValue(lv, 'hvkit-target-')) {
            const ours = lv.tags.filter((t) => t === HVKIT_TAG || t.startsWith('hvkit-'));
            await client.run(['lvchange', '-q', ...ours.flatMap((t) => ['--deltag', t]), lv.fullName], op);
            result.removed.push({ kind: 'lease', name: lv.fullName, run: `restore-${run}` });
            continue;
          }
          await removeVolumes([{ vg: lv.vgName, lv: lv.name }]);
          result.removed.push(item(lv));
        }
      }
      // Expired (or unreadable) leases go; live ones stay.
      for (const f of leases) {
        const item = {
          kind: 'lease' as const,
          name: f.volume.fullName,
          ...(f.lease ? { run: f.lease.run } : {}),
        };
        if (f.lease && leaseIsLive(f.lease, at)) {
          result.kept.push(item);
          continue;
        }
        await client.run(['lvchange', '-q', '--deltag', f.tag, f.volume.fullName], op);
        result.removed.push(item);
      }
      if (sink?.removeIncomplete) {
        const folder = artifactPath(guest.name, 'x').split('/')[0] as string;
        for (const name of await sink.removeIncomplete(folder, [...liveRuns], callOptions))
          result.removed.push({ kind: 'file', name });
      }
      return result;
    },

    async listCheckpoints(ref: GuestRef, options: CallOptions = {}): Promise<BackupCheckpoint[]> {
      const { volumes, all } = await resolveGuest(context, ref, {
        ...options,
        operation: 'backups.listCheckpoints',
      });
      const byArtifact = new Map<string, BackupCheckpoint>();
      for (const lv of all) {
        if (
          !lv.tags.includes(HVKIT_BASE_TAG) ||
          !volumes.some((v) => v.vgName === lv.vgName && v.name === lv.origin)
        )
          continue;
        const artifact = tagValue(lv, 'hvkit-artifact-');
        if (!artifact || byArtifact.has(artifact)) continue;
        const chain = tagValue(lv, 'hvkit-chain-');
        byArtifact.set(artifact, {
          id: artifact,
          managed: true,
          ...(lv.createdAt ? { createdAt: lv.createdAt } : {}),
          ...(chain ? { chain } : {}),
        });
      }
      return [...byArtifact.values()].sort((a, b) => (a.id < b.id ? -1 : 1));
    },
  };
}

/** The tag on a restore's temporary volume naming the volume it becomes (`vg` is the volume's own). */
function restoreTargetTag(final: string): string {
  return `hvkit-target-${final}`;
}

/** The mark of a volume an in-place restore of run `run` is swapping out (with its name's target tag). */
function swapTag(run: string): string {
  return `hvkit-swap-${run}`;
}

/** The name an in-place restore of run `run` gives the original while the restored volume takes its name. */
function replacedName(run: string): string {
  return `hvkit-replaced-${run}`;
}

/** The CONFLICT error of a restore target a live lease holds (a backup of it, or another restore into it). */
function restoreConflict(found: FoundLease, operation: string): HvkitError {
  const lease = found.lease as BackupLease;
  if (!lease.run.startsWith('restore-')) return leaseConflict(found, operation);
  return fail(
    'CONFLICT',
    `The target volume is being restored by run ${lease.run} of ${lease.owner} (its temporary volume ${found.volume.fullName}, lease until ${lease.expiresAt}); try again when it ended, or run backups.cleanup on a guest of that volume group after the lease expired if that process died.`,
    operation,
    { volume: found.volume.fullName, lease },
  );
}

/**
 * The state of a COW snapshot in its `dmsetup status` line (`<start> <length> snapshot <state>`): `valid`
 * while the kernel reports its usage (`<allocated>/<total> <metadata>` sectors), else the word it prints
 * instead: `Invalid` once its copy-on-write area filled (or an I/O error hit it), `Overflow` where the
 * target supports that, `Merge failed`. Any of those means the snapshot no longer shows the origin as it was.
 *
 * @throws HvkitError `PROTOCOL` when the output is no snapshot target's status.
 */
export function cowSnapshotState(status: string): string {
  const m = /^\s*\d+\s+\d+\s+snapshot\s+(.*?)\s*$/m.exec(status);
  if (!m) {
    throw fail(
      'PROTOCOL',
      `dmsetup status printed no snapshot status: ${JSON.stringify(status.slice(0, 200))}`,
      'backups.backup',
    );
  }
  const state = m[1] as string;
  return /^\d+\/\d+(\s+\d+)?$/.test(state) ? 'valid' : state;
}

/**
 * The held metadata root in `dmsetup status` of a thin pool (`<start> <length> thin-pool <transaction id>
 * <used>/<total metadata> <used>/<total data> <held root> ...`), or undefined when none is held (`-`).
 */
export function heldMetadataRoot(status: string): string | undefined {
  const fields = status.trim().split(/\s+/);
  const at = fields.indexOf('thin-pool');
  const held = at < 0 ? undefined : fields[at + 4];
  if (held === undefined) {
    throw fail(
      'PROTOCOL',
      `dmsetup status printed no thin-pool status: ${status.slice(0, 200)}`,
      'backups.cleanup',
    );
  }
  return held === '-' ? undefined : held;
}

function parseDefinition(bytes: Uint8Array, path: string): Definition {
  const bad = (why: string) =>
    fail('INVALID_ARGUMENT', `${path}/${VOLUMES_FILE} is not a volume list: ${why}.`, 'backups.restore', {
      reason: 'artifact-invalid',
    });
  let value: unknown;
  try {
    value = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch {
    throw bad('not JSON');
  }
  const d = value as Definition;
  if (
    d?.format !== 'hvkit-lvm-volumes' ||
    d.version !== 1 ||
    !Array.isArray(d.volumes) ||
    d.volumes.length === 0
  ) {
    throw bad('wrong format, version or no volumes');
  }
  for (const v of d.volumes) {
    try {
      checkVgName(v?.vg);
      checkLvName(v?.name);
    } catch {
      throw bad('a volume name is not valid');
    }
    if (!Number.isSafeInteger(v.sizeBytes) || v.sizeBytes <= 0 || v.id !== `${v.vg}/${v.name}`)
      throw bad('a volume size or id is not valid');
    if (v.pool !== undefined) {
      try {
        checkLvName(v.pool);
      } catch {
        throw bad('a pool name is not valid');
      }
    }
  }
  return d;
}
