/**
 * Shared state of one adapter: the RPC connection, the driver found at connect, the host's cgroup
 * version, and helpers to resolve guest references and read domains.
 */

import { setMaxListeners } from 'node:events';
import {
  type CallOptions,
  formatGuestRef,
  type GuestRef,
  HvkitError,
  type HvkitWarning,
  hvkitError,
  isUuid,
  type Logger,
  resolveGuestRef,
} from '@hvkit/core';
import { ADAPTER_ID } from './errors';
import type { LibvirtCapabilities } from './mapping/host';
import type { CgroupVersion } from './mapping/limits';
import type { LibvirtRpcClient } from './protocol/client';
import { DOMAIN_STATE, DOMAIN_XML } from './protocol/constants';
import { remoteProcedures } from './protocol/remote-protocol';
import type { RemoteDomain } from './protocol/types';

/** Internal state shared by the capability objects. */
export interface AdapterContext {
  client: LibvirtRpcClient;
  /** `CONNECT_GET_TYPE`, upper case: `QEMU`, `TEST`, ... */
  driver: string;
  /** cgroup version of the daemon host, undefined when unknown (see `KvmLibvirtConnectOptions.cgroupVersion`). */
  cgroupVersion: CgroupVersion | undefined;
  /** How the cgroup version was decided, for messages and debugging. */
  cgroupVersionSource: 'option' | 'detected' | 'test-driver' | 'unknown';
  /** Why the cgroup version is unknown, for messages. */
  cgroupUnknownReason?: string;
  /** Storage pool for temporary backup files (push targets). */
  backupPool: string;
  /** Backup idle deadline, ms (see `KvmLibvirtConnectOptions.backupIdleTimeoutMs`). */
  backupIdleTimeoutMs: number;
  /** Whether the daemon runs on this machine (a local URI), so host files such as selinuxfs can be read. */
  localDaemon: boolean;
  logger: Logger | undefined;
  /** The capabilities XML and its parsed form, read and parsed once per adapter (a failure is not cached). */
  capabilities(options?: CallOptions): Promise<{ xml: string; parsed: LibvirtCapabilities }>;
  /** Sibling connections opened for bulk streams, closed with the adapter. */
  siblings: Set<LibvirtRpcClient>;
  /** Running backups; `close()` aborts them and waits (bounded) for their cleanup. */
  pending: Set<PendingOperation>;
  /** Aborts when `close()` starts: running backups stop and clean up, new calls reject. */
  closeSignal: AbortSignal;
  /**
   * What running operations created and have not removed yet (backup jobs, checkpoints, temporary volumes,
   * sink files). Whatever is still here when `close()` stops waiting is reported through the logger.
   */
  leftovers: Set<Leftover>;
}

/** An operation `close()` waits for. */
export interface PendingOperation {
  /** Settles (never rejects) when the operation and its cleanup are done. */
  settled: Promise<void>;
  /** Called when `close()` stops waiting: the operation's caller is answered at once. */
  abandon(): void;
}

/** Something an operation created on the daemon host or in a sink, until it is removed or handed over. */
export interface Leftover {
  kind: 'backup job' | 'checkpoint' | 'temporary volume' | 'sink file' | 'lease';
  /** Checkpoint name, volume path, file name in the sink, or the run of a lease. */
  name: string;
  /** The guest it belongs to. */
  guest?: string;
  /** Where it is: the storage pool, or the sink's location. */
  where?: string;
}

/** `checkpoint "hvkit-x" of guest "g1"`, `sink file "g1-vda.qcow2" in /backups`, ... */
export function describeLeftover(l: Leftover): string {
  const guest = l.guest !== undefined ? ` of guest ${JSON.stringify(l.guest)}` : '';
  switch (l.kind) {
    case 'backup job':
      return `backup job ${JSON.stringify(l.name)}${guest}`;
    case 'checkpoint':
      return `checkpoint ${JSON.stringify(l.name)}${guest}`;
    case 'temporary volume':
      return `temporary volume ${l.name}${l.where !== undefined ? ` in pool ${JSON.stringify(l.where)}` : ''}`;
    case 'sink file':
      return `sink file ${JSON.stringify(l.name)}${l.where !== undefined ? ` in ${l.where}` : ''}`;
    case 'lease':
      return `backup lease of run ${JSON.stringify(l.name)}${guest}`;
  }
}

