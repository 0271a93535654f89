/**
 * The call table against a fake libvirtd on loopback: the slot limit at the daemon, the queue in front of
 * it, abandoned calls holding their slot until their late reply, and replies that name the wrong procedure.
 */

import { afterEach, describe, expect, it } from 'vitest';
import {
  type FakeCall,
  type FakeConnection,
  type FakeLibvirtd,
  rejection,
  startFakeLibvirtd,
} from '../../test/fake-libvirtd';
import { connectRpc } from '../connect';
import { MESSAGE_TYPE, PROGRAM, REMOTE_PROC } from './constants';
import { remoteProcedures } from './remote-protocol';
import { XdrWriter } from './xdr';

let fake: FakeLibvirtd | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

/** A fake daemon that holds every CONNECT_GET_HOSTNAME call until the test answers it. */
async function holdingServer() {
  const held: { call: FakeCall; c: FakeConnection }[] = [];
  fake = await startFakeLibvirtd({
    handle: (call, c) => {
      if (
        call.header.type !== MESSAGE_TYPE.CALL ||
        call.header.procedure !== REMOTE_PROC.CONNECT_GET_HOSTNAME
      )
        return false;
      held.push({ call, c });
      return true;
    },
  });
  return { fake, held };
}

const hostname = (name: string) => new XdrWriter().string(name).bytes();

async function until(condition: () => boolean): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error('condition not reached within 5 s');
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

describe('calls: slots, queue and late replies', () => {
  it('keeps at most maxInFlight calls at the daemon; an abandoned call keeps its slot until its late reply', async () => {
    const { fake, held } = await holdingServer();
    await using client = await connectRpc({ uri: fake.uri(), maxInFlight: 2, keepalive: false });
    const controller = new AbortController();
    const first = client.call(remoteProcedures.CONNECT_GET_HOSTNAME, undefined, {
      signal: controller.signal,
    });
    const second = client.call(remoteProcedures.CONNECT_GET_HOSTNAME);
    const third = client.call(remoteProcedures.CONNECT_GET_HOSTNAME);
    await until(() => held.length === 2);
    expect(client.stats()).toMatchObject({ inFlight: 2, queued: 1 });

    controller.abort();
    expect((await rejection(first)).code).toBe('ABORTED');
    // The daemon still holds the first request: the third call keeps waiting.
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(held.length).toBe(2);
    expect(client.stats()).toMatchObject({ inFlight: 2, queued: 1, lateReplies: 0 });

    const [a, b] = held as [(typeof held)[0], (typeof held)[0]];
    a.c.reply(a.call, hostname('late'));
    await until(() => held.length === 3);
    expect(client.stats()).toMatchObject({ inFlight: 2, queued: 0, lateReplies: 1 });
    // The freed slot went to the third call, which was encoded once and got a fresh serial.
    const serials = held.map((h) => h.call.header.serial);
    expect(new Set(serials).size).toBe(3);

    b.c.reply(b.call, hostname('two'));
    const c3 = held[2] as (typeof held)[0];
    c3.c.reply(c3.call, hostname('three'));
    expect(await second).toBe('two');
    expect(await third).toBe('three');
    expect(client.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });

  it('fails a call whose reply names another procedure with PROTOCOL and frees its slot', async () => {
    const { fake, held } = await holdingServer();
    await using client = await connectRpc({ uri: fake.uri(), maxInFlight: 1, keepalive: false });
    const wrong = client.call(remoteProcedures.CONNECT_GET_HOSTNAME);
    const next = client.call(remoteProcedures.CONNECT_GET_HOSTNAME);
    await until(() => held.length === 1);
    const h = held[0] as (typeof held)[0];
    h.c.send(
      { ...h.call.header, type: MESSAGE_TYPE.REPLY, procedure: REMOTE_PROC.CONNECT_GET_URI },
      hostname('x'),
    );
    const error = await rejection(wrong);
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toContain(
      `reply for serial ${h.call.header.serial} names procedure ${REMOTE_PROC.CONNECT_GET_URI}`,
    );
    await until(() => held.length === 2);
    const h2 = held[1] as (typeof held)[0];
    h2.c.reply(h2.call, hostname('ok'));
    expect(await next).toBe('ok');
    expect(client.closed).toBe(false);
  });

  it('refuses an oversized call with INVALID_ARGUMENT before anything is sent', async () => {
    const { fake } = await holdingServer();
    await using client = await connectRpc({ uri: fake.uri(), maxMessageBytes: 1024, keepalive: false });
    const before = fake.calls.length;
    const error = await rejection(
      client.callRaw(PROGRAM.REMOTE, REMOTE_PROC.CONNECT_GET_HOSTNAME, new Uint8Array(2048)),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(fake.calls.length).toBe(before);
    expect(client.stats()).toMatchObject({ inFlight: 0, queued: 0 });
  });
});
