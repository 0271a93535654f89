/**
 * Test helper: a fake libvirtd on a loopback Unix socket, for behaviour no real daemon shows (hostile or
 * broken servers: endless streams, huge holes, oversized length words, trickling bytes, replies that never
 * come).
 *
 * Standalone, it answers the connect handshake itself (AUTH_LIST: none, CONNECT_SUPPORTS_FEATURE: yes,
 * CONNECT_OPEN, CONNECT_CLOSE, CONNECT_GET_URI, keepalive PING) and hands every other call to the test's
 * handler; a call nobody handles gets no reply. With `upstream` (a real daemon's socket) it is a proxy:
 * calls the handler does not take are forwarded, and the daemon's packets are passed back whole.
 */

import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HvkitError } from '@hvkit/core';
import { expect } from 'vitest';
import {
  KEEPALIVE_PROC,
  MESSAGE_STATUS,
  MESSAGE_TYPE,
  PROGRAM,
  REMOTE_PROC,
} from '../src/protocol/constants';
import { decodeFrame, encodePacket, PacketFramer, type PacketHeader } from '../src/protocol/packet';
import { XdrWriter } from '../src/protocol/xdr';

/** A CALL (or STREAM) packet the fake daemon received. */
export interface FakeCall {
  header: PacketHeader;
  payload: Uint8Array;
}

/** One client connection of the fake daemon. */
export interface FakeConnection {
  readonly socket: Socket;
  /** Sends one packet; false when the socket's buffer is full (wait for `drained()`). */
  send(header: PacketHeader, payload?: Uint8Array): boolean;
  /** Sends a REPLY/OK to `call`. */
  reply(call: FakeCall, payload?: Uint8Array): boolean;
  /** Sends a STREAM packet of `call`'s stream. */
  stream(call: FakeCall, status: number, payload?: Uint8Array): boolean;
  /** Sends a STREAM_HOLE packet of `length` bytes for `call`'s stream. */
  hole(call: FakeCall, length: bigint): boolean;
  /** Resolves once the socket's buffer has room again (or the socket closed). */
  drained(): Promise<void>;
  /** True once the client went away. */
  readonly closed: boolean;
}

/** Takes a packet from the client: true when handled (a proxy then does not forward it). */
export type FakeHandler = (call: FakeCall, connection: FakeConnection) => boolean | undefined;

/** Options of {@link startFakeLibvirtd}. */
export interface FakeLibvirtdOptions {
  /** Handles calls; default none. Can be replaced later through `FakeLibvirtd.handle`. */
  handle?: FakeHandler;
  /** A real daemon's socket path: proxy mode. */
  upstream?: string;
}

/** A running fake daemon. */
export interface FakeLibvirtd {
  /** Its socket path. */
  readonly path: string;
  /** A URI for it: `<driver>+unix:///<path>?socket=...` (default driver `test`, path `/default`). */
  uri(driver?: string, path?: string): string;
  /** The packets received from clients (CALL and STREAM), in order. */
  readonly calls: FakeCall[];
  handle: FakeHandler;
  close(): Promise<void>;
}

function header(call: FakeCall, type: number, status: number): PacketHeader {
  return { ...call.header, type, status } as PacketHeader;
}

