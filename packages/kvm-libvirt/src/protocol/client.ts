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
 * A closed or dead connection fails every pending call and stream with CONNECTION_LOST: retryable when the
 * client reconnects (`reconnect`), not retryable when the loss closes it. With `reconnect` the client dials
 * again with bounded backoff, calls made meanwhile wait within their deadline, and event subscriptions are
 * registered again with a resync item. Nothing waits forever (every call has a timeout).
 */

import type { Duplex } from 'node:stream';
import {
  type AdapterConnection,
  abortError,
  ConnectionStatus,
  checkSignal,
  checkTimeoutMs,
  DEFAULT_TIMEOUT_MS,
  type Dialer,
  deriveSignal,
  HvkitError,
  hvkitError,
  type Logger,
  type ReconnectOptions,
  type ResolvedReconnect,
  reconnectDelayMs,
  resolveReconnect,
  sleep,
} from '@hvkit/core';
import type { SshClient } from '@hvkit/ssh';
import { ADAPTER_ID } from '../errors';
import { type CallHooks, type CallOptions, CallTable, decodeReply, encodeArgs } from './calls';
import { connectionLost, RpcConnection, type RpcTraceEvent } from './connection';
import {
  MESSAGE_MAX,
  PROGRAM,
  PROTOCOL_VERSION,
  REMOTE_PROC,
  STORAGE_VOL_DOWNLOAD_SPARSE_STREAM,
  STORAGE_VOL_UPLOAD_SPARSE_STREAM,
} from './constants';
import {
  DomainEventRouter,
  type DomainEventSubscription,
  type DomainEventSubscriptionOptions,
} from './events';
import { type HandshakeChannel, handshake } from './handshake';
import { type KeepaliveOptions, type KeepaliveStats, resolveKeepalive } from './keepalive';
import type { PacketHeader } from './packet';
import { type RemoteProcedure, remoteProcedures } from './remote-protocol';
import { type LibvirtReadStream, type ReadStreamOptions, ReadStreamTable } from './stream';
import type { RemoteDomain, RemoteStorageVol } from './types';
import { LibvirtWriteStream, type WriteStreamOptions } from './write-stream';

export type { CallOptions } from './calls';
export type { RpcTraceEvent } from './connection';

/** Default number of calls outstanding at the daemon (its `max_client_requests` is 5). */
export const DEFAULT_MAX_IN_FLIGHT = 4;
/** Default timeout of connecting (dial, authentication and CONNECT_OPEN), and of each reconnection attempt. */
export const DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS = 10_000;
/** Default total time `close()` gives CONNECT_CLOSE (and running event (de)registrations) before it drops the socket. */
export const DEFAULT_LIBVIRT_CLOSE_TIMEOUT_MS = 2000;

