/**
 * Snapshots, checkpoints and backups: `<domainsnapshot>`, `<domaincheckpoint>` and `<domainbackup>` XML
 * (formatsnapshot, formatcheckpoint, formatbackup), parsed and built.
 */

import { buildXml, hvkitError, type Snapshot, type XmlInputObject, type XmlValue } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import {
  attr,
  child,
  children,
  childText,
  hasControlChar,
  parseBigInt,
  parseRoot,
  rawAttr,
  rawText,
} from './xml-util';

function protocol(message: string, operation: string) {
  return hvkitError('PROTOCOL', message, { adapter: ADAPTER_ID, operation });
}

function invalid(message: string, operation: string, details: Record<string, unknown> = {}) {
  return hvkitError('INVALID_ARGUMENT', message, { adapter: ADAPTER_ID, operation, details });
}

/** `<creationTime>` (Unix seconds) → Date; undefined when missing or not an integer. */
function creationTime(root: XmlValue): Date | undefined {
  const secs = parseBigInt(childText(root, 'creationTime'));
  if (secs === undefined) return undefined;
  const ms = Number(secs) * 1000;
  return Number.isFinite(ms) && Math.abs(ms) <= 8.64e15 ? new Date(ms) : undefined;
}

function nameOf(root: XmlValue, kind: string, operation: string): string {
  const name = rawText(child(root, 'name'));
  if (name === undefined || name === '') throw protocol(`${kind} XML without <name>.`, operation);
  return name;
}

/** Domain states in which a snapshot without a `<memory>` element (old libvirt) holds memory. */
const MEMORY_STATES: ReadonlySet<string> = new Set([
  'running',
  'blocked',
  'paused',
  'pmsuspended',
  'crashed',
]);

/** One `<disk>` of a snapshot. */
export interface SnapshotDiskDetails {
  /** Guest disk (target dev) or source path. */
  name: string;
  /** `no`, `internal`, `external`, `manual`. */
  snapshot?: string;
  /** For external snapshots: the new overlay file and its format. */
  file?: string;
  format?: string;
}

/** Facts from snapshot XML beyond {@link Snapshot}. */
export interface SnapshotXmlDetails {
  name: string;
  /** Domain state when taken: `running`, `paused`, `shutoff`, `disk-snapshot` (disk-only of a running domain)... */
  state?: string;
  /** `<memory snapshot>`: `no`, `internal`, `external`; undefined when the element is missing. */
  memory?: string;
  /** `<memory file>` of an external memory snapshot. */
  memoryFile?: string;
  parentName?: string;
  disks: SnapshotDiskDetails[];
  /** Whether the XML embeds the domain definition. */
  hasDomain: boolean;
}

/**
 * Snapshot XML (`DOMAIN_SNAPSHOT_GET_XML_DESC`) → {@link Snapshot}.
 *
 * - `id` and `name`: `<name>` (unique per domain, and what the snapshot APIs look snapshots up by).
 * - `createdAt`: `<creationTime>` Unix seconds (the epoch when missing).
 * - `kind`: `memory` when `<memory snapshot>` is `internal` or `external`, or, in XML without `<memory>`
 *   (libvirt before 1.0.1), when the state was a running one; else `disk` (also for `disk-snapshot`).
 * - `parentId`: `<parent><name>`. `description`: `<description>`.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML, a root other than `<domainsnapshot>`, or no `<name>`.
 */
export function parseSnapshotXml(xml: string): Snapshot {
  const root = parseRoot(xml, 'domainsnapshot', 'parseSnapshotXml');
  const name = nameOf(root, 'Snapshot', 'parseSnapshotXml');
  const memoryEl = child(root, 'memory');
  const memory = attr(memoryEl, 'snapshot');
  const state = childText(root, 'state');
  const withMemory =
    memory !== undefined
      ? memory === 'internal' || memory === 'external'
      : memoryEl === undefined && state !== undefined && MEMORY_STATES.has(state);
  const snap: Snapshot = {
    id: name,
    name,
    createdAt: creationTime(root) ?? new Date(0),
    kind: withMemory ? 'memory' : 'disk',
  };
  const parent = rawText(child(child(root, 'parent'), 'name'));
  if (parent !== undefined && parent !== '') snap.parentId = parent;
  const description = rawText(child(root, 'description'));
  if (description !== undefined && description !== '') snap.description = description;
  return snap;
}

