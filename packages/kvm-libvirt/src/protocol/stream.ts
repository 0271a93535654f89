/**
 * Server-to-client data streams (e.g. STORAGE_VOL_DOWNLOAD): STREAM/CONTINUE data packets, STREAM_HOLE
 * packets for sparse streams, an empty CONTINUE for end of data, then the client's STREAM/OK and the
 * server's confirming STREAM/OK.
 *
 * Flow control is plain TCP backpressure: when the consumer falls behind, the client stops reading the
 * socket, which also stalls every other call and event on that connection. Bulk transfers should
 * therefore use a connection of their own (`LibvirtRpcClient.openSibling()`). Holes count toward the
 * high-water mark by their size, so a stream of small hole packets pauses the socket too.
 *
 * A stream given `maxBytes` fails with `PROTOCOL` as soon as its data and holes together pass it: a
 * server cannot make a consumer write more than the size it expects.
 */

import { HvkitError, hvkitError } from '@hvkit/core';
import { ADAPTER_ID, libvirtErrorToHvkitError } from '../errors';
import { type CallHooks, decodeReply } from './calls';
import { MESSAGE_STATUS, MESSAGE_TYPE, type MessageStatus } from './constants';
import type { PacketHeader } from './packet';
import { readRemoteError } from './remote-error';
import { readStreamHole } from './remote-protocol';
import { XdrReader } from './xdr';

/** A hole in a sparse stream: `hole` bytes of zeros that were not transferred. */
export interface StreamHole {
  hole: number;
}

/** One item of a read stream: data, or a hole (only with `holes: 'report'`). */
export type StreamChunk = Uint8Array | StreamHole;

/** True when a stream item is a hole. */
export function isStreamHole(chunk: StreamChunk): chunk is StreamHole {
  return !(chunk instanceof Uint8Array);
}

/** Options of a read stream. */
export interface ReadStreamOptions {
  /**
   * What to do with holes of a sparse stream: `report` yields `{ hole: n }` items, `zeros` yields the
   * zeros as data (default `report`).
   */
  holes?: 'report' | 'zeros';
  /** Bytes buffered before the socket is paused, holes counted by their size (default 4 MiB). */
  highWaterMark?: number;
  /**
   * Most bytes the stream may carry, data and holes together. A data or hole packet that passes it fails
   * the stream with `PROTOCOL` (and the server is told with STREAM/ERROR) before anything of it is
   * yielded. Default: no bound (`LibvirtRpcClient.downloadVolume` bounds a download by its `length`).
   */
  maxBytes?: number;
  /**
   * Milliseconds the consumer may wait for the next packet before the stream fails with `TIMEOUT`
   * (default 60000; `Infinity` disables).
   */
  idleTimeoutMs?: number;
  /** Aborts the transfer: the server is told (STREAM/ERROR) and the iterator rejects with `ABORTED`. */
  signal?: AbortSignal;
}

/** The error of a stream aborted with `reason`: the reason itself when it is an HvkitError, else ABORTED. */
export function streamAbortError(operation: string, reason: unknown): HvkitError {
  return HvkitError.isInstance(reason)
    ? reason
    : hvkitError('ABORTED', `${operation}: stream aborted`, {
        adapter: ADAPTER_ID,
        operation,
        cause: reason,
      });
}

/**
 * The error a STREAM/ERROR packet from the server carries: the mapped `remote_error`, or REMOTE when it is
 * empty (the server aborted the stream).
 */
export function streamErrorOf(operation: string, payload: Uint8Array): HvkitError {
  if (payload.length === 0) {
    return hvkitError('REMOTE', `${operation}: the server aborted the stream`, {
      adapter: ADAPTER_ID,
      operation,
    });
  }
  const r = new XdrReader(payload);
  const remote = readRemoteError(r);
  r.finish('remote_error');
  return libvirtErrorToHvkitError(remote, { operation });
}

/** What a stream needs from its connection (package-internal). */
export interface StreamChannel {
  /** Sends a STREAM packet (or `type`, e.g. STREAM_HOLE) with the stream's serial and procedure. */
  send(status: MessageStatus, payload?: Uint8Array, type?: number): void;
  /** Asks the connection to stop (true) or resume (false) reading the socket. */
  setPaused(paused: boolean): void;
  /** The stream is over: stop routing its packets to it. */
  release(): void;
  /** Resolves once the socket takes more data (write streams wait here between packets). */
  writable?(): Promise<void>;
}

