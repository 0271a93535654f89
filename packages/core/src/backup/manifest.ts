/**
 * The backup manifest, `hvkit-backup.json`: what makes an artifact self-describing. A backup writes it last,
 * beside the disk files and the guest's definition, so an artifact folder without one is incomplete by
 * definition. Restore reads it to know what to create and checks every file against it while streaming.
 */

import { hvkitError } from '../errors/hvkit-error';
import type { BackupArtifact, BackupFile, BackupMethod } from '../hypervisor/v1/model';
import type { BackupSink } from './sink';
import { checkSinkFileName } from './stream-sink';

/** The manifest's file name inside an artifact folder. */
export const BACKUP_MANIFEST_FILE = 'hvkit-backup.json';

/** Largest manifest `parseBackupManifest` accepts (bytes of JSON). */
export const BACKUP_MANIFEST_MAX_BYTES = 1024 * 1024;

/**
 * What a file of an artifact holds.
 * - `disk`: a disk's content (full: the whole disk; incremental: see {@link BackupManifestDisk.incremental}).
 * - `definition`: the guest's definition as the backend stores it (libvirt domain XML, the .vmx, XAPI metadata).
 * - `config`: other backend configuration kept for restore (vSphere VM config JSON, NVRAM).
 * - `host-config`: a host configuration bundle.
 */
export type BackupFileRole = 'disk' | 'definition' | 'config' | 'host-config';

/** The disk a `disk` file belongs to. */
export interface BackupManifestDisk {
  /** Guest-visible device name (`vda`, `scsi0:0`), the key restore uses to match the definition's disk. */
  device: string;
  /** Format of the file's bytes as written (`raw`, `qcow2`, `vmdk`, …). */
  format: string;
  /** The disk's virtual size in bytes. */
  capacityBytes: number;
  /**
   * For an incremental: how the changed data is stored, e.g. `qcow2-overlay` (a qcow2 whose unallocated
   * clusters mean "unchanged") or an adapter's own scheme, documented on its page. Absent for a full copy.
   */
  incremental?: string;
}

/** One file of an artifact, as the manifest lists it. */
export interface BackupManifestFile {
  /** Name relative to the artifact folder (no `..`, no leading `/`). */
  name: string;
  role: BackupFileRole;
  bytes: number;
  /** Lower-case hex SHA-256 of the file's bytes. */
  sha256: string;
  /** Set for `disk` files. */
  disk?: BackupManifestDisk;
  /** Set for `definition` and `config` files: e.g. `libvirt-domain-xml`, `vmx`, `vim-vm-config-json`. */
  format?: string;
}

/** The manifest of one artifact (`hvkit-backup.json`), format version 1. */
export interface BackupManifest {
  format: 'hvkit-backup';
  /** Manifest format version; readers refuse versions they do not know. */
  version: 1;
  specificationVersion: 'v1';
  /** The adapter that wrote it, e.g. `kvm-libvirt`. */
  adapter: string;
  /** The artifact id (its folder's name). */
  id: string;
  kind: BackupArtifact['kind'];
  method: BackupMethod;
  /** The guest as it was backed up (the host for `host-config`). */
  guest: { id: string; name: string; uuid?: string };
  /** ISO 8601 times. */
  startedAt: string;
  completedAt: string;
  consistency: BackupArtifact['consistency'];
  /** The checkpoint chain: its id, and this artifact's position in it (0 = the full backup). */
  chain?: { id: string; position: number };
  /** For an incremental: the id of the artifact it is relative to (the previous one in the chain). */
  base?: string;
  /** Checkpoint created by this backup, for the next incremental. */
  checkpoint?: string;
  /** Checkpoint this incremental is relative to. */
  parentCheckpoint?: string;
  /** Every file of the artifact except the manifest itself. */
  files: BackupManifestFile[];
}

/**
 * A new artifact id: the UTC start time (so ids sort by time) and a random suffix, e.g.
 * `20261207T120501Z-full-3f9a1c`.
 */
export function newArtifactId(kind: BackupArtifact['kind'], at: Date, random: () => string): string {
  const stamp = at
    .toISOString()
    .replace(/\.\d{3}Z$/, 'Z')
    .replace(/[-:]/g, '');
  return `${stamp}-${kind}-${random()}`;
}

/**
 * The artifact's folder in a sink or source: `<guest name>/<artifact id>`. The guest name is reduced to
 * characters safe in every file system (others become `_`); the id is used as it is.
 */
