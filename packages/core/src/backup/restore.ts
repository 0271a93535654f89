/**
 * What every restore shares, whatever the backend: listing the artifacts a source holds, resolving the
 * artifact to restore into its chain (the full backup first, then each incremental), and reading a file
 * of an artifact while checking it against the manifest.
 */

import { createHash } from 'node:crypto';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import { abortError, checkSignal } from '../signal/abort';
import { BACKUP_MANIFEST_FILE, type BackupManifest, type BackupManifestFile } from './manifest';
import type { BackupListing, BackupSource } from './source';
import { checkSinkFileName } from './stream-sink';

/** Most artifact folders a source lists (a guard against a hostile tree). */
export const MAX_SOURCE_ARTIFACTS = 100_000;

/**
 * Builds a source's listing from its artifact folders (`<guest folder>/<artifact id>`): each folder's
 * manifest is read; a missing manifest makes the artifact incomplete, an invalid one too (with the problem in
 * `invalid`). With `guest`, only artifacts whose manifest names that guest (name or id), and incomplete ones
 * in the folder {@link artifactPath} gives that name, are kept. Sorted oldest first by id (ids sort by time),
 * then path. For source implementations.
 */
export async function listingOf(
  folders: readonly { guestFolder: string; id: string }[],
  readManifest: (path: string, options: { signal?: AbortSignal }) => Promise<BackupManifest>,
  options: { guest?: string; signal?: AbortSignal; guestFolderOf?: (guest: string) => string } = {},
): Promise<BackupListing[]> {
  const { guest, signal } = options;
  const guestFolder = guest === undefined ? undefined : options.guestFolderOf?.(guest);
  const out: BackupListing[] = [];
  for (const f of folders.slice(0, MAX_SOURCE_ARTIFACTS)) {
    if (signal?.aborted) throw abortError(signal, { operation: 'source.list' });
    const path = `${f.guestFolder}/${f.id}`;
    let listing: BackupListing;
    try {
      const manifest = await readManifest(path, { signal });
      listing = { path, id: f.id, complete: true, manifest };
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) listing = { path, id: f.id, complete: false };
      else if (HvkitError.isInstance(error, 'PROTOCOL') || HvkitError.isInstance(error, 'UNSUPPORTED')) {
        listing = { path, id: f.id, complete: false, invalid: error.message };
      } else throw error;
    }
    if (guest !== undefined) {
      const m = listing.manifest;
      const mine = m ? m.guest.name === guest || m.guest.id === guest : f.guestFolder === guestFolder;
      if (!mine) continue;
    }
    out.push(listing);
  }
  return out.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : a.path < b.path ? -1 : 1));
}

/** One artifact of a chain to restore. */
export interface RestoreLink {
  /** Its folder in the source, `<guest>/<id>`. */
  path: string;
  manifest: BackupManifest;
}

/** What {@link resolveRestoreChain} returns: the artifacts to restore, oldest first. */
export interface RestoreChain {
  /** The chain's full backup first, then each incremental up to {@link RestoreChain.target}. */
  links: RestoreLink[];
  /** The artifact asked for (the last link). */
  target: RestoreLink;
}

function invalid(message: string, details: Record<string, unknown>): HvkitError {
  return hvkitError('INVALID_ARGUMENT', message, {
    operation: 'backups.restore',
    details: { reason: 'artifact-invalid', ...details },
  });
}

/**
 * Resolves `RestoreOptions.artifact` / `guest` against a source into the chain to restore:
 * - `artifact` (an id or a path as the source lists it): that artifact; with `guest` too, it must be that
 *   guest's;
 * - else the newest complete guest artifact of `guest`, or of the source's only guest.
 *
 * An incremental brings its chain: each `base` is looked up in the source, back to the full backup.
 *
 * @throws HvkitError `NOT_FOUND` (no such artifact, no artifact of the guest, a link of the chain missing from
 *   the source, details.reason `chain-link-missing`), `INVALID_ARGUMENT` (several guests and none chosen:
 *   details.reason `ambiguous`; an incomplete or invalid artifact, a host-config artifact, or a chain whose
 *   links do not fit together: details.reason `artifact-invalid`), `ABORTED`, or what the source throws.
 */
