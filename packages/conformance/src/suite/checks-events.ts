import { type EventsCapability, type GuestEvent, HvkitError } from '@hvkit/core';
import { check, describeError, fail, show, within } from './assert';
import type { CheckContext, CheckDef, GroupDef, SuiteEnv } from './context';

function eventsOf(ctx: CheckContext): EventsCapability {
  const e = ctx.adapter.events;
  if (!e) fail('adapter.events is missing although supports.events is not false');
  return e;
}

function iteratorOf(iterable: AsyncIterable<GuestEvent>, what: string): AsyncIterator<GuestEvent> {
  check(
    iterable !== null && typeof iterable === 'object' && typeof iterable[Symbol.asyncIterator] === 'function',
    `${what} returned ${show(iterable)}, not an AsyncIterable`,
  );
  return iterable[Symbol.asyncIterator]();
}

/**
 * Waits until the iterator ends. Events that arrive meanwhile are read and dropped; a rejection with
 * ABORTED also counts as the end.
 */
async function expectEnd(
  iterator: AsyncIterator<GuestEvent>,
  first: Promise<IteratorResult<GuestEvent>>,
  ms: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + ms;
  let next = first;
  for (;;) {
    let result: IteratorResult<GuestEvent>;
    try {
      result = await within(next, Math.max(1, deadline - Date.now()), what);
    } catch (error) {
      if (HvkitError.isInstance(error, 'ABORTED')) return;
      if (error instanceof Error && error.name === 'ConformanceFailure') throw error;
      fail(`${what}: the iteration failed with ${describeError(error)} instead of ending`, error);
    }
    if (result.done) return;
    next = iterator.next();
  }
}

/** Everything wrong with one event. */
export function eventProblems(e: GuestEvent): string[] {
  const p: string[] = [];
  if (typeof e !== 'object' || e === null) return [`event is ${show(e)}`];
  if (!e.guest || typeof e.guest.id !== 'string' || typeof e.guest.name !== 'string')
    p.push(`guest is ${show(e.guest)}; it needs id and name`);
  if (typeof e.type !== 'string' || e.type === '') p.push(`type is ${show(e.type)}`);
  if (!(e.at instanceof Date) || Number.isNaN(e.at.getTime()))
    p.push(`at is ${show(e.at)}, not a valid Date`);
  return p;
}

