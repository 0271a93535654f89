/**
 * Backups: snapshots (`VM.snapshot`, `VM.checkpoint` with memory, `VM.revert`, and deleting a snapshot
 * together with its disks: `VM.destroy` leaves a snapshot's VDIs, so each is destroyed too); guest backups
 * from a snapshot, full as an XVA (`/export?use_compression=gzip`) and incremental as one VHD per disk of
 * the blocks changed since the previous backup's snapshot (`/export_raw_vdi?format=vhd&base=`); the host
 * configuration (`/host_backup` and `/pool/xmldbdump`); restore as a new VM (`/import`, then each
 * incremental through `/import_raw_vdi`), or in place (the same, then the halted VM's disks swapped for the
 * restored ones), every file verified against the manifest while it streams.
 *
 * hvkit's snapshots: a running backup holds a lease on the VM (`hvkit.backup.lease` in its `other_config`)
 * and its snapshot is named `hvkit-backup`. Once the backup is complete the snapshot becomes the
 * chain's checkpoint (`hvkit.backup.chain`, `.position`, `.artifact` in `other_config`) and every older
 * hvkit checkpoint of the VM is deleted: the newest backup's snapshot is the base of the next incremental,
 * as Xen Orchestra keeps it. `listSnapshots` leaves hvkit's snapshots out; `listCheckpoints` shows them.
 */

import {
  abortError,
  artifactPath,
  type BackupArtifact,
  type BackupCheckpoint,
  type BackupCleanupOptions,
  type BackupCleanupResult,
  type BackupFile,
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
  holdLease,
  hvkitError,
  leaseIsLive,
  newArtifactId,
  newLease,
  parseLease,
  type RestoreOptions,
  type RestoreResult,
  readVerifiedBytes,
  readVerifiedFile,
  resolveRestoreChain,
  type Snapshot,
  writeBackupManifest,
} from '@hvkit/core';
import {
  type AdapterContext,
  getRecord,
  type Leftover,
  type RunningOperation,
  removeLeftover,
  reportLeftover,
  resolveVm,
} from '../context';
import { ADAPTER_ID, xapiErrorToHvkitError } from '../errors';
import {
  DEFAULT_TRANSFER_IDLE_TIMEOUT_MS,
  openDownload,
  type TransferTarget,
  upload,
} from '../protocol/transfer';
import { normaliseRecords, type XapiRecord } from '../protocol/values';
import { createInventory } from './inventory';

/** Name of a running backup's snapshot (constant, so an export of it does not vary from run to run). */
export const BACKUP_SNAPSHOT_NAME = 'hvkit-backup';
/** `other_config` keys hvkit sets on its snapshots. */
export const KEYS = {
  lease: 'hvkit.backup.lease',
  chain: 'hvkit.backup.chain',
  position: 'hvkit.backup.position',
  artifact: 'hvkit.backup.artifact',
} as const;

/** The `disk.device` of an XVA in a manifest: the file holds all of the VM's disks. */
export const XVA_DEVICE = '*';

/** Largest definition file (`vm.json`) a restore reads into memory: 16 MiB. */
const MAX_DEFINITION_BYTES = 16 * 1024 * 1024;

/** Largest XVA accepted: the VM's disks' virtual sizes plus 1 GiB (metadata, checksums, memory). */
const XVA_SLACK_BYTES = 1024 * 1024 * 1024;
/** Largest host backup or database dump accepted: 4 GiB. */
const MAX_HOST_CONFIG_BYTES = 4 * 1024 * 1024 * 1024;
/** VHD overhead bound: per 2 MiB block a 512-byte bitmap, plus headers and the block table. */
const vhdBound = (size: number) => size + Math.ceil(size / (2 * 1024 * 1024)) * 516 + 1024 * 1024;

const cleanupSignal = () => AbortSignal.timeout(60_000);
const random = () => Math.random().toString(36).slice(2, 8).padEnd(6, '0');

function fail(
  code: 'NOT_FOUND' | 'INVALID_ARGUMENT' | 'UNSUPPORTED' | 'PROTOCOL' | 'CONFLICT',
  operation: string,
  message: string,
) {
  return hvkitError(code, message, { adapter: ADAPTER_ID, operation });
}

/** Records something a run created until it is removed (see `removeLeftover`) or handed over. */
function hold(ctx: AdapterContext, what: string): Leftover {
  const leftover = { what };
  ctx.leftovers.add(leftover);
  return leftover;
}

/**
 * Runs a backup or restore that `close()` stops: its signal also aborts when `close()` starts, a failure
 * after that is `ABORTED` (the adapter was closed; not retryable), and `close()` waits for its cleanup
 * (at most `closeTimeoutMs`, then this rejects at once).
 */
function closable<T>(
  ctx: AdapterContext,
  operation: string,
  o: { signal?: AbortSignal } | undefined,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const signal = o?.signal ? AbortSignal.any([o.signal, ctx.closeSignal]) : ctx.closeSignal;
  const closedError = (detail: string) =>
    hvkitError('ABORTED', `${operation} was aborted: the adapter was closed${detail}.`, {
      adapter: ADAPTER_ID,
      operation,
      retryable: false,
    });
  const work = run(signal).catch((error: unknown) => {
    throw ctx.closeSignal.aborted ? closedError('') : error;
  });
  return new Promise<T>((resolve, reject) => {
    const entry: RunningOperation = {
      settled: work.then(
        () => {},
        () => {},
      ),
      abandon: () => reject(closedError(', and close() stopped waiting for its cleanup')),
    };
    ctx.running.add(entry);
    void work.then(resolve, reject).finally(() => ctx.running.delete(entry));
  });
}

