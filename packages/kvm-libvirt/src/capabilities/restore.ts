/**
 * `backups.restore` for libvirt's QEMU driver: an artifact (and its chain) from a {@link BackupSource} into
 * storage volumes uploaded over the RPC stream, then the domain defined (a new guest) or redefined (in place).
 *
 * Order, so that nothing is visible before every byte is verified:
 * 1. Resolve the chain (core's `resolveRestoreChain`), check each manifest (adapter, disks, formats), read and
 *    verify the definition, check the target (mode `new`: the name is free; `in-place`: the guest exists, is
 *    stopped and has no snapshots).
 * 2. Store a lease volume `hvkit-restore-<run>.lease` (the lease JSON) in the first target pool and renew it
 *    while the restore runs: `backups.cleanup` and other processes see the run and its owner.
 * 3. For each artifact of the chain, oldest first, and each disk: create a raw volume
 *    `hvkit-restore-<run>-<device>-<position>.<format>` of exactly the file's size and upload the file into it
 *    (STORAGE_VOL_UPLOAD, sparse: zero runs of 64 KiB travel as holes), checking size and sha256 while it
 *    streams (core's `readVerifiedFile`). libvirt has no volume rename, so these names are final: the volumes
 *    are never referenced by a domain before the definition step.
 * 4. Define the rewritten domain XML (`rewriteDomainForRestore`): the disks point at the new volumes; an
 *    incremental chain is a `<backingStore>` chain of the uploaded qcow2 layers (full at the bottom).
 * 5. In place only, after the redefinition: the replaced volumes are deleted and the guest's checkpoints,
 *    whose bitmaps were in the replaced images, are removed (metadata only).
 *
 * An abort or failure before step 4 deletes every volume it created (and the lease) and defines nothing. The
 * in-place window: between the redefinition (atomic in libvirt) and the deletion of the old volumes both
 * exist; a crash there leaves the old volumes, unreferenced, under their old names.
 */

import { hostname } from 'node:os';
import {
  BACKUP_LEASE_TTL_MS,
  type BackupFile,
  type BackupManifest,
  type BackupManifestFile,
  type BackupSource,
  type BackupsCapability,
  createProgressReporter,
  type GuestRef,
  HvkitError,
  type HvkitWarning,
  holdLease,
  hvkitError,
  type LeaseHolder,
  leaseOwner,
  newLease,
  type RestoreOptions,
  type RestoreResult,
  readVerifiedBytes,
  readVerifiedFile,
  resolveRestoreChain,
} from '@hvkit/core';
import {
  type AdapterContext,
  domainHandle,
  domainXml,
  holdLeftover,
  type Leftover,
  operationAbortedError,
  removeLeftover as removeLeftoverIn,
  rpcOptions,
  trackOperation,
} from '../context';
import { ADAPTER_ID } from '../errors';
import { type StoredLease, storedLeaseIsLive } from '../mapping/backup-state';
import { parseDomainXmlDetails } from '../mapping/domain';
import { type RestoredDiskSource, rewriteDomainForRestore } from '../mapping/restore-definition';
import { parseVolumeXml } from '../mapping/storage';
import type { LibvirtRpcClient } from '../protocol/client';
import { remoteProcedures as P } from '../protocol/remote-protocol';
import type { RemoteDomain, RemoteStoragePool, RemoteStorageVol } from '../protocol/types';
import {
  findRestoreRuns,
  leaseState,
  RESTORE_VOLUME_PREFIX,
  type RestoreRun,
  removeRestoreRuns,
} from './backup-cleanup';
import {
  isPersistent,
  leaseFlags,
  RESTORE_LEASE_BYTES,
  type RestoreLeaseRecord,
  readLease,
  restoreLeaseBytes,
  startLeaseRenewal,
  writeLease,
} from './backup-lease';
import { type BackupNaming, defaultId, leaseConflict, safeName } from './backups';
import { createInventory } from './inventory';

const OPERATION = 'backups.restore';
/** Cleanup calls run after an abort, without the caller's signal. */
const CLEANUP = { timeoutMs: 30_000 };
/** Zero runs of this size (aligned) are sent as holes. */
const HOLE_BLOCK = 64 * 1024;
/** `VIR_DOMAIN_CHECKPOINT_DELETE_METADATA_ONLY`. */
const CHECKPOINT_DELETE_METADATA_ONLY = 2;
/** The domain XML format of the definition file, as kvm-libvirt backups write it. */
const DEFINITION_FORMAT = 'libvirt-domain-xml';

