/**
 * LibvirtRpcClient: one connection to a libvirt daemon speaking the remote RPC protocol in pure
 * TypeScript (no libvirt.so, no virsh). The client is a facade over parts that each do one job:
 *
 * - `connection.ts`: the socket, framing, write corking, keepalive (server PINGs are answered; the client
 *   PINGs when quiet and closes with CONNECTION_LOST when nothing arrived for `intervalMs × countMax`),
 *   routing of incoming packets, close and teardown.
 * - `handshake.ts`: AUTH_LIST (NONE; POLKIT → AUTH_POLKIT; SASL → UNSUPPORTED),
 *   SUPPORTS_FEATURE(keepalive), CONNECT_OPEN with the driver URI.
 * - `calls.ts`: many calls in flight, replies matched by serial (they can arrive out of order); at most
 *   `maxInFlight` (default 4) are outstanding at the daemon, the rest queue, because the daemon stops
 *   reading a client with 5 unanswered requests, which would starve keepalive.
 * - `stream.ts`: read streams (STORAGE_VOL_DOWNLOAD): holes, backpressure, `maxBytes`.
 * - `write-stream.ts`: write streams (STORAGE_VOL_UPLOAD): data and holes, socket drain, confirmation.
 * - `events.ts`: domain event registrations and their dispatch.
 *
 * A closed or dead connection fails every pending call and stream with CONNECTION_LOST (retryable);
 * nothing waits forever (every call has a timeout).
 */

import type { Duplex } from 'node:stream';
import {
  abortError,
  checkSignal,
  checkTimeoutMs,
  DEFAULT_TIMEOUT_MS,
  type Dialer,
  deriveSignal,
  HvkitError,
  type Logger,
} from '@hvkit/core';
import type { SshClient } from '@hvkit/ssh';
import { ADAPTER_ID } from '../errors';
import { type CallOptions, CallTable, decodeReply, encodeArgs } from './calls';
import { connectionLost, RpcConnection, type RpcTraceEvent } from './connection';
import {
  MESSAGE_MAX,
  PROGRAM,
  PROTOCOL_VERSION,
  STORAGE_VOL_DOWNLOAD_SPARSE_STREAM,
  STORAGE_VOL_UPLOAD_SPARSE_STREAM,
} from './constants';
import {
  DomainEventRouter,
  type DomainEventSubscription,
  type DomainEventSubscriptionOptions,
} from './events';
import { handshake } from './handshake';
import { type KeepaliveOptions, type KeepaliveStats, resolveKeepalive } from './keepalive';
import { type RemoteProcedure, remoteProcedures } from './remote-protocol';
import { type LibvirtReadStream, type ReadStreamOptions, ReadStreamTable } from './stream';
import type { RemoteDomain, RemoteStorageVol } from './types';
import { LibvirtWriteStream, type WriteStreamOptions } from './write-stream';

export type { CallOptions } from './calls';
export type { RpcTraceEvent } from './connection';

/** Default number of calls outstanding at the daemon (its `max_client_requests` is 5). */
export const DEFAULT_MAX_IN_FLIGHT = 4;
/** Default timeout of connecting (dial, authentication and CONNECT_OPEN). */
export const DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS = 30_000;

/**
 * Options of {@link LibvirtRpcClient.connect}: a ready dialer and the URI to open. To connect by a libvirt
 * URI (`qemu:///system`, `qemu+ssh://...`), use `connectRpc()`, which reads the URI and picks the dialer.
 */
