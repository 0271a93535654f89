/**
 * Checkpoint chains and leftovers of push backups: listing hvkit's checkpoints (recognised by the tag in
 * their description, never by name), pruning the checkpoints of older chains after a full backup, and
 * finding and removing what a crashed or killed run left (its checkpoint, its temporary volumes, its
 * libvirt backup job, its expired lease, its incomplete artifact folder in a sink), never what a live
 * lease holds; and the same for restores (their lease volumes and uploaded volumes in the storage pools).
 */

import type { BackupCheckpoint, BackupCleanupResult, BackupLeftover, BackupSink } from '@hvkit/core';
import { HvkitError, sleep } from '@hvkit/core';
import type { AdapterContext, DomainHandle } from '../context';
import {
  type CheckpointTag,
  parseCheckpointTag,
  type StoredLease,
  tempVolumeRun,
} from '../mapping/backup-state';
import { parseBackupXml, parseCheckpointXml } from '../mapping/snapshot';
import { DOMAIN_XML, PROGRAM } from '../protocol/constants';
import { remoteProcedures } from '../protocol/remote-protocol';
import { isStreamHole } from '../protocol/stream';
import {
  type RemoteDomain,
  type RemoteStoragePool,
  type RemoteStorageVol,
  writeStorageVol,
} from '../protocol/types';
import { XdrWriter } from '../protocol/xdr';
import {
  isPersistent,
  leaseFlags,
  parseRestoreLease,
  RESTORE_LEASE_BYTES,
  type RestoreLeaseRecord,
  readLease,
  writeLease,
} from './backup-lease';

type Rpc = { signal?: AbortSignal; timeoutMs?: number };

/** `REMOTE_PROC_STORAGE_VOL_DELETE` (no descriptor in the client yet; sent with callRaw). */
const STORAGE_VOL_DELETE = 94;
/** `VIR_DOMAIN_CHECKPOINT_XML_NO_DOMAIN`. */
const CHECKPOINT_XML_NO_DOMAIN = 2;
/** `virDomainJobType` values. */
export const JOB = { NONE: 0, COMPLETED: 3, FAILED: 4, CANCELLED: 5 } as const;
const POLL_MS = 100;

/** Deletes a storage volume. */
export async function deleteVolume(ctx: AdapterContext, vol: RemoteStorageVol, rpc: Rpc): Promise<void> {
  const w = new XdrWriter();
  writeStorageVol(w, vol);
  w.uint(0, 'flags');
  await ctx.client.callRaw(PROGRAM.REMOTE, STORAGE_VOL_DELETE, w.bytes(), rpc);
}

/** Deletes a checkpoint (only it: its bitmap merges into its parent, its children stay). */
export function deleteCheckpoint(
  ctx: AdapterContext,
  dom: RemoteDomain,
  name: string,
  rpc: Rpc,
): Promise<void> {
  return ctx.client.call(
    remoteProcedures.DOMAIN_CHECKPOINT_DELETE,
    { checkpoint: { name, dom }, flags: 0 },
    rpc,
  );
}

/** Waits (bounded, ~10 s) until the domain has no job; false when it still has one or cannot be asked. */
export async function waitJobGone(ctx: AdapterContext, dom: RemoteDomain, rpc: Rpc): Promise<boolean> {
  for (let i = 0; i < 100; i++) {
    const info = await ctx.client
      .call(remoteProcedures.DOMAIN_GET_JOB_INFO, { dom }, rpc)
      .catch(() => undefined);
    if (!info) return false;
    if (info.type === JOB.NONE || info.type >= JOB.COMPLETED) return true;
    await sleep(POLL_MS);
  }
  return false;
}

/** One checkpoint of a domain with hvkit's tag read from its description. */
export interface TaggedCheckpoint {
  name: string;
  createdAt: Date;
  parentName?: string;
  /** hvkit's tag, `'legacy'` for hvkit's pre-chain checkpoints, undefined for anyone else's. */
  tag: CheckpointTag | 'legacy' | undefined;
}

