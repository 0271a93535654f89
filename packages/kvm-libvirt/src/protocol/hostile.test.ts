/**
 * Hostile-server fuzz test of the libvirt RPC transport: a fake libvirtd on a loopback Unix socket gets the
 * client past connect, then answers each call or download with a behaviour drawn from a seeded generator:
 * an endless data stream, a hole of 2^52 bytes, endless hole packets, an oversized length word, a
 * 32 MiB frame that never completes, a reply trickled one byte per 100 ms, a reply that never comes, a
 * stream that goes silent. Every call must end within its deadline (plus a margin) with a typed HvkitError,
 * nothing past the stream's bound may be yielded, and the process's memory must stay under a bound.
 *
 * "Redirected" responses have no libvirt meaning: the protocol has no redirects (a URI names the daemon
 * once; nothing the daemon sends can point the client elsewhere), so that behaviour is not part of the mix.
 */

import { HvkitError } from '@hvkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { type FakeCall, type FakeConnection, prng, startFakeLibvirtd } from '../../test/fake-libvirtd';
import { connectRpc } from '../connect';
import { MESSAGE_STATUS, MESSAGE_TYPE, REMOTE_PROC } from './constants';
import { encodePacket } from './packet';
import { remoteProcedures } from './remote-protocol';
import { isStreamHole } from './stream';
import { XdrWriter } from './xdr';

const SEED = 0x9e3779b9;
const ITERATIONS = 40;
/** Deadlines the client is given. */
const CALL_TIMEOUT_MS = 400;
const IDLE_TIMEOUT_MS = 400;
/** Allowed lateness past a deadline (2 cores, shared with other tests). */
const MARGIN_MS = 700;
const MAX_BYTES = 1024 * 1024;
/** close() on a connection whose server never answers CONNECT_CLOSE (measured ~2 s). */
const CLOSE_BOUND_MS = 4000;
/** Bounds on memory growth over the whole run (measured: heap +16.5 MiB, rss +35 MiB at the peak). */
const HEAP_GROWTH_BOUND = 64 * 1024 * 1024;
const RSS_GROWTH_BOUND = 160 * 1024 * 1024;

const VOL = { pool: 'default', name: 'disk.img', key: '/var/lib/libvirt/images/disk.img' };

type Behaviour =
  | 'endless-data'
  | 'huge-hole'
  | 'endless-holes'
  | 'silent-stream'
  | 'oversized-length'
  | 'huge-frame-never-completes'
  | 'trickle-reply'
  | 'no-reply';
const STREAM_BEHAVIOURS: Behaviour[] = ['endless-data', 'huge-hole', 'endless-holes', 'silent-stream'];
const CALL_BEHAVIOURS: Behaviour[] = [
  'oversized-length',
  'huge-frame-never-completes',
  'trickle-reply',
  'no-reply',
];
const ALL = [...STREAM_BEHAVIOURS, ...CALL_BEHAVIOURS];

/** Sends `packet()` until the client goes away, with backpressure. */
async function endless(c: FakeConnection, packet: () => boolean): Promise<void> {
  while (!c.closed) if (!packet()) await c.drained();
}

/** Writes `bytes` one byte per 100 ms until done or the client goes away. */
async function trickle(c: FakeConnection, bytes: Uint8Array): Promise<void> {
  for (const byte of bytes) {
    if (c.closed) return;
    c.socket.write(Uint8Array.of(byte));
    await new Promise((r) => setTimeout(r, 100));
  }
}

function act(behaviour: Behaviour, call: FakeCall, c: FakeConnection): void {
  switch (behaviour) {
    case 'endless-data':
      c.reply(call);
      void endless(c, () => c.stream(call, MESSAGE_STATUS.CONTINUE, new Uint8Array(65_536)));
      return;
    case 'huge-hole':
      c.reply(call);
      c.hole(call, 2n ** 52n);
      return;
    case 'endless-holes':
      c.reply(call);
      void endless(c, () => c.hole(call, 4096n));
      return;
    case 'silent-stream':
      c.reply(call);
      c.stream(call, MESSAGE_STATUS.CONTINUE, new Uint8Array(100));
      return;
    case 'oversized-length':
      c.socket.write(Uint8Array.of(0x7f, 0xff, 0xff, 0xff));
      return;
    case 'huge-frame-never-completes': {
      // A valid length word of 32 MiB, a header, and then nothing more.
      const start = encodePacket({ ...call.header, type: MESSAGE_TYPE.REPLY, status: MESSAGE_STATUS.OK });
      new DataView(start.buffer).setUint32(0, 32 * 1024 * 1024);
      c.socket.write(start);
      return;
    }
    case 'trickle-reply':
      void trickle(
        c,
        encodePacket(
          { ...call.header, type: MESSAGE_TYPE.REPLY, status: MESSAGE_STATUS.OK },
          new XdrWriter().string('host.example').bytes(),
        ),
      );
      return;
    case 'no-reply':
      return;
  }
}

