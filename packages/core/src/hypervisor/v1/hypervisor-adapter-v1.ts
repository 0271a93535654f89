import type { AdapterConnection } from '../../adapter/connection';
import type { BackupSink } from '../../backup/sink';
import type { BackupSource } from '../../backup/source';
import type {
  BackupArtifact,
  BackupCheckpoint,
  BackupCleanupResult,
  Guest,
  GuestEvent,
  GuestRef,
  Host,
  HostSecurityModel,
  HvkitWarning,
  Network,
  Progress,
  ResourceLimits,
  RestoreResult,
  ResyncEvent,
  SecurityLabel,
  Snapshot,
  StoragePool,
  StorageVolume,
} from './model';
import type { DeepReadonly, LimitsApplyMode, SupportsManifest } from './supports';

/** Options every method takes last. */
export interface CallOptions {
  /** Cancels the call; it then rejects with an `ABORTED` error. */
  signal?: AbortSignal;
  /** Per-call timeout in milliseconds; overrides the adapter's default. The call then rejects with `TIMEOUT`. */
  timeoutMs?: number;
}

/** Inventory: the host, guests, networks and storage. */
export interface InventoryCapability {
  host(options?: CallOptions): Promise<Host>;
  listGuests(options?: CallOptions): Promise<Guest[]>;
  /** Rejects with `NOT_FOUND` when no guest matches. */
  getGuest(ref: GuestRef, options?: CallOptions): Promise<Guest>;
  listNetworks?(options?: CallOptions): Promise<Network[]>;
  listStoragePools?(options?: CallOptions): Promise<StoragePool[]>;
  listStorageVolumes?(poolId: string, options?: CallOptions): Promise<StorageVolume[]>;
}

/** Options of `limits.set`. */
export interface LimitsSetOptions extends CallOptions {
  /** `live` changes the running guest, `persistent` its definition, `both` both. Default: `both` where supported. */
  apply?: LimitsApplyMode;
}

/** Options of `limits.get`. */
export interface LimitsGetOptions extends CallOptions {
  /** Read the running guest's values (`live`) or its definition (`persistent`). Default: `live` when running. */
  from?: 'live' | 'persistent';
}

/** The result of `limits.set`. */
export interface LimitsSetResult {
  /** The limits read back after the change. */
  limits: ResourceLimits;
  /** When the change takes effect. */
  appliesAt: 'live' | 'next-boot';
  warnings: HvkitWarning[];
}

/** Resource limits. */
export interface LimitsCapability {
  get(ref: GuestRef, options?: LimitsGetOptions): Promise<ResourceLimits>;
  /**
   * Sets the given fields and leaves the others unchanged. Invalid values reject with `INVALID_ARGUMENT`
   * and fields the adapter cannot set with `UNSUPPORTED`, in both cases before anything is changed.
   */
  set(ref: GuestRef, limits: ResourceLimits, options?: LimitsSetOptions): Promise<LimitsSetResult>;
}

/** Security labels. */
export interface LabelsCapability {
  /** Every label of the guest: each stacked live label, then the definition's labels. */
  get(ref: GuestRef, options?: CallOptions): Promise<SecurityLabel[]>;
  /** The host's security models. */
  hostModels?(options?: CallOptions): Promise<HostSecurityModel[]>;
  /** Sets a label (libvirt: on an inactive guest; tag models: attaches tags). */
  set?(ref: GuestRef, label: SecurityLabel, options?: CallOptions): Promise<SecurityLabel[]>;
}

/** Options of `backups.createSnapshot`. */
export interface CreateSnapshotOptions extends CallOptions {
  name?: string;
  description?: string;
  /** Include memory state (guest must be running). Default false (disk only). */
  memory?: boolean;
  /** Freeze guest filesystems first (needs a guest agent). */
  quiesce?: boolean;
}

/** Options of `backups.backup` and `backups.backupHostConfig`. */
export interface BackupOptions extends CallOptions {
  /** `full` copies everything; `incremental` only what changed since `sinceCheckpoint`. Default `full`. */
  mode?: 'full' | 'incremental';
  /** Checkpoint of an earlier backup, for `incremental`. */
  sinceCheckpoint?: string;
  /**
   * Called with progress: each phase reports `totalBytes` when it is known before the phase starts,
   * `processedBytes` only grows and never exceeds it, and calls come at most about ten per second plus the last.
   */
  onProgress?: (progress: Progress) => void;
}