/**
 * Snapshot XML → {@link SnapshotXmlDetails}: state, memory mode and file, per-disk modes and overlays.
 *
 * @throws HvkitError `PROTOCOL` as {@link parseSnapshotXml}.
 */
export function parseSnapshotXmlDetails(xml: string): SnapshotXmlDetails {
  const root = parseRoot(xml, 'domainsnapshot', 'parseSnapshotXmlDetails');
  const out: SnapshotXmlDetails = {
    name: nameOf(root, 'Snapshot', 'parseSnapshotXmlDetails'),
    disks: [],
    hasDomain: child(root, 'domain') !== undefined,
  };
  const state = childText(root, 'state');
  if (state !== undefined) out.state = state;
  const memoryEl = child(root, 'memory');
  const memory = attr(memoryEl, 'snapshot');
  if (memory !== undefined) out.memory = memory;
  const memoryFile = rawAttr(memoryEl, 'file');
  if (memoryFile) out.memoryFile = memoryFile;
  const parent = rawText(child(child(root, 'parent'), 'name'));
  if (parent) out.parentName = parent;
  for (const d of children(child(root, 'disks'), 'disk')) {
    const name = rawAttr(d, 'name');
    if (!name) continue;
    const disk: SnapshotDiskDetails = { name };
    const mode = attr(d, 'snapshot');
    if (mode !== undefined) disk.snapshot = mode;
    const source = child(d, 'source');
    const file = rawAttr(source, 'file') || rawAttr(source, 'dev');
    if (file) disk.file = file;
    const format = attr(child(d, 'driver'), 'type');
    if (format !== undefined) disk.format = format;
    out.disks.push(disk);
  }
  return out;
}

/** `virDomainSnapshotCreateFlags`. */
export const SNAPSHOT_CREATE_FLAGS = {
  REDEFINE: 1,
  CURRENT: 2,
  NO_METADATA: 4,
  HALT: 8,
  DISK_ONLY: 16,
  REUSE_EXT: 32,
  QUIESCE: 64,
  ATOMIC: 128,
  LIVE: 256,
  VALIDATE: 512,
} as const;

/** `virDomainCheckpointCreateFlags`. */
export const CHECKPOINT_CREATE_FLAGS = { REDEFINE: 1, QUIESCE: 2, REDEFINE_VALIDATE: 4 } as const;

/** `virDomainBackupBeginFlags`. */
export const BACKUP_BEGIN_FLAGS = { REUSE_EXTERNAL: 1 } as const;

/** One disk of {@link BuildSnapshotXmlInput}. */
export interface SnapshotDiskSpec {
  /** Guest disk (target dev). */
  name: string;
  /** `no` leaves the disk out; `internal` (qcow2) or `external` (new overlay file). Default `external` when `file` is given. */
  snapshot?: 'no' | 'internal' | 'external' | 'manual';
  /** Overlay file of an external snapshot; libvirt picks one next to the image when absent. */
  file?: string;
  /** Overlay format (`qcow2`). */
  format?: string;
}

/** Input of {@link buildSnapshotXml}. */
export interface BuildSnapshotXmlInput {
  /** Snapshot name; libvirt uses the creation time when absent. */
  name?: string;
  description?: string;
  /**
   * Disks only, no memory: writes `<memory snapshot='no'/>`. Pass {@link SNAPSHOT_CREATE_FLAGS} `DISK_ONLY`
   * (16) with it when the domain runs.
   */
  diskOnly?: boolean;
  /** External memory state file (a running domain, not `diskOnly`). */
  memoryFile?: string;
  /**
   * Per-disk settings. When given, libvirt applies its defaults to the disks not listed (external for a
   * running domain's disk-only snapshot), so list every disk, with `snapshot: 'no'` for those to skip
   * (cdroms, raw images in an internal snapshot).
   */
  disks?: SnapshotDiskSpec[];
}

