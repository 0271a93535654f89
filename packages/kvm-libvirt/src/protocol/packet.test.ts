import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { MESSAGE_MAX, MESSAGE_STATUS, MESSAGE_TYPE, PROGRAM } from './constants';
import { decodeFrame, encodePacket, PacketFramer, type PacketHeader, setPacketSerial } from './packet';

const header: PacketHeader = {
  program: PROGRAM.REMOTE,
  version: 1,
  procedure: 66,
  type: MESSAGE_TYPE.CALL,
  serial: 0xffff_fffe,
  status: MESSAGE_STATUS.OK,
};

function expectProtocol(f: () => unknown): void {
  let caught: unknown;
  try {
    f();
  } catch (error) {
    caught = error;
  }
  expect(HvkitError.isInstance(caught, 'PROTOCOL'), `expected PROTOCOL, got ${String(caught)}`).toBe(true);
}

describe('encodePacket', () => {
  it('writes a length word that counts itself, the 24-byte header, then the payload', () => {
    const packet = encodePacket(header, Uint8Array.of(1, 2, 3, 4));
    expect(Buffer.from(packet).toString('hex')).toBe(
      '00000020' + '20008086' + '00000001' + '00000042' + '00000000' + 'fffffffe' + '00000000' + '01020304',
    );
  });

  it('setPacketSerial writes the serial into an encoded packet and nothing else', () => {
    const packet = encodePacket({ ...header, serial: 0 }, Uint8Array.of(9, 8, 7, 6));
    for (const serial of [1, 0x0102_0304, 0xffff_ffff, 0]) {
      setPacketSerial(packet, serial);
      expect(decodeFrame(packet.subarray(4))).toEqual({
        header: { ...header, serial },
        payload: Uint8Array.of(9, 8, 7, 6),
      });
    }
  });

  it('refuses a message over the limit with INVALID_ARGUMENT before anything is sent', () => {
    let caught: unknown;
    try {
      encodePacket(header, new Uint8Array(1001), 1024);
    } catch (error) {
      caught = error;
    }
    expect(HvkitError.isInstance(caught, 'INVALID_ARGUMENT')).toBe(true);
    // Exactly at the limit (24-byte header + payload = max) is fine, as on the daemon.
    expect(encodePacket(header, new Uint8Array(1000), 1024).length).toBe(1028);
  });
});

describe('decodeFrame', () => {
  it('reads the header and returns the payload as a view', () => {
    const packet = encodePacket({ ...header, type: MESSAGE_TYPE.REPLY }, Uint8Array.of(9, 9, 9, 9));
    const { header: h, payload } = decodeFrame(packet.subarray(4));
    expect(h).toEqual({ ...header, type: MESSAGE_TYPE.REPLY });
    expect([...payload]).toEqual([9, 9, 9, 9]);
  });

  it('rejects short frames, other versions, unknown types and statuses with PROTOCOL', () => {
    const good = encodePacket(header).subarray(4);
    expectProtocol(() => decodeFrame(good.subarray(0, 23)));
    const bad = (offset: number, value: number) => {
      const copy = Uint8Array.from(good);
      new DataView(copy.buffer).setUint32(offset, value);
      return copy;
    };
    expectProtocol(() => decodeFrame(bad(4, 2)));
    expectProtocol(() => decodeFrame(bad(12, 7)));
    expectProtocol(() => decodeFrame(bad(20, 3)));
  });
});

describe('PacketFramer', () => {
  const packets = [
    encodePacket({ ...header, serial: 1 }, new Uint8Array(0)),
    encodePacket({ ...header, serial: 2 }, new Uint8Array(5000).fill(1)),
    encodePacket({ ...header, serial: 3 }, Uint8Array.of(1, 2, 3, 4)),
  ];
  const stream = Buffer.concat(packets);

  it('splits a byte stream into frames whatever the chunking', () => {
    for (const size of [1, 3, 4, 7, 28, 100, 4096, stream.length]) {
      const framer = new PacketFramer();
      const frames: Uint8Array[] = [];
      for (let i = 0; i < stream.length; i += size) frames.push(...framer.push(stream.subarray(i, i + size)));
      expect(frames.map((f) => decodeFrame(f).header.serial)).toEqual([1, 2, 3]);
      expect(frames[1]?.length).toBe(24 + 5000);
      expect(framer.buffered).toBe(0);
    }
  });

  it('accepts a length word of exactly max + 4 and refuses max + 5 (as libvirtd does)', () => {
    const word = (n: number) => {
      const b = new Uint8Array(4);
      new DataView(b.buffer).setUint32(0, n);
      return b;
    };
    expect(new PacketFramer().push(word(MESSAGE_MAX + 4))).toEqual([]);
    expectProtocol(() => new PacketFramer().push(word(MESSAGE_MAX + 5)));
    expectProtocol(() => new PacketFramer(1024).push(word(1024 + 5)));
    expectProtocol(() => new PacketFramer().push(word(27)));
    expectProtocol(() => new PacketFramer().push(word(0)));
  });

  it('rejects misuse with TypeError', () => {
    expect(() => new PacketFramer(3)).toThrow(TypeError);
    expect(() => new PacketFramer().push('x' as unknown as Uint8Array)).toThrow(TypeError);
  });
});
