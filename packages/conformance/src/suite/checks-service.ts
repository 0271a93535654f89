import {
  type AdapterConnection,
  type ConnectionStateChange,
  type GuestEvent,
  HvkitError,
  type HypervisorAdapterV1,
  isResyncEvent,
} from '@hvkit/core';
import { check, describeError, fail, show, within } from './assert';
import type { CheckContext, CheckDef, GroupDef, SuiteEnv } from './context';

/** Longest time a check waits for a state change, an event or the peer. */
const WAIT_MS = 30_000;

/** How an event iteration went: what it yielded and how it ended (undefined while it runs). */
interface Reader {
  events: GuestEvent[];
  ended: 'done' | { error: unknown } | undefined;
  stop(): void;
  finished: Promise<void>;
}

function read(adapter: HypervisorAdapterV1): Reader {
  const events = adapter.events;
  if (!events) fail('adapter.events is missing although supports.events is not false');
  const controller = new AbortController();
  const reader: Reader = {
    events: [],
    ended: undefined,
    stop: () => controller.abort(),
    finished: Promise.resolve(),
  };
  reader.finished = (async () => {
    try {
      for await (const e of events.subscribe({ signal: controller.signal })) reader.events.push(e);
      reader.ended = 'done';
    } catch (error) {
      reader.ended = { error };
    }
  })();
  return reader;
}

