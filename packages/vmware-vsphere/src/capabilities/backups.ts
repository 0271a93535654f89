/**
 * Backups: snapshots (create, list, revert, delete), full disk backups (a temporary snapshot, then every
 * disk's files downloaded from the datastore file endpoint) and the ESXi host configuration bundle.
 */

import {
  type BackupArtifact,
  type BackupFile,
  type BackupOptions,
  type BackupSink,
  type BackupsCapability,
  type CallOptions,
  type CreateSnapshotOptions,
  type GuestRef,
  HvkitError,
  hvkitError,
  type Snapshot,
} from '@hvkit/core';
import { isVcenter, readObject, resolveVm, retrieveView, type VsphereContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { flattenSnapshots, type SnapshotNode } from '../mapping/snapshot';
import { diskCapacityBytes, isDisk, parseDatastorePath } from '../mapping/vm';
import {
  type DownloadOptions,
  datastoreFileUrl,
  downloadExists,
  onSessionOrigin,
  openDownload,
} from '../protocol/datastore';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import { waitForTask } from '../protocol/soap/task';

/** Largest host configuration bundle accepted (they are kilobytes to a few megabytes): 256 MiB. */
const MAX_HOST_CONFIG_BYTES = 256 * 1024 * 1024;

/**
 * The most a file of a virtual disk can hold: its capacity plus 0.1 % (at least 1 MiB) for VMDK metadata
 * (sparse grain tables, the descriptor). `undefined` when the device states no capacity.
 */
function diskFileBound(disk: DataObject): number | undefined {
  const bytes = diskCapacityBytes(disk);
  if (bytes === undefined || !Number.isFinite(bytes) || bytes < 0) return undefined;
  return bytes + Math.max(1024 * 1024, Math.ceil(bytes / 1000));
}

/** Download settings of this session: its fetch and cookie, the idle deadline, the call's signal. */
function downloadOptions(
  ctx: VsphereContext,
  what: string,
  maxBytes: number | undefined,
  signal: AbortSignal | undefined,
  operation = 'backups.backup',
): DownloadOptions {
  return {
    fetch: ctx.fetch,
    cookie: () => ctx.session.client.cookieHeader(),
    maxBytes,
    idleTimeoutMs: ctx.backupIdleTimeoutMs,
    signal,
    operation,
    what,
  };
}

async function snapshots(ctx: VsphereContext, vm: MoRef, signal?: AbortSignal): Promise<SnapshotNode[]> {
  const props = await readObject(ctx, vm, ['snapshot', 'layoutEx.snapshot'], signal);
  return flattenSnapshots(props.snapshot, props['layoutEx.snapshot']);
}

async function snapshotTask(
  ctx: VsphereContext,
  vm: MoRef,
  name: string,
  description: string,
  memory: boolean,
  quiesce: boolean,
  signal?: AbortSignal,
): Promise<MoRef> {
  const task = await ctx.session.call<MoRef>(
    'CreateSnapshot_Task',
    vm,
    { name, description, memory, quiesce },
    { signal },
  );
  return waitForTask<MoRef>(ctx.session, task, { signal });
}

async function findSnapshot(
  ctx: VsphereContext,
  vm: MoRef,
  id: string,
  operation: string,
  signal?: AbortSignal,
): Promise<MoRef> {
  if (typeof id !== 'string' || id === '')
    throw hvkitError('INVALID_ARGUMENT', 'A snapshot id must be a non-empty string.', {
      adapter: ADAPTER_ID,
      operation,
    });
  const node = (await snapshots(ctx, vm, signal)).find((n) => n.snapshot.id === id);
  if (!node)
    throw hvkitError('NOT_FOUND', `Guest ${vm.value} has no snapshot ${JSON.stringify(id.slice(0, 100))}.`, {
      adapter: ADAPTER_ID,
      operation,
    });
  return node.ref;
}

async function removeSnapshot(ctx: VsphereContext, snapshot: MoRef, signal?: AbortSignal): Promise<void> {
  const task = await ctx.session.call<MoRef>(
    'RemoveSnapshot_Task',
    snapshot,
    { removeChildren: false, consolidate: true },
    { signal },
  );
  await waitForTask(ctx.session, task, { signal });
}

/** The datacenter name (`dcPath`) of a datastore. */
async function datacenterOf(
  ctx: VsphereContext,
  datastore: MoRef | undefined,
  signal?: AbortSignal,
): Promise<string> {
  const dcs = await retrieveView(ctx, [{ type: 'Datacenter', pathSet: ['name', 'datastore'] }], signal);
  const found =
    dcs.find((d) => ((d.props.datastore ?? []) as MoRef[]).some((ds) => ds.value === datastore?.value)) ??
    dcs[0];
  return String(found?.props.name ?? 'ha-datacenter');
}

/** A full backup: a temporary snapshot, each disk's files downloaded into the sink, the snapshot removed. */
async function backup(
  ctx: VsphereContext,
  ref: GuestRef,
  sink: BackupSink,
  o: BackupOptions = {},
): Promise<BackupArtifact> {
  if (typeof sink?.writeFile !== 'function') throw new TypeError('sink must be a BackupSink.');
  const mode = o.mode ?? 'full';
  if (mode !== 'full' && mode !== 'incremental') throw new TypeError(`Unknown backup mode ${String(mode)}.`);
  const vm = await resolveVm(ctx, ref, 'backups.backup', o.signal);
  if (mode === 'incremental') {
    throw hvkitError(
      'UNSUPPORTED',
      'Incremental backups need changed block tracking (QueryChangedDiskAreas), which this adapter does not implement yet.',
      { adapter: ADAPTER_ID, operation: 'backups.backup' },
    );
  }
  const signal = o.signal;
  const props = await readObject(ctx, vm, ['config.hardware.device'], signal);
  const devices = (props['config.hardware.device'] ?? []) as DataObject[];
  const disks = devices.filter(isDisk).map((d) => {
    const backing = (d.backing ?? {}) as DataObject;
    return {
      fileName: String(backing.fileName ?? ''),
      datastore: backing.datastore as MoRef | undefined,
      maxBytes: diskFileBound(d),
    };
  });
  const started = new Date();
  const id = `${vm.value}-${started.getTime()}`;
  const snapshot = await snapshotTask(
    ctx,
    vm,
    'hvkit-backup (temporary)',
    'hvkit backup (temporary)',
    false,
    false,
    signal,
  );
  const files: BackupFile[] = [];
  let processed = 0;
  o.onProgress?.({ phase: 'snapshot', processedBytes: 0 });
  try {
    for (const disk of disks) {
      const parsed = parseDatastorePath(disk.fileName);
      if (!parsed) continue;
      const dcPath = await datacenterOf(ctx, disk.datastore, signal);
      // A VMDK is a small descriptor plus, for flat disks, its data in `<name>-flat.vmdk`: copy both.
      const parts = [parsed];
      if (parsed.path.endsWith('.vmdk')) {
        const flat = { datastore: parsed.datastore, path: parsed.path.replace(/\.vmdk$/, '-flat.vmdk') };
        if (
          await downloadExists(
            datastoreFileUrl(flat, dcPath, ctx.url),
            downloadOptions(ctx, `Datastore file [${flat.datastore}] ${flat.path}`, disk.maxBytes, signal),
          )
        )
          parts.push(flat);
      }
      for (const part of parts) {
        const name = `${vm.value}/${part.path.split('/').pop() ?? 'disk.vmdk'}`;
        const base = processed;
        const download = await openDownload(
          datastoreFileUrl(part, dcPath, ctx.url),
          downloadOptions(ctx, `Datastore file [${part.datastore}] ${part.path}`, disk.maxBytes, signal),
        );
        let file: BackupFile;
        try {
          file = await sink.writeFile(name, download.chunks, {
            signal,
            expectedBytes: download.size,
            onProgress: (p) => {
              processed = base + p.processedBytes;
              o.onProgress?.({ phase: 'disk', processedBytes: processed, file: name });
            },
          });
        } finally {
          download.cancel();
        }
        processed = base + file.bytes;
        files.push(file);
        o.onProgress?.({ phase: 'disk', processedBytes: processed, file: name });
      }
    }
  } catch (error) {
    for (const f of files) await sink.removeFile?.(f.name).catch(() => {});
    await removeSnapshot(ctx, snapshot, AbortSignal.timeout(60_000)).catch(() => {});
    throw error;
  }
  await removeSnapshot(ctx, snapshot, signal);
  o.onProgress?.({ phase: 'done', processedBytes: processed });
  return {
    id,
    guest: vm.value,
    kind: 'full',
    method: 'datastore-download',
    createdAt: started,
    files,
    consistency: 'crash',
  };
}

/** The ESXi configuration bundle (`BackupFirmwareConfiguration`), fetched from the session's origin only. */
async function backupHostConfig(
  ctx: VsphereContext,
  sink: BackupSink,
  o: BackupOptions = {},
): Promise<BackupArtifact> {
  if (typeof sink?.writeFile !== 'function') throw new TypeError('sink must be a BackupSink.');
  const unsupported = (why: string, cause?: unknown) =>
    hvkitError('UNSUPPORTED', `Host configuration backup is not available: ${why}`, {
      adapter: ADAPTER_ID,
      operation: 'backups.backupHostConfig',
      cause,
    });
  if (isVcenter(ctx))
    throw unsupported('connect to an ESXi host (vCenter has no host configuration bundle).');
  const hosts = await retrieveView(
    ctx,
    [{ type: 'HostSystem', pathSet: ['configManager.firmwareSystem'] }],
    o.signal,
  );
  const host = hosts[0];
  const firmware = host?.props['configManager.firmwareSystem'] as MoRef | undefined;
  if (!host || !firmware) throw unsupported('the host has no firmware system.');
  let bundleUrl: string;
  try {
    bundleUrl = await ctx.session.call<string>('BackupFirmwareConfiguration', firmware, undefined, {
      signal: o.signal,
    });
  } catch (error) {
    if (HvkitError.isInstance(error) && (error.code === 'NOT_FOUND' || error.code === 'UNSUPPORTED'))
      throw unsupported(
        `the server does not implement BackupFirmwareConfiguration (${error.backendCode ?? error.code}).`,
        error,
      );
    throw error;
  }
  // ESXi answers `http://*/downloads/<id>/configBundle-<host>.tgz`: only its path is used, on the
  // session's own scheme, host and port, so the session cookie never goes elsewhere or over plain http.
  const url = onSessionOrigin(String(bundleUrl), ctx.url, 'backups.backupHostConfig');
  const download = await openDownload(
    url,
    downloadOptions(
      ctx,
      'Host configuration bundle',
      MAX_HOST_CONFIG_BYTES,
      o.signal,
      'backups.backupHostConfig',
    ),
  );
  let file: BackupFile;
  try {
    file = await sink.writeFile(`${host.obj.value}/configBundle.tgz`, download.chunks, {
      signal: o.signal,
      expectedBytes: download.size,
      onProgress: (p) =>
        o.onProgress?.({ phase: 'host-config', processedBytes: p.processedBytes, file: p.file }),
    });
  } finally {
    download.cancel();
  }
  return {
    id: `${host.obj.value}-${Date.now()}`,
    guest: host.obj.value,
    kind: 'host-config',
    method: 'esxi-config',
    createdAt: new Date(),
    files: [file],
    consistency: 'crash',
  };
}

/** The backups capability of one adapter. */
export function createBackups(ctx: VsphereContext): BackupsCapability {
  return {
    async listSnapshots(ref: GuestRef, o: CallOptions = {}): Promise<Snapshot[]> {
      const vm = await resolveVm(ctx, ref, 'backups.listSnapshots', o.signal);
      return (await snapshots(ctx, vm, o.signal)).map((n) => n.snapshot);
    },

    async createSnapshot(ref: GuestRef, o: CreateSnapshotOptions = {}): Promise<Snapshot> {
      const name = o.name ?? `hvkit-${new Date().toISOString()}`;
      if (typeof name !== 'string' || name === '')
        throw hvkitError('INVALID_ARGUMENT', 'A snapshot name must be a non-empty string.', {
          adapter: ADAPTER_ID,
          operation: 'backups.createSnapshot',
        });
      const vm = await resolveVm(ctx, ref, 'backups.createSnapshot', o.signal);
      const created = await snapshotTask(
        ctx,
        vm,
        name,
        o.description ?? '',
        o.memory === true,
        o.quiesce === true,
        o.signal,
      );
      const node = (await snapshots(ctx, vm, o.signal)).find((n) => n.ref.value === created.value);
      if (!node)
        throw hvkitError('PROTOCOL', `Snapshot ${created.value} is not in the VM's snapshot tree.`, {
          adapter: ADAPTER_ID,
          operation: 'backups.createSnapshot',
        });
      return node.snapshot;
    },

    async deleteSnapshot(ref: GuestRef, id: string, o: CallOptions = {}): Promise<void> {
      const vm = await resolveVm(ctx, ref, 'backups.deleteSnapshot', o.signal);
      await removeSnapshot(
        ctx,
        await findSnapshot(ctx, vm, id, 'backups.deleteSnapshot', o.signal),
        o.signal,
      );
    },

    async revertSnapshot(ref: GuestRef, id: string, o: CallOptions = {}): Promise<void> {
      const vm = await resolveVm(ctx, ref, 'backups.revertSnapshot', o.signal);
      const snap = await findSnapshot(ctx, vm, id, 'backups.revertSnapshot', o.signal);
      const task = await ctx.session.call<MoRef>('RevertToSnapshot_Task', snap, undefined, {
        signal: o.signal,
      });
      await waitForTask(ctx.session, task, { signal: o.signal });
    },

    backup: (ref: GuestRef, sink: BackupSink, o?: BackupOptions) => backup(ctx, ref, sink, o),
    backupHostConfig: (sink: BackupSink, o?: BackupOptions) => backupHostConfig(ctx, sink, o),
  };
}