export async function resolveRestoreChain(
  source: BackupSource,
  options: { artifact?: string; guest?: string; signal?: AbortSignal } = {},
): Promise<RestoreChain> {
  if (typeof source !== 'object' || source === null || typeof source.list !== 'function') {
    throw new TypeError('backups.restore: source must be a BackupSource.');
  }
  const { artifact, guest } = options;
  if (artifact !== undefined && (typeof artifact !== 'string' || artifact === '')) {
    throw new TypeError('backups.restore: artifact must be a non-empty string.');
  }
  if (guest !== undefined && (typeof guest !== 'string' || guest === '')) {
    throw new TypeError('backups.restore: guest must be a non-empty string.');
  }
  const signal = checkSignal(options.signal);
  const context = { operation: 'backups.restore' };
  if (signal?.aborted) throw abortError(signal, context);
  const all = await source.list(signal ? { signal } : {});
  const byId = new Map<string, BackupListing>();
  for (const l of all) if (!byId.has(l.id) || l.complete) byId.set(l.id, l);
  const isGuests = (l: BackupListing) =>
    guest === undefined || l.manifest?.guest.name === guest || l.manifest?.guest.id === guest;

  let chosen: BackupListing | undefined;
  if (artifact !== undefined) {
    chosen = all.find((l) => l.path === artifact) ?? byId.get(artifact);
    if (!chosen) {
      throw hvkitError('NOT_FOUND', `${source.location} holds no artifact ${JSON.stringify(artifact)}.`, {
        ...context,
        details: { artifact },
      });
    }
    if (chosen.complete && !isGuests(chosen)) {
      throw hvkitError(
        'INVALID_ARGUMENT',
        `Artifact ${JSON.stringify(artifact)} is a backup of ${JSON.stringify(chosen.manifest?.guest.name)}, not of ${JSON.stringify(guest)}.`,
        { ...context, details: { reason: 'artifact-invalid', artifact, guest } },
      );
    }
  } else {
    const candidates = all.filter((l) => l.complete && l.manifest?.kind !== 'host-config' && isGuests(l));
    if (candidates.length === 0) {
      throw hvkitError(
        'NOT_FOUND',
        `${source.location} holds no complete backup${guest === undefined ? '' : ` of ${JSON.stringify(guest)}`}.`,
        { ...context, details: guest === undefined ? {} : { guest } },
      );
    }
    const guests = new Set(candidates.map((l) => l.manifest?.guest.id));
    if (guest === undefined && guests.size > 1) {
      throw hvkitError(
        'INVALID_ARGUMENT',
        `${source.location} holds backups of ${guests.size} guests; choose one with \`guest\` or \`artifact\`.`,
        { ...context, details: { reason: 'ambiguous', guests: [...guests].slice(0, 20) } },
      );
    }
    chosen = candidates.at(-1);
  }
  const target = chosen as BackupListing;
  const links: RestoreLink[] = [];
  let at: BackupListing | undefined = target;
  const seen = new Set<string>();
  while (at) {
    if (!at.complete || !at.manifest) {
      throw invalid(
        `Artifact ${JSON.stringify(at.path)} is incomplete (${at.invalid ?? `no ${BACKUP_MANIFEST_FILE}`}); it cannot be restored.`,
        { artifact: at.path },
      );
    }
    const m: BackupManifest = at.manifest;
    if (m.kind === 'host-config') {
      throw invalid(`Artifact ${JSON.stringify(at.path)} is a host configuration backup, not a guest's.`, {
        artifact: at.path,
      });
    }
    seen.add(m.id);
    links.unshift({ path: at.path, manifest: m });
    if (m.kind === 'full') break;
    const base = m.base as string;
    const next = byId.get(base);
    if (!next) {
      throw hvkitError(
        'NOT_FOUND',
        `The chain of ${JSON.stringify(target.path)} needs artifact ${JSON.stringify(base)}, which ${source.location} does not hold.`,
        { ...context, details: { reason: 'chain-link-missing', artifact: target.path, missing: base } },
      );
    }
    const nm = next.manifest;
    if (
      seen.has(base) ||
      (nm &&
        (nm.chain?.id !== m.chain?.id ||
          nm.chain?.position !== (m.chain?.position as number) - 1 ||
          nm.guest.id !== m.guest.id ||
          (m.parentCheckpoint !== undefined && nm.checkpoint !== m.parentCheckpoint)))
    ) {
      throw invalid(
        `Artifact ${JSON.stringify(next.path)} does not fit the chain of ${JSON.stringify(m.id)} (chain, position, guest or checkpoint differ).`,
        { artifact: next.path, chain: m.chain?.id },
      );
    }
    at = next;
  }
  return { links, target: links.at(-1) as RestoreLink };
}

/** Options of {@link readVerifiedFile}. */
export interface VerifiedReadOptions {
  signal?: AbortSignal;
  /** Called with the size of each chunk handed on. */
  onBytes?: (bytes: number) => void;
}