export interface LibvirtRpcClientOptions {
  /** Opens the byte stream to the daemon (unix socket, TCP, TLS, an SSH channel, a replay). */
  dialer: Dialer;
  /** The URI sent in CONNECT_OPEN (e.g. `qemu:///system`); `null` lets the daemon choose. */
  openUri: string | null;
  /** Where the client connects, as shown in errors (secrets removed). Default: the dialer's target. */
  target?: string;
  /** Releases what the dialer depends on (an SSH connection); called once the client is closed or failed. */
  dispose?: () => Promise<void>;
  /** The SSH connection the dialer runs over, exposed as {@link LibvirtRpcClient.sshClient}. */
  ssh?: SshClient;
  /** Open read-only (VIR_CONNECT_RO). */
  readOnly?: boolean;
  /** Deadline of the whole connect (dial, auth, open). Default 30000 ms. */
  timeoutMs?: number;
  /** Default timeout of each call that gives none. Default 30000 ms. */
  callTimeoutMs?: number;
  /** Keepalive settings (default interval 5000 ms, count 5), or `false` to never send PINGs. */
  keepalive?: KeepaliveOptions | false;
  /** Largest message sent or accepted, without the length word (default 32 MiB, libvirt's limit). */
  maxMessageBytes?: number;
  /** Calls outstanding at the daemon at once; more wait in a queue (default 4, at most 64). */
  maxInFlight?: number;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /** Debug logging (no secrets). */
  logger?: Logger;
  /** Sees every packet sent and received (for transcripts and debugging). */
  trace?: (event: RpcTraceEvent) => void;
}

/** The settings of {@link LibvirtRpcClientOptions} that do not depend on the dialer, checked. */
export interface CheckedClientSettings {
  readOnly: boolean;
  timeoutMs: number;
  callTimeoutMs: number;
  keepalive: Required<KeepaliveOptions> | false;
  maxMessageBytes: number;
  maxInFlight: number;
}

/**
 * Checks the dialer-independent options of a client (before anything is dialed).
 *
 * @throws TypeError for malformed values.
 */
export function checkClientSettings(
  options: Omit<LibvirtRpcClientOptions, 'dialer' | 'openUri'>,
): CheckedClientSettings {
  const timeoutMs = checkTimeoutMs(options.timeoutMs ?? DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS);
  const callTimeoutMs = checkTimeoutMs(options.callTimeoutMs ?? DEFAULT_TIMEOUT_MS, 'callTimeoutMs');
  const keepalive = resolveKeepalive(options.keepalive);
  const maxMessageBytes = options.maxMessageBytes ?? MESSAGE_MAX;
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < 1024 || maxMessageBytes > MESSAGE_MAX) {
    throw new TypeError(`maxMessageBytes must be an integer between 1024 and ${MESSAGE_MAX}.`);
  }
  const maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1 || maxInFlight > 64) {
    throw new TypeError('maxInFlight must be an integer between 1 and 64.');
  }
  if (options.trace !== undefined && typeof options.trace !== 'function') {
    throw new TypeError('trace must be a function.');
  }
  return {
    readOnly: options.readOnly === true,
    timeoutMs,
    callTimeoutMs,
    keepalive,
    maxMessageBytes,
    maxInFlight,
  };
}

/**
 * Runs `run` under one connect deadline (`timeoutMs` and the caller's signal): on failure `dispose()` runs,
 * and an abort by the caller is reported as ABORTED (a deadline stays TIMEOUT).
 */
export async function withConnectDeadline<T>(
  options: { signal?: AbortSignal | undefined; timeoutMs: number },
  dispose: () => Promise<void>,
  run: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const derived = deriveSignal(
    { signal: options.signal, timeoutMs: options.timeoutMs },
    { adapter: ADAPTER_ID, operation: 'connect' },
  );
  try {
    return await run(derived.signal);
  } catch (error) {
    await dispose().catch(() => {});
    if (derived.signal.aborted && !HvkitError.isInstance(error, 'TIMEOUT')) {
      throw abortError(derived.signal, { adapter: ADAPTER_ID, operation: 'connect' });
    }
    throw error;
  } finally {
    derived.dispose();
  }
}

/** Counters of a client. */
export interface LibvirtClientStats extends KeepaliveStats {
  callsSent: number;
  repliesReceived: number;
  /** Replies that arrived for calls already given up (aborted or timed out). */
  lateReplies: number;
  eventsReceived: number;
  inFlight: number;
  queued: number;
}

/** Options of {@link LibvirtRpcClient.downloadVolume}. */
export interface DownloadVolumeOptions extends ReadStreamOptions {
  /** First byte (default 0). */
  offset?: bigint | number;
  /** Bytes to read, 0 for all (default 0). A length also bounds the stream: `maxBytes` defaults to it. */
  length?: bigint | number;
  /** Ask for a sparse stream: holes arrive as holes instead of zeros (VIR_STORAGE_VOL_DOWNLOAD_SPARSE_STREAM). */
  sparse?: boolean;
  /** Timeout of the initial call (the stream itself uses `idleTimeoutMs`). */
  timeoutMs?: number;
}