/** Every checkpoint of the domain, oldest first (creation time, then name). */
export async function listTaggedCheckpoints(
  ctx: AdapterContext,
  dom: RemoteDomain,
  rpc: Rpc,
): Promise<TaggedCheckpoint[]> {
  const { checkpoints } = await ctx.client.call(
    remoteProcedures.DOMAIN_LIST_ALL_CHECKPOINTS,
    { dom, needResults: 1, flags: 0 },
    rpc,
  );
  const out = await Promise.all(
    checkpoints.map(async (checkpoint) => {
      const cp = parseCheckpointXml(
        await ctx.client.call(
          remoteProcedures.DOMAIN_CHECKPOINT_GET_XML_DESC,
          { checkpoint, flags: CHECKPOINT_XML_NO_DOMAIN },
          rpc,
        ),
      );
      const item: TaggedCheckpoint = {
        name: cp.name,
        createdAt: cp.createdAt,
        tag: parseCheckpointTag(cp.description),
      };
      if (cp.parentName !== undefined) item.parentName = cp.parentName;
      return item;
    }),
  );
  return out.sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || (a.name < b.name ? -1 : 1));
}

/** {@link TaggedCheckpoint} → the spec's {@link BackupCheckpoint}. */
export function toBackupCheckpoint(cp: TaggedCheckpoint): BackupCheckpoint {
  const out: BackupCheckpoint = { id: cp.name, createdAt: cp.createdAt, managed: cp.tag !== undefined };
  if (cp.parentName !== undefined) out.parentId = cp.parentName;
  if (cp.tag !== undefined && cp.tag !== 'legacy') out.chain = cp.tag.chain;
  return out;
}

/** What the cleanup knows of the domain's lease, read once at its start. */
export interface LeaseState {
  /** The run of a live lease (another process's backup or restore), which nothing here may touch. */
  liveRun?: string;
  /** The stored lease when it is live. */
  live?: StoredLease;
  /** A lease that expired or whose owner is gone (or metadata that is no lease): a leftover. */
  dead?: { lease?: StoredLease; text?: string };
}

/** Reads the lease and sorts it into live or dead. */
export async function leaseState(
  ctx: AdapterContext,
  dom: RemoteDomain,
  isLive: (lease: StoredLease) => boolean,
  rpc: Rpc,
): Promise<LeaseState> {
  const reading = await readLease(ctx, dom, rpc);
  if (reading.state === 'none') return {};
  if (reading.state === 'invalid') return { dead: { text: reading.text } };
  if (isLive(reading.lease)) return { liveRun: reading.lease.run, live: reading.lease };
  return { dead: { lease: reading.lease } };
}

/** Options of {@link removeLeftovers}. */
export interface RemoveLeftoversOptions {
  /** The domain's lease, as {@link leaseState} read it. */
  lease: LeaseState;
  /** The guest's folder in sinks (the first segment of `artifactPath`). */
  guestFolder: string;
  /** Also remove incomplete artifact folders of the guest from this sink. */
  sink?: BackupSink;
  /** Whether the domain is persistent (for the lease's removal flags). */
  persistent?: boolean;
  rpc: Rpc;
  /**
   * Told about each leftover that could not be removed (the others still go). An abort of `rpc.signal`
   * is thrown instead.
   */
  onError: (item: BackupLeftover, error: unknown) => void;
}

/**
 * The run of the domain's running backup job when it writes into hvkit's temporary volumes of this guest;
 * undefined when there is no job, or it is another tool's (a pull backup, a migration, ...).
 */
async function hvkitJobRun(ctx: AdapterContext, h: DomainHandle, rpc: Rpc): Promise<string | undefined> {
  const info = await ctx.client.call(remoteProcedures.DOMAIN_GET_JOB_INFO, { dom: h.dom }, rpc);
  if (info.type === JOB.NONE || info.type >= JOB.COMPLETED) return undefined;
  let xml: string;
  try {
    xml = await ctx.client.call(remoteProcedures.DOMAIN_BACKUP_GET_XML_DESC, { dom: h.dom, flags: 0 }, rpc);
  } catch (error) {
    // Not a backup job (or it ended meanwhile).
    if (HvkitError.isInstance(error) && error.code !== 'CONNECTION_LOST' && error.code !== 'TIMEOUT')
      return undefined;
    throw error;
  }
  for (const disk of parseBackupXml(xml).disks) {
    const run = disk.target
      ? tempVolumeRun(h.uuid, disk.target.slice(disk.target.lastIndexOf('/') + 1))
      : undefined;
    if (run !== undefined) return run;
  }
  return undefined;
}

