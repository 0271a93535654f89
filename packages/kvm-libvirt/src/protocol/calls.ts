/**
 * The calls part of the libvirt RPC client: serials, the pending-call table, the queue in front of the
 * daemon's request slots, deadlines and aborts, and reply dispatch.
 *
 * A call is encoded once, before anything happens (an oversized message is refused with
 * INVALID_ARGUMENT and nothing is sent); its serial is patched into the encoded packet when a slot is
 * free. At most `maxInFlight` calls are outstanding at the daemon (its `max_client_requests` is 5, and a
 * client with 5 unanswered requests is no longer read, which would starve keepalive); the rest queue.
 * Replies are matched by serial and may arrive out of order. A call given up on (aborted, timed out)
 * keeps its daemon slot until its late reply arrives.
 */

import { checkSignal, checkTimeoutMs, HvkitError, hvkitError, type Logger, watchDeadline } from '@hvkit/core';
import { ADAPTER_ID, libvirtErrorToHvkitError } from '../errors';
import type { ConnectionState } from './connection';
import { MESSAGE_STATUS, MESSAGE_TYPE, REMOTE_PROC } from './constants';
import { encodePacket, type PacketHeader, setPacketSerial } from './packet';
import { readRemoteError } from './remote-error';
import type { RemoteProcedure } from './remote-protocol';
import { XdrReader, XdrWriter } from './xdr';

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Milliseconds until the call rejects with TIMEOUT (default: the client's `callTimeoutMs`). */
  timeoutMs?: number;
}

/** Hooks of a call that opens a stream: `register` runs just before the CALL is written. */
export interface CallHooks {
  register?: (serial: number) => void;
  unregister?: (serial: number) => void;
}

/** What the call table needs from the connection (package-internal). */
export interface CallChannel {
  readonly state: ConnectionState;
  writePacket(packet: Uint8Array): void;
  closedCallError(operation: string): HvkitError;
}

/** Settings of the call table (package-internal). */
export interface CallSettings {
  maxMessageBytes: number;
  maxInFlight: number;
  callTimeoutMs: number;
  logger: Logger | undefined;
}

/** Counters of the call table. */
export interface CallCounters {
  callsSent: number;
  repliesReceived: number;
  /** Replies that arrived for calls already given up (aborted or timed out). */
  lateReplies: number;
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

/** A procedure's arguments as XDR. */
export function encodeArgs<A>(procedure: RemoteProcedure<A, unknown>, args: A): Uint8Array {
  const w = new XdrWriter();
  procedure.encodeArgs(w, args);
  return w.bytes();
}

/**
 * Reads a reply: the mapped libvirt error for status ERROR, PROTOCOL for a reply with file descriptors
 * or an unknown status, else `decodeRet` over the whole payload.
 */
export function decodeReply<R>(
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

/** The calls of one connection (package-internal). */
export class CallTable {
  private readonly pending = new Map<number, PendingCall>();
  /** Serials of calls given up on whose replies have not arrived: they still hold a daemon slot. */
  private readonly abandoned = new Set<number>();
  private readonly queue: QueuedCall[] = [];
  private nextSerial = 1;
  private inFlightCount = 0;
  private readonly counters: CallCounters = { callsSent: 0, repliesReceived: 0, lateReplies: 0 };

  /** `serialTaken` says whether a serial is still used by something else (an open stream). */
  constructor(
    private readonly channel: CallChannel,
    private readonly settings: CallSettings,
    private readonly serialTaken: (serial: number) => boolean,
  ) {}

  /** Calls outstanding at the daemon. */
  get inFlight(): number {
    return this.inFlightCount;
  }

  /** Calls waiting for a slot. */
  get queued(): number {
    return this.queue.length;
  }

  /** A copy of the counters. */
  stats(): CallCounters {
    return { ...this.counters };
  }

  private allocateSerial(): number {
    for (;;) {
      const serial = this.nextSerial;
      this.nextSerial = (this.nextSerial + 1) >>> 0;
      if (!this.pending.has(serial) && !this.serialTaken(serial) && !this.abandoned.has(serial))
        return serial;
    }
  }

  private releaseSlot(): void {
    this.inFlightCount--;
    while (
      this.inFlightCount < this.settings.maxInFlight &&
      this.queue.length > 0 &&
      this.channel.state !== 'closed'
    ) {
      const next = this.queue.shift() as QueuedCall;
      next.start();
    }
  }

  /**
   * The core of every call: encodes, waits for a slot, sends, routes the reply. `register` runs just
   * before the CALL is written (streams register themselves there so no data packet is missed).
   */
  invoke<R>(
    program: number,
    version: number,
    procedure: number,
    operation: string,
    payload: Uint8Array,
    decode: (header: PacketHeader, payload: Uint8Array) => R,
    options: CallOptions,
    hooks: CallHooks = {},
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
    if (this.channel.state !== 'open' && procedure !== REMOTE_PROC.CONNECT_CLOSE) {
      return Promise.reject(this.channel.closedCallError(operation));
    }
    if (this.channel.state === 'closed') return Promise.reject(this.channel.closedCallError(operation));
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
        if (this.channel.state === 'closed') {
          finish(this.channel.closedCallError(operation));
          return;
        }
        serial = this.allocateSerial();
        entry.serial = serial;
        this.inFlightCount++;
        this.pending.set(serial, entry);
        hooks.register?.(serial);
        this.counters.callsSent++;
        setPacketSerial(packet, serial);
        this.channel.writePacket(packet);
      };
      stopDeadline = watchDeadline(
        options,
        { adapter: ADAPTER_ID, operation, defaultTimeoutMs: this.settings.callTimeoutMs },
        onEnd,
      );
      if (settled) return;
      if (this.inFlightCount < this.settings.maxInFlight) start();
      else {
        queued = { start, fail: (error) => finish(error) };
        this.queue.push(queued);
      }
    });
  }

  /** A REPLY (or REPLY_WITH_FDS) from the daemon: to its pending call, else dropped. */
  dispatchReply(header: PacketHeader, payload: Uint8Array): void {
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
  }

  /** The connection ended: every pending and queued call fails with `failure`. */
  failAll(failure: HvkitError): void {
    const pending = [...this.pending.values()];
    this.pending.clear();
    this.abandoned.clear();
    const queued = this.queue.splice(0);
    this.inFlightCount = 0;
    for (const p of pending) p.fail(wrapFailure(failure, p.operation));
    for (const q of queued) q.fail(failure);
  }
}

/** A CONNECTION_LOST failure as the failure of one operation (other codes as they are). */
function wrapFailure(failure: HvkitError, operation: string): HvkitError {
  if (failure.code !== 'CONNECTION_LOST') return failure;
  return hvkitError('CONNECTION_LOST', `${operation}: ${failure.message}`, {
    adapter: ADAPTER_ID,
    operation,
    cause: failure,
    retryable: failure.retryable,
    details: failure.details,
  });
}