const EXPECTED: Record<Behaviour, string[]> = {
  'endless-data': ['PROTOCOL'],
  'huge-hole': ['PROTOCOL'],
  // 4 KiB holes: the bound is passed after 256 of them.
  'endless-holes': ['PROTOCOL'],
  'silent-stream': ['TIMEOUT'],
  'oversized-length': ['PROTOCOL', 'CONNECTION_LOST'],
  'huge-frame-never-completes': ['TIMEOUT'],
  'trickle-reply': ['TIMEOUT'],
  'no-reply': ['TIMEOUT'],
};

describe('kvm-libvirt RPC transport against a hostile fake libvirtd (seeded fuzz)', () => {
  const durations: number[] = [];
  const closeDurations: number[] = [];
  let heapPeak = 0;
  let rssPeak = 0;
  const sample = () => {
    const m = process.memoryUsage();
    heapPeak = Math.max(heapPeak, m.heapUsed);
    rssPeak = Math.max(rssPeak, m.rss);
  };
  const heapStart = process.memoryUsage().heapUsed;
  const rssStart = process.memoryUsage().rss;

  afterAll(() => {
    console.log(
      `hostile libvirtd: ${durations.length} calls, max duration ${Math.max(...durations)} ms ` +
        `(deadline ${CALL_TIMEOUT_MS} ms + ${MARGIN_MS} ms margin), max close() ${Math.max(...closeDurations)} ms, heap ${(heapStart / 2 ** 20).toFixed(1)} → peak ` +
        `${(heapPeak / 2 ** 20).toFixed(1)} MiB, rss ${(rssStart / 2 ** 20).toFixed(1)} → peak ${(rssPeak / 2 ** 20).toFixed(1)} MiB`,
    );
  });

  it(`every call of ${ITERATIONS} ends within its deadline with a typed error; memory stays bounded`, async () => {
    const rand = prng(SEED);
    let behaviour: Behaviour = 'no-reply';
    const fake = await startFakeLibvirtd({
      handle: (call, c) => {
        if (call.header.type !== MESSAGE_TYPE.CALL) return false;
        const p = call.header.procedure;
        if (p !== REMOTE_PROC.STORAGE_VOL_DOWNLOAD && p !== REMOTE_PROC.CONNECT_GET_HOSTNAME) return false;
        act(behaviour, call, c);
        return true;
      },
    });
    const timer = setInterval(sample, 20);
    try {
      for (let i = 0; i < ITERATIONS; i++) {
        behaviour = ALL[Math.floor(rand() * ALL.length)] as Behaviour;
        const client = await connectRpc({
          uri: fake.uri(),
          keepalive: false,
          callTimeoutMs: CALL_TIMEOUT_MS,
        });
        const started = Date.now();
        let yielded = 0;
        let outcome: unknown;
        try {
          if (STREAM_BEHAVIOURS.includes(behaviour)) {
            const stream = await client.downloadVolume(VOL, {
              sparse: true,
              holes: 'zeros',
              maxBytes: MAX_BYTES,
              idleTimeoutMs: IDLE_TIMEOUT_MS,
            });
            for await (const chunk of stream) {
              if (!isStreamHole(chunk)) yielded += chunk.byteLength;
              if (yielded > 64 * MAX_BYTES) break;
            }
          } else {
            await client.call(remoteProcedures.CONNECT_GET_HOSTNAME);
          }
          outcome = new Error('resolved');
        } catch (error) {
          outcome = error;
        }
        const took = Date.now() - started;
        durations.push(took);
        // close() has its own bound (it gives up waiting for CONNECT_CLOSE's reply).
        const closing = Date.now();
        await client.close().catch(() => {});
        closeDurations.push(Date.now() - closing);
        sample();
        const what = `iteration ${i} (${behaviour})`;
        expect(HvkitError.isInstance(outcome), `${what}: ${String(outcome)}`).toBe(true);
        expect(EXPECTED[behaviour], `${what}: ${String(outcome)}`).toContain((outcome as HvkitError).code);
        expect(took, what).toBeLessThan(Math.max(CALL_TIMEOUT_MS, IDLE_TIMEOUT_MS) + MARGIN_MS);
        expect(yielded, what).toBeLessThanOrEqual(MAX_BYTES);
        expect(closeDurations.at(-1), `${what}: close()`).toBeLessThan(CLOSE_BOUND_MS);
      }
    } finally {
      clearInterval(timer);
      await fake.close();
    }
    expect(heapPeak - heapStart).toBeLessThan(HEAP_GROWTH_BOUND);
    expect(rssPeak - rssStart).toBeLessThan(RSS_GROWTH_BOUND);
  }, 60_000);
});
