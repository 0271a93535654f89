/**
 * Snapshots and backups.
 *
 * - Snapshots: disk-only (external overlay for a running guest, internal for a stopped one) or with memory
 *   (internal); list; delete; revert.
 * - Every backup writes an artifact folder `<guest name>/<artifact id>` into the sink: `domain.xml` (the
 *   definition, `VIR_DOMAIN_XML_SECURE|INACTIVE`, without hvkit's lease), `disk-<device>.<format>` per
 *   disk, and last the manifest `hvkit-backup.json` (core's `writeBackupManifest`). A guest without disks
 *   gets an artifact holding its definition.
 * - `libvirt-push` (running guests): DOMAIN_BACKUP_BEGIN in push mode writes each disk as qcow2 into the
 *   backup storage pool on the daemon host (temporary volumes `hvkit-backup-<uuid>-<run>.<dev>.qcow2`),
 *   together with a checkpoint `hvkit-<artifact id>` whose description tags it with its chain, run and
 *   position; the job is polled to completion (DOMAIN_GET_JOB_INFO), then each file is streamed into the
 *   sink with STORAGE_VOL_DOWNLOAD over a sibling connection (so it works for remote daemons too), and the
 *   temporary volumes are deleted. A full backup starts a chain and, once complete, deletes the
 *   checkpoints hvkit made for older chains of the guest; an incremental extends the chain of the
 *   checkpoint it starts from.
 * - `volume-download` (stopped guests): the disk volumes themselves are streamed.
 * - Leases: a backup stores a lease in the domain metadata before it creates anything, renews it while it
 *   runs and removes it at the end; a guest with another process's live lease is `CONFLICT`. The start
 *   of every backup, and `cleanup()`, remove what crashed runs left (see backup-cleanup.ts).
 * - Progress: one reporter (core's `createProgressReporter`) per backup, a phase per step with its total
 *   known before it starts: `libvirt-push` (the job's total), `download` or `volume-download` (the exact
 *   sizes of the volumes, when the daemon reports them), `host-config`.
 * - Bounds: each download is bounded by the volume's size (its `<physical>` size, exactly, when the daemon
 *   reports it; the sink checks it too): data or holes beyond it fail the backup with `PROTOCOL`. A
 *   download without data, or a job without progress, for `backupIdleTimeoutMs` fails with `TIMEOUT`.
 * - An abort or failure cancels the libvirt job (DOMAIN_ABORT_JOB), deletes the checkpoint and the
 *   temporary files this call created, and removes the files it wrote to the sink. Everything created is
 *   recorded in `ctx.leftovers` until removed or handed over; what cannot be removed is reported through
 *   the logger, naming it.
 * - `close()` aborts running backups through `ctx.closeSignal` and waits (bounded) for that cleanup.
 */

import { hostname } from 'node:os';
import {
  artifactPath,
  BACKUP_LEASE_RENEW_MS,
  BACKUP_LEASE_TTL_MS,
  type BackupArtifact,
  type BackupCheckpoint,
  type BackupCleanupOptions,
  type BackupCleanupResult,
  type BackupFile,
  type BackupLeftover,
  type BackupManifest,
  type BackupManifestFile,
  type BackupOptions,
  type BackupSink,
  type BackupsCapability,
  type CallOptions,
  type CreateSnapshotOptions,
  createProgressReporter,
  type GuestRef,
  HvkitError,
  hvkitError,
  leaseOwner,
  newArtifactId,
  newLease,
  type ProgressReporter,
  type Snapshot,
  sleep,
  writeBackupManifest,
} from '@hvkit/core';
import {
  type AdapterContext,
  type DomainHandle,
  domainHandle,
  holdLeftover,
  type Leftover,
  operationAbortedError,
  removeLeftover as removeLeftoverIn,
  reportLeftover,
  rpcOptions,
  trackOperation,
} from '../context';
import { ADAPTER_ID } from '../errors';
import {
  type CheckpointTag,
  checkpointDescription,
  parseCheckpointTag,
  type StoredLease,
  storedLeaseIsLive,
  tempVolumeName,
  withoutLeaseMetadata,
} from '../mapping/backup-state';
import { type DomainDiskDetails, parseDomainXmlDetails } from '../mapping/domain';
import {
  buildBackupXml,
  buildCheckpointXml,
  buildSnapshotXml,
  parseCheckpointXml,
  parseSnapshotXml,
  SNAPSHOT_CREATE_FLAGS,
} from '../mapping/snapshot';
import { parsePoolXml, parseVolumeSizes } from '../mapping/storage';
import type { LibvirtRpcClient } from '../protocol/client';
import { DOMAIN_XML } from '../protocol/constants';
import { remoteProcedures } from '../protocol/remote-protocol';
import { isStreamHole } from '../protocol/stream';
import type { RemoteDomain, RemoteStorageVol } from '../protocol/types';
import { supportsForDriver } from '../supports';
import {
  deleteCheckpoint,
  deleteVolume,
  findRestoreRuns,
  JOB,
  leaseState,
  listTaggedCheckpoints,
  pruneOlderChains,
  type RestoreRun,
  removeLeftovers,
  removeRestoreRuns,
  restoreRunConcerns,
  toBackupCheckpoint,
  waitJobGone,
} from './backup-cleanup';
import { isPersistent, leaseFlags, readLease, startLeaseRenewal, writeLease } from './backup-lease';
import { hostId } from './inventory';

/** `VIR_DOMAIN_JOB_STATS_COMPLETED`. */
const JOB_STATS_COMPLETED = 1;
/** `VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN`. */
const CHECKPOINT_XML_NO_DOMAIN = 2;
/** Cleanup calls run after an abort, without the caller's signal. */
const CLEANUP = { timeoutMs: 30_000 };
const POLL_MS = 100;
/** How an incremental's disk file holds the changed data (see docs/adapters/kvm-libvirt.md). */
const INCREMENTAL_FORMAT = 'qcow2-overlay';

/** Internal options for tests and recordings: deterministic names, clock and lease owner. */
export interface BackupNaming {
  /** Returns a unique suffix for artifact ids and snapshot names. Default: time-based. */
  uniqueId?: () => string;
  /** Clock for artifact ids, `createdAt` and leases. */
  now?: () => Date;
  /** The lease owner, `<hostname>:<pid>` by default. */
  leaseOwner?: () => string;
  /** Lease renewal interval and lifetime, ms (default 30 000 and 120 000). */
  leaseRenewMs?: number;
  leaseTtlMs?: number;
}

/**
 * Runs of this process that hold a lease now (every adapter of the process), with their adapter's close
 * signal: their leases are live until the run ends or its adapter is closed.
 */
const runsHere = new Map<string, AbortSignal>();

/** A unique suffix for names and ids: time and random, base 36. */
export function defaultId(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0')}`;
}

/** `name` with every character other than `A-Z a-z 0-9 . _ -` replaced by `_`. */
export function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

/** Size facts of a volume to download: see {@link downloadSize}. */
interface DownloadSize {
  exact?: number;
  maxBytes: number;
  capacity?: number;
}

