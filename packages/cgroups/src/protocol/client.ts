/**
 * The wire client of the cgroups adapter: the backend's files read through a core `FilesTransport`
 * (local files by default, SFTP from `@hvkit/ssh`, or a replayed snapshot), below a root directory.
 * Every read has a deadline and is bounded by {@link MAX_FILE_BYTES}; paths cannot leave the root.
 */

import { posix } from 'node:path';
import { type FilesTransport, hvkitError, type SignalOptions } from '@hvkit/core';
import { ADAPTER_ID, fileErrorToHvkitError } from '../errors';

/** Largest file read, in bytes (1 MiB); more is `PROTOCOL`. */
export const MAX_FILE_BYTES = 1024 * 1024;

/** The files `hello` reads, relative to the root: the stub asks the kernel; replace them with your backend's. */
export const HELLO_FILES = Object.freeze({
  product: 'proc/sys/kernel/ostype',
  version: 'proc/sys/kernel/osrelease',
});

/** What the backend says about itself (`hello`). */
export interface BackendHello {
  product: string;
  version: string;
  build?: string;
}

/** Reads the backend's files. */
export class CgroupsClient {
  readonly #files: FilesTransport;
  readonly #root: string;
  readonly #timeoutMs: number;

  constructor(files: FilesTransport, root: string, timeoutMs: number) {
    this.#files = files;
    this.#root = posix.resolve('/', root);
    this.#timeoutMs = timeoutMs;
  }

  /** Where the files are read (`local`, `sftp://user@host:22`). */
  get target(): string {
    return this.#files.target;
  }

  /**
   * Reads `path` (relative to the root) as text.
   *
   * @throws TypeError for a path that leaves the root. HvkitError: the mapped error of a failed read (see
   *   `errors.ts`), `PROTOCOL` for a file above {@link MAX_FILE_BYTES} or one that is not UTF-8 text.
   */
  async readText(path: string, options: SignalOptions = {}): Promise<string> {
    const full = posix.join(this.#root, path);
    if (
      posix.isAbsolute(path) ||
      (full !== this.#root && !full.startsWith(`${this.#root === '/' ? '' : this.#root}/`))
    ) {
      throw new TypeError(`${ADAPTER_ID}: ${JSON.stringify(path)} is not a path below the root.`);
    }
    const call = { signal: options.signal, timeoutMs: options.timeoutMs ?? this.#timeoutMs };
    let data: Buffer;
    try {
      data = await this.#files.readFile(full, call);
    } catch (error) {
      throw fileErrorToHvkitError(error, path, { operation: 'read' });
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

  /** What the backend says about itself; connect calls it first, so it fails fast. */
  async hello(options: SignalOptions = {}): Promise<BackendHello> {
    const product = (await this.readText(HELLO_FILES.product, options)).trim();
    const version = (await this.readText(HELLO_FILES.version, options)).trim();
    if (product === '' || version === '') {
      throw hvkitError('PROTOCOL', 'The hello files are empty.', { adapter: ADAPTER_ID, operation: 'hello' });
    }
    return { product, version };
  }
}
