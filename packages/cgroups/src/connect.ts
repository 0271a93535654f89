/**
 * `connect(options)`: checks the options, chooses the files transport (local, SSH or given), reads the
 * host's cgroup mounts (so a host without cgroups fails here, typed), builds the shared context and the
 * capability objects, and wraps the adapter.
 */

import {
  type AdapterConnection,
  checkOptionKeys,
  checkTimeoutMs,
  createLocalFiles,
  type FilesTransport,
  type HypervisorAdapterV1,
  hvkitError,
  type InventoryCapability,
  type LimitsCapability,
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
import { CgroupsConnection } from './connection';
import type { AdapterContext } from './context';
import { ADAPTER_ID } from './errors';
import { normaliseGroupPath } from './mapping/groups';
import { type BackendHello, CgroupsClient } from './protocol/client';
import { type SshCgroupConnection, sshCgroupFiles } from './protocol/ssh-files';
import { supportsFor } from './supports';

/** Options of {@link connect}. */
export interface CgroupsOptions {
  /**
   * How the host's files are read and written: core's `createLocalFiles()` (the default), or a replayed
   * snapshot. For a remote host give `ssh` instead.
   */
  files?: FilesTransport;
  /**
   * A remote host: an open `connectSsh()` client of `@hvkit/ssh` (or anything with its `files` and
   * `exec`). Files are read over its SFTP session and written in place with `dd` over its exec channel,
   * so the kernel's errno survives; one connection carries everything. It stays yours to close, and
   * the adapter does not reconnect it: when it is closed or lost the adapter is `closed` (see
   * {@link CgroupsAdapter.connection}).
   */
  ssh?: SshCgroupConnection;
  /** The directory the host's files live under (default `/`). */
  root?: string;
  /**
   * More groups to treat as guests, relative to the hierarchy roots (`'hvkit-bar'`,
   * `'system.slice/backup.service'`): their id and name are the path. A group listed here that does not
   * exist in any hierarchy is simply not listed.
   */
  extraGroups?: readonly string[];
  /** Default timeout of one file call, in ms (default 30 000). Every method also takes `{ signal, timeoutMs }`. */
  timeoutMs?: number;
  /** Receives one debug line per call. */
  logger?: Logger;
  /** Aborts connecting. */
  signal?: AbortSignal;
}

/** Every key {@link connect} reads; any other key is a TypeError. */
const OPTION_KEYS = {
  files: true,
  ssh: true,
  root: true,
  extraGroups: true,
  timeoutMs: true,
  logger: true,
  signal: true,
} as const satisfies OptionKeysOf<CgroupsOptions>;

/** The cgroups adapter: spec v1, plus what connect learnt about the host's cgroups. */
export interface CgroupsAdapter extends HypervisorAdapterV1<typeof ADAPTER_ID> {
  /** `cgroup-v1`, `cgroup-v2` or `cgroup-hybrid`, the kernel release, the mounts and where each controller lives. */
  readonly server: Readonly<BackendHello>;
  /** Guests (cgroup groups), the host, and the block devices IO limits can name. Always present. */
  readonly inventory: InventoryCapability;
  /** CPU, memory, block IO and pids limits, written live. Always present. */
  readonly limits: LimitsCapability;
  /**
   * The connection state. Local (or on given `files`): `open` until `close()`. Over SSH it mirrors the
   * caller's SSH connection: when that is closed or lost the adapter becomes `closed` (as soon as the SSH
   * client notices) with `lastError` `CONNECTION_LOST`, and every call then fails `CONNECTION_LOST` with
   * `retryable: false`. It never reconnects (the SSH connection is not the adapter's): open a new SSH
   * client and a new adapter.
   */
  readonly connection: AdapterConnection;
}

/**
 * Opens the Linux cgroups adapter on a host's cgroup tree: locally by default, or over SSH with `ssh`. It
 * reads `/proc/self/mountinfo` first (v1, v2 or hybrid, and which hierarchy holds each controller), so a
 * host without cgroups fails here.
 *
 * @throws TypeError for options of the wrong type, an unknown option key, or both `files` and `ssh`.
 * @throws HvkitError `INVALID_ARGUMENT` for a relative `root` or an extra group path with `.`/`..`;
 *   `UNSUPPORTED` when the host mounts no cgroup hierarchy; `PERMISSION_DENIED`, `TIMEOUT`, `ABORTED`
 *   and the transport's own errors.
 *
 * @example
 * await using hv = await connect({ extraGroups: ['hvkit-bar'] });
 * console.log(hv.server.mode, hv.supports.limits);
 */
export async function connect(options: CgroupsOptions = {}): Promise<CgroupsAdapter> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${ADAPTER_ID} connect: options must be an object.`);
  checkOptionKeys(options, OPTION_KEYS, `${ADAPTER_ID} connect`);
  if (options.files !== undefined && typeof options.files?.readFile !== 'function') {
    throw new TypeError(`${ADAPTER_ID} connect: files must be a FilesTransport.`);
  }
  if (options.files !== undefined && options.ssh !== undefined) {
    throw new TypeError(`${ADAPTER_ID} connect: give files or ssh, not both.`);
  }
  const root = options.root ?? '/';
  if (typeof root !== 'string') throw new TypeError(`${ADAPTER_ID} connect: root must be a string.`);
  if (!root.startsWith('/')) {
    throw hvkitError('INVALID_ARGUMENT', `${ADAPTER_ID} connect: root must be an absolute path.`, {
      adapter: ADAPTER_ID,
      operation: 'connect',
    });
  }
  const extraGroups: string[] = [];
  if (options.extraGroups !== undefined) {
    if (!Array.isArray(options.extraGroups)) {
      throw new TypeError(`${ADAPTER_ID} connect: extraGroups must be an array of group paths.`);
    }
    for (const group of options.extraGroups as unknown[]) {
      if (typeof group !== 'string')
        throw new TypeError(`${ADAPTER_ID} connect: extraGroups must hold strings.`);
      const path = normaliseGroupPath(group);
      if (path === undefined) {
        throw hvkitError(
          'INVALID_ARGUMENT',
          `${ADAPTER_ID} connect: extra group ${JSON.stringify(group.slice(0, 200))} is not a group path (relative, no "." or ".." parts).`,
          { adapter: ADAPTER_ID, operation: 'connect' },
        );
      }
      if (!extraGroups.includes(path)) extraGroups.push(path);
    }
  }
  const timeoutMs = checkTimeoutMs(options.timeoutMs ?? 30_000, 'timeoutMs');
  const logger = options.logger ?? noopLogger;
  const files =
    options.ssh !== undefined ? sshCgroupFiles(options.ssh) : (options.files ?? createLocalFiles());
  const connection = new CgroupsConnection(files.target, options.ssh);
  const client = new CgroupsClient(files, root, timeoutMs, connection);
  let server: BackendHello;
  let v1Swap: boolean;
  try {
    server = await client.hello({ signal: options.signal, timeoutMs });
    const memory = server.controllers.memory;
    v1Swap =
      memory?.version === 1 &&
      (await client.exists(`${memory.mountPoint}/memory.memsw.limit_in_bytes`, { signal: options.signal }));
  } catch (error) {
    connection.close();
    throw error;
  }
  const supports = supportsFor(server, v1Swap);
  const context: AdapterContext = {
    client,
    hello: server,
    extraGroups,
    supports,
    logger,
    callTimeoutMs: timeoutMs,
  };
  const capabilities = {
    inventory: createInventory(context),
    limits: createLimits(context),
    labels: createLabels(context),
    backups: createBackups(context),
    events: createEvents(context),
  };
  const close = async () => {
    // The files transport belongs to the caller (an SSH connection is closed by whoever opened it).
    connection.close();
  };
  const adapter: CgroupsAdapter = {
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    supports,
    server: Object.freeze({ ...server }),
    connection,
    ...Object.fromEntries(Object.entries(capabilities).filter(([, value]) => value !== undefined)),
    inventory: capabilities.inventory,
    limits: capabilities.limits,
    close,
    [Symbol.asyncDispose]: close,
  };
  return wrapAdapter(adapter, { logger });
}
