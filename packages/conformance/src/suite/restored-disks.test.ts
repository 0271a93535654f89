/**
 * `options.restoredDisks`: how the restore checks pair a restored guest's disks with the original's. An
 * adapter whose disk device names the volume (LVM's `vg/lv`) restores as new into new volumes, so its devices
 * differ from the original's; with `'order'` the disks are paired by position (capacity and content), with
 * the default `'device'` by name.
 */
import type { RestoreResult } from '@hvkit/core';
import type { InMemoryAdapter } from '@hvkit/core/testing';
import { describe, expect, it } from 'vitest';
import { DISKLESS_GUEST, inMemoryWithDisklessGuest } from './__samples__/diskless';
import { type ConformanceReport, createConformanceCollector } from './collector';
import { runAdapterConformance } from './run';
import type { ConformanceOptions, ConformanceProbe } from './types';

const RESTORE_CHECKS = ['backups.restore.as-new', 'backups.restore.incremental-chain'];

/** `target` with some members replaced; every other method runs on `target` itself (its private fields). */
function delegate<T extends object>(target: T, overrides: Record<PropertyKey, unknown>): T {
  return new Proxy(target, {
    get(t, key) {
      if (Object.hasOwn(overrides, key)) return overrides[key];
      const value = Reflect.get(t, key);
      return typeof value === 'function' ? value.bind(t) : value;
    },
  });
}

/**
 * The reference adapter, its restores reporting each disk under a new device name (`new-<device>`, as a
 * restore into new volumes does) and, with `grow`, one byte more capacity; the probe reads `new-<device>`
 * as `<device>`.
 */
function renamingAdapter(grow = false): InMemoryAdapter {
  const adapter = inMemoryWithDisklessGuest();
  const backups = adapter.backups;
  if (!backups?.restore) throw new Error('the reference adapter restores');
  const restore = backups.restore.bind(backups);
  // The capability objects are frozen: a proxy answers `restore` with the wrapper, everything else as is.
  const renamed = delegate(backups, {
    async restore(...args: Parameters<typeof restore>): Promise<RestoreResult> {
      const result = await restore(...args);
      const disks = result.guest.disks.map((d) => ({
        ...d,
        device: `new-${d.device}`,
        ...(grow && d.capacityBytes !== undefined ? { capacityBytes: d.capacityBytes + 1 } : {}),
      }));
      return { ...result, guest: { ...result.guest, disks } };
    },
  });
  return delegate(adapter, { backups: renamed });
}

function renamingProbe(adapter: InMemoryAdapter): ConformanceProbe {
  const backend = adapter.backend;
  const sha256 = backend.diskSha256.bind(backend) as (guest: unknown, device: string) => string;
  return delegate(backend as ConformanceProbe, {
    diskSha256: (guest: unknown, device: string) => sha256(guest, device.replace(/^new-/, '')),
  });
}

async function run(
  factory: () => InMemoryAdapter,
  restoredDisks: ConformanceOptions['restoredDisks'],
): Promise<ConformanceReport> {
  const collector = createConformanceCollector();
  runAdapterConformance({
    name: 'restored disks',
    mode: 'live',
    factory: async () => factory(),
    probe: (a) => renamingProbe(a as InMemoryAdapter),
    disklessGuest: DISKLESS_GUEST,
    ...(restoredDisks ? { restoredDisks } : {}),
    test: collector.test,
  });
  return collector.run();
}

function restoreResults(report: ConformanceReport) {
  return report.results
    .filter((r) => RESTORE_CHECKS.includes(r.id))
    .map((r) => ({ id: r.id, status: r.status, message: r.message ?? '' }));
}

describe('options.restoredDisks', () => {
  it("'device' (the default): restored disks under new device names fail the restore checks", async () => {
    const results = restoreResults(await run(() => renamingAdapter(), undefined));
    expect(results.map((r) => r.status)).toEqual(['failed', 'failed']);
    expect(results[0]?.message).toMatch(/disks \[new-vda:\d+.*\], the original has \[vda:\d+/);
  });

  it("'order': the same restores pass, disks paired by position and compared by capacity and content", async () => {
    const results = restoreResults(await run(() => renamingAdapter(), 'order'));
    expect(results.map((r) => [r.id, r.status])).toEqual(RESTORE_CHECKS.map((id) => [id, 'passed']));
  });

  it("'order': a restored disk of another capacity still fails", async () => {
    const results = restoreResults(await run(() => renamingAdapter(true), 'order'));
    expect(results.map((r) => r.status)).toEqual(['failed', 'failed']);
    expect(results[0]?.message).toMatch(
      /disks \[\d+, \d+\], the original has \[\d+, \d+\] \(capacities, in order\)/,
    );
  });
});
