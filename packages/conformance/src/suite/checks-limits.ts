import {
  findLimitsIssues,
  findUnsupportedLimits,
  isLimitFieldSupported,
  LIMIT_FIELDS,
  type LimitFieldInfo,
  type LimitFieldPath,
  type LimitsCapability,
  limitField,
  limitPatch,
  normalizeLimitValue,
  type ResourceLimits,
  readLimitField,
} from '@hvkit/core';
import { check, expectHvkitError, fail, firstDifference, ratioHint, show } from './assert';
import { MISSING_GUEST_ID } from './checks-inventory';
import type { CheckContext, CheckDef, GroupDef, SuiteEnv, Target } from './context';
import { badLimitValues, type HostLimitFacts, limitTestValue } from './context';

/** Ids of disk and NIC entries the suite uses for made-up devices. */
export const MISSING_DEVICE = 'hvkit-conformance-no-such-device';

function limitsOf(ctx: CheckContext): LimitsCapability {
  const l = ctx.adapter.limits;
  if (!l) fail('adapter.limits is missing although supports.limits is not false');
  return l;
}

/** The device a disks.* or nics.* check works on: the target's first disk or NIC. */
function deviceFor(ctx: CheckContext, target: Target, info: LimitFieldInfo): string | undefined {
  if (info.section === 'disks') {
    const d = target.guest?.disks[0]?.device;
    if (!d) return ctx.skip('the target guest has no disk (or the adapter has no inventory to name one)');
    return d;
  }
  if (info.section === 'nics') {
    const n = target.guest?.nics[0]?.device;
    if (!n) return ctx.skip('the target guest has no NIC (or the adapter has no inventory to name one)');
    return n;
  }
  return undefined;
}

async function probeLimits(
  ctx: CheckContext,
  target: Target,
  from: 'live' | 'persistent',
): Promise<ResourceLimits | undefined> {
  if (!ctx.probe?.getLimits) return undefined;
  return ctx.call(`probe.getLimits(${from})`, Promise.resolve(ctx.probe.getLimits(target.probeGuest, from)));
}

function fromOf(appliesAt: unknown): 'live' | 'persistent' {
  return appliesAt === 'next-boot' ? 'persistent' : 'live';
}

function getOptions(from: 'live' | 'persistent') {
  return from === 'persistent' ? { from } : undefined;
}

/**
 * Compares the limits before and after a change to one field: everything else must be unchanged. New
 * entries for the device are tolerated (a device without limits may gain an entry).
 */
function othersChanged(
  before: ResourceLimits,
  after: ResourceLimits,
  info: LimitFieldInfo,
  device?: string,
): string | undefined {
  const strip = (l: ResourceLimits): ResourceLimits => {
    const copy = structuredClone(l ?? {});
    if (info.section === 'disks' || info.section === 'nics') {
      const list = ((copy[info.section] ?? []) as unknown as Record<string, unknown>[]).filter(
        (e) => e.device !== device,
      );
      (copy as Record<string, unknown>)[info.section] = list.length ? list : undefined;
    } else {
      const sec = copy[info.section] as Record<string, unknown> | undefined;
      if (sec) {
        delete sec[info.key];
        if (Object.keys(sec).length === 0) (copy as Record<string, unknown>)[info.section] = undefined;
      }
    }
    for (const k of Object.keys(copy))
      if ((copy as Record<string, unknown>)[k] === undefined) delete (copy as Record<string, unknown>)[k];
    return copy;
  };
  return firstDifference(strip(before), strip(after));
}

function patchText(path: LimitFieldPath, value: unknown, device?: string): string {
  const info = limitField(path);
  if (device !== undefined)
    return `{ ${info.section}: [{ device: ${show(device)}, ${info.key}: ${show(value)} }] }`;
  return `{ ${info.section}: { ${info.key}: ${show(value)} } }`;
}

/**
 * Sets one field and checks it reads back (adapter, set's result, probe), then restores the old value.
 * `sequence` `value` sets the test value; `null` sets the test value, then `null`, then the field's
 * default number where it has one (`LimitFieldInfo.defaultValue`), each of which must read back as `null`.
 * What must read back is always the value set after `normalizeLimitValue`.
 */
