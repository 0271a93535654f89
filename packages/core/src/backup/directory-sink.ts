/**
 * A backup sink that writes files into a local directory, atomically.
 */

import { randomBytes } from 'node:crypto';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { hvkitError } from '../errors/hvkit-error';
import type { BackupFile } from '../hypervisor/v1/model';
import { abortError } from '../signal/abort';
import { errnoToHvkitError } from '../transport/local-files';
import type { BackupSink } from './sink';
import { checkSinkFileName, checkSinkWriteOptions, pumpToWritable } from './stream-sink';

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

/**
 * A sink that writes each file to a hidden temporary name (`.hvkit-partial-<random>-<name>`) in the
 * destination directory, hashing (SHA-256) while it streams and pulling from the source only as fast as
 * the disk accepts data. When the source ends it checks `expectedBytes`, fsyncs, and renames the file to its
 * final name (replacing an older file of that name), then fsyncs the directory. On abort or failure the
 * temporary file is removed and the write rejects with `ABORTED` or the original error: no file that looks
 * complete is ever left behind.
 *
 * Names may contain `/` to make subdirectories (created as needed); absolute names, `..`, `.`, empty
 * segments, backslashes and NUL bytes are rejected with `INVALID_ARGUMENT`.
 */
export function createDirectorySink(dir: string, options: DirectorySinkOptions = {}): BackupSink {
  if (typeof dir !== 'string') throw new TypeError('createDirectorySink: dir must be a string.');
  if (dir === '' || dir.includes('\0'))
    throw hvkitError('INVALID_ARGUMENT', 'createDirectorySink: invalid directory.');
  const root = resolve(dir);
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
      const finalPath = join(root, name);
      const parent = dirname(finalPath);
      try {
        if (createDirectory || parent !== root) await fsp.mkdir(parent, { recursive: true });
      } catch (error) {
        throw fsError(error, parent);
      }
      const tempPath = join(
        parent,
        `${DIRECTORY_SINK_TEMP_PREFIX}${randomBytes(6).toString('hex')}-${basename(name).slice(0, 100)}`,
      );
      let handle: fsp.FileHandle;
      try {
        handle = await fsp.open(tempPath, 'wx', mode);
      } catch (error) {
        throw fsError(error, tempPath);
      }
      let done = false;
      try {
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
          if (fsync) await handle.sync();
          // The stream holds a reference on the handle (autoClose is off); close() waits for it.
          stream.destroy();
          await handle.close();
        } catch (error) {
          throw fsError(error, tempPath);
        }
        if (signal?.aborted) throw abortError(signal, { operation });
        try {
          await fsp.rename(tempPath, finalPath);
        } catch (error) {
          throw fsError(error, finalPath);
        }
        done = true;
        if (fsync) await syncDirectory(parent);
        return file;
      } finally {
        if (!done) {
          await handle.close().catch(() => {});
          await fsp.rm(tempPath, { force: true }).catch(() => {});
        }
      }
    },

    async removeFile(name, removeOptions = {}) {
      checkSinkFileName(name);
      if (removeOptions.signal?.aborted)
        throw abortError(removeOptions.signal, { operation: 'sink.removeFile' });
      const path = join(root, name);
      try {
        await fsp.unlink(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
        throw errnoToHvkitError(error, { operation: 'sink.removeFile', path });
      }
    },
  };
}

/** fsyncs a directory so a rename in it is durable; file systems that refuse it are ignored. */
async function syncDirectory(path: string): Promise<void> {
  let handle: fsp.FileHandle | undefined;
  try {
    handle = await fsp.open(path, 'r');
    await handle.sync();
  } catch {
    // Some file systems cannot fsync directories (EINVAL, EISDIR); the data itself is synced.
  } finally {
    await handle?.close().catch(() => {});
  }
}
