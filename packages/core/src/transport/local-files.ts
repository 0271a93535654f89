/**
 * The local file system as a {@link FilesTransport}.
 */

import { randomBytes } from 'node:crypto';
import { constants as fsConstants, type Stats } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Readable } from 'node:stream';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import {
  abortError,
  DEFAULT_TIMEOUT_MS,
  type ErrorContext,
  throwIfAborted,
  withDeadline,
} from '../signal/abort';
import type { FileEntry, FilesTransport, TransportCallOptions } from './types';

/**
 * Maps a Node.js system error (one with an errno `code` such as `ENOENT`) to an HvkitError:
 * `ENOENT`/`ENOTDIR` → `NOT_FOUND`, `EACCES`/`EPERM`/`EROFS` → `PERMISSION_DENIED`, `EEXIST`/`ENOTEMPTY` →
 * `CONFLICT`, `ENAMETOOLONG` → `INVALID_ARGUMENT`, anything else → `REMOTE`; the errno name is the
 * `backendCode`. HvkitErrors pass through.
 */
export function errnoToHvkitError(
  error: unknown,
  context: ErrorContext & { path?: string } = {},
): HvkitError {
  if (HvkitError.isInstance(error)) return error;
  const errno =
    typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
  const syscall =
    typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).syscall : undefined;
  const where = context.path !== undefined ? ` ${JSON.stringify(context.path)}` : '';
  const op = context.operation ?? syscall ?? 'file operation';
  const options = {
    adapter: context.adapter,
    operation: context.operation,
    cause: error,
    backendCode: errno,
    backendMessage: error instanceof Error ? error.message : undefined,
    details: context.path !== undefined ? { path: context.path } : undefined,
  };
  switch (errno) {
    case 'ENOENT':
    case 'ENOTDIR':
      return hvkitError('NOT_FOUND', `${op}: no such file or directory${where}.`, options);
    case 'EACCES':
    case 'EPERM':
    case 'EROFS':
      return hvkitError('PERMISSION_DENIED', `${op}: permission denied${where} (${errno}).`, options);
    case 'EEXIST':
    case 'ENOTEMPTY':
      return hvkitError(
        'CONFLICT',
        `${op}: ${errno === 'EEXIST' ? 'already exists' : 'directory not empty'}${where}.`,
        options,
      );
    case 'ENAMETOOLONG':
      return hvkitError('INVALID_ARGUMENT', `${op}: name too long${where}.`, options);
    default:
      return hvkitError(
        'REMOTE',
        `${op} failed${where}: ${errno ?? (error instanceof Error ? error.message : String(error))}.`,
        options,
      );
  }
}

/** Options of {@link createLocalFiles}. */
export interface LocalFilesOptions {
  /** Timeout of a call that gives no `timeoutMs` (default {@link DEFAULT_TIMEOUT_MS}). */
  defaultTimeoutMs?: number;
  /** `fsync` files written by `writeFile` before they replace the target (default true). */
  fsync?: boolean;
}

/** Options of the local `writeFile`. */
export interface LocalWriteFileOptions extends TransportCallOptions {
  /** Permission bits of a newly created file (default 0o644 less the umask; kept for replaced files). */
  mode?: number;
  /**
   * `true`: write a temporary file in the same directory and rename it over the target, so readers never
   * see a half-written file. `false`: write into the existing file in place (needed for cgroupfs, sysfs and
   * procfs, where files cannot be created). Default: in place on those pseudo file systems, atomic elsewhere.
   */
  atomic?: boolean;
}

/** The local {@link FilesTransport}: every optional method is present, and `writeFile` takes `atomic`. */
export interface LocalFilesTransport extends FilesTransport {
  writeFile(path: string, data: string | Uint8Array, options?: LocalWriteFileOptions): Promise<void>;
  createReadStream(path: string, options?: TransportCallOptions & { start?: number }): Promise<Readable>;
  remove(path: string, options?: TransportCallOptions): Promise<void>;
}

/** statfs magic numbers of file systems whose files are written in place. */
const PSEUDO_FS_MAGIC: ReadonlySet<number> = new Set([
  0x9fa0, // proc
  0x62656572, // sysfs
  0x27e0eb, // cgroup (v1)
  0x63677270, // cgroup2
  0x64626720, // debugfs
  0x73636673, // securityfs
  0x62656570, // configfs
  0xcafe4a11, // bpf
]);

async function isPseudoFs(path: string): Promise<boolean> {
  try {
    const stats = await fsp.statfs(dirname(path));
    return PSEUDO_FS_MAGIC.has(Number(stats.type));
  } catch {
    return false;
  }
}

function entryType(stats: Stats): FileEntry['type'] {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'directory';
  if (stats.isSymbolicLink()) return 'symlink';
  return 'other';
}

function checkPath(path: unknown, operation: string): string {
  if (typeof path !== 'string') throw new TypeError(`${operation}: path must be a string.`);
  if (path === '' || path.includes('\0')) {
    throw hvkitError('INVALID_ARGUMENT', `${operation}: path must be non-empty and contain no NUL byte.`, {
      operation,
    });
  }
  return path;
}