async function roundTrip(
  ctx: CheckContext,
  path: LimitFieldPath,
  mode: 'default' | 'live' | 'persistent',
  sequence: 'value' | 'null' = 'value',
): Promise<void> {
  const limits = limitsOf(ctx);
  const target = await ctx.target();
  const info = limitField(path);
  const device = deviceFor(ctx, target, info);
  const supported = ctx.env.supports.limits === false ? [] : ctx.env.supports.limits.modes;
  const active = target.guest
    ? target.guest.powerState === 'running' || target.guest.powerState === 'paused'
    : undefined;
  if (mode === 'live' && active === false)
    return ctx.skip('the target guest is not running, so it has no live limits');
  const readFrom: 'live' | 'persistent' | undefined = mode === 'default' ? undefined : mode;
  const before = await ctx.call(
    'limits.get()',
    limits.get(target.ref, readFrom ? { from: readFrom } : undefined),
  );
  const other: 'live' | 'persistent' | undefined =
    mode === 'live' && supported.includes('persistent')
      ? 'persistent'
      : mode === 'persistent' && supported.includes('live') && active
        ? 'live'
        : undefined;
  const otherBefore = other
    ? await ctx.call(`limits.get({ from: '${other}' })`, limits.get(target.ref, { from: other }))
    : undefined;
  const current = readLimitField(before, path, device);
  const value = limitTestValue(ctx.env, path, current, target.guest);
  // The null sequence first sets the test value (unchecked: round-trip.<field> checks it), so setting
  // null then has something to undo.
  const steps: { value: number | null; verify: boolean }[] =
    sequence === 'value'
      ? [{ value, verify: true }]
      : [
          { value, verify: false },
          { value: null, verify: true },
          ...(info.defaultValue !== undefined ? [{ value: info.defaultValue, verify: true }] : []),
        ];
  const setOptions = mode === 'default' ? undefined : { apply: mode };
  const problem = sequence === 'value' ? 'does not round-trip' : 'does not converge';
  let changed = false;
  let failure: unknown;
  try {
    let previous = before;
    for (const { value: step, verify } of steps) {
      const expected = normalizeLimitValue(path, step);
      const shown = (got: unknown) =>
        `${show(got)}${sequence === 'null' ? `, expected ${show(expected)}` : ratioHint(got, expected)}`;
      const what = `limits.set(${patchText(path, step, device)}${setOptions ? `, { apply: '${mode}' }` : ''})`;
      const result = await ctx.call(what, limits.set(target.ref, limitPatch(path, step, device), setOptions));
      changed = true;
      if (!verify) {
        previous = await ctx.call(
          'limits.get()',
          limits.get(target.ref, readFrom ? { from: readFrom } : undefined),
        );
        continue;
      }
      check(
        result && typeof result === 'object',
        `${what} resolved with ${show(result)}, not a LimitsSetResult`,
      );
      check(
        result.appliesAt === 'live' || result.appliesAt === 'next-boot',
        `${what} returned appliesAt ${show(result.appliesAt)}, not 'live' or 'next-boot'`,
      );
      check(
        Array.isArray(result.warnings),
        `${what} returned warnings ${show(result.warnings)}, not an array`,
      );
      if (mode === 'live')
        check(
          result.appliesAt === 'live',
          `${what} returned appliesAt ${show(result.appliesAt)}; apply 'live' applies at once`,
        );
      if (mode === 'persistent' && active) {
        check(
          result.appliesAt === 'next-boot',
          `${what} on a running guest returned appliesAt ${show(result.appliesAt)}; a persistent change applies at the next boot`,
        );
      }
      const readBack = readLimitField(result.limits, path, device);
      check(
        readBack === expected,
        () => `${path} ${problem}: ${what} returned limits with ${path} = ${shown(readBack)}`,
      );
      const from = mode === 'default' ? fromOf(result.appliesAt) : mode;
      const after = await ctx.call(
        `limits.get(${from === 'persistent' ? "{ from: 'persistent' }" : ''})`,
        limits.get(target.ref, getOptions(from)),
      );
      const got = readLimitField(after, path, device);
      check(got === expected, () => `${path} ${problem}: after ${what}, limits.get() returned ${shown(got)}`);
      const stored = await probeLimits(ctx, target, from);
      if (stored) {
        const raw = normalizeLimitValue(path, readLimitField(stored, path, device));
        check(
          raw === expected,
          () =>
            `${path}: the adapter reports ${show(got)} but the backend stores ${show(raw)} (probe.getLimits, normalised)${sequence === 'null' ? '' : ratioHint(raw, expected)}`,
        );
      }
      // Other fields must be unchanged. The default read of a running guest shows its live values, which a
      // next-boot change does not touch, so that one case is compared through the probe only.
      if (mode !== 'default' || !(result.appliesAt === 'next-boot' && active !== false)) {
        const diff = othersChanged(previous, after, info, device);
        if (diff) fail(`${what} changed other limits too: ${diff}`);
      }
      previous = after;
      if (other && otherBefore) {
        const otherAfter = await ctx.call(
          `limits.get({ from: '${other}' })`,
          limits.get(target.ref, { from: other }),
        );
        const was = readLimitField(otherBefore, path, device);
        const now = readLimitField(otherAfter, path, device);
        check(
          now === was,
          () =>
            `${what} also changed the ${other} value of ${path} from ${show(was)} to ${show(now)}; apply '${mode}' must leave the ${other} values alone`,
        );
      }
    }
  } catch (error) {
    failure = error;
  }
  if (changed) {
    const restore = current === undefined ? null : current;
    try {
      await ctx.call(
        `restoring ${path}`,
        limits.set(target.ref, limitPatch(path, restore, device), setOptions),
      );
    } catch (error) {
      const note = `could not restore ${path} to ${show(restore)} after the check: ${String((error as Error)?.message ?? error)}`;
      if (failure instanceof Error) failure.message += ` (also: ${note})`;
      else fail(note, error);
    }
  }
  if (failure !== undefined) throw failure;
}

