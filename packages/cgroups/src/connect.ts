/**
 * `connect(options)`: checks the options, chooses the files transport, asks the backend who it is (so a
 * host without the backend fails here, typed), builds the shared context and the capability objects, and
 * wraps the adapter.
 */

import {
  checkOptionKeys,
  checkTimeoutMs,
  createLocalFiles,
  type FilesTransport,
  type HypervisorAdapterV1,
  hvkitError,
  type Logger,
  noopLogger,
  type OptionKeysOf,
  wrapAdapter,
} from '@hvkit/core';
import { createBackups } from './capabilities/backups';
import { createEvents } from './capabilities/events';
import { createInventory } from './capabilities/inventory';
import { createLabels } from './capabilities/labels';
import { createLimits } from './capabilities/limits';
import type { AdapterContext } from './context';
import { ADAPTER_ID } from './errors';
import { type BackendHello, CgroupsClient } from './protocol/client';
import { CGROUPS_SUPPORTS } from './supports';

/** Options of {@link connect}. */
export interface CgroupsOptions {
  /**
   * How the backend's files are read: core's `createLocalFiles()` (the default), the SFTP `files` of
   * `connectSsh()` from `@hvkit/ssh`, or a replayed snapshot.
   */
  files?: FilesTransport;
  /** The directory the backend's files live under (default `/`). */
  root?: string;
  /** Default timeout of one read, in ms (default 30 000). Every method also takes `{ signal, timeoutMs }`. */
  timeoutMs?: number;
  /** Receives one debug line per call. */
  logger?: Logger;
  /** Aborts connecting. */
  signal?: AbortSignal;
}

/** Every key {@link connect} reads; any other key is a TypeError. */
const OPTION_KEYS = {
  files: true,
  root: true,
  timeoutMs: true,
  logger: true,
  signal: true,
} as const satisfies OptionKeysOf<CgroupsOptions>;

/** The cgroups adapter: spec v1, plus what the backend said about itself at connect. */
export interface CgroupsAdapter extends HypervisorAdapterV1<typeof ADAPTER_ID> {
  /** The backend's product, version and build, read at connect. */
  readonly server: Readonly<BackendHello>;
}

/**
 * Opens the Linux cgroups adapter on a host's files and returns it. It reads what the backend says about
 * itself first, so a host without the backend fails here.
 *
 * @throws TypeError for options of the wrong type or an unknown option key.
 * @throws HvkitError `INVALID_ARGUMENT` for a relative `root`; `UNSUPPORTED` when the host does not run
 *   the backend; `PERMISSION_DENIED`, `TIMEOUT`, `ABORTED`, `PROTOCOL` and the transport's own errors.
 *
 * @example
 * await using hv = await connect({ root: '/' });
 * console.log(hv.server.version, hv.supports);
 */
export async function connect(options: CgroupsOptions = {}): Promise<CgroupsAdapter> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${ADAPTER_ID} connect: options must be an object.`);
  checkOptionKeys(options, OPTION_KEYS, `${ADAPTER_ID} connect`);
  if (options.files !== undefined && typeof options.files?.readFile !== 'function') {
    throw new TypeError(`${ADAPTER_ID} connect: files must be a FilesTransport.`);
  }
  const root = options.root ?? '/';
  if (typeof root !== 'string') throw new TypeError(`${ADAPTER_ID} connect: root must be a string.`);
  if (!root.startsWith('/')) {
    throw hvkitError('INVALID_ARGUMENT', `${ADAPTER_ID} connect: root must be an absolute path.`, {
      adapter: ADAPTER_ID,
      operation: 'connect',
    });
  }
  const timeoutMs = checkTimeoutMs(options.timeoutMs ?? 30_000, 'timeoutMs');
  const logger = options.logger ?? noopLogger;
  const client = new CgroupsClient(options.files ?? createLocalFiles(), root, timeoutMs);
  const server = await client.hello({ signal: options.signal, timeoutMs });
  const context: AdapterContext = { client, logger, callTimeoutMs: timeoutMs };
  const capabilities = {
    inventory: createInventory(context),
    limits: createLimits(context),
    labels: createLabels(context),
    backups: createBackups(context),
    events: createEvents(context),
  };
  const close = async () => {
    // The files transport belongs to the caller (an SSH connection is closed by whoever opened it).
  };
  const adapter: CgroupsAdapter = {
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    supports: CGROUPS_SUPPORTS,
    server: Object.freeze({ ...server }),
    ...Object.fromEntries(Object.entries(capabilities).filter(([, value]) => value !== undefined)),
    close,
    [Symbol.asyncDispose]: close,
  };
  return wrapAdapter(adapter, { logger });
}