/** A fresh transport for a reconnect, when the old one (an SSH connection) is gone. */
export interface ReopenedTransport {
  dialer: Dialer;
  dispose: () => Promise<void>;
  ssh?: SshClient;
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
  /** Deadline of the whole connect (dial, auth, open), and of each reconnection attempt. Default 10000 ms. */
  timeoutMs?: number;
  /**
   * Reconnect on its own after the connection is lost (the daemon restarted, keepalive found it dead, the
   * SSH connection dropped): with bounded backoff, settings from `@hvkit/core`'s `ReconnectOptions`.
   * Meanwhile `state` is `reconnecting`, new calls wait within their own deadline, calls that were in
   * flight fail with `CONNECTION_LOST` (retryable), and event subscriptions resume with a resync notice.
   * Default `false` for the raw client (a loss closes it); the adapter's `connect()` turns it on.
   */
  reconnect?: ReconnectOptions | boolean;
  /**
   * Opens a new transport for a reconnect when the SSH connection under the dialer is closed (set by
   * `connectRpc()` for a `qemu+ssh` URI whose SSH connection it opened).
   */
  reopen?: (call: { signal: AbortSignal; timeoutMs: number }) => Promise<ReopenedTransport>;
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
  reconnect: ResolvedReconnect | false;
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
  if (options.reopen !== undefined && typeof options.reopen !== 'function') {
    throw new TypeError('reopen must be a function.');
  }
  return {
    readOnly: options.readOnly === true,
    timeoutMs,
    reconnect: resolveReconnect(options.reconnect ?? false),
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
  /** Successful reconnections. */
  reconnects: number;
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
  /** Deadline of connecting and of each reconnection attempt. */
  connectTimeoutMs: number;
  reconnect: ResolvedReconnect | false;
  reopen: ((call: { signal: AbortSignal; timeoutMs: number }) => Promise<ReopenedTransport>) | undefined;
  callTimeoutMs: number;
  keepalive: Required<KeepaliveOptions> | false;
  maxMessageBytes: number;
  maxInFlight: number;
  logger: Logger | undefined;
  trace: ((event: RpcTraceEvent) => void) | undefined;
  dialer: Dialer;
  /** Resources owned by this client, released on close (replaced when a reconnect reopens the transport). */
  dispose: () => Promise<void>;
  /** The SSH connection of a `qemu+ssh` URI. */
  ssh?: SshClient;
}

type CallArgs<A> = [A] extends [undefined]
  ? [args?: undefined, options?: CallOptions]
  : [args: A, options?: CallOptions];

/** The parts of one socket: the connection, its calls and its streams. */
interface Link {
  connection: RpcConnection;
  calls: CallTable;
  streams: ReadStreamTable;
}

/** The state of a client: `closing` while `close()` runs. */
export type LibvirtClientState = 'open' | 'reconnecting' | 'closing' | 'closed';

/** Errors of the connection setup that waiting cannot fix: a reconnect gives up on them at once. */
const PERMANENT_SETUP_CODES: ReadonlySet<string> = new Set([
  'AUTH_FAILED',
  'PERMISSION_DENIED',
  'UNSUPPORTED',
  'INVALID_ARGUMENT',
]);

/** The same CONNECTION_LOST failure, marked not retryable (the client will not come back). */
function final(error: HvkitError, note?: string): HvkitError {
  if (!error.retryable && note === undefined) return error;
  return hvkitError(error.code, note !== undefined ? `${error.message} (${note})` : error.message, {
    adapter: error.adapter ?? ADAPTER_ID,
    operation: error.operation,
    cause: error,
    backendCode: error.backendCode,
    backendMessage: error.backendMessage,
    retryable: false,
    details: error.details,
  });
}

/**
 * A connection to a libvirt daemon. Create it with {@link LibvirtRpcClient.connect}; close it with
 * {@link LibvirtRpcClient.close} (or `await using`).
 *
 * With `reconnect` on, the client outlives its socket: when the connection is lost it dials again with
 * bounded backoff (state `reconnecting`), and calls, streams and event subscriptions continue on the new
 * connection (see {@link LibvirtRpcClientOptions.reconnect}).
 */
export class LibvirtRpcClient implements AsyncDisposable {
  private link: Link;
  private readonly events: DomainEventRouter;
  private readonly status: ConnectionStatus;
  private stateValue: LibvirtClientState = 'open';
  private finalError: HvkitError | undefined;
  private readonly closeListeners = new Set<(error: HvkitError | undefined) => void>();
  private reconnectStop: AbortController | undefined;
  private reconnectCount = 0;
  private closePromise: Promise<void> | undefined;

  private constructor(
    socket: Duplex,
    private readonly settings: ClientSettings,
  ) {
    this.status = new ConnectionStatus({ adapter: ADAPTER_ID, target: settings.target });
    this.events = new DomainEventRouter({
      state: () => this.stateValue,
      call: (procedure, args, options) => this.callProcedure(procedure, args, options),
      logger: settings.logger,
    });
    this.link = this.attach(socket);
  }