/** The files a run wrote to its sink, each held as a leftover until the run hands them over. */
function sinkFiles(ctx: AdapterContext, sink: BackupSink) {
  const files: BackupFile[] = [];
  const held = new Map<BackupFile, Leftover>();
  return {
    files,
    add(f: BackupFile): BackupFile {
      files.push(f);
      held.set(f, hold(ctx, `sink file ${JSON.stringify(f.name)} in ${sink.location}`));
      return f;
    },
    handOver() {
      for (const leftover of held.values()) ctx.leftovers.delete(leftover);
    },
    async remove() {
      for (const [f, leftover] of held) {
        if (!sink.removeFile) {
          if (ctx.leftovers.delete(leftover)) reportLeftover(ctx, leftover, 'the sink has no removeFile');
          continue;
        }
        const removeFile = sink.removeFile.bind(sink);
        await removeLeftover(ctx, leftover, () => removeFile(f.name, { signal: cleanupSignal() }));
      }
    },
  };
}

/** The transfer settings of this session. */
function target(ctx: AdapterContext, operation: string, what: string, signal?: AbortSignal): TransferTarget {
  const session = ctx.client.session;
  if (!session)
    throw hvkitError('CONNECTION_LOST', `${operation}: the session is closed.`, {
      adapter: ADAPTER_ID,
      operation,
    });
  return {
    fetch: ctx.client.fetch,
    origin: ctx.client.origin,
    session,
    poolHosts: async () => {
      const hosts = normaliseRecords('host', await ctx.client.call('host.get_all_records', [], { signal }));
      return [...hosts.values()].map((h) => String(h.address ?? '')).filter(Boolean);
    },
    idleTimeoutMs: DEFAULT_TRANSFER_IDLE_TIMEOUT_MS,
    signal,
    operation,
    what,
  };
}

/** A VM's snapshots, with their records. */
async function snapshotsOf(ctx: AdapterContext, vm: XapiRecord, o: CallOptions) {
  const out: Array<{ ref: string; record: XapiRecord }> = [];
  for (const ref of (vm.snapshots ?? []) as string[]) {
    const record = await getRecord(ctx, 'VM', ref, o).catch((error: unknown) => {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) return undefined;
      throw error;
    });
    if (record) out.push({ ref, record });
  }
  return out;
}

const configOf = (r: XapiRecord) => (r.other_config ?? {}) as Record<string, string>;
const isHvkit = (r: XapiRecord) => r.name_label === BACKUP_SNAPSHOT_NAME || KEYS.chain in configOf(r);

function snapshotOf(r: XapiRecord): Snapshot {
  return {
    id: String(r.uuid),
    name: String(r.name_label ?? ''),
    createdAt: r.snapshot_time instanceof Date ? r.snapshot_time : new Date(0),
    kind: r.power_state === 'Suspended' ? 'memory' : 'disk',
    ...(r.name_description ? { description: String(r.name_description) } : {}),
  };
}

/** Destroys a snapshot (or a restored VM) with its disks: `VM.destroy`, then `VDI.destroy` of each disk. */
async function destroyWithDisks(ctx: AdapterContext, ref: string, signal?: AbortSignal): Promise<void> {
  const o = { signal };
  const vm = await getRecord(ctx, 'VM', ref, o);
  const vdis: string[] = [];
  for (const vbdRef of (vm.VBDs ?? []) as string[]) {
    const vbd = await getRecord(ctx, 'VBD', vbdRef, o);
    if (vbd.type === 'Disk' && typeof vbd.VDI === 'string') vdis.push(vbd.VDI);
  }
  await ctx.client.call('VM.destroy', [ref], o);
  for (const vdi of vdis) await ctx.client.call('VDI.destroy', [vdi], o);
}

/** The disks of a VM: userdevice -> { vbd, vdi record }. */
async function disksOf(ctx: AdapterContext, vm: XapiRecord, o: CallOptions) {
  const out = new Map<string, { vdiRef: string; vdi: XapiRecord }>();
  for (const vbdRef of (vm.VBDs ?? []) as string[]) {
    const vbd = await getRecord(ctx, 'VBD', vbdRef, o);
    if (vbd.type !== 'Disk' || typeof vbd.VDI !== 'string') continue;
    out.set(String(vbd.userdevice), { vdiRef: vbd.VDI, vdi: await getRecord(ctx, 'VDI', vbd.VDI, o) });
  }
  return out;
}

/** JSON that keeps bigints (as strings) and dates (ISO). */
function json(value: unknown): Uint8Array {
  return new TextEncoder().encode(
    `${JSON.stringify(value, (_k, v) => (typeof v === 'bigint' ? String(v) : v), 2)}\n`,
  );
}

async function* once(bytes: Uint8Array): AsyncGenerator<Uint8Array> {
  yield bytes;
}

/** The VM's definition as XAPI stores it: its record and those of its VBDs, VIFs and VDIs. */
async function definitionOf(ctx: AdapterContext, vm: XapiRecord, o: CallOptions) {
  const records = async (cls: string, refs: unknown) => {
    const out: Record<string, XapiRecord> = {};
    for (const ref of (refs ?? []) as string[]) out[ref] = await getRecord(ctx, cls, ref, o);
    return out;
  };
  const VBD = await records('VBD', vm.VBDs);
  const VDI = await records(
    'VDI',
    Object.values(VBD)
      .map((b) => b.VDI)
      .filter((v) => typeof v === 'string'),
  );
  return { format: 'hvkit-xapi-vm', version: 1, VM: vm, VBD, VIF: await records('VIF', vm.VIFs), VDI };
}

