/**
 * LibvirtRpcClient: one connection to a libvirt daemon speaking the remote RPC protocol in pure
 * TypeScript (no libvirt.so, no virsh).
 *
 * - Connect: AUTH_LIST (NONE; POLKIT → AUTH_POLKIT; SASL → UNSUPPORTED), SUPPORTS_FEATURE(keepalive),
 *   CONNECT_OPEN with the driver URI.
 * - Calls: many in flight, replies matched by serial (they can arrive out of order); at most
 *   `maxInFlight` (default 4) are outstanding at the daemon, the rest queue, because the daemon stops
 *   reading a client with 5 unanswered requests, which would starve keepalive.
 * - Keepalive: server PINGs are answered; the client PINGs when quiet and closes with CONNECTION_LOST
 *   when nothing arrived for `intervalMs × countMax`.
 * - A closed or dead connection fails every pending call and stream with CONNECTION_LOST (retryable);
 *   nothing waits forever (every call has a timeout).
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
  hvkitError,
  type Logger,
  networkErrorToHvkitError,
  watchDeadline,
} from '@hvkit/core';
import type { SshClient } from '@hvkit/ssh';
import { ADAPTER_ID, libvirtErrorToHvkitError } from '../errors';
import {
  DOMAIN_EVENT_ID,
  KEEPALIVE_PROC,
  MESSAGE_MAX,
  MESSAGE_STATUS,
  MESSAGE_TYPE,
  type MessageStatus,
  PROGRAM,
  PROTOCOL_VERSION,
  REMOTE_PROC,
  STORAGE_VOL_DOWNLOAD_SPARSE_STREAM,
} from './constants';
import { DomainEventSubscription, type DomainEventSubscriptionOptions } from './events';
import { handshake } from './handshake';
import {
  KeepaliveMonitor,
  type KeepaliveOptions,
  type KeepaliveStats,
  keepaliveHeader,
  resolveKeepalive,
} from './keepalive';
import { decodeFrame, encodePacket, PacketFramer, type PacketHeader, setPacketSerial } from './packet';
import { readRemoteError } from './remote-error';
import {
  type DomainLifecycleEvent,
  type RemoteProcedure,
  remoteMessages,
  remoteProcedures,
} from './remote-protocol';
import { LibvirtReadStream, type ReadStreamOptions } from './stream';
import type { RemoteDomain, RemoteStorageVol } from './types';
import { XdrReader, XdrWriter } from './xdr';

/** Default number of calls outstanding at the daemon (its `max_client_requests` is 5). */
export const DEFAULT_MAX_IN_FLIGHT = 4;
/** Default timeout of connecting (dial, authentication and CONNECT_OPEN). */
export const DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS = 30_000;

