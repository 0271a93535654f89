/**
 * `backups.restore` and `backups.cleanup`: an artifact written by `backups.backup` is uploaded to a
 * datastore and registered as a new VM, or written over the disks of the same, powered-off VM. Every file
 * is checked against the manifest while it streams; uploads go into a temporary folder
 * (`hvkit-restore-<run>`, holding a lease file) and become visible (moved, registered, swapped in) only after
 * every file has been read to its end and verified.
 */

import {
  abortError,
  artifactPath,
  type BackupCleanupOptions,
  type BackupCleanupResult,
  type BackupFile,
  type BackupLeftover,
  type BackupManifest,
  type BackupManifestFile,
  type BackupSource,
  createProgressReporter,
  type GuestRef,
  HvkitError,
  type HvkitWarning,
  holdLease,
  hvkitError,
  leaseIsLive,
  newLease,
  type ProgressReporter,
  type RestoreOptions,
  type RestoreResult,
  readVerifiedBytes,
  readVerifiedFile,
  resolveRestoreChain,
} from '@hvkit/core';
import { readObject, resolveVm, retrieveView, type VsphereContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { diskDeviceName, isDisk, isNic, parseDatastorePath } from '../mapping/vm';
import { parseVmConfig, type VmConfig, type VmConfigDisk } from '../mapping/vm-config';
import { MAX_VMDK_DESCRIPTOR_BYTES, rewriteVmdkExtent, rewriteVmxForNewVm } from '../mapping/vmx';
import { type DatastoreFile, datastoreFileUrl, uploadFile } from '../protocol/datastore';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import { waitForTask } from '../protocol/soap/task';
import {
  cleanupSignal,
  type DatacenterInfo,
  datacenterOf,
  datastores,
  deleteDatastoreFile,
  dsPath,
  FOLDER_LEASE_FILE,
  type FolderLease,
  makeDirectory,
  moveDatastoreFile,
  RESTORE_FOLDER_PREFIX,
  randomSuffix,
  readFolderLease,
  searchDatastore,
  transferOptions,
  writeFolderLease,
} from './backup-support';
import { holdVmLease, removeBackupLeftovers } from './backups';
import { createInventory } from './inventory';

const OPERATION = 'backups.restore';
const MAX_CONFIG_BYTES = 4 * 1024 * 1024;

/** The disk files of one device in an artifact: the descriptor and, for flat disks, the extent. */
interface DiskFiles {
  device: string;
  config: VmConfigDisk;
  descriptor: BackupManifestFile;
  extent?: BackupManifestFile;
}

/** What a restore read from the artifact before touching the server. */
interface Loaded {
  path: string;
  manifest: BackupManifest;
  config: VmConfig;
  vmx: string;
  nvram?: BackupManifestFile;
  disks: DiskFiles[];
  /** Bytes of every file the restore reads (the progress total). */
  totalBytes: number;
}

function invalidArtifact(message: string, details: Record<string, unknown> = {}): HvkitError {
  return hvkitError('INVALID_ARGUMENT', message, {
    adapter: ADAPTER_ID,
    operation: OPERATION,
    details: { reason: 'artifact-invalid', ...details },
  });
}

/** Picks the artifact, reads and verifies its definition and configuration, pairs disk files with disks. */
async function load(
  source: BackupSource,
  o: RestoreOptions,
  progress: ProgressReporter,
  signal: AbortSignal | undefined,
): Promise<Loaded> {
  const chain = await resolveRestoreChain(source, {
    ...(o.artifact !== undefined ? { artifact: o.artifact } : {}),
    ...(o.guest !== undefined ? { guest: o.guest } : {}),
    ...(signal ? { signal } : {}),
  });
  if (chain.links.length > 1)
    throw hvkitError(
      'UNSUPPORTED',
      'vSphere artifacts are full backups; incremental chains cannot be restored here.',
      {
        adapter: ADAPTER_ID,
        operation: OPERATION,
      },
    );
  const { path, manifest } = chain.target;
  if (manifest.adapter !== ADAPTER_ID)
    throw invalidArtifact(`Artifact ${path} was written by ${manifest.adapter}, not by ${ADAPTER_ID}.`, {
      artifact: path,
    });
  const configFile = manifest.files.find((f) => f.role === 'config' && f.format === 'vim-vm-config-json');
  const vmxFile = manifest.files.find((f) => f.role === 'definition' && f.format === 'vmx');
  if (!configFile || !vmxFile)
    throw invalidArtifact(`Artifact ${path} has no vm-config.json or no .vmx.`, { artifact: path });
  const totalBytes = manifest.files.reduce((sum, f) => sum + f.bytes, 0);
  progress.phase('transfer', { totalBytes });
  const advance = (bytes: number) => progress.advance(bytes);
  const read = (f: BackupManifestFile) =>
    readVerifiedBytes(source, path, f, {
      maxBytes: MAX_CONFIG_BYTES,
      onBytes: advance,
      ...(signal ? { signal } : {}),
    });
  const config = parseVmConfig(await read(configFile), `${path}/${configFile.name}`);
  const vmx = new TextDecoder().decode(await read(vmxFile));
  const disks: DiskFiles[] = [];
  for (const f of manifest.files.filter((x) => x.role === 'disk')) {
    const device = f.disk?.device as string;
    const cfg = config.disks.find((d) => d.device === device);
    if (!cfg)
      throw invalidArtifact(`Disk file ${f.name} is for ${device}, which vm-config.json does not list.`, {
        file: f.name,
      });
    let entry = disks.find((d) => d.device === device);
    if (!entry) {
      entry = { device, config: cfg } as DiskFiles;
      disks.push(entry);
    }
    if (f.disk?.format === 'vmdk-flat') entry.extent = f;
    else entry.descriptor = f;
  }
  for (const d of disks)
    if (!d.descriptor)
      throw invalidArtifact(`Disk ${d.device} has no descriptor file in ${path}.`, { artifact: path });
  const nvram = manifest.files.find((f) => f.role === 'config' && f.format === 'nvram');
  return { path, manifest, config, vmx, ...(nvram ? { nvram } : {}), disks, totalBytes };
}

/** A file uploaded from the artifact: streamed and verified, or (descriptors) read, verified and rewritten. */
async function uploadDisk(
  ctx: VsphereContext,
  source: BackupSource,
  loaded: Loaded,
  disk: DiskFiles,
  folder: DatastoreFile,
  names: { descriptor: string; extent: string; extentRef: string },
  dc: DatacenterInfo,
  progress: ProgressReporter,
  signal: AbortSignal | undefined,
): Promise<void> {
  const put = async (name: string, f: BackupManifestFile, data: AsyncIterable<Uint8Array>, bytes: number) => {
    const file = { datastore: folder.datastore, path: `${folder.path}/${name}` };
    await uploadFile(
      datastoreFileUrl(file, dc.name, ctx.url),
      data,
      bytes,
      transferOptions(
        ctx,
        `Datastore file ${dsPath(file)} (from ${loaded.path}/${f.name})`,
        undefined,
        signal,
        OPERATION,
      ),
    );
  };
  const verified = (f: BackupManifestFile) =>
    readVerifiedFile(source, loaded.path, f, {
      onBytes: (n) => progress.advance(n),
      ...(signal ? { signal } : {}),
    });
  if (disk.extent) await put(names.extent, disk.extent, verified(disk.extent), disk.extent.bytes);
  const d = disk.descriptor;
  if (d.bytes <= MAX_VMDK_DESCRIPTOR_BYTES) {
    const bytes = await readVerifiedBytes(source, loaded.path, d, {
      maxBytes: MAX_VMDK_DESCRIPTOR_BYTES,
      onBytes: (n) => progress.advance(n, { file: `${loaded.path}/${d.name}` }),
      ...(signal ? { signal } : {}),
    });
    const rewritten = (disk.extent && rewriteVmdkExtent(bytes, names.extentRef)) || bytes;
    await put(
      names.descriptor,
      d,
      (async function* () {
        if (rewritten.byteLength > 0) yield rewritten;
      })(),
      rewritten.byteLength,
    );
  } else await put(names.descriptor, d, verified(d), d.bytes);
}

/** `scsi0:1` → `disk-scsi0-1`, the base name of a disk's files in the artifact and on the datastore. */
function diskBase(device: string): string {
  return `disk-${device.replace(/[^A-Za-z0-9_.-]/g, '-')}`;
}

function checkNewName(name: unknown): string {
  if (typeof name !== 'string') throw new TypeError('backups.restore: name must be a string.');
  const control = [...name].some((c) => c.charCodeAt(0) < 0x20 || c.charCodeAt(0) === 0x7f);
  if (name === '' || name.length > 80 || control || /[/\\[\]%"]/.test(name) || name.trim() !== name)
    throw hvkitError(
      'INVALID_ARGUMENT',
      `Cannot name a VM ${JSON.stringify(name.slice(0, 100))}: 1 to 80 characters without / \\ [ ] % " or control characters, no surrounding spaces.`,
      { adapter: ADAPTER_ID, operation: OPERATION },
    );
  return name;
}

/** The morefs RegisterVM needs: the original's folder and pool when they still exist, else the datacenter's. */
async function placement(
  ctx: VsphereContext,
  config: VmConfig,
  dc: DatacenterInfo,
  signal: AbortSignal | undefined,
): Promise<{ folder: MoRef; pool: MoRef }> {
  const exists = async (ref: MoRef | undefined) => {
    if (!ref) return false;
    try {
      return Object.keys(await readObject(ctx, ref, ['name'], signal)).length > 0;
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) return false;
      throw error;
    }
  };
  const folder =
    config.folder && config.folder.type === 'Folder' && (await exists(config.folder))
      ? config.folder
      : dc.vmFolder;
  let pool = config.resourcePool && (await exists(config.resourcePool)) ? config.resourcePool : undefined;
  if (!pool) pool = (await retrieveView(ctx, [{ type: 'ResourcePool', pathSet: ['name'] }], signal))[0]?.obj;
  if (!folder || !pool)
    throw hvkitError('NOT_FOUND', 'No VM folder or resource pool to register the restored VM in.', {
      adapter: ADAPTER_ID,
      operation: OPERATION,
    });
  return { folder, pool };
}

/**
 * Makes the registered VM match vm-config.json where the server did not take it from the .vmx: CPUs,
 * memory, guest OS and firmware, and every disk and NIC the registered VM lacks (real ESXi reads them
 * from the .vmx; vcsim's RegisterVM_Task ignores the .vmx content and registers a default VM).
 */
async function reconcile(
  ctx: VsphereContext,
  vm: MoRef,
  config: VmConfig,
  diskFiles: ReadonlyMap<string, string>,
  warnings: HvkitWarning[],
  signal: AbortSignal | undefined,
): Promise<void> {
  const props = await readObject(
    ctx,
    vm,
    [
      'config.hardware.device',
      'config.hardware.numCPU',
      'config.hardware.memoryMB',
      'config.guestId',
      'config.firmware',
    ],
    signal,
  );
  const devices = (
    Array.isArray(props['config.hardware.device']) ? props['config.hardware.device'] : []
  ) as DataObject[];
  const spec: Record<string, unknown> = { _type: 'VirtualMachineConfigSpec' };
  if (config.guestId && props['config.guestId'] !== config.guestId) spec.guestId = config.guestId;
  if (props['config.hardware.numCPU'] !== config.numCPU) {
    spec.numCPUs = config.numCPU;
    if (config.numCoresPerSocket) spec.numCoresPerSocket = config.numCoresPerSocket;
  }
  if (Number(props['config.hardware.memoryMB']) !== config.memoryMB) spec.memoryMB = config.memoryMB;
  if (config.firmware && props['config.firmware'] !== config.firmware) spec.firmware = config.firmware;
  const changes: DataObject[] = [];
  let tempKey = -100;
  const controllerKeys = new Map<number, number>();
  for (const disk of config.disks) {
    const fileName = diskFiles.get(disk.device);
    if (!fileName) continue;
    const present = devices.some(
      (d) => isDisk(d) && (d.backing as DataObject | undefined)?.fileName === fileName,
    );
    if (present) continue;
    const want = config.controllers.find((c) => c.key === disk.controllerKey);
    let controllerKey = controllerKeys.get(disk.controllerKey);
    if (controllerKey === undefined && want) {
      const existing = devices.find((d) => d._type === want.type && d.busNumber === want.busNumber);
      if (existing) controllerKey = Number(existing.key);
      else {
        controllerKey = tempKey--;
        const controller: DataObject = { _type: want.type, key: controllerKey, busNumber: want.busNumber };
        if (/SCSI|LsiLogic|BusLogic/i.test(want.type)) controller.sharedBus = want.sharedBus ?? 'noSharing';
        changes.push({ _type: 'VirtualDeviceConfigSpec', operation: 'add', device: controller });
      }
      controllerKeys.set(disk.controllerKey, controllerKey);
    }
    if (controllerKey === undefined) {
      warnings.push({
        type: 'compatibility',
        field: `disks.${disk.device}`,
        message: `No controller for ${disk.device}; the disk was not attached.`,
      });
      continue;
    }
    const backing: DataObject = {
      _type: 'VirtualDiskFlatVer2BackingInfo',
      fileName,
      diskMode: disk.diskMode ?? 'persistent',
    };
    if (disk.thinProvisioned !== undefined) backing.thinProvisioned = disk.thinProvisioned;
    changes.push({
      _type: 'VirtualDeviceConfigSpec',
      operation: 'add',
      device: {
        _type: 'VirtualDisk',
        key: tempKey--,
        backing,
        controllerKey,
        unitNumber: disk.unitNumber,
        capacityInKB: Math.ceil(disk.capacityBytes / 1024),
      },
    });
  }
  const nics = devices.filter(isNic).length;
  const networks = new Set(
    (await retrieveView(ctx, [{ type: 'Network', pathSet: ['name'] }], signal)).map((n) =>
      String(n.props.name),
    ),
  );
  for (const nic of config.nics.slice(nics)) {
    let backing: DataObject | undefined;
    if (nic.portgroupKey && nic.switchUuid)
      backing = {
        _type: 'VirtualEthernetCardDistributedVirtualPortBackingInfo',
        port: {
          _type: 'DistributedVirtualSwitchPortConnection',
          switchUuid: nic.switchUuid,
          portgroupKey: nic.portgroupKey,
        },
      };
    else if (nic.network && networks.has(nic.network))
      backing = { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: nic.network };
    if (!backing) {
      warnings.push({
        type: 'compatibility',
        field: `nics.${nic.device}`,
        message: `Network ${JSON.stringify(nic.network ?? nic.portgroupKey ?? '')} of ${nic.device} is not on this server; the NIC was not added.`,
      });
      continue;
    }
    changes.push({
      _type: 'VirtualDeviceConfigSpec',
      operation: 'add',
      device: { _type: nic.type, key: tempKey--, backing, addressType: 'generated' },
    });
  }
  if (changes.length > 0) spec.deviceChange = changes;
  if (Object.keys(spec).length === 1) return;
  const task = await ctx.session.call<MoRef>('ReconfigVM_Task', vm, { spec }, { signal });
  await waitForTask(ctx.session, task, { signal });
}

async function destroyVm(ctx: VsphereContext, vm: MoRef, signal: AbortSignal): Promise<void> {
  const task = await ctx.session.call<MoRef>('Destroy_Task', vm, undefined, { signal });
  await waitForTask(ctx.session, task, { signal });
}

/** A run's id: time and random, `20261207T120501Z-<6 hex>`. */
function runId(): string {
  return `${new Date()
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '')}-${randomSuffix()}`;
}

async function restoreAsNew(
  ctx: VsphereContext,
  source: BackupSource,
  loaded: Loaded,
  o: RestoreOptions,
  progress: ProgressReporter,
  signal: AbortSignal | undefined,
): Promise<RestoreResult> {
  const { manifest, config } = loaded;
  const name = checkNewName(o.name ?? `${manifest.guest.name}-restored-${manifest.id}`);
  const storage =
    o.storage ?? config.disks[0]?.datastore ?? parseDatastorePath(config.vmPathName)?.datastore ?? '';
  const store = (await datastores(ctx, signal)).find((d) => d.name === storage);
  if (!store?.browser)
    throw hvkitError('NOT_FOUND', `No datastore ${JSON.stringify(storage)} to restore to.`, {
      adapter: ADAPTER_ID,
      operation: OPERATION,
      details: { storage },
    });
  const vms = await retrieveView(ctx, [{ type: 'VirtualMachine', pathSet: ['name'] }], signal);
  if (vms.some((v) => v.props.name === name))
    throw hvkitError('CONFLICT', `A VM named ${JSON.stringify(name)} exists already.`, {
      adapter: ADAPTER_ID,
      operation: OPERATION,
    });
  if ((await searchDatastore(ctx, store.browser, `[${store.name}]`, name, false, signal)).length > 0)
    throw hvkitError('CONFLICT', `Datastore ${store.name} has a folder ${JSON.stringify(name)} already.`, {
      adapter: ADAPTER_ID,
      operation: OPERATION,
    });
  const dc = await datacenterOf(ctx, store.ref, signal);
  const where = await placement(ctx, config, dc, signal);
  const run = runId();
  const temp: DatastoreFile = { datastore: store.name, path: `${RESTORE_FOLDER_PREFIX}${run}` };
  const final: DatastoreFile = { datastore: store.name, path: name };
  const created: DatastoreFile[] = [];
  let vm: MoRef | undefined;
  let holder: { stop(): Promise<void> } | undefined;
  const warnings: HvkitWarning[] = [];
  try {
    await makeDirectory(ctx, temp, dc, signal);
    created.push(temp);
    let folder = temp;
    const lease: FolderLease = {
      ...newLease(run),
      mode: 'new',
      guest: { id: manifest.guest.id, name: manifest.guest.name },
      target: name,
    };
    await writeFolderLease(ctx, temp, dc, lease, signal);
    holder = holdLease(lease, {
      store: (l, s) => writeFolderLease(ctx, folder, dc, { ...lease, ...l }, s.signal),
      onError: (error) => ctx.logger?.warn('restore lease renewal failed', { error: String(error) }),
    });
    const diskFiles = new Map<string, string>();
    for (const disk of loaded.disks) {
      const base = diskBase(disk.device);
      const names = {
        descriptor: `${base}.vmdk`,
        extent: `${base}-flat.vmdk`,
        extentRef: `${base}-flat.vmdk`,
      };
      await uploadDisk(ctx, source, loaded, disk, temp, names, dc, progress, signal);
      diskFiles.set(disk.device, `[${store.name}] ${name}/${base}.vmdk`);
    }
    const small = async (fileName: string, bytes: Uint8Array) => {
      const file = { datastore: temp.datastore, path: `${temp.path}/${fileName}` };
      await uploadFile(
        datastoreFileUrl(file, dc.name, ctx.url),
        (async function* () {
          if (bytes.byteLength > 0) yield bytes;
        })(),
        bytes.byteLength,
        transferOptions(ctx, `Datastore file ${dsPath(file)}`, undefined, signal, OPERATION),
      );
    };
    const relative = new Map(
      [...diskFiles].map(([device]) => [device.toLowerCase(), `${diskBase(device)}.vmdk`]),
    );
    await small(
      `${name}.vmx`,
      new TextEncoder().encode(rewriteVmxForNewVm(loaded.vmx, { displayName: name, disks: relative })),
    );
    if (loaded.nvram)
      await small(
        `${name}.nvram`,
        await readVerifiedBytes(source, loaded.path, loaded.nvram, {
          maxBytes: MAX_CONFIG_BYTES,
          onBytes: (n) => progress.advance(n),
          ...(signal ? { signal } : {}),
        }),
      );
    // vcsim's RegisterVM_Task opens vmware.log in the VM's folder and fails without it; ESXi starts a new one.
    await small('vmware.log', new Uint8Array());
    progress.phase('register');
    if (signal?.aborted) throw abortError(signal, { adapter: ADAPTER_ID, operation: OPERATION });
    await moveDatastoreFile(ctx, temp, final, dc, false, signal);
    created.splice(0, created.length, final);
    folder = final;
    const task = await ctx.session.call<MoRef>(
      'RegisterVM_Task',
      where.folder,
      { path: `[${store.name}] ${name}/${name}.vmx`, name, asTemplate: false, pool: where.pool },
      { signal },
    );
    vm = await waitForTask<MoRef>(ctx.session, task, { signal });
    await reconcile(ctx, vm, config, diskFiles, warnings, signal);
    await holder.stop();
    holder = undefined;
    await deleteDatastoreFile(
      ctx,
      { datastore: final.datastore, path: `${final.path}/${FOLDER_LEASE_FILE}` },
      dc,
      signal,
    );
    const guest = await createInventory(ctx).getGuest({ id: vm.value }, signal ? { signal } : {});
    progress.done();
    return { guest, mode: 'new', artifacts: [manifest.id], files: verifiedFiles(loaded), warnings };
  } catch (error) {
    await holder?.stop();
    const s = cleanupSignal();
    if (vm) await destroyVm(ctx, vm, s).catch(() => {});
    for (const f of created) await deleteDatastoreFile(ctx, f, dc, s).catch(() => {});
    throw error;
  }
}

function verifiedFiles(loaded: Loaded): BackupFile[] {
  return loaded.manifest.files.map((f) => ({
    name: `${loaded.path}/${f.name}`,
    bytes: f.bytes,
    sha256: f.sha256,
  }));
}

/**
 * In place: the VM (the artifact's guest, by id, else by name) must exist and be powered off. Each disk's
 * files are uploaded and verified into a temporary folder on the disk's datastore, then moved over the
 * VM's disk files (`MoveDatastoreFile_Task`, force). The VM's configuration is not changed.
 */
async function restoreInPlace(
  ctx: VsphereContext,
  source: BackupSource,
  loaded: Loaded,
  progress: ProgressReporter,
  signal: AbortSignal | undefined,
): Promise<RestoreResult> {
  const { manifest } = loaded;
  let vm: MoRef;
  try {
    vm = await resolveVm(ctx, { id: manifest.guest.id }, OPERATION, signal);
    const name = (await readObject(ctx, vm, ['name'], signal)).name;
    if (name !== manifest.guest.name) throw hvkitError('NOT_FOUND', 'renamed', { adapter: ADAPTER_ID });
  } catch (error) {
    if (!HvkitError.isInstance(error, 'NOT_FOUND')) throw error;
    vm = await resolveVm(ctx, { name: manifest.guest.name }, OPERATION, signal);
  }
  const props = await readObject(ctx, vm, ['runtime.powerState', 'config.hardware.device'], signal);
  if (props['runtime.powerState'] !== 'poweredOff')
    throw hvkitError('CONFLICT', `Guest ${vm.value} must be powered off to be restored in place.`, {
      adapter: ADAPTER_ID,
      operation: OPERATION,
      details: { powerState: props['runtime.powerState'] },
    });
  const devices = (
    Array.isArray(props['config.hardware.device']) ? props['config.hardware.device'] : []
  ) as DataObject[];
  const targets = loaded.disks.map((disk) => {
    const current = devices.find((d) => isDisk(d) && diskDeviceName(d, devices) === disk.device);
    const file = parseDatastorePath(String((current?.backing as DataObject | undefined)?.fileName ?? ''));
    if (!current || !file?.path.endsWith('.vmdk'))
      throw hvkitError(
        'CONFLICT',
        `Guest ${vm.value} has no file-backed disk ${disk.device} to restore over.`,
        {
          adapter: ADAPTER_ID,
          operation: OPERATION,
        },
      );
    const capacity = Number(current.capacityInBytes ?? Number(current.capacityInKB ?? 0) * 1024);
    if (capacity !== disk.config.capacityBytes)
      throw hvkitError(
        'CONFLICT',
        `Disk ${disk.device} of ${vm.value} is ${capacity} bytes, the backup's ${disk.config.capacityBytes}.`,
        {
          adapter: ADAPTER_ID,
          operation: OPERATION,
        },
      );
    return { disk, file };
  });
  await removeBackupLeftovers(ctx, vm, OPERATION, signal);
  const run = runId();
  const lease = await holdVmLease(ctx, vm, run, signal);
  const temps = new Map<string, { folder: DatastoreFile; dc: DatacenterInfo }>();
  try {
    for (const { disk, file } of targets) {
      let temp = temps.get(file.datastore);
      if (!temp) {
        const dc = await datacenterOf(ctx, file.datastore, signal);
        const folder = { datastore: file.datastore, path: `${RESTORE_FOLDER_PREFIX}${run}` };
        await makeDirectory(ctx, folder, dc, signal);
        temp = { folder, dc };
        temps.set(file.datastore, temp);
        await writeFolderLease(
          ctx,
          folder,
          dc,
          { ...newLease(run), mode: 'in-place', guest: manifest.guest, target: vm.value },
          signal,
        );
      }
      const base = diskBase(disk.device);
      // The descriptor names its extent by file name: the one it has after the swap.
      const extentRef = file.path
        .replace(/\.vmdk$/, '-flat.vmdk')
        .split('/')
        .pop() as string;
      const names = { descriptor: `${base}.vmdk`, extent: `${base}-flat.vmdk`, extentRef };
      await uploadDisk(ctx, source, loaded, disk, temp.folder, names, temp.dc, progress, signal);
    }
    // The NVRAM is not restored in place (the VM keeps its own): count it as done.
    if (loaded.nvram) progress.advance(loaded.nvram.bytes);
    progress.phase('swap');
    if (signal?.aborted) throw abortError(signal, { adapter: ADAPTER_ID, operation: OPERATION });
    // The window: from the first move to the last, the VM's disks are partly old, partly restored.
    for (const { disk, file } of targets) {
      const temp = temps.get(file.datastore) as { folder: DatastoreFile; dc: DatacenterInfo };
      const base = diskBase(disk.device);
      if (disk.extent)
        await moveDatastoreFile(
          ctx,
          { datastore: file.datastore, path: `${temp.folder.path}/${base}-flat.vmdk` },
          { datastore: file.datastore, path: file.path.replace(/\.vmdk$/, '-flat.vmdk') },
          temp.dc,
          true,
          cleanupSignal(),
        );
      await moveDatastoreFile(
        ctx,
        { datastore: file.datastore, path: `${temp.folder.path}/${base}.vmdk` },
        file,
        temp.dc,
        true,
        cleanupSignal(),
      );
    }
    for (const t of temps.values()) await deleteDatastoreFile(ctx, t.folder, t.dc, cleanupSignal());
    const guest = await createInventory(ctx).getGuest({ id: vm.value }, signal ? { signal } : {});
    progress.done();
    return { guest, mode: 'in-place', artifacts: [manifest.id], files: verifiedFiles(loaded), warnings: [] };
  } catch (error) {
    for (const t of temps.values())
      await deleteDatastoreFile(ctx, t.folder, t.dc, cleanupSignal()).catch(() => {});
    throw error;
  } finally {
    await lease.stop();
  }
}

/** `backups.restore`. */
export async function restore(
  ctx: VsphereContext,
  source: BackupSource,
  o: RestoreOptions = {},
): Promise<RestoreResult> {
  if (typeof source !== 'object' || source === null || typeof source.readFile !== 'function')
    throw new TypeError('backups.restore: source must be a BackupSource.');
  if (typeof o !== 'object' || o === null) throw new TypeError('backups.restore: options must be an object.');
  const mode = o.mode ?? 'new';
  if (mode !== 'new' && mode !== 'in-place')
    throw new TypeError(`backups.restore: unknown mode ${String(mode)}.`);
  if (o.storage !== undefined && (typeof o.storage !== 'string' || o.storage === ''))
    throw new TypeError('backups.restore: storage must be a non-empty string.');
  if (o.name !== undefined) checkNewName(o.name);
  const signal =
    o.timeoutMs !== undefined
      ? AbortSignal.any([...(o.signal ? [o.signal] : []), AbortSignal.timeout(o.timeoutMs)])
      : o.signal;
  if (signal?.aborted) throw abortError(signal, { adapter: ADAPTER_ID, operation: OPERATION });
  const progress = createProgressReporter(o.onProgress);
  const loaded = await load(source, o, progress, signal);
  return mode === 'in-place'
    ? restoreInPlace(ctx, source, loaded, progress, signal)
    : restoreAsNew(ctx, source, loaded, o, progress, signal);
}

/**
 * `backups.cleanup`: removes what crashed runs of the VM left: hvkit's temporary backup snapshots, an
 * expired `hvkit.lease`, restore folders (`hvkit-restore-*` with an expired `hvkit-lease.json`) whose
 * artifact guest or target is this VM, and with `sink` the VM's incomplete artifacts. A live lease keeps
 * what it holds.
 */
export async function cleanup(
  ctx: VsphereContext,
  ref: GuestRef,
  o: BackupCleanupOptions = {},
): Promise<BackupCleanupResult> {
  if (typeof o !== 'object' || o === null) throw new TypeError('backups.cleanup: options must be an object.');
  if (o.sink !== undefined && typeof o.sink?.writeFile !== 'function')
    throw new TypeError('backups.cleanup: sink must be a BackupSink.');
  const operation = 'backups.cleanup';
  const signal = o.signal;
  if (signal?.aborted) throw abortError(signal, { adapter: ADAPTER_ID, operation });
  const vm = await resolveVm(ctx, ref, operation, signal);
  const name = String((await readObject(ctx, vm, ['name'], signal)).name ?? vm.value);
  const result: BackupCleanupResult = { removed: [], kept: [] };
  await removeBackupLeftovers(ctx, vm, operation, signal, result);
  const registered = new Set(
    (await retrieveView(ctx, [{ type: 'VirtualMachine', pathSet: ['config.files.vmPathName'] }], signal)).map(
      (v) => String(v.props['config.files.vmPathName'] ?? ''),
    ),
  );
  for (const store of await datastores(ctx, signal)) {
    if (!store.browser) continue;
    const found = await searchDatastore(
      ctx,
      store.browser,
      `[${store.name}]`,
      FOLDER_LEASE_FILE,
      true,
      signal,
    );
    for (const f of found) {
      const folder = parseDatastorePath(f.folder);
      if (!folder) continue;
      // ESXi writes `[ds] dir/`, vcsim `[ds]/dir`.
      const dir = { datastore: store.name, path: folder.path.replace(/^\/+|\/+$/g, '') };
      if (dir.path === '') continue;
      const dc = await datacenterOf(ctx, store.ref, signal);
      const lease = await readFolderLease(
        ctx,
        { datastore: store.name, path: `${dir.path}/${FOLDER_LEASE_FILE}` },
        dc,
        signal,
      );
      if (!lease) continue;
      const mine =
        lease.guest.id === vm.value ||
        lease.guest.name === name ||
        lease.target === name ||
        lease.target === vm.value;
      if (!mine) continue;
      const item: BackupLeftover = { kind: 'file', name: dsPath(dir), run: lease.run };
      if (leaseIsLive(lease)) {
        result.kept.push(item);
        continue;
      }
      const holdsVm = [...registered].some((p) => p.startsWith(`[${store.name}] ${dir.path}/`));
      if (holdsVm) {
        await deleteDatastoreFile(
          ctx,
          { datastore: store.name, path: `${dir.path}/${FOLDER_LEASE_FILE}` },
          dc,
          signal,
        );
        result.removed.push({ kind: 'lease', name: `${dsPath(dir)}/${FOLDER_LEASE_FILE}`, run: lease.run });
      } else {
        await deleteDatastoreFile(ctx, dir, dc, signal);
        result.removed.push(item);
      }
    }
  }
  if (o.sink?.removeIncomplete) {
    const folder = artifactPath(name, 'x').split('/')[0] as string;
    const keep = result.kept.map((k) => k.run).filter((r): r is string => r !== undefined);
    for (const path of await o.sink.removeIncomplete(folder, keep, signal ? { signal } : {}))
      result.removed.push({ kind: 'file', name: path });
  }
  return result;
}