function manifestHead(id: string, kind: BackupManifest['kind'], method: string) {
  return {
    format: 'hvkit-backup',
    version: 1,
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    id,
    kind,
    method,
  } as const;
}

/** The lease stored in a VM's `other_config` (undefined when none, or unreadable). */
function leaseOf(record: XapiRecord): ReturnType<typeof parseLease> | undefined {
  const raw = configOf(record)[KEYS.lease];
  if (raw === undefined) return undefined;
  try {
    return parseLease(raw);
  } catch {
    return undefined;
  }
}

async function storeLease(
  ctx: AdapterContext,
  vmRef: string,
  value: string | undefined,
  signal?: AbortSignal,
) {
  await ctx.client.call('VM.remove_from_other_config', [vmRef, KEYS.lease], { signal });
  if (value !== undefined)
    await ctx.client.call('VM.add_to_other_config', [vmRef, KEYS.lease, value], { signal });
}

/**
 * Holds the run's lease on the VM (`hvkit.backup.lease` in its `other_config`): stored now, renewed until
 * `stop()`, which also clears it. A live lease of another run is `CONFLICT`.
 */
async function holdVmLease(
  ctx: AdapterContext,
  vm: { ref: string; record: XapiRecord },
  run: string,
  operation: string,
  signal?: AbortSignal,
) {
  const other = leaseOf(vm.record);
  if (other && leaseIsLive(other))
    throw hvkitError(
      'CONFLICT',
      `Guest ${String(vm.record.uuid)} is held by a running backup (${other.owner}, run ${other.run}, until ${other.expiresAt}).`,
      { adapter: ADAPTER_ID, operation, details: { lease: other } },
    );
  const owner = ctx.naming?.leaseOwner?.();
  const now = ctx.naming?.now?.();
  const lease = newLease(run, undefined, { ...(owner ? { owner } : {}), ...(now ? { now } : {}) });
  await storeLease(ctx, vm.ref, JSON.stringify(lease), signal);
  const leftover = hold(ctx, `backup lease ${KEYS.lease} (run ${run}) of guest ${String(vm.record.uuid)}`);
  const holder = holdLease(lease, {
    ...(ctx.naming?.now ? { now: ctx.naming.now } : {}),
    store: (l, o) => storeLease(ctx, vm.ref, JSON.stringify(l), o.signal),
    onError: (error) => ctx.logger.warn('backup lease renewal failed', { error: String(error) }),
  });
  return {
    async stop() {
      await holder.stop();
      await removeLeftover(ctx, leftover, () => storeLease(ctx, vm.ref, undefined, cleanupSignal()));
    },
  };
}

/** Removes hvkit's checkpoints of the VM other than `keep`. */
async function pruneCheckpoints(ctx: AdapterContext, vmRef: string, keep: string, signal?: AbortSignal) {
  const vm = await getRecord(ctx, 'VM', vmRef, { signal });
  for (const s of await snapshotsOf(ctx, vm, { signal }))
    if (s.ref !== keep && KEYS.chain in configOf(s.record)) await destroyWithDisks(ctx, s.ref, signal);
}

