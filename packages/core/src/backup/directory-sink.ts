/**
 * A backup sink that writes files into a local directory, atomically.
 */

import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import type { BackupFile } from '../hypervisor/v1/model';
import { abortError } from '../signal/abort';
import { errnoToHvkitError } from '../transport/local-files';
import { type ConfinedDirectory, openConfinedDirectory } from './confined-dir';
import { BACKUP_MANIFEST_FILE } from './manifest';
import { type BackupSink, checkRemoveIncompleteArgs } from './sink';
import { checkSinkFileName, checkSinkWriteOptions, pumpToWritable, truncateUtf8 } from './stream-sink';

/** Options of {@link createDirectorySink}. */
export interface DirectorySinkOptions {
  /** `fsync` each file (and its directory) before and after the rename (default true). */
  fsync?: boolean;
  /** Permission bits of the files (default 0o600: backups hold guest data). */
  mode?: number;
  /** Create `dir` (and parents) when missing (default true). */
  createDirectory?: boolean;
}

/** Prefix of the temporary files the directory sink writes; they are hidden (dot files). */
export const DIRECTORY_SINK_TEMP_PREFIX = '.hvkit-partial-';

/** Flags of a temporary file: created here and now, never through a link at its name. */
const CREATE_EXCLUSIVE =
  fsConstants.O_WRONLY | fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_NOFOLLOW;

/**
 * A sink that writes each file to a hidden temporary name (`.hvkit-partial-<random>-<name>`) in the
 * destination directory, hashing (SHA-256) while it streams and pulling from the source only as fast as
 * the disk accepts data. When the source ends it checks `expectedBytes`, fsyncs, and renames the file to its
 * final name (replacing an older file of that name, or a symbolic link of that name, never its target),
 * then fsyncs the directory. On abort or failure the temporary file is removed and the write rejects with
 * `ABORTED` or the original error: no file that looks complete is ever left behind.
 *
 * Names may contain `/` to make subdirectories (created as needed); names that
 * {@link checkSinkFileName} refuses (absolute names, `..`, control and bidirectional characters, segments
 * over 255 bytes...) are rejected with `INVALID_ARGUMENT`. `dir` itself may be a symbolic link, but nothing
 * below it is followed: a subdirectory that is a symbolic link (or a file where a directory is needed)
 * fails the write or removal with `CONFLICT`, so writes never land outside `dir` and removals never
 * delete through a link. On Linux each directory is held open and the next step is resolved from it
 * (through `/proc/self/fd`), so a directory swapped for a link after the check cannot redirect a later
 * step; elsewhere the directories are checked again after the file is created and before the rename.
 */
