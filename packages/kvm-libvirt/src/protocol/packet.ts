/**
 * libvirt RPC packet framing: a 4-byte big-endian length that counts itself, a 24-byte header
 * (`prog`, `vers`, `proc`, `type`, `serial`, `status`), then the XDR payload.
 */

import { hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import {
  HEADER_BYTES,
  LENGTH_WORD_BYTES,
  MESSAGE_MAX,
  MESSAGE_STATUS,
  MESSAGE_TYPE,
  type MessageStatus,
  type MessageType,
  PROTOCOL_VERSION,
} from './constants';

/** The 24-byte header of a packet. */
export interface PacketHeader {
  /** Program number (`PROGRAM.REMOTE`, `PROGRAM.KEEPALIVE`, ...). */
  program: number;
  /** Program version, always 1. */
  version: number;
  /** Procedure number. */
  procedure: number;
  /** CALL, REPLY, MESSAGE, STREAM, ... */
  type: MessageType;
  /** Unsigned 32-bit serial: chosen by the client for a CALL, echoed by REPLY and STREAM packets. */
  serial: number;
  /** OK, ERROR or CONTINUE. */
  status: MessageStatus;
}

/** A decoded packet: its header and the payload that follows it (a view, not a copy). */
export interface Packet {
  header: PacketHeader;
  payload: Uint8Array;
}

function protocol(message: string, details?: Record<string, unknown>) {
  return hvkitError('PROTOCOL', message, { adapter: ADAPTER_ID, operation: 'rpc.decode', details });
}

const TYPES: ReadonlySet<number> = new Set(Object.values(MESSAGE_TYPE));
const STATUSES: ReadonlySet<number> = new Set(Object.values(MESSAGE_STATUS));

function checkMax(maxMessageBytes: number): void {
  if (!Number.isInteger(maxMessageBytes) || maxMessageBytes < HEADER_BYTES) {
    throw new TypeError(`maxMessageBytes must be an integer of at least ${HEADER_BYTES}.`);
  }
}

/**
 * Encodes a packet (length word, header, payload).
 *
 * @throws HvkitError `INVALID_ARGUMENT` when the packet (without its length word) would exceed
 *   `maxMessageBytes` (default {@link MESSAGE_MAX}), the limit the daemon enforces.
 */
export function encodePacket(
  header: PacketHeader,
  payload: Uint8Array = new Uint8Array(0),
  maxMessageBytes: number = MESSAGE_MAX,
): Uint8Array {
  checkMax(maxMessageBytes);
  const bodyBytes = HEADER_BYTES + payload.length;
  if (bodyBytes > maxMessageBytes) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `RPC message of ${bodyBytes} bytes exceeds the ${maxMessageBytes}-byte limit; nothing was sent.`,
      { adapter: ADAPTER_ID, operation: 'rpc.encode', details: { bytes: bodyBytes, maxMessageBytes } },
    );
  }
  const out = new Uint8Array(LENGTH_WORD_BYTES + bodyBytes);
  const view = new DataView(out.buffer);
  view.setUint32(0, LENGTH_WORD_BYTES + bodyBytes);
  view.setUint32(4, header.program >>> 0);
  view.setUint32(8, header.version >>> 0);
  view.setInt32(12, header.procedure | 0);
  view.setInt32(16, header.type);
  view.setUint32(20, header.serial >>> 0);
  view.setInt32(24, header.status);
  out.set(payload, LENGTH_WORD_BYTES + HEADER_BYTES);
  return out;
}

/** Writes `serial` into a packet made by {@link encodePacket} (so a call can be encoded before its serial is known). */
export function setPacketSerial(packet: Uint8Array, serial: number): void {
  const at = LENGTH_WORD_BYTES + 16;
  packet[at] = serial >>> 24;
  packet[at + 1] = (serial >>> 16) & 0xff;
  packet[at + 2] = (serial >>> 8) & 0xff;
  packet[at + 3] = serial & 0xff;
}

/**
 * Decodes one frame (the bytes after the length word: header and payload).
 *
 * @throws HvkitError `PROTOCOL` for a short frame, a version other than 1, or an unknown type or status.
 */