/** The volumes of the backup pool after a refresh (none when there is no such pool). */
async function poolVolumes(ctx: AdapterContext, rpc: Rpc): Promise<RemoteStorageVol[]> {
  let pool: RemoteStoragePool;
  try {
    pool = await ctx.client.call(remoteProcedures.STORAGE_POOL_LOOKUP_BY_NAME, { name: ctx.backupPool }, rpc);
  } catch (error) {
    if (HvkitError.isInstance(error, 'NOT_FOUND')) return [];
    throw error;
  }
  await ctx.client.call(remoteProcedures.STORAGE_POOL_REFRESH, { pool, flags: 0 }, rpc);
  const { vols } = await ctx.client.call(
    remoteProcedures.STORAGE_POOL_LIST_ALL_VOLUMES,
    { pool, needResults: 1, flags: 0 },
    rpc,
  );
  return [...vols].sort((a, b) => (a.name < b.name ? -1 : 1));
}

/**
 * Finds and removes what crashed runs of the guest left, in an order that never pulls something from under
 * a job: the stale hvkit backup job (aborted only when no live lease holds its run), the temporary volumes
 * of runs without a live lease, with `sink` the incomplete artifact folders (keeping the live run's), the
 * checkpoints of the dead lease's run and of the runs whose folders were incomplete, and last the dead lease.
 * What a live lease holds is reported in `kept`.
 */