async function backup(
  ctx: AdapterContext,
  ref: GuestRef,
  sink: BackupSink,
  o: BackupOptions = {},
): Promise<BackupArtifact> {
  if (typeof sink?.writeFile !== 'function') throw new TypeError('sink must be a BackupSink.');
  const mode = o.mode ?? 'full';
  if (mode !== 'full' && mode !== 'incremental') throw new TypeError(`Unknown backup mode ${String(mode)}.`);
  const operation = 'backups.backup';
  const signal = o.signal;
  const vm = await resolveVm(ctx, ref, operation, { signal });
  let base: { ref: string; record: XapiRecord } | undefined;
  if (mode === 'incremental') {
    if (typeof o.sinceCheckpoint !== 'string' || o.sinceCheckpoint === '')
      throw fail(
        'INVALID_ARGUMENT',
        operation,
        'An incremental backup needs sinceCheckpoint (the checkpoint of an earlier backup).',
      );
    base = (await snapshotsOf(ctx, vm.record, { signal })).find(
      (s) => s.record.uuid === o.sinceCheckpoint && KEYS.chain in configOf(s.record),
    );
    if (!base)
      throw fail(
        'NOT_FOUND',
        operation,
        `Guest ${String(vm.record.uuid)} has no hvkit checkpoint ${JSON.stringify(String(o.sinceCheckpoint).slice(0, 80))}.`,
      );
  }
  const progress = createProgressReporter(o.onProgress);
  const started = ctx.naming?.now?.() ?? new Date();
  const id = newArtifactId(mode, started, ctx.naming?.uniqueId ?? random);
  const name = String(vm.record.name_label ?? vm.record.uuid);
  const path = artifactPath(name, id);
  const sinkWritten = sinkFiles(ctx, sink);
  const written = sinkWritten.files;
  let snapRef: string | undefined;
  let snapLeft: Leftover | undefined;
  const lease = await holdVmLease(ctx, vm, id, operation, signal);
  try {
    progress.phase('snapshot');
    snapRef = (await ctx.client.callAsync('VM.snapshot', [vm.ref, BACKUP_SNAPSHOT_NAME], {
      signal,
    })) as string;
    if (typeof snapRef !== 'string') throw fail('PROTOCOL', operation, 'VM.snapshot returned no ref.');
    const snapshotOfGuest = (which: string) =>
      `snapshot ${JSON.stringify(BACKUP_SNAPSHOT_NAME)} ${which} of guest ${JSON.stringify(name)} (and its VDIs)`;
    snapLeft = hold(ctx, snapshotOfGuest(snapRef));
    // The snapshot copied the VM's other_config, the lease with it: the lease stays on the VM only.
    await ctx.client.call('VM.remove_from_other_config', [snapRef, KEYS.lease], { signal });
    const snap = await getRecord(ctx, 'VM', snapRef, { signal });
    snapLeft.what = snapshotOfGuest(String(snap.uuid));
    const definition = json(await definitionOf(ctx, snap, { signal }));
    const disks = await disksOf(ctx, snap, { signal });
    const capacity = [...disks.values()].reduce((n, d) => n + Number(d.vdi.virtual_size ?? 0), 0);
    const entries: BackupManifestFile[] = [];
    const put = async (
      file: string,
      chunks: AsyncIterable<Uint8Array>,
      expectedBytes: number | undefined,
      done: number,
    ) => {
      const f = await sink.writeFile(`${path}/${file}`, chunks, {
        signal,
        expectedBytes,
        onProgress: (p) => progress.update(done + p.processedBytes, { file: `${path}/${file}` }),
      });
      return sinkWritten.add(f);
    };
    progress.phase('transfer');
    const def = await put('vm.json', once(definition), definition.byteLength, 0);
    entries.push({
      name: 'vm.json',
      role: 'definition',
      bytes: def.bytes,
      sha256: def.sha256,
      format: 'xapi-vm-json',
    });
    let done = def.bytes;
    let chain = { id, position: 0 };
    let baseArtifact: string | undefined;
    if (mode === 'full') {
      const t = target(ctx, operation, `The XVA export of ${name}`, signal);
      const download = await openDownload(
        t,
        '/export',
        { ref: snapRef, use_compression: 'gzip' },
        capacity + XVA_SLACK_BYTES,
      );
      try {
        const f = await put('vm.xva.gz', download.chunks, download.size, done);
        done += f.bytes;
        // The XVA holds every disk of the VM: one `disk` file for all of them (device `*`); a VM without
        // disks gives an XVA of metadata only, a `config` file.
        entries.push({
          name: 'vm.xva.gz',
          bytes: f.bytes,
          sha256: f.sha256,
          format: 'xva+gzip',
          ...(disks.size > 0
            ? { role: 'disk', disk: { device: XVA_DEVICE, format: 'xva+gzip', capacityBytes: capacity } }
            : { role: 'config' }),
        });
      } finally {
        download.cancel();
      }
    } else {
      const b = base as { ref: string; record: XapiRecord };
      const bc = configOf(b.record);
      chain = { id: String(bc[KEYS.chain]), position: Number(bc[KEYS.position] ?? 0) + 1 };
      baseArtifact = bc[KEYS.artifact];
      const baseDisks = await disksOf(ctx, b.record, { signal });
      for (const [device, d] of disks) {
        const baseDisk = baseDisks.get(device);
        if (!baseDisk || baseDisk.vdi.virtual_size !== d.vdi.virtual_size)
          throw fail(
            'CONFLICT',
            operation,
            `Disk ${device} changed since checkpoint ${String(b.record.uuid)} (added or resized): take a full backup.`,
          );
        const size = Number(d.vdi.virtual_size);
        const t = target(ctx, operation, `The VHD export of disk ${device} of ${name}`, signal);
        const download = await openDownload(
          t,
          '/export_raw_vdi',
          { vdi: String(d.vdi.uuid), format: 'vhd', base: String(baseDisk.vdi.uuid) },
          vhdBound(size),
        );
        const file = `disk-${device.replace(/[^A-Za-z0-9_.-]/g, '-')}.vhd`;
        try {
          const f = await put(file, download.chunks, download.size, done);
          done += f.bytes;
          entries.push({
            name: file,
            role: 'disk',
            bytes: f.bytes,
            sha256: f.sha256,
            format: 'vhd',
            disk: { device, format: 'vhd', capacityBytes: size, incremental: 'vhd-changed-blocks' },
          });
        } finally {
          download.cancel();
        }
      }
    }
    // The snapshot becomes the chain's checkpoint before the manifest makes the artifact complete.
    for (const [k, v] of [
      [KEYS.chain, chain.id],
      [KEYS.position, String(chain.position)],
      [KEYS.artifact, id],
    ] as const)
      await ctx.client.call('VM.add_to_other_config', [snapRef, k, v], { signal });
    const checkpoint = String(snap.uuid);
    const manifest: BackupManifest = {
      ...manifestHead(id, mode, mode === 'full' ? 'xapi-xva' : 'xapi-vhd-delta'),
      guest: { id: String(vm.record.uuid), name, uuid: String(vm.record.uuid) },
      startedAt: started.toISOString(),
      completedAt: (ctx.naming?.now?.() ?? new Date()).toISOString(),
      consistency: 'crash',
      chain,
      ...(baseArtifact ? { base: baseArtifact } : {}),
      checkpoint,
      ...(base ? { parentCheckpoint: String(base.record.uuid) } : {}),
      files: entries,
    };
    sinkWritten.add(await writeBackupManifest(sink, path, manifest, { signal }));
    sinkWritten.handOver();
    const kept = snapRef;
    snapRef = undefined;
    ctx.leftovers.delete(snapLeft);
    await pruneCheckpoints(ctx, vm.ref, kept, signal).catch((error: unknown) =>
      ctx.logger.warn('removing older hvkit checkpoints failed', { error: String(error) }),
    );
    progress.done();
    return {
      id,
      guest: String(vm.record.uuid),
      kind: mode,
      method: manifest.method,
      createdAt: started,
      files: written,
      checkpoint,
      ...(base ? { parentCheckpoint: String(base.record.uuid) } : {}),
      consistency: 'crash',
      path,
      chain: chain.id,
    };
  } catch (error) {
    await sinkWritten.remove();
    const ref = snapRef;
    if (ref && snapLeft)
      await removeLeftover(ctx, snapLeft, () => destroyWithDisks(ctx, ref, cleanupSignal()));
    throw error;
  } finally {
    await lease.stop();
  }
}

