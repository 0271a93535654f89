/**
 * Client-to-server data streams (STORAGE_VOL_UPLOAD): after the call's OK reply the client sends
 * STREAM/CONTINUE data packets (at most {@link LEGACY_PAYLOAD_MAX} bytes each, libvirt's own chunk size) and,
 * for a sparse stream, STREAM_HOLE packets; it ends with STREAM/OK, which the daemon confirms with its own
 * STREAM/OK once everything is written (or answers with STREAM/ERROR carrying the error). The client aborts
 * with an empty STREAM/ERROR.
 *
 * Flow control is TCP backpressure: each write waits until the socket's buffer is below its high-water
 * mark. The daemon stops reading a client while its stream queue is full, so a slow disk stalls the whole
 * connection: use a connection of its own (`LibvirtRpcClient.openSibling()`). A daemon that takes nothing
 * for `idleTimeoutMs` fails the stream with `TIMEOUT`.
 */

import { type HvkitError, hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import { LEGACY_PAYLOAD_MAX, MESSAGE_STATUS, MESSAGE_TYPE } from './constants';
import type { PacketHeader } from './packet';
import { type StreamChannel, type StreamEndpoint, streamAbortError, streamErrorOf } from './stream';
import { XdrWriter } from './xdr';

/** Options of a write stream. */
export interface WriteStreamOptions {
  /** Whether the daemon accepts holes ({@link LibvirtWriteStream.hole}); set by the opening call's flags. */
  sparse?: boolean;
  /**
   * Milliseconds a write, a hole or `finish()` may wait for the daemon (socket drain, final confirmation)
   * before the stream fails with `TIMEOUT` (default 60000; `Infinity` disables).
   */
  idleTimeoutMs?: number;
  /** Aborts the transfer: the server is told (STREAM/ERROR) and pending and later writes reject. */
  signal?: AbortSignal;
}

type State = 'open' | 'finishing' | 'done' | 'failed' | 'aborted';

/**
 * A libvirt write stream: `write()` data and `hole()` zero runs in order, then `finish()`; or `abort()`.
 * Every method rejects with the stream's error once it failed (the mapped libvirt error the daemon sent,
 * `ABORTED`, `TIMEOUT`, `CONNECTION_LOST`). Calls must not overlap: await each before the next.
 */
export class LibvirtWriteStream implements StreamEndpoint {
  private state: State = 'open';
  private error: HvkitError | undefined;
  private sent = 0;
  private busy = false;
  private waiter: { resolve: () => void } | undefined;
  private readonly sparse: boolean;
  private readonly idleTimeoutMs: number;
  private readonly signal: AbortSignal | undefined;
  private readonly onAbort = () => this.abort(this.signal?.reason);

  /** @internal Created by `LibvirtRpcClient.uploadVolume()`. */
  constructor(
    private readonly channel: StreamChannel,
    readonly operation: string,
    options: WriteStreamOptions = {},
  ) {
    this.sparse = options.sparse === true;
    this.idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
    if (typeof this.idleTimeoutMs !== 'number' || !(this.idleTimeoutMs > 0)) {
      throw new TypeError('idleTimeoutMs must be a positive number or Infinity.');
    }
    this.signal = options.signal;
    this.signal?.addEventListener('abort', this.onAbort, { once: true });
  }

  /** Bytes sent so far, data and holes. */
  get bytesSent(): number {
    return this.sent;
  }

  /** True once the stream ended, failed or was aborted. */
  get finished(): boolean {
    return this.state === 'done' || this.state === 'failed' || this.state === 'aborted';
  }

  private settle(state: 'done' | 'failed' | 'aborted', error?: HvkitError): void {
    if (this.finished) return;
    this.state = state;
    this.error = error;
    this.signal?.removeEventListener('abort', this.onAbort);
    this.channel.release();
    const w = this.waiter;
    this.waiter = undefined;
    w?.resolve();
  }

  private check(): void {
    if (this.error) throw this.error;
    if (this.finished) {
      throw hvkitError('PROTOCOL', `${this.operation}: the stream is closed`, {
        adapter: ADAPTER_ID,
        operation: this.operation,
      });
    }
  }

  private enter(what: string): void {
    this.check();
    if (this.state !== 'open') throw new TypeError(`${what}: the stream is finishing.`);
    if (this.busy) throw new TypeError(`${what}: the previous write has not completed.`);
    this.busy = true;
  }

  /**
   * Waits until `ready` settles or the stream ends, at most `idleTimeoutMs` (then TIMEOUT, and the stream is
   * aborted); rethrows the stream's error.
   */
  private async wait(ready: Promise<void>, what: string): Promise<void> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const ended = new Promise<void>((resolve) => {
      this.waiter = { resolve };
    });
    if (Number.isFinite(this.idleTimeoutMs)) {
      timer = setTimeout(() => {
        this.abort(
          hvkitError(
            'TIMEOUT',
            `${this.operation}: the daemon took no data for ${this.idleTimeoutMs} ms (${what})`,
            {
              adapter: ADAPTER_ID,
              operation: this.operation,
              details: { idleTimeoutMs: this.idleTimeoutMs },
            },
          ),
        );
      }, this.idleTimeoutMs);
      timer.unref?.();
    }
    try {
      await Promise.race([ready, ended]);
    } finally {
      if (timer !== undefined) clearTimeout(timer);
      this.waiter = undefined;
    }
    if (this.state !== 'done') this.check();
  }

  private writable(): Promise<void> {
    return this.channel.writable?.() ?? Promise.resolve();
  }

  /** Sends `data` (split into packets of at most 262120 bytes), waiting for the socket between packets. */
  async write(data: Uint8Array): Promise<void> {
    if (!(data instanceof Uint8Array)) throw new TypeError('write: data must be a Uint8Array.');
    this.enter('write');
    try {
      for (let at = 0; at < data.byteLength; at += LEGACY_PAYLOAD_MAX) {
        const piece = data.subarray(at, Math.min(data.byteLength, at + LEGACY_PAYLOAD_MAX));
        this.channel.send(MESSAGE_STATUS.CONTINUE, piece);
        this.sent += piece.byteLength;
        await this.wait(this.writable(), 'write');
      }
    } finally {
      this.busy = false;
    }
  }

  /** Sends a hole of `length` zero bytes (a sparse stream only: a TypeError otherwise). */
  async hole(length: number): Promise<void> {
    if (!this.sparse) throw new TypeError('hole: the stream was not opened sparse.');
    if (!Number.isSafeInteger(length) || length < 0)
      throw new TypeError('hole: length must be a safe integer ≥ 0.');
    if (length === 0) return;
    this.enter('hole');
    try {
      const w = new XdrWriter();
      w.hyper(length, 'hole length');
      w.uint(0, 'flags');
      this.channel.send(MESSAGE_STATUS.CONTINUE, w.bytes(), MESSAGE_TYPE.STREAM_HOLE);
      this.sent += length;
      await this.wait(this.writable(), 'hole');
    } finally {
      this.busy = false;
    }
  }

  /** Ends the stream (STREAM/OK) and waits for the daemon's confirmation that everything was written. */
  async finish(): Promise<void> {
    this.enter('finish');
    try {
      this.state = 'finishing';
      this.channel.send(MESSAGE_STATUS.OK);
      await this.wait(new Promise<void>(() => {}), 'finish');
    } finally {
      this.busy = false;
    }
  }

  /** @internal A STREAM packet from the daemon for this stream. */
  handlePacket(header: PacketHeader, payload: Uint8Array): void {
    if (this.finished) return;
    if (
      header.type === MESSAGE_TYPE.STREAM &&
      header.status === MESSAGE_STATUS.OK &&
      this.state === 'finishing'
    ) {
      this.settle('done');
      return;
    }
    if (header.type === MESSAGE_TYPE.STREAM && header.status === MESSAGE_STATUS.ERROR) {
      try {
        this.settle('failed', streamErrorOf(this.operation, payload));
      } catch (error) {
        this.settle('failed', error as HvkitError);
      }
      return;
    }
    // Data from the daemon on an upload, or an OK before ours: the stream cannot go on.
    this.channel.send(MESSAGE_STATUS.ERROR);
    this.settle(
      'failed',
      hvkitError(
        'PROTOCOL',
        `${this.operation}: unexpected stream packet (type ${header.type}, status ${header.status})`,
        {
          adapter: ADAPTER_ID,
          operation: this.operation,
        },
      ),
    );
  }

  /** @internal The connection failed or closed. */
  fail(error: HvkitError): void {
    this.settle('failed', error);
  }

  /**
   * Aborts the transfer: sends STREAM/ERROR (empty) to the daemon, which stops writing; pending and later
   * calls reject with `ABORTED` (or the reason, when it is an HvkitError such as a TIMEOUT). Idempotent.
   * What was already written to the volume stays there.
   */
  abort(reason?: unknown): void {
    if (this.finished) return;
    this.channel.send(MESSAGE_STATUS.ERROR);
    this.settle('aborted', streamAbortError(this.operation, reason));
  }
}