/**
 * How many bytes a download of `vol` can carry: exactly its `<physical>` size (the file or device, which is
 * what STORAGE_VOL_DOWNLOAD sends) when the daemon reports one; else (libvirt < 3.0) at most capacity plus
 * allocation plus 1 % (at least 1 MiB) for image metadata, without an exact size. Also its capacity.
 *
 * @throws HvkitError `PROTOCOL` when the daemon reports no size at all.
 */
async function downloadSize(
  client: LibvirtRpcClient,
  vol: RemoteStorageVol,
  signal: AbortSignal | undefined,
): Promise<DownloadSize> {
  const sizes = parseVolumeSizes(
    await client.call(remoteProcedures.STORAGE_VOL_GET_XML_DESC, { vol, flags: 0 }, signal ? { signal } : {}),
  );
  const capacity = sizes.capacityBytes !== undefined ? { capacity: sizes.capacityBytes } : {};
  if (sizes.physicalBytes !== undefined) {
    return { exact: sizes.physicalBytes, maxBytes: sizes.physicalBytes, ...capacity };
  }
  if (sizes.capacityBytes === undefined) {
    throw hvkitError(
      'PROTOCOL',
      `The daemon reports no size for volume ${JSON.stringify(vol.key)}, so its download cannot be bounded.`,
      { adapter: ADAPTER_ID, operation: 'backups.backup', retryable: false },
    );
  }
  const margin = Math.max(2 ** 20, Math.ceil(sizes.capacityBytes / 100));
  const maxBytes = sizes.capacityBytes + (sizes.allocationBytes ?? 0) + margin;
  return { maxBytes: Math.min(maxBytes, Number.MAX_SAFE_INTEGER), ...capacity };
}

/** The total of a download phase: the sum of the exact sizes, undefined when one is not exact. */
function phaseTotal(sizes: readonly DownloadSize[]): number | undefined {
  let total = 0;
  for (const s of sizes) {
    if (s.exact === undefined) return undefined;
    total += s.exact;
  }
  return total;
}

/**
 * A volume's bytes, bounded by its size ({@link downloadSize}), for the sink: holes travel as hole packets
 * (not zeros) and are expanded to zeros by the client, so the sink still receives every byte of the file;
 * data and holes past the size fail the stream before they reach the sink.
 */
async function volumeBytes(
  client: LibvirtRpcClient,
  vol: RemoteStorageVol,
  size: DownloadSize,
  options: { signal: AbortSignal; onBytes: (n: number) => void; idleTimeoutMs: number },
): Promise<AsyncIterable<Uint8Array>> {
  const stream = await client.downloadVolume(vol, {
    sparse: true,
    holes: 'zeros',
    maxBytes: size.maxBytes,
    idleTimeoutMs: options.idleTimeoutMs,
    signal: options.signal,
  });
  async function* bytes(): AsyncGenerator<Uint8Array> {
    for await (const chunk of stream) {
      if (isStreamHole(chunk)) continue;
      options.onBytes(chunk.byteLength);
      yield chunk;
    }
  }
  return bytes();
}

/** One backup in progress: where it writes and what it wrote. */
interface Run {
  /** The guest's uuid (the host's id for host config). */
  uuid: string;
  /** The guest's name (the host's for host config). */
  name: string;
  id: string;
  path: string;
  startedAt: Date;
  sink: BackupSink;
  signal: AbortSignal;
  progress: ProgressReporter;
  /** Sink files written (or being written), held in `ctx.leftovers` until handed over. */
  written: Leftover[];
  /** The artifact's files, names relative to the sink's root. */
  files: BackupFile[];
  /** The manifest's entries, names relative to the artifact folder. */
  entries: BackupManifestFile[];
  /** Undo steps for what must stay until the manifest is written (the checkpoint), run on failure. */
  onFailure: (() => Promise<void>)[];
  /** Hand-over steps, run once the manifest is written. */
  onSuccess: (() => void)[];
}

/** What the manifest and the artifact say besides the files. */
interface RunResult {
  kind: BackupArtifact['kind'];
  method: string;
  chain?: { id: string; position: number };
  base?: string;
  checkpoint?: string;
  parentCheckpoint?: string;
}

/** A run that has written nothing yet, into the folder `artifactPath(name, id)` of `sink`. */
function newRun(
  fields: Pick<Run, 'uuid' | 'name' | 'id' | 'startedAt' | 'sink' | 'signal'>,
  onProgress: BackupOptions['onProgress'],
): Run {
  return {
    ...fields,
    path: artifactPath(fields.name, fields.id),
    progress: createProgressReporter(onProgress),
    written: [],
    files: [],
    entries: [],
    onFailure: [],
    onSuccess: [],
  };
}

