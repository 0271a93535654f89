/**
 * The simulator's events: `event.inject` tokens, `event.from` blocking up to its timeout and answering as
 * soon as a mutator makes an event, EVENTS_LOST for a token that fell out of the log or comes from another
 * run, the empty token, and the hung mode. Then Xen Orchestra's `xen-api` client watches events on it
 * (inject token, initial fetch, event.from loop) and its `barrier()` (a pool other_config write it waits
 * to see as an event) resolves: an independent client agrees with the simulator's events.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Xapi } from 'xen-api';
import { startXapiSimulator, XAPI_SEED_DB_PATH, type XapiSimulator } from '../simulator';
import { SimApi, XapiFailure } from './api';
import { loadXmlDbDump } from './db';

async function api(settings: Partial<ConstructorParameters<typeof SimApi>[1]> = {}) {
  const a = new SimApi(await loadXmlDbDump(XAPI_SEED_DB_PATH), {
    username: 'root',
    password: 'pw',
    taskDelayMs: 0,
    ...settings,
  });
  const session = a.call('session.login_with_password', ['root', 'pw']) as string;
  const pool = (a.call('pool.get_all', [session]) as string[])[0] as string;
  const vm = [...a.db.table('VM')].find(([, r]) => r.name_label === 'hvkit-xen-vm1')?.[0] as string;
  return { a, session, pool, vm };
}

type FromResult = { events: { class: string; operation: string; ref: string }[]; token: string };

describe('simulator events', () => {
  it('event.from blocks until a mutator makes an event, then returns it with the new token', async () => {
    const { a, session, pool, vm } = await api();
    const token = a.call('event.inject', [session, 'pool', pool]) as string;
    const started = Date.now();
    const pending = a.callAsync('event.from', [session, ['vm'], token, 5]);
    setTimeout(() => a.call('VM.add_tags', [session, vm, 'evt']), 150);
    const result = (await pending) as FromResult;
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(result.events).toEqual([expect.objectContaining({ class: 'vm', operation: 'mod', ref: vm })]);
    expect(result.token).not.toBe(token);
    a.close();
  });

  it('event.from returns no events after its timeout, and only the classes asked for', async () => {
    const { a, session, pool } = await api();
    const token = a.call('event.inject', [session, 'pool', pool]) as string;
    a.call('pool.add_to_other_config', [session, pool, 'k', 'v']);
    const started = Date.now();
    const result = (await a.callAsync('event.from', [session, ['vm'], token, 0.3])) as FromResult;
    expect(result.events).toEqual([]);
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
    const pools = (await a.callAsync('event.from', [session, ['pool'], token, 0.3])) as FromResult;
    expect(pools.events.map((e) => `${e.class} ${e.operation}`)).toEqual(['pool mod']);
    a.close();
  });

  it('EVENTS_LOST for a token older than the log keeps, or from another simulator run', async () => {
    const { a, session, pool, vm } = await api({ eventLogSize: 2 });
    const token = a.call('event.inject', [session, 'pool', pool]) as string;
    for (const tag of ['a', 'b', 'c']) a.call('VM.add_tags', [session, vm, tag]);
    expect(() => a.call('event.from', [session, ['vm'], token, 0])).toThrow(XapiFailure);
    expect(() => a.call('event.from', [session, ['vm'], token, 0])).toThrow('EVENTS_LOST');
    const other = await api();
    const foreign = other.a.call('event.inject', [other.session, 'pool', other.pool]) as string;
    expect(() => a.call('event.from', [session, ['vm'], foreign, 0])).toThrow('EVENTS_LOST');
    a.close();
    other.a.close();
  });

  it('an empty token returns every object of the classes as add events', async () => {
    const { a, session } = await api();
    const result = a.call('event.from', [session, ['VM'], '', 0]) as FromResult;
    expect(result.events.length).toBe(a.db.table('VM').size);
    expect(new Set(result.events.map((e) => e.operation))).toEqual(new Set(['add']));
    a.close();
  });

  it('an Async call makes task add and mod events around the change', async () => {
    const { a, session, pool, vm } = await api();
    const token = a.call('event.inject', [session, 'pool', pool]) as string;
    a.call('Async.VM.add_tags', [session, vm, 'async']);
    const result = a.call('event.from', [session, ['vm', 'task'], token, 0]) as FromResult;
    expect(result.events.map((e) => `${e.class} ${e.operation}`)).toEqual(['task add', 'vm mod', 'task mod']);
    a.close();
  });

  it('a hung simulator answers nothing until it resumes', async () => {
    const { a, session } = await api({ hung: true });
    let answered = false;
    const pending = a.callAsync('pool.get_all', [session]).then((v) => {
      answered = true;
      return v;
    });
    await new Promise((r) => setTimeout(r, 200));
    expect(answered).toBe(false);
    a.hang(false);
    expect(await pending).toHaveLength(1);
    a.close();
  });
});

describe('xen-api (Xen Orchestra) watching the simulator events', () => {
  let sim: XapiSimulator;
  beforeAll(async () => {
    sim = await startXapiSimulator();
  });
  afterAll(() => sim.close());

  it('fetches the objects from the inject token and sees its own barrier and a VM change as events', async () => {
    const xapi = new Xapi({
      url: sim.url,
      auth: { user: sim.username, password: sim.password },
      watchEvents: true,
      allowUnauthorized: true,
    });
    await xapi.connect();
    try {
      await xapi.objectsFetched;
      const vmRef = (await xapi.call('VM.get_by_name_label', 'hvkit-xen-vm1')) as string[];
      const ref = vmRef[0] as string;
      await xapi.call('VM.add_tags', ref, 'seen-by-xo');
      const vm = (await xapi.barrier(ref)) as { tags: string[] };
      expect(vm.tags).toContain('seen-by-xo');
    } finally {
      await xapi.disconnect();
    }
  }, 30_000);
});
