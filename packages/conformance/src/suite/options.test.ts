/**
 * How the suite reads `supports`, shows skips with their reasons, validates its options and reports
 * hung calls, factory failures and manifests that do not match the adapter.
 */
import { type HypervisorAdapterV1, specV1Methods } from '@hvkit/core';
import {
  createDefaultDataset,
  createInMemoryAdapter,
  type InMemoryAdapter,
  type InMemoryGuestSeed,
} from '@hvkit/core/testing';
import { describe, expect, it } from 'vitest';
import {
  type ConformanceReport,
  createConformanceCollector,
  formatConformanceReport,
  runConformanceReport,
} from './collector';
import { listConformanceChecks, runAdapterConformance } from './run';
import type { ConformanceOptions } from './types';

const probe = (a: HypervisorAdapterV1) => (a as InMemoryAdapter).backend;

async function run(
  options: Partial<ConformanceOptions> & Pick<ConformanceOptions, 'factory'>,
  filter?: (id: string) => boolean,
): Promise<ConformanceReport> {
  const collector = createConformanceCollector();
  runAdapterConformance({ name: 'in-memory', mode: 'live', probe, ...options, test: collector.test });
  return collector.run(filter ? { filter: (r) => filter(r.id) } : {});
}

const byId = (report: ConformanceReport, id: string) => report.results.find((r) => r.id === id);
const failedIds = (report: ConformanceReport) =>
  report.results.filter((r) => r.status === 'failed').map((r) => r.id);