/**
 * The local file system. Every call takes `{ signal, timeoutMs }`; errors are mapped with
 * errno codes (`ENOENT` is `NOT_FOUND`, `EACCES` `PERMISSION_DENIED`, …) and name the path. `stat` follows symlinks; `list` reports symlinks as such.
 * `writeFile` is atomic (temporary file + rename) except on pseudo file systems (see
 * {@link LocalWriteFileOptions.atomic}); `remove` deletes a file or an empty directory and ignores a
 * missing path.
 */
export function createLocalFiles(options: LocalFilesOptions = {}): LocalFilesTransport {
  const defaultTimeoutMs = options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS;
  const fsync = options.fsync ?? true;

  const run = <T>(
    operation: string,
    path: string,
    call: TransportCallOptions | undefined,
    fn: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> => {
    const context = { operation };
    return withDeadline(
      async (signal) => {
        try {
          return await fn(signal);
        } catch (error) {
          if (signal.aborted) throw abortError(signal, context);
          throw errnoToHvkitError(error, { ...context, path });
        }
      },
      { signal: call?.signal, timeoutMs: call?.timeoutMs, defaultTimeoutMs, ...context },
    );
  };

  return {
    target: 'local',

    readFile(path, call) {
      checkPath(path, 'files.readFile');
      return run('files.readFile', path, call, (signal) => fsp.readFile(path, { signal }));
    },

    writeFile(path: string, data: string | Uint8Array, call: LocalWriteFileOptions = {}) {
      checkPath(path, 'files.writeFile');
      if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
        throw new TypeError('files.writeFile: data must be a string or a Uint8Array.');
      }
      return run('files.writeFile', path, call, async (signal) => {
        const atomic = call.atomic ?? !(await isPseudoFs(path));
        throwIfAborted(signal, { operation: 'files.writeFile' });
        if (!atomic) {
          // O_WRONLY|O_TRUNC without O_CREAT: pseudo files must exist.
          const handle = await fsp.open(path, fsConstants.O_WRONLY | fsConstants.O_TRUNC);
          try {
            await handle.writeFile(data, { signal });
          } finally {
            await handle.close();
          }
          return;
        }
        let mode = call.mode;
        if (mode === undefined) {
          try {
            mode = (await fsp.stat(path)).mode & 0o7777;
          } catch {
            mode = undefined;
          }
        }
        const temp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
        const handle = await fsp.open(temp, 'wx', mode ?? 0o644);
        let renamed = false;
        try {
          try {
            await handle.writeFile(data, { signal });
            if (call.mode !== undefined) await handle.chmod(call.mode);
            if (fsync) await handle.sync();
          } finally {
            await handle.close();
          }
          throwIfAborted(signal, { operation: 'files.writeFile' });
          await fsp.rename(temp, path);
          renamed = true;
        } finally {
          if (!renamed) await fsp.rm(temp, { force: true }).catch(() => {});
        }
      });
    },

    list(path, call) {
      checkPath(path, 'files.list');
      return run('files.list', path, call, async (signal) => {
        const names = await fsp.readdir(path);
        const entries: FileEntry[] = [];
        for (const name of names.sort()) {
          throwIfAborted(signal, { operation: 'files.list' });
          try {
            const stats = await fsp.lstat(join(path, name));
            entries.push({ name, type: entryType(stats), size: stats.size, mtime: stats.mtime });
          } catch (error) {
            if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
            throw error;
          }
        }
        return entries;
      });
    },

    stat(path, call) {
      checkPath(path, 'files.stat');
      return run('files.stat', path, call, async () => {
        const stats = await fsp.stat(path);
        return { name: basename(path), type: entryType(stats), size: stats.size, mtime: stats.mtime };
      });
    },

    createReadStream(path, call = {}) {
      checkPath(path, 'files.createReadStream');
      const start = call.start;
      if (start !== undefined && !(Number.isSafeInteger(start) && start >= 0)) {
        throw new TypeError('files.createReadStream: start must be a non-negative integer.');
      }
      // The timeout covers opening the file; the stream then lives as long as the consumer reads it.
      return run(
        'files.createReadStream',
        path,
        { timeoutMs: call.timeoutMs, signal: call.signal },
        async () => {
          const handle = await fsp.open(path, 'r');
          const stream = handle.createReadStream({ start, autoClose: true });
          const signal = call.signal;
          if (signal) {
            const onAbort = () => stream.destroy(abortError(signal, { operation: 'files.createReadStream' }));
            signal.addEventListener('abort', onAbort, { once: true });
            stream.once('close', () => signal.removeEventListener('abort', onAbort));
          }
          return stream;
        },
      );
    },

    remove(path, call) {
      checkPath(path, 'files.remove');
      return run('files.remove', path, call, async () => {
        let stats: Stats;
        try {
          stats = await fsp.lstat(path);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw error;
        }
        try {
          if (stats.isDirectory()) await fsp.rmdir(path);
          else await fsp.unlink(path);
        } catch (error) {
          if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
          throw error;
        }
      });
    },
  };
}
