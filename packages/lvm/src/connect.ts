/**
 * `connect(options)`: checks the options, chooses the exec transport, asks the backend who it is (so a
 * missing tool fails here, typed), builds the shared context and the capability objects, and wraps the
 * adapter.
 */

import {
  type AdapterConnection,
  BACKUP_LEASE_RENEW_MS,
  BACKUP_LEASE_TTL_MS,
  BorrowedConnection,
  checkOptionKeys,
  checkTimeoutMs,
  createLocalExec,
  type ExecTransport,
  type HypervisorAdapterV1,
  hvkitError,
  type Logger,
  noopLogger,
  type OptionKeysOf,
  RunningOperations,
  wrapAdapter,
} from '@hvkit/core';
import { createBackups } from './capabilities/backups';
import { createEvents } from './capabilities/events';
import { createInventory } from './capabilities/inventory';
import { createLabels } from './capabilities/labels';
import { createLimits } from './capabilities/limits';
import { guardedExec } from './connection';
import type { AdapterContext, FreezeHook, LvmBackupNaming, SnapshotSizePolicy } from './context';
import { ADAPTER_ID } from './errors';
import { type BackendHello, LvmClient } from './protocol/client';
import { parseLvId } from './protocol/names';
import { LVM_SUPPORTS } from './supports';

/** Options of {@link connect}. */
export interface LvmOptions {
  /**
   * Where the backend's commands run: core's `createLocalExec()` (the default, no shell) or the `exec` of
   * `connectSsh()` from `@hvkit/ssh` (every argument quoted), or a recording/replaying transport.
   */
  exec?: ExecTransport;
  /**
   * A remote host: an `SshClient` of `@hvkit/ssh` (`connectSsh()`), whose `exec` runs the commands with every
   * argument quoted. The connection stays the caller's (close it yourself): the adapter mirrors its state
   * (`closed`, `onClose`) in {@link LvmAdapter.connection} and never reconnects it. Not together with `exec`.
   */
  ssh?: {
    readonly exec: ExecTransport;
    /** True once the SSH connection is closed or lost (`SshClient.closed`). */
    readonly closed?: boolean;
    /** Tells the adapter at once when the SSH connection closes (`SshClient.onClose`). */
    onClose?(listener: () => void): () => void;
  };
  /**
   * Guests as groups of volumes: a guest name to its volumes `vg/lv` (e.g. derived from a libvirt domain's
   * disks). Default: every logical volume holding data (not internal, not a snapshot, not a thin pool, not
   * hvkit's own) is a guest of its own, with id and name `vg/lv`.
   */
  guests?: Readonly<Record<string, readonly string[]>>;
  /** The copy-on-write size of a backup's snapshot of a non-thin volume (default 20 %, at least 16 MiB). */
  snapshotSize?: SnapshotSizePolicy;
  /** Freezes and thaws a guest's filesystems around its snapshot (default: none; the copy is crash-consistent). */
  freeze?: FreezeHook;
  /** Default timeout of one command, in ms (default 30 000). Every method also takes `{ signal, timeoutMs }`. */
  timeoutMs?: number;
  /**
   * After a call's signal aborts (or its timeout fires), how long the call waits at most for the adapter to
   * undo its work before it rejects: remove the backup's snapshot, its lease tag and the partial files
   * (default 60 000 ms; 0 rejects at once). LVM's commands take seconds each on a busy host, so the default
   * is long enough for that cleanup to have finished when the promise rejects; each cleanup command is still
   * bounded by `timeoutMs`.
   */
  abortSettleMs?: number;
  /**
   * How long `close()` waits at most for the backups and restores it aborts to remove their snapshots, lease
   * tags and partial files (default 60 000 ms). What is still there then is logged as a warning and left for
   * `backups.cleanup`.
   */
  closeTimeoutMs?: number;
  /** Receives one debug line per call. */
  logger?: Logger;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /**
   * Deterministic names, clock and lease owner for backups and the lease timing (recordings and tests;
   * internal, not a stable API).
   */
  naming?: LvmBackupNaming;
}

/** Every key {@link connect} reads; any other key is a TypeError. */
const OPTION_KEYS = {
  exec: true,
  ssh: true,
  guests: true,
  snapshotSize: true,
  freeze: true,
  timeoutMs: true,
  abortSettleMs: true,
  closeTimeoutMs: true,
  logger: true,
  signal: true,
  naming: { uniqueId: true, now: true, leaseOwner: true, leaseRenewMs: true, leaseTtlMs: true },
} as const satisfies OptionKeysOf<LvmOptions>;