async function backupHostConfig(
  ctx: AdapterContext,
  sink: BackupSink,
  o: BackupOptions = {},
): Promise<BackupArtifact> {
  if (typeof sink?.writeFile !== 'function') throw new TypeError('sink must be a BackupSink.');
  const operation = 'backups.backupHostConfig';
  const signal = o.signal;
  const pools = normaliseRecords('pool', await ctx.client.call('pool.get_all_records', [], { signal }));
  const masterRef = [...pools.values()][0]?.master as string | undefined;
  if (!masterRef) throw fail('PROTOCOL', operation, 'The pool has no master.');
  const host = await getRecord(ctx, 'host', masterRef, { signal });
  const started = ctx.naming?.now?.() ?? new Date();
  const id = newArtifactId('host-config', started, ctx.naming?.uniqueId ?? random);
  const hostName = String(host.name_label ?? host.uuid);
  const path = artifactPath(hostName, id);
  const progress = createProgressReporter(o.onProgress);
  const sinkWritten = sinkFiles(ctx, sink);
  const written = sinkWritten.files;
  const entries: BackupManifestFile[] = [];
  try {
    progress.phase('transfer');
    let done = 0;
    for (const [endpoint, file, format] of [
      ['/pool/xmldbdump', 'pool-database.xml', 'xapi-xmldbdump'],
      ['/host_backup', 'host-backup.tgz', 'xapi-host-backup'],
    ] as const) {
      const download = await openDownload(
        target(ctx, operation, `${endpoint} of ${hostName}`, signal),
        endpoint,
        {},
        MAX_HOST_CONFIG_BYTES,
      );
      try {
        const at = done;
        const f = await sink.writeFile(`${path}/${file}`, download.chunks, {
          signal,
          expectedBytes: download.size,
          onProgress: (p) => progress.update(at + p.processedBytes, { file: `${path}/${file}` }),
        });
        sinkWritten.add(f);
        done += f.bytes;
        entries.push({ name: file, role: 'host-config', bytes: f.bytes, sha256: f.sha256, format });
      } finally {
        download.cancel();
      }
    }
    const manifest: BackupManifest = {
      ...manifestHead(id, 'host-config', 'xapi-host-backup'),
      guest: { id: String(host.uuid), name: hostName, uuid: String(host.uuid) },
      startedAt: started.toISOString(),
      completedAt: (ctx.naming?.now?.() ?? new Date()).toISOString(),
      consistency: 'crash',
      files: entries,
    };
    sinkWritten.add(await writeBackupManifest(sink, path, manifest, { signal }));
    sinkWritten.handOver();
    progress.done();
  } catch (error) {
    await sinkWritten.remove();
    throw error;
  }
  return {
    id,
    guest: String(host.uuid),
    kind: 'host-config',
    method: 'xapi-host-backup',
    createdAt: started,
    files: written,
    consistency: 'crash',
    path,
  };
}

/** The SR a restore writes to: `storage` (uuid or name label), else the pool's default SR. */
async function restoreSr(
  ctx: AdapterContext,
  storage: string | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const operation = 'backups.restore';
  if (storage === undefined) {
    const pools = normaliseRecords('pool', await ctx.client.call('pool.get_all_records', [], { signal }));
    const sr = [...pools.values()][0]?.default_SR;
    if (typeof sr !== 'string')
      throw fail('NOT_FOUND', operation, 'The pool has no default SR; pass options.storage.');
    return sr;
  }
  if (typeof storage !== 'string' || storage === '')
    throw new TypeError('backups.restore: storage must be a non-empty string.');
  const srs = normaliseRecords('SR', await ctx.client.call('SR.get_all_records', [], { signal }));
  const found = [...srs].filter(([, r]) => r.uuid === storage || r.name_label === storage);
  if (found.length !== 1)
    throw fail(
      found.length ? 'INVALID_ARGUMENT' : 'NOT_FOUND',
      operation,
      `${found.length ? 'Several SRs' : 'No SR'} named ${JSON.stringify(storage.slice(0, 80))}.`,
    );
  return (found[0] as [string, XapiRecord])[0];
}

