import {
  type DeepReadonly,
  type HypervisorAdapterV1,
  SPEC_V1_CAPABILITIES,
  type SupportsManifest,
} from '@hvkit/core';
import { describe as vitestDescribe, it as vitestIt } from 'vitest';
import { ConformanceFailure, ConformanceSkip, show, within } from './assert';
import { adapterGroup } from './checks-adapter';
import { backupsGroup } from './checks-backups';
import { cancellationGroup } from './checks-cancellation';
import { eventsGroup } from './checks-events';
import { inventoryGroup } from './checks-inventory';
import { labelsGroup } from './checks-labels';
import { limitsGroup } from './checks-limits';
import { serviceGroup } from './checks-service';
import { type CheckDef, type GroupDef, makeContext, type SuiteEnv } from './context';
import type {
  ConformanceOptions,
  ConformanceProbe,
  ConformanceTestApi,
  ConformanceTestContext,
} from './types';

function checkOptions(options: ConformanceOptions): void {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('runAdapterConformance: options must be an object');
  if (typeof options.name !== 'string' || options.name.trim() === '')
    throw new TypeError('runAdapterConformance: name must be a non-empty string');
  if (typeof options.factory !== 'function')
    throw new TypeError(
      'runAdapterConformance: factory must be a function returning a Promise of an adapter',
    );
  if (options.mode !== 'replay' && options.mode !== 'live')
    throw new TypeError(`runAdapterConformance: mode must be 'replay' or 'live', got ${show(options.mode)}`);
  if (options.mode === 'live' && options.probe === undefined) {
    throw new TypeError(
      'runAdapterConformance: live mode needs a probe that reads the backend without the adapter (options.probe)',
    );
  }
  for (const k of ['factoryWithoutReconnect'] as const) {
    if (options[k] !== undefined && typeof options[k] !== 'function')
      throw new TypeError(`runAdapterConformance: ${k} must be a function`);
  }
  const peer = options.peer;
  if (
    peer !== undefined &&
    (typeof peer !== 'object' ||
      peer === null ||
      typeof peer.kill !== 'function' ||
      typeof peer.restart !== 'function')
  ) {
    throw new TypeError('runAdapterConformance: peer must have kill() and restart()');
  }
  if (
    options.probe !== undefined &&
    (options.probe === null || (typeof options.probe !== 'object' && typeof options.probe !== 'function'))
  ) {
    throw new TypeError('runAdapterConformance: probe must be an object or a function of the adapter');
  }
  for (const [key, reason] of Object.entries(options.skip ?? {})) {
    if (typeof reason !== 'string' || reason.trim() === '') {
      throw new TypeError(
        `runAdapterConformance: skip[${JSON.stringify(key)}] needs a non-empty reason string`,
      );
    }
  }
  for (const [key, value] of Object.entries(options.limitValues ?? {})) {
    if (typeof value !== 'number' || !Number.isFinite(value))
      throw new TypeError(
        `runAdapterConformance: limitValues[${JSON.stringify(key)}] must be a finite number`,
      );
  }
  const t = options.test;
  if (
    t !== undefined &&
    (typeof t.describe !== 'function' || typeof t.it !== 'function' || typeof t.it.skip !== 'function')
  ) {
    throw new TypeError('runAdapterConformance: test must provide describe, it and it.skip');
  }
  for (const k of ['callTimeoutMs', 'testTimeoutMs'] as const) {
    const v = options[k];
    if (v !== undefined && !(typeof v === 'number' && v > 0))
      throw new TypeError(`runAdapterConformance: ${k} must be a positive number`);
  }
}

/** The manifest with every capability present (`false` when missing or malformed), for deciding groups. */
function normaliseSupports(supports: unknown): DeepReadonly<SupportsManifest> {
  const s = (typeof supports === 'object' && supports !== null ? supports : {}) as Record<string, unknown>;
  const out: Record<string, unknown> = {};
  for (const cap of SPEC_V1_CAPABILITIES) {
    const v = s[cap];
    out[cap] = typeof v === 'object' && v !== null ? v : false;
  }
  return out as unknown as DeepReadonly<SupportsManifest>;
}