/**
 * Internal options for tests and recordings (the adapter's `naming` option, shared with backups): run ids,
 * clock, lease owner and timing.
 */
export type RestoreNaming = BackupNaming;

function invalid(message: string, details: Record<string, unknown> = {}): HvkitError {
  return hvkitError('INVALID_ARGUMENT', message, {
    adapter: ADAPTER_ID,
    operation: OPERATION,
    details: { reason: 'artifact-invalid', ...details },
  });
}

export { RESTORE_VOLUME_PREFIX } from './backup-cleanup';

/** One disk of the chain: its file in each link, oldest first. */
interface DiskPlan {
  device: string;
  layers: { link: string; position: number; file: BackupManifestFile }[];
  /** The original disk's path, to find its pool. */
  originalPath?: string;
}

/**
 * Checks the chain's manifests: written by kvm-libvirt, one definition, the same disks in every link, full
 * copies in the full backup and qcow2 overlays in each incremental.
 */
function planDisks(links: readonly { path: string; manifest: BackupManifest }[]): DiskPlan[] {
  const plans = new Map<string, DiskPlan>();
  for (const [position, link] of links.entries()) {
    const m = link.manifest;
    if (m.adapter !== ADAPTER_ID) {
      throw invalid(
        `Artifact ${JSON.stringify(link.path)} was written by ${JSON.stringify(m.adapter)}, not ${ADAPTER_ID}.`,
        {
          artifact: link.path,
          adapter: m.adapter,
        },
      );
    }
    const disks = m.files.filter((f) => f.role === 'disk');
    const devices = new Set<string>();
    for (const f of disks) {
      const disk = f.disk as NonNullable<BackupManifestFile['disk']>;
      if (devices.has(disk.device)) {
        throw invalid(`Artifact ${JSON.stringify(link.path)} lists disk ${disk.device} twice.`, {
          artifact: link.path,
        });
      }
      devices.add(disk.device);
      if (position === 0 && disk.incremental !== undefined) {
        throw invalid(
          `The full backup ${JSON.stringify(link.path)} holds an incremental file for ${disk.device}.`,
          {
            artifact: link.path,
          },
        );
      }
      if (position > 0 && (disk.incremental === undefined || disk.format !== 'qcow2')) {
        throw hvkitError(
          'UNSUPPORTED',
          `Incremental file ${JSON.stringify(f.name)} of ${JSON.stringify(link.path)} is ${disk.incremental ?? 'a full copy'} in ${disk.format}; hvkit restores incrementals stored as qcow2 overlays.`,
          { adapter: ADAPTER_ID, operation: OPERATION, details: { artifact: link.path, file: f.name } },
        );
      }
      if (!/^[A-Za-z0-9._-]+$/.test(disk.format) || !/^[A-Za-z0-9._-]+$/.test(disk.device)) {
        throw invalid(`Disk file ${JSON.stringify(f.name)} has an unusable device or format name.`, {
          file: f.name,
        });
      }
      let plan = plans.get(disk.device);
      if (!plan) {
        if (position > 0) {
          throw invalid(
            `Incremental ${JSON.stringify(link.path)} has disk ${disk.device}, which the full backup lacks.`,
            {
              artifact: link.path,
            },
          );
        }
        plan = { device: disk.device, layers: [] };
        plans.set(disk.device, plan);
      }
      plan.layers.push({ link: link.path, position, file: f });
    }
    for (const plan of plans.values()) {
      if (!devices.has(plan.device)) {
        throw invalid(`Artifact ${JSON.stringify(link.path)} lacks disk ${plan.device} of its chain.`, {
          artifact: link.path,
        });
      }
    }
  }
  return [...plans.values()];
}

/** The definition file of the newest link. */
function definitionFile(link: { path: string; manifest: BackupManifest }): BackupManifestFile {
  const defs = link.manifest.files.filter((f) => f.role === 'definition');
  const def = defs.find((f) => f.format === DEFINITION_FORMAT) ?? (defs.length === 1 ? defs[0] : undefined);
  if (!def) {
    throw invalid(`Artifact ${JSON.stringify(link.path)} has no ${DEFINITION_FORMAT} definition.`, {
      artifact: link.path,
    });
  }
  return def;
}

