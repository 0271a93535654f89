/**
 * The wire client of the cgroups adapter: cgroupfs, procfs and sysfs files read and written through a
 * core `FilesTransport` (local files by default, {@link sshCgroupFiles} over `@hvkit/ssh`, or a replayed
 * snapshot), below a root directory. Paths are host paths (`/sys/fs/cgroup/cpu/...`); every call has a
 * deadline, reads are bounded by {@link MAX_FILE_BYTES}, and a path cannot leave the root.
 */

import { posix } from 'node:path';
import { type FileEntry, type FilesTransport, HvkitError, hvkitError, type SignalOptions } from '@hvkit/core';
import type { CgroupsConnection } from '../connection';
import { ADAPTER_ID, cgroupFileError, fileErrorToHvkitError } from '../errors';
import {
  type CgroupMode,
  type CgroupMount,
  type Controller,
  type ControllerPlace,
  cgroupMode,
  parseCgroupMounts,
  placeControllers,
} from './mountinfo';

/** Largest file read, in bytes (1 MiB); more is `PROTOCOL`. */
export const MAX_FILE_BYTES = 1024 * 1024;

/**
 * Most file calls in flight at once: reads run in parallel (one SFTP round trip costs ~0.1 s on a slow
 * host), bounded so a signal shared by the calls never carries more than a handful of listeners.
 */
export const MAX_CONCURRENT_CALLS = 8;

/** The files `hello` reads (host paths). */
export const HELLO_FILES = Object.freeze({
  mountinfo: '/proc/self/mountinfo',
  version: '/proc/sys/kernel/osrelease',
});

/** What `hello` learnt about the host's cgroups. */
export interface BackendHello {
  /** `cgroup-v1`, `cgroup-v2` or `cgroup-hybrid`. */
  product: string;
  /** The kernel release. */
  version: string;
  mode: CgroupMode;
  mounts: CgroupMount[];
  /** The controllers of the v2 hierarchy's root (`cgroup.controllers`), `[]` without one. */
  v2Controllers: string[];
  /** Which hierarchy holds each controller the adapter uses. */
  controllers: Partial<Record<Controller, ControllerPlace>>;
}

/** The product name of a mode. */
export function productOf(mode: CgroupMode): string {
  return mode === 'unified' ? 'cgroup-v2' : mode === 'legacy' ? 'cgroup-v1' : 'cgroup-hybrid';
}

/** Reads and writes the host's files. */
export class CgroupsClient {
  readonly #files: FilesTransport;
  readonly #root: string;
  readonly #timeoutMs: number;
  readonly #connection: CgroupsConnection | undefined;
  #running = 0;
  readonly #waiting: (() => void)[] = [];

  /**
   * `connection`: the adapter's connection state; a call on a closed one, or one that fails because the
   * connection went away, throws its `CONNECTION_LOST` (not retryable).
   */
  constructor(files: FilesTransport, root: string, timeoutMs: number, connection?: CgroupsConnection) {
    this.#files = files;
    this.#root = posix.resolve('/', root);
    this.#timeoutMs = timeoutMs;
    this.#connection = connection;
  }

  /** Where the files are read (`local`, `ssh://user@host:22`, `replay`). */
  get target(): string {
    return this.#files.target;
  }

  /** The transport path of a host path (below the root). */
  resolve(path: string): string {
    if (typeof path !== 'string' || !path.startsWith('/') || path.includes('\0')) {
      throw new TypeError(`${ADAPTER_ID}: ${JSON.stringify(path)} is not an absolute host path.`);
    }
    if (path.split('/').includes('..')) {
      throw new TypeError(`${ADAPTER_ID}: ${JSON.stringify(path)} leaves the root.`);
    }
    const normal = posix.normalize(path);
    return this.#root === '/' ? normal : posix.join(this.#root, normal);
  }

  /**
   * Runs `fn` when fewer than {@link MAX_CONCURRENT_CALLS} calls are in flight, and only while the
   * connection is open.
   */
  async #slot<T>(operation: string, fn: () => Promise<T>): Promise<T> {
    this.#connection?.ensureOpen(operation);
    if (this.#running >= MAX_CONCURRENT_CALLS)
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    this.#running += 1;
    try {
      this.#connection?.ensureOpen(operation);
      return await fn();
    } finally {
      this.#running -= 1;
      this.#waiting.shift()?.();
    }
  }