export function createDirectorySink(dir: string, options: DirectorySinkOptions = {}): BackupSink {
  if (typeof dir !== 'string') throw new TypeError('createDirectorySink: dir must be a string.');
  if (dir === '' || dir.includes('\0'))
    throw hvkitError('INVALID_ARGUMENT', 'createDirectorySink: invalid directory.');
  const root = resolve(dir);
  // Stryker disable next-line all: fsync is for durability across a crash, which no test can observe
  const fsync = options.fsync ?? true;
  const mode = options.mode ?? 0o600;
  const createDirectory = options.createDirectory ?? true;
  const operation = 'sink.writeFile';

  const fsError = (error: unknown, path: string) => errnoToHvkitError(error, { operation, path });

  return {
    kind: 'directory',
    location: root,

    async writeFile(name, source, writeOptions = {}): Promise<BackupFile> {
      checkSinkFileName(name);
      checkSinkWriteOptions(writeOptions);
      const { signal } = writeOptions;
      if (signal?.aborted) throw abortError(signal, { operation });
      const segments = name.split('/');
      const base = segments.pop() as string;
      const finalPath = join(root, name);
      if (createDirectory) {
        try {
          await fsp.mkdir(root, { recursive: true });
        } catch (error) {
          throw fsError(error, root);
        }
      }
      const parent = await openConfinedDirectory(root, segments, { create: true, operation });
      try {
        const tempName = `${DIRECTORY_SINK_TEMP_PREFIX}${randomBytes(6).toString('hex')}-${truncateUtf8(base, 200)}`;
        const tempPath = join(parent.path, tempName);
        let handle: fsp.FileHandle;
        try {
          handle = await fsp.open(parent.entryPath(tempName), CREATE_EXCLUSIVE, mode);
        } catch (error) {
          throw fsError(error, tempPath);
        }
        let done = false;
        try {
          // Where the directories are not held open: the file just created is the one in `dir`.
          await parent.confirm(tempName, handle);
          const stream = handle.createWriteStream({ autoClose: false, emitClose: false });
          let file: BackupFile;
          try {
            file = await pumpToWritable(source, stream, name, {
              ...writeOptions,
              destinationError: (error) => fsError(error, tempPath),
            });
          } catch (error) {
            stream.on('error', () => {});
            stream.destroy();
            throw error;
          }
          if (signal?.aborted) throw abortError(signal, { operation });
          try {
            // Stryker disable next-line all: fsync is for durability across a crash, which no test can observe
            if (fsync) await handle.sync();
            // The stream holds a reference on the handle (autoClose is off); close() waits for it.
            stream.destroy();
            await handle.close();
          } catch (error) {
            throw fsError(error, tempPath);
          }
          if (signal?.aborted) throw abortError(signal, { operation });
          await parent.confirm();
          try {
            await fsp.rename(parent.entryPath(tempName), parent.entryPath(base));
          } catch (error) {
            throw fsError(error, finalPath);
          }
          done = true;
          // Stryker disable next-line all: fsync is for durability across a crash, which no test can observe
          if (fsync) await parent.sync();
          return file;
        } finally {
          if (!done) {
            await handle.close().catch(() => {});
            await fsp.rm(parent.entryPath(tempName), { force: true }).catch(() => {});
          }
        }
      } finally {
        await parent.close();
      }
    },

    async removeFile(name, removeOptions = {}) {
      checkSinkFileName(name);
      const removeOperation = 'sink.removeFile';
      if (removeOptions.signal?.aborted)
        throw abortError(removeOptions.signal, { operation: removeOperation });
      const segments = name.split('/');
      const base = segments.pop() as string;
      let parent: ConfinedDirectory;
      try {
        parent = await openConfinedDirectory(root, segments, { operation: removeOperation });
      } catch (error) {
        // A missing directory (or a file where one would be) holds no such file.
        if (HvkitError.isInstance(error, 'NOT_FOUND')) return;
        if (HvkitError.isInstance(error, 'CONFLICT') && error.backendCode === 'ENOTDIR') return;
        throw error;
      }
      try {
        await parent.confirm();
        await fsp.unlink(parent.entryPath(base));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw errnoToHvkitError(error, { operation: removeOperation, path: join(root, name) });
      } finally {
        await parent.close();
      }
    },

    async removeIncomplete(guestFolder, keepRuns, removeOptions = {}) {
      const folder = checkRemoveIncompleteArgs(guestFolder, keepRuns);
      const operation = 'sink.removeIncomplete';
      const signal = removeOptions.signal;
      if (signal?.aborted) throw abortError(signal, { operation });
      let guestDir: ConfinedDirectory;
      try {
        guestDir = await openConfinedDirectory(root, [folder], { operation });
      } catch (error) {
        if (HvkitError.isInstance(error, 'NOT_FOUND')) return [];
        throw error;
      }
      const removed: string[] = [];
      try {
        const entries = await fsp.readdir(guestDir.entryPath('.'), { withFileTypes: true }).catch((error) => {
          throw errnoToHvkitError(error, { operation, path: guestDir.path });
        });
        // In name order: Node's readdir returns names sorted (libuv's scandir sorts them).
        for (const entry of entries) {
          if (!entry.isDirectory() || entry.name.startsWith('.') || keepRuns.includes(entry.name)) continue;
          if (signal?.aborted) throw abortError(signal, { operation });
          const manifest = await fsp
            .lstat(join(guestDir.entryPath(entry.name), BACKUP_MANIFEST_FILE))
            .catch(() => undefined);
          if (manifest?.isFile() === true) continue;
          await removeTree(root, [folder, entry.name], operation, signal);
          await guestDir.confirm();
          await fsp.rmdir(guestDir.entryPath(entry.name)).catch((error: unknown) => {
            if ((error as NodeJS.ErrnoException).code !== 'ENOENT') {
              throw errnoToHvkitError(error, { operation, path: join(guestDir.path, entry.name) });
            }
          });
          removed.push(`${folder}/${entry.name}`);
        }
      } finally {
        await guestDir.close();
      }
      return removed;
    },
  };
}

/**
 * Empties the directory `segments` below `root` (files, links and sub-directories; links are removed, never
 * followed), at most 16 levels deep. The directory itself stays (its parent removes it).
 */
async function removeTree(
  root: string,
  segments: readonly string[],
  operation: string,
  signal: AbortSignal | undefined,
): Promise<void> {
  if (segments.length > 18)
    throw hvkitError('CONFLICT', `${operation}: directories nested too deep to remove.`);
  const dir = await openConfinedDirectory(root, segments, { operation });
  try {
    const entries = await fsp.readdir(dir.entryPath('.'), { withFileTypes: true }).catch((error) => {
      throw errnoToHvkitError(error, { operation, path: dir.path });
    });
    for (const entry of entries) {
      if (signal?.aborted) throw abortError(signal, { operation });
      await dir.confirm();
      const at = dir.entryPath(entry.name);
      try {
        if (entry.isDirectory()) {
          await removeTree(root, [...segments, entry.name], operation, signal);
          await fsp.rmdir(at);
        } else {
          await fsp.unlink(at);
        }
      } catch (error) {
        if (HvkitError.isInstance(error)) throw error;
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw errnoToHvkitError(error, { operation, path: join(dir.path, entry.name) });
      }
    }
  } finally {
    await dir.close();
  }
}
