/**
 * The vmware-vsphere adapter: spec v1 over the vim25 SOAP client (inventory, limits, snapshots and disk
 * backups) plus the vAPI REST tagging endpoints (labels).
 */

import {
  type BackupArtifact,
  type BackupFile,
  type BackupOptions,
  type BackupSink,
  type BackupsCapability,
  type CallOptions,
  type CreateSnapshotOptions,
  checkOptionKeys,
  checkTimeoutMs,
  type EventsCapability,
  type FetchLike,
  formatGuestRef,
  type Guest,
  type GuestRef,
  type Host,
  HvkitError,
  type HypervisorAdapterV1,
  hvkitError,
  type InventoryCapability,
  type LabelsCapability,
  type LimitsCapability,
  type LimitsGetOptions,
  type LimitsHostFacts,
  type LimitsSetOptions,
  type LimitsSetResult,
  type Logger,
  type Network,
  normalizeLimits,
  type OptionKeySpec,
  type OptionKeysOf,
  type ResourceLimits,
  redactError,
  resolveGuestRef,
  type SecurityLabel,
  type Snapshot,
  type StoragePool,
  type StorageVolume,
  type SubscribeOptions,
  type SupportsManifest,
  validateLimits,
  wrapAdapter,
} from '@hvkit/core';
import {
  DEFAULT_BACKUP_IDLE_TIMEOUT_MS,
  type DownloadOptions,
  downloadExists,
  onSessionOrigin,
  openDownload,
} from './download';
import { vmEvents } from './events';
import { mapDatastore, volumesOnDatastore } from './mapping/datastore';
import { HOST_PATHS, mapHost } from './mapping/host';
import { customAttributeTags, SECURITY_PATHS, securityFlags, tagLabel } from './mapping/labels';
import { buildLimitsSpec, HOST_LIMIT_PATHS, LIMIT_PATHS, mapLimits } from './mapping/limits';
import { mapNetworks, NETWORK_PROPSET } from './mapping/network';
import { flattenSnapshots, type SnapshotNode } from './mapping/snapshot';
import {
  diskCapacityBytes,
  emptyVlanIndex,
  indexDistributedPortgroup,
  indexHostPortgroups,
  isDisk,
  mapGuest,
  parseDatastorePath,
  type VlanIndex,
  VM_PATHS,
} from './mapping/vm';
import { checkVimUrlSecurity } from './soap/client';
import {
  createContainerView,
  destroyView,
  type ObjectProperties,
  type PropertySpecInput,
  retrieveProperties,
} from './soap/property-collector';
import type { DataObject, MoRef } from './soap/schema';
import { connectVim, type VimSession } from './soap/session';
import { waitForTask } from './soap/task';
import { createVimFetch, type VimTlsOptions } from './soap/tls';
import { VapiTagging } from './vapi';

/** The adapter id. */
export const ADAPTER_ID = 'vmware-vsphere';

/** What this adapter supports (also `adapter.supports`). */
export const VSPHERE_SUPPORTS = {
  inventory: { host: true, guests: true, networks: true, storage: true, vlans: true },
  limits: {
    applies: 'live',
    modes: ['both'],
    cpu: { weight: true, maxCores: true, reservationMHz: true },
    memory: { maxBytes: true, softBytes: false, minBytes: true, swapMaxBytes: false },
    disks: { readBytesPerSec: false, writeBytesPerSec: false, readIops: true, writeIops: true },
    network: {
      inboundAverage: false,
      inboundPeak: false,
      inboundBurst: false,
      outboundAverage: true,
      outboundPeak: false,
      outboundBurst: false,
    },
    pids: false,
  },
  labels: { models: ['tag'], set: true, hostModels: true },
  backups: {
    snapshots: true,
    memorySnapshots: true,
    full: true,
    incremental: false,
    hostConfig: true,
    methods: ['datastore-download', 'esxi-config'],
  },
  events: { lifecycle: true },
} as const satisfies SupportsManifest;