async function restore(
  ctx: AdapterContext,
  source: BackupSource,
  o: RestoreOptions = {},
): Promise<RestoreResult> {
  const operation = 'backups.restore';
  const signal = o.signal;
  const mode = o.mode ?? 'new';
  if (mode !== 'new' && mode !== 'in-place')
    throw new TypeError(`backups.restore: unknown mode ${String(mode)}.`);
  if (o.name !== undefined && (typeof o.name !== 'string' || o.name === ''))
    throw new TypeError('backups.restore: name must be a non-empty string.');
  const chain = await resolveRestoreChain(source, { artifact: o.artifact, guest: o.guest, signal });
  const full = chain.links[0];
  const xva = full?.manifest.files.find((f) => f.name === 'vm.xva.gz' && f.format === 'xva+gzip');
  if (!full || full.manifest.adapter !== ADAPTER_ID || !xva)
    throw hvkitError(
      'INVALID_ARGUMENT',
      'backups.restore: the artifact was not written by the xen-xapi adapter (no XVA).',
      {
        adapter: ADAPTER_ID,
        operation,
        details: { reason: 'artifact-invalid' },
      },
    );
  // In place: the original VM (by the manifest's uuid) must exist and be halted; it is leased for the run.
  let original: { ref: string; record: XapiRecord } | undefined;
  if (mode === 'in-place') {
    original = await resolveVm(ctx, { uuid: full.manifest.guest.uuid ?? full.manifest.guest.id }, operation, {
      signal,
    });
    if (original.record.power_state !== 'Halted')
      throw fail(
        'CONFLICT',
        operation,
        `Guest ${String(original.record.uuid)} is ${String(original.record.power_state).toLowerCase()}; an in-place restore needs it halted.`,
      );
  }
  const sr = await restoreSr(ctx, o.storage, signal);
  const lease = original
    ? await holdVmLease(ctx, original, `restore-${chain.target.manifest.id}`, operation, signal)
    : undefined;
  const files = chain.links.flatMap((l) =>
    l.manifest.files
      .filter((f) => f.role === 'disk' || f === xva || (l === full && f.role === 'definition'))
      .map((f) => ({ link: l, f })),
  );
  const progress = createProgressReporter(o.onProgress);
  progress.phase('restore', { totalBytes: files.reduce((n, x) => n + x.f.bytes, 0) });
  let done = 0;
  const onBytes = (n: number) => {
    done += n;
    progress.update(done);
  };
  const verified = (link: { path: string }, f: BackupManifestFile) =>
    readVerifiedFile(source, link.path, f, { signal, onBytes });
  const read: BackupFile[] = [];
  let vmRef: string | undefined;
  let vmLeft: Leftover | undefined;
  let task: string | undefined;
  let taskLeft: Leftover | undefined;
  try {
    // The definition is verified (and must be ours) before anything is sent to the host.
    const defFile = full.manifest.files.find((f) => f.role === 'definition');
    if (defFile) {
      const def = await readVerifiedBytes(source, full.path, defFile, {
        signal,
        maxBytes: MAX_DEFINITION_BYTES,
        onBytes,
      });
      let parsed: { format?: unknown } | undefined;
      try {
        parsed = JSON.parse(new TextDecoder().decode(def)) as { format?: unknown };
      } catch {
        parsed = undefined;
      }
      if (parsed?.format !== 'hvkit-xapi-vm')
        throw hvkitError(
          'INVALID_ARGUMENT',
          `backups.restore: ${full.path}/${defFile.name} is not an XAPI VM definition.`,
          {
            adapter: ADAPTER_ID,
            operation,
            details: { reason: 'artifact-invalid' },
          },
        );
      read.push({ name: `${full.path}/${defFile.name}`, bytes: defFile.bytes, sha256: defFile.sha256 });
    }
    task = (await ctx.client.call('task.create', ['hvkit restore', full.manifest.id], { signal })) as string;
    taskLeft = hold(ctx, `task ${task} ("hvkit restore")`);
    await upload(
      target(ctx, operation, `The XVA import of ${full.path}`, signal),
      '/import',
      { sr_id: sr, task_id: task },
      verified(full, xva),
      xva.bytes,
    );
    read.push({ name: `${full.path}/${xva.name}`, bytes: xva.bytes, sha256: xva.sha256 });
    const rec = await getRecord(ctx, 'task', task, { signal });
    if (rec.status !== 'success') throw xapiErrorToHvkitError(rec.error_info, { operation });
    vmRef = /OpaqueRef:[0-9A-Za-z-]+/.exec(String(rec.result ?? ''))?.[0];
    if (!vmRef) throw fail('PROTOCOL', operation, 'The import task has no VM in its result.');
    vmLeft = hold(ctx, `imported VM ${vmRef} (and its VDIs)`);
    for (const link of chain.links.slice(1)) {
      const vm = await getRecord(ctx, 'VM', vmRef, { signal });
      const disks = await disksOf(ctx, vm, { signal });
      for (const f of link.manifest.files) {
        if (f.role !== 'disk') continue;
        const disk = f.disk && disks.get(f.disk.device);
        if (!disk)
          throw hvkitError(
            'INVALID_ARGUMENT',
            `backups.restore: ${link.path}/${f.name} names disk ${f.disk?.device}, which the restored VM does not have.`,
            {
              adapter: ADAPTER_ID,
              operation,
              details: { reason: 'artifact-invalid' },
            },
          );
        await upload(
          target(ctx, operation, `The VHD import of ${link.path}/${f.name}`, signal),
          '/import_raw_vdi',
          { vdi: String(disk.vdi.uuid), format: 'vhd' },
          verified(link, f),
          f.bytes,
        );
        read.push({ name: `${link.path}/${f.name}`, bytes: f.bytes, sha256: f.sha256 });
      }
    }
    if (original) {
      const warnings = await swapDisks(ctx, original.ref, vmRef, signal);
      vmRef = undefined;
      ctx.leftovers.delete(vmLeft);
      const guest = await createInventory(ctx).getGuest({ id: String(original.record.uuid) }, { signal });
      progress.done();
      return {
        guest,
        mode: 'in-place',
        artifacts: chain.links.map((l) => l.manifest.id),
        files: read,
        warnings,
      };
    }
    const name = o.name ?? `${full.manifest.guest.name}-restored-${chain.target.manifest.id}`;
    await ctx.client.call('VM.set_name_label', [vmRef, name], { signal });
    await ctx.client.call('VM.set_is_a_template', [vmRef, false], { signal });
    for (const k of Object.values(KEYS))
      await ctx.client.call('VM.remove_from_other_config', [vmRef, k], { signal });
    const uuid = String((await getRecord(ctx, 'VM', vmRef, { signal })).uuid);
    const guest = await createInventory(ctx).getGuest({ id: uuid }, { signal });
    progress.done();
    vmRef = undefined;
    ctx.leftovers.delete(vmLeft);
    return {
      guest,
      mode: 'new',
      artifacts: chain.links.map((l) => l.manifest.id),
      files: read,
      warnings: [],
    };
  } catch (error) {
    const ref = vmRef;
    if (ref && vmLeft) await removeLeftover(ctx, vmLeft, () => destroyWithDisks(ctx, ref, cleanupSignal()));
    throw error;
  } finally {
    const ref = task;
    if (ref && taskLeft)
      await removeLeftover(ctx, taskLeft, () =>
        ctx.client.call('task.destroy', [ref], { signal: cleanupSignal() }),
      );
    await lease?.stop();
  }
}