/** The backups capability. */
export function createBackups(ctx: AdapterContext, naming: BackupNaming = {}): BackupsCapability {
  const uniqueId = naming.uniqueId ?? defaultId;
  const now = naming.now ?? (() => new Date());
  const owner = naming.leaseOwner ?? leaseOwner;
  const leaseTtlMs = naming.leaseTtlMs ?? BACKUP_LEASE_TTL_MS;
  const leaseRenewMs = naming.leaseRenewMs ?? BACKUP_LEASE_RENEW_MS;
  const manifest = supportsForDriver(ctx.driver).backups;
  const localHost = hostname();

  /** UNSUPPORTED when the driver's manifest leaves `what` out (drivers other than QEMU and test). */
  function requireSupported(what: 'snapshots' | 'full', operation: string): void {
    if (manifest !== false && manifest[what]) return;
    throw hvkitError(
      'UNSUPPORTED',
      `hvkit supports ${what === 'snapshots' ? 'snapshots' : 'disk backups'} on libvirt's QEMU driver, not on ${ctx.driver}.`,
      { adapter: ADAPTER_ID, operation },
    );
  }

  /**
   * Whether a stored lease holds: not expired, its owner process (on this host) alive, and, when this
   * process is the owner, one of its running backups.
   */
  function leaseIsLiveNow(lease: StoredLease): boolean {
    if (lease.owner === owner()) {
      const closing = runsHere.get(lease.run);
      if (closing === undefined || closing.aborted) return false;
    }
    return storedLeaseIsLive(lease, now(), localHost);
  }

  async function snapshotOf(dom: RemoteDomain, name: string, options?: CallOptions) {
    try {
      return await ctx.client.call(
        remoteProcedures.DOMAIN_SNAPSHOT_LOOKUP_BY_NAME,
        { dom, name, flags: 0 },
        rpcOptions(options),
      );
    } catch (error) {
      if ((error as { code?: string }).code === 'NOT_FOUND') {
        throw hvkitError('NOT_FOUND', `No snapshot ${JSON.stringify(name)}.`, {
          adapter: ADAPTER_ID,
          operation: 'backups.snapshot',
          cause: error,
        });
      }
      throw error;
    }
  }

  /**
   * The error of a backup stopped by its signal: ABORTED naming the close when `close()` stopped it, else
   * the signal's own HvkitError reason (the wrapper's TIMEOUT or ABORTED), else ABORTED.
   */
  function abortedError(signal: AbortSignal | undefined, operation: string): unknown {
    return operationAbortedError(ctx, signal, operation, 'The backup was aborted.');
  }

  /** The call's options with a signal that also aborts when the adapter closes. */
  function withClose<O extends { signal?: AbortSignal }>(options: O): O & { signal: AbortSignal } {
    const signal = options.signal ? AbortSignal.any([options.signal, ctx.closeSignal]) : ctx.closeSignal;
    return { ...options, signal };
  }

  /** Records something this call created; it stays recorded until removed or handed to the caller. */
  function hold(leftover: Leftover): Leftover {
    return holdLeftover(ctx, leftover);
  }

  /**
   * Removes a leftover with `remove`; NOT_FOUND counts as removed. When that fails it is reported through
   * the logger, naming it, unless `close()` has reported it already.
   */
  async function removeLeftover(leftover: Leftover, remove: () => Promise<unknown>): Promise<void> {
    await removeLeftoverIn(ctx, leftover, remove);
  }

  /** Removes the files this call wrote to the sink. */
  async function removeSinkFiles(sink: BackupSink, files: readonly Leftover[]): Promise<void> {
    for (const file of files) {
      if (!sink.removeFile) {
        if (ctx.leftovers.delete(file)) reportLeftover(ctx, file, 'the sink has no removeFile');
        continue;
      }
      await removeLeftover(file, () => (sink.removeFile as NonNullable<BackupSink['removeFile']>)(file.name));
    }
  }

  /** Opens a sibling connection for a bulk stream; `close()` closes it should the operation not. */
  async function openSibling(rpc: ReturnType<typeof rpcOptions>): Promise<LibvirtRpcClient> {
    const sibling = await ctx.client.openSibling(rpc);
    ctx.siblings.add(sibling);
    return sibling;
  }

  async function closeSibling(sibling: LibvirtRpcClient | undefined): Promise<void> {
    if (!sibling) return;
    ctx.siblings.delete(sibling);
    await sibling.close().catch(() => {});
  }

  /** Warns through the logger (a failing logger changes nothing). */
  function warn(message: string, meta: Record<string, unknown>): void {
    try {
      ctx.logger?.warn(`kvm-libvirt: ${message}`, { adapter: ADAPTER_ID, ...meta });
    } catch {
      // A failing logger must not change the outcome.
    }
  }

  /**
   * Writes one file of the artifact (`rel` inside its folder) and records it for the manifest.
   */
  async function put(
    run: Run,
    rel: string,
    source: AsyncIterable<Uint8Array>,
    entry: Omit<BackupManifestFile, 'name' | 'bytes' | 'sha256'>,
    expectedBytes?: number,
  ): Promise<void> {
    const name = `${run.path}/${rel}`;
    run.written.push(hold({ kind: 'sink file', name, guest: run.name, where: run.sink.location }));
    const file = await run.sink.writeFile(name, source, {
      signal: run.signal,
      ...(expectedBytes !== undefined ? { expectedBytes } : {}),
    });
    run.files.push(file);
    run.entries.push({ name: rel, ...entry, bytes: file.bytes, sha256: file.sha256 });
  }

  /** Writes a small text file of the artifact. */
  function putText(
    run: Run,
    rel: string,
    text: string,
    entry: Omit<BackupManifestFile, 'name' | 'bytes' | 'sha256'>,
  ): Promise<void> {
    const bytes = new TextEncoder().encode(text);
    async function* one(): AsyncGenerator<Uint8Array> {
      yield bytes;
    }
    return put(run, rel, one(), entry, bytes.byteLength);
  }

  /**
   * Ends a run: writes the manifest (the artifact's last file) and hands the files over.
   *
   * @throws the abort error when the signal aborted before the manifest.
   */
  async function finish(run: Run, result: RunResult, operation: string): Promise<BackupArtifact> {
    if (run.signal.aborted) throw abortedError(run.signal, operation);
    const m: BackupManifest = {
      format: 'hvkit-backup',
      version: 1,
      specificationVersion: 'v1',
      adapter: ADAPTER_ID,
      id: run.id,
      kind: result.kind,
      method: result.method,
      guest: { id: run.uuid, name: run.name, ...(result.kind !== 'host-config' ? { uuid: run.uuid } : {}) },
      startedAt: run.startedAt.toISOString(),
      completedAt: now().toISOString(),
      consistency: 'crash',
      ...(result.chain ? { chain: result.chain } : {}),
      ...(result.base !== undefined ? { base: result.base } : {}),
      ...(result.checkpoint !== undefined ? { checkpoint: result.checkpoint } : {}),
      ...(result.parentCheckpoint !== undefined ? { parentCheckpoint: result.parentCheckpoint } : {}),
      files: run.entries,
    };
    run.written.push(
      hold({
        kind: 'sink file',
        name: `${run.path}/hvkit-backup.json`,
        guest: run.name,
        where: run.sink.location,
      }),
    );
    run.files.push(await writeBackupManifest(run.sink, run.path, m, { signal: run.signal }));
    run.progress.done();
    for (const file of run.written) ctx.leftovers.delete(file);
    return {
      id: run.id,
      guest: run.uuid,
      kind: result.kind,
      method: result.method,
      createdAt: run.startedAt,
      files: run.files,
      ...(result.checkpoint !== undefined ? { checkpoint: result.checkpoint } : {}),
      ...(result.parentCheckpoint !== undefined ? { parentCheckpoint: result.parentCheckpoint } : {}),
      consistency: 'crash',
      path: run.path,
      ...(result.chain ? { chain: result.chain.id } : {}),
    };
  }

  /** The disks a backup copies: file, block and volume disks (not cdroms, not network disks). */
  function backedUpDisks(disks: readonly DomainDiskDetails[]): DomainDiskDetails[] {
    return disks.filter(
      (d) =>
        d.deviceType === 'disk' &&
        d.source !== undefined &&
        (d.backing === 'file' || d.backing === 'block' || d.backing === 'volume'),
    );
  }

  async function volumeDownload(
    run: Run,
    disks: readonly DomainDiskDetails[],
    rpc: ReturnType<typeof rpcOptions>,
  ) {
    const vols: { disk: DomainDiskDetails; vol: RemoteStorageVol; size: DownloadSize }[] = [];
    for (const disk of disks) {
      const vol = await ctx.client.call(
        remoteProcedures.STORAGE_VOL_LOOKUP_BY_PATH,
        { path: disk.source as string },
        rpc,
      );
      vols.push({ disk, vol, size: await downloadSize(ctx.client, vol, run.signal) });
    }
    const total = phaseTotal(vols.map((v) => v.size));
    run.progress.phase('volume-download', total !== undefined ? { totalBytes: total } : {});
    if (vols.length === 0) return;
    const sibling = await openSibling(rpc);
    try {
      for (const { disk, vol, size } of vols) {
        const format = disk.format ?? 'raw';
        const rel = `disk-${safeName(disk.device)}.${safeName(format)}`;
        const source = await volumeBytes(sibling, vol, size, {
          signal: run.signal,
          idleTimeoutMs: ctx.backupIdleTimeoutMs,
          onBytes: (n) => run.progress.advance(n, { file: `${run.path}/${rel}` }),
        });
        await put(
          run,
          rel,
          source,
          {
            role: 'disk',
            disk: { device: disk.device, format, capacityBytes: size.capacity ?? size.exact ?? 0 },
          },
          size.exact,
        );
      }
    } finally {
      await closeSibling(sibling);
    }
  }

  /**
   * Registers a running operation: `close()` aborts it (through the signal from {@link withClose}) and
   * waits, bounded, for its cleanup. When `close()` stops waiting, the caller gets ABORTED at once instead
   * of waiting for a cleanup that hangs (a sink that never answers).
   */
  function track<T>(operation: string, run: () => Promise<T>): Promise<T> {
    return trackOperation(ctx, operation, run);
  }

  /**
   * The chain an incremental from `name` extends: the tag of that checkpoint.
   *
   * @throws HvkitError `NOT_FOUND` when the guest has no such checkpoint, `INVALID_ARGUMENT` when it is not
   *   one of hvkit's chained checkpoints.
   */
  async function parentTag(
    dom: RemoteDomain,
    name: string,
    rpc: ReturnType<typeof rpcOptions>,
  ): Promise<CheckpointTag> {
    let description: string | undefined;
    try {
      const checkpoint = await ctx.client.call(
        remoteProcedures.DOMAIN_CHECKPOINT_LOOKUP_BY_NAME,
        { dom, name, flags: 0 },
        rpc,
      );
      description = parseCheckpointXml(
        await ctx.client.call(
          remoteProcedures.DOMAIN_CHECKPOINT_GET_XML_DESC,
          { checkpoint, flags: CHECKPOINT_XML_NO_DOMAIN },
          rpc,
        ),
      ).description;
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) {
        throw hvkitError(
          'NOT_FOUND',
          `Guest ${JSON.stringify(dom.name)} has no checkpoint ${JSON.stringify(name)}.`,
          {
            adapter: ADAPTER_ID,
            operation: 'backups.backup',
            details: { sinceCheckpoint: name },
            cause: error,
          },
        );
      }
      throw error;
    }
    const tag = parseCheckpointTag(description);
    if (tag === undefined || tag === 'legacy') {
      throw hvkitError(
        'INVALID_ARGUMENT',
        `Checkpoint ${JSON.stringify(name)} of guest ${JSON.stringify(dom.name)} does not belong to an hvkit backup chain; an incremental backup extends a chain that a full backup started.`,
        { adapter: ADAPTER_ID, operation: 'backups.backup', details: { sinceCheckpoint: name } },
      );
    }
    return tag;
  }

  /**
   * Takes the guest's lease for `lease.run`: CONFLICT when another run's live lease holds it; else removes
   * what crashed runs left (with the backup's sink, their incomplete folders there too), stores the lease,
   * reads it back (another process storing its own at the same moment wins, and this one is CONFLICT) and
   * keeps it renewed. Returns the release function (stops the renewal, removes the lease if it is still
   * this run's).
   */
  async function acquireLease(
    h: DomainHandle,
    lease: StoredLease,
    sink: BackupSink | undefined,
    rpc: ReturnType<typeof rpcOptions>,
  ): Promise<() => Promise<void>> {
    const operation = 'backups.backup';
    const persistent = await isPersistent(ctx, h.dom, rpc);
    const flags = leaseFlags(h, persistent);
    const state = await leaseState(ctx, h.dom, leaseIsLiveNow, rpc);
    if (state.live) throw leaseConflict(h.dom.name, state.live, operation);
    const cleaned = await removeLeftovers(ctx, h, {
      lease: state,
      guestFolder: guestFolderOf(h.dom.name),
      ...(sink ? { sink } : {}),
      persistent,
      rpc,
      onError: (item, error) =>
        warn(
          `could not remove the ${item.kind} ${JSON.stringify(item.name)} a crashed backup left: ${errorText(error)}`,
          { kind: item.kind, name: item.name, ...(item.run !== undefined ? { run: item.run } : {}) },
        ),
    });
    if (cleaned.removed.length > 0) {
      try {
        ctx.logger?.info(
          `kvm-libvirt: removed what crashed backups of ${JSON.stringify(h.dom.name)} left: ${cleaned.removed.map((r) => `${r.kind} ${r.name}`).join(', ')}`,
          { adapter: ADAPTER_ID },
        );
      } catch {
        // A failing logger must not change the outcome.
      }
    }
    const leftover = hold({ kind: 'lease', name: lease.run, guest: h.dom.name });
    runsHere.set(lease.run, ctx.closeSignal);
    const drop = () => {
      runsHere.delete(lease.run);
      ctx.leftovers.delete(leftover);
    };
    /** Removes the stored lease if it is this run's (never another run's that replaced it). */
    const removeOwnLease = async () => {
      const stored = await readLease(ctx, h.dom, CLEANUP);
      if (stored.state === 'valid' && stored.lease.run === lease.run) {
        await writeLease(ctx, h.dom, null, flags, CLEANUP);
      }
    };
    try {
      await writeLease(ctx, h.dom, lease, flags, rpc);
      const stored = await readLease(ctx, h.dom, rpc);
      if (stored.state !== 'valid' || stored.lease.run !== lease.run) {
        drop();
        const other = stored.state === 'valid' ? stored.lease : undefined;
        throw other
          ? leaseConflict(h.dom.name, other, operation)
          : hvkitError(
              'CONFLICT',
              `The backup lease of guest ${JSON.stringify(h.dom.name)} could not be stored.`,
              { adapter: ADAPTER_ID, operation },
            );
      }
    } catch (error) {
      if (runsHere.has(lease.run)) {
        // Not known whether it was stored (a lost reply, an abort): remove it if it is there.
        await removeOwnLease().catch(() => {});
        drop();
      }
      throw error;
    }
    const holder = startLeaseRenewal(ctx, h.dom, lease, flags, {
      renewMs: leaseRenewMs,
      ttlMs: leaseTtlMs,
      now,
      onError: (error) =>
        warn(`could not renew the backup lease of ${JSON.stringify(h.dom.name)}: ${errorText(error)}`, {
          run: lease.run,
        }),
    });
    // A closed adapter renews nothing more (its connection goes): the lease then expires by itself.
    const onClose = () => void holder.stop();
    ctx.closeSignal.addEventListener('abort', onClose, { once: true });
    return async () => {
      ctx.closeSignal.removeEventListener('abort', onClose);
      await holder.stop();
      try {
        await removeOwnLease();
        drop();
      } catch (error) {
        drop();
        reportLeftover(ctx, leftover, errorText(error));
      }
    };
  }

  /**
   * The push backup of a running guest's disks into the run: the libvirt job writes temporary qcow2
   * volumes (with the run's checkpoint), which are then downloaded into the sink and deleted.
   */
  async function pushBackup(
    dom: RemoteDomain,
    run: Run,
    disks: readonly DomainDiskDetails[],
    plan: { checkpoint: string; tag: CheckpointTag; incremental?: string },
    rpc: ReturnType<typeof rpcOptions>,
  ): Promise<void> {
    const { signal, progress } = run;
    const poolRef = await ctx.client.call(
      remoteProcedures.STORAGE_POOL_LOOKUP_BY_NAME,
      { name: ctx.backupPool },
      rpc,
    );
    const pool = parsePoolXml(
      await ctx.client.call(remoteProcedures.STORAGE_POOL_GET_XML_DESC, { pool: poolRef, flags: 0 }, rpc),
    );
    if (!pool.path) {
      throw hvkitError('UNSUPPORTED', `Backup pool ${JSON.stringify(ctx.backupPool)} has no target path.`, {
        adapter: ADAPTER_ID,
        operation: 'backups.backup',
      });
    }
    const { checkpoint } = plan;
    const targets = disks.map((d) => ({
      device: d.device,
      path: `${pool.path}/${tempVolumeName(run.uuid, run.id, d.device)}`,
      rel: `disk-${safeName(d.device)}.qcow2`,
    }));
    const backupXml = buildBackupXml({
      mode: 'push',
      ...(plan.incremental !== undefined ? { incremental: plan.incremental } : {}),
      disks: targets.map((t) => ({ name: t.device, target: t.path, format: 'qcow2' })),
    });
    const checkpointXml = buildCheckpointXml({
      name: checkpoint,
      description: checkpointDescription(plan.tag),
      disks: disks.map((d) => ({ name: d.device })),
    });

    // What the job creates on the daemon host, recorded before it starts (a lost reply leaves it unknown).
    const guest = run.name;
    const job = hold({ kind: 'backup job', name: checkpoint, guest });
    const checkpointLeft = hold({ kind: 'checkpoint', name: checkpoint, guest });
    const volumes = targets.map((t) =>
      hold({ kind: 'temporary volume', name: t.path, where: ctx.backupPool }),
    );
    const tempVols = new Map<Leftover, RemoteStorageVol>();
    let sibling: LibvirtRpcClient | undefined;
    let begun = false;

    /** Deletes the temporary volumes (looked up first when the job may have made them unseen). */
    const removeVolumes = async () => {
      if (volumes.some((v) => !tempVols.has(v) && ctx.leftovers.has(v))) {
        // The files may exist without being volumes yet.
        await ctx.client
          .call(remoteProcedures.STORAGE_POOL_REFRESH, { pool: poolRef, flags: 0 }, CLEANUP)
          .catch(() => {});
      }
      for (const v of volumes) {
        await removeLeftover(v, async () => {
          const vol =
            tempVols.get(v) ??
            (await ctx.client.call(remoteProcedures.STORAGE_VOL_LOOKUP_BY_PATH, { path: v.name }, CLEANUP));
          await deleteVolume(ctx, vol, CLEANUP);
        });
      }
    };
    // Undoes the daemon side: stops the download and the job, deletes the checkpoint and the temporary
    // files. Started at once on abort, so the caller (and close()) learn of a clean state soon.
    let serverCleanup: Promise<void> | undefined;
    const cleanServer = () => {
      serverCleanup ??= (async () => {
        const s = sibling;
        sibling = undefined;
        await closeSibling(s);
        if (ctx.leftovers.has(job)) {
          await removeLeftover(job, async () => {
            await ctx.client.call(remoteProcedures.DOMAIN_ABORT_JOB, { dom }, CLEANUP).catch(() => {});
            if (!(await waitJobGone(ctx, dom, CLEANUP)))
              throw new Error('the job did not end after DOMAIN_ABORT_JOB');
          });
        }
        await removeLeftover(checkpointLeft, () => deleteCheckpoint(ctx, dom, checkpoint, CLEANUP));
        await removeVolumes();
      })();
      return serverCleanup;
    };
    const onAbort = () => {
      if (begun) void cleanServer();
    };
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      try {
        // Not given the signal: only the reply tells whether the job exists, so the call is not given up.
        await ctx.client.call(
          remoteProcedures.DOMAIN_BACKUP_BEGIN,
          { dom, backupXml, checkpointXml, flags: 0 },
          rpc.timeoutMs !== undefined ? { timeoutMs: rpc.timeoutMs } : {},
        );
      } catch (error) {
        if (HvkitError.isInstance(error) && typeof error.backendCode === 'number') {
          // The daemon refused: it created nothing.
          for (const l of [job, checkpointLeft, ...volumes]) ctx.leftovers.delete(l);
        } else {
          // No answer (timeout, lost connection): the job may exist.
          begun = true;
        }
        throw error;
      }
      begun = true;
      if (signal.aborted) throw abortedError(signal, 'backups.backup');
      // Poll the job until it is gone; a job that makes no progress (or reports progress past its own
      // total) for backupIdleTimeoutMs is given up (the catch below aborts it). The phase starts once the
      // job tells its total.
      let pushTotal: number | undefined;
      let furthest = -1;
      let progressAt = Date.now();
      for (;;) {
        const info = await ctx.client.call(remoteProcedures.DOMAIN_GET_JOB_INFO, { dom }, rpc);
        if (info.type === JOB.NONE || info.type >= JOB.COMPLETED) break;
        const jobTotal = Number(info.dataTotal);
        const processed = Number(info.dataProcessed);
        if (processed > furthest && (jobTotal <= 0 || processed <= jobTotal)) {
          furthest = processed;
          progressAt = Date.now();
        } else if (Date.now() - progressAt >= ctx.backupIdleTimeoutMs) {
          throw hvkitError(
            'TIMEOUT',
            `The libvirt backup job made no progress for ${ctx.backupIdleTimeoutMs} ms (backupIdleTimeoutMs).`,
            {
              adapter: ADAPTER_ID,
              operation: 'backups.backup',
              details: {
                backupIdleTimeoutMs: ctx.backupIdleTimeoutMs,
                dataProcessed: processed,
                dataTotal: jobTotal,
              },
            },
          );
        }
        if (pushTotal === undefined && Number.isSafeInteger(jobTotal) && jobTotal > 0) {
          pushTotal = jobTotal;
          progress.phase('libvirt-push', { totalBytes: pushTotal });
        }
        if (pushTotal !== undefined && Number.isSafeInteger(processed)) {
          const done = progress.current?.processedBytes ?? 0;
          progress.update(Math.min(Math.max(processed, done), pushTotal));
        }
        // An abort rejects here; the catch below turns it into abortedError(signal).
        await sleep(POLL_MS, { signal });
      }
      ctx.leftovers.delete(job);
      const completed = await ctx.client
        .call(remoteProcedures.DOMAIN_GET_JOB_STATS, { dom, flags: JOB_STATS_COMPLETED }, rpc)
        .catch(() => undefined);
      if (completed && (completed.type === JOB.FAILED || completed.type === JOB.CANCELLED)) {
        throw hvkitError('REMOTE', 'The libvirt backup job failed.', {
          adapter: ADAPTER_ID,
          operation: 'backups.backup',
        });
      }
      if (pushTotal === undefined) {
        // The job ended before the first poll saw it: its total is what it processed.
        const value = completed?.params.find((p) => p.field === 'disk_processed')?.value;
        const n = typeof value === 'bigint' || typeof value === 'number' ? Number(value) : 0;
        pushTotal = Number.isSafeInteger(n) && n > 0 ? n : 0;
        progress.phase('libvirt-push', { totalBytes: pushTotal });
      }
      progress.update(pushTotal);

      await ctx.client.call(remoteProcedures.STORAGE_POOL_REFRESH, { pool: poolRef, flags: 0 }, rpc);
      const sizes: DownloadSize[] = [];
      for (const [i, t] of targets.entries()) {
        const vol = await ctx.client.call(remoteProcedures.STORAGE_VOL_LOOKUP_BY_PATH, { path: t.path }, rpc);
        tempVols.set(volumes[i] as Leftover, vol);
        sizes.push(await downloadSize(ctx.client, vol, signal));
      }
      const total = phaseTotal(sizes);
      progress.phase('download', total !== undefined ? { totalBytes: total } : {});
      const stream = await openSibling(rpc);
      sibling = stream;
      for (const [i, t] of targets.entries()) {
        const size = sizes[i] as DownloadSize;
        const disk = disks[i] as DomainDiskDetails;
        const source = await volumeBytes(
          stream,
          tempVols.get(volumes[i] as Leftover) as RemoteStorageVol,
          size,
          {
            signal,
            idleTimeoutMs: ctx.backupIdleTimeoutMs,
            onBytes: (n) => progress.advance(n, { file: `${run.path}/${t.rel}` }),
          },
        );
        await put(
          run,
          t.rel,
          source,
          {
            role: 'disk',
            disk: {
              device: disk.device,
              format: 'qcow2',
              capacityBytes: size.capacity ?? 0,
              ...(plan.incremental !== undefined ? { incremental: INCREMENTAL_FORMAT } : {}),
            },
          },
          size.exact,
        );
      }
      // The temporary volumes go now; failing to delete them is reported, not a failed backup.
      const s = sibling;
      sibling = undefined;
      await closeSibling(s);
      await removeVolumes();
      if (signal.aborted) throw abortedError(signal, 'backups.backup');
    } catch (error) {
      if (begun) await cleanServer();
      throw signal.aborted ? abortedError(signal, 'backups.backup') : error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
    // Held until the manifest is written: a failure there still removes the checkpoint.
    run.onFailure.push(async () => {
      await removeLeftover(checkpointLeft, () => deleteCheckpoint(ctx, dom, checkpoint, CLEANUP));
    });
    run.onSuccess.push(() => ctx.leftovers.delete(checkpointLeft));
  }

  /** A backup of a guest, into an artifact folder of `sink`. */
  async function guestBackup(
    h: DomainHandle,
    sink: BackupSink,
    options: BackupOptions & { signal: AbortSignal; mode: 'full' | 'incremental' },
  ): Promise<BackupArtifact> {
    const rpc = rpcOptions(options);
    const operation = 'backups.backup';
    const incremental = options.mode === 'incremental';
    const definition = withoutLeaseMetadata(
      await ctx.client.call(
        remoteProcedures.DOMAIN_GET_XML_DESC,
        { dom: h.dom, flags: DOMAIN_XML.SECURE | DOMAIN_XML.INACTIVE },
        rpc,
      ),
    );
    // The disks as they are now: the live definition of a running guest (its current images).
    const current = h.active
      ? await ctx.client.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom: h.dom, flags: 0 }, rpc)
      : definition;
    const details = parseDomainXmlDetails(current);
    const disks = backedUpDisks(details.disks);
    const parent = incremental ? await parentTag(h.dom, options.sinceCheckpoint as string, rpc) : undefined;
    const startedAt = now();
    const id = newArtifactId(options.mode, startedAt, uniqueId);
    const path = artifactPath(details.name, id);
    const push = h.active && disks.length > 0;
    const checkpoint = push ? `hvkit-${id}` : undefined;
    const tag: CheckpointTag = parent
      ? { chain: parent.chain, run: id, position: parent.position + 1 }
      : { chain: id, run: id, position: 0 };
    const lease: StoredLease = {
      ...newLease(id, leaseTtlMs, { now: startedAt, owner: owner() }),
      operation: 'backup',
      ...(checkpoint !== undefined ? { checkpoint } : {}),
      artifact: path,
    };
    const release = await acquireLease(h, lease, sink, rpc).catch((error: unknown) => {
      throw options.signal.aborted ? abortedError(options.signal, operation) : error;
    });
    const run = newRun(
      { uuid: h.uuid, name: details.name, id, startedAt, sink, signal: options.signal },
      options.onProgress,
    );
    let released = false;
    try {
      try {
        await putText(run, 'domain.xml', definition, { role: 'definition', format: 'libvirt-domain-xml' });
        if (push) {
          await pushBackup(
            h.dom,
            run,
            disks,
            {
              checkpoint: checkpoint as string,
              tag,
              ...(incremental ? { incremental: options.sinceCheckpoint as string } : {}),
            },
            rpc,
          );
        } else {
          await volumeDownload(run, disks, rpc);
        }
        const artifact = await finish(
          run,
          {
            kind: options.mode,
            method: push ? 'libvirt-push' : 'volume-download',
            chain: { id: tag.chain, position: tag.position },
            ...(parent ? { base: parent.run, parentCheckpoint: options.sinceCheckpoint as string } : {}),
            ...(checkpoint !== undefined ? { checkpoint } : {}),
          },
          operation,
        );
        for (const f of run.onSuccess) f();
        if (!incremental && push) {
          // The chain this full backup started is complete: the older chains' checkpoints go.
          await pruneOlderChains(ctx, h.dom, tag.chain, CLEANUP, (name, error) =>
            warn(
              `could not delete checkpoint ${JSON.stringify(name)} of an older backup chain: ${errorText(error)}`,
              {
                guest: details.name,
                checkpoint: name,
              },
            ),
          ).catch((error: unknown) =>
            warn(
              `could not list the checkpoints of ${JSON.stringify(details.name)} to prune older chains: ${errorText(error)}`,
              {
                guest: details.name,
              },
            ),
          );
        }
        return artifact;
      } catch (error) {
        for (const f of run.onFailure) await f();
        // The daemon side is clean: the lease goes before the sink's files, whose removal may hang.
        released = true;
        await release();
        await removeSinkFiles(sink, run.written);
        // The folder itself (and a directory sink's hidden partial files): this run holds the guest's
        // lease, so the guest's only incomplete folder in the sink is this run's.
        await sink
          .removeIncomplete?.(guestFolderOf(details.name), [], {
            signal: AbortSignal.timeout(CLEANUP.timeoutMs),
          })
          .catch((e: unknown) =>
            warn(`could not remove the incomplete artifact ${path}: ${errorText(e)}`, { path }),
          );
        throw options.signal.aborted ? abortedError(options.signal, operation) : error;
      }
    } finally {
      if (!released) await release();
    }
  }

  const capability: BackupsCapability = {
    async listSnapshots(ref, options?: CallOptions): Promise<Snapshot[]> {
      const h = await domainHandle(ctx, ref, 'backups.listSnapshots', options);
      requireSupported('snapshots', 'backups.listSnapshots');
      const rpc = rpcOptions(options);
      const { snapshots } = await ctx.client.call(
        remoteProcedures.DOMAIN_LIST_ALL_SNAPSHOTS,
        { dom: h.dom, needResults: 1, flags: 0 },
        rpc,
      );
      return Promise.all(
        snapshots.map(async (snap) =>
          parseSnapshotXml(
            await ctx.client.call(remoteProcedures.DOMAIN_SNAPSHOT_GET_XML_DESC, { snap, flags: 0 }, rpc),
          ),
        ),
      );
    },

    async createSnapshot(ref, options: CreateSnapshotOptions = {}): Promise<Snapshot> {
      const rpc = rpcOptions(options);
      const h = await domainHandle(ctx, ref, 'backups.createSnapshot', options);
      requireSupported('snapshots', 'backups.createSnapshot');
      const name = options.name ?? `hvkit-${uniqueId()}`;
      const memory = options.memory === true;
      if (memory && !h.active) {
        throw hvkitError('CONFLICT', 'A snapshot with memory needs a running guest.', {
          adapter: ADAPTER_ID,
          operation: 'backups.createSnapshot',
        });
      }
      let flags = 0;
      let diskOnly = false;
      if (!memory && h.active) {
        if (ctx.driver === 'TEST') {
          throw hvkitError(
            'UNSUPPORTED',
            "libvirt's test driver cannot take a disk-only snapshot of a running guest.",
            { adapter: ADAPTER_ID, operation: 'backups.createSnapshot' },
          );
        }
        diskOnly = true;
        flags |= SNAPSHOT_CREATE_FLAGS.DISK_ONLY | SNAPSHOT_CREATE_FLAGS.ATOMIC;
      }
      if (options.quiesce) flags |= SNAPSHOT_CREATE_FLAGS.QUIESCE;
      const xml = buildSnapshotXml({
        name,
        ...(options.description !== undefined ? { description: options.description } : {}),
        ...(diskOnly ? { diskOnly: true } : {}),
      });
      const snap = await ctx.client.call(
        remoteProcedures.DOMAIN_SNAPSHOT_CREATE_XML,
        { dom: h.dom, xml, flags },
        rpc,
      );
      return parseSnapshotXml(
        await ctx.client.call(remoteProcedures.DOMAIN_SNAPSHOT_GET_XML_DESC, { snap, flags: 0 }, rpc),
      );
    },

    async deleteSnapshot(ref, snapshotId: string, options?: CallOptions): Promise<void> {
      if (typeof snapshotId !== 'string' || snapshotId === '')
        throw new TypeError('snapshotId must be a non-empty string.');
      const h = await domainHandle(ctx, ref, 'backups.deleteSnapshot', options);
      requireSupported('snapshots', 'backups.deleteSnapshot');
      const snap = await snapshotOf(h.dom, snapshotId, options);
      await ctx.client.call(remoteProcedures.DOMAIN_SNAPSHOT_DELETE, { snap, flags: 0 }, rpcOptions(options));
    },

    async revertSnapshot(ref, snapshotId: string, options?: CallOptions): Promise<void> {
      if (typeof snapshotId !== 'string' || snapshotId === '')
        throw new TypeError('snapshotId must be a non-empty string.');
      const h = await domainHandle(ctx, ref, 'backups.revertSnapshot', options);
      requireSupported('snapshots', 'backups.revertSnapshot');
      const snap = await snapshotOf(h.dom, snapshotId, options);
      await ctx.client.call(
        remoteProcedures.DOMAIN_REVERT_TO_SNAPSHOT,
        { snap, flags: 0 },
        rpcOptions(options),
      );
    },

    async backup(ref, sink: BackupSink, options: BackupOptions = {}): Promise<BackupArtifact> {
      if (typeof sink !== 'object' || sink === null || typeof sink.writeFile !== 'function') {
        throw new TypeError('sink must be a BackupSink.');
      }
      const mode = options.mode ?? 'full';
      if (mode !== 'full' && mode !== 'incremental')
        throw new TypeError("options.mode must be 'full' or 'incremental'.");
      if (
        mode === 'incremental' &&
        (typeof options.sinceCheckpoint !== 'string' || options.sinceCheckpoint === '')
      ) {
        throw hvkitError('INVALID_ARGUMENT', 'An incremental backup needs options.sinceCheckpoint.', {
          adapter: ADAPTER_ID,
          operation: 'backups.backup',
        });
      }
      return track('backups.backup', async () => {
        const call = withClose(options);
        const h = await domainHandle(ctx, ref, 'backups.backup', call);
        if (ctx.driver === 'TEST') {
          throw hvkitError('UNSUPPORTED', "libvirt's test driver has no backup or volume download APIs.", {
            adapter: ADAPTER_ID,
            operation: 'backups.backup',
          });
        }
        requireSupported('full', 'backups.backup');
        if (!h.active && mode === 'incremental') {
          throw hvkitError('UNSUPPORTED', 'Incremental backups need a running guest (checkpoints).', {
            adapter: ADAPTER_ID,
            operation: 'backups.backup',
          });
        }
        return guestBackup(h, sink, { ...call, mode });
      });
    },

    async backupHostConfig(sink: BackupSink, given: BackupOptions = {}): Promise<BackupArtifact> {
      if (typeof sink !== 'object' || sink === null || typeof sink.writeFile !== 'function') {
        throw new TypeError('sink must be a BackupSink.');
      }
      const operation = 'backups.backupHostConfig';
      return track(operation, async () => {
        const options = withClose(given);
        const rpc = rpcOptions(options);
        const c = ctx.client;
        const [caps, host, hostName, doms, nets, pools] = await Promise.all([
          ctx.capabilities(options),
          hostId(ctx, options),
          c.call(remoteProcedures.CONNECT_GET_HOSTNAME, undefined, rpc),
          c.call(remoteProcedures.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 }, rpc),
          c.call(remoteProcedures.CONNECT_LIST_ALL_NETWORKS, { needResults: 1, flags: 0 }, rpc),
          c.call(remoteProcedures.CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 0 }, rpc),
        ]);
        const entries: [string, Promise<string>][] = [['capabilities.xml', Promise.resolve(caps.xml)]];
        for (const dom of doms.domains)
          entries.push([
            `domains/${safeName(dom.name)}.xml`,
            c
              .call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: DOMAIN_XML.INACTIVE }, rpc)
              .then(withoutLeaseMetadata),
          ]);
        // VIR_NETWORK_XML_INACTIVE = 1, VIR_STORAGE_XML_INACTIVE = 1.
        for (const net of nets.networks)
          entries.push([
            `networks/${safeName(net.name)}.xml`,
            // The test driver refuses the INACTIVE flag: fall back to the current definition.
            c
              .call(remoteProcedures.NETWORK_GET_XML_DESC, { net, flags: 1 }, rpc)
              .catch(() => c.call(remoteProcedures.NETWORK_GET_XML_DESC, { net, flags: 0 }, rpc)),
          ]);
        for (const pool of pools.pools)
          entries.push([
            `pools/${safeName(pool.name)}.xml`,
            c
              .call(remoteProcedures.STORAGE_POOL_GET_XML_DESC, { pool, flags: 1 }, rpc)
              .catch(() => c.call(remoteProcedures.STORAGE_POOL_GET_XML_DESC, { pool, flags: 0 }, rpc)),
          ]);
        const texts = await Promise.all(entries.map(([, p]) => p));
        const encoded = texts.map((t) => new TextEncoder().encode(t));
        const startedAt = now();
        const id = newArtifactId('host-config', startedAt, uniqueId);
        const run = newRun(
          { uuid: host, name: hostName, id, startedAt, sink, signal: options.signal },
          options.onProgress,
        );
        run.progress.phase('host-config', { totalBytes: encoded.reduce((n, b) => n + b.byteLength, 0) });
        try {
          for (const [i, [name]] of entries.entries()) {
            const bytes = encoded[i] as Uint8Array;
            async function* one(): AsyncGenerator<Uint8Array> {
              yield bytes;
            }
            await put(run, name, one(), { role: 'host-config', format: 'libvirt-xml' }, bytes.byteLength);
            run.progress.advance(bytes.byteLength, { file: `${run.path}/${name}` });
          }
          return await finish(run, { kind: 'host-config', method: 'libvirt-xml' }, operation);
        } catch (error) {
          await removeSinkFiles(sink, run.written);
          throw options.signal.aborted ? abortedError(options.signal, operation) : error;
        }
      });
    },

    async listCheckpoints(ref, options?: CallOptions): Promise<BackupCheckpoint[]> {
      const h = await domainHandle(ctx, ref, 'backups.listCheckpoints', options);
      return (await listTaggedCheckpoints(ctx, h.dom, rpcOptions(options))).map(toBackupCheckpoint);
    },

    async cleanup(ref, options: BackupCleanupOptions = {}): Promise<BackupCleanupResult> {
      if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object.');
      const sink = options.sink;
      if (
        sink !== undefined &&
        (typeof sink !== 'object' || sink === null || typeof sink.writeFile !== 'function')
      ) {
        throw new TypeError('options.sink must be a BackupSink.');
      }
      const operation = 'backups.cleanup';
      return track(operation, async () => {
        const call = withClose(options);
        const rpc = rpcOptions(call);
        const failures: { item: BackupLeftover; error: unknown }[] = [];
        const onError = (item: BackupLeftover, error: unknown) => failures.push({ item, error });
        /** Restore runs (lease volumes in the pools) that target the guest or restore from its artifacts. */
        const restoreRuns = async (guest: { name?: string; uuid?: string }) =>
          (
            await findRestoreRuns(ctx, {
              isLive: leaseIsLiveNow,
              now: now(),
              ttlMs: leaseTtlMs,
              rpc,
            })
          ).filter((r) => restoreRunConcerns(r, guest));
        let h: DomainHandle;
        try {
          h = await domainHandle(ctx, ref, operation, call);
        } catch (error) {
          // A guest a killed restore as new was to create was never defined: its name still finds the run.
          if (!HvkitError.isInstance(error, 'NOT_FOUND')) throw error;
          const runs = await restoreRuns(refKeys(ref));
          if (runs.length === 0) throw error;
          const result = await removeRestoreRuns(ctx, runs, { rpc, onError });
          if (call.signal.aborted) throw abortedError(call.signal, operation);
          throwCleanupFailures(failures, result, operation);
          return result;
        }
        const state = await leaseState(ctx, h.dom, leaseIsLiveNow, rpc);
        const result = await removeLeftovers(ctx, h, {
          lease: state,
          guestFolder: guestFolderOf(h.dom.name),
          ...(sink ? { sink } : {}),
          rpc,
          onError,
        });
        let runs: RestoreRun[] = [];
        try {
          runs = await restoreRuns({ name: h.dom.name, uuid: h.uuid });
        } catch (error) {
          if (call.signal.aborted) throw error;
          onError({ kind: 'volume', name: 'restore lease volumes' }, error);
        }
        const restored = await removeRestoreRuns(ctx, runs, { rpc, onError });
        result.removed.push(...restored.removed);
        result.kept.push(...restored.kept);
        if (call.signal.aborted) throw abortedError(call.signal, operation);
        throwCleanupFailures(failures, result, operation);
        return result;
      });
    },
  };
  // Optional methods exist only where the driver's manifest has them (the test driver has no checkpoints).
  if (manifest === false || !manifest.checkpoints) delete capability.listCheckpoints;
  if (manifest === false || !manifest.cleanup) delete capability.cleanup;
  return capability;
}

