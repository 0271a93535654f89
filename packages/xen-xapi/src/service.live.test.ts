/**
 * The xen-xapi adapter as a long-running service, against a PRIVATE XAPI simulator this file starts (seed
 * database, any free port), kills (closes, dropping every connection) and restarts on the same port with
 * new sessions, and hangs (`hang(true)`: calls accepted, never answered, as a stopped toolstack): the
 * per-call timeout of `connect({ timeoutMs })`, connection state across a restart, the event stream's
 * resync notices (`reconnected`, `overflow`), reconnect off, an auth failure on re-login, the deadline of
 * connect and the bound of close() against a hung host. The measured timings are printed (docs/
 * architecture.md, "Running as a service"). The shared simulator peer is never touched.
 */

import {
  drainEvents as drain,
  liveMode,
  runAdapterConformance,
  waitUntil as until,
} from '@hvkit/conformance';
import { type ConnectionStateChange, type GuestEvent, HvkitError, isResyncEvent } from '@hvkit/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type XenXapiProbe, xenXapiProbe } from '../test/probe';
import { connect, type XenXapiAdapter, type XenXapiOptions } from './connect';
import {
  startXapiSimulator,
  XAPI_SIMULATOR_DEFAULT_PASSWORD,
  type XapiSimulator,
  type XapiSimulatorOptions,
} from './simulator';

const enabled = liveMode() !== 'off';
const SKIP_REASON = 'HVKIT_LIVE=off: the private-simulator service tests are disabled';