export async function removeLeftovers(
  ctx: AdapterContext,
  h: DomainHandle,
  options: RemoveLeftoversOptions,
): Promise<BackupCleanupResult> {
  const { rpc, lease } = options;
  const removed: BackupLeftover[] = [];
  const kept: BackupLeftover[] = [];
  const dom = h.dom;
  const live = lease.liveRun;
  /** Removes one leftover; NOT_FOUND counts as removed, other failures go to onError (an abort is thrown). */
  const attempt = async (item: BackupLeftover, remove: () => Promise<unknown>) => {
    try {
      await remove();
      removed.push(item);
    } catch (error) {
      if (rpc.signal?.aborted) throw error;
      if (HvkitError.isInstance(error, 'NOT_FOUND')) removed.push(item);
      else options.onError(item, error);
    }
  };
  /** Runs a scan step; a failure goes to onError naming `what` (an abort is thrown). */
  const scan = async <T>(what: BackupLeftover, step: () => Promise<T>): Promise<T | undefined> => {
    try {
      return await step();
    } catch (error) {
      if (rpc.signal?.aborted) throw error;
      options.onError(what, error);
      return undefined;
    }
  };
  if (lease.live) kept.push({ kind: 'lease', name: lease.live.owner, run: lease.live.run });

  // 1. A stale libvirt backup job writing into hvkit's temporary volumes of this guest.
  const jobRun = h.active
    ? await scan({ kind: 'job', name: 'backup job' }, () => hvkitJobRun(ctx, h, rpc))
    : undefined;
  if (jobRun !== undefined) {
    const job: BackupLeftover = { kind: 'job', name: 'backup job', run: jobRun };
    if (jobRun === live) kept.push(job);
    else
      await attempt(job, async () => {
        await ctx.client.call(remoteProcedures.DOMAIN_ABORT_JOB, { dom }, rpc).catch((error: unknown) => {
          // The job ended meanwhile: nothing to abort.
          if (!HvkitError.isInstance(error)) throw error;
        });
        if (!(await waitJobGone(ctx, dom, rpc))) {
          throw new Error('the backup job did not end after DOMAIN_ABORT_JOB');
        }
      });
  }

  // 2. Temporary volumes of this guest's push backups in the backup pool.
  const vols = await scan({ kind: 'volume', name: `pool ${ctx.backupPool}` }, () => poolVolumes(ctx, rpc));
  for (const vol of vols ?? []) {
    const run = tempVolumeRun(h.uuid, vol.name);
    if (run === undefined) continue;
    const item: BackupLeftover = { kind: 'volume', name: vol.key, run };
    if (run === live) kept.push(item);
    else await attempt(item, () => deleteVolume(ctx, vol, rpc));
  }

  // 3. Incomplete artifact folders in the sink.
  const crashedRuns = new Set<string>();
  if (lease.dead?.lease) crashedRuns.add(lease.dead.lease.run);
  const sink = options.sink;
  if (sink && typeof sink.removeIncomplete === 'function') {
    const remove = sink.removeIncomplete.bind(sink);
    const folders = await scan({ kind: 'file', name: `${options.guestFolder}/` }, () =>
      remove(options.guestFolder, live !== undefined ? [live] : [], rpc.signal ? { signal: rpc.signal } : {}),
    );
    for (const folder of folders ?? []) {
      const run = folder.slice(folder.lastIndexOf('/') + 1);
      crashedRuns.add(run);
      removed.push({ kind: 'file', name: `${folder}/`, run });
    }
  }
  if (live !== undefined) {
    if (lease.live?.artifact) kept.push({ kind: 'file', name: `${lease.live.artifact}/`, run: live });
    crashedRuns.delete(live);
  }

  // 4. Checkpoints of crashed runs (their artifact never got its manifest).
  if (crashedRuns.size > 0 || live !== undefined) {
    const checkpoints = await scan({ kind: 'checkpoint', name: 'checkpoint list' }, () =>
      listTaggedCheckpoints(ctx, dom, rpc),
    );
    for (const cp of checkpoints ?? []) {
      if (cp.tag === undefined || cp.tag === 'legacy') continue;
      const item: BackupLeftover = { kind: 'checkpoint', name: cp.name, run: cp.tag.run };
      if (cp.tag.run === live) kept.push(item);
      else if (crashedRuns.has(cp.tag.run))
        await attempt(item, () => deleteCheckpoint(ctx, dom, cp.name, rpc));
    }
  }

  // 5. The dead lease itself, last: until here it still records the crashed run.
  if (lease.dead) {
    const item: BackupLeftover = {
      kind: 'lease',
      name: lease.dead.lease?.owner ?? 'unreadable lease',
      ...(lease.dead.lease ? { run: lease.dead.lease.run } : {}),
    };
    await attempt(item, async () => {
      const persistent = options.persistent ?? (await isPersistent(ctx, dom, rpc));
      await writeLease(ctx, dom, null, leaseFlags(h, persistent), rpc);
    });
  }
  return { removed, kept };
}

/**
 * After a full backup that started chain `chain`: deletes the checkpoints hvkit made for older chains of
 * the guest (and its pre-chain ones), oldest first, never another tool's. The caller holds the guest's lease,
 * so no other run of hvkit is using them.
 * Returns the names deleted; a failure is reported through `onError` and the rest still go.
 */
export async function pruneOlderChains(
  ctx: AdapterContext,
  dom: RemoteDomain,
  chain: string,
  rpc: Rpc,
  onError: (name: string, error: unknown) => void,
): Promise<string[]> {
  const deleted: string[] = [];
  for (const cp of await listTaggedCheckpoints(ctx, dom, rpc)) {
    if (cp.tag === undefined) continue;
    if (cp.tag !== 'legacy' && cp.tag.chain === chain) continue;
    try {
      await deleteCheckpoint(ctx, dom, cp.name, rpc);
      deleted.push(cp.name);
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) continue;
      onError(cp.name, error);
    }
  }
  return deleted;
}

// ---------------------------------------------------------------------------------------------------------
// Restore runs

/** The name prefix of every volume a restore creates (`hvkit-restore-<id>`, the run, then `-…` or `.lease`). */
export const RESTORE_VOLUME_PREFIX = 'hvkit-restore-';
/** `VIR_CONNECT_LIST_STORAGE_POOLS_ACTIVE`: inactive pools list no volumes. */
const LIST_POOLS_ACTIVE = 2;

