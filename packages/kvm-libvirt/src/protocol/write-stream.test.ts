/**
 * Write streams (STORAGE_VOL_UPLOAD) against a fake libvirtd on loopback, for what a real daemon does not
 * show on demand: a daemon that stops reading (TIMEOUT), one that fails the stream with an error, one that
 * sends data on an upload (PROTOCOL), one that never confirms the end; and the packets the client sends.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { type FakeCall, type FakeLibvirtd, rejection, startFakeLibvirtd } from '../../test/fake-libvirtd';
import { connectRpc } from '../connect';
import { LEGACY_PAYLOAD_MAX, MESSAGE_STATUS, MESSAGE_TYPE, REMOTE_PROC } from './constants';
import { remoteProcedures } from './remote-protocol';
import type { RemoteStorageVol } from './types';
import { XdrReader, XdrWriter } from './xdr';

const VOL: RemoteStorageVol = { pool: 'default', name: 'v.img', key: '/pool/v.img' };

let fake: FakeLibvirtd | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

/** The STREAM and STREAM_HOLE packets the client sent for the upload `call`. */
function streamPackets(f: FakeLibvirtd, call: FakeCall) {
  return f.calls.filter(
    (c) =>
      c.header.serial === call.header.serial &&
      (c.header.type === MESSAGE_TYPE.STREAM || c.header.type === MESSAGE_TYPE.STREAM_HOLE),
  );
}

function remoteError(message: string): Uint8Array {
  // remote_error: code, domain, message (string*), level, dom*, str1*, str2*, str3*, int1, int2, net*
  const w = new XdrWriter();
  w.int(38, 'code');
  w.int(18, 'domain');
  w.optString(message);
  w.int(2, 'level');
  w.uint(0, 'dom');
  w.optString(null);
  w.optString(null);
  w.optString(null);
  w.int(0, 'int1');
  w.int(0, 'int2');
  w.uint(0, 'net');
  return w.bytes();
}