  /** Builds the parts of one socket; its end goes to {@link linkEnded}. */
  private attach(socket: Duplex): Link {
    const link = {} as Link;
    link.connection = new RpcConnection(socket, this.settings, {
      onEvent: (header: PacketHeader, payload: Uint8Array) => {
        if (link === this.link) this.events.dispatch(header, payload);
      },
      onReply: (header, payload) => link.calls.dispatchReply(header, payload),
      onStream: (header, payload) => link.streams.dispatch(header, payload),
      failAll: (failure, error) => {
        // Without a reconnect to come, what fails now cannot succeed on this client.
        const willReconnect =
          error !== undefined && this.settings.reconnect !== false && this.stateValue === 'open';
        const f = willReconnect || link !== this.link ? failure : final(failure);
        link.calls.failAll(f);
        link.streams.failAll(f);
        this.linkEnded(link, error);
      },
    });
    link.streams = new ReadStreamTable(link.connection);
    link.calls = new CallTable(link.connection, this.settings, (serial) => link.streams.has(serial));
    return link;
  }

  /** Calls on one link only (for its handshake). */
  private linkChannel(link: Link): HandshakeChannel {
    return {
      call: (procedure, args, options) => this.callOnLink(link, procedure, args, options),
      get closed() {
        return link.connection.state !== 'open';
      },
    };
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
        connectTimeoutMs: timeoutMs,
        reconnect: checked.reconnect,
        reopen: options.reopen,
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
    const link = client.link;
    try {
      await client.setUp(link, signal);
      return client;
    } catch (error) {
      client.stateValue = 'closed';
      client.status.update('closed');
      link.connection.destroy(
        HvkitError.isInstance(error) ? error : connectionLost(settings.target, 'failed during setup', error),
      );
      await settings.dispose().catch(() => {});
      throw error;
    }
  }