function mismatch(
  path: string,
  file: BackupManifestFile,
  actual: { bytes?: number; sha256?: string; missing?: boolean },
  why: string,
): HvkitError {
  return hvkitError(
    'INVALID_ARGUMENT',
    `Backup file ${JSON.stringify(path)} does not match its manifest: ${why}.`,
    {
      operation: 'backups.restore',
      details: {
        reason: 'artifact-mismatch',
        file: path,
        expected: { bytes: file.bytes, sha256: file.sha256 },
        actual,
      },
    },
  );
}

/**
 * Streams `<artifact>/<file.name>` from `source`, checking it against its manifest entry while it streams:
 * - too long: fails as soon as the count passes `file.bytes`, before the chunk that passes it is handed on;
 * - too short, or a different sha256: fails when the source ends, before the **last** chunk is handed on
 *   (the reader holds one chunk back), so a consumer never receives the whole of a bad file;
 * - missing: fails at once.
 *
 * The failure is `INVALID_ARGUMENT` with `details.reason = 'artifact-mismatch'`, `details.file`,
 * `details.expected` and `details.actual`. Since a consumer has seen all but the last chunk of a corrupt
 * file by then, a restore must write into temporary places (volumes, files) and make them visible only after
 * every file of the chain has been read to its end.
 */
export async function* readVerifiedFile(
  source: BackupSource,
  artifact: string,
  file: BackupManifestFile,
  options: VerifiedReadOptions = {},
): AsyncGenerator<Uint8Array> {
  const path = checkSinkFileName(`${artifact}/${file.name}`);
  const signal = checkSignal(options.signal);
  const context = { operation: 'backups.restore' };
  if (signal?.aborted) throw abortError(signal, context);
  const hash = createHash('sha256');
  let bytes = 0;
  let held: Uint8Array | undefined;
  const iterator = source.readFile(path, signal ? { signal } : {})[Symbol.asyncIterator]();
  let finished = false;
  try {
    for (;;) {
      let step: IteratorResult<Uint8Array>;
      try {
        step = await iterator.next();
      } catch (error) {
        if (HvkitError.isInstance(error, 'NOT_FOUND')) {
          finished = true;
          throw mismatch(path, file, { missing: true }, 'the file is missing');
        }
        finished = true;
        throw error;
      }
      if (step.done) {
        finished = true;
        break;
      }
      if (signal?.aborted) throw abortError(signal, context);
      const chunk = step.value;
      if (!(chunk instanceof Uint8Array)) throw new TypeError('A backup source yielded a non-byte chunk.');
      if (chunk.byteLength === 0) continue;
      bytes += chunk.byteLength;
      if (bytes > file.bytes) {
        throw mismatch(path, file, { bytes }, `more than the ${file.bytes} bytes the manifest lists`);
      }
      hash.update(chunk);
      if (held) {
        const out = held;
        held = chunk;
        options.onBytes?.(out.byteLength);
        yield out;
      } else held = chunk;
    }
    if (bytes !== file.bytes) {
      throw mismatch(path, file, { bytes }, `${bytes} bytes, the manifest lists ${file.bytes}`);
    }
    const sha256 = hash.digest('hex');
    if (sha256 !== file.sha256) {
      throw mismatch(path, file, { bytes, sha256 }, `sha256 ${sha256}, the manifest lists ${file.sha256}`);
    }
    if (held) {
      options.onBytes?.(held.byteLength);
      yield held;
    }
  } finally {
    if (!finished) await Promise.resolve(iterator.return?.()).catch(() => {});
  }
}

/**
 * Reads a whole (small) file of an artifact into memory, verified as {@link readVerifiedFile} does; for
 * definitions and configuration files.
 *
 * @throws HvkitError `INVALID_ARGUMENT` (details.reason `artifact-invalid`) when the manifest lists it over
 *   `maxBytes` (default 16 MiB), besides the errors of {@link readVerifiedFile}.
 */
export async function readVerifiedBytes(
  source: BackupSource,
  artifact: string,
  file: BackupManifestFile,
  options: VerifiedReadOptions & { maxBytes?: number } = {},
): Promise<Uint8Array> {
  const max = options.maxBytes ?? 16 * 1024 * 1024;
  if (file.bytes > max) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `Backup file ${JSON.stringify(`${artifact}/${file.name}`)} is ${file.bytes} bytes, over the ${max} read into memory.`,
      { operation: 'backups.restore', details: { reason: 'artifact-invalid', file: file.name } },
    );
  }
  const out = new Uint8Array(file.bytes);
  let at = 0;
  for await (const chunk of readVerifiedFile(source, artifact, file, options)) {
    out.set(chunk, at);
    at += chunk.byteLength;
  }
  return out;
}