/** Options of {@link connect}. */
export interface VsphereConnectOptions {
  /**
   * vCenter or ESXi URL: `https://vc.example` or `https://vc.example/sdk`. A plain `http://` URL needs
   * `insecureHttp: true`.
   */
  url: string | URL;
  username: string;
  password: string;
  /**
   * TLS: CA certificates, a SHA-1 thumbprint (`thumbprintMode` `'fallback'` as govc, or `'exclusive'`), or
   * the named opt-out `insecureSkipVerify`. Refused (`INVALID_ARGUMENT`) with an `http://` URL.
   */
  tls?: VimTlsOptions;
  /**
   * The named opt-out for a plain `http://` URL (labs, simulators, recorded replays): the password, the
   * session cookie and all data then travel unencrypted. Without it an `http://` URL is `INVALID_ARGUMENT`.
   */
  insecureHttp?: boolean;
  /** A fetch to use instead of the adapter's own (recording, replay, a proxy). `tls` is then ignored. */
  fetch?: FetchLike;
  /** Default timeout of one call to the server, ms (default 60 000). */
  timeoutMs?: number;
  /** Tagging: `auto` (vAPI REST when the server has it, else custom attributes), `rest`, `custom-attributes`. */
  labels?: 'auto' | 'rest' | 'custom-attributes';
  /** Session keep-alive interval, ms, or false (default 10 min). */
  keepAliveMs?: number | false;
  /**
   * Backup downloads (disks, the host configuration bundle) fail with `TIMEOUT` when the server sends no
   * response or no data for this long, after resuming a few times (default 60 000 ms; `Infinity` turns the
   * idle deadline off; a call's own `signal`/`timeoutMs` still apply).
   */
  backupIdleTimeoutMs?: number;
  logger?: Logger;
  signal?: AbortSignal;
}

/**
 * The adapter {@link connect} returns: spec v1 with every capability object present (vSphere has them all),
 * so `hv.inventory.listGuests()` needs no check, and `supports` typed as {@link VSPHERE_SUPPORTS}.
 */
export interface VmwareVsphereAdapter extends HypervisorAdapterV1<'vmware-vsphere'> {
  readonly supports: typeof VSPHERE_SUPPORTS;
  readonly inventory: InventoryCapability;
  readonly limits: LimitsCapability;
  readonly labels: LabelsCapability;
  readonly backups: BackupsCapability;
  readonly events: EventsCapability;
}

/**
 * Every key {@link connect} reads (`tls` too); any other key is a TypeError.
 */
const CONNECT_OPTION_KEYS = {
  url: true,
  username: true,
  password: true,
  tls: {
    ca: true,
    thumbprint: true,
    insecureSkipVerify: true,
    servername: true,
    thumbprintMode: true,
  } satisfies OptionKeysOf<VimTlsOptions>,
  fetch: true,
  timeoutMs: true,
  labels: true,
  keepAliveMs: true,
  logger: true,
  signal: true,
  insecureHttp: true,
  backupIdleTimeoutMs: true,
} as const satisfies { readonly [K in keyof VsphereConnectOptions]-?: true | OptionKeySpec };

type Supports = typeof VSPHERE_SUPPORTS;

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

function notFound(ref: GuestRef, operation: string): HvkitError {
  return hvkitError('NOT_FOUND', `No guest matches ${formatGuestRef(ref)}.`, {
    adapter: ADAPTER_ID,
    operation,
  });
}

function propsOf(list: ObjectProperties[], type: string): ObjectProperties[] {
  return list.filter((o) => o.obj.type === type);
}

/**
 * Connects to vCenter or ESXi and returns a spec v1 adapter (wrapped by core's `wrapAdapter`).
 *
 * Guests: `id` = the VM's managed object id (`vm-42`), `uuid` = `config.instanceUuid` lower-cased (falls
 * back to the BIOS `config.uuid`), `name` = the VM name.
 *
 * @example
 * const adapter = await connect({ url: 'https://vc.example', username, password, tls: { ca } });
 * for (const g of await adapter.inventory.listGuests()) console.log(g.name);
 * await adapter.close();
 *
 * @throws HvkitError `AUTH_FAILED`, `CONNECTION_LOST`, `TIMEOUT`, `PROTOCOL`, `INVALID_ARGUMENT` (also for an
 *   `http://` URL without `insecureHttp: true`, and for `tls` settings with an `http://` URL); none holds the
 *   password, even when the server's fault echoes it.
 * @throws TypeError for options of the wrong type (a bad `backupIdleTimeoutMs`, `insecureHttp`, ...), and for
 *   unknown option keys (also inside `tls`).
 */
