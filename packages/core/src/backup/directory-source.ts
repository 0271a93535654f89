/**
 * A backup source that reads artifacts from a local directory: the mirror of the directory sink.
 */

import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import { abortError, checkSignal } from '../signal/abort';
import { errnoToHvkitError } from '../transport/local-files';
import { type ConfinedDirectory, openConfinedDirectory } from './confined-dir';
import {
  artifactPath,
  BACKUP_MANIFEST_FILE,
  BACKUP_MANIFEST_MAX_BYTES,
  type BackupManifest,
  parseBackupManifest,
} from './manifest';
import { listingOf } from './restore';
import type { BackupListing, BackupSource, SourceListOptions, SourceReadOptions } from './source';
import { checkSinkFileName, sinkPathError } from './stream-sink';

/** Size of the chunks the directory source reads. */
const CHUNK_BYTES = 1024 * 1024;

const READ_NOFOLLOW = fsConstants.O_RDONLY | fsConstants.O_NOFOLLOW;

/** Options of {@link createDirectorySource}. */
export interface DirectorySourceOptions {
  /** Size of each chunk `readFile` yields, in bytes (default 1 MiB). */
  chunkBytes?: number;
}

function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

/**
 * A source reading artifacts from `dir`, laid out as the directory sink writes them
 * (`<guest>/<artifact id>/<file>`, `hvkit-backup.json` last). It is confined to `dir` the way the sink is:
 * `dir` itself may be a symbolic link, nothing below it is followed (a link on the way, or as the file
 * itself, fails with `CONFLICT`), and on Linux each directory is held open while the next step is resolved
 * from it. Reads are bounded: a manifest over {@link BACKUP_MANIFEST_MAX_BYTES} is refused, `readFile` stops
 * at `maxBytes`.
 *
 * `list()` reports every `<guest>/<id>` folder: complete with its manifest, or incomplete (no manifest: a
 * run that failed or was killed). Hidden entries (the sink's `.hvkit-partial-*` files) are not artifacts.
 */