export function decodeFrame(frame: Uint8Array): Packet {
  if (!(frame instanceof Uint8Array)) throw new TypeError('decodeFrame: frame must be a Uint8Array.');
  if (frame.length < HEADER_BYTES)
    throw protocol(`RPC frame of ${frame.length} bytes is shorter than its header`);
  const view = new DataView(frame.buffer, frame.byteOffset, frame.byteLength);
  const header: PacketHeader = {
    program: view.getUint32(0),
    version: view.getUint32(4),
    procedure: view.getInt32(8),
    type: view.getInt32(12) as MessageType,
    serial: view.getUint32(16),
    status: view.getInt32(20) as MessageStatus,
  };
  if (header.version !== PROTOCOL_VERSION) {
    throw protocol(`RPC packet has protocol version ${header.version}, expected ${PROTOCOL_VERSION}`, {
      header,
    });
  }
  if (!TYPES.has(header.type)) throw protocol(`RPC packet has unknown type ${header.type}`, { header });
  if (!STATUSES.has(header.status))
    throw protocol(`RPC packet has unknown status ${header.status}`, { header });
  return { header, payload: frame.subarray(HEADER_BYTES) };
}

/**
 * Splits a byte stream into frames. Feed it socket chunks with {@link PacketFramer.push}; it returns the
 * complete frames (header + payload, without the length word). A length word below 28 or above
 * `maxMessageBytes + 4` throws `PROTOCOL`: the stream cannot be resynchronised, so the connection must
 * be closed.
 */
export class PacketFramer {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private frameLength = -1;

  constructor(private readonly maxMessageBytes: number = MESSAGE_MAX) {
    checkMax(maxMessageBytes);
  }

  /** Bytes buffered and not yet returned as a frame. */
  get buffered(): number {
    return this.size;
  }

  private take(n: number): Uint8Array {
    const first = this.chunks[0] as Uint8Array;
    if (first.length === n) {
      this.chunks.shift();
      this.size -= n;
      return first;
    }
    if (first.length > n) {
      this.chunks[0] = first.subarray(n);
      this.size -= n;
      return first.subarray(0, n);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const chunk = this.chunks[0] as Uint8Array;
      const want = n - filled;
      if (chunk.length <= want) {
        out.set(chunk, filled);
        filled += chunk.length;
        this.chunks.shift();
      } else {
        out.set(chunk.subarray(0, want), filled);
        this.chunks[0] = chunk.subarray(want);
        filled = n;
      }
    }
    this.size -= n;
    return out;
  }

  /**
   * Adds bytes and returns every frame completed by them.
   *
   * @throws HvkitError `PROTOCOL` for an impossible length word.
   */
  push(chunk: Uint8Array): Uint8Array[] {
    if (!(chunk instanceof Uint8Array)) throw new TypeError('PacketFramer.push: chunk must be a Uint8Array.');
    if (chunk.length > 0) {
      this.chunks.push(chunk);
      this.size += chunk.length;
    }
    const frames: Uint8Array[] = [];
    for (;;) {
      if (this.frameLength < 0) {
        if (this.size < LENGTH_WORD_BYTES) break;
        const word = this.take(LENGTH_WORD_BYTES);
        const length = new DataView(word.buffer, word.byteOffset, 4).getUint32(0);
        if (length < LENGTH_WORD_BYTES + HEADER_BYTES) {
          throw protocol(`RPC length word ${length} is shorter than a header`, { length });
        }
        if (length - LENGTH_WORD_BYTES > this.maxMessageBytes) {
          throw protocol(`RPC length word ${length} exceeds the ${this.maxMessageBytes}-byte message limit`, {
            length,
            maxMessageBytes: this.maxMessageBytes,
          });
        }
        this.frameLength = length - LENGTH_WORD_BYTES;
      }
      if (this.size < this.frameLength) break;
      const frame = this.take(this.frameLength);
      frames.push(frame);
      this.frameLength = -1;
    }
    return frames;
  }

  /** Drops everything buffered. */
  reset(): void {
    this.chunks = [];
    this.size = 0;
    this.frameLength = -1;
  }
}