export async function connect(options: VsphereConnectOptions): Promise<VmwareVsphereAdapter> {
  if (typeof options !== 'object' || options === null) throw new TypeError('connect needs options.');
  checkOptionKeys(options, CONNECT_OPTION_KEYS, 'vmware-vsphere connect');
  if (typeof options.username !== 'string' || typeof options.password !== 'string')
    throw new TypeError('connect needs a username and a password (strings).');
  let url: URL;
  try {
    url = new URL(String(options.url));
  } catch {
    throw hvkitError('INVALID_ARGUMENT', `Not a URL: ${String(options.url).slice(0, 200)}`, {
      adapter: ADAPTER_ID,
      operation: 'connect',
    });
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/sdk';
  checkVimUrlSecurity(url, options, { operation: 'connect' });
  if (options.backupIdleTimeoutMs !== undefined)
    checkTimeoutMs(options.backupIdleTimeoutMs, 'backupIdleTimeoutMs');
  const ownFetch = options.fetch === undefined ? createVimFetch({ tls: options.tls }) : undefined;
  const fetch: FetchLike = options.fetch ?? (ownFetch as FetchLike);
  let session: VimSession;
  try {
    session = await connectVim(
      {
        url,
        fetch,
        insecureHttp: options.insecureHttp,
        tls: options.tls,
        username: options.username,
        password: options.password,
        timeoutMs: options.timeoutMs,
        keepAliveMs: options.keepAliveMs,
        logger: options.logger,
      },
      { signal: options.signal, timeoutMs: options.timeoutMs },
    );
  } catch (error) {
    await ownFetch?.close().catch(() => {});
    // A login fault may echo the password (plain or XML-escaped); connect() errors are not wrapped.
    throw redactError(error, [options.password]);
  }
  const core = new VsphereAdapter(session, fetch, url, options, ownFetch);
  return wrapAdapter(core, {
    logger: options.logger,
    secrets: [options.password],
  });
}

/** The unwrapped adapter; use {@link connect}. */
class VsphereAdapter implements VmwareVsphereAdapter {
  readonly specificationVersion = 'v1' as const;
  readonly adapter = ADAPTER_ID;
  readonly supports: Supports = VSPHERE_SUPPORTS;
  readonly inventory;
  readonly limits;
  readonly labels;
  readonly backups;
  readonly events;
  readonly #closing = new AbortController();
  readonly #session: VimSession;
  readonly #fetch: FetchLike;
  readonly #url: URL;
  readonly #ownFetch: { close(): Promise<void> } | undefined;
  readonly #tagging: VapiTagging | undefined;
  readonly #backupIdleTimeoutMs: number;
  #closed = false;

  constructor(
    session: VimSession,
    fetch: FetchLike,
    url: URL,
    options: VsphereConnectOptions,
    ownFetch: { close(): Promise<void> } | undefined,
  ) {
    this.#session = session;
    this.#fetch = fetch;
    this.#url = url;
    this.#ownFetch = ownFetch;
    this.#backupIdleTimeoutMs = options.backupIdleTimeoutMs ?? DEFAULT_BACKUP_IDLE_TIMEOUT_MS;
    const mode = options.labels ?? 'auto';
    this.#tagging =
      mode === 'custom-attributes' || !this.isVcenter
        ? undefined
        : new VapiTagging({
            origin: url.origin,
            fetch,
            username: options.username,
            password: options.password,
            timeoutMs: options.timeoutMs,
          });
    this.inventory = {
      host: (o?: CallOptions) => this.#host(o),
      listGuests: (o?: CallOptions) => this.#listGuests(o),
      getGuest: (ref: GuestRef, o?: CallOptions) => this.#getGuest(ref, o),
      listNetworks: (o?: CallOptions) => this.#listNetworks(o),
      listStoragePools: (o?: CallOptions) => this.#listStoragePools(o),
      listStorageVolumes: (poolId: string, o?: CallOptions) => this.#listStorageVolumes(poolId, o),
    };
    this.limits = {
      get: (ref: GuestRef, o?: LimitsGetOptions) => this.#getLimits(ref, o),
      set: (ref: GuestRef, l: ResourceLimits, o?: LimitsSetOptions) => this.#setLimits(ref, l, o),
    };
    this.labels = {
      get: (ref: GuestRef, o?: CallOptions) => this.#getLabels(ref, o),
      hostModels: async (_o?: CallOptions) => [{ model: 'tag' as const }],
      set: (ref: GuestRef, label: SecurityLabel, o?: CallOptions) => this.#setLabel(ref, label, o),
    };
    this.events = {
      subscribe: (o: SubscribeOptions = {}) => vmEvents(this.#session, o.signal, this.#closing.signal),
    };
    this.backups = {
      listSnapshots: (ref: GuestRef, o?: CallOptions) => this.#listSnapshots(ref, o),
      createSnapshot: (ref: GuestRef, o?: CreateSnapshotOptions) => this.#createSnapshot(ref, o),
      deleteSnapshot: (ref: GuestRef, id: string, o?: CallOptions) => this.#deleteSnapshot(ref, id, o),
      revertSnapshot: (ref: GuestRef, id: string, o?: CallOptions) => this.#revertSnapshot(ref, id, o),
      backup: (ref: GuestRef, sink: BackupSink, o?: BackupOptions) => this.#backup(ref, sink, o),
      backupHostConfig: (sink: BackupSink, o?: BackupOptions) => this.#backupHostConfig(sink, o),
    };
  }

  /** True when connected to vCenter (`about.apiType` VirtualCenter), false for an ESXi host. */
  get isVcenter(): boolean {
    return this.#session.serviceContent.about?.apiType === 'VirtualCenter';
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#closing.abort();
    await this.#tagging?.logout();
    await this.#session.close();
    await this.#ownFetch?.close().catch(() => {});
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  // ---- reading -------------------------------------------------------------------------------------

  /** Reads several types through one ContainerView in one RetrievePropertiesEx. */
  async #retrieveView(propSet: PropertySpecInput[], signal?: AbortSignal): Promise<ObjectProperties[]> {
    const session = this.#session;
    const types = [...new Set(propSet.map((p) => p.type))];
    const view = await createContainerView(session, { types }, { signal });
    try {
      return await retrieveProperties(
        session,
        [
          {
            propSet,
            objectSet: [
              {
                obj: view,
                skip: true,
                selectSet: [{ _type: 'TraversalSpec', type: 'ContainerView', path: 'view' }],
              },
            ],
          },
        ],
        { signal },
      );
    } finally {
      await destroyView(session, view, { timeoutMs: 10_000 }).catch(() => {});
    }
  }

  async #readObject(
    obj: MoRef,
    paths: readonly string[],
    signal?: AbortSignal,
  ): Promise<Record<string, unknown>> {
    const [content] = await retrieveProperties(
      this.#session,
      [{ propSet: [{ type: obj.type, pathSet: [...paths] }], objectSet: [{ obj }] }],
      { signal },
    );
    return content?.props ?? {};
  }

  /** Finds the VM a reference names. */
  async #resolve(ref: GuestRef, operation: string, signal?: AbortSignal): Promise<MoRef> {
    const { by, value } = resolveGuestRef(ref);
    if (by === 'id') {
      // An id is a moref: one RetrievePropertiesEx tells whether it exists.
      const obj = { type: 'VirtualMachine', value };
      try {
        const [found] = await retrieveProperties(
          this.#session,
          [{ propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }], objectSet: [{ obj }] }],
          { signal },
        );
        if (found?.obj.type === 'VirtualMachine' && found.obj.value === value) return found.obj;
      } catch (error) {
        if (!HvkitError.isInstance(error, 'NOT_FOUND')) throw error;
      }
      throw notFound(ref, operation);
    }
    const vms = await this.#retrieveView(
      [{ type: 'VirtualMachine', pathSet: ['name', 'config.instanceUuid', 'config.uuid'] }],
      signal,
    );
    const matches = vms.filter((o) => {
      if (by === 'name') return o.props.name === value;
      const ids = [o.props['config.instanceUuid'], o.props['config.uuid']].map((u) =>
        String(u ?? '').toLowerCase(),
      );
      const instance = ids[0];
      // instanceUuid first: a BIOS uuid only counts when no VM has that instance uuid.
      return (
        instance === value ||
        (ids[1] === value &&
          !vms.some((v) => String(v.props['config.instanceUuid'] ?? '').toLowerCase() === value))
      );
    });
    if (matches.length === 0) throw notFound(ref, operation);
    if (matches.length > 1) {
      throw hvkitError('CONFLICT', `${matches.length} guests match ${formatGuestRef(ref)}; use the id.`, {
        adapter: ADAPTER_ID,
        operation,
        details: { ids: matches.map((m) => m.obj.value) },
      });
    }
    return (matches[0] as ObjectProperties).obj;
  }

  async #vlanIndex(signal?: AbortSignal): Promise<VlanIndex> {
    const index = emptyVlanIndex();
    const list = await this.#retrieveView(
      [
        { type: 'HostSystem', pathSet: ['config.network.portgroup'] },
        { type: 'DistributedVirtualPortgroup', pathSet: ['key', 'name', 'config.defaultPortConfig'] },
      ],
      signal,
    );
    for (const o of list) {
      if (o.obj.type === 'HostSystem') indexHostPortgroups(index, o.props['config.network.portgroup']);
      else
        indexDistributedPortgroup(index, {
          key: o.props.key,
          name: o.props.name,
          defaultPortConfig: o.props['config.defaultPortConfig'],
        });
    }
    return index;
  }

  async #host(o: CallOptions = {}): Promise<Host> {
    const hosts = propsOf(
      await this.#retrieveView([{ type: 'HostSystem', pathSet: [...HOST_PATHS] }], o.signal),
      'HostSystem',
    );
    return mapHost(hosts, this.#session.serviceContent.about, this.#url.hostname);
  }

  async #listGuests(o: CallOptions = {}): Promise<Guest[]> {
    const list = await this.#retrieveView(
      [
        { type: 'VirtualMachine', pathSet: [...VM_PATHS] },
        { type: 'HostSystem', pathSet: ['config.network.portgroup'] },
        { type: 'DistributedVirtualPortgroup', pathSet: ['key', 'name', 'config.defaultPortConfig'] },
      ],
      o.signal,
    );
    const index = emptyVlanIndex();
    for (const item of list) {
      if (item.obj.type === 'HostSystem') indexHostPortgroups(index, item.props['config.network.portgroup']);
      else if (item.obj.type === 'DistributedVirtualPortgroup')
        indexDistributedPortgroup(index, {
          key: item.props.key,
          name: item.props.name,
          defaultPortConfig: item.props['config.defaultPortConfig'],
        });
    }
    return propsOf(list, 'VirtualMachine')
      .map((vm) => mapGuest(vm.obj, vm.props, index))
      .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  async #getGuest(ref: GuestRef, o: CallOptions = {}): Promise<Guest> {
    const vm = await this.#resolve(ref, 'inventory.getGuest', o.signal);
    const props = await this.#readObject(vm, VM_PATHS, o.signal);
    return mapGuest(vm, props, await this.#vlanIndex(o.signal));
  }

  async #listNetworks(o: CallOptions = {}): Promise<Network[]> {
    return mapNetworks(await this.#retrieveView(NETWORK_PROPSET, o.signal));
  }

  async #listStoragePools(o: CallOptions = {}): Promise<StoragePool[]> {
    const list = await this.#retrieveView([{ type: 'Datastore', pathSet: ['name', 'summary'] }], o.signal);
    return list.map(mapDatastore).sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
  }

  /** The virtual disks of VMs on a datastore (a datastore's VMDKs as volumes). */
  async #listStorageVolumes(poolId: string, o: CallOptions = {}): Promise<StorageVolume[]> {
    if (typeof poolId !== 'string' || poolId === '')
      throw hvkitError('INVALID_ARGUMENT', 'poolId must be a non-empty string.', {
        adapter: ADAPTER_ID,
        operation: 'inventory.listStorageVolumes',
      });
    const list = await this.#retrieveView(
      [
        { type: 'Datastore', pathSet: ['name'] },
        { type: 'VirtualMachine', pathSet: ['config.hardware.device'] },
      ],
      o.signal,
    );
    if (!list.some((d) => d.obj.type === 'Datastore' && d.obj.value === poolId))
      throw hvkitError('NOT_FOUND', `No datastore ${JSON.stringify(poolId.slice(0, 200))}.`, {
        adapter: ADAPTER_ID,
        operation: 'inventory.listStorageVolumes',
      });
    return volumesOnDatastore(propsOf(list, 'VirtualMachine'), poolId);
  }

  // ---- limits --------------------------------------------------------------------------------------

  /**
   * The VM's host: its core speed (for `maxCores` ↔ MHz) and what bounds limits, its logical CPUs
   * (`numCpuThreads`) and memory (`memorySize`).
   */
  async #hostFacts(host: unknown, signal?: AbortSignal): Promise<{ mhz?: number; bounds: LimitsHostFacts }> {
    const ref = host as MoRef | undefined;
    if (!ref?.value) return { bounds: {} };
    const props = await this.#readObject(ref, HOST_LIMIT_PATHS, signal);
    const positive = (v: unknown) => {
      const n = typeof v === 'bigint' ? Number(v) : v;
      return typeof n === 'number' && Number.isSafeInteger(n) && n > 0 ? n : undefined;
    };
    const mhz = positive(props['summary.hardware.cpuMhz']);
    const logicalCpus = positive(props['summary.hardware.numCpuThreads']);
    const memoryBytes = positive(props['summary.hardware.memorySize']);
    return {
      ...(mhz !== undefined ? { mhz } : {}),
      bounds: {
        ...(logicalCpus !== undefined ? { logicalCpus } : {}),
        ...(memoryBytes !== undefined ? { memoryBytes } : {}),
      },
    };
  }

  /** Limits as reported: a field at its default (normal shares, no reservation) is `null`. */
  async #getLimits(ref: GuestRef, o: LimitsGetOptions = {}): Promise<ResourceLimits> {
    const vm = await this.#resolve(ref, 'limits.get', o.signal);
    const props = await this.#readObject(vm, LIMIT_PATHS, o.signal);
    const { mhz } = await this.#hostFacts(props['runtime.host'], o.signal);
    return normalizeLimits(mapLimits(props, mhz));
  }

  async #setLimits(ref: GuestRef, patch: ResourceLimits, o: LimitsSetOptions = {}): Promise<LimitsSetResult> {
    validateLimits(patch, VSPHERE_SUPPORTS.limits, { adapter: ADAPTER_ID });
    if (o.apply !== undefined && o.apply !== 'both') {
      if (o.apply !== 'live' && o.apply !== 'persistent')
        throw new TypeError(`Unknown apply mode ${String(o.apply)}.`);
      throw hvkitError(
        'UNSUPPORTED',
        `vSphere changes a VM's allocation live and in its configuration at once; apply '${o.apply}' is not possible (use 'both').`,
        { adapter: ADAPTER_ID, operation: 'limits.set' },
      );
    }
    const vm = await this.#resolve(ref, 'limits.set', o.signal);
    const props = await this.#readObject(vm, LIMIT_PATHS, o.signal);
    const current = mapLimits(props, undefined);
    const { mhz, bounds } = await this.#hostFacts(props['runtime.host'], o.signal);
    validateLimits(patch, VSPHERE_SUPPORTS.limits, {
      adapter: ADAPTER_ID,
      devices: {
        disks: (current.disks ?? []).map((d) => d.device),
        nics: (current.nics ?? []).map((n) => n.device),
      },
      host: bounds,
    });
    const { spec, warnings } = buildLimitsSpec(patch, props, mhz);
    if (spec) {
      const task = await this.#session.call<MoRef>('ReconfigVM_Task', vm, { spec }, { signal: o.signal });
      await waitForTask(this.#session, task, { signal: o.signal });
    }
    const after = await this.#readObject(vm, LIMIT_PATHS, o.signal);
    return { limits: normalizeLimits(mapLimits(after, mhz)), appliesAt: 'live', warnings };
  }

  // ---- labels --------------------------------------------------------------------------------------

  async #useRest(signal?: AbortSignal): Promise<boolean> {
    return this.#tagging !== undefined && (await this.#tagging.available(signal));
  }

  async #getLabels(ref: GuestRef, o: CallOptions = {}): Promise<SecurityLabel[]> {
    const vm = await this.#resolve(ref, 'labels.get', o.signal);
    const props = await this.#readObject(vm, [...SECURITY_PATHS, 'customValue', 'availableField'], o.signal);
    const flags = securityFlags(props);
    let tags: { category?: string; name: string }[];
    if (await this.#useRest(o.signal)) {
      tags = (
        await (this.#tagging as VapiTagging).attachedTags({ type: 'VirtualMachine', id: vm.value }, o.signal)
      ).map((t) => (t.category ? { category: t.category, name: t.name } : { name: t.name }));
    } else {
      tags = customAttributeTags(props.customValue, props.availableField);
    }
    return [tagLabel(tags, flags)];
  }

  async #setLabel(ref: GuestRef, label: SecurityLabel, o: CallOptions = {}): Promise<SecurityLabel[]> {
    if (typeof label !== 'object' || label === null) throw new TypeError('label must be an object.');
    if (label.model !== 'tag') {
      throw hvkitError(
        'UNSUPPORTED',
        `vSphere labels are tags (model 'tag'), not ${JSON.stringify(label.model)}.`,
        {
          adapter: ADAPTER_ID,
          operation: 'labels.set',
        },
      );
    }
    const wanted = label.tags ?? [];
    for (const t of wanted) {
      if (
        typeof t?.name !== 'string' ||
        t.name === '' ||
        (t.category !== undefined && typeof t.category !== 'string')
      )
        throw hvkitError('INVALID_ARGUMENT', 'Each tag needs a non-empty name (and an optional category).', {
          adapter: ADAPTER_ID,
          operation: 'labels.set',
        });
    }
    const vm = await this.#resolve(ref, 'labels.set', o.signal);
    const key = (t: { category?: string; name: string }) => `${t.category ?? ''}\u0000${t.name}`;
    if (await this.#useRest(o.signal)) {
      const tagging = this.#tagging as VapiTagging;
      const object = { type: 'VirtualMachine', id: vm.value };
      const attached = await tagging.attachedTags(object, o.signal);
      const want = new Set(wanted.map(key));
      for (const t of attached) {
        if (!want.has(key({ category: t.category, name: t.name })))
          await tagging.setAttached(t.id, object, false, o.signal);
      }
      const have = new Set(attached.map((t) => key({ category: t.category, name: t.name })));
      for (const t of wanted) {
        if (have.has(key(t))) continue;
        const id = await tagging.ensureTag(t.category ?? 'hvkit', t.name, o.signal);
        await tagging.setAttached(id, object, true, o.signal);
      }
    } else {
      await this.#setCustomAttributes(vm, wanted, o.signal);
    }
    return this.#getLabels(vm.value, o);
  }

  /** Custom attributes as the tag fallback: one attribute per category (`hvkit` when none), value = tag name. */
  async #setCustomAttributes(
    vm: MoRef,
    tags: { category?: string; name: string }[],
    signal?: AbortSignal,
  ): Promise<void> {
    const props = await this.#readObject(vm, ['customValue', 'availableField'], signal);
    const fields = new Map<string, number>();
    for (const f of (props.availableField ?? []) as DataObject[])
      if (typeof f.name === 'string' && typeof f.key === 'number') fields.set(f.name, f.key);
    const target = new Map<string, string>();
    for (const t of tags) target.set(t.category ?? 'hvkit', t.name);
    for (const [name, key] of fields) {
      const has = ((props.customValue ?? []) as DataObject[]).some((v) => v.key === key && v.value !== '');
      if (has && !target.has(name))
        await this.#session.call('setCustomValue', vm, { key: name, value: '' }, { signal });
    }
    for (const [name, value] of target) {
      await this.#session.call('setCustomValue', vm, { key: name, value }, { signal });
    }
  }

  // ---- snapshots and backups -----------------------------------------------------------------------

  async #snapshots(vm: MoRef, signal?: AbortSignal): Promise<SnapshotNode[]> {
    const props = await this.#readObject(vm, ['snapshot', 'layoutEx.snapshot'], signal);
    return flattenSnapshots(props.snapshot, props['layoutEx.snapshot']);
  }

  async #listSnapshots(ref: GuestRef, o: CallOptions = {}): Promise<Snapshot[]> {
    const vm = await this.#resolve(ref, 'backups.listSnapshots', o.signal);
    return (await this.#snapshots(vm, o.signal)).map((n) => n.snapshot);
  }

  async #createSnapshot(ref: GuestRef, o: CreateSnapshotOptions = {}): Promise<Snapshot> {
    const name = o.name ?? `hvkit-${new Date().toISOString()}`;
    if (typeof name !== 'string' || name === '')
      throw hvkitError('INVALID_ARGUMENT', 'A snapshot name must be a non-empty string.', {
        adapter: ADAPTER_ID,
        operation: 'backups.createSnapshot',
      });
    const vm = await this.#resolve(ref, 'backups.createSnapshot', o.signal);
    const created = await this.#snapshotTask(
      vm,
      name,
      o.description ?? '',
      o.memory === true,
      o.quiesce === true,
      o.signal,
    );
    const node = (await this.#snapshots(vm, o.signal)).find((n) => n.ref.value === created.value);
    if (!node)
      throw hvkitError('PROTOCOL', `Snapshot ${created.value} is not in the VM's snapshot tree.`, {
        adapter: ADAPTER_ID,
        operation: 'backups.createSnapshot',
      });
    return node.snapshot;
  }

  async #snapshotTask(
    vm: MoRef,
    name: string,
    description: string,
    memory: boolean,
    quiesce: boolean,
    signal?: AbortSignal,
  ): Promise<MoRef> {
    const task = await this.#session.call<MoRef>(
      'CreateSnapshot_Task',
      vm,
      { name, description, memory, quiesce },
      { signal },
    );
    return waitForTask<MoRef>(this.#session, task, { signal });
  }

  async #findSnapshot(vm: MoRef, id: string, operation: string, signal?: AbortSignal): Promise<MoRef> {
    if (typeof id !== 'string' || id === '')
      throw hvkitError('INVALID_ARGUMENT', 'A snapshot id must be a non-empty string.', {
        adapter: ADAPTER_ID,
        operation,
      });
    const node = (await this.#snapshots(vm, signal)).find((n) => n.snapshot.id === id);
    if (!node)
      throw hvkitError(
        'NOT_FOUND',
        `Guest ${vm.value} has no snapshot ${JSON.stringify(id.slice(0, 100))}.`,
        {
          adapter: ADAPTER_ID,
          operation,
        },
      );
    return node.ref;
  }

  async #removeSnapshot(snapshot: MoRef, signal?: AbortSignal): Promise<void> {
    const task = await this.#session.call<MoRef>(
      'RemoveSnapshot_Task',
      snapshot,
      { removeChildren: false, consolidate: true },
      { signal },
    );
    await waitForTask(this.#session, task, { signal });
  }

  async #deleteSnapshot(ref: GuestRef, id: string, o: CallOptions = {}): Promise<void> {
    const vm = await this.#resolve(ref, 'backups.deleteSnapshot', o.signal);
    await this.#removeSnapshot(
      await this.#findSnapshot(vm, id, 'backups.deleteSnapshot', o.signal),
      o.signal,
    );
  }

  async #revertSnapshot(ref: GuestRef, id: string, o: CallOptions = {}): Promise<void> {
    const vm = await this.#resolve(ref, 'backups.revertSnapshot', o.signal);
    const snap = await this.#findSnapshot(vm, id, 'backups.revertSnapshot', o.signal);
    const task = await this.#session.call<MoRef>('RevertToSnapshot_Task', snap, undefined, {
      signal: o.signal,
    });
    await waitForTask(this.#session, task, { signal: o.signal });
  }

  /** The datacenter name (`dcPath`) of a datastore. */
  async #datacenterOf(datastore: MoRef | undefined, signal?: AbortSignal): Promise<string> {
    const dcs = await this.#retrieveView([{ type: 'Datacenter', pathSet: ['name', 'datastore'] }], signal);
    const found =
      dcs.find((d) => ((d.props.datastore ?? []) as MoRef[]).some((ds) => ds.value === datastore?.value)) ??
      dcs[0];
    return String(found?.props.name ?? 'ha-datacenter');
  }

  async #backup(ref: GuestRef, sink: BackupSink, o: BackupOptions = {}): Promise<BackupArtifact> {
    if (typeof sink?.writeFile !== 'function') throw new TypeError('sink must be a BackupSink.');
    const mode = o.mode ?? 'full';
    if (mode !== 'full' && mode !== 'incremental')
      throw new TypeError(`Unknown backup mode ${String(mode)}.`);
    const vm = await this.#resolve(ref, 'backups.backup', o.signal);
    if (mode === 'incremental') {
      throw hvkitError(
        'UNSUPPORTED',
        'Incremental backups need changed block tracking (QueryChangedDiskAreas), which this adapter does not implement yet.',
        { adapter: ADAPTER_ID, operation: 'backups.backup' },
      );
    }
    const signal = o.signal;
    const props = await this.#readObject(vm, ['config.hardware.device'], signal);
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
    const snapshot = await this.#snapshotTask(
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
        const dcPath = await this.#datacenterOf(disk.datastore, signal);
        // A VMDK is a small descriptor plus, for flat disks, its data in `<name>-flat.vmdk`: copy both.
        const parts = [parsed];
        if (parsed.path.endsWith('.vmdk')) {
          const flat = { datastore: parsed.datastore, path: parsed.path.replace(/\.vmdk$/, '-flat.vmdk') };
          if (
            await downloadExists(
              this.#folderUrl(flat, dcPath),
              this.#downloadOptions(`Datastore file [${flat.datastore}] ${flat.path}`, disk.maxBytes, signal),
            )
          )
            parts.push(flat);
        }
        for (const part of parts) {
          const name = `${vm.value}/${part.path.split('/').pop() ?? 'disk.vmdk'}`;
          const base = processed;
          const download = await openDownload(
            this.#folderUrl(part, dcPath),
            this.#downloadOptions(`Datastore file [${part.datastore}] ${part.path}`, disk.maxBytes, signal),
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
      await this.#removeSnapshot(snapshot, AbortSignal.timeout(60_000)).catch(() => {});
      throw error;
    }
    await this.#removeSnapshot(snapshot, signal);
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

  #folderUrl(file: { datastore: string; path: string }, dcPath: string): URL {
    const url = new URL(`/folder/${file.path.split('/').map(encodeURIComponent).join('/')}`, this.#url);
    url.searchParams.set('dcPath', dcPath);
    url.searchParams.set('dsName', file.datastore);
    return url;
  }

  /** Download settings of this session: its fetch and cookie, the idle deadline, the call's signal. */
  #downloadOptions(what: string, maxBytes: number | undefined, signal?: AbortSignal): DownloadOptions {
    return {
      fetch: this.#fetch,
      cookie: () => this.#session.client.cookieHeader(),
      maxBytes,
      idleTimeoutMs: this.#backupIdleTimeoutMs,
      signal,
      operation: 'backups.backup',
      what,
    };
  }

  async #backupHostConfig(sink: BackupSink, o: BackupOptions = {}): Promise<BackupArtifact> {
    if (typeof sink?.writeFile !== 'function') throw new TypeError('sink must be a BackupSink.');
    const unsupported = (why: string, cause?: unknown) =>
      hvkitError('UNSUPPORTED', `Host configuration backup is not available: ${why}`, {
        adapter: ADAPTER_ID,
        operation: 'backups.backupHostConfig',
        cause,
      });
    if (this.isVcenter)
      throw unsupported('connect to an ESXi host (vCenter has no host configuration bundle).');
    const hosts = await this.#retrieveView(
      [{ type: 'HostSystem', pathSet: ['configManager.firmwareSystem'] }],
      o.signal,
    );
    const host = hosts[0];
    const firmware = host?.props['configManager.firmwareSystem'] as MoRef | undefined;
    if (!host || !firmware) throw unsupported('the host has no firmware system.');
    let bundleUrl: string;
    try {
      bundleUrl = await this.#session.call<string>('BackupFirmwareConfiguration', firmware, undefined, {
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
    const url = onSessionOrigin(String(bundleUrl), this.#url, 'backups.backupHostConfig');
    const download = await openDownload(url, {
      ...this.#downloadOptions('Host configuration bundle', MAX_HOST_CONFIG_BYTES, o.signal),
      operation: 'backups.backupHostConfig',
    });
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
}
