/**
 * Spec v1 model: hypervisor-neutral values in one set of units.
 *
 * Units: sizes in bytes, rates in bytes/s and operations/s, CPU time in microseconds, times as `Date`.
 * `null` means explicitly unlimited; an absent (`undefined`) field means unset or unsupported.
 */

/** A guest reference: the adapter's id string, or an object naming one of id, uuid or name. */
export type GuestRef = string | { id: string } | { uuid: string } | { name: string };

/** Power state of a guest. */
export type PowerState = 'running' | 'stopped' | 'paused' | 'suspended' | 'crashed' | 'unknown';

/** All values of {@link PowerState}. */
export const POWER_STATES: readonly PowerState[] = [
  'running',
  'stopped',
  'paused',
  'suspended',
  'crashed',
  'unknown',
];

/** Security model names. `tag` is a tag-based security domain (vSphere, XAPI); `none` is unconfined. */
export type SecurityModelName = 'selinux' | 'apparmor' | 'dac' | 'tag' | 'none';

/** All values of {@link SecurityModelName}. */
export const SECURITY_MODEL_NAMES: readonly SecurityModelName[] = [
  'selinux',
  'apparmor',
  'dac',
  'tag',
  'none',
];

/** A security model the host offers. */
export interface HostSecurityModel {
  model: SecurityModelName;
  /** Domain of interpretation (libvirt `doi`), when the backend reports one. */
  doi?: string;
  /** Whether the model is enforcing on the host, when known. */
  enforcing?: boolean;
}

/** A hypervisor host. */
export interface Host {
  /** The adapter's stable id for the host. */
  id: string;
  name: string;
  hypervisor: {
    /** Backend kind, e.g. `QEMU`, `Test`, `Xen`, `ESXi`, `vCenter`, `cgroup-v2`. */
    kind: string;
    /** Version string, e.g. `9.0.0`. */
    version: string;
    /** Build or library version where the backend has one. */
    build?: string;
  };
  cpu: {
    model?: string;
    sockets?: number;
    cores?: number;
    threads?: number;
    mhz?: number;
  };
  memoryBytes?: number;
  securityModels: HostSecurityModel[];
}

/** How a disk is backed. */
export type DiskBacking = 'file' | 'block' | 'network' | 'volume' | 'other';

/** A guest disk. */
export interface Disk {
  /** Guest-visible device name (`vda`, `xvda`, `scsi0:0`). Used as the key in limits. */
  device: string;
  /** Path, volume name or URL of the backing store, when there is one. */
  source?: string;
  backing: DiskBacking;
  capacityBytes?: number;
  /** Image format, e.g. `qcow2`, `raw`, `vmdk`, `vhd`. */
  format?: string;
  readonly?: boolean;
  shareable?: boolean;
}

/** A guest network interface. */
export interface Nic {
  /** Device name (`vnet0`, `eth0`, `Network adapter 1`). Used as the key in limits. */
  device: string;
  mac?: string;
  /** Name of the network or port group. */
  network?: string;
  /** VLAN id (0..4095) when known. */
  vlan?: number;
  model?: string;
}

/** A guest (virtual machine, domain). */
export interface Guest {
  /** The adapter's stable id (libvirt uuid, XAPI VM ref uuid, vSphere MOID, cgroup path...). */
  id: string;
  /** RFC 4122 UUID, lower case. */
  uuid: string;
  name: string;
  powerState: PowerState;
  /** Configured maximum number of vCPUs. */
  vcpus: number;
  /** Configured maximum memory in bytes. */
  memoryBytes: number;
  /** Id of the host it runs on or is registered with, when known. */
  hostId?: string;
  disks: Disk[];
  nics: Nic[];
  isTemplate: boolean;
  tags: string[];
}

/** A virtual network or port group. */
export interface Network {
  id: string;
  name: string;
  /** Bridge or switch the network is attached to. */
  bridge?: string;
  /** VLAN id (0..4095) when the network is tagged. */
  vlan?: number;
  active?: boolean;
  /** Whether the network is the management network, when the backend says. */
  management?: boolean;
}

/** A storage pool, datastore or storage repository. */
export interface StoragePool {
  id: string;
  name: string;
  /** Backend type, e.g. `dir`, `logical`, `nfs`, `VMFS`, `lvm`. */
  type: string;
  capacityBytes?: number;
  allocationBytes?: number;
  availableBytes?: number;
  path?: string;
  active?: boolean;
}