/** Reports through the adapter's logger (a warning) that `leftover` could not be removed, and why. */
export function reportLeftover(ctx: AdapterContext, leftover: Leftover, why: string): void {
  try {
    ctx.logger?.warn(`kvm-libvirt: could not remove the ${describeLeftover(leftover)}: ${why}`, {
      adapter: ADAPTER_ID,
      kind: leftover.kind,
      name: leftover.name,
      ...(leftover.guest !== undefined ? { guest: leftover.guest } : {}),
      ...(leftover.where !== undefined ? { where: leftover.where } : {}),
    });
  } catch {
    // A failing logger must not change the outcome.
  }
}

/** Records something an operation created; it stays recorded until removed or handed to the caller. */
export function holdLeftover(ctx: AdapterContext, leftover: Leftover): Leftover {
  ctx.leftovers.add(leftover);
  return leftover;
}

/**
 * Removes a leftover with `remove`; NOT_FOUND counts as removed. When that fails it is reported through the
 * logger, naming it, unless `close()` has reported it already.
 */
export async function removeLeftover(
  ctx: AdapterContext,
  leftover: Leftover,
  remove: () => Promise<unknown>,
): Promise<void> {
  try {
    await remove();
    ctx.leftovers.delete(leftover);
  } catch (error) {
    if (HvkitError.isInstance(error, 'NOT_FOUND')) ctx.leftovers.delete(leftover);
    else if (ctx.leftovers.delete(leftover)) {
      reportLeftover(ctx, leftover, error instanceof Error ? error.message : String(error));
    }
  }
}

/**
 * The error of an operation stopped by its signal: ABORTED naming the close when `close()` stopped it, else
 * the signal's own HvkitError reason (the wrapper's TIMEOUT or ABORTED), else ABORTED with `message`.
 */
export function operationAbortedError(
  ctx: AdapterContext,
  signal: AbortSignal | undefined,
  operation: string,
  message: string,
): unknown {
  const reason = signal?.reason as { code?: string } | undefined;
  if (ctx.closeSignal.aborted && reason === ctx.closeSignal.reason) {
    return hvkitError('ABORTED', `${operation} was aborted: the adapter was closed.`, {
      adapter: ADAPTER_ID,
      operation,
      retryable: false,
    });
  }
  if (reason && typeof reason === 'object' && typeof reason.code === 'string') return reason;
  return hvkitError('ABORTED', message, { adapter: ADAPTER_ID, operation });
}

/**
 * Registers a running operation: `close()` aborts it (through a signal joined with `ctx.closeSignal`) and
 * waits, bounded, for its cleanup. When `close()` stops waiting, the caller gets ABORTED at once instead of
 * waiting for a cleanup that hangs (a sink that never answers).
 */
export function trackOperation<T>(ctx: AdapterContext, operation: string, run: () => Promise<T>): Promise<T> {
  if (ctx.closeSignal.aborted) return Promise.reject(closedError(operation));
  const work = run();
  return new Promise<T>((resolve, reject) => {
    const pending: PendingOperation = {
      settled: work.then(
        () => {},
        () => {},
      ),
      abandon: () =>
        reject(
          hvkitError(
            'ABORTED',
            `${operation} was aborted: the adapter was closed, and close() stopped waiting for its cleanup.`,
            { adapter: ADAPTER_ID, operation, retryable: false },
          ),
        ),
    };
    ctx.pending.add(pending);
    work.then(resolve, reject).finally(() => ctx.pending.delete(pending));
  });
}

/** The error of a call made after `close()` started. */
export function closedError(operation: string): HvkitError {
  return hvkitError('CONNECTION_LOST', `${ADAPTER_ID} ${operation}: the adapter is closed.`, {
    adapter: ADAPTER_ID,
    operation,
    retryable: false,
  });
}