export function artifactPath(guestName: string, id: string): string {
  const safe = guestName.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_';
  return checkSinkFileName(`${safe.slice(0, 128)}/${id}`);
}

/** Serialises a manifest (stable key order, two-space indent, newline at the end). */
export function serializeBackupManifest(manifest: BackupManifest): Uint8Array {
  return new TextEncoder().encode(`${JSON.stringify(checkBackupManifest(manifest), null, 2)}\n`);
}

/**
 * Writes the manifest into the artifact folder `path` of `sink`, as the artifact's last file.
 *
 * @returns the manifest's {@link BackupFile}, named `<path>/hvkit-backup.json`.
 */
export async function writeBackupManifest(
  sink: BackupSink,
  path: string,
  manifest: BackupManifest,
  options: { signal?: AbortSignal } = {},
): Promise<BackupFile> {
  const bytes = serializeBackupManifest(manifest);
  async function* one(): AsyncGenerator<Uint8Array> {
    yield bytes;
  }
  return sink.writeFile(`${path}/${BACKUP_MANIFEST_FILE}`, one(), {
    ...(options.signal ? { signal: options.signal } : {}),
    expectedBytes: bytes.byteLength,
  });
}

/**
 * Parses and checks a manifest read from a source.
 *
 * @throws HvkitError `PROTOCOL` when the text is not a valid version-1 manifest (naming the first problem),
 *   `UNSUPPORTED` for a newer manifest version.
 */
export function parseBackupManifest(text: string | Uint8Array): BackupManifest {
  const bytes = typeof text === 'string' ? Buffer.byteLength(text) : text.byteLength;
  if (bytes > BACKUP_MANIFEST_MAX_BYTES) {
    throw hvkitError(
      'PROTOCOL',
      `Backup manifest is ${bytes} bytes, over the ${BACKUP_MANIFEST_MAX_BYTES} limit.`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(
      typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text),
    );
  } catch (error) {
    throw hvkitError('PROTOCOL', `Backup manifest is not valid JSON: ${(error as Error).message}`);
  }
  if (
    typeof value === 'object' &&
    value !== null &&
    (value as { format?: unknown }).format === 'hvkit-backup'
  ) {
    const version = (value as { version?: unknown }).version;
    if (typeof version === 'number' && version > 1) {
      throw hvkitError(
        'UNSUPPORTED',
        `Backup manifest version ${version} is newer than this hvkit reads (1).`,
        {
          details: { version },
        },
      );
    }
  }
  return checkBackupManifest(value as BackupManifest, 'PROTOCOL');
}

const SHA256_RE = /^[0-9a-f]{64}$/;
const ROLES: ReadonlySet<string> = new Set(['disk', 'definition', 'config', 'host-config']);
const KINDS: ReadonlySet<string> = new Set(['full', 'incremental', 'host-config']);

/**
 * Checks a manifest's shape and returns a copy with only the known fields, in a stable order.
 *
 * @throws HvkitError `code` (default `INVALID_ARGUMENT`) naming the first problem.
 */