/** Options of {@link LibvirtRpcClient.uploadVolume}. */
export interface UploadVolumeOptions extends Omit<WriteStreamOptions, 'sparse'> {
  /** First byte written (default 0). */
  offset?: bigint | number;
  /** Bytes to write, 0 for up to the end (default 0). */
  length?: bigint | number;
  /** Allow holes (VIR_STORAGE_VOL_UPLOAD_SPARSE_STREAM): `hole(n)` skips n bytes, which read back as zeros. */
  sparse?: boolean;
  /** Timeout of the initial call (the stream itself uses `idleTimeoutMs`). */
  timeoutMs?: number;
}

interface ClientSettings {
  target: string;
  openUri: string | null;
  readOnly: boolean;
  callTimeoutMs: number;
  keepalive: Required<KeepaliveOptions> | false;
  maxMessageBytes: number;
  maxInFlight: number;
  logger: Logger | undefined;
  trace: ((event: RpcTraceEvent) => void) | undefined;
  dialer: Dialer;
  /** Resources owned by this client, released on close. */
  dispose: () => Promise<void>;
  /** The SSH connection of a `qemu+ssh` URI. */
  ssh?: SshClient;
}

type CallArgs<A> = [A] extends [undefined]
  ? [args?: undefined, options?: CallOptions]
  : [args: A, options?: CallOptions];

/**
 * A connection to a libvirt daemon. Create it with {@link LibvirtRpcClient.connect}; close it with
 * {@link LibvirtRpcClient.close} (or `await using`).
 */
export class LibvirtRpcClient implements AsyncDisposable {
  private readonly connection: RpcConnection;
  private readonly calls: CallTable;
  private readonly streams: ReadStreamTable;
  private readonly events: DomainEventRouter;
  private closePromise: Promise<void> | undefined;

  private constructor(
    socket: Duplex,
    private readonly settings: ClientSettings,
  ) {
    this.connection = new RpcConnection(socket, settings, {
      onEvent: (header, payload) => this.events.dispatch(header, payload),
      onReply: (header, payload) => this.calls.dispatchReply(header, payload),
      onStream: (header, payload) => this.streams.dispatch(header, payload),
      failAll: (failure, error) => {
        this.calls.failAll(failure);
        this.streams.failAll(failure);
        this.events.endAll(error);
      },
    });
    this.streams = new ReadStreamTable(this.connection);
    this.calls = new CallTable(this.connection, settings, (serial) => this.streams.has(serial));
    this.events = new DomainEventRouter({
      isOpen: () => this.connection.state === 'open',
      call: (procedure, args, options) => this.callProcedure(procedure, args, options),
      logger: settings.logger,
    });
  }

  /**
   * Dials with the given dialer, authenticates and opens the driver `openUri`. To connect by a libvirt
   * URI, use `connectRpc()`.
   *
   * @throws HvkitError CONNECTION_LOST (unreachable), AUTH_FAILED / PERMISSION_DENIED (refused),
   *   UNSUPPORTED (SASL authentication, unknown driver), TIMEOUT, ABORTED,
   *   NOT_FOUND / REMOTE (the daemon could not open the driver, e.g. a missing node XML file).
   * @throws TypeError for malformed options.
   */
  static async connect(options: LibvirtRpcClientOptions): Promise<LibvirtRpcClient> {
    if (typeof options !== 'object' || options === null)
      throw new TypeError('connect: options are required.');
    const dialer = options.dialer;
    if (typeof dialer !== 'object' || dialer === null || typeof dialer.dial !== 'function') {
      throw new TypeError('connect: `dialer` is required (connectRpc() turns a libvirt URI into one).');
    }
    if (typeof options.openUri !== 'string' && options.openUri !== null) {
      throw new TypeError('connect: `openUri` is required with `dialer` (e.g. "qemu:///system").');
    }
    const dispose = options.dispose ?? (async () => {});
    if (typeof dispose !== 'function') throw new TypeError('connect: dispose must be a function.');
    checkSignal(options.signal);
    const checked = checkClientSettings(options);
    const { timeoutMs } = checked;
    return withConnectDeadline({ signal: options.signal, timeoutMs }, dispose, (signal) => {
      const settings: ClientSettings = {
        target: options.target ?? dialer.target,
        openUri: options.openUri,
        readOnly: checked.readOnly,
        callTimeoutMs: checked.callTimeoutMs,
        keepalive: checked.keepalive,
        maxMessageBytes: checked.maxMessageBytes,
        maxInFlight: checked.maxInFlight,
        logger: options.logger,
        trace: options.trace,
        dialer,
        dispose,
        ...(options.ssh !== undefined ? { ssh: options.ssh } : {}),
      };
      return LibvirtRpcClient.open(settings, signal, timeoutMs);
    });
  }

