/**
 * What backups, restores and cleanup share: datastore file operations (FileManager, the datastore browser,
 * `/folder` transfers), leases (a VM's `hvkit.lease` extraConfig key, a restore folder's `hvkit-lease.json`)
 * and the datacenter of a datastore.
 */

import { randomBytes } from 'node:crypto';
import { type BackupLease, HvkitError, hvkitError, parseLease } from '@hvkit/core';
import { readObject, retrieveView, type VsphereContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { parseDatastorePath } from '../mapping/vm';
import {
  type DatastoreFile,
  type DownloadOptions,
  datastoreFileUrl,
  uploadFile,
} from '../protocol/datastore';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import { waitForTask } from '../protocol/soap/task';

/** The extraConfig key of a VM that holds the lease of a running backup or in-place restore (JSON). */
export const VM_LEASE_KEY = 'hvkit.lease';
/** The lease file in a restore's temporary folder (JSON, as core's `BackupLease` plus the guest). */
export const FOLDER_LEASE_FILE = 'hvkit-lease.json';
/** Name prefix of a restore's temporary datastore folder: `hvkit-restore-<run id>`. */
export const RESTORE_FOLDER_PREFIX = 'hvkit-restore-';
/** Description of the temporary snapshot of a backup: `hvkit-backup run=<artifact id>`. */
export const BACKUP_SNAPSHOT_DESCRIPTION = 'hvkit-backup run=';
/** The description earlier versions gave their temporary snapshot (also recognised as hvkit's). */
export const LEGACY_BACKUP_SNAPSHOT_DESCRIPTION = 'hvkit backup (temporary)';

/** Six random hex digits for ids. */
export function randomSuffix(): string {
  return randomBytes(3).toString('hex');
}

/** Bounded wait for cleanup work after a failure or an abort (the call's own signal may be aborted). */
export function cleanupSignal(): AbortSignal {
  return AbortSignal.timeout(60_000);
}

/** Transfer settings of this session: its fetch and cookie, the idle deadline, the call's signal. */
export function transferOptions(
  ctx: VsphereContext,
  what: string,
  maxBytes: number | undefined,
  signal: AbortSignal | undefined,
  operation: string,
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

/** A datacenter: its moref and name (`dcPath` of `/folder` URLs). */
export interface DatacenterInfo {
  ref: MoRef;
  name: string;
  vmFolder?: MoRef;
  datastores: MoRef[];
}

/** Every datacenter with its datastores. */
export async function datacenters(ctx: VsphereContext, signal?: AbortSignal): Promise<DatacenterInfo[]> {
  const dcs = await retrieveView(
    ctx,
    [{ type: 'Datacenter', pathSet: ['name', 'datastore', 'vmFolder'] }],
    signal,
  );
  return dcs.map((d) => ({
    ref: d.obj,
    name: String(d.props.name ?? 'ha-datacenter'),
    vmFolder: d.props.vmFolder as MoRef | undefined,
    datastores: (d.props.datastore ?? []) as MoRef[],
  }));
}

/** The datacenter holding a datastore (by moref or name), else the first one. */
export async function datacenterOf(
  ctx: VsphereContext,
  datastore: MoRef | string | undefined,
  signal?: AbortSignal,
): Promise<DatacenterInfo> {
  const dcs = await datacenters(ctx, signal);
  let found: DatacenterInfo | undefined;
  if (typeof datastore === 'string') {
    const stores = await retrieveView(ctx, [{ type: 'Datastore', pathSet: ['name'] }], signal);
    const ref = stores.find((s) => s.props.name === datastore)?.obj;
    found = dcs.find((d) => d.datastores.some((ds) => ds.value === ref?.value));
  } else if (datastore) found = dcs.find((d) => d.datastores.some((ds) => ds.value === datastore.value));
  const dc = found ?? dcs[0];
  if (!dc)
    throw hvkitError('NOT_FOUND', 'The server has no datacenter.', {
      adapter: ADAPTER_ID,
      operation: 'backups',
    });
  return dc;
}

/** Datastores by name, with their browser. */
export async function datastores(
  ctx: VsphereContext,
  signal?: AbortSignal,
): Promise<{ ref: MoRef; name: string; browser?: MoRef }[]> {
  const stores = await retrieveView(ctx, [{ type: 'Datastore', pathSet: ['name', 'browser'] }], signal);
  return stores.map((s) => ({
    ref: s.obj,
    name: String(s.props.name),
    browser: s.props.browser as MoRef | undefined,
  }));
}

function fileManager(ctx: VsphereContext): MoRef {
  const fm = ctx.session.serviceContent.fileManager as MoRef | undefined;
  if (!fm)
    throw hvkitError('UNSUPPORTED', 'The server has no FileManager.', {
      adapter: ADAPTER_ID,
      operation: 'backups',
    });
  return fm;
}

/** `[ds] path` */
export function dsPath(file: DatastoreFile): string {
  return `[${file.datastore}] ${file.path}`;
}

/** `FileManager.MakeDirectory` (parents too). An existing folder is `CONFLICT`. */
export async function makeDirectory(
  ctx: VsphereContext,
  dir: DatastoreFile,
  dc: DatacenterInfo,
  signal?: AbortSignal,
): Promise<void> {
  await ctx.session.call(
    'MakeDirectory',
    fileManager(ctx),
    { name: dsPath(dir), datacenter: dc.ref, createParentDirectories: true },
    { signal },
  );
}

/** `FileManager.DeleteDatastoreFile_Task` (a folder with everything in it). A missing file is not an error. */
export async function deleteDatastoreFile(
  ctx: VsphereContext,
  file: DatastoreFile,
  dc: DatacenterInfo,
  signal?: AbortSignal,
): Promise<void> {
  try {
    const task = await ctx.session.call<MoRef>(
      'DeleteDatastoreFile_Task',
      fileManager(ctx),
      { name: dsPath(file), datacenter: dc.ref },
      { signal },
    );
    await waitForTask(ctx.session, task, { signal });
  } catch (error) {
    // vcsim answers CannotDeleteFile for a missing file, ESXi FileNotFound.
    if (HvkitError.isInstance(error, 'NOT_FOUND')) return;
    if (HvkitError.isInstance(error) && error.backendCode === 'CannotDeleteFile') return;
    throw error;
  }
}

/** `FileManager.MoveDatastoreFile_Task` within one datacenter; `force` replaces an existing target. */
export async function moveDatastoreFile(
  ctx: VsphereContext,
  from: DatastoreFile,
  to: DatastoreFile,
  dc: DatacenterInfo,
  force: boolean,
  signal?: AbortSignal,
): Promise<void> {
  const task = await ctx.session.call<MoRef>(
    'MoveDatastoreFile_Task',
    fileManager(ctx),
    {
      sourceName: dsPath(from),
      sourceDatacenter: dc.ref,
      destinationName: dsPath(to),
      destinationDatacenter: dc.ref,
      force,
    },
    { signal },
  );
  await waitForTask(ctx.session, task, { signal });
}

/** One file found by {@link searchDatastore}: its folder (`[ds] dir`) and name. */
export interface FoundFile {
  folder: string;
  name: string;
  isFolder: boolean;
}

/**
 * Files and folders whose name matches `pattern` in `[ds] dir` (`SearchDatastore_Task`), or below it with
 * `recursive` (`SearchDatastoreSubFolders_Task`). A missing folder gives `[]`.
 */
export async function searchDatastore(
  ctx: VsphereContext,
  browser: MoRef,
  folder: string,
  pattern: string,
  recursive: boolean,
  signal?: AbortSignal,
): Promise<FoundFile[]> {
  let result: unknown;
  try {
    const task = await ctx.session.call<MoRef>(
      recursive ? 'SearchDatastoreSubFolders_Task' : 'SearchDatastore_Task',
      browser,
      {
        datastorePath: folder,
        searchSpec: { _type: 'HostDatastoreBrowserSearchSpec', matchPattern: [pattern] },
      },
      { signal },
    );
    result = await waitForTask(ctx.session, task, { signal });
  } catch (error) {
    if (HvkitError.isInstance(error, 'NOT_FOUND')) return [];
    throw error;
  }
  const lists = (Array.isArray(result) ? result : [result]) as (DataObject | undefined)[];
  const out: FoundFile[] = [];
  for (const r of lists) {
    if (!r) continue;
    const dir = String(r.folderPath ?? folder);
    for (const f of (Array.isArray(r.file) ? r.file : []) as DataObject[])
      if (typeof f.path === 'string')
        out.push({ folder: dir, name: f.path, isFolder: f._type === 'FolderFileInfo' });
  }
  return out;
}

/** The lease in a VM's extraConfig (the last `hvkit.lease` entry; an empty value means none). */
export async function readVmLease(
  ctx: VsphereContext,
  vm: MoRef,
  signal?: AbortSignal,
): Promise<{ lease?: BackupLease; raw?: string }> {
  const props = await readObject(ctx, vm, ['config.extraConfig'], signal);
  const entries = (
    Array.isArray(props['config.extraConfig']) ? props['config.extraConfig'] : []
  ) as DataObject[];
  const raw = entries.filter((e) => e.key === VM_LEASE_KEY).at(-1)?.value;
  if (typeof raw !== 'string' || raw === '') return {};
  try {
    return { lease: parseLease(raw), raw };
  } catch {
    return { raw };
  }
}

/** Stores (or, with `undefined`, clears) the lease in the VM's extraConfig through `ReconfigVM_Task`. */
export async function storeVmLease(
  ctx: VsphereContext,
  vm: MoRef,
  lease: BackupLease | undefined,
  signal?: AbortSignal,
): Promise<void> {
  const spec = {
    _type: 'VirtualMachineConfigSpec',
    extraConfig: [
      {
        _type: 'OptionValue',
        key: VM_LEASE_KEY,
        value: { _type: 'xsd:string', _value: lease ? JSON.stringify(lease) : '' },
      },
    ],
  };
  const task = await ctx.session.call<MoRef>('ReconfigVM_Task', vm, { spec }, { signal });
  await waitForTask(ctx.session, task, { signal });
}

/** The lease file of a restore folder: the lease plus what the restore was doing. */
export interface FolderLease extends BackupLease {
  /** `new` or `in-place`. */
  mode: 'new' | 'in-place';
  /** The guest of the artifact being restored (as the manifest names it). */
  guest: { id: string; name: string };
  /** The VM being created (mode `new`) or overwritten (`in-place`). */
  target: string;
}

/** Writes the lease file into a restore folder (`PUT`). */
export async function writeFolderLease(
  ctx: VsphereContext,
  folder: DatastoreFile,
  dc: DatacenterInfo,
  lease: FolderLease,
  signal?: AbortSignal,
): Promise<void> {
  const bytes = new TextEncoder().encode(`${JSON.stringify(lease)}\n`);
  const file = { datastore: folder.datastore, path: `${folder.path}/${FOLDER_LEASE_FILE}` };
  await uploadFile(
    datastoreFileUrl(file, dc.name, ctx.url),
    (async function* () {
      yield bytes;
    })(),
    bytes.byteLength,
    transferOptions(ctx, `Datastore file ${dsPath(file)}`, undefined, signal, 'backups.restore'),
  );
}

/** Reads a restore folder's lease file; `undefined` when it is missing or not a lease. */
export async function readFolderLease(
  ctx: VsphereContext,
  file: DatastoreFile,
  dc: DatacenterInfo,
  signal?: AbortSignal,
): Promise<FolderLease | undefined> {
  const url = datastoreFileUrl(file, dc.name, ctx.url);
  const headers: Record<string, string> = {};
  const cookie = ctx.session.client.cookieHeader();
  if (cookie) headers.cookie = cookie;
  const response = await ctx.fetch(url, {
    headers,
    redirect: 'manual',
    signal: signal ? AbortSignal.any([signal, AbortSignal.timeout(30_000)]) : AbortSignal.timeout(30_000),
  });
  if (response.status !== 200) {
    response.body?.cancel().catch(() => {});
    return undefined;
  }
  const text = await response.text();
  if (text.length > 8192) return undefined;
  try {
    const value = JSON.parse(text) as FolderLease;
    const lease = parseLease(value);
    if (typeof value.guest?.name !== 'string' || typeof value.guest.id !== 'string') return undefined;
    return {
      ...lease,
      mode: value.mode === 'in-place' ? 'in-place' : 'new',
      guest: value.guest,
      target: String(value.target),
    };
  } catch {
    return undefined;
  }
}

/** The folder (`{ datastore, path }`) of a datastore path's file: `[ds] a/b.vmx` → `{ ds, 'a' }`. */
export function folderOf(fileName: string): DatastoreFile | undefined {
  const p = parseDatastorePath(fileName);
  if (!p) return undefined;
  const slash = p.path.lastIndexOf('/');
  return { datastore: p.datastore, path: slash < 0 ? '' : p.path.slice(0, slash) };
}