type State = 'open' | 'eof' | 'done' | 'failed' | 'aborted';

const ZERO_CHUNK = 1 << 20;

/**
 * A libvirt read stream, consumed with `for await`. Each iteration yields a `Uint8Array` (or a
 * {@link StreamHole} with `holes: 'report'`). The iterator ends after the server confirmed the end of
 * the stream; it throws the mapped libvirt error when the server fails the stream, `ABORTED` when
 * aborted, `TIMEOUT` after `idleTimeoutMs` of silence, `CONNECTION_LOST` when the connection drops.
 * Leaving the loop early (`break`) aborts the transfer quietly.
 */
export class LibvirtReadStream implements AsyncIterable<StreamChunk> {
  private readonly queue: StreamChunk[] = [];
  private queuedBytes = 0;
  private state: State = 'open';
  private error: HvkitError | undefined;
  private waiter: { resolve: () => void } | undefined;
  private paused = false;
  private iterating = false;
  private received = 0;
  private carried = 0;
  private idleTimer: ReturnType<typeof setTimeout> | undefined;
  private readonly holes: 'report' | 'zeros';
  private readonly highWaterMark: number;
  private readonly maxBytes: number;
  private readonly idleTimeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = () => this.abort(this.signal?.reason);

  /** @internal Created by `LibvirtRpcClient.openReadStream()`. */
  constructor(
    private readonly channel: StreamChannel,
    readonly operation: string,
    options: ReadStreamOptions = {},
  ) {
    this.holes = options.holes ?? 'report';
    if (this.holes !== 'report' && this.holes !== 'zeros')
      throw new TypeError("holes must be 'report' or 'zeros'.");
    this.highWaterMark = options.highWaterMark ?? 4 * 1024 * 1024;
    if (!Number.isInteger(this.highWaterMark) || this.highWaterMark < 1) {
      throw new TypeError('highWaterMark must be a positive integer.');
    }
    this.maxBytes = options.maxBytes ?? Number.MAX_SAFE_INTEGER;
    if (!Number.isSafeInteger(this.maxBytes) || this.maxBytes < 0) {
      throw new TypeError('maxBytes must be a non-negative safe integer.');
    }
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    if (typeof this.idleTimeoutMs !== 'number' || !(this.idleTimeoutMs > 0)) {
      throw new TypeError('idleTimeoutMs must be a positive number or Infinity.');
    }
    this.signal = options.signal;
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Data bytes received so far (holes not counted). */
  get bytesReceived(): number {
    return this.received;
  }

  /** True once the stream ended, failed or was aborted. */
  get finished(): boolean {
    return this.state === 'done' || this.state === 'failed' || this.state === 'aborted';
  }

  private wake(): void {
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  private setPaused(paused: boolean): void {
    if (this.paused === paused) return;
    this.paused = paused;
    this.channel.setPaused(paused);
  }

  private settle(state: 'done' | 'failed' | 'aborted', error?: HvkitError): void {
    if (this.finished) return;
    this.state = state;
    this.error = error;
    this.clearIdle();
    this.signal?.removeEventListener('abort', this.onAbort);
    this.setPaused(false);
    this.channel.release();
    if (state !== 'done') {
      this.queue.length = 0;
      this.queuedBytes = 0;
    }
    this.wake();
  }

  private protocol(message: string, details?: Record<string, unknown>): HvkitError {
    return hvkitError('PROTOCOL', `${this.operation}: ${message}`, {
      adapter: ADAPTER_ID,
      operation: this.operation,
      ...(details ? { details } : {}),
    });
  }

  /** Counts `n` more bytes (data or hole) against `maxBytes`, and queues them toward the high-water mark. */
  private carry(n: number): void {
    if (n > this.maxBytes - this.carried) {
      throw this.protocol(`the server sent more than the ${this.maxBytes} bytes this stream can have`, {
        maxBytes: this.maxBytes,
      });
    }
    this.carried += n;
    this.queuedBytes += n;
    if (this.queuedBytes >= this.highWaterMark) this.setPaused(true);
  }

  /** `n` queued bytes were handed to the consumer. */
  private consumed(n: number): void {
    this.queuedBytes -= n;
    if (this.queuedBytes <= this.highWaterMark / 2) this.setPaused(false);
  }

  /** @internal A STREAM or STREAM_HOLE packet for this stream. */
  handlePacket(header: PacketHeader, payload: Uint8Array): void {
    if (this.finished) return;
    try {
      if (header.type === MESSAGE_TYPE.STREAM_HOLE) {
        if (this.state !== 'open' || header.status !== MESSAGE_STATUS.CONTINUE) {
          throw this.protocol('unexpected STREAM_HOLE packet');
        }
        const r = new XdrReader(payload);
        const hole = readStreamHole(r);
        r.finish('stream hole');
        if (hole.length < 0n || hole.length > BigInt(Number.MAX_SAFE_INTEGER)) {
          throw this.protocol(`invalid hole length ${hole.length}`);
        }
        if (hole.length > 0n) {
          this.carry(Number(hole.length));
          this.queue.push({ hole: Number(hole.length) });
        }
        this.wake();
        return;
      }
      switch (header.status) {
        case MESSAGE_STATUS.CONTINUE:
          if (this.state !== 'open') throw this.protocol('data after the end of the stream');
          if (payload.length === 0) {
            // End of data: confirm with STREAM/OK and wait for the server's own OK.
            this.state = 'eof';
            this.channel.send(MESSAGE_STATUS.OK);
          } else {
            this.carry(payload.length);
            this.queue.push(payload);
            this.received += payload.length;
          }
          this.wake();
          return;
        case MESSAGE_STATUS.OK:
          // The server's confirmation after our OK (or its own end of stream).
          if (this.state === 'open') this.channel.send(MESSAGE_STATUS.OK);
          this.settle('done');
          return;
        case MESSAGE_STATUS.ERROR:
          this.settle('failed', streamErrorOf(this.operation, payload));
          return;
        default:
          throw this.protocol(`unknown stream status ${header.status}`);
      }
    } catch (error) {
      const e = error as HvkitError;
      // Tell the server we give up on this stream; the connection itself stays usable.
      this.channel.send(MESSAGE_STATUS.ERROR);
      this.settle('failed', e);
    }
  }

  /** @internal The connection failed or closed. */
  fail(error: HvkitError): void {
    this.settle('failed', error);
  }

  /**
   * Aborts the transfer: sends STREAM/ERROR (empty) to the server, and the iterator rejects with
   * `ABORTED` (or the reason, when it is an HvkitError such as a TIMEOUT). Idempotent.
   */
  abort(reason?: unknown): void {
    if (this.finished) return;
    this.channel.send(MESSAGE_STATUS.ERROR);
    this.settle('aborted', streamAbortError(this.operation, reason));
  }

  private clearIdle(): void {
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.idleTimer = undefined;
  }

  private armIdle(): void {
    this.clearIdle();
    if (!Number.isFinite(this.idleTimeoutMs)) return;
    this.idleTimer = setTimeout(() => {
      this.idleTimer = undefined;
      this.abort(
        hvkitError('TIMEOUT', `${this.operation}: no stream data for ${this.idleTimeoutMs} ms`, {
          adapter: ADAPTER_ID,
          operation: this.operation,
          details: { idleTimeoutMs: this.idleTimeoutMs },
        }),
      );
    }, this.idleTimeoutMs);
    this.idleTimer.unref?.();
  }

  private async next(): Promise<IteratorResult<StreamChunk>> {
    for (;;) {
      const head = this.queue[0];
      if (head !== undefined) {
        if (head instanceof Uint8Array) {
          this.queue.shift();
          this.consumed(head.length);
          return { done: false, value: head };
        }
        if (this.holes === 'report') {
          this.queue.shift();
          this.consumed(head.hole);
          return { done: false, value: head };
        }
        const n = Math.min(head.hole, ZERO_CHUNK);
        head.hole -= n;
        if (head.hole === 0) this.queue.shift();
        this.consumed(n);
        return { done: false, value: new Uint8Array(n) };
      }
      if (this.state === 'done') return { done: true, value: undefined };
      if (this.error) throw this.error;
      if (this.state === 'aborted') return { done: true, value: undefined };
      await new Promise<void>((resolve) => {
        this.waiter = { resolve };
        this.armIdle();
      });
      this.clearIdle();
    }
  }

  /** Iterates the stream once; a second iterator is a TypeError. */
  [Symbol.asyncIterator](): AsyncIterator<StreamChunk> {
    if (this.iterating) throw new TypeError('A libvirt stream can be iterated only once.');
    this.iterating = true;
    return {
      next: () => this.next(),
      return: async () => {
        if (!this.finished) {
          this.abort();
          this.error = undefined;
        }
        return { done: true, value: undefined };
      },
    };
  }
}

/** What the stream table needs from the connection (package-internal). */
export interface StreamConnection {
  send(header: PacketHeader, payload?: Uint8Array): void;
  setPaused(owner: object, paused: boolean): void;
  /** Resolves once the socket's write buffer is below its high-water mark (or the socket is gone). */
  whenWritable?(): Promise<void>;
}

/** Starts the call that opens a stream, with its reply decoder and registration hooks. */
export type StartStreamCall<S = LibvirtReadStream> = (
  decode: (header: PacketHeader, payload: Uint8Array) => S,
  hooks: CallHooks,
) => Promise<S>;

/** One open stream of a connection, read or write (package-internal). */
export interface StreamEndpoint {
  handlePacket(header: PacketHeader, payload: Uint8Array): void;
  fail(error: HvkitError): void;
}

/** The open streams of one connection, by serial: routing, registration, failure (package-internal). */
export class ReadStreamTable {
  private readonly streams = new Map<number, StreamEndpoint>();

  constructor(private readonly connection: StreamConnection) {}

  /** True while a stream uses `serial` (a new call must not take it). */
  has(serial: number): boolean {
    return this.streams.has(serial);
  }

  /** A STREAM or STREAM_HOLE packet: to its stream, else dropped. */
  dispatch(header: PacketHeader, payload: Uint8Array): void {
    const stream = this.streams.get(header.serial);
    if (stream) stream.handlePacket(header, payload);
  }

  /** The connection ended: every stream fails with `failure`. */
  failAll(failure: HvkitError): void {
    const streams = [...this.streams.values()];
    this.streams.clear();
    for (const s of streams) s.fail(failure);
  }

  /**
   * Opens a read stream for `procedure`: `start` runs the call; the stream is registered under the call's
   * serial just before the CALL is written (so no data packet is missed) and resolved with the OK reply.
   */
  open(
    procedure: { program: number; version: number; procedure: number },
    operation: string,
    options: ReadStreamOptions,
    start: StartStreamCall,
  ): Promise<LibvirtReadStream> {
    return this.openEndpoint(
      procedure,
      operation,
      (channel) => new LibvirtReadStream(channel, operation, options),
      start,
    );
  }

  /**
   * Opens a stream of any direction: `create` makes the endpoint from its channel once the call has a
   * serial (see {@link ReadStreamTable.open}).
   */
  openEndpoint<S extends StreamEndpoint>(
    procedure: { program: number; version: number; procedure: number },
    operation: string,
    create: (channel: StreamChannel) => S,
    start: StartStreamCall<S>,
  ): Promise<S> {
    let stream: S | undefined;
    let streamSerial = -1;
    const pauser = {};
    const makeStream = (serial: number) =>
      create({
        send: (status: MessageStatus, body?: Uint8Array, type: number = MESSAGE_TYPE.STREAM) =>
          this.connection.send(
            {
              program: procedure.program,
              version: procedure.version,
              procedure: procedure.procedure,
              type: type as PacketHeader['type'],
              serial,
              status,
            },
            body,
          ),
        setPaused: (paused: boolean) => this.connection.setPaused(pauser, paused),
        release: () => {
          if (this.streams.get(serial) === stream) this.streams.delete(serial);
          this.connection.setPaused(pauser, false);
        },
        writable: () => this.connection.whenWritable?.() ?? Promise.resolve(),
      });
    return start(
      (header, body) => {
        decodeReply(operation, header, body, () => undefined);
        return stream as S;
      },
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
}