/** One packet seen by the client, for tracing and transcripts. */
export interface RpcTraceEvent {
  direction: 'send' | 'receive';
  header: PacketHeader;
  /** The payload after the header (a view; copy it to keep it). */
  payload: Uint8Array;
}

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

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Milliseconds until the call rejects with TIMEOUT (default: the client's `callTimeoutMs`). */
  timeoutMs?: number;
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

interface PendingCall {
  serial: number;
  program: number;
  procedure: number;
  operation: string;
  onReply(header: PacketHeader, payload: Uint8Array): void;
  fail(error: HvkitError): void;
}

interface QueuedCall {
  start(): void;
  fail(error: HvkitError): void;
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

/** A procedure's arguments as XDR. */
function encodeArgs<A>(procedure: RemoteProcedure<A, unknown>, args: A): Uint8Array {
  const w = new XdrWriter();
  procedure.encodeArgs(w, args);
  return w.bytes();
}

function connectionLost(target: string, reason: string, cause?: unknown, retryable = true): HvkitError {
  return hvkitError('CONNECTION_LOST', `libvirt connection to ${target} ${reason}`, {
    adapter: ADAPTER_ID,
    cause,
    retryable,
    details: { target },
  });
}

/**
 * A connection to a libvirt daemon. Create it with {@link LibvirtRpcClient.connect}; close it with
 * {@link LibvirtRpcClient.close} (or `await using`).
 */
export class LibvirtRpcClient implements AsyncDisposable {
  private readonly framer: PacketFramer;
  private readonly pending = new Map<number, PendingCall>();
  private readonly streams = new Map<number, LibvirtReadStream>();
  /** Serials of calls given up on whose replies have not arrived: they still hold a daemon slot. */
  private readonly abandoned = new Set<number>();
  private readonly queue: QueuedCall[] = [];
  private readonly subscriptions = new Map<number, DomainEventSubscription>();
  private readonly eventCalls = new Set<Promise<void>>();
  private readonly orphanEvents: DomainLifecycleEvent[] = [];
  private readonly closeListeners = new Set<(error: HvkitError | undefined) => void>();
  private readonly pausers = new Set<object>();
  private readonly keepalive: KeepaliveMonitor;
  private nextSerial = 1;
  private corked = false;
  private inFlight = 0;
  private state: 'open' | 'closing' | 'closed' = 'open';
  private closedError: HvkitError | undefined;
  private closePromise: Promise<void> | undefined;
  private keepaliveOn = false;
  private readonly counters = { callsSent: 0, repliesReceived: 0, lateReplies: 0, eventsReceived: 0 };
  private readonly socketClosed: Promise<void>;

  private constructor(
    private readonly socket: Duplex,
    private readonly settings: ClientSettings,
  ) {
    this.framer = new PacketFramer(settings.maxMessageBytes);
    this.keepalive = new KeepaliveMonitor(settings.keepalive || { intervalMs: 5000, countMax: 5 }, {
      sendPing: () => this.sendRaw(keepaliveHeader(KEEPALIVE_PROC.PING)),
      onDead: (silentMs) =>
        this.shutdown(
          connectionLost(settings.target, `is dead: no answer to keepalive for ${silentMs} ms`, undefined),
        ),
      isPaused: () => this.pausers.size > 0,
    });
    this.socketClosed = new Promise<void>((resolve) => socket.once('close', () => resolve()));
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (error: Error) =>
      this.shutdown(
        HvkitError.isInstance(error)
          ? error
          : networkErrorToHvkitError(error, { adapter: ADAPTER_ID, target: settings.target }),
      ),
    );
    socket.on('end', () => this.shutdown(connectionLost(settings.target, 'was closed by the daemon')));
    socket.on('close', () => this.shutdown(connectionLost(settings.target, 'was closed')));
    // A dialer may hand over a paused socket (the TLS dialer pauses after the confirmation byte).
    socket.resume();
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
      await handshake(client, settings, call, () => {
        if (settings.keepalive !== false) {
          client.keepaliveOn = true;
          client.keepalive.start();
        }
      });
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
    return this.state !== 'open';
  }

  /** Why the connection closed (undefined while open, or after a clean `close()`). */
  get closeReason(): HvkitError | undefined {
    return this.closedError;
  }

  /** True when the client runs keepalive (the daemon supports it and it was not disabled). */
  get keepaliveActive(): boolean {
    return this.keepaliveOn && this.state === 'open';
  }

  /** Counters (keepalive PINGs/PONGs, calls, late replies, events). */
  stats(): LibvirtClientStats {
    return {
      ...this.keepalive.snapshot(),
      ...this.counters,
      inFlight: this.inFlight,
      queued: this.queue.length,
    };
  }

  /**
   * Calls `listener` once when the connection closes: with the error for a lost or failed connection,
   * `undefined` after `close()`. Returns a function that removes the listener.
   */
  onClose(listener: (error: HvkitError | undefined) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('onClose: listener must be a function.');
    if (this.state === 'closed') {
      queueMicrotask(() => listener(this.closedError));
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  // ---------------------------------------------------------------- sending

  private sendRaw(header: PacketHeader, payload?: Uint8Array): void {
    if (this.socket.destroyed) return;
    this.writePacket(encodePacket(header, payload, this.settings.maxMessageBytes));
  }

  /**
   * Writes an encoded packet. Packets written in the same tick (the next calls started by a burst of
   * replies) leave in one write: the socket is corked until the next tick.
   */
  private writePacket(packet: Uint8Array): void {
    if (this.socket.destroyed) return;
    if (this.settings.trace) {
      const { header, payload } = decodeFrame(packet.subarray(4));
      this.settings.trace({ direction: 'send', header, payload });
    }
    if (!this.corked) {
      this.corked = true;
      this.socket.cork();
      process.nextTick(this.uncork);
    }
    this.socket.write(packet);
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  private allocateSerial(): number {
    for (;;) {
      const serial = this.nextSerial;
      this.nextSerial = (this.nextSerial + 1) >>> 0;
      if (!this.pending.has(serial) && !this.streams.has(serial) && !this.abandoned.has(serial))
        return serial;
    }
  }

  private releaseSlot(): void {
    this.inFlight--;
    while (this.inFlight < this.settings.maxInFlight && this.queue.length > 0 && this.state !== 'closed') {
      const next = this.queue.shift() as QueuedCall;
      next.start();
    }
  }

  private closedCallError(operation: string): HvkitError {
    const base = this.closedError;
    return hvkitError('CONNECTION_LOST', `${operation}: the libvirt connection to ${this.target} is closed`, {
      adapter: ADAPTER_ID,
      operation,
      cause: base,
      retryable: base?.retryable ?? false,
    });
  }

  /**
   * The core of every call: encodes, waits for a slot, sends, routes the reply. `register` runs just
   * before the CALL is written (streams register themselves there so no data packet is missed).
   */
  private invoke<R>(
    program: number,
    version: number,
    procedure: number,
    operation: string,
    payload: Uint8Array,
    decode: (header: PacketHeader, payload: Uint8Array) => R,
    options: CallOptions,
    hooks: { register?: (serial: number) => void; unregister?: (serial: number) => void } = {},
  ): Promise<R> {
    checkSignal(options.signal);
    if (options.timeoutMs !== undefined) checkTimeoutMs(options.timeoutMs);
    // Encoded once, before anything happens: an oversized message is refused (INVALID_ARGUMENT, nothing
    // sent); the serial is written into the packet when a slot is free.
    let packet: Uint8Array;
    try {
      packet = encodePacket(
        { program, version, procedure, type: MESSAGE_TYPE.CALL, serial: 0, status: MESSAGE_STATUS.OK },
        payload,
        this.settings.maxMessageBytes,
      );
    } catch (error) {
      return Promise.reject(error);
    }
    if (this.state !== 'open' && procedure !== REMOTE_PROC.CONNECT_CLOSE) {
      return Promise.reject(this.closedCallError(operation));
    }
    if (this.state === 'closed') return Promise.reject(this.closedCallError(operation));
    return new Promise<R>((resolve, reject) => {
      let settled = false;
      let serial: number | undefined;
      let queued: QueuedCall | undefined;
      let stopDeadline: (() => void) | undefined;
      const finish = (error: HvkitError | undefined, value?: R) => {
        if (settled) return;
        settled = true;
        stopDeadline?.();
        if (error) reject(error);
        else resolve(value as R);
      };
      const onEnd = (error: HvkitError) => {
        if (settled) return;
        if (queued) {
          const i = this.queue.indexOf(queued);
          if (i >= 0) this.queue.splice(i, 1);
        }
        if (serial !== undefined && this.pending.get(serial) === entry) {
          // The daemon still holds the request; its late reply is dropped and frees the slot.
          this.pending.delete(serial);
          this.abandoned.add(serial);
          hooks.unregister?.(serial);
        }
        finish(error);
      };
      const entry: PendingCall = {
        serial: 0,
        program,
        procedure,
        operation,
        onReply: (header, body) => {
          this.pending.delete(entry.serial);
          this.releaseSlot();
          this.counters.repliesReceived++;
          try {
            finish(undefined, decode(header, body));
          } catch (error) {
            hooks.unregister?.(entry.serial);
            finish(
              HvkitError.isInstance(error)
                ? error
                : hvkitError('PROTOCOL', `${operation}: cannot decode the reply: ${String(error)}`, {
                    adapter: ADAPTER_ID,
                    operation,
                    cause: error,
                  }),
            );
          }
        },
        fail: (error) => finish(error),
      };
      const start = () => {
        queued = undefined;
        if (settled) return;
        if (this.state === 'closed') {
          finish(this.closedCallError(operation));
          return;
        }
        serial = this.allocateSerial();
        entry.serial = serial;
        this.inFlight++;
        this.pending.set(serial, entry);
        hooks.register?.(serial);
        this.counters.callsSent++;
        setPacketSerial(packet, serial);
        this.writePacket(packet);
      };
      stopDeadline = watchDeadline(
        options,
        { adapter: ADAPTER_ID, operation, defaultTimeoutMs: this.settings.callTimeoutMs },
        onEnd,
      );
      if (settled) return;
      if (this.inFlight < this.settings.maxInFlight) start();
      else {
        queued = { start, fail: (error) => finish(error) };
        this.queue.push(queued);
      }
    });
  }

  private decodeReply<R>(
    operation: string,
    header: PacketHeader,
    payload: Uint8Array,
    decodeRet: (r: XdrReader) => R,
  ): R {
    if (header.type === MESSAGE_TYPE.REPLY_WITH_FDS) {
      throw hvkitError(
        'PROTOCOL',
        `${operation}: the reply carries file descriptors, which Node.js cannot receive`,
        {
          adapter: ADAPTER_ID,
          operation,
        },
      );
    }
    if (header.status === MESSAGE_STATUS.ERROR) {
      const r = new XdrReader(payload);
      const remote = readRemoteError(r);
      r.finish('remote_error');
      throw libvirtErrorToHvkitError(remote, { operation });
    }
    if (header.status !== MESSAGE_STATUS.OK) {
      throw hvkitError('PROTOCOL', `${operation}: reply has status ${header.status}`, {
        adapter: ADAPTER_ID,
        operation,
      });
    }
    const r = new XdrReader(payload);
    const value = decodeRet(r);
    r.finish(`${operation} reply`);
    return value;
  }

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
    return this.invoke(
      procedure.program,
      procedure.version,
      procedure.procedure,
      operation,
      payload,
      (header, body) => this.decodeReply(operation, header, body, (r) => procedure.decodeRet(r)),
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
    return this.invoke(
      program,
      PROTOCOL_VERSION,
      procedure,
      operation,
      payload,
      (header, body) => this.decodeReply(operation, header, body, (r) => r.rest()),
      options,
    );
  }

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
    let stream: LibvirtReadStream | undefined;
    let streamSerial = -1;
    const pauser = {};
    const makeStream = (serial: number) =>
      new LibvirtReadStream(
        {
          send: (status: MessageStatus, body?: Uint8Array) =>
            this.sendRaw(
              {
                program: procedure.program,
                version: procedure.version,
                procedure: procedure.procedure,
                type: MESSAGE_TYPE.STREAM,
                serial,
                status,
              },
              body,
            ),
          setPaused: (paused: boolean) => this.setPaused(pauser, paused),
          release: () => {
            if (this.streams.get(serial) === stream) this.streams.delete(serial);
            this.setPaused(pauser, false);
          },
        },
        operation,
        options,
      );
    return this.invoke(
      procedure.program,
      procedure.version,
      procedure.procedure,
      operation,
      payload,
      (header, body) => {
        this.decodeReply(operation, header, body, () => undefined);
        return stream as LibvirtReadStream;
      },
      { signal: options.signal, timeoutMs: options.timeoutMs },
      {
        register: (serial) => {
          streamSerial = serial;
          stream = makeStream(serial);
          this.streams.set(serial, stream);
        },
        unregister: (serial) => {
          if (serial === streamSerial && stream) {
            this.streams.delete(serial);
            stream.fail(
              hvkitError('ABORTED', `${operation}: the call was abandoned`, { adapter: ADAPTER_ID }),
            );
          }
        },
      },
    ).catch((error: unknown) => {
      if (stream && streamSerial >= 0 && this.streams.get(streamSerial) === stream) {
        this.streams.delete(streamSerial);
      }
      throw error;
    });
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

  private setPaused(owner: object, paused: boolean): void {
    const before = this.pausers.size > 0;
    if (paused) this.pausers.add(owner);
    else this.pausers.delete(owner);
    const after = this.pausers.size > 0;
    if (before === after || this.socket.destroyed) return;
    if (after) this.socket.pause();
    else this.socket.resume();
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
    const callbackId = await this.trackEventCall(
      this.call(
        remoteProcedures.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY,
        { eventId: DOMAIN_EVENT_ID.LIFECYCLE, dom: options.domain ?? null },
        { signal: options.signal, timeoutMs: options.timeoutMs },
      ),
    );
    const subscription = new DomainEventSubscription(callbackId, options, {
      deregister: async (closeOptions) => {
        this.subscriptions.delete(callbackId);
        if (this.state !== 'open') return;
        await this.trackEventCall(
          this.call(
            remoteProcedures.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY,
            { callbackId },
            closeOptions,
          ),
        );
      },
    });
    this.subscriptions.set(callbackId, subscription);
    for (let i = 0; i < this.orphanEvents.length; ) {
      const event = this.orphanEvents[i] as DomainLifecycleEvent;
      if (event.callbackId === callbackId) {
        this.orphanEvents.splice(i, 1);
        subscription.push(event);
      } else i++;
    }
    return subscription;
  }

  /**
   * Remembers an event register/deregister call until it settles. libvirtd 9.0 can crash (a NULL
   * dereference while it frees a client's callback list) when CONNECT_CLOSE or the socket's close is
   * processed while such a call is still running in another worker thread, so `close()` waits for them.
   */
  private trackEventCall<T>(call: Promise<T>): Promise<T> {
    const settled = call.then(
      () => undefined,
      () => undefined,
    );
    this.eventCalls.add(settled);
    void settled.then(() => this.eventCalls.delete(settled));
    return call;
  }

  private onMessage(header: PacketHeader, payload: Uint8Array): void {
    this.counters.eventsReceived++;
    if (header.procedure !== REMOTE_PROC.DOMAIN_EVENT_CALLBACK_LIFECYCLE) {
      this.settings.logger?.debug('libvirt: unhandled event', { procedure: header.procedure });
      return;
    }
    let event: DomainLifecycleEvent;
    try {
      const r = new XdrReader(payload);
      event = remoteMessages.DOMAIN_EVENT_CALLBACK_LIFECYCLE.decodeMsg(r);
      r.finish('lifecycle event');
    } catch (error) {
      this.settings.logger?.warn('libvirt: undecodable lifecycle event dropped', { error: String(error) });
      return;
    }
    const subscription = this.subscriptions.get(event.callbackId);
    if (subscription) {
      subscription.push(event);
      return;
    }
    // An event can overtake the reply of its registration; keep a few for a moment.
    this.orphanEvents.push(event);
    if (this.orphanEvents.length > 64) this.orphanEvents.shift();
  }

  // ---------------------------------------------------------------- receiving

  private isShut(): boolean {
    return this.state === 'closed';
  }

  private onData(chunk: Buffer): void {
    if (this.state === 'closed') return;
    this.keepalive.received();
    let frames: Uint8Array[];
    try {
      frames = this.framer.push(chunk);
    } catch (error) {
      this.shutdown(error as HvkitError);
      return;
    }
    for (const frame of frames) {
      // route() can close the connection; stop then.
      if (this.isShut()) return;
      let packet: ReturnType<typeof decodeFrame>;
      try {
        packet = decodeFrame(frame);
      } catch (error) {
        this.shutdown(error as HvkitError);
        return;
      }
      this.settings.trace?.({ direction: 'receive', header: packet.header, payload: packet.payload });
      this.route(packet.header, packet.payload);
    }
  }

  private route(header: PacketHeader, payload: Uint8Array): void {
    if (header.program === PROGRAM.KEEPALIVE) {
      if (header.type !== MESSAGE_TYPE.MESSAGE) return;
      if (header.procedure === KEEPALIVE_PROC.PING) {
        this.keepalive.pingReceived();
        this.sendRaw(keepaliveHeader(KEEPALIVE_PROC.PONG));
      } else if (header.procedure === KEEPALIVE_PROC.PONG) {
        this.keepalive.pongReceived();
      }
      return;
    }
    switch (header.type) {
      case MESSAGE_TYPE.MESSAGE:
        if (header.program === PROGRAM.REMOTE) this.onMessage(header, payload);
        return;
      case MESSAGE_TYPE.REPLY:
      case MESSAGE_TYPE.REPLY_WITH_FDS: {
        const entry = this.pending.get(header.serial);
        if (entry) {
          if (entry.program !== header.program || entry.procedure !== header.procedure) {
            this.pending.delete(header.serial);
            this.releaseSlot();
            entry.fail(
              hvkitError(
                'PROTOCOL',
                `${entry.operation}: reply for serial ${header.serial} names procedure ${header.procedure} of program ${header.program}`,
                { adapter: ADAPTER_ID, operation: entry.operation },
              ),
            );
            return;
          }
          entry.onReply(header, payload);
          return;
        }
        if (this.abandoned.delete(header.serial)) {
          this.counters.lateReplies++;
          this.releaseSlot();
          return;
        }
        this.settings.logger?.debug('libvirt: reply for an unknown serial dropped', {
          serial: header.serial,
        });
        return;
      }
      case MESSAGE_TYPE.STREAM:
      case MESSAGE_TYPE.STREAM_HOLE: {
        const stream = this.streams.get(header.serial);
        if (stream) stream.handlePacket(header, payload);
        return;
      }
      default:
        this.settings.logger?.debug('libvirt: unexpected packet type dropped', { type: header.type });
    }
  }

  // ---------------------------------------------------------------- closing

  /** Fails everything and releases the socket. Idempotent; the first error wins. */
  private shutdown(error: HvkitError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    this.closedError = error;
    this.keepalive.stop();
    const failure = error ?? connectionLost(this.target, 'was closed by the client', undefined, false);
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.abandoned.clear();
    const queued = this.queue.splice(0);
    const streams = [...this.streams.values()];
    this.streams.clear();
    const subscriptions = [...this.subscriptions.values()];
    this.subscriptions.clear();
    this.inFlight = 0;
    for (const p of pending) p.fail(this.wrapFailure(failure, p.operation));
    for (const q of queued) q.fail(failure);
    for (const s of streams) s.fail(failure);
    for (const s of subscriptions) s.end(error);
    this.pausers.clear();
    this.socket.on('error', () => {});
    if (!this.socket.destroyed) {
      if (error === undefined) this.socket.end();
      else this.socket.destroy();
    }
    const listeners = [...this.closeListeners];
    this.closeListeners.clear();
    for (const listener of listeners) {
      try {
        listener(error);
      } catch (e) {
        this.settings.logger?.warn('libvirt: onClose listener threw', { error: String(e) });
      }
    }
  }

  private wrapFailure(failure: HvkitError, operation: string): HvkitError {
    if (failure.code !== 'CONNECTION_LOST') return failure;
    return hvkitError('CONNECTION_LOST', `${operation}: ${failure.message}`, {
      adapter: ADAPTER_ID,
      operation,
      cause: failure,
      retryable: failure.retryable,
      details: failure.details,
    });
  }

  private async destroy(error: HvkitError): Promise<void> {
    this.shutdown(error);
    if (!this.socket.destroyed) this.socket.destroy();
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
      if (this.state === 'open') {
        this.state = 'closing';
        this.keepalive.stop();
        for (const s of [...this.subscriptions.values()]) s.end(undefined);
        if (this.eventCalls.size > 0) {
          // Never let CONNECT_CLOSE race an event (de)registration in the daemon (see trackEventCall).
          let timer: NodeJS.Timeout | undefined;
          await Promise.race([
            Promise.all([...this.eventCalls]),
            new Promise<void>((resolve) => {
              timer = setTimeout(resolve, timeoutMs);
              timer.unref?.();
            }),
          ]);
          clearTimeout(timer);
        }
        try {
          await this.call(remoteProcedures.CONNECT_CLOSE, undefined, { signal: options.signal, timeoutMs });
        } catch (error) {
          this.settings.logger?.debug('libvirt: CONNECT_CLOSE failed', { error: String(error) });
        }
      }
      this.shutdown(undefined);
      const closed = await Promise.race([
        this.socketClosed.then(() => true),
        new Promise<boolean>((resolve) =>
          setTimeout(() => resolve(false), Math.min(timeoutMs, 1000)).unref?.(),
        ),
      ]);
      if (!closed) this.socket.destroy();
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
    if (this.state !== 'open') throw this.closedCallError('openSibling');
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