async function resolveProbe(
  options: ConformanceOptions,
  adapter: HypervisorAdapterV1,
): Promise<ConformanceProbe | undefined> {
  const p = options.probe;
  if (typeof p === 'function') return await p(adapter);
  return p;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

async function runCheck(
  env: SuiteEnv,
  check: CheckDef,
  testContext: ConformanceTestContext | undefined,
): Promise<void> {
  const callTimeoutMs = env.options.callTimeoutMs ?? 30_000;
  let adapter: HypervisorAdapterV1;
  try {
    adapter = await within(
      Promise.resolve().then(() => env.options.factory()),
      callTimeoutMs,
      'factory()',
    );
  } catch (error) {
    throw new ConformanceFailure(`factory() failed: ${message(error)}`, { cause: error });
  }
  let failure: unknown;
  try {
    const probe = await resolveProbe(env.options, adapter);
    await check.run(makeContext(env, adapter, probe, testContext ?? {}));
  } catch (error) {
    failure = error;
  }
  try {
    await within(
      Promise.resolve().then(() => adapter.close()),
      callTimeoutMs,
      'close()',
    );
  } catch (error) {
    if (failure === undefined)
      failure = new ConformanceFailure(`close() failed after the check: ${message(error)}`, { cause: error });
  }
  if (failure !== undefined) throw failure;
}

function groupsFor(env: SuiteEnv): GroupDef[] {
  return [
    adapterGroup,
    inventoryGroup,
    limitsGroup,
    labelsGroup,
    backupsGroup,
    eventsGroup,
    cancellationGroup,
    serviceGroup,
  ].map((g) => g(env));
}

function matches(key: string, id: string): boolean {
  return id === key || id.startsWith(`${key}.`);
}

/**
 * Registers the hvkit conformance suite for one adapter with the test runner (vitest by default).
 *
 * It calls `factory()` once while collecting, to read `supports`, and registers one `describe` per group
 * (`adapter`, `inventory`, `limits`, `labels`, `backups`, `events`, `cancellation`, `service`) and one test per
 * check, named `<id>: <what it checks>`. Each test gets a fresh adapter from `factory()` and closes it.
 *
 * Skips are always visible with their reason: a capability the manifest says is absent becomes one skipped
 * test `limits: not supported by adapter (supports.limits = false)`; a check that does not apply, or one
 * named in `options.skip`, becomes a skipped test whose name ends with `[skipped: <reason>]`; a check that
 * finds at run time that it cannot run (no stopped guest, no probe method) is skipped through the runner's
 * `context.skip(reason)`. A `skip` key that matches no check is itself a failing test.
 *
 * Checks fail with a message saying what the adapter did wrong (e.g. `cpu.weight does not round-trip: ...
 * limits.get() returned 400 (2× the value set)`).
 *
 * @throws TypeError for bad options (no name or factory, live mode without probe, a skip without reason).
 *
 * @example
 * // packages/kvm-libvirt/src/conformance.test.ts
 * import { runAdapterConformance } from '@hvkit/conformance';
 * runAdapterConformance({ name: 'kvm-libvirt (replay)', mode: 'replay', factory: () => connectReplay() });
 */
export function runAdapterConformance(options: ConformanceOptions): void {
  checkOptions(options);
  const api: ConformanceTestApi = options.test ?? { describe: vitestDescribe, it: vitestIt };
  const testTimeoutMs = options.testTimeoutMs ?? 120_000;
  const callTimeoutMs = options.callTimeoutMs ?? 30_000;

  api.describe(`${options.name}: hvkit conformance (${options.mode})`, async () => {
    let first: HypervisorAdapterV1;
    try {
      first = await within(
        Promise.resolve().then(() => options.factory()),
        callTimeoutMs,
        'factory()',
      );
    } catch (error) {
      api.it(
        'adapter.factory: factory() returns an adapter',
        async () => {
          throw new ConformanceFailure(`factory() failed, so no check could run: ${message(error)}`, {
            cause: error,
          });
        },
        testTimeoutMs,
      );
      return;
    }
    const env: SuiteEnv = {
      options,
      supports: normaliseSupports(first?.supports),
      adapterId: String(first?.adapter),
      mutations: options.mutations ?? true,
    };
    try {
      await within(
        Promise.resolve().then(() => first.close()),
        callTimeoutMs,
        'close()',
      );
    } catch {
      // Reported by the adapter.close check with a fresh adapter.
    }

    const groups = groupsFor(env);
    const skip = options.skip ?? {};
    const used = new Set<string>();
    // Decide every test's fate first (nested describe callbacks run only after this one returns).
    const plan = groups.map((group) => {
      if (group.skipReason) {
        for (const key of Object.keys(skip))
          if (key === group.name || key.startsWith(`${group.name}.`)) used.add(key);
        return { group, tests: [] as { check: CheckDef; name: string; reason: string | undefined }[] };
      }
      const tests = group.checks.map((check) => {
        const key = Object.keys(skip).find((k) => matches(k, check.id));
        if (key !== undefined) used.add(key);
        const reason =
          key !== undefined
            ? `${skip[key]} (options.skip)`
            : (check.unavailable ??
              (check.mutates && !env.mutations
                ? 'mutations disabled (options.mutations = false)'
                : undefined));
        return { check, name: `${check.id}: ${check.title}`, reason };
      });
      return { group, tests };
    });
    for (const { group, tests } of plan) {
      api.describe(group.name, () => {
        if (group.skipReason) {
          api.it.skip(`${group.name}: ${group.skipReason}`);
          return;
        }
        for (const { check, name, reason } of tests) {
          if (reason !== undefined) api.it.skip(`${name} [skipped: ${reason}]`);
          else api.it(name, (testContext) => runCheck(env, check, testContext), testTimeoutMs);
        }
      });
    }
    const unknown = Object.keys(skip).filter((k) => !used.has(k));
    if (unknown.length > 0) {
      api.it('conformance.options: every skip key names a check', async () => {
        throw new ConformanceFailure(
          `options.skip names no check: ${unknown.map((k) => JSON.stringify(k)).join(', ')} (use a check id such as 'limits.round-trip.cpu.weight' or a prefix such as 'backups')`,
        );
      });
    }
  });
}

/** Ids of every check the suite would register for a manifest (all groups, including unavailable checks). */
export function listConformanceChecks(
  supports: DeepReadonly<SupportsManifest>,
): { id: string; title: string; unavailable?: string }[] {
  const env: SuiteEnv = {
    options: { name: 'list', mode: 'replay', factory: async () => Promise.reject(new Error('not used')) },
    supports: normaliseSupports(supports),
    adapterId: '',
    mutations: true,
  };
  return groupsFor(env).flatMap((g) =>
    g.skipReason
      ? [{ id: g.name, title: g.name, unavailable: g.skipReason }]
      : g.checks.map((c) => ({
          id: c.id,
          title: c.title,
          ...(c.unavailable ? { unavailable: c.unavailable } : {}),
        })),
  );
}

export { ConformanceFailure, ConformanceSkip };