  /** Authentication, keepalive probe and CONNECT_OPEN on a fresh link. */
  private setUp(link: Link, signal: AbortSignal): Promise<void> {
    return handshake(
      this.linkChannel(link),
      this.settings,
      { signal, timeoutMs: Number.POSITIVE_INFINITY },
      () => link.connection.startKeepalive(),
    );
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
   * other transports and for a `dialer`. A reconnect that had to open a new SSH connection replaces it.
   */
  get sshClient(): SshClient | undefined {
    return this.settings.ssh;
  }

  /** `open`, `reconnecting` (after a loss, with `reconnect` on), `closing` (while `close()` runs), `closed`. */
  get state(): LibvirtClientState {
    return this.stateValue;
  }

  /**
   * The connection state as spec v1 reports it (`adapter.connection`): `open`, `reconnecting`, `closed`
   * (from the moment `close()` starts), with change listeners and the last error.
   */
  get connection(): AdapterConnection {
    return this.status;
  }

  /**
   * @internal The adapter's `close()` started (it may still use the connection to clean up): the state
   * reported is `closed` from now on, and calls waiting for a reconnect fail.
   */
  reportClosed(): void {
    this.status.update('closed');
  }

  /** True once the client is closing or closed (for good: not while it reconnects). */
  get closed(): boolean {
    return this.stateValue === 'closing' || this.stateValue === 'closed';
  }

  /** Why the client closed (undefined while open, or after a clean `close()`). */
  get closeReason(): HvkitError | undefined {
    return this.finalError;
  }

  /** True when the client runs keepalive (the daemon supports it and it was not disabled). */
  get keepaliveActive(): boolean {
    return this.stateValue === 'open' && this.link.connection.keepaliveActive;
  }

  /** Counters (keepalive PINGs/PONGs and calls of the current connection, events, reconnects). */
  stats(): LibvirtClientStats {
    return {
      ...this.link.connection.keepaliveStats(),
      ...this.link.calls.stats(),
      eventsReceived: this.events.eventsReceived,
      inFlight: this.link.calls.inFlight,
      queued: this.link.calls.queued,
      reconnects: this.reconnectCount,
    };
  }

  /**
   * Calls `listener` once when the client closes for good: with the error for a lost or failed connection
   * (that is not reconnected), `undefined` after `close()`. Returns a function that removes the listener.
   * A loss that is reconnected shows in {@link connection} instead.
   */
  onClose(listener: (error: HvkitError | undefined) => void): () => void {
    if (typeof listener !== 'function') throw new TypeError('onClose: listener must be a function.');
    if (this.stateValue === 'closed') {
      queueMicrotask(() => listener(this.finalError));
      return () => {};
    }
    this.closeListeners.add(listener);
    return () => this.closeListeners.delete(listener);
  }

  // ---------------------------------------------------------------- losing and reconnecting

  /** A link ended. The current one: reconnect, or close for good. */
  private linkEnded(link: Link, error: HvkitError | undefined): void {
    if (link !== this.link || error === undefined) return;
    if (this.stateValue !== 'open') return;
    if (this.settings.reconnect === false) {
      this.finish(final(error));
      return;
    }
    const lostAt = new Date();
    this.stateValue = 'reconnecting';
    this.settings.logger?.warn('libvirt: connection lost; reconnecting', {
      target: this.settings.target,
      error: error.message,
    });
    this.events.suspend(lostAt);
    this.status.update('reconnecting', error);
    const stop = new AbortController();
    this.reconnectStop = stop;
    void this.reconnectLoop(this.settings.reconnect, stop.signal);
  }

  /** Dials again with backoff until it works, gives up, or `close()` stops it. */
  private async reconnectLoop(settings: ResolvedReconnect, stop: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await sleep(reconnectDelayMs(attempt, settings), { signal: stop });
      } catch {
        return;
      }
      if (stop.aborted || this.stateValue !== 'reconnecting') return;
      let link: Link;
      try {
        link = await this.dialLink(stop);
      } catch (error) {
        if (stop.aborted || this.stateValue !== 'reconnecting') return;
        const e = HvkitError.isInstance(error)
          ? error
          : connectionLost(this.settings.target, 'could not be opened again', error);
        this.settings.logger?.debug('libvirt: reconnect attempt failed', { attempt, error: e.message });
        // Network errors (a missing socket, a refused connection) are what a restart looks like: try again.
        if (PERMANENT_SETUP_CODES.has(e.code) || e.details?.reconnect === 'never') {
          this.finish(final(e, `reconnecting gave up after attempt ${attempt}`));
          return;
        }
        if (attempt >= settings.maxAttempts) {
          this.finish(final(e, `reconnecting gave up after ${attempt} attempts`));
          return;
        }
        continue;
      }
      if (stop.aborted || this.stateValue !== 'reconnecting') {
        link.connection.destroy(connectionLost(this.settings.target, 'was closed by the client'));
        return;
      }
      this.link = link;
      this.stateValue = 'open';
      this.reconnectStop = undefined;
      this.reconnectCount++;
      this.settings.logger?.info('libvirt: reconnected', { target: this.settings.target, attempt });
      this.status.update('open');
      void this.events.resume(this.settings.callTimeoutMs);
      return;
    }
  }

  /** One reconnection attempt: a new transport when the SSH one is gone, dial, handshake. */
  private async dialLink(stop: AbortSignal): Promise<Link> {
    const timeoutMs = this.settings.connectTimeoutMs;
    const derived = deriveSignal(
      { signal: stop, timeoutMs },
      { adapter: ADAPTER_ID, operation: 'reconnect' },
    );
    try {
      const signal = derived.signal;
      if (this.settings.ssh?.closed) {
        if (this.settings.reopen === undefined) {
          throw hvkitError(
            'CONNECTION_LOST',
            `libvirt connection to ${this.settings.target}: the SSH connection it runs over is closed, and it was given (transport.ssh.client), so it cannot be opened again.`,
            {
              adapter: ADAPTER_ID,
              operation: 'reconnect',
              retryable: false,
              details: { target: this.settings.target, reconnect: 'never' },
            },
          );
        }
        await this.settings.dispose().catch(() => {});
        const reopened = await this.settings.reopen({ signal, timeoutMs });
        this.settings.dialer = reopened.dialer;
        this.settings.dispose = reopened.dispose;
        if (reopened.ssh !== undefined) this.settings.ssh = reopened.ssh;
      }
      const socket = await this.settings.dialer.dial({ signal, timeoutMs });
      const link = this.attach(socket);
      try {
        await this.setUp(link, signal);
      } catch (error) {
        link.connection.destroy(
          HvkitError.isInstance(error)
            ? error
            : connectionLost(this.settings.target, 'failed during setup', error),
        );
        throw error;
      }
      return link;
    } catch (error) {
      if (derived.signal.aborted && !HvkitError.isInstance(error, 'TIMEOUT') && !stop.aborted) {
        throw abortError(derived.signal, { adapter: ADAPTER_ID, operation: 'reconnect' });
      }
      throw error;
    } finally {
      derived.dispose();
    }
  }