/** A volume in a storage pool. */
export interface StorageVolume {
  id: string;
  name: string;
  poolId: string;
  path?: string;
  capacityBytes?: number;
  allocationBytes?: number;
  format?: string;
}

/**
 * CPU limits. As everywhere in limits, `null` is the backend's default and a field at its default is
 * reported as `null` (see `normalizeLimits`).
 */
export interface CpuLimits {
  /** Relative weight on the cgroup-v2 scale: 1..10000. `null` = the default weight, 100 (which reads `null`). */
  weight?: number | null;
  /** Cap in host cores (quota / period); `0.5` = half a core; at most the host's logical CPUs. `null` = no cap. */
  maxCores?: number | null;
  /** Guaranteed CPU in MHz. `null` = none (0 reads `null`). */
  reservationMHz?: number | null;
}

/** Memory limits. A cap of 0 is invalid (`null` is "no limit"); caps are at most the host's memory. */
export interface MemoryLimits {
  /** Hard limit. `null` = unlimited. */
  maxBytes?: number | null;
  /** Soft limit (throttle, cgroup v2 memory.high). `null` = unlimited. */
  softBytes?: number | null;
  /** Guaranteed memory (memory.min, reservation). `null` = none (0 reads `null`). */
  minBytes?: number | null;
  /** Swap only (not memory + swap); 0 = no swap. `null` = unlimited. */
  swapMaxBytes?: number | null;
}

/** Block IO limits of one disk. `null` fields are unlimited. */
export interface DiskLimits {
  device: string;
  readBytesPerSec?: number | null;
  writeBytesPerSec?: number | null;
  readIops?: number | null;
  writeIops?: number | null;
}

/** Bandwidth limits of one NIC. Rates in bytes/s, burst in bytes. `null` fields are unlimited. */
export interface NicLimits {
  device: string;
  inboundAverageBytesPerSec?: number | null;
  inboundPeakBytesPerSec?: number | null;
  inboundBurstBytes?: number | null;
  outboundAverageBytesPerSec?: number | null;
  outboundPeakBytesPerSec?: number | null;
  outboundBurstBytes?: number | null;
}

/** Process-count limits. */
export interface PidsLimits {
  /** `null` = unlimited. */
  max?: number | null;
}

/** Resource limits of a guest. */
export interface ResourceLimits {
  cpu?: CpuLimits;
  memory?: MemoryLimits;
  disks?: DiskLimits[];
  nics?: NicLimits[];
  pids?: PidsLimits;
}

/** A security label of a guest. */
export interface SecurityLabel {
  model: SecurityModelName;
  type: 'dynamic' | 'static' | 'none';
  /** Process label (`system_u:system_r:svirt_t:s0:c1,c2`, `libvirt-<uuid>`, `+64055:+994`). */
  label?: string;
  /** Label put on the guest's images. */
  imageLabel?: string;
  /** Base label for dynamic labels. */
  baseLabel?: string;
  relabel?: boolean;
  /** Whether the label is enforced (live guests), when known. */
  enforcing?: boolean;
  /** Tags of a tag-based security domain. */
  tags?: { category?: string; name: string }[];
  /** `live` = read from the running guest, `config` = from its definition. */
  source?: 'live' | 'config';
}

/** A snapshot. */
export interface Snapshot {
  id: string;
  name: string;
  createdAt: Date;
  /** `disk` = disks only; `memory` = disks plus memory state. */
  kind: 'disk' | 'memory';
  parentId?: string;
  description?: string;
}

/** How a backup was taken, e.g. `libvirt-push`, `volume-download`, `lvm-cow`, `xapi-xva`, `vadp-cbt`. */
export type BackupMethod = string;

/** One file written by a backup. */
export interface BackupFile {
  name: string;
  bytes: number;
  /** Lower-case hex SHA-256 of the bytes the sink received. */
  sha256: string;
}