async function until(what: string, condition: () => boolean, ms = WAIT_MS): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) fail(`${what} did not happen within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

function connectionOf(ctx: CheckContext): AdapterConnection {
  const c = ctx.adapter.connection;
  if (c === undefined) return ctx.skip('the adapter reports no connection state (adapter.connection)');
  check(
    typeof c === 'object' &&
      c !== null &&
      typeof c.onChange === 'function' &&
      typeof c.changes === 'function',
    () => `adapter.connection is ${show(c)}, not an AdapterConnection`,
  );
  return c;
}

function peerOf(ctx: CheckContext) {
  const peer = ctx.env.options.peer;
  if (!peer) return ctx.skip('needs options.peer (a private peer the test controls)');
  return peer;
}

function expectLost(error: unknown, retryable: boolean, what: string): void {
  check(
    HvkitError.isInstance(error, 'CONNECTION_LOST'),
    () => `${what} failed with ${describeError(error)}, not CONNECTION_LOST`,
  );
  check(
    error.retryable === retryable,
    () => `${what}: CONNECTION_LOST has retryable ${error.retryable}, expected ${retryable}`,
  );
}

/** Triggers events until one of the target guest arrives after `from` in `reader` (3 attempts). */
async function eventAfter(ctx: CheckContext, reader: Reader, from: number, what: string): Promise<void> {
  const probe = ctx.probe;
  if (!probe?.triggerEvent) return ctx.skip('needs probe.triggerEvent');
  const t = await ctx.target();
  const matches = (e: GuestEvent) =>
    !isResyncEvent(e) &&
    ((t.guest !== undefined && (e.guest.id === t.guest.id || e.guest.uuid === t.guest.uuid)) ||
      (typeof t.ref === 'string' && e.guest.id === t.ref));
  for (let attempt = 0; attempt < 3; attempt++) {
    await ctx.call('probe.triggerEvent', Promise.resolve(probe.triggerEvent(t.probeGuest)));
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline) {
      if (reader.events.slice(from).some(matches)) return;
      if (reader.ended !== undefined) break;
      await new Promise((r) => setTimeout(r, 25));
    }
  }
  fail(
    `${what}: no event of the target guest arrived (received: ${
      reader.events
        .slice(from)
        .map((e) => `${e.guest.name} ${e.type}`)
        .join(', ') || 'none'
    }; iteration ${reader.ended === undefined ? 'still running' : show(reader.ended)})`,
  );
}

/**
 * The `service` group (live tier, with a peer the test started itself in `options.peer`): connection
 * state, a restart of the peer with a subscription open and calls in flight, reconnection turned off,
 * close() while reconnecting.
 */
export function serviceGroup(env: SuiteEnv): GroupDef {
  const live = env.options.mode === 'live';
  const unavailable = !live
    ? 'live tier only (it kills and restarts the peer)'
    : env.options.peer === undefined
      ? 'needs options.peer (a private peer the test starts, kills and restarts)'
      : undefined;
  const events = env.supports.events !== false;
  const checks: CheckDef[] = [
    {
      id: 'service.state',
      title:
        'adapter.connection is open after connect and closed after close(); calls then fail CONNECTION_LOST, not retryable',
      unavailable: live ? undefined : 'live tier only (the replayed recordings predate it)',
      async run(ctx) {
        const connection = connectionOf(ctx);
        check(
          connection.state === 'open',
          () => `connection.state is ${show(connection.state)} after connect()`,
        );
        const changes: ConnectionStateChange[] = [];
        connection.onChange((c) => changes.push(c));
        await ctx.call('close()', ctx.adapter.close());
        const after: string = connection.state;
        check(after === 'closed', () => `connection.state is ${show(after)} after close()`);
        check(
          changes.at(-1)?.state === 'closed',
          () => `no change to closed was reported (${changes.map((c) => c.state).join(', ') || 'none'})`,
        );
        const inv = ctx.adapter.inventory;
        if (inv) {
          const error = await within(inv.host(), 5000, 'inventory.host() after close()').then(
            () => fail('inventory.host() succeeded after close()'),
            (e: unknown) => e,
          );
          expectLost(error, false, 'inventory.host() after close()');
        }
      },
    },
    {
      id: 'service.restart',
      title:
        'the peer killed and restarted with a subscription open and calls in flight: reconnecting then open, typed errors, the same adapter answers, the subscription resumes with a resync event',
      unavailable,
      async run(ctx) {
        const peer = peerOf(ctx);
        const connection = connectionOf(ctx);
        const inv = ctx.adapter.inventory;
        if (!inv) return ctx.skip('needs inventory');
        const changes: ConnectionStateChange[] = [];
        connection.onChange((c) => changes.push(c));
        const reader = events ? read(ctx.adapter) : undefined;
        try {
          if (reader) await eventAfter(ctx, reader, 0, 'before the restart');
          const inFlight = [inv.listGuests(), inv.host(), inv.listGuests()].map((p) =>
            p.then(
              () => undefined,
              (e: unknown) => e,
            ),
          );
          await within(peer.kill(), WAIT_MS, 'peer.kill()');
          await until('connection.state reconnecting', () => connection.state === 'reconnecting');
          for (const outcome of await within(Promise.all(inFlight), WAIT_MS, 'the calls in flight')) {
            if (outcome !== undefined) expectLost(outcome, true, 'a call in flight when the peer died');
          }
          const waiting = inv.listGuests({ timeoutMs: 60_000 }).then(
            (guests) => ({ guests }),
            (error: unknown) => ({ error }),
          );
          await within(peer.restart(), 60_000, 'peer.restart()');
          const result = await within(waiting, 60_000, 'a call made while reconnecting');
          if ('error' in result)
            fail(`a call made while reconnecting failed: ${describeError(result.error)}`);
          check(result.guests.length > 0, 'the call made while reconnecting listed no guests');
          await until('connection.state open', () => connection.state === 'open');
          const states = changes.map((c) => c.state);
          check(
            states[0] === 'reconnecting' && states.at(-1) === 'open' && !states.includes('closed'),
            () => `state changes were ${states.join(' → ')}, expected reconnecting … → open`,
          );
          expectLost(changes[0]?.error, true, 'the reconnecting change');
          if (reader) {
            await until(
              'a resync event',
              () => reader.events.some(isResyncEvent) || reader.ended !== undefined,
            );
            check(reader.ended === undefined, () => `the iteration ended: ${show(reader.ended)}`);
            const resync = reader.events.findIndex(isResyncEvent);
            await eventAfter(ctx, reader, resync + 1, 'after the resync event');
            check(reader.ended === undefined, () => `the iteration ended: ${show(reader.ended)}`);
          }
        } finally {
          reader?.stop();
          await within(peer.restart(), 60_000, 'peer.restart()').catch(() => {});
        }
        if (reader) {
          await within(reader.finished, 10_000, 'the iteration after its signal aborted');
          check(reader.ended === 'done', () => `after abort the iteration ended with ${show(reader.ended)}`);
        }
      },
    },
    {
      id: 'service.no-reconnect',
      title:
        'reconnection off: a killed peer closes the adapter, the subscription throws CONNECTION_LOST, later calls fail not retryable',
      unavailable:
        unavailable ??
        (env.options.factoryWithoutReconnect === undefined
          ? 'needs options.factoryWithoutReconnect'
          : undefined),
      async run(ctx) {
        const peer = peerOf(ctx);
        const factory = ctx.env.options.factoryWithoutReconnect;
        if (!factory) return ctx.skip('needs options.factoryWithoutReconnect');
        const adapter = await ctx.call('factoryWithoutReconnect()', factory());
        const reader = events ? read(adapter) : undefined;
        try {
          await new Promise((r) => setTimeout(r, 500));
          await within(peer.kill(), WAIT_MS, 'peer.kill()');
          const inv = adapter.inventory;
          if (inv) {
            const first = await within(inv.listGuests(), WAIT_MS, 'a call after the kill').then(
              () => fail('a call succeeded after the peer was killed'),
              (e: unknown) => e,
            );
            check(
              HvkitError.isInstance(first, 'CONNECTION_LOST'),
              () => `a call after the kill failed with ${describeError(first)}`,
            );
          }
          if (reader) {
            await within(reader.finished, WAIT_MS, 'the iteration after the peer died');
            const ended = reader.ended;
            check(ended !== 'done', 'the iteration ended without an error after the peer died');
            expectLost((ended as { error: unknown }).error, false, 'the iteration');
          }
          const connection = adapter.connection;
          if (connection) {
            await until('connection.state closed', () => connection.state === 'closed');
          }
          if (inv) {
            const later = await within(inv.host(), WAIT_MS, 'a later call').then(
              () => fail('a later call succeeded'),
              (e: unknown) => e,
            );
            expectLost(later, false, 'a call on the closed adapter');
          }
        } finally {
          reader?.stop();
          await within(adapter.close(), 10_000, 'close()').catch(() => {});
          await within(peer.restart(), 60_000, 'peer.restart()').catch(() => {});
        }
      },
    },
    {
      id: 'service.close-while-reconnecting',
      title:
        'close() while reconnecting returns within 3 s, ends the subscription without an error, and is final',
      unavailable,
      async run(ctx) {
        const peer = peerOf(ctx);
        const connection = connectionOf(ctx);
        const reader = events ? read(ctx.adapter) : undefined;
        try {
          await new Promise((r) => setTimeout(r, 500));
          await within(peer.kill(), WAIT_MS, 'peer.kill()');
          const inv = ctx.adapter.inventory;
          // An HTTP adapter notices the loss on its next call.
          if (inv) void inv.host({ timeoutMs: 5000 }).catch(() => {});
          await until('connection.state reconnecting', () => connection.state === 'reconnecting');
          const started = Date.now();
          await within(ctx.adapter.close(), 10_000, 'close() while reconnecting');
          const ms = Date.now() - started;
          check(ms < 3000, () => `close() while reconnecting took ${ms} ms`);
          check(
            connection.state === 'closed',
            () => `connection.state is ${show(connection.state)} after close()`,
          );
          if (reader) {
            await within(reader.finished, 5000, 'the iteration after close()');
            check(
              reader.ended === 'done',
              () => `after close() the iteration ended with ${show(reader.ended)}`,
            );
          }
        } finally {
          reader?.stop();
          await within(peer.restart(), 60_000, 'peer.restart()').catch(() => {});
        }
      },
    },
  ];
  return { name: 'service', checks };
}

/** The groups other than `service`, in the order the suite runs them. */
const GROUPS_BEFORE_SERVICE = [
  'adapter',
  'inventory',
  'limits',
  'labels',
  'backups',
  'events',
  'cancellation',
];

/**
 * The `skip` option of a run of the `service` group alone, for an adapter on a connection the caller owns
 * (`connect({ ssh })` of `@hvkit/cgroups` and `@hvkit/lvm`): the peer control kills that connection, the
 * other groups are skipped with `coveredElsewhere` (another run covers them), and the checks of a
 * reconnecting adapter (`service.restart`, `service.close-while-reconnecting`) are skipped because such an
 * adapter never reconnects; `service.no-reconnect` covers the loss.
 *
 * @example
 * runAdapterConformance({ name, mode: 'live', factory, factoryWithoutReconnect: factory, peer,
 *   skip: serviceOnlyOnCallersConnection('run by conformance.live.test.ts') });
 */
export function serviceOnlyOnCallersConnection(coveredElsewhere: string): Record<string, string> {
  if (typeof coveredElsewhere !== 'string' || coveredElsewhere.trim() === '') {
    throw new TypeError('serviceOnlyOnCallersConnection: coveredElsewhere must be a non-empty reason.');
  }
  const noReconnect =
    'the connection is the caller’s (connect({ ssh })): the adapter never reconnects it, so it is never reconnecting (service.no-reconnect covers a loss)';
  return {
    ...Object.fromEntries(GROUPS_BEFORE_SERVICE.map((group) => [group, coveredElsewhere])),
    'service.restart': noReconnect,
    'service.close-while-reconnecting': noReconnect,
  };
}