function checkText(value: unknown, what: string, operation: string, allowEmpty = false): string {
  if (typeof value !== 'string') throw new TypeError(`${what} must be a string.`);
  if (!allowEmpty && value.trim() === '')
    throw invalid(`${what} must not be empty.`, operation, { field: what });
  if (hasControlChar(value, '\t\n\r')) {
    throw invalid(`${what} contains control characters.`, operation, { field: what });
  }
  return value;
}

function checkName(value: unknown, what: string, operation: string): string {
  const name = checkText(value, what, operation);
  if (name.includes('\n') || name.includes('\r') || name.includes('\t')) {
    throw invalid(`${what} must be one line.`, operation, { field: what });
  }
  if (name.length > 1024)
    throw invalid(`${what} is longer than 1024 characters.`, operation, { field: what });
  return name;
}

/**
 * Maps a `disks` list to XML `<disk>` entries: checks it is an array, each name is valid and none is
 * listed twice, then calls `build` with the disk and its checked name.
 */
function eachDisk<D extends { name: string }>(
  disks: readonly D[],
  op: string,
  build: (disk: D, name: string) => XmlInputObject,
): XmlInputObject[] {
  if (!Array.isArray(disks)) throw new TypeError('disks must be an array.');
  const seen = new Set<string>();
  return disks.map((d) => {
    const name = checkName(d?.name, 'disks.name', op);
    if (seen.has(name)) throw invalid(`Disk ${JSON.stringify(name)} is listed twice.`, op, { disk: name });
    seen.add(name);
    return build(d, name);
  });
}

function checkPath(value: unknown, what: string, operation: string): string {
  const path = checkName(value, what, operation);
  if (!path.startsWith('/')) throw invalid(`${what} must be an absolute path.`, operation, { field: what });
  return path;
}

/**
 * Builds `<domainsnapshot>` XML for `DOMAIN_SNAPSHOT_CREATE_XML`.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for an empty or multi-line name, control characters, a relative
 *   file path, `memoryFile` together with `diskOnly`, a duplicate disk, or `file` on a non-external disk.
 */
export function buildSnapshotXml(input: BuildSnapshotXmlInput = {}): string {
  const op = 'buildSnapshotXml';
  if (typeof input !== 'object' || input === null) throw new TypeError('buildSnapshotXml expects an object.');
  const el: XmlInputObject = {};
  if (input.name !== undefined) el.name = checkName(input.name, 'name', op);
  if (input.description !== undefined) el.description = checkText(input.description, 'description', op, true);
  if (input.diskOnly && input.memoryFile !== undefined) {
    throw invalid('A disk-only snapshot has no memory file.', op, { field: 'memoryFile' });
  }
  if (input.diskOnly) el.memory = { '@_snapshot': 'no' };
  else if (input.memoryFile !== undefined) {
    el.memory = { '@_snapshot': 'external', '@_file': checkPath(input.memoryFile, 'memoryFile', op) };
  }
  if (input.disks !== undefined) {
    el.disks = {
      disk: eachDisk(input.disks, op, (d, name) => {
        const mode = d.snapshot ?? (d.file !== undefined ? 'external' : undefined);
        if (mode !== undefined && !['no', 'internal', 'external', 'manual'].includes(mode)) {
          throw invalid(`Unknown snapshot mode ${JSON.stringify(String(mode))}.`, op, { disk: name });
        }
        if (d.file !== undefined && mode !== 'external') {
          throw invalid(`Disk ${JSON.stringify(name)}: a file needs snapshot 'external'.`, op, {
            disk: name,
          });
        }
        const disk: XmlInputObject = { '@_name': name };
        if (mode !== undefined) disk['@_snapshot'] = mode;
        if (d.format !== undefined) disk.driver = { '@_type': checkName(d.format, 'disks.format', op) };
        if (d.file !== undefined) {
          disk['@_type'] = 'file';
          disk.source = { '@_file': checkPath(d.file, 'disks.file', op) };
        }
        return disk;
      }),
    };
  }
  return buildXml({ domainsnapshot: el }, { indent: '  ' });
}

