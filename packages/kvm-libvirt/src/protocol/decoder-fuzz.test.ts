/**
 * Decoder fuzz test: feeds random and mutated packets (seeded from real libvirt 9.0 packets) to the
 * framer, the header decoder and every reply/error/event/stream-hole decoder. The only acceptable
 * outcomes are a successful decode or an HvkitError with code PROTOCOL; loops are finite by design.
 */

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { prng } from '../../test/fake-libvirtd';
import { MESSAGE_STATUS, MESSAGE_TYPE } from './constants';
import { decodeFrame, encodePacket, PacketFramer, type PacketHeader } from './packet';
import { readRemoteError } from './remote-error';
import {
  type AnyRemoteProcedure,
  procedureByNumber,
  readStreamHole,
  remoteMessages,
  remoteProcedures,
} from './remote-protocol';
import { XdrReader } from './xdr';

interface Recorded {
  header: PacketHeader;
  payloadHex: string;
}

const recorded: Recorded[] = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'recorded-packets.json'), 'utf8'),
).packets;
const seeds = recorded.map((p) => encodePacket(p.header, Uint8Array.from(Buffer.from(p.payloadHex, 'hex'))));
const decoders: AnyRemoteProcedure[] = Object.values(remoteProcedures);

const HUGE = [
  0xffff_ffff, 0x7fff_ffff, 0x8000_0000, 0x0040_0001, 0x0000_4001, 16_384, 262_145, 65, 21, 17, 33, 258, 4098,
];

function mutate(rand: () => number, input: Uint8Array): Uint8Array {
  const int = (n: number) => Math.floor(rand() * n);
  let out = Uint8Array.from(input);
  const rounds = 1 + int(4);
  for (let k = 0; k < rounds; k++) {
    const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
    switch (int(9)) {
      case 0: // bit flips
        for (let i = 0, n = 1 + int(8); i < n && out.length > 0; i++) {
          const at = int(out.length);
          out[at] = (out[at] as number) ^ (1 << int(8));
        }
        break;
      case 1: // random bytes
        for (let i = 0, n = 1 + int(16); i < n && out.length > 0; i++) out[int(out.length)] = int(256);
        break;
      case 2: // truncation
        out = out.subarray(0, int(out.length + 1));
        break;
      case 3: {
        // extension with garbage
        const extra = new Uint8Array(int(64));
        for (let i = 0; i < extra.length; i++) extra[i] = int(256);
        const grown = new Uint8Array(out.length + extra.length);
        grown.set(out);
        grown.set(extra, out.length);
        out = grown;
        break;
      }
      case 4: // length word changed
        if (out.length >= 4) view.setUint32(0, rand() < 0.5 ? int(0x1_0000_0000) : out.length + int(9) - 4);
        break;
      case 5: // huge counts or lengths at an aligned offset of the payload
        if (out.length >= 32) {
          view.setUint32(
            28 + 4 * int(Math.floor((out.length - 32) / 4) + 1),
            HUGE[int(HUGE.length)] as number,
          );
        }
        break;
      case 6: // another procedure: cross-decoding
        if (out.length >= 16)
          view.setInt32(12, (decoders[int(decoders.length)] as AnyRemoteProcedure).procedure);
        break;
      case 7: // another type or status
        if (out.length >= 28) {
          view.setInt32(16, int(8));
          view.setInt32(24, int(4));
        }
        break;
      default: {
        // a splice of two packets
        const other = seeds[int(seeds.length)] as Uint8Array;
        const cut = int(out.length + 1);
        const from = int(other.length + 1);
        const spliced = new Uint8Array(cut + other.length - from);
        spliced.set(out.subarray(0, cut));
        spliced.set(other.subarray(from), cut);
        out = spliced;
      }
    }
  }
  return out;
}

function randomPacket(rand: () => number): Uint8Array {
  const n = Math.floor(rand() * 200);
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rand() * 256);
  // Half of them get a consistent length word so they reach the decoders.
  if (n >= 28 && rand() < 0.5) {
    const view = new DataView(out.buffer);
    view.setUint32(0, n);
    view.setUint32(8, 1);
    view.setInt32(16, Math.floor(rand() * 7));
    view.setInt32(24, Math.floor(rand() * 3));
  }
  return out;
}

interface Outcome {
  ok: number;
  protocol: number;
  other: unknown[];
}

function guard(outcome: Outcome, f: () => void): boolean {
  try {
    f();
    outcome.ok++;
    return true;
  } catch (error) {
    if (HvkitError.isInstance(error, 'PROTOCOL')) outcome.protocol++;
    else outcome.other.push(error);
    return false;
  }
}