describe('LibvirtWriteStream', () => {
  it('sends data in packets of at most 262120 bytes, holes as STREAM_HOLE, then OK; resolves on the OK reply', async () => {
    let upload: FakeCall | undefined;
    fake = await startFakeLibvirtd({
      handle: (call, conn) => {
        if (call.header.procedure !== REMOTE_PROC.STORAGE_VOL_UPLOAD) return false;
        if (call.header.type === 0) {
          upload = call;
          conn.reply(call);
        } else if (call.header.type === MESSAGE_TYPE.STREAM && call.header.status === MESSAGE_STATUS.OK) {
          conn.stream(call, MESSAGE_STATUS.OK);
        }
        return true;
      },
    });
    await using client = await connectRpc({ uri: fake.uri() });
    const stream = await client.uploadVolume(VOL, { sparse: true });
    await stream.write(new Uint8Array(LEGACY_PAYLOAD_MAX + 10).fill(1));
    await stream.hole(1 << 20);
    await stream.write(new Uint8Array([2, 3]));
    await stream.finish();
    expect(stream.finished).toBe(true);
    expect(stream.bytesSent).toBe(LEGACY_PAYLOAD_MAX + 10 + (1 << 20) + 2);
    const sent = streamPackets(fake, upload as FakeCall);
    expect(sent.map((p) => [p.header.type, p.header.status, p.payload.length])).toEqual([
      [MESSAGE_TYPE.STREAM, MESSAGE_STATUS.CONTINUE, LEGACY_PAYLOAD_MAX],
      [MESSAGE_TYPE.STREAM, MESSAGE_STATUS.CONTINUE, 10],
      [MESSAGE_TYPE.STREAM_HOLE, MESSAGE_STATUS.CONTINUE, 12],
      [MESSAGE_TYPE.STREAM, MESSAGE_STATUS.CONTINUE, 2],
      [MESSAGE_TYPE.STREAM, MESSAGE_STATUS.OK, 0],
    ]);
    const hole = new XdrReader((sent[2] as FakeCall).payload);
    expect(hole.hyper()).toBe(1n << 20n);
    expect(hole.uint()).toBe(0);
    // The call asked for a sparse stream (flags 1).
    const args = new XdrReader((upload as FakeCall).payload);
    args.string();
    args.string();
    args.string();
    expect([args.uhyper(), args.uhyper(), args.uint()]).toEqual([0n, 0n, 1]);
  });

  it("the daemon's STREAM/ERROR fails the next write with the mapped libvirt error", async () => {
    fake = await startFakeLibvirtd({
      handle: (call, conn) => {
        if (call.header.procedure !== REMOTE_PROC.STORAGE_VOL_UPLOAD) return false;
        if (call.header.type === 0) conn.reply(call);
        else conn.stream(call, MESSAGE_STATUS.ERROR, remoteError('Unable to write: No space left on device'));
        return true;
      },
    });
    await using client = await connectRpc({ uri: fake.uri() });
    const stream = await client.uploadVolume(VOL);
    await stream.write(new Uint8Array(10)).catch(() => {});
    const error = await rejection(
      (async () => {
        for (let i = 0; i < 50; i++) await stream.write(new Uint8Array(10));
        await stream.finish();
      })(),
    );
    expect(error.message).toMatch(/No space left on device/);
    expect(stream.finished).toBe(true);
    // The connection still answers.
    expect(await client.call(remoteProcedures.CONNECT_GET_URI)).toMatch(/^test:/);
  });

  it('data from the daemon on an upload is PROTOCOL, and the client aborts the stream', async () => {
    let upload: FakeCall | undefined;
    fake = await startFakeLibvirtd({
      handle: (call, conn) => {
        if (call.header.procedure !== REMOTE_PROC.STORAGE_VOL_UPLOAD) return false;
        if (call.header.type === 0) {
          upload = call;
          conn.reply(call);
          conn.stream(call, MESSAGE_STATUS.CONTINUE, new Uint8Array([1, 2, 3]));
        }
        return true;
      },
    });
    await using client = await connectRpc({ uri: fake.uri() });
    const stream = await client.uploadVolume(VOL);
    await new Promise((r) => setTimeout(r, 50));
    const error = await rejection(stream.write(new Uint8Array(1)));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toMatch(/unexpected stream packet/);
    const sent = streamPackets(fake, upload as FakeCall);
    expect(sent.at(-1)?.header.status).toBe(MESSAGE_STATUS.ERROR);
  });

  it('a daemon that never confirms the end: finish() fails with TIMEOUT after idleTimeoutMs', async () => {
    fake = await startFakeLibvirtd({
      handle: (call, conn) => {
        if (call.header.procedure !== REMOTE_PROC.STORAGE_VOL_UPLOAD) return false;
        if (call.header.type === 0) conn.reply(call);
        return true;
      },
    });
    await using client = await connectRpc({ uri: fake.uri() });
    const stream = await client.uploadVolume(VOL, { idleTimeoutMs: 150 });
    await stream.write(new Uint8Array(100));
    const started = Date.now();
    const error = await rejection(stream.finish());
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('a daemon that stops reading: a write fails with TIMEOUT instead of hanging', async () => {
    fake = await startFakeLibvirtd({
      handle: (call, conn) => {
        if (call.header.procedure !== REMOTE_PROC.STORAGE_VOL_UPLOAD) return false;
        if (call.header.type === 0) {
          conn.reply(call);
          // From now on the daemon reads nothing of this client.
          setImmediate(() => conn.socket.pause());
        }
        return true;
      },
    });
    await using client = await connectRpc({ uri: fake.uri(), keepalive: false });
    const stream = await client.uploadVolume(VOL, { idleTimeoutMs: 300 });
    const error = await rejection(
      (async () => {
        for (let i = 0; i < 10_000; i++) await stream.write(new Uint8Array(LEGACY_PAYLOAD_MAX));
      })(),
    );
    expect(error.code).toBe('TIMEOUT');
    expect(stream.finished).toBe(true);
  });

  it('misuse: overlapping writes, holes without sparse, bad lengths are TypeErrors', async () => {
    fake = await startFakeLibvirtd({
      handle: (call, conn) => {
        if (call.header.procedure !== REMOTE_PROC.STORAGE_VOL_UPLOAD) return false;
        if (call.header.type === 0) conn.reply(call);
        return true;
      },
    });
    await using client = await connectRpc({ uri: fake.uri() });
    const plain = await client.uploadVolume(VOL);
    await expect(plain.hole(5)).rejects.toThrow(TypeError);
    await expect(plain.write('x' as unknown as Uint8Array)).rejects.toThrow(TypeError);
    const sparse = await client.uploadVolume(VOL, { sparse: true });
    await expect(sparse.hole(-1)).rejects.toThrow(TypeError);
    const first = sparse.write(new Uint8Array(10));
    await expect(sparse.write(new Uint8Array(10))).rejects.toThrow(TypeError);
    await first;
    plain.abort();
    sparse.abort();
  });
});
