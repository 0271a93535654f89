/**
 * Reaching a directory below a root without following symbolic links, for the directory sink.
 *
 * On Linux the walk holds each directory open and names the next entry through `/proc/self/fd/<fd>/`, which
 * the kernel resolves from the open directory itself (what `openat(2)` does): a directory renamed or
 * replaced by a link after it was checked cannot redirect a later step. Where `/proc/self/fd` is missing
 * (other systems, a Linux container without /proc), each component is checked with `lstat` and its device and inode
 * recorded; {@link ConfinedDirectory.confirm} re-checks them after a file is created and before a rename.
 * Not part of the public API.
 */

import { constants as fsConstants } from 'node:fs';
import * as fsp from 'node:fs/promises';
import { join } from 'node:path';
import type { HvkitError } from '../errors/hvkit-error';
import { errnoToHvkitError } from '../transport/local-files';
import { sinkPathError } from './stream-sink';

// (Undefined on Windows, where only the lstat walk runs.)
const { O_RDONLY, O_DIRECTORY = 0, O_NOFOLLOW = 0 } = fsConstants;

/** A directory reached from a root through real directories only. */
export interface ConfinedDirectory {
  /** The path of the directory as messages show it (root joined with the segments). */
  readonly path: string;
  /** Whether entries are reached through the open directory (`/proc/self/fd`) rather than by path. */
  readonly anchored: boolean;
  /** A path naming `entry` (one segment) of this directory, for `open`, `rename`, `unlink`. */
  entryPath(entry: string): string;
  /**
   * Checks that the directory is still reached without symbolic links and, given `entry` and the handle
   * of a file just created there, that this entry is that file. Nothing to check when anchored.
   *
   * @throws HvkitError `CONFLICT` when a component was replaced meanwhile.
   */
  confirm(entry?: string, handle?: fsp.FileHandle): Promise<void>;
  /** fsyncs the directory (file systems that refuse are ignored). */
  sync(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link openConfinedDirectory}. */
export interface ConfinedDirectoryOptions {
  /** Create missing components (default false: a missing one is `NOT_FOUND`). */
  create?: boolean;
  /** For messages. */
  operation?: string;
  /** Force the lstat walk even where `/proc/self/fd` works (tests). */
  anchored?: boolean;
}

let procFdWorks: boolean | undefined;

/** Whether `/proc/self/fd/<fd>` reaches the directory open as `handle`. Probed once. */
// Stryker disable all: reachable only where /proc/self/fd is missing or lies (not on the Linux CI runs on)
async function probeProcFd(handle: fsp.FileHandle): Promise<boolean> {
  if (procFdWorks !== undefined) return procFdWorks;
  try {
    const [viaProc, direct] = await Promise.all([fsp.stat(`/proc/self/fd/${handle.fd}`), handle.stat()]);
    procFdWorks = viaProc.dev === direct.dev && viaProc.ino === direct.ino && viaProc.isDirectory();
  } catch {
    procFdWorks = false;
  }
  return procFdWorks;
}
// Stryker restore all

function errnoOf(error: unknown): string | undefined {
  return typeof error === 'object' && error !== null ? (error as NodeJS.ErrnoException).code : undefined;
}

/** Turns a failed step on `probe` (the path to lstat) into the error to throw. */
async function stepError(
  error: unknown,
  probe: string,
  shown: string,
  operation: string | undefined,
): Promise<HvkitError> {
  const code = errnoOf(error);
  if (code === 'ELOOP' || code === 'ENOTDIR' || code === 'EEXIST') {
    const st = await fsp.lstat(probe).catch(() => undefined);
    if (st?.isSymbolicLink()) return sinkPathError(shown, 'symlink', { operation, cause: error });
    if (st && !st.isDirectory()) return sinkPathError(shown, 'not-directory', { operation, cause: error });
  }
  return errnoToHvkitError(error, { operation, path: shown });
}

/**
 * Opens `segments` below `root` (`root` itself may be a link: the caller chose it), refusing any
 * component that is a symbolic link or not a directory with `CONFLICT`.
 *
 * @throws HvkitError `CONFLICT` (a link or a non-directory on the way), `NOT_FOUND` (missing, without
 *   `create`), or the mapped error of the file system.
 */
export async function openConfinedDirectory(
  root: string,
  segments: readonly string[],
  options: ConfinedDirectoryOptions = {},
): Promise<ConfinedDirectory> {
  const { create = false, operation } = options;
  // /proc/self/fd/<fd> is a link to the open directory itself on Linux only.
  // Stryker disable next-line all: the platform test is reachable only where /proc/self/fd is missing or lies (not on the Linux CI runs on)
  if (options.anchored === false || process.platform !== 'linux') {
    return walkedDirectory(root, segments, create, operation);
  }
  let handle: fsp.FileHandle;
  try {
    handle = await fsp.open(root, O_RDONLY | O_DIRECTORY);
  } catch (error) {
    throw errnoToHvkitError(error, { operation, path: root });
  }
  // Stryker disable next-line all: reachable only where /proc/self/fd is missing or lies (not on the Linux CI runs on)
  if (!(await probeProcFd(handle))) {
    await handle.close().catch(() => {});
    return walkedDirectory(root, segments, create, operation);
  }
  let shown = root;
  try {
    for (const segment of segments) {
      const at = `/proc/self/fd/${handle.fd}/${segment}`;
      shown = join(shown, segment);
      const openChild = () => fsp.open(at, O_RDONLY | O_DIRECTORY | O_NOFOLLOW);
      let child: fsp.FileHandle;
      try {
        child = await openChild();
      } catch (error) {
        if (!(create && errnoOf(error) === 'ENOENT')) throw await stepError(error, at, shown, operation);
        try {
          await fsp.mkdir(at).catch((e: unknown) => {
            if (errnoOf(e) !== 'EEXIST') throw e;
          });
          child = await openChild();
        } catch (again) {
          throw await stepError(again, at, shown, operation);
        }
      }
      await handle.close();
      handle = child;
    }
    return anchoredDirectory(handle, shown);
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
}

function anchoredDirectory(handle: fsp.FileHandle, path: string): ConfinedDirectory {
  return {
    path,
    anchored: true,
    entryPath: (entry) => `/proc/self/fd/${handle.fd}/${entry}`,
    confirm: async () => {},
    // Stryker disable next-line all: fsync is for durability across a crash, which no test can observe
    sync: () => handle.sync().catch(() => {}),
    close: () => handle.close().catch(() => {}),
  };
}

/** The fallback: lstat each component, remember what it was, check again on `confirm`. */
async function walkedDirectory(
  root: string,
  segments: readonly string[],
  create: boolean,
  operation: string | undefined,
): Promise<ConfinedDirectory> {
  let real: string;
  try {
    real = await fsp.realpath(root);
  } catch (error) {
    throw errnoToHvkitError(error, { operation, path: root });
  }
  const rootStat = await fsp.lstat(real).catch((error: unknown) => {
    throw errnoToHvkitError(error, { operation, path: root });
  });
  const seen: { path: string; shown: string; dev: number; ino: number }[] = [
    { path: real, shown: root, dev: rootStat.dev, ino: rootStat.ino },
  ];
  let path = real;
  let shown = root;
  for (const segment of segments) {
    path = join(path, segment);
    shown = join(shown, segment);
    let st = await fsp.lstat(path).catch((error: unknown) => error as NodeJS.ErrnoException);
    if (st instanceof Error && create && st.code === 'ENOENT') {
      try {
        await fsp.mkdir(path).catch((e: unknown) => {
          if (errnoOf(e) !== 'EEXIST') throw e;
        });
      } catch (error) {
        throw await stepError(error, path, shown, operation);
      }
      st = await fsp.lstat(path).catch((error: unknown) => error as NodeJS.ErrnoException);
    }
    if (st instanceof Error) throw errnoToHvkitError(st, { operation, path: shown });
    if (st.isSymbolicLink()) throw sinkPathError(shown, 'symlink', { operation });
    if (!st.isDirectory()) throw sinkPathError(shown, 'not-directory', { operation });
    seen.push({ path, shown, dev: st.dev, ino: st.ino });
  }
  const dirPath = path;
  let dirHandle: fsp.FileHandle | undefined;
  return {
    path: shown,
    anchored: false,
    entryPath: (entry) => join(dirPath, entry),
    async confirm(entry, handle) {
      for (const step of seen) {
        const st = await fsp.lstat(step.path).catch(() => undefined);
        if (st?.isSymbolicLink()) throw sinkPathError(step.shown, 'symlink', { operation });
        if (!st?.isDirectory() || st.dev !== step.dev || st.ino !== step.ino) {
          throw sinkPathError(step.shown, 'replaced', { operation });
        }
      }
      if (entry !== undefined && handle !== undefined) {
        const [there, opened] = await Promise.all([
          fsp.lstat(join(dirPath, entry)).catch(() => undefined),
          handle.stat(),
        ]);
        if (!there || there.dev !== opened.dev || there.ino !== opened.ino) {
          throw sinkPathError(join(shown, entry), 'replaced', { operation });
        }
      }
    },
    // Stryker disable all: fsync is for durability across a crash, which no test can observe
    async sync() {
      try {
        dirHandle ??= await fsp.open(dirPath, O_RDONLY | O_DIRECTORY);
        await dirHandle.sync();
      } catch {
        // Some file systems cannot fsync directories (EINVAL, EISDIR); the data itself is synced.
      }
    },
    // Stryker restore all
    close: async () => {
      await dirHandle?.close().catch(() => {});
    },
  };
}