describe('capabilities and skips', () => {
  it('skips a capability the manifest says is absent, showing the reason in the test name', async () => {
    const report = await run({
      factory: async () => createInMemoryAdapter({ without: ['limits', 'events'] }),
    });
    expect(failedIds(report)).toEqual([]);
    const limits = report.results.find((r) => r.path.at(-1) === 'limits');
    expect(limits).toMatchObject({
      name: 'limits: not supported by adapter (supports.limits = false)',
      status: 'skipped',
    });
    expect(limits?.message).toBe('not supported by adapter (supports.limits = false)');
    expect(
      report.results.find((r) => r.name === 'events: not supported by adapter (supports.events = false)')
        ?.status,
    ).toBe('skipped');
    expect(report.results.some((r) => r.id.startsWith('cancellation.pre-aborted.limits'))).toBe(false);
  });

  it('checks UNSUPPORTED for fields the manifest marks unsupported instead of round-tripping them', async () => {
    const report = await run({
      factory: async () =>
        createInMemoryAdapter({ supports: { limits: { memory: { swapMaxBytes: false }, network: false } } }),
    });
    expect(failedIds(report)).toEqual([]);
    expect(byId(report, 'limits.round-trip.memory.swapMaxBytes')).toBeUndefined();
    expect(byId(report, 'limits.unsupported.memory.swapMaxBytes')?.status).toBe('passed');
    expect(byId(report, 'limits.unsupported.nics.inboundBurstBytes')?.status).toBe('passed');
  });

  it('fails an adapter whose manifest says unsupported but which accepts and reports the field', async () => {
    const factory = async () => {
      const a = createInMemoryAdapter();
      const lim = a.supports.limits as Exclude<typeof a.supports.limits, false>;
      // The adapter with another manifest (its own properties are read-only: a new object on top).
      return Object.create(a, {
        supports: {
          value: { ...a.supports, limits: { ...lim, memory: { ...lim.memory, swapMaxBytes: false } } },
        },
      }) as HypervisorAdapterV1;
    };
    const report = await run({ factory });
    expect(failedIds(report).sort()).toEqual(['limits.get', 'limits.unsupported.memory.swapMaxBytes']);
    expect(byId(report, 'limits.get')?.message).toContain(
      'guest "db-01": reports memory.swapMaxBytes although the manifest says it is unsupported',
    );
    expect(byId(report, 'limits.unsupported.memory.swapMaxBytes')?.message).toMatch(
      /^limits\.set\(\{ memory: \{ swapMaxBytes: 1073741824 \} \}\) resolved .*; expected it to reject with an HvkitError with code UNSUPPORTED$/,
    );
  });

  it('fails a manifest that does not match the capability objects', async () => {
    const factory = async () => {
      const a = createInMemoryAdapter({ supports: { inventory: { networks: false } } });
      const inv = a.supports.inventory as Exclude<typeof a.supports.inventory, false>;
      return Object.create(a, {
        supports: { value: { ...a.supports, inventory: { ...inv, networks: true } } },
      }) as HypervisorAdapterV1;
    };
    const report = await run({ factory }, (id) => id === 'adapter.supports');
    expect(byId(report, 'adapter.supports')).toMatchObject({
      status: 'failed',
      message:
        'the supports manifest does not match the adapter: supports.inventory.networks is true but inventory.listNetworks is missing',
    });
  });

  it('shows options.skip reasons, skips by prefix, and fails on a skip key that names no check', async () => {
    const report = await run({
      factory: async () => createInMemoryAdapter(),
      skip: {
        'backups.incremental': 'fixtures were recorded before checkpoints existed',
        'cancellation.pre-aborted': 'checked separately',
        'limits.round-trip.cpu.shares': 'a typo',
      },
    });
    const inc = byId(report, 'backups.incremental');
    expect(inc?.status).toBe('skipped');
    expect(inc?.name).toMatch(
      /\[skipped: fixtures were recorded before checkpoints existed \(options\.skip\)\]$/,
    );
    expect(
      report.results
        .filter((r) => r.id.startsWith('cancellation.pre-aborted.'))
        .every((r) => r.status === 'skipped'),
    ).toBe(true);
    expect(failedIds(report)).toEqual(['conformance.options']);
    expect(byId(report, 'conformance.options')?.message).toContain(
      'options.skip names no check: "limits.round-trip.cpu.shares"',
    );
  });

  it('skips mutating checks with a reason when mutations are off', async () => {
    const report = await run({
      factory: async () => createInMemoryAdapter(),
      mode: 'replay',
      mutations: false,
    });
    expect(failedIds(report)).toEqual([]);
    for (const id of [
      'limits.round-trip.cpu.weight',
      'labels.set',
      'backups.full',
      'backups.snapshots.create-delete',
      'cancellation.abort-during-backup',
    ]) {
      expect(byId(report, id)).toMatchObject({
        status: 'skipped',
        message: 'mutations disabled (options.mutations = false)',
      });
    }
    expect(byId(report, 'limits.invalid.cpu.weight')?.status).toBe('passed');
  });

  it('skips probe-based checks at run time, with the reason, when there is no probe', async () => {
    const report = await run({
      factory: async () => createInMemoryAdapter(),
      mode: 'replay',
      probe: undefined,
    });
    expect(failedIds(report)).toEqual([]);
    expect(byId(report, 'inventory.backend-agrees')).toMatchObject({
      status: 'skipped',
      message: 'needs probe.getGuestFacts or probe.guestExists',
    });
    expect(byId(report, 'events.lifecycle')).toMatchObject({
      status: 'skipped',
      message: 'needs probe.triggerEvent',
    });
  });

  it('works on a stopped target and without inventory when a target is given', async () => {
    const stopped = await run({ factory: async () => createInMemoryAdapter(), target: { name: 'build-01' } });
    expect(failedIds(stopped)).toEqual([]);
    expect(byId(stopped, 'limits.apply.live')).toMatchObject({
      status: 'skipped',
      message: 'the target guest is not running, so it has no live limits',
    });
    expect(byId(stopped, 'limits.round-trip.cpu.weight')?.status).toBe('passed');

    const noInventory = await run({
      factory: async () => createInMemoryAdapter({ without: ['inventory'] }),
      target: 'vm-101',
    });
    expect(failedIds(noInventory)).toEqual([]);
    expect(byId(noInventory, 'limits.round-trip.disks.readIops')?.message).toMatch(
      /no inventory to name one/,
    );
  });

  it('labels.set uses a stopped guest that has a label to set back, whichever stopped guest is listed first', async () => {
    // A stopped guest without labels (as a throwaway guest of another test may be), listed before build-01:
    // the check must not skip because of the order the backend lists its guests in.
    const dataset = createDefaultDataset();
    const build = dataset.guests.findIndex((g) => g.id === 'vm-103');
    dataset.guests.splice(build, 0, {
      ...(dataset.guests[build] as InMemoryGuestSeed),
      id: 'vm-104',
      uuid: 'c0ffee00-1234-4abc-8def-0123456789ac',
      name: 'bare-01',
      disks: [],
      nics: [],
      labels: [],
    });
    const report = await run({ factory: async () => createInMemoryAdapter({ dataset }) }, (id) =>
      id.startsWith('labels.'),
    );
    expect(failedIds(report)).toEqual([]);
    expect(byId(report, 'labels.set')?.status).toBe('passed');

    // With no stopped guest that has one, it is skipped with the reason.
    for (const g of dataset.guests) if (g.powerState === 'stopped') g.labels = [];
    const none = await run({ factory: async () => createInMemoryAdapter({ dataset }) }, (id) =>
      id.startsWith('labels.'),
    );
    expect(byId(none, 'labels.set')).toMatchObject({
      status: 'skipped',
      message: 'no stopped guest has a static or dynamic label of a supported model to set back',
    });
  });
});

