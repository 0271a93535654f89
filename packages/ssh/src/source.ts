/**
 * A BackupSource that reads artifacts from a directory of a remote host over SSH: the mirror of the SSH sink.
 */
import { posix } from 'node:path';
import {
  artifactPath,
  BACKUP_MANIFEST_FILE,
  BACKUP_MANIFEST_MAX_BYTES,
  type BackupListing,
  type BackupManifest,
  type BackupSource,
  checkSignal,
  checkSinkFileName,
  type HvkitError,
  HvkitError as HvkitErrorClass,
  hvkitError,
  listingOf,
  parseBackupManifest,
  type SourceListOptions,
  type SourceReadOptions,
  sinkPathError,
} from '@hvkit/core';
import { connectionOf, type SshClient } from './client';
import { abortedError } from './internal';
import { remoteWalker, WALK_EXIT } from './sink';

/** Options of {@link createSshSource}. */
export interface SshSourceOptions {
  /** Fail with TIMEOUT when the remote side sends no data for this long (default 120000 ms). */
  idleTimeoutMs?: number;
  /** Milliseconds allowed for one short remote step: a listing, a manifest (default 60000). */
  stepTimeoutMs?: number;
}

/** The source returned by {@link createSshSource}. */
export interface SshSource extends BackupSource {
  readonly kind: 'ssh';
  /** `ssh://user@host:port/<remoteDir>`. */
  readonly location: string;
  /** The remote directory artifacts are read from. */
  readonly remoteDir: string;
}

/**
 * Creates a BackupSource reading `remoteDir` on the host of `client`, laid out as the SSH sink (or the
 * directory sink) writes artifacts: `<guest>/<artifact id>/<file>`, `hvkit-backup.json` last.
 *
 * Files are read in a remote shell with the sink's defences: the shell enters each directory below
 * `remoteDir` with `cd -P`, refusing one that is a symbolic link or not a directory (checked again with
 * `pwd -P` after each step), then streams `./<file>` only when it is a regular file and not a link (with GNU
 * `dd`, `iflag=nofollow` also refuses a link swapped in after that test). A link on the way, or as the file,
 * fails with `CONFLICT` (core's `sinkPathError`); a missing file with `NOT_FOUND`. Nothing from a name is
 * interpolated into the script. Reading needs a shell on the remote host (an SFTP-only account cannot read
 * through this source). `list()` reads directories over SFTP, whose listing does not follow links: a link
 * where a guest or artifact folder would be is not an artifact. Manifests are bounded
 * (`BACKUP_MANIFEST_MAX_BYTES`), `readFile` stops at `maxBytes`, and every step has a timeout.
 *
 * @example
 * const source = createSshSource(ssh, '/srv/backups');
 * const newest = (await source.list({ guest: 'web' })).filter((a) => a.complete).at(-1);
 */
