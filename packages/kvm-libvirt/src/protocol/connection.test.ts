/**
 * The connection part against a fake libvirtd on loopback: keepalive both ways and the dead-peer
 * detection, which fails pending calls and tells the close listeners.
 */

import type { HvkitError } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeCall, type FakeLibvirtd, rejection, startFakeLibvirtd } from '../../test/fake-libvirtd';
import { connectRpc } from '../connect';
import {
  KEEPALIVE_PROC,
  MESSAGE_STATUS,
  MESSAGE_TYPE,
  PROGRAM,
  PROTOCOL_VERSION,
  REMOTE_PROC,
} from './constants';
import { remoteProcedures } from './remote-protocol';

let fake: FakeLibvirtd | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

describe('connection: keepalive and dead-peer detection', () => {
  it('closes a connection whose peer stops answering after intervalMs × countMax, failing pending calls', async () => {
    let silent = false;
    fake = await startFakeLibvirtd({
      handle: (call) =>
        // Once silent, the daemon neither answers PINGs nor calls.
        silent &&
        (call.header.program === PROGRAM.KEEPALIVE ||
          call.header.procedure === REMOTE_PROC.CONNECT_GET_HOSTNAME),
    });
    const client = await connectRpc({ uri: fake.uri(), keepalive: { intervalMs: 40, countMax: 3 } });
    try {
      expect(client.keepaliveActive).toBe(true);
      const closes: (HvkitError | undefined)[] = [];
      client.onClose((error) => closes.push(error));
      silent = true;
      const started = Date.now();
      const pending = client.call(remoteProcedures.CONNECT_GET_HOSTNAME, undefined, { timeoutMs: 10_000 });
      const error = await rejection(pending);
      const elapsed = Date.now() - started;
      expect(error.code).toBe('CONNECTION_LOST');
      expect(error.message).toMatch(
        /rpc\.CONNECT_GET_HOSTNAME: libvirt connection to .* is dead: no answer to keepalive/,
      );
      // The raw client does not reconnect by default: the same client cannot succeed any more.
      expect(error.retryable).toBe(false);
      // 40 ms × 3 of silence, checked every 10 ms; far below the call's own 10 s deadline.
      expect(elapsed).toBeGreaterThanOrEqual(100);
      expect(elapsed).toBeLessThan(2000);
      expect(client.closed).toBe(true);
      expect(client.keepaliveActive).toBe(false);
      expect(client.closeReason?.code).toBe('CONNECTION_LOST');
      expect(closes).toEqual([client.closeReason]);
      expect(client.stats().pingsSent).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('answers a PING of the daemon with a PONG (program keepalive, serial 0) and counts both', async () => {
    const pongs: FakeCall[] = [];
    fake = await startFakeLibvirtd({
      handle: (call, c) => {
        if (call.header.program === PROGRAM.KEEPALIVE && call.header.procedure === KEEPALIVE_PROC.PONG) {
          pongs.push(call);
          return true;
        }
        if (call.header.procedure === REMOTE_PROC.CONNECT_GET_HOSTNAME) {
          c.send({
            program: PROGRAM.KEEPALIVE,
            version: PROTOCOL_VERSION,
            procedure: KEEPALIVE_PROC.PING,
            type: MESSAGE_TYPE.MESSAGE,
            serial: 0,
            status: MESSAGE_STATUS.OK,
          });
          return false;
        }
        return false;
      },
    });
    await using client = await connectRpc({ uri: fake.uri(), keepalive: false });
    // The fake's PING goes out before the call's (absent) reply; the call just times out.
    await rejection(client.call(remoteProcedures.CONNECT_GET_HOSTNAME, undefined, { timeoutMs: 200 }));
    expect(pongs).toHaveLength(1);
    expect(pongs[0]?.header).toMatchObject({
      serial: 0,
      type: MESSAGE_TYPE.MESSAGE,
      status: MESSAGE_STATUS.OK,
    });
    expect(client.stats()).toMatchObject({ pingsReceived: 1, pongsSent: 1, pingsSent: 0 });
    expect(client.closed).toBe(false);
  });
});