describe('failures the runner itself reports', () => {
  it('names a call that never settles', async () => {
    const factory = async () => {
      const a = createInMemoryAdapter();
      return {
        ...a,
        inventory: { ...a.inventory, host: () => new Promise<never>(() => {}) },
      } as HypervisorAdapterV1;
    };
    const report = await run({ factory, callTimeoutMs: 50 }, (id) => id === 'inventory.host');
    expect(byId(report, 'inventory.host')).toMatchObject({
      status: 'failed',
      message: 'inventory.host() did not settle within 50 ms (every call must end: timeouts everywhere)',
    });
  });

  it('reports a failing factory as one failing test', async () => {
    const report = await run({ factory: async () => Promise.reject(new Error('connection refused')) });
    expect(report.results.map((r) => [r.id, r.status])).toEqual([['adapter.factory', 'failed']]);
    expect(report.results[0]?.message).toBe('factory() failed, so no check could run: connection refused');
  });

  it('rejects bad options with TypeError', () => {
    const factory = async () => createInMemoryAdapter();
    const collector = createConformanceCollector();
    expect(() => runAdapterConformance({ name: 'x', mode: 'live', factory, test: collector.test })).toThrow(
      /live mode needs a probe/,
    );
    expect(() =>
      runAdapterConformance({
        name: 'x',
        mode: 'replay',
        factory,
        skip: { backups: ' ' },
        test: collector.test,
      }),
    ).toThrow(/skip\["backups"\] needs a non-empty reason/);
    expect(() => runAdapterConformance({ name: '', mode: 'replay', factory, test: collector.test })).toThrow(
      TypeError,
    );
    expect(() =>
      runAdapterConformance({ name: 'x', mode: 'bogus' as 'live', factory, test: collector.test }),
    ).toThrow(TypeError);
  });
});

describe('running without a test runner', () => {
  it('returns and formats a report', async () => {
    const report = await runConformanceReport({
      name: 'in-memory',
      mode: 'live',
      factory: async () => createInMemoryAdapter({ without: ['events'] }),
      probe,
    });
    expect(report.ok).toBe(true);
    const text = formatConformanceReport(report);
    expect(text).toContain('✓ limits.round-trip.cpu.weight');
    expect(text).toContain('- events  (skipped: not supported by adapter (supports.events = false))');
    expect(text.split('\n').at(-1)).toBe(`${report.passed} passed, 0 failed, ${report.skipped} skipped`);
  });

  it('lists the checks a manifest gets', () => {
    const { supports } = createInMemoryAdapter();
    // Every optional method switched on, so every method of the spec gets its pre-aborted check.
    const all = {
      ...supports,
      backups: {
        ...(supports.backups as Exclude<typeof supports.backups, false>),
        checkpoints: true,
        cleanup: true,
        restore: { asNew: true, inPlace: true, incrementalChains: true },
      },
    };
    const ids = listConformanceChecks(all).map((c) => c.id);
    expect(ids).toContain('limits.round-trip.nics.outboundBurstBytes');
    expect(ids).toContain('cancellation.abort-during-backup');
    expect(new Set(ids).size).toBe(ids.length);
    // Every method of the spec is called with an already-aborted signal (events.subscribe in its group).
    for (const row of specV1Methods()) {
      expect(ids).toContain(
        row.kind === 'stream' ? `${row.capability}.pre-aborted` : `cancellation.pre-aborted.${row.operation}`,
      );
    }
  });
});