  private static async open(
    settings: ClientSettings,
    signal: AbortSignal,
    timeoutMs: number,
  ): Promise<LibvirtRpcClient> {
    const socket = await settings.dialer.dial({ signal, timeoutMs });
    const client = new LibvirtRpcClient(socket, settings);
    const call = { signal, timeoutMs: Number.POSITIVE_INFINITY };
    try {
      await handshake(client, settings, call, () => client.connection.startKeepalive());
      return client;
    } catch (error) {
      await client.destroy(
        HvkitError.isInstance(error) ? error : connectionLost(settings.target, 'failed during setup', error),
      );
      throw error;
    }
  }

  /** Where the client is connected (the URI, secrets removed, or the dialer's target). */
  get target(): string {
    return this.settings.target;
  }

  /** The URI that was opened on the daemon (e.g. `qemu:///system`). */
  get openUri(): string | null {
    return this.settings.openUri;
  }

  /**
   * The SSH connection under a `qemu+ssh` URI (shared with siblings; closed with this client unless it was
   * given in `transport.ssh.client`): it runs commands and reads files on the daemon host. Undefined for
   * other transports and for a `dialer`.
   */
  get sshClient(): SshClient | undefined {
    return this.settings.ssh;
  }

  /** True once the connection is closed or lost. */
  get closed(): boolean {
    return this.connection.state !== 'open';
  }

  /** Why the connection closed (undefined while open, or after a clean `close()`). */
  get closeReason(): HvkitError | undefined {
    return this.connection.closeReason;
  }

  /** True when the client runs keepalive (the daemon supports it and it was not disabled). */
  get keepaliveActive(): boolean {
    return this.connection.keepaliveActive;
  }

  /** Counters (keepalive PINGs/PONGs, calls, late replies, events). */
  stats(): LibvirtClientStats {
    return {
      ...this.connection.keepaliveStats(),
      ...this.calls.stats(),
      eventsReceived: this.events.eventsReceived,
      inFlight: this.calls.inFlight,
      queued: this.calls.queued,
    };
  }

  /**
   * Calls `listener` once when the connection closes: with the error for a lost or failed connection,
   * `undefined` after `close()`. Returns a function that removes the listener.
   */
  onClose(listener: (error: HvkitError | undefined) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('onClose: listener must be a function.');
    return this.connection.onClose(listener);
  }

  // ---------------------------------------------------------------- calls

  /**
   * Calls a procedure and decodes its reply.
   *
   * @example
   * const dom = await client.call(remoteProcedures.DOMAIN_LOOKUP_BY_NAME, { name: 'web1' });
   * const xml = await client.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: 0 });
   *
   * @throws HvkitError the mapped libvirt error (NOT_FOUND, INVALID_ARGUMENT, CONFLICT, UNSUPPORTED, ...,
   *   with `backendCode` the VIR_ERR number), INVALID_ARGUMENT for arguments that cannot be encoded or
   *   exceed the message limit (nothing is sent), TIMEOUT, ABORTED, CONNECTION_LOST, PROTOCOL.
   */
  call<A, R>(procedure: RemoteProcedure<A, R>, ...rest: CallArgs<A>): Promise<R> {
    const [args, options = {}] = rest as [A, CallOptions | undefined];
    return this.callProcedure(procedure, args, options);
  }