/** A parsed checkpoint (`DOMAIN_CHECKPOINT_GET_XML_DESC`). */
export interface LibvirtCheckpoint {
  name: string;
  description?: string;
  /** `<creationTime>`; the epoch when missing. */
  createdAt: Date;
  parentName?: string;
  disks: {
    name: string;
    /** `bitmap` or `no`. */
    checkpoint?: string;
    /** Dirty bitmap name (libvirt 9.0 requires it to equal the checkpoint name). */
    bitmap?: string;
    /** Bytes changed since the checkpoint (with `VIR_DOMAIN_CHECKPOINT_XML_SIZE`). */
    sizeBytes?: number;
  }[];
  /** Whether the XML embeds the domain definition. */
  hasDomain: boolean;
}

/**
 * Checkpoint XML → {@link LibvirtCheckpoint}.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML, a root other than `<domaincheckpoint>`, or no `<name>`.
 */
export function parseCheckpointXml(xml: string): LibvirtCheckpoint {
  const root = parseRoot(xml, 'domaincheckpoint', 'parseCheckpointXml');
  const out: LibvirtCheckpoint = {
    name: nameOf(root, 'Checkpoint', 'parseCheckpointXml'),
    createdAt: creationTime(root) ?? new Date(0),
    disks: [],
    hasDomain: child(root, 'domain') !== undefined,
  };
  const description = rawText(child(root, 'description'));
  if (description) out.description = description;
  const parent = rawText(child(child(root, 'parent'), 'name'));
  if (parent) out.parentName = parent;
  for (const d of children(child(root, 'disks'), 'disk')) {
    const name = rawAttr(d, 'name');
    if (!name) continue;
    const disk: LibvirtCheckpoint['disks'][number] = { name };
    const mode = attr(d, 'checkpoint');
    if (mode !== undefined) disk.checkpoint = mode;
    const bitmap = rawAttr(d, 'bitmap');
    if (bitmap) disk.bitmap = bitmap;
    const size = parseBigInt(attr(d, 'size'));
    if (size !== undefined && size >= 0n && size <= BigInt(Number.MAX_SAFE_INTEGER))
      disk.sizeBytes = Number(size);
    out.disks.push(disk);
  }
  return out;
}

/** Input of {@link buildCheckpointXml}. */
export interface BuildCheckpointXmlInput {
  name: string;
  description?: string;
  /**
   * Per-disk settings. Measured on libvirt 9.0: once a list is given, disks not in it get
   * `checkpoint='no'`, and a `bitmap` must equal the checkpoint name. Absent: every disk that can gets a
   * bitmap named after the checkpoint.
   */
  disks?: { name: string; checkpoint?: 'bitmap' | 'no' }[];
}

/**
 * Builds `<domaincheckpoint>` XML for `DOMAIN_CHECKPOINT_CREATE_XML` or the `checkpoint_xml` of
 * `DOMAIN_BACKUP_BEGIN`.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for an empty or multi-line name, control characters or a duplicate
 *   disk.
 */
export function buildCheckpointXml(input: BuildCheckpointXmlInput): string {
  const op = 'buildCheckpointXml';
  if (typeof input !== 'object' || input === null)
    throw new TypeError('buildCheckpointXml expects an object.');
  const el: XmlInputObject = { name: checkName(input.name, 'name', op) };
  if (input.description !== undefined) el.description = checkText(input.description, 'description', op, true);
  if (input.disks !== undefined) {
    el.disks = {
      disk: eachDisk(input.disks, op, (d, name) => {
        const mode = d.checkpoint ?? 'bitmap';
        if (mode !== 'bitmap' && mode !== 'no') {
          throw invalid(`Unknown checkpoint mode ${JSON.stringify(String(mode))}.`, op, { disk: name });
        }
        return { '@_name': name, '@_checkpoint': mode };
      }),
    };
  }
  return buildXml({ domaincheckpoint: el }, { indent: '  ' });
}