/** The lvm adapter: spec v1, plus what the backend said about itself at connect. */
export interface LvmAdapter extends HypervisorAdapterV1<typeof ADAPTER_ID> {
  /** The backend's product, version and build, read at connect. */
  readonly server: Readonly<BackendHello>;
  /**
   * The connection state. Local (or on a given `exec`): `open` until `close()`. Over SSH it mirrors the
   * caller's SSH client: when that is closed or lost the adapter becomes `closed` (as soon as the client's
   * `onClose` fires), with a `CONNECTION_LOST` lastError, and every later call fails `CONNECTION_LOST` with
   * `retryable: false` at once, without sending a command. It never reconnects (the SSH connection is not
   * the adapter's): open a new SSH client and a new adapter.
   */
  readonly connection: AdapterConnection;
}

/**
 * Opens the LVM adapter on a host and returns it. It asks the backend who it is first, so a
 * missing tool or an unreachable host fails here.
 *
 * @throws TypeError for options of the wrong type or an unknown option key.
 * @throws HvkitError `NOT_FOUND` when the backend's tool is missing, `TIMEOUT`, `ABORTED`, `PROTOCOL`
 *   and the transport's own errors when the backend cannot be used; `CONNECTION_LOST` (not retryable) when
 *   the given SSH client is already closed.
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
  if (options.ssh !== undefined && typeof options.ssh?.exec?.exec !== 'function') {
    throw new TypeError(`${ADAPTER_ID} connect: ssh must be an SshClient of @hvkit/ssh.`);
  }
  if (options.ssh !== undefined && options.exec !== undefined) {
    throw new TypeError(`${ADAPTER_ID} connect: give exec or ssh, not both.`);
  }
  const guests = checkGuests(options.guests);
  const snapshotSize = checkSnapshotSize(options.snapshotSize);
  if (
    options.freeze !== undefined &&
    (typeof options.freeze?.freeze !== 'function' || typeof options.freeze?.thaw !== 'function')
  ) {
    throw new TypeError(`${ADAPTER_ID} connect: freeze must have freeze() and thaw() functions.`);
  }
  const naming = checkNaming(options.naming);
  const timeoutMs = checkTimeoutMs(options.timeoutMs ?? 30_000, 'timeoutMs');
  const abortSettleMs = checkMs(options.abortSettleMs, DEFAULT_ABORT_SETTLE_MS, 'abortSettleMs');
  const closeTimeoutMs = checkMs(options.closeTimeoutMs, DEFAULT_CLOSE_TIMEOUT_MS, 'closeTimeoutMs');
  const logger = options.logger ?? noopLogger;
  const exec = options.ssh?.exec ?? options.exec ?? createLocalExec();
  const connection = new BorrowedConnection({ adapter: ADAPTER_ID, target: exec.target }, options.ssh);
  const client = new LvmClient(guardedExec(exec, connection), timeoutMs);
  let server: BackendHello;
  try {
    server = await client.hello({ signal: options.signal, timeoutMs });
  } catch (error) {
    connection.close();
    throw error;
  }
  const context: AdapterContext = {
    client,
    logger,
    callTimeoutMs: timeoutMs,
    guests,
    snapshotSize,
    freeze: options.freeze,
    naming,
    running: new RunningOperations(ADAPTER_ID),
  };
  const capabilities = {
    inventory: createInventory(context),
    limits: createLimits(context),
    labels: createLabels(context),
    backups: createBackups(context),
    events: createEvents(context),
  };
  // The exec transport belongs to the caller (an SSH connection is closed by whoever opened it): close()
  // stops the running backups and restores, waits (at most closeTimeoutMs) for their cleanup, and only then
  // closes the connection state (their cleanup commands still run).
  const close = async (): Promise<void> => {
    if (!(await context.running.close(closeTimeoutMs))) {
      logger.warn(
        `lvm: close() stopped waiting after ${closeTimeoutMs} ms (closeTimeoutMs) for ${context.running.size} running backup(s) or restore(s) to remove their snapshots; run backups.cleanup once their leases expired`,
      );
    }
    connection.close();
  };
  const adapter: LvmAdapter = {
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    supports: LVM_SUPPORTS,
    server: Object.freeze({ ...server }),
    connection,
    ...Object.fromEntries(Object.entries(capabilities).filter(([, value]) => value !== undefined)),
    close,
    [Symbol.asyncDispose]: close,
  };
  return wrapAdapter(adapter, { logger, abortSettleMs });
}

/** Default {@link LvmOptions.abortSettleMs}. */
const DEFAULT_ABORT_SETTLE_MS = 60_000;
/** Default {@link LvmOptions.closeTimeoutMs}. */
const DEFAULT_CLOSE_TIMEOUT_MS = 60_000;

