/**
 * Snapshots and backups.
 *
 * - Snapshots: disk-only (external overlay for a running guest, internal for a stopped one) or with memory
 *   (internal); list; delete; revert.
 * - `libvirt-push` (running guests): DOMAIN_BACKUP_BEGIN in push mode writes each disk as qcow2 into the
 *   backup storage pool on the daemon host, together with a checkpoint named after the backup (for the
 *   next incremental); the job is polled to completion (DOMAIN_GET_JOB_INFO), then each file is streamed
 *   into the sink with STORAGE_VOL_DOWNLOAD over a sibling connection (so it works for remote daemons
 *   too), and the temporary volumes are deleted.
 * - `volume-download` (stopped guests): the disk volumes themselves are streamed.
 * - Bounds: each download is bounded by the volume's size (its `<physical>` size, exactly, when the daemon
 *   reports it; the sink checks it too): data or holes beyond it fail the backup with `PROTOCOL`. A
 *   download without data, or a job without progress, for `backupIdleTimeoutMs` fails with `TIMEOUT`.
 * - An abort or failure cancels the libvirt job (DOMAIN_ABORT_JOB), deletes the checkpoint and the
 *   temporary files this call created, and removes the files it wrote to the sink. Everything created is
 *   recorded in `ctx.leftovers` until removed or handed over; what cannot be removed is reported through
 *   the logger, naming it.
 * - `close()` aborts running backups through `ctx.closeSignal` and waits (bounded) for that cleanup.
 */

import {
  type BackupArtifact,
  type BackupFile,
  type BackupOptions,
  type BackupSink,
  type BackupsCapability,
  type CallOptions,
  type CreateSnapshotOptions,
  HvkitError,
  hvkitError,
  type Progress,
  type Snapshot,
  sleep,
} from '@hvkit/core';
import {
  type AdapterContext,
  closedError,
  domainHandle,
  domainXml,
  type Leftover,
  type PendingOperation,
  reportLeftover,
  rpcOptions,
} from '../context';
import { ADAPTER_ID } from '../errors';
import { parseDomainXmlDetails } from '../mapping/domain';
import {
  buildBackupXml,
  buildCheckpointXml,
  buildSnapshotXml,
  parseSnapshotXml,
  SNAPSHOT_CREATE_FLAGS,
} from '../mapping/snapshot';
import { parsePoolXml, parseVolumeSizes } from '../mapping/storage';
import type { LibvirtRpcClient } from '../protocol/client';
import { DOMAIN_XML, PROGRAM } from '../protocol/constants';
import { remoteProcedures } from '../protocol/remote-protocol';
import { isStreamHole } from '../protocol/stream';
import { type RemoteDomain, type RemoteStorageVol, writeStorageVol } from '../protocol/types';
import { XdrWriter } from '../protocol/xdr';
import { supportsForDriver } from '../supports';
import { hostId } from './inventory';

/** `REMOTE_PROC_STORAGE_VOL_DELETE` (no descriptor in the client yet; sent with callRaw). */
const STORAGE_VOL_DELETE = 94;
/** `VIR_DOMAIN_JOB_STATS_COMPLETED`. */
const JOB_STATS_COMPLETED = 1;
/** `virDomainJobType` values. */
const JOB = { NONE: 0, COMPLETED: 3, FAILED: 4, CANCELLED: 5 } as const;
/** Cleanup calls run after an abort, without the caller's signal. */
const CLEANUP = { timeoutMs: 30_000 };
const POLL_MS = 100;

/** Internal options for tests and recordings: deterministic names. */
export interface BackupNaming {
  /** Returns a unique suffix for checkpoint, snapshot and temporary file names. Default: time-based. */
  uniqueId?: () => string;
  /** Clock for `createdAt`. */
  now?: () => Date;
}

function defaultId(): string {
  return `${Date.now().toString(36)}${Math.floor(Math.random() * 36 ** 4)
    .toString(36)
    .padStart(4, '0')}`;
}

/** Keeps `processedBytes` monotone across phases. */
class ProgressReporter {
  private last = 0;
  constructor(private readonly onProgress: ((p: Progress) => void) | undefined) {}
  report(p: Progress): void {
    if (!this.onProgress) return;
    this.last = Math.max(this.last, p.processedBytes);
    try {
      this.onProgress({ ...p, processedBytes: this.last });
    } catch {
      // A throwing callback must not break the backup.
    }
  }
}

function safeName(name: string): string {
  return name.replace(/[^A-Za-z0-9._-]/g, '_');
}