/** cleanup(): rejects naming every leftover that could not be removed (and what was), if any. */
function throwCleanupFailures(
  failures: readonly { item: BackupLeftover; error: unknown }[],
  result: BackupCleanupResult,
  operation: string,
): void {
  const first = failures[0];
  if (!first) return;
  throw hvkitError(
    HvkitError.isInstance(first.error) ? first.error.code : 'REMOTE',
    `backups.cleanup could not remove ${failures.map((f) => `the ${f.item.kind} ${JSON.stringify(f.item.name)}`).join(', ')} (${errorText(first.error)}); removed: ${result.removed.map((r) => `${r.kind} ${r.name}`).join(', ') || 'nothing'}.`,
    {
      adapter: ADAPTER_ID,
      operation,
      cause: first.error,
      details: { removed: result.removed, kept: result.kept, failed: failures.map((f) => f.item) },
    },
  );
}

/** What a guest reference names, to match restore leases of a guest that does not exist (yet). */
function refKeys(ref: GuestRef): { name?: string; uuid?: string } {
  if (typeof ref === 'string') return { name: ref, uuid: ref };
  if ('name' in ref) return { name: ref.name };
  if ('uuid' in ref) return { uuid: ref.uuid };
  return { uuid: ref.id };
}

/** The folder of a guest's artifacts in a sink: the first segment of `artifactPath`. */
function guestFolderOf(name: string): string {
  return artifactPath(name, 'x').split('/')[0] as string;
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** CONFLICT: another run's live lease holds the guest. */
export function leaseConflict(guest: string, lease: StoredLease, operation: string): HvkitError {
  return hvkitError(
    'CONFLICT',
    `Guest ${JSON.stringify(guest)} is held by another ${lease.operation} (run ${lease.run}, owner ${lease.owner}, since ${lease.startedAt}); its lease expires at ${lease.expiresAt} unless renewed.`,
    {
      adapter: ADAPTER_ID,
      operation,
      retryable: true,
      details: { reason: 'lease', run: lease.run, owner: lease.owner, expiresAt: lease.expiresAt },
    },
  );
}
