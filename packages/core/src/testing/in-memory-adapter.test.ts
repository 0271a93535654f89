import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { isWrappedAdapter } from '../adapter/wrap';
import { parseBackupManifest } from '../backup/manifest';
import { checkProgressLog } from '../backup/progress';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import type { GuestEvent, Progress } from '../hypervisor/v1/model';
import { createInMemoryBackend } from './backend';
import { applyInMemoryDelta } from './disk-data';
import { createInMemoryAdapter } from './in-memory-adapter';
import { createMemorySink } from './memory-sink';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  try {
    await promise;
  } catch (e) {
    if (HvkitError.isInstance(e)) return e;
    throw e;
  }
  throw new Error('expected the call to reject, but it resolved');
}

/** Byte equality without vitest's element-by-element diff (slow for MiB-sized arrays). */
function sameBytes(a: Uint8Array | undefined, b: Uint8Array | undefined): boolean {
  return (
    a !== undefined &&
    b !== undefined &&
    Buffer.from(a.buffer, a.byteOffset, a.length).equals(Buffer.from(b.buffer, b.byteOffset, b.length))
  );
}

function sha256(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

describe('in-memory adapter: inventory', () => {
  it('reports the default host and four guests in bytes', async () => {
    const a = createInMemoryAdapter();
    expect(a.specificationVersion).toBe('v1');
    expect(a.adapter).toBe('in-memory');
    const host = await a.inventory.host();
    expect(host.securityModels.map((m) => m.model)).toEqual(['selinux', 'dac']);
    expect(host.memoryBytes).toBe(256 * GiB);
    const guests = await a.inventory.listGuests();
    expect(guests.map((g) => [g.name, g.powerState, g.isTemplate])).toEqual([
      ['web-01', 'running', false],
      ['db-01', 'paused', false],
      ['build-01', 'stopped', false],
      ['tpl-debian-12', 'stopped', true],
    ]);
    expect(guests[0]?.memoryBytes).toBe(2 * GiB);
    expect(guests[2]?.memoryBytes).toBe(512 * MiB);
    expect(guests[0]?.nics.map((n) => n.vlan)).toEqual([100, 10]);
    expect(guests[0]?.disks[0]).not.toHaveProperty('dataBytes');
  });

  it('finds a guest by id, {id}, {uuid} (any case) and {name}', async () => {
    const a = createInMemoryAdapter();
    for (const ref of [
      'vm-102',
      { id: 'vm-102' },
      { uuid: '3E7A9F10-2B4C-4D8E-A1F3-5C6B7D8E9F02' },
      { name: 'db-01' },
    ]) {
      expect((await a.inventory.getGuest(ref)).id).toBe('vm-102');
    }
  });

  it('rejects unknown guests with NOT_FOUND and bad references with TypeError', async () => {
    const a = createInMemoryAdapter();
    const err = await rejection(a.inventory.getGuest({ name: 'nope' }));
    expect(err.code).toBe('NOT_FOUND');
    expect(err.message).toContain('name "nope"');
    const long = await rejection(a.inventory.getGuest({ name: 'n'.repeat(100_000) }));
    expect(long.code).toBe('NOT_FOUND');
    expect(long.message.length).toBeLessThan(400);
    expect(long.message).toMatch(/…\[truncated, \d+ more characters\]/);
    await expect(a.inventory.getGuest(42 as unknown as string)).rejects.toThrow(TypeError);
    await expect(a.inventory.getGuest({} as unknown as string)).rejects.toThrow(TypeError);
  });

  it('lists networks, pools and volumes; unknown pool is NOT_FOUND', async () => {
    const a = createInMemoryAdapter();
    expect((await a.inventory.listNetworks?.())?.find((n) => n.management)?.vlan).toBe(10);
    const pools = (await a.inventory.listStoragePools?.()) ?? [];
    expect(pools.map((p) => p.id)).toEqual(['pool-default', 'pool-vg0']);
    const vols = (await a.inventory.listStorageVolumes?.('pool-vg0')) ?? [];
    expect(vols.map((v) => v.path)).toEqual(['/dev/vg0/db-01-data']);
    expect((await rejection(a.inventory.listStorageVolumes?.('pool-x') as Promise<unknown>)).code).toBe(
      'NOT_FOUND',
    );
  });
});

describe('in-memory adapter: limits', () => {
  it('sets live and persistent values by default on a running guest', async () => {
    const a = createInMemoryAdapter();
    const res = await a.limits.set('vm-101', {
      cpu: { weight: 250 },
      disks: [{ device: 'vdb', writeIops: 300 }],
    });
    expect(res.appliesAt).toBe('live');
    expect(res.limits.cpu?.weight).toBe(250);
    expect((await a.limits.get('vm-101')).disks).toEqual([
      { device: 'vda', readBytesPerSec: 100 * MiB, writeBytesPerSec: 50 * MiB },
      { device: 'vdb', writeIops: 300 },
    ]);
    expect(a.backend.getLimits('vm-101', 'live').cpu?.weight).toBe(250);
    expect(a.backend.getLimits('vm-101', 'persistent').cpu?.weight).toBe(250);
  });

  it('applies persistent values of a running guest at its next boot', async () => {
    const a = createInMemoryAdapter();
    const res = await a.limits.set('vm-101', { memory: { softBytes: GiB } }, { apply: 'persistent' });
    expect(res.appliesAt).toBe('next-boot');
    expect(res.limits.memory?.softBytes).toBe(GiB);
    expect((await a.limits.get('vm-101')).memory?.softBytes).toBeNull();
    expect((await a.limits.get('vm-101', { from: 'persistent' })).memory?.softBytes).toBe(GiB);
    a.backend.setPowerState('vm-101', 'stopped');
    a.backend.setPowerState('vm-101', 'running');
    expect((await a.limits.get('vm-101', { from: 'live' })).memory?.softBytes).toBe(GiB);
  });

  it('changes only the running guest with apply live', async () => {
    const a = createInMemoryAdapter();
    await a.limits.set('vm-101', { pids: { max: 100 } }, { apply: 'live' });
    expect(a.backend.getLimits('vm-101', 'live').pids?.max).toBe(100);
    expect(a.backend.getLimits('vm-101', 'persistent').pids?.max).toBe(4096);
  });

  it('refuses live changes on a stopped guest and applies both to its definition with a warning', async () => {
    const a = createInMemoryAdapter();
    const err = await rejection(a.limits.set('vm-103', { cpu: { weight: 5 } }, { apply: 'live' }));
    expect(err.code).toBe('CONFLICT');
    const res = await a.limits.set('vm-103', { cpu: { weight: 5 } }, { apply: 'both' });
    expect(res.appliesAt).toBe('next-boot');
    expect(res.warnings[0]?.type).toBe('compatibility');
    expect((await rejection(a.limits.get('vm-103', { from: 'live' }))).code).toBe('CONFLICT');
    expect((await a.limits.get('vm-103')).cpu?.weight).toBe(5);
  });

  it('rejects bad values, unknown devices and unknown guests without changing anything', async () => {
    const a = createInMemoryAdapter();
    const before = a.backend.getLimits('vm-101');
    for (const patch of [
      { cpu: { weight: 0 } },
      { cpu: { weight: 10001 } },
      { memory: { maxBytes: -1 } },
      { cpu: { maxCores: Number.NaN } },
      { disks: [{ device: 'vdz', readIops: 1 }] },
      { cpu: { weight: 200, shares: 1024 } },
    ]) {
      const err = await rejection(a.limits.set('vm-101', patch as never));
      expect(err.code).toBe('INVALID_ARGUMENT');
    }
    expect((await rejection(a.limits.set('vm-999', { cpu: { weight: 200 } }))).code).toBe('NOT_FOUND');
    expect(a.backend.getLimits('vm-101')).toEqual(before);
  });

  it("rejects maxCores above the host's 64 logical CPUs and memory above its 256 GiB", async () => {
    const a = createInMemoryAdapter();
    const before = a.backend.getLimits('vm-101');
    await a.limits.set('vm-101', { cpu: { maxCores: 64 }, memory: { maxBytes: 256 * GiB } });
    for (const patch of [
      { cpu: { maxCores: 65 } },
      { cpu: { maxCores: 1e9 } },
      { memory: { maxBytes: 256 * GiB + MiB } },
      { memory: { softBytes: 257 * GiB } },
      { memory: { minBytes: 300 * GiB } },
    ]) {
      const err = await rejection(a.limits.set('vm-101', patch));
      expect(err.code).toBe('INVALID_ARGUMENT');
      expect(err.message).toMatch(/must be at most the host's (64 logical CPUs|memory, 274877906944 bytes)/);
    }
    await a.limits.set('vm-101', { cpu: { maxCores: 2 }, memory: { maxBytes: 3 * GiB } });
    expect(a.backend.getLimits('vm-101')).toEqual(before);
  });

  it('reports a field at its backend default as null, so set then get converges', async () => {
    const a = createInMemoryAdapter();
    // vm-101's backend holds weight 100, the default.
    expect(a.backend.getLimits('vm-101').cpu?.weight).toBe(100);
    expect((await a.limits.get('vm-101')).cpu?.weight).toBeNull();
    for (const [patch, read] of [
      [{ cpu: { weight: null } }, { weight: null }],
      [{ cpu: { weight: 100 } }, { weight: null }],
      [{ cpu: { weight: 300 } }, { weight: 300 }],
      [{ cpu: { reservationMHz: 0 } }, { reservationMHz: null }],
      [{ cpu: { reservationMHz: null } }, { reservationMHz: null }],
    ] as const) {
      const res = await a.limits.set('vm-101', patch);
      expect(res.limits.cpu).toMatchObject(read);
      expect((await a.limits.get('vm-101')).cpu).toMatchObject(read);
    }
    await a.limits.set('vm-101', { memory: { minBytes: 0, swapMaxBytes: 0 } });
    expect((await a.limits.get('vm-101')).memory).toMatchObject({ minBytes: null, swapMaxBytes: 0 });
  });

  it('follows the manifest: unsupported fields and modes reject with UNSUPPORTED', async () => {
    const a = createInMemoryAdapter({
      supports: { limits: { memory: { swapMaxBytes: false }, network: false, modes: ['both'] } },
    });
    expect(a.supports.limits === false ? undefined : a.supports.limits.network).toBe(false);
    expect((await rejection(a.limits.set('vm-101', { memory: { swapMaxBytes: 0 } }))).code).toBe(
      'UNSUPPORTED',
    );
    expect(
      (await rejection(a.limits.set('vm-101', { nics: [{ device: 'vnet0', inboundPeakBytesPerSec: 1 }] })))
        .code,
    ).toBe('UNSUPPORTED');
    expect((await rejection(a.limits.set('vm-101', { cpu: { weight: 2 } }, { apply: 'live' }))).code).toBe(
      'UNSUPPORTED',
    );
  });
});

describe('in-memory adapter: labels', () => {
  it('reports live labels of active guests, then the definition', async () => {
    const a = createInMemoryAdapter();
    const web = await a.labels.get('vm-101');
    expect(web.map((l) => `${l.source}:${l.model}:${l.type}`)).toEqual([
      'live:selinux:dynamic',
      'live:dac:dynamic',
      'config:selinux:dynamic',
      'config:dac:dynamic',
    ]);
    const db = await a.labels.get('vm-102');
    const cats = (l: string | undefined) => l?.split(':').at(-1);
    expect(cats(web[0]?.label)).toMatch(/^c\d+,c\d+$/);
    expect(cats(web[0]?.label)).not.toBe(cats(db[0]?.label));
    expect(cats(web[0]?.imageLabel)).toBe(cats(web[0]?.label));
    expect((await a.labels.get('vm-103')).every((l) => l.source === 'config')).toBe(true);
    expect((await a.labels.hostModels?.())?.map((m) => m.model)).toEqual(['selinux', 'dac']);
  });

  it('sets labels on stopped guests only; the next boot uses them', async () => {
    const a = createInMemoryAdapter();
    const out = await a.labels.set?.('vm-103', { model: 'dac', type: 'static', label: '+107:+107' });
    expect(out?.find((l) => l.model === 'dac')?.label).toBe('+107:+107');
    expect(
      (await rejection(a.labels.set?.('vm-101', { model: 'dac', type: 'dynamic' }) as Promise<unknown>)).code,
    ).toBe('CONFLICT');
    expect(
      (await rejection(a.labels.set?.('vm-103', { model: 'apparmor', type: 'dynamic' }) as Promise<unknown>))
        .code,
    ).toBe('UNSUPPORTED');
    expect(
      (await rejection(a.labels.set?.('vm-103', { model: 'dac', type: 'static' }) as Promise<unknown>)).code,
    ).toBe('INVALID_ARGUMENT');
    a.backend.setPowerState('vm-103', 'running');
    const live = (await a.labels.get('vm-103')).find((l) => l.source === 'live' && l.model === 'dac');
    expect(live?.label).toBe('+107:+107');
  });
});

describe('in-memory adapter: snapshots and backups', () => {
  it('creates, lists, reverts and deletes snapshots', async () => {
    const a = createInMemoryAdapter();
    const snap = await a.backups.createSnapshot('vm-101', { name: 'before-upgrade', description: 'x' });
    expect(snap).toMatchObject({ name: 'before-upgrade', kind: 'disk', description: 'x' });
    expect(a.backend.listSnapshotIds('vm-101')).toEqual([snap.id]);
    const original = a.backend.readDisk('vm-101', 'vda');
    a.backend.writeDisk('vm-101', 'vda', [0, 5]);
    expect(sameBytes(a.backend.readDisk('vm-101', 'vda'), original)).toBe(false);
    await a.backups.revertSnapshot?.('vm-101', snap.id);
    expect(sameBytes(a.backend.readDisk('vm-101', 'vda'), original)).toBe(true);
    expect((await rejection(a.backups.createSnapshot('vm-101', { name: 'before-upgrade' }))).code).toBe(
      'CONFLICT',
    );
    expect((await rejection(a.backups.createSnapshot('vm-103', { memory: true }))).code).toBe('CONFLICT');
    await a.backups.deleteSnapshot('vm-101', snap.id);
    expect(await a.backups.listSnapshots('vm-101')).toEqual([]);
    expect((await rejection(a.backups.deleteSnapshot('vm-101', snap.id))).code).toBe('NOT_FOUND');
  });

  it('streams a full backup whose bytes are the disk data, with growing progress and no leftovers', async () => {
    const a = createInMemoryAdapter();
    const sink = createMemorySink();
    const progress: Progress[] = [];
    const artifact = await a.backups.backup('vm-101', sink, { onProgress: (p) => progress.push(p) });
    expect(artifact.kind).toBe('full');
    expect(artifact.consistency).toBe('fs-frozen');
    expect(artifact.path).toBe(`web-01/${artifact.id}`);
    expect(artifact.id).toMatch(/^\d{8}T\d{6}Z-full-[0-9a-f]{6}$/);
    expect(artifact.chain).toBe(artifact.id);
    expect(artifact.files.map((f) => f.name)).toEqual([
      `web-01/${artifact.id}/guest.json`,
      `web-01/${artifact.id}/disk-vda.raw`,
      `web-01/${artifact.id}/disk-vdb.raw`,
      `web-01/${artifact.id}/hvkit-backup.json`,
    ]);
    const vda = sink.read(artifact.files[1]?.name ?? '') as Uint8Array;
    expect(vda.length).toBe(4 * MiB);
    expect(sameBytes(vda, a.backend.readDisk('vm-101', 'vda'))).toBe(true);
    for (const f of artifact.files) {
      const data = sink.read(f.name) as Uint8Array;
      expect(f.bytes).toBe(data.length);
      expect(f.sha256).toBe(sha256(data));
    }
    expect(checkProgressLog(progress)).toEqual([]);
    expect(progress[0]).toEqual({ phase: 'snapshot', processedBytes: 0 });
    expect(progress.at(-1)).toMatchObject({ phase: 'transfer', processedBytes: progress.at(-1)?.totalBytes });
    // Throttled: the transfer of 8 MiB in 64 KiB chunks is not 128 callbacks.
    expect(progress.length).toBeLessThan(20);
    const manifest = parseBackupManifest(sink.read(`web-01/${artifact.id}/hvkit-backup.json`) as Uint8Array);
    expect(manifest).toMatchObject({
      id: artifact.id,
      kind: 'full',
      chain: { id: artifact.id, position: 0 },
    });
    expect(manifest.files.map((f) => [f.name, f.role])).toEqual([
      ['guest.json', 'definition'],
      ['disk-vda.raw', 'disk'],
      ['disk-vdb.raw', 'disk'],
    ]);
    expect(a.backend.listSnapshotIds('vm-101')).toEqual([]);
    expect(a.backend.listCheckpointIds('vm-101')).toEqual([artifact.checkpoint]);
  });

  it('chains an incremental backup: base plus delta equals the disk now', async () => {
    const a = createInMemoryAdapter();
    const sink = createMemorySink();
    const full = await a.backups.backup('vm-101', sink);
    const base = sink.read(full.files[1]?.name ?? '') as Uint8Array;
    const inc = await a.backups.backup('vm-101', sink, {
      mode: 'incremental',
      sinceCheckpoint: full.checkpoint,
    });
    expect(inc).toMatchObject({ kind: 'incremental', parentCheckpoint: full.checkpoint });
    expect(inc.chain).toBe(full.chain);
    expect(inc.files[1]?.name).toBe(`web-01/${inc.id}/disk-vda.delta`);
    const delta = sink.read(inc.files[1]?.name ?? '') as Uint8Array;
    expect(delta.length).toBeGreaterThan(0);
    expect(delta.length).toBeLessThan(base.length / 4);
    expect(sameBytes(applyInMemoryDelta(base, delta), a.backend.readDisk('vm-101', 'vda'))).toBe(true);
    expect(sameBytes(base, a.backend.readDisk('vm-101', 'vda'))).toBe(false);
    expect(a.backend.listCheckpointIds('vm-101')).toEqual([full.checkpoint, inc.checkpoint]);
    const err = await rejection(
      a.backups.backup('vm-101', sink, { mode: 'incremental', sinceCheckpoint: 'cp-x' }),
    );
    expect(err.code).toBe('NOT_FOUND');
    expect((await rejection(a.backups.backup('vm-101', sink, { mode: 'incremental' }))).code).toBe(
      'INVALID_ARGUMENT',
    );
  });

  it('cleans up when aborted midway: ABORTED, no temporary snapshot or checkpoint, no complete file', async () => {
    const a = createInMemoryAdapter({ chunkDelayMs: 1 });
    const sink = createMemorySink();
    const controller = new AbortController();
    let sawTemporary = false;
    const started = a.backups.backup('vm-101', sink, { signal: controller.signal });
    const timer = setInterval(() => {
      if (sink.writes.length >= 3 && !controller.signal.aborted) {
        sawTemporary = a.backend.listSnapshots('vm-101').some((s) => s.temporary);
        expect(a.backend.getLease('vm-101')).toBeDefined();
        controller.abort();
      }
    }, 1);
    const err = await rejection(started).finally(() => clearInterval(timer));
    expect(err.code).toBe('ABORTED');
    expect(sawTemporary).toBe(true);
    expect(a.backend.listSnapshotIds('vm-101')).toEqual([]);
    expect(a.backend.listCheckpointIds('vm-101')).toEqual([]);
    expect(a.backend.getLease('vm-101')).toBeUndefined();
    expect([...sink.files.keys()]).toEqual([]);
    expect(sink.writes.map((w) => w.status)).toEqual(['removed', 'removed', 'failed']);
  });

  it('times out a slow backup with TIMEOUT and cleans up before settling', async () => {
    const a = createInMemoryAdapter({ chunkDelayMs: 5 });
    const sink = createMemorySink();
    const err = await rejection(a.backups.backup('vm-103', sink, { timeoutMs: 40 }));
    expect(err.code).toBe('TIMEOUT');
    expect(a.backend.listSnapshotIds('vm-103')).toEqual([]);
    expect(a.backend.listCheckpointIds('vm-103')).toEqual([]);
    expect(sink.files.size).toBe(0);
  });

  it('writes the host configuration as JSON', async () => {
    const a = createInMemoryAdapter();
    const sink = createMemorySink();
    const artifact = await a.backups.backupHostConfig?.(sink);
    expect(artifact?.kind).toBe('host-config');
    const doc = JSON.parse(new TextDecoder().decode(sink.read(artifact?.files[0]?.name ?? '')));
    expect(doc.host.name).toBe('hv01.lab.example');
    expect(doc.guests.map((g: { id: string }) => g.id)).toEqual(['vm-101', 'vm-102', 'vm-103', 'vm-900']);
  });
});

describe('in-memory adapter: cancellation, timeouts, close', () => {
  it('rejects every call with an aborted signal with ABORTED before doing anything', async () => {
    const a = createInMemoryAdapter();
    const signal = AbortSignal.abort();
    const sink = createMemorySink();
    const calls: Promise<unknown>[] = [
      a.inventory.host({ signal }),
      a.inventory.listGuests({ signal }),
      a.limits.set('vm-101', { cpu: { weight: 999 } }, { signal }),
      a.backups.createSnapshot('vm-101', { signal }),
      a.backups.deleteSnapshot('vm-101', 'nope', { signal }),
      a.backups.backup('vm-101', sink, { signal }),
    ];
    for (const call of calls) expect((await rejection(call)).code).toBe('ABORTED');
    expect(a.backend.getLimits('vm-101').cpu?.weight).toBe(100);
    expect(a.backend.listSnapshotIds('vm-101')).toEqual([]);
    expect(sink.writes).toEqual([]);
  });

  it('times out slow calls and aborts them while waiting', async () => {
    const a = createInMemoryAdapter({ latencyMs: 200 });
    expect((await rejection(a.inventory.listGuests({ timeoutMs: 20 }))).code).toBe('TIMEOUT');
    const controller = new AbortController();
    const pending = a.inventory.listGuests({ signal: controller.signal });
    setTimeout(() => controller.abort(), 10);
    expect((await rejection(pending)).code).toBe('ABORTED');
  });

  it('rejects with CONNECTION_LOST after close, which is idempotent', async () => {
    const a = createInMemoryAdapter();
    await a.close();
    await a[Symbol.asyncDispose]();
    expect((await rejection(a.inventory.listGuests())).code).toBe('CONNECTION_LOST');
  });
});

describe('in-memory adapter: events', () => {
  it('yields lifecycle events and ends on abort', async () => {
    const a = createInMemoryAdapter();
    const controller = new AbortController();
    const seen: GuestEvent[] = [];
    const done = (async () => {
      for await (const e of a.events.subscribe({ signal: controller.signal })) seen.push(e);
    })();
    a.backend.setPowerState('vm-101', 'paused');
    a.backend.setPowerState('vm-101', 'running');
    a.backend.triggerEvent({ name: 'db-01' });
    await new Promise((r) => setTimeout(r, 5));
    controller.abort();
    await done;
    expect(seen.map((e) => `${e.guest.name} ${e.type}/${e.detail}`)).toEqual([
      'web-01 suspended/paused',
      'web-01 resumed/unpaused',
      'db-01 defined/updated',
    ]);
    expect(seen[0]?.at).toBeInstanceOf(Date);
  });

  it('ends at once for an aborted signal (ABORTED, as wrapAdapter does), and when the adapter closes', async () => {
    const a = createInMemoryAdapter();
    const it1 = a.events.subscribe({ signal: AbortSignal.abort() })[Symbol.asyncIterator]();
    expect((await rejection(it1.next())).code).toBe('ABORTED');
    expect(await it1.next()).toEqual({ done: true, value: undefined });
    const it2 = a.events.subscribe()[Symbol.asyncIterator]();
    const next = it2.next();
    await a.close();
    expect(await next).toEqual({ done: true, value: undefined });
  });
});

describe('in-memory adapter: wrapAdapter', () => {
  it('goes through wrapAdapter like every adapter', async () => {
    const a = createInMemoryAdapter();
    expect(isWrappedAdapter(a)).toBe(true);
    expect(isWrappedAdapter(createInMemoryAdapter({ without: ['events'] }))).toBe(true);
    expect(isWrappedAdapter(createInMemoryAdapter({ faults: { ignorePreAbortedSignal: true } }))).toBe(true);
    // What wrapAdapter adds: anything that is not an HvkitError becomes REMOTE naming adapter and operation.
    const fault = new Error('backend fell over');
    a.backend.failNext('limits.get', fault);
    const error = await rejection(a.limits.get('vm-101'));
    expect(error.code).toBe('REMOTE');
    expect(error.adapter).toBe('in-memory');
    expect(error.operation).toBe('limits.get');
    expect(error.cause).toBe(fault);
    // The backend and the manifest stay reachable on the wrapped adapter.
    expect(a.backend.getGuestFacts('vm-101').name).toBe('web-01');
    expect(a.supports.limits).not.toBe(false);
  });
});

describe('in-memory adapter: options and faults', () => {
  it('leaves out capabilities named in without, and says so in supports', () => {
    const a = createInMemoryAdapter({ without: ['limits', 'events'] });
    expect(a.limits).toBeUndefined();
    expect(a.supports.limits).toBe(false);
    expect(a.events).toBeUndefined();
    expect(a.inventory).toBeDefined();
    const b = createInMemoryAdapter({ supports: { inventory: { networks: false }, labels: { set: false } } });
    expect(b.inventory.listNetworks).toBeUndefined();
    expect(b.labels.set).toBeUndefined();
    expect(Object.isFrozen(b.supports)).toBe(true);
  });

  it('shares one backend between adapters and injects failures', async () => {
    const backend = createInMemoryBackend();
    const a = createInMemoryAdapter({ backend });
    const b = createInMemoryAdapter({ backend });
    await a.limits.set('vm-101', { cpu: { weight: 321 } });
    expect((await b.limits.get('vm-101')).cpu?.weight).toBe(321);
    backend.failNext('limits.get', hvkitError('REMOTE', 'boom'));
    expect((await rejection(b.limits.get('vm-101'))).code).toBe('REMOTE');
    expect((await b.limits.get('vm-101')).cpu?.weight).toBe(321);
  });

  it('implements each deliberate fault', async () => {
    const kib = createInMemoryAdapter({ faults: { reportMemoryInKiB: true } });
    expect((await kib.inventory.getGuest('vm-103')).memoryBytes).toBe(512 * 1024);
    expect(kib.backend.getGuestFacts('vm-103').memoryBytes).toBe(512 * MiB);

    const scaled = createInMemoryAdapter({ faults: { scaleLimitsOnWrite: { 'cpu.weight': 2 } } });
    await scaled.limits.set('vm-101', { cpu: { weight: 200 } });
    expect((await scaled.limits.get('vm-101')).cpu?.weight).toBe(400);

    const leaky = createInMemoryAdapter({ faults: { leaveSnapshotOnAbort: true } });
    const controller = new AbortController();
    await rejection(
      leaky.backups.backup('vm-101', createMemorySink(), {
        signal: controller.signal,
        onProgress: () => controller.abort(),
      }),
    );
    expect(leaky.backend.listSnapshots('vm-101').map((s) => s.temporary)).toEqual([true]);

    const deaf = createInMemoryAdapter({ faults: { ignorePreAbortedSignal: true } });
    await expect(deaf.inventory.listGuests({ signal: AbortSignal.abort() })).resolves.toHaveLength(4);
    const toDelete = await deaf.backups.createSnapshot('vm-103', { signal: AbortSignal.abort() });
    await deaf.backups.deleteSnapshot('vm-103', toDelete.id, { signal: AbortSignal.abort() });
    expect(deaf.backend.listSnapshotIds('vm-103')).toEqual([]);

    const wrongCode = createInMemoryAdapter({
      faults: { unknownGuestError: () => hvkitError('REMOTE', 'no domain') },
    });
    expect((await rejection(wrongCode.limits.get('vm-999'))).code).toBe('REMOTE');
    // A plain Error reaches the caller as it is (as from an adapter without wrapAdapter).
    const plain = new Error('no such domain');
    const rawError = createInMemoryAdapter({ faults: { unknownGuestError: () => plain } });
    await expect(rawError.inventory.getGuest({ name: 'nope' })).rejects.toBe(plain);
    // Other NOT_FOUND errors (a missing snapshot) are left alone.
    expect((await rejection(rawError.backups.deleteSnapshot('vm-101', 'snap-x'))).code).toBe('NOT_FOUND');

    const liar = createInMemoryAdapter({ faults: { misreportArtifactSha256: true } });
    const sink = createMemorySink();
    const artifact = await liar.backups.backup('vm-103', sink);
    const first = artifact.files[0];
    expect(first?.sha256).toMatch(/^[0-9a-f]{64}$/);
    expect(first?.sha256).not.toBe(sha256(sink.read(first?.name ?? '') as Uint8Array));
  });
});