export function createSshSource(
  client: SshClient,
  remoteDir: string,
  options: SshSourceOptions = {},
): SshSource {
  const conn = connectionOf(client);
  if (typeof remoteDir !== 'string' || remoteDir.length === 0)
    throw new TypeError('remoteDir must be a non-empty string');
  if (remoteDir.includes('\0')) {
    throw hvkitError('INVALID_ARGUMENT', 'remoteDir contains a NUL byte', { operation: 'source.create' });
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const stepTimeoutMs = options.stepTimeoutMs ?? 60_000;
  for (const [name, v] of [
    ['idleTimeoutMs', idleTimeoutMs],
    ['stepTimeoutMs', stepTimeoutMs],
  ] as const) {
    if (!Number.isSafeInteger(v) || v <= 0) throw new TypeError(`${name} must be a positive integer`);
  }
  const location = `${conn.target}${remoteDir.startsWith('/') ? '' : '/'}${remoteDir}`;
  const where = `source ${location}`;
  const { below, walkArgv, remoteFailure } = remoteWalker(remoteDir, where);

  /** Sub-directories (not links, not hidden) of `path`, sorted; none when it is missing. */
  const subdirectories = async (path: string, signal: AbortSignal | undefined): Promise<string[]> => {
    try {
      const entries = await client.files.list(path, { signal, timeoutMs: stepTimeoutMs });
      return entries
        .filter((e) => e.type === 'directory' && !e.name.startsWith('.'))
        .map((e) => e.name)
        .sort();
    } catch (e) {
      if (HvkitErrorClass.isInstance(e, 'NOT_FOUND')) return [];
      throw e;
    }
  };

  /** The error of a failed read of `entry` in `segments` (the walk's index past the segments is the file). */
  const readFailure = (
    res: { exitCode: number | null; signal: string | null; stderr: Buffer },
    segments: readonly string[],
    entry: string,
    op: string,
  ): HvkitError => {
    const text = res.stderr.subarray(-4096).toString('utf8');
    const path = posix.join(below(segments), entry);
    if (text.includes(`hvkit-walk:${segments.length}`)) {
      if (res.exitCode === WALK_EXIT.link) return sinkPathError(path, 'symlink', { operation: op, where });
      if (res.exitCode === WALK_EXIT.missing) {
        return hvkitError('NOT_FOUND', `${where}: no such file ${JSON.stringify(path)}`, {
          operation: op,
          details: { path },
        });
      }
      return hvkitError('CONFLICT', `${where}: ${JSON.stringify(path)} is not a regular file`, {
        operation: op,
        details: { path },
      });
    }
    // GNU dd's nofollow refusing a link swapped in after the test.
    if (/too many levels of symbolic links/i.test(text)) {
      return sinkPathError(path, 'symlink', { operation: op, where });
    }
    return remoteFailure(res, segments, `reading ${path}`, op);
  };

  function readFile(name: string, readOptions: SourceReadOptions = {}): AsyncIterable<Uint8Array> {
    checkSinkFileName(name);
    if (typeof readOptions !== 'object' || readOptions === null)
      throw new TypeError('options must be an object');
    const signal = checkSignal(readOptions.signal);
    const { maxBytes } = readOptions;
    if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
      throw new TypeError('maxBytes must be a non-negative integer');
    }
    const op = 'source.readFile';
    const segments = name.split('/');
    const entry = segments.pop() as string;
    return (async function* () {
      if (signal?.aborted) throw abortedError(op, signal, location);
      conn.ensureOpen(op);
      const proc = client.exec.spawn({ argv: walkArgv('check', 'read', entry, segments), signal });
      proc.stderr.resume();
      const waited = proc.wait();
      waited.catch(() => {});
      const stdout = proc.stdout;
      let total = 0;
      let finished = false;
      let idle: NodeJS.Timeout | undefined;
      let idleFired = false;
      const arm = () => {
        if (idle) clearTimeout(idle);
        idle = setTimeout(() => {
          idleFired = true;
          stdout.destroy(
            hvkitError('TIMEOUT', `${where}: the remote side sent no data for ${idleTimeoutMs} ms`, {
              operation: op,
              details: { idleTimeoutMs },
            }),
          );
        }, idleTimeoutMs);
        idle.unref?.();
      };
      try {
        arm();
        try {
          for await (const chunk of stdout as AsyncIterable<Buffer>) {
            arm();
            total += chunk.length;
            if (maxBytes !== undefined && total > maxBytes) {
              throw hvkitError(
                'PROTOCOL',
                `${where}: ${JSON.stringify(name)} is longer than the ${maxBytes} bytes allowed`,
                { operation: op, details: { name, maxBytes } },
              );
            }
            yield new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength);
          }
        } catch (e) {
          if (idleFired || HvkitErrorClass.isInstance(e, 'PROTOCOL')) throw e;
          // The stream failed: the process result says why (an abort, a lost connection).
          const r = await waited.catch((err: unknown) => err);
          if (HvkitErrorClass.isInstance(r)) throw r;
          throw e;
        }
        if (idle) clearTimeout(idle);
        const r = await waited;
        if (r.exitCode !== 0) throw readFailure(r, segments, entry, op);
        finished = true;
      } finally {
        if (idle) clearTimeout(idle);
        if (!finished) {
          proc.kill();
          stdout.destroy();
        }
      }
    })();
  }

  async function readManifest(
    path: string,
    readOptions: { signal?: AbortSignal } = {},
  ): Promise<BackupManifest> {
    checkSinkFileName(path);
    const signal = checkSignal(readOptions.signal);
    const parts: Uint8Array[] = [];
    let size = 0;
    const step = AbortSignal.timeout(stepTimeoutMs);
    const both = signal ? AbortSignal.any([signal, step]) : step;
    try {
      for await (const chunk of readFile(`${path}/${BACKUP_MANIFEST_FILE}`, {
        signal: both,
        maxBytes: BACKUP_MANIFEST_MAX_BYTES,
      })) {
        parts.push(chunk);
        size += chunk.byteLength;
      }
    } catch (e) {
      if (HvkitErrorClass.isInstance(e, 'PROTOCOL') && !signal?.aborted) {
        throw hvkitError(
          'PROTOCOL',
          `Backup manifest ${JSON.stringify(path)} is over the ${BACKUP_MANIFEST_MAX_BYTES} limit.`,
          { operation: 'source.readManifest', cause: e },
        );
      }
      if (step.aborted && !signal?.aborted) {
        throw hvkitError(
          'TIMEOUT',
          `${where}: reading the manifest of ${path} took over ${stepTimeoutMs} ms`,
          {
            operation: 'source.readManifest',
          },
        );
      }
      throw e;
    }
    return parseBackupManifest(Buffer.concat(parts, size));
  }

  return {
    kind: 'ssh',
    location,
    remoteDir,

    async list(listOptions: SourceListOptions = {}): Promise<BackupListing[]> {
      const signal = checkSignal(listOptions.signal);
      const op = 'source.list';
      if (signal?.aborted) throw abortedError(op, signal, location);
      const folders: { guestFolder: string; id: string }[] = [];
      for (const guestFolder of await subdirectories(remoteDir, signal)) {
        for (const id of await subdirectories(posix.join(remoteDir, guestFolder), signal)) {
          folders.push({ guestFolder, id });
        }
      }
      return listingOf(folders, readManifest, {
        ...(listOptions.guest === undefined ? {} : { guest: listOptions.guest }),
        ...(signal ? { signal } : {}),
        guestFolderOf: (g) => artifactPath(g, 'x').split('/')[0] as string,
      });
    },
    readManifest,
    readFile,
  };
}