/** One restore run found in the storage pools: its lease volume, what it says, and the run's volumes. */
export interface RestoreRun {
  /** `hvkit-restore-<id>`: the lease volume is `<run>.lease`, the uploads `<run>-<device>-<position>.<fmt>`. */
  run: string;
  leaseVol: RemoteStorageVol;
  /** The lease; undefined when the volume holds none (being written, or cut short by a kill). */
  lease?: RestoreLeaseRecord;
  /** The run's other volumes, in any pool. */
  volumes: RemoteStorageVol[];
  /** A live lease (or a lease volume written less than a lease lifetime ago that holds no lease yet). */
  live: boolean;
}

/** Options of {@link findRestoreRuns}. */
export interface FindRestoreRunsOptions {
  /** Whether a lease is live (expiry, and the owner process on this host). */
  isLive: (lease: StoredLease) => boolean;
  now: Date;
  /** A lease's lifetime: a lease volume without a lease counts as live for that long after its last write. */
  ttlMs: number;
  rpc: Rpc;
}

/** Reads a restore lease volume (at most a few KiB) over the adapter's connection. */
async function readLeaseVolume(ctx: AdapterContext, vol: RemoteStorageVol, rpc: Rpc): Promise<Uint8Array> {
  const stream = await ctx.client.downloadVolume(vol, {
    maxBytes: 4 * RESTORE_LEASE_BYTES,
    idleTimeoutMs: 30_000,
    ...(rpc.signal ? { signal: rpc.signal } : {}),
  });
  const chunks: Uint8Array[] = [];
  for await (const chunk of stream) if (!isStreamHole(chunk)) chunks.push(chunk);
  return Buffer.concat(chunks);
}

/** The last modification of a volume (`<timestamps><mtime>` of its XML), ms; undefined when not reported. */
async function volumeMtime(
  ctx: AdapterContext,
  vol: RemoteStorageVol,
  rpc: Rpc,
): Promise<number | undefined> {
  const xml = await ctx.client.call(remoteProcedures.STORAGE_VOL_GET_XML_DESC, { vol, flags: 0 }, rpc);
  const m = /<mtime>(\d+)(?:\.(\d+))?<\/mtime>/.exec(xml);
  return m ? Number(m[1]) * 1000 + Math.floor(Number(`0.${m[2] ?? '0'}`) * 1000) : undefined;
}

/**
 * Every restore run whose lease volume is in an active storage pool of the daemon, with its volumes (a volume
 * `<run>-…` belongs to the longest run whose name it starts with). Volumes of the prefix without a lease
 * volume are not listed: a restore deletes its lease volume last (after the definition, or after its other
 * volumes), so they belong to a defined guest or were reported as not removable when their run ended.
 */
export async function findRestoreRuns(
  ctx: AdapterContext,
  options: FindRestoreRunsOptions,
): Promise<RestoreRun[]> {
  const { rpc } = options;
  const { pools } = await ctx.client.call(
    remoteProcedures.CONNECT_LIST_ALL_STORAGE_POOLS,
    { needResults: 1, flags: LIST_POOLS_ACTIVE },
    rpc,
  );
  const vols: RemoteStorageVol[] = [];
  for (const pool of pools) {
    try {
      const { vols: all } = await ctx.client.call(
        remoteProcedures.STORAGE_POOL_LIST_ALL_VOLUMES,
        { pool, needResults: 1, flags: 0 },
        rpc,
      );
      vols.push(...all.filter((v) => v.name.startsWith(RESTORE_VOLUME_PREFIX)));
    } catch (error) {
      // A pool stopped or removed meanwhile has no volumes to look at.
      if (!HvkitError.isInstance(error, 'NOT_FOUND')) throw error;
    }
  }
  const runs = new Map<string, RestoreRun>();
  for (const vol of vols) {
    if (!vol.name.endsWith('.lease')) continue;
    const run = vol.name.slice(0, -'.lease'.length);
    let lease: RestoreLeaseRecord | undefined;
    try {
      lease = parseRestoreLease(await readLeaseVolume(ctx, vol, rpc));
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) continue;
      if (!HvkitError.isInstance(error, 'PROTOCOL')) throw error;
    }
    let live: boolean;
    if (lease) live = options.isLive(lease);
    else {
      const mtime = await volumeMtime(ctx, vol, rpc).catch((error: unknown) => {
        if (HvkitError.isInstance(error, 'NOT_FOUND')) return 0;
        throw error;
      });
      live = mtime !== undefined && options.now.getTime() - mtime < options.ttlMs;
    }
    runs.set(run, { run, leaseVol: vol, ...(lease ? { lease } : {}), live, volumes: [] });
  }
  const byLength = [...runs.values()].sort((a, b) => b.run.length - a.run.length);
  for (const vol of vols) {
    if (vol.name.endsWith('.lease') && runs.has(vol.name.slice(0, -'.lease'.length))) continue;
    byLength.find((r) => vol.name.startsWith(`${r.run}-`))?.volumes.push(vol);
  }
  return [...runs.values()].sort((a, b) => (a.run < b.run ? -1 : 1));
}