/** One rejected call: the patch and how it is shown in messages. */
interface Attempt {
  patch: ResourceLimits;
  text: string;
  /** The field it sets (and its device): put back as it was if the call wrongly succeeds. */
  field?: { path: LimitFieldPath; device: string | undefined };
}

/**
 * Every attempt must reject with `code`, and nothing may change: the limits (adapter and probe) are read
 * before the first attempt and after the last.
 */
async function rejectsUnchanged(
  ctx: CheckContext,
  code: 'INVALID_ARGUMENT' | 'UNSUPPORTED',
  attempts: readonly Attempt[],
): Promise<void> {
  const limits = limitsOf(ctx);
  const target = await ctx.target();
  const before = await ctx.call('limits.get()', limits.get(target.ref));
  const probeBefore = await probeLimits(ctx, target, 'persistent');
  const probeLiveBefore = await probeLimits(ctx, target, 'live');
  for (const { patch, text, field } of attempts) {
    try {
      await expectHvkitError(ctx.call(text, limits.set(target.ref, patch)), code, text);
    } catch (error) {
      // The call may have changed the guest: put the field back before failing (best effort).
      if (field && error instanceof Error) {
        const restore = readLimitField(before, field.path, field.device) ?? null;
        await ctx
          .call(
            `restoring ${field.path}`,
            limits.set(target.ref, limitPatch(field.path, restore, field.device)),
          )
          .catch((e: unknown) => {
            error.message += ` (also: could not restore ${field.path} to ${show(restore)}: ${String((e as Error)?.message ?? e)})`;
          });
      }
      throw error;
    }
  }
  const what =
    attempts.length === 1 ? attempts[0]?.text : `each of ${attempts.map((a) => a.text).join(', ')}`;
  const after = await ctx.call('limits.get()', limits.get(target.ref));
  const diff = firstDifference(before, after);
  if (diff) fail(`${what} was rejected but changed the limits anyway (limits.get before vs after: ${diff})`);
  for (const [from, b] of [
    ['persistent', probeBefore],
    ['live', probeLiveBefore],
  ] as const) {
    if (!b) continue;
    const a = await probeLimits(ctx, target, from);
    const d = firstDifference(b, a);
    if (d)
      fail(
        `${what} was rejected but the backend's ${from} limits changed (probe.getLimits before vs after: ${d})`,
      );
  }
}

/** What `inventory.host()` says about the host's CPUs and memory (nothing without `inventory.host`). */
async function hostFacts(ctx: CheckContext): Promise<HostLimitFacts> {
  const inv = ctx.adapter.inventory;
  if (!inv || ctx.env.supports.inventory === false || !ctx.env.supports.inventory.host) return {};
  const host = await ctx.call('inventory.host()', inv.host());
  const out: HostLimitFacts = {};
  const counts = [host?.cpu?.sockets ?? 1, host?.cpu?.cores, host?.cpu?.threads ?? 1];
  if (counts.every((n) => typeof n === 'number' && Number.isSafeInteger(n) && n > 0))
    out.cpuUpperBound = (counts as number[]).reduce((a, b) => a * b, 1);
  if (typeof host?.memoryBytes === 'number' && host.memoryBytes > 0) out.memoryBytes = host.memoryBytes;
  return out;
}