/** One disk of {@link BuildBackupXmlInput}. */
export interface BackupDiskSpec {
  /** Guest disk (target dev). */
  name: string;
  /** Default true; false writes `backup='no'`. */
  backup?: boolean;
  /** Push mode: the file (or block device, with `targetType: 'block'`) QEMU writes the disk to. */
  target?: string;
  /** Pull mode: scratch file for fleecing (libvirt picks one when absent). */
  scratch?: string;
  /** `file` (default) or `block`, for `target`/`scratch`. */
  targetType?: 'file' | 'block';
  /** Output format: `qcow2` or `raw`. */
  format?: 'qcow2' | 'raw';
}

/** Input of {@link buildBackupXml}. */
export interface BuildBackupXmlInput {
  /** `push` (QEMU writes files) or `pull` (an NBD server exports the disks). Default `push`. */
  mode?: 'push' | 'pull';
  /** Checkpoint name for an incremental backup (changes since it). */
  incremental?: string;
  /**
   * Disks. Push mode without a list makes libvirt back up every disk to `<image>.<timestamp>` next to the
   * image; list them to choose names. List every disk and give `backup: false` for those to skip.
   */
  disks?: BackupDiskSpec[];
  /** Pull mode NBD server: a Unix socket (must be writable by the QEMU user) or TCP. */
  server?: { transport: 'unix'; socket: string } | { transport: 'tcp'; name: string; port?: number };
}

/**
 * Builds `<domainbackup>` XML for `DOMAIN_BACKUP_BEGIN` (formatbackup): `mode`, `<incremental>`, pull
 * `<server>`, and per disk `backup`, `type`, `<driver type>` and `<target>` (push) or `<scratch>` (pull).
 * The checkpoint to create with the backup is separate ({@link buildCheckpointXml}).
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a relative path, a `target` in pull mode or `scratch` in push
 *   mode, a pull backup without `server`, a duplicate disk, or an unknown format.
 */
export function buildBackupXml(input: BuildBackupXmlInput): string {
  const op = 'buildBackupXml';
  if (typeof input !== 'object' || input === null) throw new TypeError('buildBackupXml expects an object.');
  const mode = input.mode ?? 'push';
  if (mode !== 'push' && mode !== 'pull')
    throw invalid(`Unknown backup mode ${JSON.stringify(String(mode))}.`, op);
  const el: XmlInputObject = { '@_mode': mode };
  if (input.incremental !== undefined) el.incremental = checkName(input.incremental, 'incremental', op);
  if (mode === 'pull') {
    const s = input.server;
    if (!s)
      throw invalid('A pull backup needs a server (NBD socket or TCP address).', op, { field: 'server' });
    if (s.transport === 'unix') {
      el.server = { '@_transport': 'unix', '@_socket': checkPath(s.socket, 'server.socket', op) };
    } else if (s.transport === 'tcp') {
      const server: XmlInputObject = { '@_transport': 'tcp', '@_name': checkName(s.name, 'server.name', op) };
      if (s.port !== undefined) {
        if (!Number.isInteger(s.port) || s.port < 1 || s.port > 65535) {
          throw invalid(`server.port must be 1..65535, got ${String(s.port)}.`, op, { field: 'server.port' });
        }
        server['@_port'] = s.port;
      }
      el.server = server;
    } else {
      throw invalid('server.transport must be unix or tcp.', op, { field: 'server.transport' });
    }
  } else if (input.server !== undefined) {
    throw invalid('Only pull backups take a server.', op, { field: 'server' });
  }
  if (input.disks !== undefined) {
    el.disks = {
      disk: eachDisk(input.disks, op, (d, name) => {
        if (d.backup === false) return { '@_name': name, '@_backup': 'no' };
        if (mode === 'push' && d.scratch !== undefined) {
          throw invalid(`Disk ${JSON.stringify(name)}: scratch files are for pull backups.`, op, {
            disk: name,
          });
        }
        if (mode === 'pull' && d.target !== undefined) {
          throw invalid(`Disk ${JSON.stringify(name)}: targets are for push backups.`, op, { disk: name });
        }
        const type = d.targetType ?? 'file';
        if (type !== 'file' && type !== 'block') {
          throw invalid(`Disk ${JSON.stringify(name)}: targetType must be file or block.`, op, {
            disk: name,
          });
        }
        const disk: XmlInputObject = { '@_name': name, '@_backup': 'yes', '@_type': type };
        if (d.format !== undefined) {
          if (d.format !== 'qcow2' && d.format !== 'raw') {
            throw invalid(`Disk ${JSON.stringify(name)}: format must be qcow2 or raw.`, op, { disk: name });
          }
          disk.driver = { '@_type': d.format };
        }
        const path = mode === 'push' ? d.target : d.scratch;
        if (path !== undefined) {
          const checked = checkPath(path, mode === 'push' ? 'disks.target' : 'disks.scratch', op);
          disk[mode === 'push' ? 'target' : 'scratch'] = { [type === 'file' ? '@_file' : '@_dev']: checked };
        }
        return disk;
      }),
    };
  }
  return buildXml({ domainbackup: el }, { indent: '  ' });
}