function decodePayload(
  outcome: Outcome,
  header: PacketHeader,
  payload: Uint8Array,
  rand: () => number,
): void {
  const full = (read: (r: XdrReader) => unknown) => () => {
    const r = new XdrReader(payload);
    read(r);
    r.finish();
  };
  if (header.type === MESSAGE_TYPE.REPLY && header.status === MESSAGE_STATUS.OK) {
    const proc = procedureByNumber(header.procedure);
    if (proc)
      guard(
        outcome,
        full((r) => (proc.decodeRet as (r: XdrReader) => unknown)(r)),
      );
  } else if (header.status === MESSAGE_STATUS.ERROR) {
    guard(outcome, full(readRemoteError));
  } else if (header.type === MESSAGE_TYPE.MESSAGE) {
    guard(
      outcome,
      full((r) => remoteMessages.DOMAIN_EVENT_CALLBACK_LIFECYCLE.decodeMsg(r)),
    );
  } else if (header.type === MESSAGE_TYPE.STREAM_HOLE) {
    guard(outcome, full(readStreamHole));
  }
  // Every payload also goes through one random reply decoder.
  const any = decoders[Math.floor(rand() * decoders.length)] as AnyRemoteProcedure;
  guard(
    outcome,
    full((r) => (any.decodeRet as (r: XdrReader) => unknown)(r)),
  );
}

function feed(outcome: Outcome, packet: Uint8Array, rand: () => number, maxMessageBytes: number): void {
  const framer = new PacketFramer(maxMessageBytes);
  let frames: Uint8Array[] = [];
  // Random chunking, as a socket would deliver it.
  let at = 0;
  const ok = guard(outcome, () => {
    while (at < packet.length) {
      const size = 1 + Math.floor(rand() * 64);
      frames = frames.concat(framer.push(packet.subarray(at, at + size)));
      at += size;
    }
  });
  if (!ok) return;
  for (const frame of frames) {
    let decoded: ReturnType<typeof decodeFrame> | undefined;
    guard(outcome, () => {
      decoded = decodeFrame(frame);
    });
    if (decoded) decodePayload(outcome, decoded.header, decoded.payload, rand);
  }
}

describe('decoder fuzz (seeded, deterministic)', () => {
  it('sees only successful decodes or PROTOCOL errors across 120,000 random and mutated packets', () => {
    expect(seeds.length).toBeGreaterThan(40);
    const rand = prng(0x68766b69);
    const outcome: Outcome = { ok: 0, protocol: 0, other: [] };
    const PACKETS = 120_000;
    let mutated = 0;
    let random = 0;
    for (let i = 0; i < PACKETS; i++) {
      let packet: Uint8Array;
      if (i % 6 === 5) {
        packet = randomPacket(rand);
        random++;
      } else {
        packet = mutate(rand, seeds[i % seeds.length] as Uint8Array);
        mutated++;
      }
      feed(outcome, packet, rand, i % 2 === 0 ? 33_554_432 : 1024);
      if (outcome.other.length > 0) break;
    }
    // The unmutated seeds decode cleanly.
    for (const seed of seeds) feed(outcome, seed, rand, 33_554_432);
    expect(outcome.other.slice(0, 3)).toEqual([]);
    expect(mutated + random).toBe(PACKETS);
    expect(outcome.protocol).toBeGreaterThan(10_000);
    expect(outcome.ok).toBeGreaterThan(10_000);
    console.info(
      `decoder fuzz: ${PACKETS} packets (${mutated} mutated from ${seeds.length} recorded, ${random} random); ` +
        `${outcome.ok} decodes succeeded, ${outcome.protocol} PROTOCOL errors, no other outcome`,
    );
  });

  it('keeps a shared framer consistent over a long stream of valid and broken packets', () => {
    const rand = prng(42);
    const outcome: Outcome = { ok: 0, protocol: 0, other: [] };
    let framer = new PacketFramer();
    let validFrames = 0;
    for (let i = 0; i < 5000; i++) {
      const broken = rand() < 0.2;
      const seed = seeds[i % seeds.length] as Uint8Array;
      const packet = broken ? mutate(rand, seed) : seed;
      let frames: Uint8Array[] = [];
      guard(outcome, () => {
        frames = framer.push(packet);
      });
      for (const frame of frames) {
        if (guard(outcome, () => decodeFrame(frame)) && !broken) validFrames++;
      }
      // A client closes the connection after a framing or header error (the stream cannot be
      // resynchronised); a broken packet may also leave a partial frame behind. Start over then.
      if (broken) framer = new PacketFramer();
    }
    expect(outcome.other).toEqual([]);
    expect(validFrames).toBeGreaterThan(3500);
  });
});