/** Whether a restore run concerns the guest `name` / `uuid`: as its target or as the artifact's guest. */
export function restoreRunConcerns(run: RestoreRun, guest: { name?: string; uuid?: string }): boolean {
  const l = run.lease;
  if (!l) return false;
  const uuid = guest.uuid?.toLowerCase();
  if (guest.name !== undefined && l.guest === guest.name) return true;
  if (uuid !== undefined && l.uuid === uuid) return true;
  if (!l.source) return false;
  return l.source.uuid !== undefined ? l.source.uuid === uuid : l.source.name === guest.name;
}

/** The text of every domain's definition and live XML, to tell whether a volume is in use. */
async function domainTexts(ctx: AdapterContext, rpc: Rpc): Promise<string[]> {
  const { domains } = await ctx.client.call(
    remoteProcedures.CONNECT_LIST_ALL_DOMAINS,
    { needResults: 1, flags: 0 },
    rpc,
  );
  const texts: string[] = [];
  for (const dom of domains) {
    for (const flags of [0, DOMAIN_XML.INACTIVE]) {
      try {
        texts.push(await ctx.client.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags }, rpc));
      } catch (error) {
        // Undefined meanwhile: it uses nothing.
        if (!HvkitError.isInstance(error, 'NOT_FOUND')) throw error;
      }
    }
  }
  return texts;
}

/**
 * Removes what dead restore runs left: each run's volumes that no domain's XML names (live or definition;
 * a restore that was killed after its definition leaves volumes that are the new guest's disks), then its
 * lease volume, last and only when the rest is gone (so that a run whose volume could not be removed is
 * found again). Live runs are listed in `kept` and left alone.
 */
export async function removeRestoreRuns(
  ctx: AdapterContext,
  runs: readonly RestoreRun[],
  options: { rpc: Rpc; onError: (item: BackupLeftover, error: unknown) => void },
): Promise<BackupCleanupResult> {
  const { rpc } = options;
  const removed: BackupLeftover[] = [];
  const kept: BackupLeftover[] = [];
  let texts: string[] | undefined;
  for (const r of runs) {
    const lease: BackupLeftover = { kind: 'lease', name: r.leaseVol.key, run: r.run };
    const volumes = r.volumes.map((v) => ({
      vol: v,
      item: { kind: 'volume', name: v.key, run: r.run } as const,
    }));
    if (r.live) {
      kept.push(lease, ...volumes.map((v) => v.item));
      continue;
    }
    let failed = false;
    for (const { vol, item } of volumes) {
      try {
        texts ??= await domainTexts(ctx, rpc);
        if (texts.some((t) => t.includes(vol.name))) continue;
        await deleteVolume(ctx, vol, rpc);
        removed.push(item);
      } catch (error) {
        if (rpc.signal?.aborted) throw error;
        if (HvkitError.isInstance(error, 'NOT_FOUND')) removed.push(item);
        else {
          failed = true;
          options.onError(item, error);
        }
      }
    }
    if (failed) continue;
    try {
      await deleteVolume(ctx, r.leaseVol, rpc);
      removed.push(lease);
    } catch (error) {
      if (rpc.signal?.aborted) throw error;
      if (HvkitError.isInstance(error, 'NOT_FOUND')) removed.push(lease);
      else options.onError(lease, error);
    }
  }
  return { removed, kept };
}