function checkMs(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) {
    throw new TypeError(`${ADAPTER_ID} connect: ${name} must be a finite number of ms >= 0.`);
  }
  return value;
}

function checkGuests(guests: LvmOptions['guests']): Readonly<Record<string, readonly string[]>> | undefined {
  if (guests === undefined) return undefined;
  if (typeof guests !== 'object' || guests === null || Array.isArray(guests)) {
    throw new TypeError(`${ADAPTER_ID} connect: guests must be an object of guest name to volume ids.`);
  }
  const out: Record<string, readonly string[]> = {};
  const owner = new Map<string, string>();
  for (const [name, ids] of Object.entries(guests)) {
    if (!Array.isArray(ids) || ids.length === 0 || ids.some((id) => typeof id !== 'string')) {
      throw new TypeError(
        `${ADAPTER_ID} connect: guests[${JSON.stringify(name)}] must be a non-empty array of "vg/lv".`,
      );
    }
    if (name.trim() === '' || name.length > 200) {
      throw hvkitError(
        'INVALID_ARGUMENT',
        `${ADAPTER_ID} connect: guest name ${JSON.stringify(name.slice(0, 200))} is empty or too long.`,
        {
          adapter: ADAPTER_ID,
        },
      );
    }
    for (const id of ids) {
      parseLvId(id, 'connect');
      const other = owner.get(id);
      if (other !== undefined) {
        throw hvkitError(
          'INVALID_ARGUMENT',
          `${ADAPTER_ID} connect: volume ${id} is mapped to two guests (${JSON.stringify(other)} and ${JSON.stringify(name)}).`,
          { adapter: ADAPTER_ID },
        );
      }
      owner.set(id, name);
    }
    out[name] = Object.freeze([...ids]);
  }
  return Object.freeze(out);
}

function checkNaming(naming: LvmBackupNaming | undefined): LvmBackupNaming {
  if (naming === undefined) return {};
  if (typeof naming !== 'object' || naming === null)
    throw new TypeError(`${ADAPTER_ID} connect: naming must be an object.`);
  for (const key of ['uniqueId', 'now', 'leaseOwner'] as const) {
    if (naming[key] !== undefined && typeof naming[key] !== 'function') {
      throw new TypeError(`${ADAPTER_ID} connect: naming.${key} must be a function.`);
    }
  }
  const renew = naming.leaseRenewMs ?? BACKUP_LEASE_RENEW_MS;
  const ttl = naming.leaseTtlMs ?? BACKUP_LEASE_TTL_MS;
  for (const [key, value] of [
    ['leaseRenewMs', renew],
    ['leaseTtlMs', ttl],
  ] as const) {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) {
      throw new TypeError(`${ADAPTER_ID} connect: naming.${key} must be a positive integer (ms).`);
    }
  }
  if (ttl <= renew) throw new TypeError(`${ADAPTER_ID} connect: naming.leaseTtlMs must exceed leaseRenewMs.`);
  return { ...naming };
}

function checkSnapshotSize(policy: SnapshotSizePolicy | undefined): Required<SnapshotSizePolicy> {
  if (policy !== undefined && (typeof policy !== 'object' || policy === null)) {
    throw new TypeError(`${ADAPTER_ID} connect: snapshotSize must be an object.`);
  }
  const percent = policy?.percent ?? 20;
  const minBytes = policy?.minBytes ?? 16 * 1024 * 1024;
  if (typeof percent !== 'number' || typeof minBytes !== 'number') {
    throw new TypeError(`${ADAPTER_ID} connect: snapshotSize.percent and minBytes must be numbers.`);
  }
  if (!(percent > 0 && percent <= 100) || !(Number.isSafeInteger(minBytes) && minBytes >= 0)) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `${ADAPTER_ID} connect: snapshotSize needs 0 < percent <= 100 and a whole minBytes >= 0.`,
      {
        adapter: ADAPTER_ID,
      },
    );
  }
  return { percent, minBytes };
}
