/**
 * The event router against a fake libvirtd on loopback: an event that overtakes the reply of its
 * registration still reaches the subscription, events of other callbacks do not, and closing deregisters.
 */

import { afterEach, describe, expect, it } from 'vitest';
import { type FakeConnection, type FakeLibvirtd, startFakeLibvirtd } from '../../test/fake-libvirtd';
import { connectRpc } from '../connect';
import {
  DOMAIN_EVENT,
  MESSAGE_STATUS,
  MESSAGE_TYPE,
  PROGRAM,
  PROTOCOL_VERSION,
  REMOTE_PROC,
} from './constants';
import { isDomainEventResync } from './events';
import { writeDomain } from './types';
import { XdrReader, XdrWriter } from './xdr';

let fake: FakeLibvirtd | undefined;
afterEach(async () => {
  await fake?.close();
  fake = undefined;
});

const DOM = { name: 'web1', uuid: '0a1b2c3d-0000-4000-8000-000000000001', id: 3 };

/** The header of a lifecycle event MESSAGE. */
const event = {
  program: PROGRAM.REMOTE,
  version: PROTOCOL_VERSION,
  procedure: REMOTE_PROC.DOMAIN_EVENT_CALLBACK_LIFECYCLE,
  type: MESSAGE_TYPE.MESSAGE,
  serial: 1,
  status: MESSAGE_STATUS.OK,
} as const;

function lifecycle(callbackId: number, event: number): Uint8Array {
  const w = new XdrWriter().int(callbackId);
  writeDomain(w, DOM);
  return w.int(event).int(0).bytes();
}

describe('events: registration and dispatch', () => {
  it('delivers an event that arrives before its registration reply, and only events of its callback', async () => {
    const deregistered: number[] = [];
    fake = await startFakeLibvirtd({
      handle: (call, c) => {
        if (call.header.type !== MESSAGE_TYPE.CALL) return false;
        if (call.header.procedure === REMOTE_PROC.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY) {
          // Overtakes the reply; another registration's event comes too.
          c.send(event, lifecycle(7, DOMAIN_EVENT.STARTED));
          c.send(event, lifecycle(8, DOMAIN_EVENT.STOPPED));
          c.reply(call, new XdrWriter().int(7).bytes());
          c.send(event, lifecycle(7, DOMAIN_EVENT.SUSPENDED));
          return true;
        }
        if (call.header.procedure === REMOTE_PROC.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY) {
          deregistered.push(new XdrReader(call.payload).int());
          c.reply(call);
          return true;
        }
        return false;
      },
    });
    await using client = await connectRpc({ uri: fake.uri(), keepalive: false });
    // The signal bounds the iteration: a lost event fails the test instead of hanging it.
    const subscription = await client.subscribeDomainLifecycle({ signal: AbortSignal.timeout(5000) });
    expect(subscription.callbackId).toBe(7);
    const seen: number[] = [];
    for await (const event of subscription) {
      if (isDomainEventResync(event)) throw new Error('no resync expected');
      expect(event.callbackId).toBe(7);
      expect(event.dom).toEqual(DOM);
      seen.push(event.event);
      if (seen.length === 2) break;
    }
    expect(seen).toEqual([DOMAIN_EVENT.STARTED, DOMAIN_EVENT.SUSPENDED]);
    expect(subscription.closed).toBe(true);
    expect(deregistered).toEqual([7]);
    expect(client.stats().eventsReceived).toBe(3);
  });

  it('shares one daemon registration between subscriptions, gives each every event, and deregisters after the last', async () => {
    const registered: number[] = [];
    const deregistered: number[] = [];
    let conn: FakeConnection | undefined;
    fake = await startFakeLibvirtd({
      handle: (call, c) => {
        if (call.header.type !== MESSAGE_TYPE.CALL) return false;
        if (call.header.procedure === REMOTE_PROC.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY) {
          conn = c;
          registered.push(call.header.serial);
          c.reply(call, new XdrWriter().int(4).bytes());
          return true;
        }
        if (call.header.procedure === REMOTE_PROC.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY) {
          deregistered.push(new XdrReader(call.payload).int());
          c.reply(call);
          return true;
        }
        return false;
      },
    });
    await using client = await connectRpc({ uri: fake.uri(), keepalive: false });
    const signal = AbortSignal.timeout(5000);
    const [a, b] = await Promise.all([
      client.subscribeDomainLifecycle({ signal }),
      client.subscribeDomainLifecycle({ signal }),
    ]);
    expect(registered).toHaveLength(1);
    expect(a.callbackId).toBe(4);
    expect(b.callbackId).toBe(4);
    conn?.send(event, lifecycle(4, DOMAIN_EVENT.STARTED));
    conn?.send(event, lifecycle(4, DOMAIN_EVENT.STOPPED));
    const firstTwo = async (sub: typeof a) => {
      const seen: number[] = [];
      for await (const e of sub) {
        if (isDomainEventResync(e)) throw new Error('no resync expected');
        seen.push(e.event);
        if (seen.length === 2) break;
      }
      return seen;
    };
    expect(await firstTwo(a)).toEqual([DOMAIN_EVENT.STARTED, DOMAIN_EVENT.STOPPED]);
    // The first one out leaves the registration in place for the other.
    expect(deregistered).toEqual([]);
    expect(await firstTwo(b)).toEqual([DOMAIN_EVENT.STARTED, DOMAIN_EVENT.STOPPED]);
    expect(deregistered).toEqual([4]);
  });

  it('announces dropped events with a resync item (overflow) before the events it kept', async () => {
    fake = await startFakeLibvirtd({
      handle: (call, c) => {
        if (call.header.type !== MESSAGE_TYPE.CALL) return false;
        if (call.header.procedure === REMOTE_PROC.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY) {
          c.reply(call, new XdrWriter().int(9).bytes());
          for (const e of [0, 2, 3, 4, 5]) c.send(event, lifecycle(9, e));
          return true;
        }
        if (call.header.procedure === REMOTE_PROC.CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY) {
          c.reply(call);
          return true;
        }
        return false;
      },
    });
    await using client = await connectRpc({ uri: fake.uri(), keepalive: false });
    const sub = await client.subscribeDomainLifecycle({ bufferSize: 2, signal: AbortSignal.timeout(5000) });
    while (client.stats().eventsReceived < 5) await new Promise((r) => setTimeout(r, 5));
    const items: string[] = [];
    for await (const item of sub) {
      items.push(isDomainEventResync(item) ? `resync:${item.reason}` : String(item.event));
      if (items.length === 3) break;
    }
    expect(items).toEqual(['resync:overflow', '4', '5']);
    expect(sub.dropped).toBe(3);
  });
});
