/**
 * Backups: snapshots (create, list, revert, delete), full disk backups (a temporary snapshot, then every
 * disk's files downloaded from the datastore file endpoint) and the ESXi host configuration bundle.
 */

import {
  artifactPath,
  type BackupArtifact,
  type BackupCleanupOptions,
  type BackupFile,
  type BackupFileRole,
  type BackupLeftover,
  type BackupManifest,
  type BackupManifestDisk,
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
  type RestoreOptions,
  type Snapshot,
  writeBackupManifest,
} from '@hvkit/core';
import { isVcenter, readObject, resolveVm, retrieveView, type VsphereContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { flattenSnapshots, type SnapshotNode } from '../mapping/snapshot';
import { parseDatastorePath } from '../mapping/vm';
import { VM_CONFIG_PATHS, vmConfigOf } from '../mapping/vm-config';
import {
  type DatastoreFile,
  datastoreFileUrl,
  headFile,
  onSessionOrigin,
  openDownload,
} from '../protocol/datastore';
import type { MoRef } from '../protocol/soap/schema';
import { waitForTask } from '../protocol/soap/task';
import {
  BACKUP_SNAPSHOT_DESCRIPTION,
  cleanupSignal,
  datacenterOf,
  dsPath,
  LEGACY_BACKUP_SNAPSHOT_DESCRIPTION,
  randomSuffix,
  readVmLease,
  storeVmLease,
  transferOptions,
  VM_LEASE_KEY,
} from './backup-support';
import { cleanup, restore } from './restore';

/** Largest host configuration bundle accepted (they are kilobytes to a few megabytes): 256 MiB. */
const MAX_HOST_CONFIG_BYTES = 256 * 1024 * 1024;

/**
 * The most a file of a virtual disk can hold: its capacity plus 0.1 % (at least 1 MiB) for VMDK metadata
 * (sparse grain tables, the descriptor). `undefined` when the device states no capacity.
 */
function diskFileBound(bytes: number | undefined): number | undefined {
  if (bytes === undefined || !Number.isFinite(bytes) || bytes <= 0) return undefined;
  return bytes + Math.max(1024 * 1024, Math.ceil(bytes / 1000));
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

/** Largest .vmx (and NVRAM) a backup downloads (they are kilobytes): 1 MiB. */
const MAX_VMX_BYTES = 1024 * 1024;

/** A file a backup downloads from a datastore into the artifact. */
interface Part {
  file: DatastoreFile;
  /** Name inside the artifact folder. */
  name: string;
  role: BackupFileRole;
  size: number;
  maxBytes: number | undefined;
  format: string;
  disk?: BackupManifestDisk;
}

/** The fields every manifest of this adapter starts with. */
function manifestHead(id: string, kind: BackupManifest['kind'], method: BackupManifest['method']) {
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

/** `scsi0:1` → `scsi0-1`: a device name as part of a file name. */
function deviceFileName(device: string): string {
  return device.replace(/[^A-Za-z0-9_.-]/g, '-');
}

/**
 * Removes what earlier, crashed backups of the VM left: hvkit's temporary snapshots (recognised by their
 * description) and an expired lease. A live lease of another run is `CONFLICT` (a backup or restore of this
 * VM is running elsewhere); with `report`, what a live lease holds is only listed.
 */
export async function removeBackupLeftovers(
  ctx: VsphereContext,
  vm: MoRef,
  operation: string,
  signal: AbortSignal | undefined,
  report?: { removed: BackupLeftover[]; kept: BackupLeftover[] },
): Promise<void> {
  const { lease, raw } = await readVmLease(ctx, vm, signal);
  const live = lease !== undefined && leaseIsLive(lease);
  if (live && !report)
    throw hvkitError(
      'CONFLICT',
      `Guest ${vm.value} is held by a running backup or restore (${lease.owner}, run ${lease.run}, until ${lease.expiresAt}).`,
      { adapter: ADAPTER_ID, operation, details: { lease } },
    );
  const mine = (await snapshots(ctx, vm, signal)).filter((n) => {
    const d = n.snapshot.description ?? '';
    return d.startsWith(BACKUP_SNAPSHOT_DESCRIPTION) || d === LEGACY_BACKUP_SNAPSHOT_DESCRIPTION;
  });
  for (const n of mine) {
    const run = (n.snapshot.description ?? '').slice(BACKUP_SNAPSHOT_DESCRIPTION.length) || undefined;
    const item: BackupLeftover = { kind: 'snapshot', name: n.snapshot.id, ...(run ? { run } : {}) };
    if (live && (run === undefined || run === lease.run)) {
      report?.kept.push(item);
      continue;
    }
    await removeSnapshot(ctx, n.ref, signal);
    report?.removed.push(item);
  }
  if (live) report?.kept.push({ kind: 'lease', name: VM_LEASE_KEY, run: lease.run });
  else if (raw !== undefined) {
    await storeVmLease(ctx, vm, undefined, signal);
    report?.removed.push({ kind: 'lease', name: VM_LEASE_KEY, ...(lease ? { run: lease.run } : {}) });
  }
}

/**
 * Holds a lease on the VM for a run: stored in its extraConfig now, renewed until `stop()`, then cleared.
 */
export async function holdVmLease(
  ctx: VsphereContext,
  vm: MoRef,
  run: string,
  signal: AbortSignal | undefined,
): Promise<{ stop(): Promise<void> }> {
  const lease = newLease(run);
  await storeVmLease(ctx, vm, lease, signal);
  const holder = holdLease(lease, {
    store: (l, o) => storeVmLease(ctx, vm, l, o.signal),
    onError: (error) => ctx.logger?.warn('backup lease renewal failed', { error: String(error) }),
  });
  return {
    async stop() {
      await holder.stop();
      await storeVmLease(ctx, vm, undefined, cleanupSignal()).catch(() => {});
    },
  };
}

/**
 * A full backup into `<guest name>/<artifact id>/`: a temporary snapshot; the .vmx (`vm.vmx`) and the VM
 * configuration (`vm-config.json`); each disk's descriptor and flat extent (`disk-<device>.vmdk`,
 * `disk-<device>-flat.vmdk`); the manifest last. The snapshot is removed afterwards, also on failure or
 * abort, and so are the files already written.
 */
async function backup(
  ctx: VsphereContext,
  ref: GuestRef,
  sink: BackupSink,
  o: BackupOptions = {},
): Promise<BackupArtifact> {
  if (typeof sink?.writeFile !== 'function') throw new TypeError('sink must be a BackupSink.');
  const mode = o.mode ?? 'full';
  if (mode !== 'full' && mode !== 'incremental') throw new TypeError(`Unknown backup mode ${String(mode)}.`);
  const operation = 'backups.backup';
  const vm = await resolveVm(ctx, ref, operation, o.signal);
  if (mode === 'incremental') {
    throw hvkitError(
      'UNSUPPORTED',
      'Incremental backups need changed block tracking (QueryChangedDiskAreas), which this adapter does not implement yet.',
      { adapter: ADAPTER_ID, operation },
    );
  }
  const signal = o.signal;
  const progress = createProgressReporter(o.onProgress);
  const props = await readObject(ctx, vm, VM_CONFIG_PATHS, signal);
  const config = vmConfigOf(props);
  await removeBackupLeftovers(ctx, vm, operation, signal);
  const started = new Date();
  const id = newArtifactId('full', started, randomSuffix);
  const path = artifactPath(config.name, id);
  const lease = await holdVmLease(ctx, vm, id, signal);
  const written: BackupFile[] = [];
  let snapshot: MoRef | undefined;
  try {
    progress.phase('snapshot');
    snapshot = await snapshotTask(
      ctx,
      vm,
      'hvkit-backup (temporary)',
      `${BACKUP_SNAPSHOT_DESCRIPTION}${id}`,
      false,
      false,
      signal,
    );
    const vmx = parseDatastorePath(config.vmPathName);
    if (!vmx)
      throw hvkitError('PROTOCOL', `Guest ${vm.value} has no .vmx path.`, { adapter: ADAPTER_ID, operation });
    const dc = await datacenterOf(ctx, vmx.datastore, signal);
    const what = (f: DatastoreFile) => `Datastore file ${dsPath(f)}`;
    const head = async (f: DatastoreFile, maxBytes: number | undefined) =>
      headFile(
        datastoreFileUrl(f, dc.name, ctx.url),
        transferOptions(ctx, what(f), maxBytes, signal, operation),
      );
    const parts: Part[] = [];
    const vmxHead = await head(vmx, MAX_VMX_BYTES);
    if (!vmxHead.exists)
      throw hvkitError('NOT_FOUND', `${what(vmx)} (the guest's .vmx) not found.`, {
        adapter: ADAPTER_ID,
        operation,
      });
    parts.push({
      file: vmx,
      name: 'vm.vmx',
      role: 'definition',
      size: vmxHead.size ?? -1,
      maxBytes: MAX_VMX_BYTES,
      format: 'vmx',
    });
    // The NVRAM (BIOS/EFI variables) beside the .vmx, `<vmx name>.nvram`, when there is one.
    const nvram = { datastore: vmx.datastore, path: vmx.path.replace(/\.vmx$/, '.nvram') };
    const nvramHead = nvram.path === vmx.path ? { exists: false } : await head(nvram, MAX_VMX_BYTES);
    if (nvramHead.exists)
      parts.push({
        file: nvram,
        name: 'vm.nvram',
        role: 'config',
        size: nvramHead.size ?? -1,
        maxBytes: MAX_VMX_BYTES,
        format: 'nvram',
      });
    for (const disk of config.disks) {
      const parsed = parseDatastorePath(disk.fileName);
      if (!parsed) continue;
      const maxBytes = diskFileBound(disk.capacityBytes);
      const base = `disk-${deviceFileName(disk.device)}`;
      const manifestDisk = { device: disk.device, format: 'vmdk', capacityBytes: disk.capacityBytes };
      const descriptor = await head(parsed, maxBytes);
      if (!descriptor.exists)
        throw hvkitError('NOT_FOUND', `${what(parsed)} (disk ${disk.device}) not found.`, {
          adapter: ADAPTER_ID,
          operation,
        });
      parts.push({
        file: parsed,
        name: `${base}.vmdk`,
        role: 'disk',
        size: descriptor.size ?? -1,
        maxBytes,
        format: 'vmdk',
        disk: manifestDisk,
      });
      // A VMDK is a small descriptor plus, for flat disks, its data in `<name>-flat.vmdk`: copy both.
      if (parsed.path.endsWith('.vmdk')) {
        const flat = { datastore: parsed.datastore, path: parsed.path.replace(/\.vmdk$/, '-flat.vmdk') };
        const extent = await head(flat, maxBytes);
        if (extent.exists)
          parts.push({
            file: flat,
            name: `${base}-flat.vmdk`,
            role: 'disk',
            size: extent.size ?? -1,
            maxBytes,
            format: 'vmdk-flat',
            disk: { ...manifestDisk, format: 'vmdk-flat' },
          });
      }
    }
    const configBytes = new TextEncoder().encode(`${JSON.stringify(config, null, 2)}\n`);
    const sized = parts.every((p) => p.size >= 0);
    const total = configBytes.byteLength + parts.reduce((sum, p) => sum + Math.max(0, p.size), 0);
    progress.phase('transfer', sized ? { totalBytes: total } : {});
    const entries: BackupManifestFile[] = [];
    let done = 0;
    const track = (name: string) => (p: { processedBytes: number }) =>
      progress.update(done + p.processedBytes, { file: name });
    const configFile = await sink.writeFile(
      `${path}/vm-config.json`,
      (async function* () {
        yield configBytes;
      })(),
      { signal, expectedBytes: configBytes.byteLength, onProgress: track(`${path}/vm-config.json`) },
    );
    written.push(configFile);
    done += configFile.bytes;
    for (const part of parts) {
      const name = `${path}/${part.name}`;
      const download = await openDownload(
        datastoreFileUrl(part.file, dc.name, ctx.url),
        transferOptions(ctx, what(part.file), part.size >= 0 ? part.size : part.maxBytes, signal, operation),
      );
      let file: BackupFile;
      try {
        if (part.size >= 0 && download.size !== undefined && download.size !== part.size)
          throw hvkitError(
            'PROTOCOL',
            `${what(part.file)}: the server declared ${part.size} bytes, then sent ${download.size}.`,
            { adapter: ADAPTER_ID, operation, retryable: false },
          );
        file = await sink.writeFile(name, download.chunks, {
          signal,
          expectedBytes: download.size ?? (part.size >= 0 ? part.size : undefined),
          onProgress: track(name),
        });
      } finally {
        download.cancel();
      }
      written.push(file);
      done += file.bytes;
      progress.update(done, { file: name });
      const entry: BackupManifestFile = {
        name: part.name,
        role: part.role,
        bytes: file.bytes,
        sha256: file.sha256,
        format: part.format,
      };
      if (part.disk) entry.disk = part.disk;
      entries.push(entry);
    }
    entries.splice(1, 0, {
      name: 'vm-config.json',
      role: 'config',
      bytes: configFile.bytes,
      sha256: configFile.sha256,
      format: 'vim-vm-config-json',
    });
    await removeSnapshot(ctx, snapshot, signal);
    snapshot = undefined;
    const manifest: BackupManifest = {
      ...manifestHead(id, 'full', 'datastore-download'),
      guest: {
        id: vm.value,
        name: config.name,
        ...(config.instanceUuid ? { uuid: config.instanceUuid.toLowerCase() } : {}),
      },
      startedAt: started.toISOString(),
      completedAt: new Date().toISOString(),
      consistency: 'crash',
      chain: { id, position: 0 },
      files: entries,
    };
    written.push(await writeBackupManifest(sink, path, manifest, { signal }));
    progress.done();
    return {
      id,
      guest: vm.value,
      kind: 'full',
      method: 'datastore-download',
      createdAt: started,
      files: written,
      consistency: 'crash',
      path,
      chain: id,
    };
  } catch (error) {
    for (const f of written) await sink.removeFile?.(f.name, { signal: cleanupSignal() }).catch(() => {});
    if (snapshot) await removeSnapshot(ctx, snapshot, cleanupSignal()).catch(() => {});
    throw error;
  } finally {
    await lease.stop();
  }
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
    [{ type: 'HostSystem', pathSet: ['name', 'configManager.firmwareSystem'] }],
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
  const started = new Date();
  const id = newArtifactId('host-config', started, randomSuffix);
  const hostName = String(host.props.name ?? host.obj.value);
  const path = artifactPath(hostName, id);
  const progress = createProgressReporter(o.onProgress);
  const download = await openDownload(
    url,
    transferOptions(
      ctx,
      'Host configuration bundle',
      MAX_HOST_CONFIG_BYTES,
      o.signal,
      'backups.backupHostConfig',
    ),
  );
  const written: BackupFile[] = [];
  try {
    const name = `${path}/configBundle.tgz`;
    progress.phase(
      'transfer',
      download.size !== undefined ? { totalBytes: download.size, file: name } : { file: name },
    );
    let file: BackupFile;
    try {
      file = await sink.writeFile(name, download.chunks, {
        signal: o.signal,
        expectedBytes: download.size,
        onProgress: (p) => progress.update(p.processedBytes),
      });
    } finally {
      download.cancel();
    }
    written.push(file);
    const manifest: BackupManifest = {
      ...manifestHead(id, 'host-config', 'esxi-config'),
      guest: { id: host.obj.value, name: hostName },
      startedAt: started.toISOString(),
      completedAt: new Date().toISOString(),
      consistency: 'crash',
      files: [
        {
          name: 'configBundle.tgz',
          role: 'host-config',
          bytes: file.bytes,
          sha256: file.sha256,
          format: 'esxi-config-bundle',
        },
      ],
    };
    written.push(await writeBackupManifest(sink, path, manifest, { signal: o.signal }));
    progress.done();
  } catch (error) {
    for (const f of written) await sink.removeFile?.(f.name, { signal: cleanupSignal() }).catch(() => {});
    throw error;
  }
  return {
    id,
    guest: host.obj.value,
    kind: 'host-config',
    method: 'esxi-config',
    createdAt: started,
    files: written,
    consistency: 'crash',
    path,
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
    restore: (source: BackupSource, o?: RestoreOptions) => restore(ctx, source, o),
    cleanup: (ref: GuestRef, o?: BackupCleanupOptions) => cleanup(ctx, ref, o),
  };
}