/** The `events` group. */
export function eventsGroup(env: SuiteEnv): GroupDef {
  const ev = env.supports.events;
  if (ev === false)
    return { name: 'events', skipReason: 'not supported by adapter (supports.events = false)', checks: [] };
  const checks: CheckDef[] = [
    {
      id: 'events.abort-ends',
      title: 'subscribe() returns an async iterable whose iteration ends when its signal aborts',
      async run(ctx) {
        const controller = new AbortController();
        const iterator = iteratorOf(
          eventsOf(ctx).subscribe({ signal: controller.signal }),
          'events.subscribe()',
        );
        const pending = iterator.next();
        controller.abort();
        await expectEnd(iterator, pending, 5_000, 'events.subscribe(): the iteration after abort');
      },
    },
    {
      id: 'events.pre-aborted',
      title: 'subscribe() with an already-aborted signal ends at once',
      async run(ctx) {
        const iterator = iteratorOf(
          eventsOf(ctx).subscribe({ signal: AbortSignal.abort() }),
          'events.subscribe({ signal: aborted })',
        );
        await expectEnd(
          iterator,
          iterator.next(),
          2_000,
          'events.subscribe() with an already-aborted signal',
        );
      },
    },
    {
      id: 'events.close-ends',
      title: 'the iteration ends when the adapter closes',
      async run(ctx) {
        const iterator = iteratorOf(eventsOf(ctx).subscribe(), 'events.subscribe()');
        const pending = iterator.next();
        await ctx.call('close()', ctx.adapter.close());
        await expectEnd(iterator, pending, 5_000, 'events.subscribe(): the iteration after close()');
      },
    },
    {
      id: 'events.lifecycle',
      title: 'a lifecycle event caused on the backend (probe.triggerEvent) arrives, well formed',
      unavailable: ev.lifecycle ? undefined : 'not supported by adapter (supports.events.lifecycle = false)',
      async run(ctx) {
        const probe = ctx.probe;
        if (!probe?.triggerEvent) return ctx.skip('needs probe.triggerEvent');
        const t = await ctx.target();
        const controller = new AbortController();
        const iterator = iteratorOf(
          eventsOf(ctx).subscribe({ signal: controller.signal }),
          'events.subscribe()',
        );
        const matches = (e: GuestEvent) =>
          e?.guest !== undefined &&
          ((t.guest !== undefined && (e.guest.id === t.guest.id || e.guest.uuid === t.guest.uuid)) ||
            (typeof t.ref === 'string' && e.guest.id === t.ref));
        const seen: GuestEvent[] = [];
        let found: GuestEvent | undefined;
        const reader = (async () => {
          for (;;) {
            const r = await iterator.next();
            if (r.done) return;
            seen.push(r.value);
            if (matches(r.value)) {
              found = r.value;
              return;
            }
          }
        })();
        reader.catch(() => {});
        try {
          for (let attempt = 0; attempt < 3 && !found; attempt++) {
            await ctx.call('probe.triggerEvent', Promise.resolve(probe.triggerEvent(t.probeGuest)));
            let timer: ReturnType<typeof setTimeout> | undefined;
            await Promise.race([reader, new Promise((r) => (timer = setTimeout(r, 3_000)))]);
            clearTimeout(timer);
          }
        } finally {
          controller.abort();
          await within(reader, 5_000, 'the event iteration after abort').catch(() => {});
        }
        check(
          found,
          () =>
            `no event for the target guest arrived after probe.triggerEvent (received: ${seen.length ? seen.map((e) => `${e.guest?.name} ${e.type}`).join(', ') : 'none'})`,
        );
        const p = eventProblems(found);
        if (p.length > 0) fail(`a bad lifecycle event: ${p.join('; ')}`);
      },
    },
    {
      id: 'events.closed-adapter',
      title: 'subscribe() on a closed adapter fails with CONNECTION_LOST (not retryable) instead of ending',
      unavailable:
        env.options.mode !== 'live' ? 'live tier only (the replayed recordings predate it)' : undefined,
      async run(ctx) {
        await ctx.call('close()', ctx.adapter.close());
        const iterator = iteratorOf(eventsOf(ctx).subscribe(), 'events.subscribe() after close()');
        const outcome = await within(iterator.next(), 5_000, 'the first next() after close()').then(
          (r) => r,
          (e: unknown) => e,
        );
        check(
          HvkitError.isInstance(outcome, 'CONNECTION_LOST'),
          () =>
            `subscribe() on a closed adapter gave ${HvkitError.isInstance(outcome) || outcome instanceof Error ? describeError(outcome) : show(outcome)}, not CONNECTION_LOST (a resubscribe loop would spin)`,
        );
        check(!outcome.retryable, 'the CONNECTION_LOST of a closed adapter says retryable: true');
      },
    },
    {
      id: 'events.two-subscriptions',
      title: 'two concurrent subscriptions on one adapter both receive the same events',
      unavailable: !ev.lifecycle
        ? 'not supported by adapter (supports.events.lifecycle = false)'
        : env.options.mode !== 'live'
          ? 'live tier only (the replayed recordings predate it)'
          : undefined,
      async run(ctx) {
        const probe = ctx.probe;
        if (!probe?.triggerEvent) return ctx.skip('needs probe.triggerEvent');
        const t = await ctx.target();
        const controller = new AbortController();
        const seen: GuestEvent[][] = [[], []];
        const ended: unknown[] = [undefined, undefined];
        const readers = seen.map((into, i) =>
          (async () => {
            try {
              for await (const e of eventsOf(ctx).subscribe({ signal: controller.signal })) into.push(e);
            } catch (error) {
              ended[i] = error;
            }
          })(),
        );
        const mine = (list: GuestEvent[]) =>
          list
            .filter(
              (e) =>
                e.type !== 'resync' &&
                ((t.guest !== undefined && (e.guest.id === t.guest.id || e.guest.uuid === t.guest.uuid)) ||
                  (typeof t.ref === 'string' && e.guest.id === t.ref)),
            )
            .map((e) => `${e.type}/${e.detail ?? ''}`);
        try {
          // Both registrations are in place once an event reaches both; then one more round must reach both.
          for (let attempt = 0; attempt < 3; attempt++) {
            await ctx.call('probe.triggerEvent', Promise.resolve(probe.triggerEvent(t.probeGuest)));
            const deadline = Date.now() + 3_000;
            while (
              Date.now() < deadline &&
              (mine(seen[0] ?? []).length === 0 || mine(seen[1] ?? []).length === 0)
            )
              await new Promise((r) => setTimeout(r, 25));
            if (mine(seen[0] ?? []).length > 0 && mine(seen[1] ?? []).length > 0) break;
          }
          check(
            mine(seen[0] ?? []).length > 0 && mine(seen[1] ?? []).length > 0,
            () =>
              `not both subscriptions received an event of the target guest (first: ${mine(seen[0] ?? []).join(', ') || 'none'}; second: ${mine(seen[1] ?? []).join(', ') || 'none'}; ended: ${ended.map((e) => (e === undefined ? '-' : describeError(e))).join(', ')})`,
          );
          const from = [seen[0]?.length ?? 0, seen[1]?.length ?? 0];
          await ctx.call('probe.triggerEvent', Promise.resolve(probe.triggerEvent(t.probeGuest)));
          const later = () => [mine((seen[0] ?? []).slice(from[0])), mine((seen[1] ?? []).slice(from[1]))];
          const deadline = Date.now() + 5_000;
          // triggerEvent causes at least one event; wait for the same count on both, and a little more.
          while (Date.now() < deadline) {
            const [a, b] = later();
            if ((a?.length ?? 0) > 0 && a?.length === b?.length) break;
            await new Promise((r) => setTimeout(r, 25));
          }
          await new Promise((r) => setTimeout(r, 500));
          const [a, b] = later();
          check(
            (a?.length ?? 0) > 0 && JSON.stringify(a) === JSON.stringify(b),
            () => `the two subscriptions received different events: ${show(a)} and ${show(b)}`,
          );
        } finally {
          controller.abort();
          await within(Promise.all(readers), 5_000, 'the event iterations after abort').catch(() => {});
        }
      },
    },
  ];
  return { name: 'events', checks };
}