/**
 * The last step of an in-place restore: the original VM's disks are replaced by the restored ones (each
 * `Disk` VBD destroyed and created again on the restored VDI, same `userdevice`, `bootable` and QoS), the
 * import's VM is destroyed (its VDIs now belong to the original) and the replaced VDIs are destroyed. These
 * steps are not cancellable: the swap window is as short as the calls. Returns the warnings (a disk of the
 * original the backup does not hold is kept).
 */
async function swapDisks(
  ctx: AdapterContext,
  originalRef: string,
  restoredRef: string,
  signal?: AbortSignal,
): Promise<RestoreResult['warnings']> {
  const o = { signal };
  const vbdsOf = async (vmRef: string) => {
    const out = new Map<string, { vbdRef: string; vbd: XapiRecord }>();
    for (const vbdRef of ((await getRecord(ctx, 'VM', vmRef, o)).VBDs ?? []) as string[]) {
      const vbd = await getRecord(ctx, 'VBD', vbdRef, o);
      if (vbd.type === 'Disk' && typeof vbd.VDI === 'string')
        out.set(String(vbd.userdevice), { vbdRef, vbd });
    }
    return out;
  };
  const restored = await vbdsOf(restoredRef);
  const old = await vbdsOf(originalRef);
  if (signal?.aborted) throw abortError(signal, { adapter: ADAPTER_ID, operation: 'backups.restore' });
  const swap = { signal: cleanupSignal() };
  for (const [device, n] of restored) {
    const before = old.get(device);
    await ctx.client.call('VBD.destroy', [n.vbdRef], swap);
    if (before) await ctx.client.call('VBD.destroy', [before.vbdRef], swap);
    const like = before?.vbd ?? n.vbd;
    await ctx.client.call(
      'VBD.create',
      [
        {
          VM: originalRef,
          VDI: n.vbd.VDI as string,
          userdevice: device,
          bootable: like.bootable === true,
          mode: 'RW',
          type: 'Disk',
          empty: false,
          unpluggable: true,
          other_config: {},
          qos_algorithm_type: String(like.qos_algorithm_type ?? ''),
          qos_algorithm_params: (like.qos_algorithm_params ?? {}) as Record<string, string>,
        },
      ],
      swap,
    );
  }
  await ctx.client.call('VM.destroy', [restoredRef], swap);
  for (const [device, before] of old)
    if (restored.has(device)) await ctx.client.call('VDI.destroy', [before.vbd.VDI as string], swap);
  return [...old.keys()]
    .filter((d) => !restored.has(d))
    .map((d) => ({
      type: 'other' as const,
      field: `disks.${d}`,
      message: `Disk ${d} of the guest is not in the backup; it was kept as it is.`,
    }));
}

async function listCheckpoints(
  ctx: AdapterContext,
  ref: GuestRef,
  o: CallOptions = {},
): Promise<BackupCheckpoint[]> {
  const vm = await resolveVm(ctx, ref, 'backups.listCheckpoints', o);
  return (await snapshotsOf(ctx, vm.record, o))
    .filter((s) => KEYS.chain in configOf(s.record))
    .map((s) => ({
      id: String(s.record.uuid),
      ...(s.record.snapshot_time instanceof Date ? { createdAt: s.record.snapshot_time } : {}),
      chain: configOf(s.record)[KEYS.chain] as string,
      managed: true,
    }))
    .sort((a, b) => (a.createdAt?.getTime() ?? 0) - (b.createdAt?.getTime() ?? 0));
}

/**
 * Removes what crashed backups of the VM left: hvkit's running-backup snapshots (with their disks) and an
 * expired lease, and, with `sink`, incomplete artifacts. While a live lease holds the VM (a backup running
 * elsewhere), its snapshots and its run's artifact folder are kept.
 */