/**
 * Checks a qcow2 image's first bytes (magic) and handles its backing file reference: a full backup's image
 * must stand alone (`UNSUPPORTED` otherwise); an incremental's names the guest's disk at backup time (libvirt
 * creates push-mode incremental targets over it), which the restored chain replaces, so the reference is
 * cleared in the uploaded copy (bytes 8-19 of the header: offset and length of the name) and the volume never
 * points at the original guest's disk. Returns the chunk to upload.
 */
function qcow2Head(head: Uint8Array, name: string, layer: number): Uint8Array {
  if (head.byteLength < 20) return head;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  if (view.getUint32(0) !== 0x514649fb) {
    throw invalid(`Disk file ${JSON.stringify(name)} is listed as qcow2 but is not a qcow2 image.`, {
      file: name,
    });
  }
  if (view.getBigUint64(8) === 0n) return head;
  if (layer === 0) {
    throw hvkitError(
      'UNSUPPORTED',
      `Disk file ${JSON.stringify(name)} is a qcow2 image with a backing file; a full backup must hold self-contained images.`,
      { adapter: ADAPTER_ID, operation: OPERATION, details: { file: name } },
    );
  }
  const copy = new Uint8Array(head);
  copy.fill(0, 8, 20);
  return copy;
}

/** @internal Splits `chunk` into data and zero runs of whole aligned {@link HOLE_BLOCK}s (`at` = the chunk's offset). */
export function* dataAndHoles(chunk: Uint8Array, at: number): Generator<Uint8Array | number> {
  let i = 0;
  let dataStart = 0;
  while (i < chunk.byteLength) {
    const blockStart = i;
    const aligned = HOLE_BLOCK - ((at + i) % HOLE_BLOCK);
    const end = Math.min(chunk.byteLength, i + aligned);
    let zero = end - blockStart === HOLE_BLOCK;
    if (zero) {
      for (let k = blockStart; k < end; k++) {
        if (chunk[k] !== 0) {
          zero = false;
          break;
        }
      }
    }
    if (zero) {
      let holeEnd = end;
      // Extend over following zero blocks.
      for (;;) {
        const next = Math.min(chunk.byteLength, holeEnd + HOLE_BLOCK);
        if (next - holeEnd !== HOLE_BLOCK) break;
        let all = true;
        for (let k = holeEnd; k < next; k++) {
          if (chunk[k] !== 0) {
            all = false;
            break;
          }
        }
        if (!all) break;
        holeEnd = next;
      }
      if (blockStart > dataStart) yield chunk.subarray(dataStart, blockStart);
      yield holeEnd - blockStart;
      dataStart = holeEnd;
      i = holeEnd;
    } else i = end;
  }
  if (chunk.byteLength > dataStart) yield chunk.subarray(dataStart);
}