  /** The closed connection's error for a call that failed, when the connection is gone. */
  #lost(operation: string, error: unknown): HvkitError | undefined {
    return this.#connection?.closedErrorAfter(operation, error);
  }

  #call(options: SignalOptions) {
    return { signal: options.signal, timeoutMs: options.timeoutMs ?? this.#timeoutMs };
  }

  /**
   * Reads a host file as text.
   *
   * @throws HvkitError: the file error mapped by `cgroupFileError` (a missing file is `NOT_FOUND`),
   *   `PROTOCOL` for a file above {@link MAX_FILE_BYTES} or one that is not UTF-8 text.
   */
  async readText(path: string, options: SignalOptions = {}): Promise<string> {
    const full = this.resolve(path);
    let data: Buffer;
    try {
      data = await this.#slot('read', () => this.#files.readFile(full, this.#call(options)));
    } catch (error) {
      throw this.#lost('read', error) ?? cgroupFileError(error, path, { operation: 'read' });
    }
    if (data.length > MAX_FILE_BYTES) {
      throw hvkitError('PROTOCOL', `${path} is larger than ${MAX_FILE_BYTES} bytes.`, {
        adapter: ADAPTER_ID,
        operation: 'read',
      });
    }
    const text = data.toString('utf8');
    if (text.includes('\uFFFD') || text.includes('\0')) {
      throw hvkitError('PROTOCOL', `${path} is not UTF-8 text.`, { adapter: ADAPTER_ID, operation: 'read' });
    }
    return text;
  }

  /** Reads a host file, or `undefined` when it does not exist (or cannot be read, e.g. write-only). */
  async tryReadText(path: string, options: SignalOptions = {}): Promise<string | undefined> {
    try {
      return await this.readText(path, options);
    } catch (error) {
      if (HvkitError.isInstance(error) && ['NOT_FOUND', 'PERMISSION_DENIED'].includes(error.code)) {
        return undefined;
      }
      throw error;
    }
  }

  /** Lists a host directory, or `undefined` when it does not exist. */
  async list(path: string, options: SignalOptions = {}): Promise<FileEntry[] | undefined> {
    const full = this.resolve(path);
    try {
      return await this.#slot('list', () => this.#files.list(full, this.#call(options)));
    } catch (error) {
      const mapped = this.#lost('list', error) ?? cgroupFileError(error, path, { operation: 'list' });
      if (mapped.code === 'NOT_FOUND') return undefined;
      throw mapped;
    }
  }

  /** Whether a host path exists. */
  async exists(path: string, options: SignalOptions = {}): Promise<boolean> {
    const full = this.resolve(path);
    try {
      await this.#slot('stat', () => this.#files.stat(full, this.#call(options)));
      return true;
    } catch (error) {
      const mapped = this.#lost('stat', error) ?? cgroupFileError(error, path, { operation: 'stat' });
      if (mapped.code === 'NOT_FOUND') return false;
      throw mapped;
    }
  }

  /**
   * Writes one value into an existing cgroup file (in place; the transport must not create files there).
   *
   * @throws HvkitError with the kernel's errno mapped by `cgroupFileError` (`EINVAL` → INVALID_ARGUMENT,
   *   `EBUSY` → CONFLICT, `ENODEV` → NOT_FOUND, ...) and `operation` `limits.set`.
   */
  async write(
    path: string,
    value: string,
    options: SignalOptions & { operation?: string } = {},
  ): Promise<void> {
    const full = this.resolve(path);
    const operation = options.operation ?? 'limits.set';
    try {
      await this.#slot(operation, () => this.#files.writeFile(full, value, this.#call(options)));
    } catch (error) {
      throw this.#lost(operation, error) ?? cgroupFileError(error, path, { operation, value });
    }
  }

  /** Reads the mounts, the mode and where each controller lives; connect calls it first, so it fails fast. */
  async hello(options: SignalOptions = {}): Promise<BackendHello> {
    let mountinfo: string;
    let version: string;
    try {
      mountinfo = await this.readText(HELLO_FILES.mountinfo, options);
      version = (await this.readText(HELLO_FILES.version, options)).trim();
    } catch (error) {
      if (HvkitError.isInstance(error) && ['TIMEOUT', 'ABORTED', 'CONNECTION_LOST'].includes(error.code)) {
        throw error;
      }
      throw fileErrorToHvkitError(error, HELLO_FILES.mountinfo, { operation: 'connect' });
    }
    const mounts = parseCgroupMounts(mountinfo);
    const mode = cgroupMode(mounts);
    if (!mode) {
      throw hvkitError('UNSUPPORTED', 'connect: no cgroup hierarchy is mounted on this host.', {
        adapter: ADAPTER_ID,
        operation: 'connect',
      });
    }
    const v2 = mounts.find((m) => m.version === 2);
    const v2Controllers = v2
      ? ((await this.tryReadText(posix.join(v2.mountPoint, 'cgroup.controllers'), options)) ?? '')
          .split(/\s+/)
          .filter(Boolean)
      : [];
    return {
      product: productOf(mode),
      version,
      mode,
      mounts,
      v2Controllers,
      controllers: placeControllers(mounts, v2Controllers),
    };
  }
}
