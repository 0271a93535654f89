/**
 * `connect(options)`: checks the options, chooses the exec transport, asks the backend who it is (so a
 * missing tool fails here, typed), builds the shared context and the capability objects, and wraps the
 * adapter.
 */

import {
  checkOptionKeys,
  checkTimeoutMs,
  createLocalExec,
  type ExecTransport,
  type HypervisorAdapterV1,
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
import { type BackendHello, LvmClient } from './protocol/client';
import { LVM_SUPPORTS } from './supports';

/** Options of {@link connect}. */
export interface LvmOptions {
  /**
   * Where the backend's commands run: core's `createLocalExec()` (the default, no shell) or the `exec` of
   * `connectSsh()` from `@hvkit/ssh` (every argument quoted), or a recording/replaying transport.
   */
  exec?: ExecTransport;
  /** Default timeout of one command, in ms (default 30 000). Every method also takes `{ signal, timeoutMs }`. */
  timeoutMs?: number;
  /** Receives one debug line per call. */
  logger?: Logger;
  /** Aborts connecting. */
  signal?: AbortSignal;
}

/** Every key {@link connect} reads; any other key is a TypeError. */
const OPTION_KEYS = {
  exec: true,
  timeoutMs: true,
  logger: true,
  signal: true,
} as const satisfies OptionKeysOf<LvmOptions>;

/** The lvm adapter: spec v1, plus what the backend said about itself at connect. */
export interface LvmAdapter extends HypervisorAdapterV1<typeof ADAPTER_ID> {
  /** The backend's product, version and build, read at connect. */
  readonly server: Readonly<BackendHello>;
}

/**
 * Opens the LVM adapter on a host and returns it. It asks the backend who it is first, so a
 * missing tool or an unreachable host fails here.
 *
 * @throws TypeError for options of the wrong type or an unknown option key.
 * @throws HvkitError `NOT_FOUND` when the backend's tool is missing, `TIMEOUT`, `ABORTED`, `PROTOCOL`
 *   and the transport's own errors when the backend cannot be used.
 *
 * @example
 * await using hv = await connect({});
 * console.log(hv.server.version, hv.supports);
 */
export async function connect(options: LvmOptions = {}): Promise<LvmAdapter> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${ADAPTER_ID} connect: options must be an object.`);
  checkOptionKeys(options, OPTION_KEYS, `${ADAPTER_ID} connect`);
  if (options.exec !== undefined && typeof options.exec?.exec !== 'function') {
    throw new TypeError(`${ADAPTER_ID} connect: exec must be an ExecTransport.`);
  }
  const timeoutMs = checkTimeoutMs(options.timeoutMs ?? 30_000, 'timeoutMs');
  const logger = options.logger ?? noopLogger;
  const client = new LvmClient(options.exec ?? createLocalExec(), timeoutMs);
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
    // The exec transport belongs to the caller (an SSH connection is closed by whoever opened it).
  };
  const adapter: LvmAdapter = {
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    supports: LVM_SUPPORTS,
    server: Object.freeze({ ...server }),
    ...Object.fromEntries(Object.entries(capabilities).filter(([, value]) => value !== undefined)),
    close,
    [Symbol.asyncDispose]: close,
  };
  return wrapAdapter(adapter, { logger });
}
