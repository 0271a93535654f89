/**
 * A suite that cannot fail is worthless: each deliberately broken variant of the reference adapter must
 * make exactly the checks about its bug fail, with a message that names what is wrong, while every other
 * check still passes.
 */
import { hvkitError } from '@hvkit/core';
import {
  createInMemoryAdapter,
  createInMemoryBackend,
  type InMemoryAdapter,
  type InMemoryFaults,
  type InMemorySupportsOverride,
} from '@hvkit/core/testing';
import { describe, expect, it } from 'vitest';
import { DISKLESS_GUEST, inMemoryWithDisklessGuest } from './__samples__/diskless';
import { type ConformanceReport, createConformanceCollector } from './collector';
import { runAdapterConformance } from './run';

async function runWith(
  faults: InMemoryFaults,
  mode: 'live' | 'replay' = 'live',
  supports?: InMemorySupportsOverride,
): Promise<ConformanceReport> {
  const collector = createConformanceCollector();
  runAdapterConformance({
    name: 'broken in-memory',
    mode,
    factory: async () => inMemoryWithDisklessGuest({ faults, ...(supports ? { supports } : {}) }),
    ...(mode === 'live' ? { probe: (a) => (a as InMemoryAdapter).backend } : {}),
    disklessGuest: DISKLESS_GUEST,
    test: collector.test,
  });
  return collector.run();
}

function failures(report: ConformanceReport): Map<string, string> {
  return new Map(report.results.filter((r) => r.status === 'failed').map((r) => [r.id, r.message ?? '']));
}