/** A parsed backup job description (`DOMAIN_BACKUP_GET_XML_DESC`). */
export interface LibvirtBackup {
  mode: string;
  incremental?: string;
  server?: { transport?: string; socket?: string; name?: string; port?: number };
  disks: {
    name: string;
    backup: boolean;
    /** `full` or `incremental` (per disk, as the running job reports). */
    backupMode?: string;
    incremental?: string;
    /** Pull mode: NBD export name and dirty-bitmap export of the disk. */
    exportName?: string;
    exportBitmap?: string;
    /** Push target or pull scratch path. */
    target?: string;
    scratch?: string;
    format?: string;
  }[];
}

/**
 * Backup XML → {@link LibvirtBackup} (export names of a pull backup, targets of a push backup).
 *
 * @throws HvkitError `PROTOCOL` for malformed XML or a root other than `<domainbackup>`.
 */
export function parseBackupXml(xml: string): LibvirtBackup {
  const root = parseRoot(xml, 'domainbackup', 'parseBackupXml');
  const out: LibvirtBackup = { mode: attr(root, 'mode') ?? 'push', disks: [] };
  const inc = rawText(child(root, 'incremental'))?.trim();
  if (inc) out.incremental = inc;
  const server = child(root, 'server');
  if (server !== undefined) {
    const s: NonNullable<LibvirtBackup['server']> = {};
    const transport = attr(server, 'transport');
    const socket = rawAttr(server, 'socket');
    const name = attr(server, 'name');
    const port = Number(attr(server, 'port'));
    if (transport !== undefined) s.transport = transport;
    if (socket) s.socket = socket;
    if (name !== undefined) s.name = name;
    if (Number.isInteger(port) && port > 0) s.port = port;
    out.server = s;
  }
  for (const d of children(child(root, 'disks'), 'disk')) {
    const name = rawAttr(d, 'name');
    if (!name) continue;
    const disk: LibvirtBackup['disks'][number] = { name, backup: attr(d, 'backup') !== 'no' };
    const set = (
      key: 'backupMode' | 'incremental' | 'exportName' | 'exportBitmap',
      v: string | undefined,
    ) => {
      if (v !== undefined) disk[key] = v;
    };
    set('backupMode', attr(d, 'backupmode'));
    set('incremental', attr(d, 'incremental'));
    set('exportName', attr(d, 'exportname'));
    set('exportBitmap', attr(d, 'exportbitmap'));
    const target = child(d, 'target');
    const scratch = child(d, 'scratch');
    const t = rawAttr(target, 'file') || rawAttr(target, 'dev');
    const s = rawAttr(scratch, 'file') || rawAttr(scratch, 'dev');
    if (t) disk.target = t;
    if (s) disk.scratch = s;
    const format = attr(child(d, 'driver'), 'type');
    if (format !== undefined) disk.format = format;
    out.disks.push(disk);
  }
  return out;
}