async function cleanup(
  ctx: AdapterContext,
  ref: GuestRef,
  o: BackupCleanupOptions = {},
): Promise<BackupCleanupResult> {
  const vm = await resolveVm(ctx, ref, 'backups.cleanup', o);
  const result: BackupCleanupResult = { removed: [], kept: [] };
  const lease = leaseOf(vm.record);
  const live = lease !== undefined && leaseIsLive(lease);
  for (const s of await snapshotsOf(ctx, vm.record, o)) {
    if (s.record.name_label !== BACKUP_SNAPSHOT_NAME || KEYS.chain in configOf(s.record)) continue;
    const item = {
      kind: 'snapshot' as const,
      name: String(s.record.uuid),
      ...(live ? { run: lease.run } : {}),
    };
    if (live) {
      result.kept.push(item);
      continue;
    }
    await destroyWithDisks(ctx, s.ref, o.signal);
    result.removed.push(item);
  }
  if (live) result.kept.push({ kind: 'lease', name: KEYS.lease, run: lease.run });
  else if (KEYS.lease in configOf(vm.record)) {
    await storeLease(ctx, vm.ref, undefined, o.signal);
    result.removed.push({ kind: 'lease', name: KEYS.lease, ...(lease ? { run: lease.run } : {}) });
  }
  if (o.sink?.removeIncomplete) {
    const folder = artifactPath(String(vm.record.name_label ?? vm.record.uuid), 'x').split('/')[0] as string;
    for (const name of await o.sink.removeIncomplete(folder, live ? [lease.run] : [], { signal: o.signal }))
      result.removed.push({ kind: 'file', name });
  }
  return result;
}

/** The backups capability of this adapter: every optional method of the spec is there. */
export type XenXapiBackupsCapability = BackupsCapability &
  Required<
    Pick<BackupsCapability, 'revertSnapshot' | 'backupHostConfig' | 'restore' | 'listCheckpoints' | 'cleanup'>
  >;

/** The backups capability of one adapter. */
export function createBackups(ctx: AdapterContext): XenXapiBackupsCapability {
  return {
    async listSnapshots(ref: GuestRef, o: CallOptions = {}): Promise<Snapshot[]> {
      const vm = await resolveVm(ctx, ref, 'backups.listSnapshots', o);
      return (await snapshotsOf(ctx, vm.record, o))
        .filter((s) => !isHvkit(s.record))
        .map((s) => snapshotOf(s.record))
        .sort((a, b) => a.createdAt.getTime() - b.createdAt.getTime() || a.id.localeCompare(b.id));
    },

    async createSnapshot(ref: GuestRef, o: CreateSnapshotOptions = {}): Promise<Snapshot> {
      const operation = 'backups.createSnapshot';
      const name = o.name ?? `hvkit-${new Date().toISOString()}`;
      if (typeof name !== 'string' || name === '')
        throw fail('INVALID_ARGUMENT', operation, 'A snapshot name must be a non-empty string.');
      if (name === BACKUP_SNAPSHOT_NAME)
        throw fail('INVALID_ARGUMENT', operation, `The name ${JSON.stringify(name)} is hvkit's own.`);
      if (o.quiesce === true)
        throw fail(
          'UNSUPPORTED',
          operation,
          'Quiesced snapshots (VM.snapshot_with_quiesce) were removed in Citrix Hypervisor 8.1.',
        );
      const vm = await resolveVm(ctx, ref, operation, o);
      const snap = (await ctx.client.callAsync(
        o.memory === true ? 'VM.checkpoint' : 'VM.snapshot',
        [vm.ref, name],
        o,
      )) as string;
      return snapshotOf(await getRecord(ctx, 'VM', snap, o));
    },

    async deleteSnapshot(ref: GuestRef, id: string, o: CallOptions = {}): Promise<void> {
      const s = await findSnapshot(ctx, ref, id, 'backups.deleteSnapshot', o);
      await destroyWithDisks(ctx, s, o.signal);
    },

    async revertSnapshot(ref: GuestRef, id: string, o: CallOptions = {}): Promise<void> {
      const s = await findSnapshot(ctx, ref, id, 'backups.revertSnapshot', o);
      await ctx.client.callAsync('VM.revert', [s], o);
    },

    backup: (ref: GuestRef, sink: BackupSink, o?: BackupOptions) =>
      closable(ctx, 'backups.backup', o, (signal) => backup(ctx, ref, sink, { ...o, signal })),
    backupHostConfig: (sink: BackupSink, o?: BackupOptions) =>
      closable(ctx, 'backups.backupHostConfig', o, (signal) => backupHostConfig(ctx, sink, { ...o, signal })),
    restore: (source: BackupSource, o?: RestoreOptions) =>
      closable(ctx, 'backups.restore', o, (signal) => restore(ctx, source, { ...o, signal })),
    listCheckpoints: (ref: GuestRef, o?: CallOptions) => listCheckpoints(ctx, ref, o),
    cleanup: (ref: GuestRef, o?: BackupCleanupOptions) => cleanup(ctx, ref, o),
  };
}

/** A user snapshot of the guest by its uuid (hvkit's own are not user snapshots). */
async function findSnapshot(
  ctx: AdapterContext,
  ref: GuestRef,
  id: string,
  operation: string,
  o: CallOptions,
): Promise<string> {
  if (typeof id !== 'string' || id === '')
    throw fail('INVALID_ARGUMENT', operation, 'A snapshot id must be a non-empty string.');
  const vm = await resolveVm(ctx, ref, operation, o);
  const found = (await snapshotsOf(ctx, vm.record, o)).find(
    (s) => s.record.uuid === id && !isHvkit(s.record),
  );
  if (!found)
    throw fail(
      'NOT_FOUND',
      operation,
      `Guest ${String(vm.record.uuid)} has no snapshot ${JSON.stringify(id.slice(0, 100))}.`,
    );
  return found.ref;
}