/** A private simulator that can be killed, restarted on the same port, and hung. */
class PrivateSim {
  sim: XapiSimulator | undefined;
  port = 0;
  constructor(readonly options: XapiSimulatorOptions = {}) {}
  get url(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  get current(): XapiSimulator {
    if (!this.sim) throw new Error('the private simulator is not running');
    return this.sim;
  }
  async start(extra: XapiSimulatorOptions = {}): Promise<void> {
    if (this.sim) return;
    this.sim = await startXapiSimulator({ ...this.options, ...extra, port: this.port });
    this.port = Number(new URL(this.sim.url).port);
  }
  async kill(): Promise<void> {
    const sim = this.sim;
    this.sim = undefined;
    await sim?.close();
  }
  async restart(extra: XapiSimulatorOptions = {}): Promise<void> {
    await this.kill();
    await this.start(extra);
  }
  options_(): Pick<XenXapiOptions, 'url' | 'username' | 'password' | 'insecureHttp'> {
    return { url: this.url, username: 'root', password: this.current.password, insecureHttp: true };
  }
}

/** One JSON-RPC call as a second client (logs in each time). */
async function asOtherClient(sim: PrivateSim, method: string, params: unknown[]): Promise<unknown> {
  const rpc = async (m: string, p: unknown[]) => {
    const res = await fetch(`${sim.url}/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method: m, params: p, id: 1 }),
    });
    const body = (await res.json()) as { result?: unknown; error?: unknown };
    if (body.error) throw new Error(`${m}: ${JSON.stringify(body.error)}`);
    return body.result;
  };
  const session = await rpc('session.login_with_password', ['root', sim.current.password]);
  try {
    return await rpc(method, [session, ...params]);
  } finally {
    await rpc('session.logout', [session]);
  }
}

/** Power-cycles the first guest through another client: `stopped` then `started` (or the reverse). */
async function poke(sim: PrivateSim, hv: XenXapiAdapter): Promise<void> {
  const [guest] = await hv.inventory.listGuests();
  if (!guest) throw new Error('the simulator has no guest');
  const ref = await asOtherClient(sim, 'VM.get_by_uuid', [guest.id]);
  const state = await asOtherClient(sim, 'VM.get_power_state', [ref]);
  const steps = state === 'Running' ? ['VM.hard_shutdown', 'VM.start'] : ['VM.start', 'VM.hard_shutdown'];
  for (const step of steps) await asOtherClient(sim, step, step === 'VM.start' ? [ref, false, false] : [ref]);
}

/** An open subscription that has received a first event (a power cycle); `stop()` aborts it and says how it ended. */
async function watching(sim: PrivateSim, hv: XenXapiAdapter) {
  const controller = new AbortController();
  const events: GuestEvent[] = [];
  const ended = drain(hv.events.subscribe({ signal: controller.signal }), events);
  await poke(sim, hv);
  await until('an event', () => events.length > 0);
  return {
    events,
    stop: () => {
      controller.abort();
      return ended;
    },
  };
}

/** The subscription goes on: a resync notice with `detail`, then events of a new power cycle. */
async function expectResumed(sim: PrivateSim, hv: XenXapiAdapter, events: GuestEvent[], detail: string) {
  await until('the resync notice', () => events.some(isResyncEvent), 30_000);
  expect(events.find(isResyncEvent)).toMatchObject({ type: 'resync', detail });
  const from = events.length;
  await poke(sim, hv);
  await until('events after the resync', () => events.length > from);
}

const timings: Record<string, string> = {};

describe.skipIf(!enabled)('xen-xapi as a service (private simulator)', () => {
  const sim = new PrivateSim();
  const adapters: XenXapiAdapter[] = [];
  const open = async (options: Partial<XenXapiOptions> = {}) => {
    const a = await connect({ ...sim.options_(), ...options });
    adapters.push(a);
    return a;
  };

  beforeAll(async () => {
    await sim.start();
  });
  afterEach(async () => {
    for (const a of adapters.splice(0)) await a.close();
    await sim.restart();
  });
  afterAll(async () => {
    await sim.kill();
    console.log('xen-xapi service timings:', JSON.stringify(timings, null, 1));
  });

  it('a call is bounded by connect({ timeoutMs }), not by a shorter default: 40 s lets a 31 s stall finish', async () => {
    const hv = await open({ timeoutMs: 40_000 });
    await hv.inventory.listGuests();
    sim.current.hang(true);
    const timer = setTimeout(() => sim.sim?.hang(false), 31_000);
    try {
      const guests = await hv.inventory.listGuests();
      expect(guests.length).toBeGreaterThan(0);
    } finally {
      clearTimeout(timer);
      sim.sim?.hang(false);
    }
  }, 60_000);

  it('reports reconnecting while the host is down, answers again after its restart (new sessions), and the subscription resumes with a resync notice', async () => {
    const hv = await open();
    expect(hv.connection.state).toBe('open');
    const changes: ConnectionStateChange[] = [];
    hv.connection.onChange((c) => changes.push(c));
    const { events, stop } = await watching(sim, hv);
    const killedAt = Date.now();
    await sim.kill();
    const failed = await hv.inventory.listGuests({ timeoutMs: 5000 }).catch((e: unknown) => e);
    expect(failed).toMatchObject({ code: 'CONNECTION_LOST', retryable: true });
    await until('reconnecting', () => hv.connection.state === 'reconnecting');
    timings['killed host noticed (ms)'] = String(Date.now() - killedAt);
    const waiting = hv.inventory.listGuests({ timeoutMs: 30_000 });
    await sim.start();
    const restartedAt = Date.now();
    const guests = await waiting;
    expect(guests.length).toBeGreaterThan(0);
    await until('open', () => hv.connection.state === 'open');
    timings['back to open after the restart (ms)'] = String(Date.now() - restartedAt);
    expect(changes.map((c) => c.state)).toEqual(['reconnecting', 'open']);
    expect(changes[0]?.error).toMatchObject({ code: 'CONNECTION_LOST' });
    await expectResumed(sim, hv, events, 'reconnected');
    expect(await stop()).toBe('done');
  }, 90_000);

  it('a toolstack restart between calls (SESSION_INVALID, a token of the old run) resumes the subscription with a resync notice', async () => {
    const hv = await open();
    const { events, stop } = await watching(sim, hv);
    // Sessions gone, event log of a new run: the pending poll ends (its connection drops), the next
    // one uses the old session and token.
    await sim.restart();
    await expectResumed(sim, hv, events, 'reconnected');
    expect(hv.connection.state).toBe('open');
    expect(await stop()).toBe('done');
  }, 60_000);

  it('EVENTS_LOST (the token fell out of the host event log) refetches and yields a resync notice (overflow), then events go on', async () => {
    await sim.restart({ eventLogSize: 2 });
    const hv = await open();
    const { events, stop } = await watching(sim, hv);
    // One Async call makes three events at once (task added, VM changed, task done): more than the log keeps.
    const [guest] = await hv.inventory.listGuests();
    const ref = await asOtherClient(sim, 'VM.get_by_uuid', [guest?.id]);
    await asOtherClient(sim, 'Async.VM.add_tags', [ref, 'hvkit-overflow']);
    await expectResumed(sim, hv, events, 'overflow');
    expect(await stop()).toBe('done');
  }, 60_000);

  it('with reconnect off, a lost host closes the adapter: the subscription throws CONNECTION_LOST and errors are not retryable', async () => {
    const hv = await open({ reconnect: false });
    const ended = drain(hv.events.subscribe(), []);
    await new Promise((r) => setTimeout(r, 300));
    await sim.kill();
    const failed = await hv.inventory.listGuests().catch((e: unknown) => e);
    expect(HvkitError.isInstance(failed, 'CONNECTION_LOST')).toBe(true);
    const outcome = await ended;
    expect(HvkitError.isInstance(outcome, 'CONNECTION_LOST')).toBe(true);
    expect((outcome as HvkitError).retryable).toBe(false);
    expect(hv.connection.state).toBe('closed');
    const after = await hv.inventory.listGuests().catch((e: unknown) => e);
    expect(HvkitError.isInstance(after, 'CONNECTION_LOST')).toBe(true);
    expect((after as HvkitError).retryable).toBe(false);
  }, 60_000);

  it('an authentication failure while reconnecting closes the adapter with AUTH_FAILED', async () => {
    const hv = await open();
    await sim.kill();
    await hv.inventory.host({ timeoutMs: 2000 }).catch(() => {});
    await until('reconnecting', () => hv.connection.state === 'reconnecting');
    await sim.start({ password: 'another-password-now' });
    await until('closed', () => hv.connection.state === 'closed', 30_000);
    expect(hv.connection.lastError).toMatchObject({ code: 'AUTH_FAILED' });
    const after = await hv.inventory.host().catch((e: unknown) => e);
    expect(after).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
    expect(String((after as Error).message)).not.toContain(XAPI_SIMULATOR_DEFAULT_PASSWORD);
  }, 60_000);

  it('a hung host is noticed (a timed-out call, then the liveness check), and the adapter is open again once it answers', async () => {
    const hv = await open({ timeoutMs: 2000 });
    await hv.inventory.listGuests();
    sim.current.hang(true);
    const hungAt = Date.now();
    const failed = await hv.inventory.listGuests().catch((e: unknown) => e);
    expect(HvkitError.isInstance(failed)).toBe(true);
    await until('reconnecting', () => hv.connection.state === 'reconnecting', 20_000);
    timings['hung host noticed by a call, timeoutMs 2000 (ms)'] = String(Date.now() - hungAt);
    sim.current.hang(false);
    const resumedAt = Date.now();
    await until('open', () => hv.connection.state === 'open', 20_000);
    timings['back to open after the hang ends (ms)'] = String(Date.now() - resumedAt);
    expect((await hv.inventory.listGuests()).length).toBeGreaterThan(0);
  }, 60_000);

  it('against a hung host, a subscription (reconnect off) fails within the poll deadline plus the liveness check, and close() is bounded', async () => {
    const hv = await open({ reconnect: false, timeoutMs: 2000 });
    const ended = drain(hv.events.subscribe(), []);
    await new Promise((r) => setTimeout(r, 300));
    sim.current.hang(true);
    const hungAt = Date.now();
    const outcome = await ended;
    const errorMs = Date.now() - hungAt;
    timings['subscription error against a hung host, timeoutMs 2000 (ms)'] = String(errorMs);
    expect(outcome).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
    // event.from waits up to 10 s on the host; its deadline is that plus the call timeout (2 s), then 5 s.
    expect(errorMs).toBeLessThan(18_000);
    const started = Date.now();
    await hv.close();
    expect(Date.now() - started).toBeLessThan(3000);
    sim.current.hang(false);
  }, 60_000);

  it('against a hung host, a subscription (reconnect on) goes on: reconnecting, then a resync notice and events once the host answers', async () => {
    const hv = await open({ timeoutMs: 2000 });
    const { events, stop } = await watching(sim, hv);
    sim.current.hang(true);
    const hungAt = Date.now();
    await until('reconnecting', () => hv.connection.state === 'reconnecting', 20_000);
    timings['subscription notices a hung host, timeoutMs 2000 (ms)'] = String(Date.now() - hungAt);
    sim.current.hang(false);
    await expectResumed(sim, hv, events, 'reconnected');
    expect(await stop()).toBe('done');
  }, 60_000);

  it('close() against a hung host is bounded with the default settings', async () => {
    const hv = await open();
    await hv.inventory.listGuests();
    sim.current.hang(true);
    const started = Date.now();
    await hv.close();
    const ms = Date.now() - started;
    timings['close() against a hung host (ms)'] = String(ms);
    expect(ms).toBeLessThan(3000);
    expect(hv.connection.state).toBe('closed');
    sim.current.hang(false);
  }, 30_000);

  it('connect() to a hung host fails with TIMEOUT at connectTimeoutMs (default 10 s)', async () => {
    sim.current.hang(true);
    try {
      let started = Date.now();
      const fast = await connect({ ...sim.options_(), connectTimeoutMs: 3000 }).catch((e: unknown) => e);
      timings['connect() to a hung host, connectTimeoutMs 3000 (ms)'] = String(Date.now() - started);
      expect(fast).toMatchObject({ code: 'TIMEOUT' });
      expect(Date.now() - started).toBeLessThan(4000);
      started = Date.now();
      const byDefault = await connect(sim.options_()).catch((e: unknown) => e);
      const ms = Date.now() - started;
      timings['connect() to a hung host, default (ms)'] = String(ms);
      expect(byDefault).toMatchObject({ code: 'TIMEOUT' });
      expect(ms).toBeGreaterThanOrEqual(9900);
      expect(ms).toBeLessThan(11_500);
    } finally {
      sim.sim?.hang(false);
    }
  }, 30_000);
});

/** Groups the other live runs (conformance.live.test.ts) cover; this run is for `service` and `events`. */
const COVERED_ELSEWHERE =
  'covered against the simulator by conformance.live.test.ts; this run is for the service and events groups';

describe.skipIf(!enabled)('xen-xapi conformance, service and events groups (private simulator)', () => {
  const sim = new PrivateSim();
  const probes: XenXapiProbe[] = [];
  let started: Promise<void> | undefined;
  const running = () => {
    started ??= sim.start();
    return started;
  };
  afterAll(async () => {
    for (const p of probes) await p.close().catch(() => {});
    await sim.kill();
  });
  for (const transport of ['json-rpc', 'xml-rpc'] as const) {
    const options = async (reconnect: boolean): Promise<XenXapiOptions> => {
      await running();
      return { ...sim.options_(), transport, reconnect };
    };
    runAdapterConformance({
      name: `xen-xapi (private simulator, ${transport})`,
      mode: 'live',
      factory: async () => connect(await options(true)),
      factoryWithoutReconnect: async () => connect(await options(false)),
      peer: {
        kill: async () => sim.kill(),
        restart: async () => sim.start(),
      },
      // A fresh probe per test: a restart ends the sessions of older probes.
      probe: async () => {
        await running();
        const probe = await xenXapiProbe(sim.url, 'root', sim.current.password);
        probes.push(probe);
        return probe;
      },
      skip: Object.fromEntries(
        ['adapter', 'inventory', 'limits', 'labels', 'backups', 'cancellation'].map((g) => [
          g,
          COVERED_ELSEWHERE,
        ]),
      ),
    });
  }
});

if (!enabled)
  describe('xen-xapi as a service', () => {
    it.skip(`skipped: ${SKIP_REASON}`, () => {});
  });