async function deleteVolume(client: LibvirtRpcClient, vol: RemoteStorageVol): Promise<void> {
  const w = new XdrWriter();
  writeStorageVol(w, vol);
  w.uint(0, 'flags');
  await client.callRaw(PROGRAM.REMOTE, STORAGE_VOL_DELETE, w.bytes(), CLEANUP);
}

function deleteCheckpoint(client: LibvirtRpcClient, dom: RemoteDomain, name: string): Promise<void> {
  return client.call(
    remoteProcedures.DOMAIN_CHECKPOINT_DELETE,
    { checkpoint: { name, dom }, flags: 0 },
    CLEANUP,
  );
}

/**
 * How many bytes a download of `vol` can carry: exactly its `<physical>` size (the file or device, which is
 * what STORAGE_VOL_DOWNLOAD sends) when the daemon reports one; else (libvirt < 3.0) at most capacity plus
 * allocation plus 1 % (at least 1 MiB) for image metadata, without an exact size.
 *
 * @throws HvkitError `PROTOCOL` when the daemon reports no size at all.
 */
async function downloadSize(
  client: LibvirtRpcClient,
  vol: RemoteStorageVol,
  signal: AbortSignal | undefined,
): Promise<{ exact?: number; maxBytes: number }> {
  const sizes = parseVolumeSizes(
    await client.call(remoteProcedures.STORAGE_VOL_GET_XML_DESC, { vol, flags: 0 }, signal ? { signal } : {}),
  );
  if (sizes.physicalBytes !== undefined) return { exact: sizes.physicalBytes, maxBytes: sizes.physicalBytes };
  if (sizes.capacityBytes === undefined) {
    throw hvkitError(
      'PROTOCOL',
      `The daemon reports no size for volume ${JSON.stringify(vol.key)}, so its download cannot be bounded.`,
      { adapter: ADAPTER_ID, operation: 'backups.backup', retryable: false },
    );
  }
  const margin = Math.max(2 ** 20, Math.ceil(sizes.capacityBytes / 100));
  const maxBytes = sizes.capacityBytes + (sizes.allocationBytes ?? 0) + margin;
  return { maxBytes: Math.min(maxBytes, Number.MAX_SAFE_INTEGER) };
}

/**
 * Streams one volume into the sink over `client`, bounded by its size ({@link downloadSize}); returns the
 * file the sink wrote.
 */
async function downloadInto(
  client: LibvirtRpcClient,
  vol: RemoteStorageVol,
  sink: BackupSink,
  fileName: string,
  options: { signal?: AbortSignal; onBytes: (n: number) => void; idleTimeoutMs: number },
): Promise<BackupFile> {
  const size = await downloadSize(client, vol, options.signal);
  // Sparse: holes travel as hole packets (not zeros) and are expanded here, so the sink still receives
  // every byte of the file. Data and holes past the size fail the stream before they reach the sink.
  const stream = await client.downloadVolume(vol, {
    sparse: true,
    holes: 'zeros',
    maxBytes: size.maxBytes,
    idleTimeoutMs: options.idleTimeoutMs,
    ...(options.signal ? { signal: options.signal } : {}),
  });
  async function* bytes(): AsyncGenerator<Uint8Array> {
    for await (const chunk of stream) {
      if (isStreamHole(chunk)) continue;
      options.onBytes(chunk.byteLength);
      yield chunk;
    }
  }
  return sink.writeFile(fileName, bytes(), {
    ...(options.signal ? { signal: options.signal } : {}),
    ...(size.exact !== undefined ? { expectedBytes: size.exact } : {}),
  });
}

