/**
 * What hvkit keeps on the libvirt side to manage its backups, so that another process (or the next run)
 * can tell hvkit's things from anyone else's:
 *
 * - the **checkpoint tag**: hvkit's checkpoints carry `hvkit chain=<chain id> run=<artifact id>
 *   position=<n>` in their `<description>` (never recognised by name: a checkpoint someone else made with
 *   virsh or virtnbdbackup has no such description and is never touched);
 * - the **lease**: a `<lease>` element in the domain's metadata under its own namespace
 *   ({@link BACKUP_LEASE_NAMESPACE}), naming the owner (`<hostname>:<pid>`), the run, its start and expiry;
 * - the **temporary volume names** of push backups: `hvkit-backup-<guest uuid>-<run>.<device>.qcow2` in the
 *   backup pool.
 *
 * Pure functions; internal.
 */

import { buildXml, hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import { hasControlChar, parseRoot, rawAttr } from './xml-util';

// ---------------------------------------------------------------------------------------------------------
// Checkpoint tag

/** An hvkit checkpoint's place: the chain (its full backup's artifact id), the run that made it, and where. */
export interface CheckpointTag {
  /** Chain id: the artifact id of the chain's full backup. */
  chain: string;
  /** Artifact id of the backup that created the checkpoint. */
  run: string;
  /** 0 for the full backup, n for the n-th incremental. */
  position: number;
}

/** The description hvkit's checkpoints had before chains existed: still hvkit's (a full backup removes them). */
export const LEGACY_CHECKPOINT_DESCRIPTION = 'created by hvkit backups.backup';

const ID_RE = /^[A-Za-z0-9._-]{1,128}$/;
const TAG_RE = /^hvkit chain=([A-Za-z0-9._-]{1,128}) run=([A-Za-z0-9._-]{1,128}) position=(\d{1,9})$/;

/**
 * The `<description>` of an hvkit checkpoint.
 *
 * @throws TypeError for an id that is not 1 to 128 of `A-Z a-z 0-9 . _ -`, or a bad position.
 */
export function checkpointDescription(tag: CheckpointTag): string {
  for (const key of ['chain', 'run'] as const) {
    if (typeof tag[key] !== 'string' || !ID_RE.test(tag[key])) {
      throw new TypeError(`checkpointDescription: ${key} must be 1 to 128 of A-Z a-z 0-9 . _ -.`);
    }
  }
  if (!Number.isSafeInteger(tag.position) || tag.position < 0 || tag.position > 999_999_999) {
    throw new TypeError('checkpointDescription: position must be an integer from 0 to 999999999.');
  }
  return `hvkit chain=${tag.chain} run=${tag.run} position=${tag.position}`;
}

/**
 * Reads a checkpoint's `<description>`: the tag of an hvkit checkpoint, `'legacy'` for one made by hvkit
 * before chains (description {@link LEGACY_CHECKPOINT_DESCRIPTION}), undefined for anyone else's.
 */
export function parseCheckpointTag(description: string | undefined): CheckpointTag | 'legacy' | undefined {
  if (typeof description !== 'string') return undefined;
  const text = description.trim();
  if (text === LEGACY_CHECKPOINT_DESCRIPTION) return 'legacy';
  const m = TAG_RE.exec(text);
  if (!m) return undefined;
  return { chain: m[1] as string, run: m[2] as string, position: Number(m[3]) };
}

// ---------------------------------------------------------------------------------------------------------
// Temporary volumes

const VOLUME_PREFIX = 'hvkit-backup-';

function deviceSlug(device: string): string {
  return device.replace(/[^A-Za-z0-9_]/g, '_').slice(0, 64) || '_';
}

/** The name prefix of every temporary volume of `guestUuid`'s push backups. */
export function tempVolumePrefix(guestUuid: string): string {
  return `${VOLUME_PREFIX}${guestUuid.toLowerCase()}-`;
}

/**
 * The file name of the temporary volume a push backup of `guestUuid`, run `run`, writes `device` into:
 * `hvkit-backup-<uuid>-<run>.<device>.qcow2` (device reduced to `A-Z a-z 0-9 _`).
 */
export function tempVolumeName(guestUuid: string, run: string, device: string): string {
  if (!ID_RE.test(run)) throw new TypeError('tempVolumeName: run must be 1 to 128 of A-Z a-z 0-9 . _ -.');
  return `${tempVolumePrefix(guestUuid)}${run}.${deviceSlug(device)}.qcow2`;
}

/**
 * The run of a temporary volume of `guestUuid` (see {@link tempVolumeName}), or undefined when the name is
 * not one (another guest's, or not hvkit's).
 */
export function tempVolumeRun(guestUuid: string, name: string): string | undefined {
  const prefix = tempVolumePrefix(guestUuid);
  if (!name.startsWith(prefix)) return undefined;
  const m = /^([A-Za-z0-9._-]{1,128})\.[A-Za-z0-9_]{1,64}\.qcow2$/.exec(name.slice(prefix.length));
  return m ? (m[1] as string) : undefined;
}

// ---------------------------------------------------------------------------------------------------------
// Lease

/** Namespace URI of the lease element in the domain metadata. */
export const BACKUP_LEASE_NAMESPACE = 'https://hvkit.dev/xmlns/backup-lease/1';
/** Prefix (the `key` of `DOMAIN_SET_METADATA`) libvirt writes the lease element with. */
export const BACKUP_LEASE_KEY = 'hvkit-lease';

/**
 * A lease as stored in the domain metadata: core's `BackupLease` (owner, run, startedAt, expiresAt) plus what
 * the run is and what it creates, so a cleanup knows what a dead run left.
 */
export interface StoredLease {
  /** `<hostname>:<pid>`. */
  owner: string;
  /** The artifact id of the run. */
  run: string;
  /** ISO 8601. */
  startedAt: string;
  /** ISO 8601; the lease stops counting then unless renewed. */
  expiresAt: string;
  /** `backup` or `restore`. */
  operation: string;
  /** The checkpoint the run creates (push backups). */
  checkpoint?: string;
  /** The artifact folder the run writes (`<guest>/<id>`). */
  artifact?: string;
}

const LEASE_FIELDS = [
  'owner',
  'run',
  'startedAt',
  'expiresAt',
  'operation',
  'checkpoint',
  'artifact',
] as const;

/**
 * The lease element for `DOMAIN_SET_METADATA` (type ELEMENT, key {@link BACKUP_LEASE_KEY}, uri
 * {@link BACKUP_LEASE_NAMESPACE}): `<lease owner=".." run=".." .../>`.
 *
 * @throws TypeError for a missing field, a field over 1024 characters or with control characters.
 */
export function buildLeaseXml(lease: StoredLease): string {
  const el: Record<string, string> = {};
  for (const key of LEASE_FIELDS) {
    const value = lease[key];
    if (value === undefined && (key === 'checkpoint' || key === 'artifact')) continue;
    if (typeof value !== 'string' || value === '' || value.length > 1024 || hasControlChar(value)) {
      throw new TypeError(
        `buildLeaseXml: ${key} must be a non-empty one-line string of at most 1024 characters.`,
      );
    }
    el[`@_${key}`] = value;
  }
  return buildXml({ lease: el });
}

/**
 * Reads the lease element `DOMAIN_GET_METADATA` returns (`<lease .../>`, libvirt drops the prefix).
 *
 * @throws HvkitError `PROTOCOL` when it is not a lease (malformed XML, a missing field, a bad time).
 */
export function parseLeaseXml(xml: string): StoredLease {
  const op = 'parseLeaseXml';
  if (typeof xml !== 'string') throw new TypeError('parseLeaseXml: xml must be a string.');
  if (xml.length > 16_384) {
    throw hvkitError('PROTOCOL', 'The backup lease in the domain metadata is over 16384 characters.', {
      adapter: ADAPTER_ID,
      operation: op,
    });
  }
  const root = parseRoot(xml, 'lease', op);
  const out: Partial<StoredLease> = {};
  for (const key of LEASE_FIELDS) {
    const value = rawAttr(root, key);
    if (value !== undefined && value !== '' && value.length <= 1024) out[key] = value;
  }
  const missing = (['owner', 'run', 'startedAt', 'expiresAt'] as const).find((k) => out[k] === undefined);
  const badTime = (['startedAt', 'expiresAt'] as const).find(
    (k) => out[k] !== undefined && !Number.isFinite(Date.parse(out[k] as string)),
  );
  if (missing !== undefined || badTime !== undefined) {
    throw hvkitError(
      'PROTOCOL',
      `The backup lease in the domain metadata ${missing !== undefined ? `has no ${missing}` : `has a bad ${badTime}`}.`,
      { adapter: ADAPTER_ID, operation: op },
    );
  }
  return { ...(out as StoredLease), operation: out.operation ?? 'backup' };
}

/**
 * Whether `lease` still holds at `now`: it has not expired and, when its owner is a process on this host
 * (`<hostname>:<pid>` with `hostname` = `localHost`), that process still exists. `pidAlive` answers the
 * latter (default: signal 0).
 */
export function storedLeaseIsLive(
  lease: StoredLease,
  now: Date,
  localHost: string,
  pidAlive: (pid: number) => boolean = processExists,
): boolean {
  const expires = Date.parse(lease.expiresAt);
  if (!Number.isFinite(expires) || expires <= now.getTime()) return false;
  const colon = lease.owner.lastIndexOf(':');
  if (colon > 0 && lease.owner.slice(0, colon) === localHost) {
    const pid = Number(lease.owner.slice(colon + 1));
    if (Number.isSafeInteger(pid) && pid > 0) return pidAlive(pid);
  }
  return true;
}

/** Whether a process with this pid exists on this host (EPERM: it exists, under another user). */
export function processExists(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * The domain XML without hvkit's lease element and without an empty `<metadata>` (which libvirt leaves
 * behind when a lease is removed), so a saved definition never carries a lease. Everything else stays byte
 * for byte.
 */
export function withoutLeaseMetadata(xml: string): string {
  const ns = BACKUP_LEASE_NAMESPACE.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
  const lease = new RegExp(
    `[ \\t]*<([A-Za-z_][A-Za-z0-9_.-]*):lease\\b[^>]*?xmlns:\\1=(["'])${ns}\\2[^>]*?(?:/>|>[\\s\\S]*?</\\1:lease>)[ \\t]*\\r?\\n?`,
    'g',
  );
  // libvirt leaves `<metadata/>` behind when the lease is removed: an empty element says nothing.
  return xml.replace(lease, '').replace(/[ \t]*<metadata(?:\/>|>\s*<\/metadata>)[ \t]*\r?\n?/, '');
}