export function checkBackupManifest(
  manifest: BackupManifest,
  code: 'PROTOCOL' | 'INVALID_ARGUMENT' = 'INVALID_ARGUMENT',
): BackupManifest {
  const bad = (why: string): never => {
    throw hvkitError(code, `Invalid backup manifest: ${why}.`);
  };
  const m = manifest as unknown as Record<string, unknown>;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) bad('not an object');
  if (m.format !== 'hvkit-backup') bad('format is not "hvkit-backup"');
  if (m.version !== 1) bad('version is not 1');
  if (m.specificationVersion !== 'v1') bad('specificationVersion is not "v1"');
  const str = (key: string, value: unknown, max = 1024): string => {
    if (typeof value !== 'string' || value === '' || value.length > max)
      bad(`${key} is not a non-empty string`);
    return value as string;
  };
  const adapter = str('adapter', m.adapter, 64);
  const id = str('id', m.id, 128);
  if (!/^[A-Za-z0-9._-]+$/.test(id) || id.startsWith('.'))
    bad('id has characters other than A-Z a-z 0-9 . _ -');
  if (typeof m.kind !== 'string' || !KINDS.has(m.kind)) bad('kind is not full, incremental or host-config');
  const method = str('method', m.method, 64);
  const guest = m.guest as Record<string, unknown> | undefined;
  if (typeof guest !== 'object' || guest === null) bad('guest is missing');
  const g = guest as Record<string, unknown>;
  const guestOut: BackupManifest['guest'] = { id: str('guest.id', g.id), name: str('guest.name', g.name) };
  if (g.uuid !== undefined) guestOut.uuid = str('guest.uuid', g.uuid, 64);
  const time = (key: string, value: unknown): string => {
    const text = str(key, value, 64);
    if (Number.isNaN(Date.parse(text))) bad(`${key} is not an ISO 8601 time`);
    return text;
  };
  const startedAt = time('startedAt', m.startedAt);
  const completedAt = time('completedAt', m.completedAt);
  if (m.consistency !== 'crash' && m.consistency !== 'fs-frozen')
    bad('consistency is not crash or fs-frozen');
  const out: BackupManifest = {
    format: 'hvkit-backup',
    version: 1,
    specificationVersion: 'v1',
    adapter,
    id,
    kind: m.kind as BackupManifest['kind'],
    method,
    guest: guestOut,
    startedAt,
    completedAt,
    consistency: m.consistency as BackupManifest['consistency'],
    files: [],
  };
  if (m.chain !== undefined) {
    const c = m.chain as Record<string, unknown>;
    if (typeof c !== 'object' || c === null) bad('chain is not an object');
    const position = c.position;
    if (typeof position !== 'number' || !Number.isSafeInteger(position) || position < 0) {
      bad('chain.position is not a non-negative integer');
    }
    out.chain = { id: str('chain.id', c.id, 128), position: position as number };
  }
  if (m.base !== undefined) out.base = str('base', m.base, 128);
  if (m.checkpoint !== undefined) out.checkpoint = str('checkpoint', m.checkpoint);
  if (m.parentCheckpoint !== undefined) out.parentCheckpoint = str('parentCheckpoint', m.parentCheckpoint);
  if (out.kind === 'incremental' && (out.base === undefined || out.chain === undefined)) {
    bad('an incremental has no base or chain');
  }
  if (out.chain?.position === 0 && out.kind === 'incremental') bad('an incremental at chain position 0');
  if (!Array.isArray(m.files)) bad('files is not an array');
  const names = new Set<string>();
  for (const [i, raw] of (m.files as unknown[]).entries()) {
    const f = raw as Record<string, unknown>;
    if (typeof f !== 'object' || f === null) bad(`files[${i}] is not an object`);
    const name = str(`files[${i}].name`, f.name);
    try {
      checkSinkFileName(name);
    } catch {
      bad(`files[${i}].name ${JSON.stringify(name.slice(0, 100))} is not a safe relative path`);
    }
    if (name === BACKUP_MANIFEST_FILE) bad(`files[${i}] is the manifest itself`);
    if (names.has(name)) bad(`files[${i}].name ${JSON.stringify(name)} is listed twice`);
    names.add(name);
    if (typeof f.role !== 'string' || !ROLES.has(f.role)) bad(`files[${i}].role is not a known role`);
    const size = f.bytes;
    if (typeof size !== 'number' || !Number.isSafeInteger(size) || size < 0) {
      bad(`files[${i}].bytes is not a non-negative integer`);
    }
    if (typeof f.sha256 !== 'string' || !SHA256_RE.test(f.sha256)) {
      bad(`files[${i}].sha256 is not 64 lower-case hex digits`);
    }
    const file: BackupManifestFile = {
      name,
      role: f.role as BackupFileRole,
      bytes: size as number,
      sha256: f.sha256 as string,
    };
    if (f.format !== undefined) file.format = str(`files[${i}].format`, f.format, 64);
    if (f.disk !== undefined) {
      const d = f.disk as Record<string, unknown>;
      if (typeof d !== 'object' || d === null) bad(`files[${i}].disk is not an object`);
      const capacity = d.capacityBytes;
      if (typeof capacity !== 'number' || !Number.isSafeInteger(capacity) || capacity < 0) {
        bad(`files[${i}].disk.capacityBytes is not a non-negative integer`);
      }
      file.disk = {
        device: str(`files[${i}].disk.device`, d.device, 64),
        format: str(`files[${i}].disk.format`, d.format, 32),
        capacityBytes: capacity as number,
      };
      if (d.incremental !== undefined)
        file.disk.incremental = str(`files[${i}].disk.incremental`, d.incremental, 64);
    }
    if (file.role === 'disk' && file.disk === undefined) bad(`files[${i}] is a disk file without disk`);
    out.files.push(file);
  }
  if (out.kind !== 'host-config' && !out.files.some((f) => f.role === 'definition')) {
    bad('a guest backup has no definition file');
  }
  return out;
}