/** The backups capability. */
export function createBackups(ctx: AdapterContext, naming: BackupNaming = {}): BackupsCapability {
  const uniqueId = naming.uniqueId ?? defaultId;
  const now = naming.now ?? (() => new Date());
  const manifest = supportsForDriver(ctx.driver).backups;

  /** UNSUPPORTED when the driver's manifest leaves `what` out (drivers other than QEMU and test). */
  function requireSupported(what: 'snapshots' | 'full', operation: string): void {
    if (manifest !== false && manifest[what]) return;
    throw hvkitError(
      'UNSUPPORTED',
      `hvkit supports ${what === 'snapshots' ? 'snapshots' : 'disk backups'} on libvirt's QEMU driver, not on ${ctx.driver}.`,
      { adapter: ADAPTER_ID, operation },
    );
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
    const reason = signal?.reason as { code?: string } | undefined;
    if (ctx.closeSignal.aborted && reason === ctx.closeSignal.reason) {
      return hvkitError('ABORTED', `${operation} was aborted: the adapter was closed.`, {
        adapter: ADAPTER_ID,
        operation,
        retryable: false,
      });
    }
    if (reason && typeof reason === 'object' && typeof reason.code === 'string') return reason;
    return hvkitError('ABORTED', 'The backup was aborted.', { adapter: ADAPTER_ID, operation });
  }

  /** The call's options with a signal that also aborts when the adapter closes. */
  function withClose<O extends { signal?: AbortSignal }>(options: O): O & { signal: AbortSignal } {
    const signal = options.signal ? AbortSignal.any([options.signal, ctx.closeSignal]) : ctx.closeSignal;
    return { ...options, signal };
  }

  /** Records something this call created; it stays recorded until removed or handed to the caller. */
  function hold(leftover: Leftover): Leftover {
    ctx.leftovers.add(leftover);
    return leftover;
  }

  /**
   * Removes a leftover with `remove`; NOT_FOUND counts as removed. When that fails it is reported through
   * the logger, naming it, unless `close()` has reported it already.
   */
  async function removeLeftover(leftover: Leftover, remove: () => Promise<unknown>): Promise<void> {
    try {
      await remove();
      ctx.leftovers.delete(leftover);
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) ctx.leftovers.delete(leftover);
      else if (ctx.leftovers.delete(leftover)) {
        reportLeftover(ctx, leftover, error instanceof Error ? error.message : String(error));
      }
    }
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

  async function volumeDownload(
    dom: RemoteDomain,
    uuid: string,
    sink: BackupSink,
    options: BackupOptions & { signal: AbortSignal },
  ): Promise<BackupArtifact> {
    const rpc = rpcOptions(options);
    const details = parseDomainXmlDetails(await domainXml(ctx, dom, true, options));
    const disks = details.disks.filter((d) => d.deviceType === 'disk' && d.source !== undefined);
    const id = `hvkit-${uniqueId()}`;
    const progress = new ProgressReporter(options.onProgress);
    const written: Leftover[] = [];
    const files: BackupFile[] = [];
    const sibling = await openSibling(rpc);
    let done = 0;
    try {
      progress.report({ phase: 'volume-download', processedBytes: 0 });
      for (const disk of disks) {
        const vol = await ctx.client.call(
          remoteProcedures.STORAGE_VOL_LOOKUP_BY_PATH,
          { path: disk.source as string },
          rpc,
        );
        const name = `${safeName(details.name)}-${safeName(disk.device)}.${disk.format ?? 'img'}`;
        written.push(hold({ kind: 'sink file', name, guest: details.name, where: sink.location }));
        const file = await downloadInto(sibling, vol, sink, name, {
          signal: options.signal,
          idleTimeoutMs: ctx.backupIdleTimeoutMs,
          onBytes: (n) => {
            done += n;
            progress.report({ phase: 'volume-download', processedBytes: done, file: name });
          },
        });
        files.push(file);
      }
      await closeSibling(sibling);
      // Stopped in the last step (an abort, or close()): nothing is handed over.
      if (options.signal.aborted) throw abortedError(options.signal, 'backups.backup');
    } catch (error) {
      await closeSibling(sibling);
      await removeSinkFiles(sink, written);
      throw options.signal.aborted ? abortedError(options.signal, 'backups.backup') : error;
    }
    for (const file of written) ctx.leftovers.delete(file);
    return {
      id,
      guest: uuid,
      kind: 'full',
      method: 'volume-download',
      createdAt: now(),
      files,
      consistency: 'crash',
    };
  }

  /**
   * Registers a running operation: `close()` aborts it (through the signal from {@link withClose}) and
   * waits, bounded, for its cleanup. When `close()` stops waiting, the caller gets ABORTED at once instead
   * of waiting for a cleanup that hangs (a sink that never answers).
   */
  function track<T>(operation: string, run: () => Promise<T>): Promise<T> {
    if (ctx.closeSignal.aborted) return Promise.reject(closedError(operation));
    const work = run();
    return new Promise<T>((resolve, reject) => {
      const pending: PendingOperation = {
        settled: work.then(
          () => {},
          () => {},
        ),
        abandon: () =>
          reject(
            hvkitError(
              'ABORTED',
              `${operation} was aborted: the adapter was closed, and close() stopped waiting for its cleanup.`,
              { adapter: ADAPTER_ID, operation, retryable: false },
            ),
          ),
      };
      ctx.pending.add(pending);
      work.then(resolve, reject).finally(() => ctx.pending.delete(pending));
    });
  }

  /** Waits (bounded) until the domain has no job; false when it still has one or cannot be asked. */
  async function waitJobGone(dom: RemoteDomain): Promise<boolean> {
    for (let i = 0; i < 100; i++) {
      const info = await ctx.client
        .call(remoteProcedures.DOMAIN_GET_JOB_INFO, { dom }, CLEANUP)
        .catch(() => undefined);
      if (!info) return false;
      if (info.type === JOB.NONE || info.type >= JOB.COMPLETED) return true;
      await sleep(POLL_MS);
    }
    return false;
  }

  async function pushBackup(
    dom: RemoteDomain,
    uuid: string,
    sink: BackupSink,
    options: BackupOptions & { signal: AbortSignal },
  ): Promise<BackupArtifact> {
    const rpc = rpcOptions(options);
    const signal = options.signal;
    const incremental = options.mode === 'incremental';
    const details = parseDomainXmlDetails(await domainXml(ctx, dom, false, options));
    const disks = details.disks.filter(
      (d) =>
        d.deviceType === 'disk' && (d.backing === 'file' || d.backing === 'block' || d.backing === 'volume'),
    );
    if (disks.length === 0) {
      throw hvkitError('UNSUPPORTED', 'The guest has no file, block or volume disk to back up.', {
        adapter: ADAPTER_ID,
        operation: 'backups.backup',
      });
    }
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
    const checkpoint = `hvkit-${uniqueId()}`;
    const targets = disks.map((d) => ({
      device: d.device,
      path: `${pool.path}/${checkpoint}-${safeName(d.device)}.qcow2`,
      file: `${safeName(details.name)}-${safeName(d.device)}${incremental ? '.incremental' : ''}.qcow2`,
    }));
    const backupXml = buildBackupXml({
      mode: 'push',
      ...(incremental ? { incremental: options.sinceCheckpoint as string } : {}),
      disks: targets.map((t) => ({ name: t.device, target: t.path, format: 'qcow2' })),
    });
    const checkpointXml = buildCheckpointXml({
      name: checkpoint,
      description: 'created by hvkit backups.backup',
      disks: disks.map((d) => ({ name: d.device })),
    });
    const progress = new ProgressReporter(options.onProgress);
    progress.report({ phase: 'libvirt-push', processedBytes: 0 });

    // What the job creates on the daemon host, recorded before it starts (a lost reply leaves it unknown).
    const guest = details.name;
    const job = hold({ kind: 'backup job', name: checkpoint, guest });
    const checkpointLeft = hold({ kind: 'checkpoint', name: checkpoint, guest });
    const volumes = targets.map((t) =>
      hold({ kind: 'temporary volume', name: t.path, where: ctx.backupPool }),
    );
    const tempVols = new Map<Leftover, RemoteStorageVol>();
    const written: Leftover[] = [];
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
          await deleteVolume(ctx.client, vol);
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
            if (!(await waitJobGone(dom))) throw new Error('the job did not end after DOMAIN_ABORT_JOB');
          });
        }
        await removeLeftover(checkpointLeft, () => deleteCheckpoint(ctx.client, dom, checkpoint));
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
      // total) for backupIdleTimeoutMs is given up (the catch below aborts it).
      let jobTotal = 0;
      let furthest = -1;
      let progressAt = Date.now();
      for (;;) {
        const info = await ctx.client.call(remoteProcedures.DOMAIN_GET_JOB_INFO, { dom }, rpc);
        if (info.type === JOB.NONE || info.type >= JOB.COMPLETED) break;
        jobTotal = Number(info.dataTotal);
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
        progress.report({
          phase: 'libvirt-push',
          processedBytes: Number(info.dataProcessed),
          totalBytes: jobTotal,
        });
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
      const processed = completed?.params.find((p) => p.field === 'disk_processed')?.value;
      if (typeof processed === 'bigint' || typeof processed === 'number') jobTotal = Number(processed);
      progress.report({ phase: 'libvirt-push', processedBytes: jobTotal, totalBytes: jobTotal });

      await ctx.client.call(remoteProcedures.STORAGE_POOL_REFRESH, { pool: poolRef, flags: 0 }, rpc);
      for (const [i, t] of targets.entries()) {
        tempVols.set(
          volumes[i] as Leftover,
          await ctx.client.call(remoteProcedures.STORAGE_VOL_LOOKUP_BY_PATH, { path: t.path }, rpc),
        );
      }
      const stream = await openSibling(rpc);
      sibling = stream;
      const files: BackupFile[] = [];
      let downloaded = 0;
      for (const [i, t] of targets.entries()) {
        written.push(hold({ kind: 'sink file', name: t.file, guest, where: sink.location }));
        files.push(
          await downloadInto(stream, tempVols.get(volumes[i] as Leftover) as RemoteStorageVol, sink, t.file, {
            signal,
            idleTimeoutMs: ctx.backupIdleTimeoutMs,
            onBytes: (n) => {
              downloaded += n;
              progress.report({ phase: 'download', processedBytes: jobTotal + downloaded, file: t.file });
            },
          }),
        );
      }
      // The temporary volumes go now; failing to delete them is reported, not a failed backup.
      const s = sibling;
      sibling = undefined;
      await closeSibling(s);
      await removeVolumes();
      // Stopped in the last step (an abort, or close()): nothing is handed over.
      if (signal.aborted) throw abortedError(signal, 'backups.backup');
      ctx.leftovers.delete(checkpointLeft);
      for (const file of written) ctx.leftovers.delete(file);
      return {
        id: checkpoint,
        guest: uuid,
        kind: incremental ? 'incremental' : 'full',
        method: 'libvirt-push',
        createdAt: now(),
        files,
        checkpoint,
        ...(incremental ? { parentCheckpoint: options.sinceCheckpoint as string } : {}),
        consistency: 'crash',
      };
    } catch (error) {
      if (begun) await cleanServer();
      await removeSinkFiles(sink, written);
      throw signal.aborted ? abortedError(signal, 'backups.backup') : error;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  return {
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
        if (!h.active) {
          if (mode === 'incremental') {
            throw hvkitError('UNSUPPORTED', 'Incremental backups need a running guest (checkpoints).', {
              adapter: ADAPTER_ID,
              operation: 'backups.backup',
            });
          }
          return volumeDownload(h.dom, h.uuid, sink, call);
        }
        return pushBackup(h.dom, h.uuid, sink, { ...call, mode });
      });
    },

    async backupHostConfig(sink: BackupSink, given: BackupOptions = {}): Promise<BackupArtifact> {
      if (typeof sink !== 'object' || sink === null || typeof sink.writeFile !== 'function') {
        throw new TypeError('sink must be a BackupSink.');
      }
      return track('backups.backupHostConfig', async () => {
        const options = withClose(given);
        const rpc = rpcOptions(options);
        const c = ctx.client;
        const [caps, host, doms, nets, pools] = await Promise.all([
          ctx.capabilities(options),
          hostId(ctx, options),
          c.call(remoteProcedures.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 }, rpc),
          c.call(remoteProcedures.CONNECT_LIST_ALL_NETWORKS, { needResults: 1, flags: 0 }, rpc),
          c.call(remoteProcedures.CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 0 }, rpc),
        ]);
        const entries: [string, Promise<string>][] = [['capabilities.xml', Promise.resolve(caps.xml)]];
        for (const dom of doms.domains)
          entries.push([
            `domains/${safeName(dom.name)}.xml`,
            c.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: DOMAIN_XML.INACTIVE }, rpc),
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
        const progress = new ProgressReporter(options.onProgress);
        const files: BackupFile[] = [];
        const written: Leftover[] = [];
        let done = 0;
        try {
          for (const [i, [name]] of entries.entries()) {
            const bytes = new TextEncoder().encode(texts[i]);
            written.push(hold({ kind: 'sink file', name, where: sink.location }));
            async function* one(): AsyncGenerator<Uint8Array> {
              yield bytes;
            }
            files.push(
              await sink.writeFile(name, one(), {
                expectedBytes: bytes.byteLength,
                signal: options.signal,
              }),
            );
            done += bytes.byteLength;
            progress.report({ phase: 'host-config', processedBytes: done, file: name });
          }
          if (options.signal.aborted) throw abortedError(options.signal, 'backups.backupHostConfig');
        } catch (error) {
          await removeSinkFiles(sink, written);
          throw options.signal.aborted ? abortedError(options.signal, 'backups.backupHostConfig') : error;
        }
        for (const file of written) ctx.leftovers.delete(file);
        return {
          id: `host-config-${uniqueId()}`,
          guest: host ?? 'host',
          kind: 'host-config',
          method: 'libvirt-xml',
          createdAt: now(),
          files,
          consistency: 'crash',
        };
      });
    },
  };
}
