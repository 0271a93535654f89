/**
 * Read streams against a fake libvirtd that misbehaves: holes and data beyond the stream's bound, and
 * holes sent to a consumer that does not read.
 */

import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  type FakeCall,
  type FakeConnection,
  type FakeLibvirtd,
  rejection,
  startFakeLibvirtd,
} from '../../test/fake-libvirtd';
import { connectRpc } from '../connect';
import { MESSAGE_STATUS, MESSAGE_TYPE, REMOTE_PROC } from './constants';
import { remoteProcedures } from './remote-protocol';
import { isStreamHole } from './stream';

const VOL = { pool: 'default', name: 'disk.img', key: '/var/lib/libvirt/images/disk.img' };
const MiB = 1024 * 1024;

let fake: FakeLibvirtd | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

/** A fake daemon that accepts STORAGE_VOL_DOWNLOAD and then runs `stream` for it. */
async function downloadServer(stream: (call: FakeCall, c: FakeConnection) => Promise<void>) {
  fake = await startFakeLibvirtd({
    handle: (call, c) => {
      if (
        call.header.procedure !== REMOTE_PROC.STORAGE_VOL_DOWNLOAD ||
        call.header.type !== MESSAGE_TYPE.CALL
      )
        return false;
      c.reply(call);
      void stream(call, c);
      return true;
    },
  });
  return fake;
}

/** Sends `packet()` until the client goes away, with backpressure. */
async function endless(c: FakeConnection, packet: () => boolean): Promise<void> {
  while (!c.closed) if (!packet()) await c.drained();
}

describe('LibvirtReadStream bounds', () => {
  it('ends with PROTOCOL at a hole of 2^52 bytes beyond maxBytes, having yielded no more than maxBytes', async () => {
    const server = await downloadServer(async (call, c) => {
      c.stream(call, MESSAGE_STATUS.CONTINUE, new Uint8Array(1000));
      // 2^53 and more are refused as unsafe integers already; 2^52 is as good as endless.
      c.hole(call, 2n ** 52n);
    });
    await using client = await connectRpc({ uri: server.uri(), keepalive: false });
    const stream = await client.downloadVolume(VOL, { sparse: true, holes: 'zeros', maxBytes: 4 * MiB });
    let yielded = 0;
    const started = Date.now();
    const error = await rejection(
      (async () => {
        for await (const chunk of stream) {
          if (isStreamHole(chunk)) continue;
          yielded += chunk.byteLength;
          // Without a bound this would go on for 2^52 bytes: stop the test well past the bound.
          if (yielded > 8 * MiB) return;
        }
      })(),
    );
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toMatch(/more than the 4194304 bytes/);
    expect(yielded).toBeLessThanOrEqual(4 * MiB);
    expect(Date.now() - started).toBeLessThan(2000);
    // The server was told (STREAM/ERROR), and the connection still works.
    await vi.waitFor(
      () =>
        expect(
          server.calls.some(
            (p) => p.header.type === MESSAGE_TYPE.STREAM && p.header.status === MESSAGE_STATUS.ERROR,
          ),
        ).toBe(true),
      { timeout: 2000 },
    );
    expect(await client.call(remoteProcedures.CONNECT_GET_URI)).toBe('test:///default');
  });

  it('rejects an endless data stream as soon as it passes maxBytes', async () => {
    const server = await downloadServer((call, c) =>
      endless(c, () => c.stream(call, MESSAGE_STATUS.CONTINUE, new Uint8Array(64 * 1024))),
    );
    await using client = await connectRpc({ uri: server.uri(), keepalive: false });
    const stream = await client.downloadVolume(VOL, { maxBytes: MiB + 100 });
    let yielded = 0;
    const error = await rejection(
      (async () => {
        for await (const chunk of stream) {
          if (isStreamHole(chunk)) continue;
          yielded += chunk.byteLength;
          if (yielded > 64 * MiB) return;
        }
      })(),
    );
    expect(error.code).toBe('PROTOCOL');
    expect(yielded).toBeLessThanOrEqual(MiB + 100);
  });

  it('bounds a download by its length: more than `length` bytes is PROTOCOL', async () => {
    const server = await downloadServer((call, c) =>
      endless(c, () => c.stream(call, MESSAGE_STATUS.CONTINUE, new Uint8Array(4096))),
    );
    await using client = await connectRpc({ uri: server.uri(), keepalive: false });
    const stream = await client.downloadVolume(VOL, { length: 10_000 });
    let yielded = 0;
    const error = await rejection(
      (async () => {
        for await (const chunk of stream) {
          if (!isStreamHole(chunk)) yielded += chunk.byteLength;
          if (yielded > 64 * MiB) return;
        }
      })(),
    );
    expect(error.code).toBe('PROTOCOL');
    expect(yielded).toBeLessThanOrEqual(10_000);
  });

  it('counts holes toward the high-water mark: a stalled consumer stops reading the socket', async () => {
    let sent = 0;
    const server = await downloadServer((call, c) =>
      endless(c, () => {
        sent++;
        return c.hole(call, BigInt(MiB));
      }),
    );
    let holesRead = 0;
    await using client = await connectRpc({
      uri: server.uri(),
      keepalive: false,
      trace: (e) => {
        if (e.direction === 'receive' && e.header.type === MESSAGE_TYPE.STREAM_HOLE) holesRead++;
      },
    });
    const stream = await client.downloadVolume(VOL, { sparse: true, highWaterMark: 4 * MiB });
    // Nobody reads the stream for a while.
    await new Promise((r) => setTimeout(r, 1000));
    const queued = holesRead;
    stream.abort();
    console.log(`stalled consumer, 1 MiB holes: ${sent} sent, ${queued} read by the client in 1 s`);
    // 4 holes reach the mark; the rest of the socket chunk that carried them (≤ 64 KiB / 36 bytes) is
    // still decoded before the pause takes effect.
    expect(queued).toBeLessThan(4 + Math.ceil((64 * 1024) / 36) + 100);
  });
});