/** The `limits` group. */
export function limitsGroup(env: SuiteEnv): GroupDef {
  const lim = env.supports.limits;
  if (lim === false)
    return { name: 'limits', skipReason: 'not supported by adapter (supports.limits = false)', checks: [] };
  const supported = LIMIT_FIELDS.filter((f) => isLimitFieldSupported(lim, f.path));
  const unsupported = LIMIT_FIELDS.filter((f) => !isLimitFieldSupported(lim, f.path));
  const firstOf = (pred: (f: LimitFieldInfo) => boolean) => supported.find(pred);
  const plain = firstOf((f) => f.section !== 'disks' && f.section !== 'nics') ?? supported[0];

  const checks: CheckDef[] = [
    {
      id: 'limits.get',
      title: 'get() of every guest returns valid values in hvkit units, only supported fields, known devices',
      async run(ctx) {
        const limits = limitsOf(ctx);
        const guests = await ctx.guests();
        const list =
          guests.length > 0
            ? guests.slice(0, 20)
            : [(await ctx.target()).guest].filter((g) => g !== undefined);
        const refs =
          list.length > 0
            ? list.map((g) => ({ ref: g.id as string, guest: g }))
            : [{ ref: (await ctx.target()).ref, guest: undefined }];
        const problems: string[] = [];
        for (const { ref, guest } of refs) {
          const who = guest ? `guest ${show(guest.name)}` : 'the target';
          const got = await ctx.call(`limits.get(${show(ref)})`, limits.get(ref));
          if (typeof got !== 'object' || got === null || Array.isArray(got)) {
            problems.push(`${who}: limits.get returned ${show(got)}, not an object`);
            continue;
          }
          const devices = guest
            ? { disks: guest.disks.map((d) => d.device), nics: guest.nics.map((n) => n.device) }
            : undefined;
          for (const i of findLimitsIssues(got, { devices })) problems.push(`${who}: ${i.path} ${i.message}`);
          for (const f of findUnsupportedLimits(got, lim)) {
            problems.push(
              `${who}: reports ${f} although the manifest says it is unsupported (absent means unsupported)`,
            );
          }
          for (const f of LIMIT_FIELDS) {
            if (f.defaultValue === undefined) continue;
            const devices =
              f.section === 'disks' || f.section === 'nics'
                ? ((got[f.section] ?? []) as { device: string }[]).map((e) => e.device)
                : [undefined];
            for (const device of devices) {
              if (readLimitField(got, f.path, device) !== f.defaultValue) continue;
              problems.push(
                `${who}: reports ${f.path} = ${f.defaultValue}, the backend's default; a field at its default is reported as null (normalizeLimits)`,
              );
            }
          }
        }
        if (problems.length > 0) fail(`limits.get returned bad limits: ${problems.slice(0, 20).join('; ')}`);
      },
    },
  ];

  for (const f of supported) {
    checks.push({
      id: `limits.round-trip.${f.path}`,
      title: `set ${f.path} then get returns it (and the backend stores it); restored afterwards`,
      mutates: true,
      run: (ctx) => roundTrip(ctx, f.path, 'default'),
    });
  }
  for (const f of supported) {
    const dflt = f.defaultValue !== undefined ? ` and ${f.defaultValue} (its default)` : '';
    checks.push({
      id: `limits.null.${f.path}`,
      title: `set ${f.path} to null${dflt} then get returns null (set then get converges); restored afterwards`,
      mutates: true,
      run: (ctx) => roundTrip(ctx, f.path, 'default', 'null'),
    });
  }
  if (plain) {
    checks.push(
      {
        id: 'limits.apply.live',
        title: `apply 'live' changes the running guest only (${plain.path})`,
        mutates: true,
        unavailable: lim.modes.includes('live')
          ? undefined
          : "apply 'live' is not supported (supports.limits.modes)",
        run: (ctx) => roundTrip(ctx, plain.path, 'live'),
      },
      {
        id: 'limits.apply.persistent',
        title: `apply 'persistent' changes the definition only (${plain.path})`,
        mutates: true,
        unavailable: lim.modes.includes('persistent')
          ? undefined
          : "apply 'persistent' is not supported (supports.limits.modes)",
        run: (ctx) => roundTrip(ctx, plain.path, 'persistent'),
      },
    );
  }

  const one = (ctx: CheckContext, t: Target, path: LimitFieldPath, value: number, why?: string): Attempt => {
    const device = deviceFor(ctx, t, limitField(path));
    return {
      patch: limitPatch(path, value, device),
      text: `limits.set(${patchText(path, value, device)})${why ? ` (${why})` : ''}`,
      field: { path, device },
    };
  };
  for (const f of supported) {
    const values = badLimitValues(f.path).map((b) => show(b.value));
    if (f.hostBound)
      values.push(
        f.hostBound === 'logicalCpus' ? "more than the host's CPUs" : "more than the host's memory",
      );
    checks.push({
      id: `limits.invalid.${f.path}`,
      title: `bad ${f.path} values (${values.join(', ')}) are rejected with INVALID_ARGUMENT and nothing changes`,
      async run(ctx) {
        const t = await ctx.target();
        const host = f.hostBound ? await hostFacts(ctx) : {};
        const attempts = badLimitValues(f.path, host).map(({ value, why }) =>
          one(ctx, t, f.path, value, why),
        );
        await rejectsUnchanged(ctx, 'INVALID_ARGUMENT', attempts);
      },
    });
  }
  const deviceField = firstOf((f) => f.section === 'disks') ?? firstOf((f) => f.section === 'nics');
  const invalid = (id: string, title: string, make: () => Attempt | string): CheckDef => ({
    id: `limits.invalid.${id}`,
    title: `${title} is rejected with INVALID_ARGUMENT and nothing changes`,
    async run(ctx) {
      const made = make();
      if (typeof made === 'string') return ctx.skip(made);
      await rejectsUnchanged(ctx, 'INVALID_ARGUMENT', [made]);
    },
  });
  checks.push(
    invalid('unknown-device', 'an entry for a device the guest does not have', () => {
      if (!deviceField) return 'neither disk nor NIC limits are supported';
      const value = limitTestValue(env, deviceField.path, undefined, undefined);
      return {
        patch: limitPatch(deviceField.path, value, MISSING_DEVICE),
        text: `limits.set(${patchText(deviceField.path, value, MISSING_DEVICE)})`,
        field: { path: deviceField.path, device: MISSING_DEVICE },
      };
    }),
    invalid('unknown-key', 'an unknown key (cpu.shares)', () => ({
      patch: { cpu: { shares: 1024 } } as unknown as ResourceLimits,
      text: 'limits.set({ cpu: { shares: 1024 } })',
    })),
  );

  for (const f of unsupported) {
    checks.push({
      id: `limits.unsupported.${f.path}`,
      title: `setting ${f.path} (unsupported in the manifest), to a value or to null, is rejected with UNSUPPORTED and nothing changes`,
      async run(ctx) {
        const t = await ctx.target();
        const value = limitTestValue(env, f.path, undefined, t.guest);
        const device = deviceFor(ctx, t, f);
        await rejectsUnchanged(
          ctx,
          'UNSUPPORTED',
          [value, null].map((v) => ({
            patch: limitPatch(f.path, v, device),
            text: `limits.set(${patchText(f.path, v, device)})`,
            field: { path: f.path, device },
          })),
        );
      },
    });
  }

  checks.push({
    id: 'limits.not-found',
    title: 'get and set reject an unknown guest with NOT_FOUND',
    async run(ctx) {
      const limits = limitsOf(ctx);
      await expectHvkitError(
        ctx.call('limits.get(unknown)', limits.get(MISSING_GUEST_ID)),
        'NOT_FOUND',
        `limits.get("${MISSING_GUEST_ID}")`,
      );
      const patch: ResourceLimits = plain
        ? limitPatch(plain.path, limitTestValue(env, plain.path, undefined, undefined))
        : {};
      await expectHvkitError(
        ctx.call('limits.set(unknown)', limits.set({ name: MISSING_GUEST_ID }, patch)),
        'NOT_FOUND',
        `limits.set({ name: "${MISSING_GUEST_ID}" }, ${show(patch)})`,
      );
    },
  });
  return { name: 'limits', checks };
}