/** Starts a fake daemon on a fresh Unix socket. */
export async function startFakeLibvirtd(options: FakeLibvirtdOptions = {}): Promise<FakeLibvirtd> {
  const dir = mkdtempSync(join(tmpdir(), 'hvkit-fake-libvirtd-'));
  const path = join(dir, 'libvirt-sock');
  const sockets = new Set<Socket>();
  const fake: FakeLibvirtd = {
    path,
    uri: (driver = 'test', at = '/default') => `${driver}+unix://${at}?socket=${path}`,
    calls: [],
    handle: options.handle ?? (() => false),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      rmSync(dir, { recursive: true, force: true });
    },
  };

  const server: Server = createServer((socket) => {
    sockets.add(socket);
    const upstream = options.upstream ? netConnect({ path: options.upstream }) : undefined;
    let closed = false;
    const end = () => {
      closed = true;
      socket.destroy();
      upstream?.destroy();
      sockets.delete(socket);
    };
    socket.on('close', end);
    socket.on('error', end);
    upstream?.on('close', end);
    upstream?.on('error', end);
    const connection: FakeConnection = {
      socket,
      get closed() {
        return closed || socket.destroyed;
      },
      send: (h, payload) => (socket.destroyed ? false : socket.write(encodePacket(h, payload))),
      reply: (call, payload) => connection.send(header(call, MESSAGE_TYPE.REPLY, MESSAGE_STATUS.OK), payload),
      stream: (call, status, payload) => connection.send(header(call, MESSAGE_TYPE.STREAM, status), payload),
      hole: (call, length) =>
        connection.send(
          header(call, MESSAGE_TYPE.STREAM_HOLE, MESSAGE_STATUS.CONTINUE),
          new XdrWriter().hyper(length).uint(0).bytes(),
        ),
      drained: async () => {
        if (socket.destroyed || !socket.writableNeedDrain) return;
        await Promise.race([once(socket, 'drain'), once(socket, 'close')]);
      },
    };
    const fromClient = new PacketFramer();
    socket.on('data', (chunk: Buffer) => {
      let frames: Uint8Array[];
      try {
        frames = fromClient.push(chunk);
      } catch {
        end();
        return;
      }
      for (const frame of frames) {
        const packet = decodeFrame(frame);
        const call: FakeCall = { header: packet.header, payload: Uint8Array.from(packet.payload) };
        if (call.header.program !== PROGRAM.KEEPALIVE) fake.calls.push(call);
        if (fake.handle(call, connection)) continue;
        if (upstream) {
          upstream.write(encodePacket(call.header, call.payload));
          continue;
        }
        answerHandshake(call, connection);
      }
    });
    if (upstream) {
      const fromDaemon = new PacketFramer();
      upstream.on('data', (chunk: Buffer) => {
        for (const frame of fromDaemon.push(chunk)) {
          const packet = decodeFrame(frame);
          connection.send(packet.header, packet.payload);
        }
      });
    }
  });
  server.listen(path);
  await once(server, 'listening');
  return fake;
}

/** The standalone daemon's own answers: enough to get a client past connect. */
function answerHandshake(call: FakeCall, connection: FakeConnection): void {
  const { program, procedure, type } = call.header;
  if (program === PROGRAM.KEEPALIVE) {
    if (procedure === KEEPALIVE_PROC.PING)
      connection.send({ ...call.header, procedure: KEEPALIVE_PROC.PONG } as PacketHeader);
    return;
  }
  if (program !== PROGRAM.REMOTE || type !== MESSAGE_TYPE.CALL) return;
  switch (procedure) {
    case REMOTE_PROC.AUTH_LIST:
      connection.reply(call, new XdrWriter().uint(1).int(0).bytes());
      return;
    case REMOTE_PROC.CONNECT_SUPPORTS_FEATURE:
      connection.reply(call, new XdrWriter().int(1).bytes());
      return;
    case REMOTE_PROC.CONNECT_OPEN:
    case REMOTE_PROC.CONNECT_CLOSE:
      connection.reply(call);
      return;
    case REMOTE_PROC.CONNECT_GET_URI:
      connection.reply(call, new XdrWriter().string('test:///default').bytes());
      return;
    default:
    // No reply: a call nobody handles waits for its deadline.
  }
}

/** Deterministic pseudo-random numbers (core's test helper), for seeded fuzz tests. */
export { prng } from '../../core/src/__test-utils__';

/** Awaits a promise that must reject with an HvkitError and returns the error. */
export async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  try {
    await promise;
  } catch (error) {
    expect(HvkitError.isInstance(error), `expected an HvkitError, got ${String(error)}`).toBe(true);
    return error as HvkitError;
  }
  throw new Error('expected a rejection');
}