/** The result of a backup. */
export interface BackupArtifact {
  /** The artifact's id: sortable by time, unique, and the name of its folder in the sink. */
  id: string;
  /** Guest id, or the host id for `host-config`. */
  guest: string;
  kind: 'full' | 'incremental' | 'host-config';
  method: BackupMethod;
  createdAt: Date;
  /**
   * Every file written, the manifest ({@link BACKUP_MANIFEST_FILE}) last. Names are relative to the sink's root
   * and start with {@link BackupArtifact.path}.
   */
  files: BackupFile[];
  /** Checkpoint created by this backup, for the next incremental. */
  checkpoint?: string;
  /** Checkpoint an incremental backup is relative to. */
  parentCheckpoint?: string;
  consistency: 'crash' | 'fs-frozen';
  /** The artifact's folder in the sink, `<guest name>/<id>` (see `artifactPath`). */
  path: string;
  /** The checkpoint chain this backup belongs to (a full backup starts one). Absent for host config. */
  chain?: string;
}

/** A checkpoint the backend keeps for incremental backups (libvirt checkpoint, CBT change id, LVM snapshot). */
export interface BackupCheckpoint {
  /** The backend's name or id for it. */
  id: string;
  createdAt?: Date;
  /** The checkpoint it follows in its chain (absent for the first). */
  parentId?: string;
  /**
   * The hvkit chain it belongs to, when hvkit created it; absent for checkpoints hvkit did not create (another
   * tool's, such as virtnbdbackup's), which hvkit never removes.
   */
  chain?: string;
  /** Whether hvkit created it (recognised by metadata the adapter sets, not by its name). */
  managed: boolean;
}

/** Something `backups.cleanup` (or the start of a backup) found left behind by an earlier run. */
export interface BackupLeftover {
  kind: 'checkpoint' | 'snapshot' | 'volume' | 'job' | 'file' | 'lease' | 'guest';
  /** Its name or path on the backend or in the sink. */
  name: string;
  /** Why it was left: the run that made it, when known (lease owner, artifact id). */
  run?: string;
}

/** The result of `backups.cleanup`. */
export interface BackupCleanupResult {
  /** What was removed. */
  removed: BackupLeftover[];
  /** What was kept because a live lease holds it (another process's backup still running). */
  kept: BackupLeftover[];
}

/** The result of `backups.restore`. */
export interface RestoreResult {
  /** The restored guest, read back from the backend. */
  guest: Guest;
  mode: 'new' | 'in-place';
  /** The artifacts restored, oldest first: the chain's full backup, then each incremental up to the one asked. */
  artifacts: string[];
  /** The files read and verified against their manifests. */
  files: BackupFile[];
  warnings: HvkitWarning[];
}

/**
 * Progress of a long operation, one phase at a time: `totalBytes` is the phase's size when known before it
 * starts; `processedBytes` counts from zero in each phase, only grows within it and never exceeds `totalBytes`.
 * Adapters report through `createProgressReporter` (at most about ten calls per second plus the last of each
 * phase).
 */
export interface Progress {
  phase: string;
  processedBytes: number;
  totalBytes?: number;
  file?: string;
}

/** A lifecycle event of a guest. */
export interface GuestEvent {
  guest: { id: string; name: string; uuid?: string };
  /**
   * e.g. `defined`, `undefined`, `started`, `suspended`, `resumed`, `stopped`, `shutdown`, `crashed`; or
   * `resync` (a {@link ResyncEvent}, about no guest): events may have been missed.
   */
  type: string;
  /** Backend detail, e.g. `booted`, `destroyed`. */
  detail?: string;
  at: Date;
}

/**
 * The notice an event stream yields when events may have been missed: after it resumed across a lost
 * connection (`detail: 'reconnected'`), or after it dropped events because the consumer fell behind
 * (`detail: 'overflow'`). It is about no guest (`guest.id` and `guest.name` are empty): re-read what you
 * track (e.g. `inventory.listGuests()`), since events after `since` may be missing. Recognise it with
 * `isResyncEvent()` from `@hvkit/core`.
 */
export interface ResyncEvent extends GuestEvent {
  type: 'resync';
  detail: 'reconnected' | 'overflow';
  guest: { id: ''; name: '' };
  /** Events from this time on may be missing (when the connection was lost, or the first event dropped). */
  since: Date;
}

/** A non-fatal note about a call: an option that could not be honoured exactly. */
export interface HvkitWarning {
  type: 'unsupported' | 'compatibility' | 'deprecated' | 'other';
  /** The field or option concerned, e.g. `cpu.weight`. */
  field?: string;
  message: string;
}
