/**
 * The connection part of the libvirt RPC client: the socket, packet framing and reassembly, write
 * corking, keepalive (answering the daemon's PINGs, PINGing when quiet, declaring a silent peer dead),
 * routing incoming packets by program and type, and close/teardown.
 *
 * It knows nothing about calls, streams or events: packets of those go to {@link ConnectionHooks}, and
 * when the connection ends, `failAll` lets the other parts fail what they hold before the socket goes.
 */

import type { Duplex } from 'node:stream';
import { HvkitError, hvkitError, type Logger, networkErrorToHvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import { KEEPALIVE_PROC, MESSAGE_TYPE, PROGRAM } from './constants';
import { KeepaliveMonitor, type KeepaliveOptions, type KeepaliveStats, keepaliveHeader } from './keepalive';
import { decodeFrame, encodePacket, PacketFramer, type PacketHeader } from './packet';

/** One packet seen by the client, for tracing and transcripts. */
export interface RpcTraceEvent {
  direction: 'send' | 'receive';
  header: PacketHeader;
  /** The payload after the header (a view; copy it to keep it). */
  payload: Uint8Array;
}

/** The state of a connection: `closing` while `close()` runs its CONNECT_CLOSE, `closed` after. */
export type ConnectionState = 'open' | 'closing' | 'closed';

/** What the connection needs to know (package-internal). */
export interface ConnectionSettings {
  target: string;
  keepalive: Required<KeepaliveOptions> | false;
  maxMessageBytes: number;
  logger: Logger | undefined;
  trace: ((event: RpcTraceEvent) => void) | undefined;
}

/** Where the connection hands what is not its own (package-internal). */
export interface ConnectionHooks {
  /** A MESSAGE of the remote program (an event). */
  onEvent(header: PacketHeader, payload: Uint8Array): void;
  /** A REPLY or REPLY_WITH_FDS. */
  onReply(header: PacketHeader, payload: Uint8Array): void;
  /** A STREAM or STREAM_HOLE packet. */
  onStream(header: PacketHeader, payload: Uint8Array): void;
  /**
   * The connection is ending (already marked closed): fail every pending call, stream and subscription.
   * `failure` is what pending work fails with; `error` is the cause (undefined after a clean close).
   */
  failAll(failure: HvkitError, error: HvkitError | undefined): void;
}

/** A CONNECTION_LOST error naming the target. */
export function connectionLost(
  target: string,
  reason: string,
  cause?: unknown,
  retryable = true,
): HvkitError {
  return hvkitError('CONNECTION_LOST', `libvirt connection to ${target} ${reason}`, {
    adapter: ADAPTER_ID,
    cause,
    retryable,
    details: { target },
  });
}

/** The socket of one libvirt connection, with framing, keepalive and teardown (package-internal). */
export class RpcConnection {
  private readonly framer: PacketFramer;
  private readonly pausers = new Set<object>();
  private readonly keepalive: KeepaliveMonitor;
  private corked = false;
  private stateValue: ConnectionState = 'open';
  private closedError: HvkitError | undefined;
  private keepaliveOn = false;
  private readonly socketClosed: Promise<void>;

  constructor(
    private readonly socket: Duplex,
    private readonly settings: ConnectionSettings,
    private readonly hooks: ConnectionHooks,
  ) {
    this.framer = new PacketFramer(settings.maxMessageBytes);
    this.keepalive = new KeepaliveMonitor(settings.keepalive || { intervalMs: 5000, countMax: 5 }, {
      sendPing: () => this.send(keepaliveHeader(KEEPALIVE_PROC.PING)),
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

  /** Where the connection goes (secrets removed). */
  get target(): string {
    return this.settings.target;
  }

  get state(): ConnectionState {
    return this.stateValue;
  }

  /** Why the connection closed (undefined while open, or after a clean close). */
  get closeReason(): HvkitError | undefined {
    return this.closedError;
  }

  /** True when keepalive runs (started and the connection is open). */
  get keepaliveActive(): boolean {
    return this.keepaliveOn && this.stateValue === 'open';
  }

  /** Starts keepalive, unless the settings turned it off. */
  startKeepalive(): void {
    if (this.settings.keepalive !== false) {
      this.keepaliveOn = true;
      this.keepalive.start();
    }
  }

  keepaliveStats(): KeepaliveStats {
    return this.keepalive.snapshot();
  }

  /** The CONNECTION_LOST error of an operation tried on a closed connection. */
  closedCallError(operation: string): HvkitError {
    const base = this.closedError;
    return hvkitError('CONNECTION_LOST', `${operation}: the libvirt connection to ${this.target} is closed`, {
      adapter: ADAPTER_ID,
      operation,
      cause: base,
      retryable: base?.retryable ?? false,
    });
  }

  // ---------------------------------------------------------------- sending

  /** Encodes and writes a packet (a keepalive message, a stream packet). */
  send(header: PacketHeader, payload?: Uint8Array): void {
    if (this.socket.destroyed) return;
    this.writePacket(encodePacket(header, payload, this.settings.maxMessageBytes));
  }

  /**
   * Writes an encoded packet. Packets written in the same tick (the next calls started by a burst of
   * replies) leave in one write: the socket is corked until the next tick.
   */
  writePacket(packet: Uint8Array): void {
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

  /** Resolves once the socket's write buffer is below its high-water mark, or the socket is gone. */
  whenWritable(): Promise<void> {
    const socket = this.socket;
    if (socket.destroyed || !socket.writableNeedDrain) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const done = () => {
        socket.off('drain', done);
        socket.off('close', done);
        resolve();
      };
      socket.on('drain', done);
      socket.on('close', done);
    });
  }

  private readonly uncork = (): void => {
    this.corked = false;
    this.socket.uncork();
  };

  /**
   * Stops (`paused`) or resumes reading the socket for `owner` (a stream over its high-water mark); the
   * socket reads again once no owner holds it paused.
   */
  setPaused(owner: object, paused: boolean): void {
    const before = this.pausers.size > 0;
    if (paused) this.pausers.add(owner);
    else this.pausers.delete(owner);
    const after = this.pausers.size > 0;
    if (before === after || this.socket.destroyed) return;
    if (after) this.socket.pause();
    else this.socket.resume();
  }

  // ---------------------------------------------------------------- receiving

  private isShut(): boolean {
    return this.stateValue === 'closed';
  }

  private onData(chunk: Buffer): void {
    if (this.stateValue === 'closed') return;
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
        this.send(keepaliveHeader(KEEPALIVE_PROC.PONG));
      } else if (header.procedure === KEEPALIVE_PROC.PONG) {
        this.keepalive.pongReceived();
      }
      return;
    }
    switch (header.type) {
      case MESSAGE_TYPE.MESSAGE:
        if (header.program === PROGRAM.REMOTE) this.hooks.onEvent(header, payload);
        return;
      case MESSAGE_TYPE.REPLY:
      case MESSAGE_TYPE.REPLY_WITH_FDS:
        this.hooks.onReply(header, payload);
        return;
      case MESSAGE_TYPE.STREAM:
      case MESSAGE_TYPE.STREAM_HOLE:
        this.hooks.onStream(header, payload);
        return;
      default:
        this.settings.logger?.debug('libvirt: unexpected packet type dropped', { type: header.type });
    }
  }

  // ---------------------------------------------------------------- closing

  /** `close()` began: no new calls but CONNECT_CLOSE, keepalive stops. */
  beginClosing(): void {
    this.stateValue = 'closing';
    this.keepalive.stop();
  }

  /** Fails everything and releases the socket. Idempotent; the first error wins. */
  shutdown(error: HvkitError | undefined): void {
    if (this.stateValue === 'closed') return;
    this.stateValue = 'closed';
    this.closedError = error;
    this.keepalive.stop();
    const failure = error ?? connectionLost(this.target, 'was closed by the client', undefined, false);
    this.hooks.failAll(failure, error);
    this.pausers.clear();
    this.socket.on('error', () => {});
    if (!this.socket.destroyed) {
      if (error === undefined) this.socket.end();
      else this.socket.destroy();
    }
  }

  /** Shuts down with `error` and destroys the socket at once. */
  destroy(error: HvkitError): void {
    this.shutdown(error);
    if (!this.socket.destroyed) this.socket.destroy();
  }

  /** After {@link shutdown}: waits up to `min(timeoutMs, 1000)` ms for the socket to close, then destroys it. */
  async awaitSocketClosed(timeoutMs: number): Promise<void> {
    const closed = await Promise.race([
      this.socketClosed.then(() => true),
      new Promise<boolean>((resolve) =>
        setTimeout(() => resolve(false), Math.min(timeoutMs, 1000)).unref?.(),
      ),
    ]);
    if (!closed) this.socket.destroy();
  }
}