  /** Closed for good after a loss: fails what waits, ends subscriptions with the error, releases the transport. */
  private finish(error: HvkitError): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    this.finalError = error;
    this.reconnectStop?.abort();
    this.status.update('closed', error);
    this.events.endAll(error);
    this.notifyClosed(error);
    void this.settings.dispose().catch(() => {});
  }

  private notifyClosed(error: HvkitError | undefined): void {
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

  /** The CONNECTION_LOST error of an operation on a client closed for good (not retryable). */
  private closedError(operation: string): HvkitError {
    return this.status.closedError(operation);
  }

  /**
   * The link to run a call on: the current one when open; while reconnecting, the new one once it is
   * there (waiting within `timeoutMs`, the call's deadline). Resolves to the time left of the deadline.
   */
  private async whenReady(operation: string, options: CallOptions): Promise<CallOptions> {
    const timeoutMs = options.timeoutMs ?? this.settings.callTimeoutMs;
    const started = Date.now();
    await this.status.waitUntilOpen({ signal: options.signal, timeoutMs, operation });
    if (this.stateValue !== 'open') throw this.closedError(operation);
    return { signal: options.signal, timeoutMs: Math.max(1, timeoutMs - (Date.now() - started)) };
  }

  // ---------------------------------------------------------------- calls

  /**
   * Calls a procedure and decodes its reply. While the client reconnects, the call waits for the new
   * connection within its own deadline.
   *
   * @example
   * const dom = await client.call(remoteProcedures.DOMAIN_LOOKUP_BY_NAME, { name: 'web1' });
   * const xml = await client.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: 0 });
   *
   * @throws HvkitError the mapped libvirt error (NOT_FOUND, INVALID_ARGUMENT, CONFLICT, UNSUPPORTED, ...,
   *   with `backendCode` the VIR_ERR number), INVALID_ARGUMENT for arguments that cannot be encoded or
   *   exceed the message limit (nothing is sent), TIMEOUT, ABORTED, CONNECTION_LOST (retryable while the
   *   client may still reconnect, not once it is closed), PROTOCOL.
   */
  call<A, R>(procedure: RemoteProcedure<A, R>, ...rest: CallArgs<A>): Promise<R> {
    const [args, options = {}] = rest as [A, CallOptions | undefined];
    return this.callProcedure(procedure, args, options);
  }

  private callProcedure<A, R>(procedure: RemoteProcedure<A, R>, args: A, options: CallOptions): Promise<R> {
    return this.callOnLink(undefined, procedure, args, options);
  }

  /** A call on `link`, or (undefined) on the client's current link, waiting through a reconnect. */
  private callOnLink<A, R>(
    link: Link | undefined,
    procedure: RemoteProcedure<A, R>,
    args: A,
    options: CallOptions,
  ): Promise<R> {
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
      link,
      procedure.program,
      procedure.version,
      procedure.procedure,
      operation,
      payload,
      (header, body) => decodeReply(operation, header, body, (r) => procedure.decodeRet(r)),
      options,
    );
  }

  private invoke<R>(
    link: Link | undefined,
    program: number,
    version: number,
    procedure: number,
    operation: string,
    payload: Uint8Array,
    decode: (header: PacketHeader, payload: Uint8Array) => R,
    options: CallOptions,
    hooks?: CallHooks,
  ): Promise<R> {
    if (link !== undefined) {
      return link.calls.invoke(program, version, procedure, operation, payload, decode, options, hooks);
    }
    switch (this.stateValue) {
      case 'open':
      case 'closing':
        // While closing, the call table lets only CONNECT_CLOSE through.
        if (this.stateValue === 'closing' && procedure !== REMOTE_PROC.CONNECT_CLOSE) break;
        return this.link.calls.invoke(
          program,
          version,
          procedure,
          operation,
          payload,
          decode,
          options,
          hooks,
        );
      case 'reconnecting':
        checkSignal(options.signal);
        if (options.timeoutMs !== undefined) checkTimeoutMs(options.timeoutMs);
        return this.whenReady(operation, options).then((left) =>
          this.link.calls.invoke(program, version, procedure, operation, payload, decode, left, hooks),
        );
      case 'closed':
        break;
    }
    return Promise.reject(this.closedError(operation));
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
      undefined,
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
   * Resolves once the daemon accepted the call. See {@link LibvirtReadStream} for consuming it. A stream
   * does not survive a lost connection: it fails with CONNECTION_LOST.
   *
   * Reading the stream slowly pauses the whole connection (TCP backpressure); use a separate
   * connection ({@link LibvirtRpcClient.openSibling}) for bulk transfers.
   */
  async openReadStream<A>(
    procedure: RemoteProcedure<A, void>,
    args: A,
    options: ReadStreamOptions & { timeoutMs?: number } = {},
  ): Promise<LibvirtReadStream> {
    if (procedure?.stream !== 'read') {
      throw new TypeError('openReadStream: the procedure does not open a read stream.');
    }
    checkSignal(options.signal);
    const operation = `rpc.${procedure.name}`;
    const payload = encodeArgs(procedure, args);
    let call: CallOptions = { signal: options.signal, timeoutMs: options.timeoutMs };
    if (this.stateValue === 'reconnecting') call = await this.whenReady(operation, call);
    if (this.stateValue === 'closed') throw this.closedError(operation);
    const link = this.link;
    return link.streams.open(procedure, operation, options, (decode, hooks) =>
      this.invoke(
        this.stateValue === 'closing' ? undefined : link,
        procedure.program,
        procedure.version,
        procedure.procedure,
        operation,
        payload,
        decode,
        call,
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
  async uploadVolume(vol: RemoteStorageVol, options: UploadVolumeOptions = {}): Promise<LibvirtWriteStream> {
    checkSignal(options.signal);
    const procedure = remoteProcedures.STORAGE_VOL_UPLOAD;
    const operation = `rpc.${procedure.name}`;
    const sparse = options.sparse === true;
    const streamOptions: WriteStreamOptions = {
      sparse,
      ...(options.idleTimeoutMs !== undefined ? { idleTimeoutMs: options.idleTimeoutMs } : {}),
      ...(options.signal ? { signal: options.signal } : {}),
    };
    const payload = encodeArgs(procedure, {
      vol,
      offset: options.offset ?? 0,
      length: options.length ?? 0,
      flags: sparse ? STORAGE_VOL_UPLOAD_SPARSE_STREAM : 0,
    });
    let call: CallOptions = { signal: options.signal, timeoutMs: options.timeoutMs };
    if (this.stateValue === 'reconnecting') call = await this.whenReady(operation, call);
    if (this.stateValue === 'closed') throw this.closedError(operation);
    // Like a read stream, an upload belongs to the link it started on: it fails with CONNECTION_LOST when
    // that connection is lost, and is not carried over a reconnect.
    const link = this.link;
    return link.streams.openEndpoint(
      procedure,
      operation,
      (channel) => new LibvirtWriteStream(channel, operation, streamOptions),
      (decode, hooks) =>
        this.invoke(
          this.stateValue === 'closing' ? undefined : link,
          procedure.program,
          procedure.version,
          procedure.procedure,
          operation,
          payload,
          decode,
          call,
          hooks,
        ),
    );
  }

  // ---------------------------------------------------------------- events

  /**
   * Subscribes to domain lifecycle events (CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, event id 0) of
   * one domain or, without `domain`, of all. Subscriptions to the same events share one registration at
   * the daemon, and each receives every event. Iterate the result with `for await`; `close()` (or the
   * signal) leaves the registration. The buffer is bounded: when the consumer falls behind, the oldest
   * events are dropped, counted in `dropped`, and announced by a resync item. After a reconnect the
   * registration is made again and every subscription first receives a resync item (`reconnected`).
   */
  async subscribeDomainLifecycle(
    options: DomainEventSubscriptionOptions & { domain?: RemoteDomain; timeoutMs?: number } = {},
  ): Promise<DomainEventSubscription> {
    checkSignal(options.signal);
    if (this.closed) throw this.closedError('rpc.subscribeDomainLifecycle');
    return this.events.subscribeLifecycle(options);
  }

  // ---------------------------------------------------------------- closing

  /**
   * Closes the client: ends every subscription, sends CONNECT_CLOSE and ends the socket. It takes at most
   * `timeoutMs` (default {@link DEFAULT_LIBVIRT_CLOSE_TIMEOUT_MS}, 2000 ms) for the event calls still
   * running and CONNECT_CLOSE together, then drops the socket at once if the daemon did not answer (up to
   * 1 s more for a daemon that answered to close its side), so a hung daemon delays it by `timeoutMs` at
   * most; while reconnecting it stops at once. Pending calls fail with CONNECTION_LOST (not retryable).
   * Idempotent; safe after loss.
   */
  close(options: CallOptions = {}): Promise<void> {
    checkSignal(options.signal);
    const timeoutMs = checkTimeoutMs(options.timeoutMs ?? DEFAULT_LIBVIRT_CLOSE_TIMEOUT_MS);
    if (this.closePromise) return this.closePromise;
    this.closePromise = (async () => {
      const link = this.link;
      if (this.stateValue === 'closed') {
        await this.settings.dispose().catch(() => {});
        return;
      }
      const wasOpen = this.stateValue === 'open';
      this.stateValue = 'closing';
      this.reconnectStop?.abort();
      this.status.update('closed');
      let answered = false;
      if (wasOpen && link.connection.state === 'open') {
        const deadline = Date.now() + timeoutMs;
        link.connection.beginClosing();
        // Never let CONNECT_CLOSE race an event (de)registration in the daemon.
        await this.events.closing(timeoutMs);
        try {
          await this.invoke(
            link,
            PROGRAM.REMOTE,
            PROTOCOL_VERSION,
            REMOTE_PROC.CONNECT_CLOSE,
            'rpc.CONNECT_CLOSE',
            new Uint8Array(0),
            () => undefined,
            { signal: options.signal, timeoutMs: Math.max(1, deadline - Date.now()) },
          );
          answered = true;
        } catch (error) {
          this.settings.logger?.debug('libvirt: CONNECT_CLOSE failed', { error: String(error) });
        }
      } else {
        this.events.endAll(undefined);
      }
      link.connection.shutdown(undefined);
      if (answered) await link.connection.awaitSocketClosed(1000);
      else link.connection.destroy(connectionLost(this.settings.target, 'was closed by the client'));
      this.stateValue = 'closed';
      this.notifyClosed(undefined);
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
   * `qemu+ssh`): for bulk streams, which would otherwise stall this connection's calls. The sibling does
   * not reconnect: its loss fails what runs on it.
   */
  async openSibling(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<LibvirtRpcClient> {
    checkSignal(options.signal);
    const timeoutMs = checkTimeoutMs(options.timeoutMs ?? DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS);
    if (this.stateValue === 'reconnecting') await this.whenReady('openSibling', options);
    if (this.stateValue !== 'open') throw this.closedError('openSibling');
    const derived = deriveSignal(
      { signal: options.signal, timeoutMs },
      { adapter: ADAPTER_ID, operation: 'openSibling' },
    );
    try {
      return await LibvirtRpcClient.open(
        { ...this.settings, reconnect: false, reopen: undefined, dispose: async () => {} },
        derived.signal,
        timeoutMs,
      );
    } finally {
      derived.dispose();
    }
  }
}