describe('the suite catches broken adapters', () => {
  it('passes the reference adapter (the baseline the variants differ from)', async () => {
    const report = await runWith({});
    expect(failures(report)).toEqual(new Map());
    // Only the service group skips: the in-memory adapter reports no connection state and has no peer to kill.
    expect(
      report.results
        .filter((r) => r.status === 'skipped')
        .map((r) => r.id)
        .sort(),
    ).toEqual([
      'service.close-while-reconnecting',
      'service.no-reconnect',
      'service.restart',
      'service.state',
    ]);
    expect(report.passed).toBeGreaterThan(60);
  });

  it('(a) memory reported in KiB instead of bytes', async () => {
    const failed = failures(await runWith({ reportMemoryInKiB: true }));
    // The host's memory in KiB also makes the suite's "more than the host's memory" values too small, and
    // the adapter accepts them: those checks name the number they took from inventory.host().
    expect([...failed.keys()].sort()).toEqual([
      'inventory.backend-agrees',
      'inventory.guests',
      'limits.invalid.memory.maxBytes',
      'limits.invalid.memory.minBytes',
      'limits.invalid.memory.softBytes',
    ]);
    expect(failed.get('limits.invalid.memory.maxBytes')).toMatch(
      /\(more than the host's memory: inventory\.host\(\) memoryBytes = 268435456\) resolved/,
    );
    expect(failed.get('inventory.guests')).toMatch(
      /guest "build-01": memoryBytes is 524288, under 1 MiB: memory must be in bytes \(is it in KiB\?\)/,
    );
    expect(failed.get('inventory.backend-agrees')).toMatch(
      /guest "web-01": memoryBytes is 2097152 but the backend has 2147483648 bytes \(KiB reported as bytes\)/,
    );
  });

  it('(b) a limit that does not round-trip (weight stored twice as large)', async () => {
    const failed = failures(await runWith({ scaleLimitsOnWrite: { 'cpu.weight': 2 } }));
    // limits.null.cpu.weight: the default weight 100, stored as 200, does not read back as null either.
    expect([...failed.keys()].sort()).toEqual([
      'limits.apply.live',
      'limits.apply.persistent',
      'limits.null.cpu.weight',
      'limits.round-trip.cpu.weight',
    ]);
    expect(failed.get('limits.round-trip.cpu.weight')).toMatch(
      /^cpu\.weight does not round-trip: limits\.set\(\{ cpu: \{ weight: 200 \} \}\) returned limits with cpu\.weight = 400 \(2× the value set\)$/,
    );
  });

  it('(b) a limit that does not round-trip in a KiB unit slip is named as such', async () => {
    const failed = failures(await runWith({ scaleLimitsOnWrite: { 'memory.softBytes': 1024 } }));
    expect([...failed.keys()]).toEqual(['limits.round-trip.memory.softBytes']);
    expect(failed.get('limits.round-trip.memory.softBytes')).toMatch(
      /1024× the value set: KiB reported as bytes\?/,
    );
  });

  it('(c) an abort or a failure that leaves the temporary snapshot behind', async () => {
    const failed = failures(await runWith({ leaveSnapshotOnAbort: true }));
    expect([...failed.keys()].sort()).toEqual(['backups.sink-failure', 'cancellation.abort-during-backup']);
    expect(failed.get('cancellation.abort-during-backup')).toMatch(
      /^the aborted backup left snapshot\(s\) snap-\d+ behind \(probe\.listSnapshotIds\); it must remove the temporary snapshot it made$/,
    );
    expect(failed.get('backups.sink-failure')).toMatch(
      /^the failed backup left snapshot\(s\) snap-\d+ behind \(probe\.listSnapshotIds\); it must remove the temporary snapshot it made$/,
    );
  });

  it('(c) without a probe, the leftover snapshot is still seen through listSnapshots', async () => {
    const failed = failures(await runWith({ leaveSnapshotOnAbort: true }, 'replay'));
    expect([...failed.keys()].sort()).toEqual(['backups.sink-failure', 'cancellation.abort-during-backup']);
    expect(failed.get('cancellation.abort-during-backup')).toMatch(
      /left snapshot\(s\) snap-\d+ behind \(backups\.listSnapshots\)/,
    );
  });

  it('(c) a failing sink (not an abort) that leaves the new checkpoint behind', async () => {
    const failed = failures(await runWith({ leaveCheckpointOnFailure: true }));
    expect([...failed.keys()]).toEqual(['backups.sink-failure']);
    expect(failed.get('backups.sink-failure')).toMatch(
      /^the failed backup left checkpoint\(s\) cp-\d+ behind \(probe\.listCheckpointIds\)$/,
    );
  });

  it('(d) an already-aborted signal ignored: every pre-aborted check fails, naming the call', async () => {
    const report = await runWith({ ignorePreAbortedSignal: true });
    const failed = failures(report);
    const preAborted = report.results
      .filter((r) => r.id.startsWith('cancellation.pre-aborted.'))
      .map((r) => r.id);
    expect(preAborted.length).toBeGreaterThanOrEqual(17);
    expect([...failed.keys()].sort()).toEqual([...preAborted].sort());
    expect(failed.get('cancellation.pre-aborted.limits.get')).toMatch(
      /^limits\.get\("vm-101"\) with an already-aborted signal resolved \(with .*\); expected it to reject with an HvkitError with code ABORTED$/,
    );
    expect(failed.get('cancellation.pre-aborted.limits.set')).toMatch(
      /and it changed the limits \(cpu\.weight: null vs 200\)$/,
    );
    expect(failed.get('cancellation.pre-aborted.backups.createSnapshot')).toMatch(
      /and it created snapshot\(s\) snap-\d+$/,
    );
    expect(failed.get('cancellation.pre-aborted.backups.deleteSnapshot')).toMatch(
      /with an already-aborted signal rejected with HvkitError NOT_FOUND .*; expected an HvkitError with code ABORTED/,
    );
  });

  it('(e) the wrong error code for an unknown guest', async () => {
    const failed = failures(
      await runWith({ unknownGuestError: () => hvkitError('REMOTE', 'Domain not found') }),
    );
    expect([...failed.keys()].sort()).toEqual([
      'backups.not-found',
      'inventory.not-found',
      'labels.not-found',
      'limits.not-found',
    ]);
    expect(failed.get('inventory.not-found')).toBe(
      'inventory.getGuest("hvkit-conformance-no-such-guest") rejected with HvkitError REMOTE ("Domain not found"); expected an HvkitError with code NOT_FOUND',
    );
  });

  it('(e) a plain Error for an unknown guest is named as not an HvkitError', async () => {
    const failed = failures(await runWith({ unknownGuestError: () => new Error('no such domain') }));
    expect(failed.get('limits.not-found')).toBe(
      'limits.get("hvkit-conformance-no-such-guest") rejected with Error ("no such domain"), which is not an HvkitError; expected an HvkitError with code NOT_FOUND',
    );
  });

  it('(f) an artifact sha256 that does not match the bytes written', async () => {
    const failed = failures(await runWith({ misreportArtifactSha256: true }));
    expect([...failed.keys()].sort()).toEqual(['backups.full', 'backups.host-config', 'backups.incremental']);
    expect(failed.get('backups.full')).toMatch(
      /artifact file "web-01\/\d{8}T\d{6}Z-full-[0-9a-f]{6}\/guest\.json" has sha256 [0-9a-f]{64}, which does not match the sha256 of the \d+ bytes the sink received \([0-9a-f]{64}\)/,
    );
  });

  it('(g) null accepted on a field the manifest marks unsupported', async () => {
    const failed = failures(
      await runWith({ acceptNullOnUnsupported: true }, 'live', {
        limits: { cpu: { reservationMHz: false }, memory: { swapMaxBytes: false }, pids: false },
      }),
    );
    expect([...failed.keys()].sort()).toEqual([
      'limits.unsupported.cpu.reservationMHz',
      'limits.unsupported.memory.swapMaxBytes',
      'limits.unsupported.pids.max',
    ]);
    expect(failed.get('limits.unsupported.pids.max')).toMatch(
      /^limits\.set\(\{ pids: \{ max: null \} \}\) resolved .*; expected it to reject with an HvkitError with code UNSUPPORTED$/,
    );
  });

  it('(h) limits above the host accepted (maxCores beyond its logical CPUs, memory beyond its memory)', async () => {
    const failed = failures(await runWith({ ignoreHostBounds: true }));
    expect([...failed.keys()].sort()).toEqual([
      'limits.invalid.cpu.maxCores',
      'limits.invalid.memory.maxBytes',
      'limits.invalid.memory.minBytes',
      'limits.invalid.memory.softBytes',
    ]);
    expect(failed.get('limits.invalid.cpu.maxCores')).toMatch(
      /^limits\.set\(\{ cpu: \{ maxCores: 65 \} \}\) \(more CPUs than the host has: inventory\.host\(\) cpu sockets × cores × threads = 64\) resolved .*; expected it to reject with an HvkitError with code INVALID_ARGUMENT$/,
    );
    expect(failed.get('limits.invalid.memory.maxBytes')).toMatch(
      /^limits\.set\(\{ memory: \{ maxBytes: 275951648768 \} \}\) \(more than the host's memory: inventory\.host\(\) memoryBytes = 274877906944\) resolved/,
    );
  });

  it('(h) a bad value wrongly accepted is put back before the check fails', async () => {
    const backend = createInMemoryBackend();
    const before = structuredClone([backend.getLimits('vm-101', 'live'), backend.getLimits('vm-101')]);
    const collector = createConformanceCollector();
    runAdapterConformance({
      name: 'broken in-memory, one backend',
      mode: 'live',
      factory: async () => createInMemoryAdapter({ backend, faults: { ignoreHostBounds: true } }),
      probe: (a) => (a as InMemoryAdapter).backend,
      test: collector.test,
    });
    const report = await collector.run({ filter: (r) => r.id === 'limits.invalid.cpu.maxCores' });
    expect(failures(report).get('limits.invalid.cpu.maxCores')).toMatch(/maxCores: 65 .* resolved/);
    expect([backend.getLimits('vm-101', 'live'), backend.getLimits('vm-101')]).toEqual(before);
  });

  it('(i) null that does not read back as null (the default reported as a number)', async () => {
    const failed = failures(await runWith({ reportDefaultsAsNumbers: true }));
    expect([...failed.keys()].sort()).toEqual([
      'limits.get',
      'limits.null.cpu.reservationMHz',
      'limits.null.cpu.weight',
      'limits.null.memory.minBytes',
    ]);
    expect(failed.get('limits.get')).toMatch(
      /guest "web-01": reports cpu\.weight = 100, the backend's default; a field at its default is reported as null \(normalizeLimits\)/,
    );
    expect(failed.get('limits.null.cpu.weight')).toMatch(
      /^cpu\.weight does not converge: limits\.set\(\{ cpu: \{ weight: null \} \}\) returned limits with cpu\.weight = 100, expected null$/,
    );
  });

  it('(j) a restore that keeps the original MACs', async () => {
    const failed = failures(await runWith({ restoreKeepsMacs: true }));
    expect([...failed.keys()].sort()).toEqual([
      'backups.diskless',
      'backups.restore.as-new',
      'backups.restore.incremental-chain',
    ]);
    expect(failed.get('backups.restore.as-new')).toMatch(
      /NIC MAC\(s\) 52:54:00:a1:01:01, 52:54:00:a1:01:02 are the original's; a restored guest needs new ones/,
    );
  });

  it('(k) a restore that does not verify: the corrupt artifact is accepted', async () => {
    const failed = failures(await runWith({ restoreWithoutVerify: true }));
    expect([...failed.keys()]).toEqual(['backups.restore.corrupt']);
    expect(failed.get('backups.restore.corrupt')).toMatch(
      /restored an artifact whose disk-vda\.raw has a flipped byte; it must verify every file against the manifest/,
    );
  });

  it('(l) a full backup that keeps the checkpoints of older chains', async () => {
    const failed = failures(await runWith({ keepOldChainCheckpoints: true }));
    expect([...failed.keys()]).toEqual(['backups.chains']);
    expect(failed.get('backups.chains')).toMatch(
      /hvkit checkpoint\(s\) of older chains remain: cp-\d+ \(chain /,
    );
  });
});