/** The restore method of the backups capability. */
export function createRestore(
  ctx: AdapterContext,
  naming: RestoreNaming = {},
): NonNullable<BackupsCapability['restore']> {
  const uniqueId = naming.uniqueId ?? defaultId;
  const now = naming.now ?? (() => new Date());
  const owner = naming.leaseOwner ?? leaseOwner;
  const inventory = createInventory(ctx);

  const hold = (leftover: Leftover) => holdLeftover(ctx, leftover);
  const removeLeftover = (leftover: Leftover, remove: () => Promise<unknown>) =>
    removeLeftoverIn(ctx, leftover, remove);
  const abortedError = (signal: AbortSignal) =>
    operationAbortedError(ctx, signal, OPERATION, 'The restore was aborted.');

  async function poolOfPath(
    path: string | undefined,
    signal: AbortSignal,
  ): Promise<RemoteStoragePool | undefined> {
    if (path === undefined) return undefined;
    try {
      const vol = await ctx.client.call(P.STORAGE_VOL_LOOKUP_BY_PATH, { path }, { signal });
      return await ctx.client.call(P.STORAGE_POOL_LOOKUP_BY_VOLUME, { vol }, { signal });
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  }

  async function poolByName(name: string, signal: AbortSignal, what: string): Promise<RemoteStoragePool> {
    try {
      return await ctx.client.call(P.STORAGE_POOL_LOOKUP_BY_NAME, { name }, { signal });
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) {
        throw hvkitError('NOT_FOUND', `No storage pool ${JSON.stringify(name)} (${what}).`, {
          adapter: ADAPTER_ID,
          operation: OPERATION,
          cause: error,
        });
      }
      throw error;
    }
  }

  /** Creates a raw volume of exactly `bytes` (no preallocation) and records it as a leftover. */
  async function createVolume(
    pool: RemoteStoragePool,
    name: string,
    bytes: number,
    signal: AbortSignal,
    created: { leftover: Leftover; vol?: RemoteStorageVol; pool: RemoteStoragePool; name: string }[],
  ): Promise<RemoteStorageVol> {
    const entry = {
      leftover: hold({ kind: 'temporary volume', name, where: pool.name }),
      pool,
      name,
    } as (typeof created)[number];
    created.push(entry);
    const xml = `<volume><name>${name}</name><capacity unit='bytes'>${bytes}</capacity><allocation unit='bytes'>0</allocation><target><format type='raw'/></target></volume>`;
    try {
      // Not given the signal: only the reply tells whether the volume exists.
      entry.vol = await ctx.client.call(P.STORAGE_VOL_CREATE_XML, { pool, xml, flags: 0 }, CLEANUP);
    } catch (error) {
      if (HvkitError.isInstance(error) && typeof error.backendCode === 'number') {
        created.pop();
        ctx.leftovers.delete(entry.leftover);
      }
      throw error;
    }
    if (signal.aborted) throw abortedError(signal);
    return entry.vol;
  }

  /**
   * Deletes the volumes a restore created, newest first: the lease volume (the first created) goes last, and
   * stays when another volume could not be deleted, so that cleanup finds the run again once it expired.
   */
  async function deleteCreated(
    created: readonly { leftover: Leftover; vol?: RemoteStorageVol; pool: RemoteStoragePool; name: string }[],
  ) {
    for (const c of [...created].reverse()) {
      if (c.name.endsWith('.lease') && created.some((o) => o !== c && ctx.leftovers.has(o.leftover))) {
        ctx.leftovers.delete(c.leftover);
        ctx.logger?.warn(
          `kvm-libvirt: kept the restore lease volume ${c.name} in pool "${c.pool.name}": a volume of its run could not be deleted; backups.cleanup removes both once the lease expired`,
        );
        continue;
      }
      await removeLeftover(c.leftover, async () => {
        const vol =
          c.vol ??
          (await ctx.client.call(P.STORAGE_VOL_LOOKUP_BY_NAME, { pool: c.pool, name: c.name }, CLEANUP));
        await ctx.client.call(P.STORAGE_VOL_DELETE, { vol, flags: 0 }, CLEANUP);
      });
    }
  }

  /** Writes the lease record (JSON, padded) into the lease volume over `client`. */
  async function writeLeaseVolume(
    client: LibvirtRpcClient,
    vol: RemoteStorageVol,
    record: RestoreLeaseRecord,
    signal: AbortSignal,
  ) {
    const bytes = restoreLeaseBytes(record);
    const stream = await client.uploadVolume(vol, { signal, timeoutMs: 30_000, idleTimeoutMs: 30_000 });
    await stream.write(bytes);
    await stream.finish();
  }

  /**
   * Before a restore creates anything: CONFLICT when a live restore targets the same guest (a new guest's
   * name, or in place its UUID); then removes what dead restore runs left in the daemon's pools (their
   * volumes no domain uses, then their lease volumes). A removal that fails is a warning.
   */
  async function sweepRestoreRuns(
    target: string,
    uuid: string | undefined,
    rpc: { signal: AbortSignal },
  ): Promise<void> {
    let runs: RestoreRun[];
    try {
      runs = await findRestoreRuns(ctx, {
        isLive: (l) => storedLeaseIsLive(l, now(), hostname()),
        now: now(),
        ttlMs: naming.leaseTtlMs ?? BACKUP_LEASE_TTL_MS,
        rpc,
      });
    } catch (error) {
      if (rpc.signal.aborted) throw error;
      ctx.logger?.warn(`kvm-libvirt: could not look for what killed restores left: ${String(error)}`);
      return;
    }
    const clash = runs.find(
      (r) =>
        r.live &&
        r.lease !== undefined &&
        (uuid !== undefined ? r.lease.uuid === uuid : r.lease.mode === 'new' && r.lease.guest === target),
    );
    if (clash?.lease) throw leaseConflict(target, clash.lease, OPERATION);
    const { removed } = await removeRestoreRuns(
      ctx,
      runs.filter((r) => !r.live),
      {
        rpc,
        onError: (item, error) =>
          ctx.logger?.warn(
            `kvm-libvirt: could not remove the ${item.kind} ${JSON.stringify(item.name)} a killed restore left: ${String(error)}`,
          ),
      },
    );
    if (removed.length > 0) {
      ctx.logger?.info(
        `kvm-libvirt: removed what killed restores left: ${removed.map((r) => `${r.kind} ${r.name}`).join(', ')}`,
        { adapter: ADAPTER_ID },
      );
    }
  }

  async function restore(
    source: BackupSource,
    options: RestoreOptions & { signal: AbortSignal },
  ): Promise<RestoreResult> {
    const { signal } = options;
    const rpc = { signal };
    const mode = options.mode ?? 'new';
    if (ctx.driver !== 'QEMU') {
      throw hvkitError(
        'UNSUPPORTED',
        `hvkit restores disk backups on libvirt's QEMU driver, not on ${ctx.driver}.`,
        {
          adapter: ADAPTER_ID,
          operation: OPERATION,
        },
      );
    }
    const chain = await resolveRestoreChain(source, {
      ...(options.artifact !== undefined ? { artifact: options.artifact } : {}),
      ...(options.guest !== undefined ? { guest: options.guest } : {}),
      signal,
    });
    const plans = planDisks(chain.links);
    const target = chain.target;
    const manifest = target.manifest;
    const defFile = definitionFile(target);
    const definition = new TextDecoder().decode(
      await readVerifiedBytes(source, target.path, defFile, { signal }),
    );
    let details: ReturnType<typeof parseDomainXmlDetails>;
    try {
      details = parseDomainXmlDetails(definition);
    } catch (error) {
      throw invalid(
        `The definition in ${JSON.stringify(target.path)} is not a libvirt domain: ${(error as Error).message}`,
        {
          file: defFile.name,
        },
      );
    }
    for (const plan of plans) {
      const disk = details.disks.find((d) => d.device === plan.device);
      if (!disk) {
        throw invalid(`The definition has no disk ${plan.device}, which the artifact holds.`, {
          device: plan.device,
        });
      }
      if (disk.backing === 'file' || disk.backing === 'block') plan.originalPath = disk.source;
    }

    // The target guest.
    let existing: { dom: RemoteDomain; uuid: string; flags: number } | undefined;
    const name =
      mode === 'new'
        ? (options.name ?? `${manifest.guest.name}-restored-${target.manifest.id}`)
        : details.name;
    if (mode === 'new') {
      const taken = await ctx.client
        .call(P.DOMAIN_LOOKUP_BY_NAME, { name }, rpc)
        .then(() => true)
        .catch((error) => {
          if (HvkitError.isInstance(error, 'NOT_FOUND')) return false;
          throw error;
        });
      if (taken) {
        throw hvkitError(
          'CONFLICT',
          `A guest named ${JSON.stringify(name)} exists already; choose another name.`,
          {
            adapter: ADAPTER_ID,
            operation: OPERATION,
            details: { name },
          },
        );
      }
    } else {
      const ref: GuestRef = { uuid: manifest.guest.uuid ?? details.uuid };
      const h = await domainHandle(ctx, ref, OPERATION, rpc);
      if (h.active) {
        throw hvkitError(
          'CONFLICT',
          `Guest ${JSON.stringify(details.name)} is running; stop it before restoring in place.`,
          {
            adapter: ADAPTER_ID,
            operation: OPERATION,
          },
        );
      }
      const snaps = await ctx.client.call(
        P.DOMAIN_LIST_ALL_SNAPSHOTS,
        { dom: h.dom, needResults: 0, flags: 0 },
        rpc,
      );
      if (snaps.ret > 0) {
        throw hvkitError(
          'CONFLICT',
          `Guest ${JSON.stringify(details.name)} has ${snaps.ret} snapshot(s) that refer to its current disks; delete them before restoring in place.`,
          { adapter: ADAPTER_ID, operation: OPERATION },
        );
      }
      // A backup or another restore of the guest running elsewhere holds its lease.
      const held = await leaseState(ctx, h.dom, (l) => storedLeaseIsLive(l, now(), hostname()), rpc);
      if (held.live) throw leaseConflict(details.name, held.live, OPERATION);
      existing = { dom: h.dom, uuid: h.uuid, flags: leaseFlags(h, await isPersistent(ctx, h.dom, rpc)) };
    }

    // Target pools: the option, else each original disk's, else the backup pool.
    const pools = new Map<string, RemoteStoragePool>();
    const given =
      options.storage !== undefined
        ? await poolByName(options.storage, signal, 'options.storage')
        : undefined;
    let fallback: RemoteStoragePool | undefined;
    for (const plan of plans) {
      let pool = given ?? (await poolOfPath(plan.originalPath, signal));
      if (!pool) {
        fallback ??= await poolByName(ctx.backupPool, signal, 'the backupPool option');
        pool = fallback;
      }
      pools.set(plan.device, pool);
    }
    const run = `${RESTORE_VOLUME_PREFIX}${uniqueId()}`;
    await sweepRestoreRuns(name, existing?.uuid, rpc);
    const created: { leftover: Leftover; vol?: RemoteStorageVol; pool: RemoteStoragePool; name: string }[] =
      [];
    const warnings: HvkitWarning[] = [];
    const files: BackupFile[] = [];
    const progress = createProgressReporter(options.onProgress);
    const totalBytes = plans.reduce((n, p) => n + p.layers.reduce((m, l) => m + l.file.bytes, 0), 0);
    let sibling: LibvirtRpcClient | undefined;
    let lease: LeaseHolder | undefined;
    let leaseLeft: (typeof created)[number] | undefined;
    let guestLease: { dom: RemoteDomain; flags: number; run: string } | undefined;
    let guestLeaseHolder: LeaseHolder | undefined;
    /** Stops renewing the guest's lease and removes it when it is still this run's. */
    const releaseGuestLease = async () => {
      await guestLeaseHolder?.stop();
      guestLeaseHolder = undefined;
      const held = guestLease;
      guestLease = undefined;
      if (!held) return;
      const stored = await readLease(ctx, held.dom, CLEANUP).catch(() => undefined);
      if (stored?.state === 'valid' && stored.lease.run === held.run) {
        await writeLease(ctx, held.dom, null, held.flags, CLEANUP).catch((error) =>
          ctx.logger?.warn(`kvm-libvirt: could not remove the restore lease ${held.run}: ${String(error)}`),
        );
      }
    };
    try {
      // The lease, in the pool of the first disk (or the backup pool for a disk-less guest).
      const leasePool =
        pools.values().next().value ?? (await poolByName(ctx.backupPool, signal, 'the backupPool option'));
      sibling = await ctx.client.openSibling(rpcOptions({ signal }));
      ctx.siblings.add(sibling);
      const leaseVol = await createVolume(leasePool, `${run}.lease`, RESTORE_LEASE_BYTES, signal, created);
      leaseLeft = created.at(-1);
      const first = newLease(run, naming.leaseTtlMs, { owner: owner(), now: now() });
      // What the lease volume records: the target (and in place its UUID) and the artifact's guest, so
      // that backups.cleanup of either finds a killed run.
      const record = (l: typeof first): RestoreLeaseRecord => ({
        ...l,
        operation: 'restore',
        guest: name,
        mode,
        ...(existing ? { uuid: existing.uuid } : {}),
        source: {
          name: manifest.guest.name,
          ...(manifest.guest.uuid !== undefined ? { uuid: manifest.guest.uuid.toLowerCase() } : {}),
        },
      });
      await writeLeaseVolume(sibling, leaseVol, record(first), signal);
      const leaseClient = sibling;
      lease = holdLease(first, {
        store: (l, o) => writeLeaseVolume(leaseClient, leaseVol, record(l), o.signal),
        ...(naming.leaseRenewMs !== undefined ? { renewMs: naming.leaseRenewMs } : {}),
        ...(naming.leaseTtlMs !== undefined ? { ttlMs: naming.leaseTtlMs } : {}),
        now,
        onError: (error) =>
          ctx.logger?.warn(`kvm-libvirt: renewing the restore lease ${run} failed: ${String(error)}`),
      });

      if (existing) {
        // In place: the guest's own lease (domain metadata), as a backup takes it; the redefinition drops it.
        const stored: StoredLease = { ...first, operation: 'restore' };
        await writeLease(ctx, existing.dom, stored, existing.flags, rpc);
        guestLease = { dom: existing.dom, flags: existing.flags, run: stored.run };
        const back = await readLease(ctx, existing.dom, rpc);
        if (back.state !== 'valid' || back.lease.run !== stored.run) {
          throw back.state === 'valid'
            ? leaseConflict(details.name, back.lease, OPERATION)
            : hvkitError(
                'CONFLICT',
                `The restore lease of ${JSON.stringify(details.name)} could not be stored.`,
                {
                  adapter: ADAPTER_ID,
                  operation: OPERATION,
                },
              );
        }
        guestLeaseHolder = startLeaseRenewal(ctx, existing.dom, stored, existing.flags, {
          ...(naming.leaseRenewMs !== undefined ? { renewMs: naming.leaseRenewMs } : {}),
          ...(naming.leaseTtlMs !== undefined ? { ttlMs: naming.leaseTtlMs } : {}),
          now,
          onError: (error) =>
            ctx.logger?.warn(`kvm-libvirt: renewing the restore lease ${run} failed: ${String(error)}`),
        });
      }

      // Upload every layer of every disk, verified while it streams.
      progress.phase('upload', { totalBytes });
      const paths = new Map<string, { path: string; format: string }[]>();
      for (const [position] of chain.links.entries()) {
        for (const plan of plans) {
          const layer = plan.layers[position] as DiskPlan['layers'][number];
          const disk = layer.file.disk as NonNullable<BackupManifestFile['disk']>;
          const pool = pools.get(plan.device) as RemoteStoragePool;
          const volName = `${run}-${safeName(plan.device)}-${position}.${disk.format}`;
          const vol = await createVolume(pool, volName, layer.file.bytes, signal, created);
          const fileName = `${layer.link}/${layer.file.name}`;
          const stream = await sibling.uploadVolume(vol, {
            sparse: true,
            signal,
            idleTimeoutMs: ctx.backupIdleTimeoutMs,
          });
          let at = 0;
          try {
            for await (const read of readVerifiedFile(source, layer.link, layer.file, { signal })) {
              const chunk = at === 0 && disk.format === 'qcow2' ? qcow2Head(read, fileName, position) : read;
              for (const piece of dataAndHoles(chunk, at)) {
                if (typeof piece === 'number') await stream.hole(piece);
                else await stream.write(piece);
              }
              at += chunk.byteLength;
              progress.advance(chunk.byteLength, { file: fileName });
            }
            await stream.finish();
          } catch (error) {
            stream.abort(error);
            throw error;
          }
          files.push({ name: fileName, bytes: layer.file.bytes, sha256: layer.file.sha256 });
          const volXml = await ctx.client.call(P.STORAGE_VOL_GET_XML_DESC, { vol, flags: 0 }, rpc);
          const path = parseVolumeXml(volXml, { poolId: pool.uuid }).path;
          if (path === undefined) {
            throw hvkitError(
              'UNSUPPORTED',
              `Volume ${volName} in pool ${pool.name} has no path to put in the definition.`,
              {
                adapter: ADAPTER_ID,
                operation: OPERATION,
              },
            );
          }
          const list = paths.get(plan.device) ?? [];
          list.push({ path, format: disk.format });
          paths.set(plan.device, list);
        }
      }
      files.push({ name: `${target.path}/${defFile.name}`, bytes: defFile.bytes, sha256: defFile.sha256 });

      // Define (or redefine): the last step that can fail without leaving anything.
      const disks: RestoredDiskSource[] = plans.map((plan) => {
        const layers = [...(paths.get(plan.device) ?? [])].reverse();
        const top = layers[0] as { path: string; format: string };
        return { device: plan.device, path: top.path, format: top.format, backing: layers.slice(1) };
      });
      const rewritten = rewriteDomainForRestore(definition, {
        mode,
        ...(mode === 'new' ? { name } : {}),
        disks,
      });
      warnings.push(...rewritten.warnings);
      let replaced: string[] = [];
      if (existing) {
        // Still stopped? (Another process may have started it while the disks uploaded.)
        const now = await domainHandle(ctx, { uuid: existing.uuid }, OPERATION, rpc);
        if (now.active) {
          throw hvkitError(
            'CONFLICT',
            `Guest ${JSON.stringify(details.name)} was started during the restore.`,
            {
              adapter: ADAPTER_ID,
              operation: OPERATION,
            },
          );
        }
        const current = parseDomainXmlDetails(await domainXml(ctx, existing.dom, true, rpc));
        replaced = current.disks
          .filter(
            (d) =>
              plans.some((p) => p.device === d.device) && (d.backing === 'file' || d.backing === 'block'),
          )
          .map((d) => d.source as string);
      }
      if (signal.aborted) throw abortedError(signal);
      await guestLeaseHolder?.stop();
      const dom = await ctx.client.call(P.DOMAIN_DEFINE_XML, { xml: rewritten.xml }, CLEANUP);
      guestLease = undefined;
      // From here the volumes belong to the guest.
      for (const c of created) if (c !== leaseLeft) ctx.leftovers.delete(c.leftover);
      if (existing) warnings.push(...(await afterInPlace(existing.dom, replaced)));
      progress.done();
      const guest = await inventory.getGuest({ uuid: dom.uuid }, { signal: AbortSignal.timeout(30_000) });
      return { guest, mode, artifacts: chain.links.map((l) => l.manifest.id), files, warnings };
    } catch (error) {
      const s = sibling;
      sibling = undefined;
      await releaseGuestLease();
      await lease?.stop();
      lease = undefined;
      await s?.close().catch(() => {});
      if (s) ctx.siblings.delete(s);
      await deleteCreated(created.filter((c) => ctx.leftovers.has(c.leftover)));
      throw signal.aborted ? abortedError(signal) : error;
    } finally {
      await lease?.stop();
      if (sibling) {
        ctx.siblings.delete(sibling);
        await sibling.close().catch(() => {});
      }
      if (leaseLeft && ctx.leftovers.has(leaseLeft.leftover)) await deleteCreated([leaseLeft]);
    }
  }

  /** In place, after the redefinition: delete the replaced volumes and the stale checkpoints (metadata). */
  async function afterInPlace(dom: RemoteDomain, replaced: readonly string[]): Promise<HvkitWarning[]> {
    const warnings: HvkitWarning[] = [];
    for (const path of replaced) {
      try {
        const vol = await ctx.client.call(P.STORAGE_VOL_LOOKUP_BY_PATH, { path }, CLEANUP);
        await ctx.client.call(P.STORAGE_VOL_DELETE, { vol, flags: 0 }, CLEANUP);
      } catch (error) {
        warnings.push({
          type: 'other',
          field: 'disks',
          message: `The replaced disk ${path} could not be deleted (${(error as Error).message}); it is no longer used by the guest.`,
        });
      }
    }
    try {
      const { checkpoints } = await ctx.client.call(
        P.DOMAIN_LIST_ALL_CHECKPOINTS,
        { dom, needResults: 1, flags: 0 },
        CLEANUP,
      );
      for (const checkpoint of checkpoints) {
        await ctx.client.call(
          P.DOMAIN_CHECKPOINT_DELETE,
          { checkpoint, flags: CHECKPOINT_DELETE_METADATA_ONLY },
          CLEANUP,
        );
      }
      if (checkpoints.length > 0) {
        warnings.push({
          type: 'other',
          field: 'checkpoints',
          message: `${checkpoints.length} checkpoint(s) of the replaced disks were removed; the next backup must be full.`,
        });
      }
    } catch (error) {
      warnings.push({
        type: 'other',
        field: 'checkpoints',
        message: `The guest's checkpoints could not be removed (${(error as Error).message}); they describe the replaced disks.`,
      });
    }
    return warnings;
  }

  return function restoreMethod(source: BackupSource, options: RestoreOptions = {}): Promise<RestoreResult> {
    if (typeof source !== 'object' || source === null || typeof source.readFile !== 'function') {
      throw new TypeError('source must be a BackupSource.');
    }
    if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object.');
    if (options.mode !== undefined && options.mode !== 'new' && options.mode !== 'in-place') {
      throw new TypeError("options.mode must be 'new' or 'in-place'.");
    }
    for (const key of ['name', 'storage', 'artifact', 'guest'] as const) {
      const v = options[key];
      if (v !== undefined && (typeof v !== 'string' || v === ''))
        throw new TypeError(`options.${key} must be a non-empty string.`);
    }
    if (options.mode === 'in-place' && (options.name !== undefined || options.storage !== undefined)) {
      throw new TypeError('options.name and options.storage apply to a restore as a new guest only.');
    }
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new TypeError('options.onProgress must be a function.');
    }
    // close() aborts the restore (closeSignal) and waits, bounded, for its cleanup.
    return trackOperation(ctx, OPERATION, () => {
      const signal = options.signal ? AbortSignal.any([options.signal, ctx.closeSignal]) : ctx.closeSignal;
      return restore(source, { ...options, signal });
    });
  };
}

/**
 * The backups capability with `restore` added when the driver's manifest declares it (the QEMU driver);
 * otherwise `backups` unchanged.
 */
export function withRestore(
  backups: BackupsCapability,
  ctx: AdapterContext,
  supports: { backups: false | { restore: unknown } },
  naming: RestoreNaming = {},
): BackupsCapability {
  if (supports.backups === false || supports.backups.restore === false) return backups;
  return { ...backups, restore: createRestore(ctx, naming) };
}