/** Options of `backups.restore`. */
export interface RestoreOptions extends CallOptions {
  /**
   * The artifact to restore: its id or path as the source lists it. An incremental restores its whole chain,
   * the full backup first. Default: the newest complete artifact of {@link RestoreOptions.guest}, or the
   * source's only guest; `INVALID_ARGUMENT` when that is ambiguous.
   */
  artifact?: string;
  /** Pick the newest complete artifact of this guest (name or id as recorded in the manifests). */
  guest?: string;
  /**
   * `new` (default) defines a new guest: new name, ids and MACs, static security labels dropped so the guest
   * gets its own. `in-place` writes over the disks of the original guest, which must exist and be stopped.
   */
  mode?: 'new' | 'in-place';
  /** The new guest's name (mode `new`). Default: the original name with `-restored-<artifact id>`. */
  name?: string;
  /** Where the new guest's disks go: a storage pool (libvirt), a datastore (vSphere). Default: the original's. */
  storage?: string;
  /** Called with progress, as for backups. */
  onProgress?: (progress: Progress) => void;
}

/** Options of `backups.cleanup`. */
export interface BackupCleanupOptions extends CallOptions {
  /** Also remove incomplete artifacts of this guest (no manifest) from this sink. */
  sink?: BackupSink;
}

/** Snapshots and backups. */
export interface BackupsCapability {
  listSnapshots(ref: GuestRef, options?: CallOptions): Promise<Snapshot[]>;
  createSnapshot(ref: GuestRef, options?: CreateSnapshotOptions): Promise<Snapshot>;
  deleteSnapshot(ref: GuestRef, snapshotId: string, options?: CallOptions): Promise<void>;
  revertSnapshot?(ref: GuestRef, snapshotId: string, options?: CallOptions): Promise<void>;
  /**
   * Backs up the guest's disks into `sink`. An abort or failure leaves no snapshot or checkpoint that this
   * call created, and no file in the sink that looks complete.
   */
  backup(ref: GuestRef, sink: BackupSink, options?: BackupOptions): Promise<BackupArtifact>;
  /** Backs up the host's configuration (definitions, capabilities). */
  backupHostConfig?(sink: BackupSink, options?: BackupOptions): Promise<BackupArtifact>;
  /**
   * Restores an artifact written by `backup` (see {@link RestoreOptions}). Every file is checked against the
   * artifact's manifest while it streams; a mismatch, an abort or any failure leaves no guest, volume or file
   * behind, because the restored disks become visible (defined, swapped in) only at the end.
   */
  restore?(source: BackupSource, options?: RestoreOptions): Promise<RestoreResult>;
  /** The backend's checkpoints for incremental backups of the guest, hvkit's with their chain, oldest first. */
  listCheckpoints?(ref: GuestRef, options?: CallOptions): Promise<BackupCheckpoint[]>;
  /**
   * Removes what crashed or killed backups of the guest left (their checkpoints, temporary volumes, jobs,
   * expired leases and, with `sink`, incomplete artifacts), never what a live lease of another run holds.
   */
  cleanup?(ref: GuestRef, options?: BackupCleanupOptions): Promise<BackupCleanupResult>;
}

/** Options of `events.subscribe`. */
export interface SubscribeOptions {
  /** Ends the iteration. */
  signal?: AbortSignal;
}

/** Lifecycle events. */
export interface EventsCapability {
  /**
   * A typed async iterator of guest lifecycle events. It ends (without an error) only when its signal
   * aborts or the adapter closes. When the connection is lost, an adapter that reconnects keeps the
   * iteration going and, once resumed, yields a `resync` event ({@link ResyncEvent}: events may have been
   * missed); an adapter that does not (or gives up) makes it throw `CONNECTION_LOST`. Subscribing on an
   * adapter that is already closed throws `CONNECTION_LOST` (`retryable: false`) from the first `next()`.
   */
  subscribe(options?: SubscribeOptions): AsyncIterable<GuestEvent>;
}

/** An adapter implementing hvkit spec v1. Capability objects are present only when supported. */
export interface HypervisorAdapterV1<Id extends string = string> {
  readonly specificationVersion: 'v1';
  /** Adapter id, e.g. `kvm-libvirt`. */
  readonly adapter: Id;
  readonly supports: DeepReadonly<SupportsManifest>;
  readonly inventory?: InventoryCapability;
  readonly limits?: LimitsCapability;
  readonly backups?: BackupsCapability;
  readonly labels?: LabelsCapability;
  readonly events?: EventsCapability;
  /**
   * The state of the connection to the server (`open`, `reconnecting`, `closed`) and its changes, for
   * long-running use (services, monitors). Optional in v1: adapters without it say nothing about their
   * connection. See `docs/architecture.md`, "Running as a service".
   */
  readonly connection?: AdapterConnection;
  /**
   * Closes connections. Idempotent. Bounded: it does not wait for a hung server longer than the adapter
   * documents (a few seconds). Calls made afterwards fail with `CONNECTION_LOST` (`retryable: false`).
   */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/** The current spec's adapter type. */
export type HypervisorAdapter<Id extends string = string> = HypervisorAdapterV1<Id>;