export function createDirectorySource(dir: string, options: DirectorySourceOptions = {}): BackupSource {
  if (typeof dir !== 'string') throw new TypeError('createDirectorySource: dir must be a string.');
  if (dir === '' || dir.includes('\0'))
    throw hvkitError('INVALID_ARGUMENT', 'createDirectorySource: invalid directory.');
  const chunkBytes = options.chunkBytes ?? CHUNK_BYTES;
  if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
    throw new TypeError('createDirectorySource: chunkBytes must be a positive integer.');
  }
  const root = resolve(dir);

  /** Opens the folder `segments` below the root; `undefined` when it is missing. */
  const openFolder = async (segments: readonly string[], operation: string) => {
    try {
      return await openConfinedDirectory(root, segments, { operation });
    } catch (error) {
      if (HvkitError.isInstance(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  };

  /** Sub-directories (not links, not hidden) of an open folder, sorted. */
  const subdirectories = async (folder: ConfinedDirectory, operation: string): Promise<string[]> => {
    let entries: import('node:fs').Dirent[];
    try {
      entries = await fsp.readdir(folder.entryPath('.'), { withFileTypes: true });
    } catch (error) {
      throw errnoToHvkitError(error, { operation, path: folder.path });
    }
    return entries
      .filter((e) => e.isDirectory() && !e.name.startsWith('.'))
      .map((e) => e.name)
      .sort();
  };

  /** Opens one file below the root for reading, never through a link. */
  const openFile = async (name: string, operation: string) => {
    const segments = name.split('/');
    const base = segments.pop() as string;
    const parent = await openConfinedDirectory(root, segments, { operation });
    try {
      let handle: fsp.FileHandle;
      try {
        handle = await fsp.open(parent.entryPath(base), READ_NOFOLLOW);
      } catch (error) {
        if (errnoOf(error) === 'ELOOP') throw sinkPathError(join(root, name), 'symlink', { operation });
        throw errnoToHvkitError(error, { operation, path: join(root, name) });
      }
      try {
        await parent.confirm(base, handle);
        const st = await handle.stat();
        if (!st.isFile()) {
          throw hvkitError('CONFLICT', `${JSON.stringify(join(root, name))} is not a regular file.`, {
            operation,
            details: { path: join(root, name) },
          });
        }
        return { handle, size: st.size };
      } catch (error) {
        await handle.close().catch(() => {});
        throw error;
      }
    } finally {
      await parent.close();
    }
  };

  async function readManifest(path: string, readOptions: { signal?: AbortSignal } = {}) {
    const operation = 'source.readManifest';
    checkSinkFileName(path);
    const signal = checkSignal(readOptions.signal);
    if (signal?.aborted) throw abortError(signal, { operation });
    const { handle, size } = await openFile(`${path}/${BACKUP_MANIFEST_FILE}`, operation);
    try {
      if (size > BACKUP_MANIFEST_MAX_BYTES) {
        throw hvkitError(
          'PROTOCOL',
          `Backup manifest ${JSON.stringify(path)} is ${size} bytes, over the ${BACKUP_MANIFEST_MAX_BYTES} limit.`,
          { operation },
        );
      }
      // Read at most one byte more than the limit, whatever the file grew to meanwhile.
      const buffer = Buffer.alloc(BACKUP_MANIFEST_MAX_BYTES + 1);
      let at = 0;
      for (;;) {
        const { bytesRead } = await handle.read(buffer, at, buffer.length - at, null);
        if (bytesRead === 0 || at + bytesRead >= buffer.length) {
          at += bytesRead;
          break;
        }
        at += bytesRead;
      }
      if (signal?.aborted) throw abortError(signal, { operation });
      return parseBackupManifest(buffer.subarray(0, at));
    } finally {
      await handle.close().catch(() => {});
    }
  }

  return {
    kind: 'directory',
    location: root,

    async list(listOptions: SourceListOptions = {}): Promise<BackupListing[]> {
      const operation = 'source.list';
      const signal = checkSignal(listOptions.signal);
      if (signal?.aborted) throw abortError(signal, { operation });
      const top = await openFolder([], operation);
      if (!top) return [];
      const folders: { guestFolder: string; id: string }[] = [];
      try {
        for (const guestFolder of await subdirectories(top, operation)) {
          const folder = await openFolder([guestFolder], operation);
          if (!folder) continue;
          try {
            for (const id of await subdirectories(folder, operation)) folders.push({ guestFolder, id });
          } finally {
            await folder.close();
          }
        }
      } finally {
        await top.close();
      }
      return listingOf(folders, readManifest, {
        ...(listOptions.guest === undefined ? {} : { guest: listOptions.guest }),
        ...(signal ? { signal } : {}),
        guestFolderOf: (g) => artifactPath(g, 'x').split('/')[0] as string,
      });
    },

    readManifest: readManifest as (
      path: string,
      options?: { signal?: AbortSignal },
    ) => Promise<BackupManifest>,

    readFile(name: string, readOptions: SourceReadOptions = {}): AsyncIterable<Uint8Array> {
      checkSinkFileName(name);
      if (typeof readOptions !== 'object' || readOptions === null) {
        throw new TypeError('Source read options must be an object.');
      }
      const signal = checkSignal(readOptions.signal);
      const { maxBytes } = readOptions;
      if (maxBytes !== undefined && !(Number.isSafeInteger(maxBytes) && maxBytes >= 0)) {
        throw new TypeError('maxBytes must be a non-negative integer.');
      }
      const operation = 'source.readFile';
      return (async function* () {
        if (signal?.aborted) throw abortError(signal, { operation });
        const { handle } = await openFile(name, operation);
        try {
          let total = 0;
          for (;;) {
            if (signal?.aborted) throw abortError(signal, { operation });
            const buffer = Buffer.allocUnsafe(chunkBytes);
            let bytesRead: number;
            try {
              ({ bytesRead } = await handle.read(buffer, 0, chunkBytes, null));
            } catch (error) {
              throw errnoToHvkitError(error, { operation, path: join(root, name) });
            }
            if (bytesRead === 0) return;
            total += bytesRead;
            if (maxBytes !== undefined && total > maxBytes) {
              throw hvkitError(
                'PROTOCOL',
                `Backup file ${JSON.stringify(name)} is longer than the ${maxBytes} bytes allowed.`,
                { operation, details: { name, maxBytes } },
              );
            }
            yield buffer.subarray(0, bytesRead);
          }
        } finally {
          await handle.close().catch(() => {});
        }
      })();
    },
  };
}