/** A resolved domain plus its state. */
export interface DomainHandle {
  dom: RemoteDomain;
  uuid: string;
  state: number;
  active: boolean;
}

/** Call options for the RPC client from a capability call's options. */
export function rpcOptions(options: CallOptions | undefined): { signal?: AbortSignal; timeoutMs?: number } {
  const out: { signal?: AbortSignal; timeoutMs?: number } = {};
  if (options?.signal !== undefined) {
    // Pipelined calls each listen on the same signal.
    setMaxListeners(100_000, options.signal);
    out.signal = options.signal;
  }
  if (options?.timeoutMs !== undefined) out.timeoutMs = options.timeoutMs;
  return out;
}

/** Whether a libvirt state number means the domain runs (running, blocked, paused, pmsuspended, shutdown in progress). */
export function isActiveState(state: number): boolean {
  return state !== DOMAIN_STATE.SHUTOFF && state !== DOMAIN_STATE.NOSTATE && state !== DOMAIN_STATE.CRASHED;
}

function notFound(ref: GuestRef, operation: string) {
  return hvkitError('NOT_FOUND', `No guest matches ${formatGuestRef(ref)}.`, {
    adapter: ADAPTER_ID,
    operation,
  });
}

/**
 * Looks a guest up: a string id or `{ id }`/`{ uuid }` is the domain UUID (any case); `{ name }` the name.
 * An id that is not a UUID cannot name a domain: `NOT_FOUND` without a call. A value with a NUL byte is
 * `INVALID_ARGUMENT` without a call.
 */
export async function lookupDomain(
  ctx: AdapterContext,
  ref: GuestRef,
  operation: string,
  options?: CallOptions,
): Promise<RemoteDomain> {
  const resolved = resolveGuestRef(ref);
  if (resolved.value.includes('\0')) {
    // libvirt reads names as C strings: sent as is, the daemon would look up the part before the NUL.
    throw hvkitError(
      'INVALID_ARGUMENT',
      `Guest reference ${resolved.by} contains a NUL byte; no libvirt domain can have it.`,
      { adapter: ADAPTER_ID, operation, details: { field: resolved.by } },
    );
  }
  const rpc = rpcOptions(options);
  try {
    if (resolved.by === 'name') {
      return await ctx.client.call(remoteProcedures.DOMAIN_LOOKUP_BY_NAME, { name: resolved.value }, rpc);
    }
    if (!isUuid(resolved.value)) throw notFound(ref, operation);
    return await ctx.client.call(
      remoteProcedures.DOMAIN_LOOKUP_BY_UUID,
      { uuid: resolved.value.toLowerCase() },
      rpc,
    );
  } catch (error) {
    if ((error as { code?: string }).code === 'NOT_FOUND') throw notFound(ref, operation);
    throw error;
  }
}

/** Looks a guest up and reads its state. */
export async function domainHandle(
  ctx: AdapterContext,
  ref: GuestRef,
  operation: string,
  options?: CallOptions,
): Promise<DomainHandle> {
  const dom = await lookupDomain(ctx, ref, operation, options);
  const { state } = await ctx.client.call(
    remoteProcedures.DOMAIN_GET_STATE,
    { dom, flags: 0 },
    rpcOptions(options),
  );
  return { dom, uuid: dom.uuid.toLowerCase(), state, active: isActiveState(state) };
}

/** Domain XML: live (`inactive: false`, the default for an active domain) or the definition. */
export function domainXml(
  ctx: AdapterContext,
  dom: RemoteDomain,
  inactive: boolean,
  options?: CallOptions,
): Promise<string> {
  return ctx.client.call(
    remoteProcedures.DOMAIN_GET_XML_DESC,
    { dom, flags: inactive ? DOMAIN_XML.INACTIVE : 0 },
    rpcOptions(options),
  );
}

/** A warning list helper. */
export function pushAll(into: HvkitWarning[], from: readonly HvkitWarning[]): void {
  for (const w of from) into.push(w);
}