  private callProcedure<A, R>(procedure: RemoteProcedure<A, R>, args: A, options: CallOptions): Promise<R> {
    if (typeof procedure !== 'object' || procedure === null || typeof procedure.encodeArgs !== 'function') {
      throw new TypeError('call: procedure must be a descriptor from remoteProcedures.');
    }
    if (procedure.stream) {
      throw new TypeError(`call: ${procedure.name} opens a stream; use openReadStream().`);
    }
    const operation = `rpc.${procedure.name}`;
    let payload: Uint8Array;
    try {
      payload = encodeArgs(procedure, args);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.calls.invoke(
      procedure.program,
      procedure.version,
      procedure.procedure,
      operation,
      payload,
      (header, body) => decodeReply(operation, header, body, (r) => procedure.decodeRet(r)),
      options,
    );
  }

  /**
   * Calls any procedure with a pre-encoded payload and returns the raw reply payload (for procedures
   * hvkit has no descriptor for). Errors are mapped like {@link LibvirtRpcClient.call}.
   */
  callRaw(
    program: number,
    procedure: number,
    payload: Uint8Array = new Uint8Array(0),
    options: CallOptions = {},
  ): Promise<Uint8Array> {
    if (!Number.isInteger(program) || !Number.isInteger(procedure)) {
      throw new TypeError('callRaw: program and procedure must be integers.');
    }
    if (!(payload instanceof Uint8Array)) throw new TypeError('callRaw: payload must be a Uint8Array.');
    const operation = `rpc.${program === PROGRAM.REMOTE ? `PROC_${procedure}` : `${program}.${procedure}`}`;
    return this.calls.invoke(
      program,
      PROTOCOL_VERSION,
      procedure,
      operation,
      payload,
      (header, body) => decodeReply(operation, header, body, (r) => r.rest()),
      options,
    );
  }

  // ---------------------------------------------------------------- streams

  /**
   * Calls a procedure whose successful reply starts a server-to-client stream (STORAGE_VOL_DOWNLOAD).
   * Resolves once the daemon accepted the call. See {@link LibvirtReadStream} for consuming it.
   *
   * Reading the stream slowly pauses the whole connection (TCP backpressure); use a separate
   * connection ({@link LibvirtRpcClient.openSibling}) for bulk transfers.
   */
  openReadStream<A>(
    procedure: RemoteProcedure<A, void>,
    args: A,
    options: ReadStreamOptions & { timeoutMs?: number } = {},
  ): Promise<LibvirtReadStream> {
    if (procedure?.stream !== 'read') {
      throw new TypeError('openReadStream: the procedure does not open a read stream.');
    }
    checkSignal(options.signal);
    const operation = `rpc.${procedure.name}`;
    let payload: Uint8Array;
    try {
      payload = encodeArgs(procedure, args);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.streams.open(procedure, operation, options, (decode, hooks) =>
      this.calls.invoke(
        procedure.program,
        procedure.version,
        procedure.procedure,
        operation,
        payload,
        decode,
        { signal: options.signal, timeoutMs: options.timeoutMs },
        hooks,
      ),
    );
  }

  /**
   * Downloads a storage volume (STORAGE_VOL_DOWNLOAD) as a stream of chunks. With `sparse: true` holes
   * arrive as `{ hole: n }` items (or zeros with `holes: 'zeros'`). Give `maxBytes` (the volume's size)
   * or `length` so that a server cannot send more than expected.
   */
  downloadVolume(vol: RemoteStorageVol, options: DownloadVolumeOptions = {}): Promise<LibvirtReadStream> {
    const length = options.length ?? 0;
    const bounded =
      options.maxBytes === undefined && length !== 0 && Number.isSafeInteger(Number(length))
        ? { ...options, maxBytes: Number(length) }
        : options;
    return this.openReadStream(
      remoteProcedures.STORAGE_VOL_DOWNLOAD,
      {
        vol,
        offset: options.offset ?? 0,
        length: options.length ?? 0,
        flags: options.sparse ? STORAGE_VOL_DOWNLOAD_SPARSE_STREAM : 0,
      },
      bounded,
    );
  }

  /**
   * Uploads into a storage volume (STORAGE_VOL_UPLOAD): resolves with a {@link LibvirtWriteStream} once the
   * daemon accepted the call; write the data (and, with `sparse: true`, holes) in order, then `finish()`.
   * Writes wait for the socket (TCP backpressure), which stalls this connection's other calls: use a
   * separate connection ({@link LibvirtRpcClient.openSibling}) for bulk transfers.
   */
  uploadVolume(vol: RemoteStorageVol, options: UploadVolumeOptions = {}): Promise<LibvirtWriteStream> {
    checkSignal(options.signal);
    const procedure = remoteProcedures.STORAGE_VOL_UPLOAD;
    const operation = `rpc.${procedure.name}`;
    const sparse = options.sparse === true;
    const streamOptions: WriteStreamOptions = {
      sparse,
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    let payload: Uint8Array;
    try {
      payload = encodeArgs(procedure, {
        vol,
        offset: options.offset ?? 0,
        length: options.length ?? 0,
        flags: sparse ? STORAGE_VOL_UPLOAD_SPARSE_STREAM : 0,
      });
    } catch (error) {
      return Promise.reject(error);
    }
    return this.streams.openEndpoint(
      procedure,
      operation,
      (channel) => new LibvirtWriteStream(channel, operation, streamOptions),
      (decode, hooks) =>
        this.calls.invoke(
          procedure.program,
          procedure.version,
          procedure.procedure,
          operation,
          payload,
          decode,
          { signal: options.signal, timeoutMs: options.timeoutMs },
          hooks,
        ),
    );
  }

  // ---------------------------------------------------------------- events

  /**
   * Registers for domain lifecycle events (CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, event id 0) of
   * one domain or, without `domain`, of all. Iterate the result with `for await`; `close()` (or the
   * signal) deregisters. The buffer is bounded: when the consumer falls behind, the oldest events are
   * dropped and counted in `dropped`.
   */
  async subscribeDomainLifecycle(
    options: DomainEventSubscriptionOptions & { domain?: RemoteDomain; timeoutMs?: number } = {},
  ): Promise<DomainEventSubscription> {
    checkSignal(options.signal);
    return this.events.subscribeLifecycle(options);
  }

  // ---------------------------------------------------------------- closing

  private async destroy(error: HvkitError): Promise<void> {
    this.connection.destroy(error);
    await this.settings.dispose().catch(() => {});
  }

  /**
   * Closes the connection: sends CONNECT_CLOSE (waiting at most `timeoutMs`, default 2000 ms), then ends
   * the socket. Pending calls fail with CONNECTION_LOST (not retryable). Idempotent; safe after loss.
   */
  close(options: CallOptions = {}): Promise<void> {
    checkSignal(options.signal);
    const timeoutMs = checkTimeoutMs(options.timeoutMs ?? 2000);
    if (this.closePromise) return this.closePromise;
    this.closePromise = (async () => {
      if (this.connection.state === 'open') {
        this.connection.beginClosing();
        // Never let CONNECT_CLOSE race an event (de)registration in the daemon.
        await this.events.closing(timeoutMs);
        try {
          await this.call(remoteProcedures.CONNECT_CLOSE, undefined, { signal: options.signal, timeoutMs });
        } catch (error) {
          this.settings.logger?.debug('libvirt: CONNECT_CLOSE failed', { error: String(error) });
        }
      }
      this.connection.shutdown(undefined);
      await this.connection.awaitSocketClosed(timeoutMs);
      await this.settings.dispose().catch(() => {});
    })();
    return this.closePromise;
  }

  /** `await using client = await LibvirtRpcClient.connect(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  /**
   * Opens another connection to the same daemon with the same settings (over the same SSH connection for
   * `qemu+ssh`): for bulk streams, which would otherwise stall this connection's calls.
   */
  async openSibling(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<LibvirtRpcClient> {
    if (this.connection.state !== 'open') throw this.connection.closedCallError('openSibling');
    checkSignal(options.signal);
    const timeoutMs = checkTimeoutMs(options.timeoutMs ?? DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS);
    const derived = deriveSignal(
      { signal: options.signal, timeoutMs },
      { adapter: ADAPTER_ID, operation: 'openSibling' },
    );
    try {
      return await LibvirtRpcClient.open(
        { ...this.settings, dispose: async () => {} },
        derived.signal,
        timeoutMs,
      );
    } finally {
      derived.dispose();
    }
  }
}
