/**
 * `close()` while a backup or a restore runs, against a private XAPI simulator: the backup's XVA export
 * streams into a sink that takes the first chunk and then waits (for its signal, or for the test to let
 * it go), so `close()` comes with the snapshot, its VDIs, the lease and the export all in place; the
 * restore's XVA comes from a source that does the same, so `close()` comes with the lease, the import task
 * and the upload in place. The probe is the simulator's own database, read after `close()`: no hvkit
 * snapshot, no VDI more than before, no lease, no task; and the sink directory holds no file.
 */

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BackupSink,
  type BackupSource,
  createDirectorySink,
  createDirectorySource,
  HvkitError,
  type Logger,
} from '@hvkit/core';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { connect, type XenXapiAdapter } from '../connect';
import { startXapiSimulator, type XapiSimulator } from '../simulator';
import { BACKUP_SNAPSHOT_NAME, KEYS } from './backups';

const VM1 = '5eed0008-0000-4000-8000-000000000002';
const VM2 = '5eed0008-0000-4000-8000-000000000003';

let sim: XapiSimulator;
let dir: string;
const opened: XenXapiAdapter[] = [];
let release: () => void = () => {};

beforeEach(async () => {
  sim = await startXapiSimulator({ taskDelayMs: 20 });
  dir = await mkdtemp(join(tmpdir(), 'hvkit-xen-close-'));
});
afterEach(async () => {
  release();
  sim.hang(false);
  for (const a of opened.splice(0)) await a.close();
  await sim.close();
  await rm(dir, { recursive: true, force: true });
});

/** Logger keeping every warning with its metadata. */
function spyLogger(): Logger & { warnings: { message: string; meta?: Record<string, unknown> }[] } {
  const warnings: { message: string; meta?: Record<string, unknown> }[] = [];
  return {
    warnings,
    debug() {},
    info() {},
    warn(message, meta) {
      warnings.push({ message, ...(meta ? { meta } : {}) });
    },
    error(message, meta) {
      warnings.push({ message, ...(meta ? { meta } : {}) });
    },
  };
}

async function open(extra: { logger?: Logger; closeTimeoutMs?: number } = {}): Promise<XenXapiAdapter> {
  const a = await connect({
    url: sim.url,
    username: sim.username,
    password: sim.password,
    ...sim.connectOptions,
    ...extra,
  });
  opened.push(a);
  return a;
}

/**
 * Passes the first chunk of `source` on, then calls `arrived` and waits until `signal` aborts (then throws
 * its reason) or the test lets it go (then passes the rest on): a receiver that stalls mid-file.
 */
async function* stallAfterFirst(
  source: AsyncIterable<Uint8Array>,
  signal: AbortSignal | undefined,
  arrived: () => void,
): AsyncGenerator<Uint8Array> {
  let first = true;
  for await (const chunk of source) {
    yield chunk;
    if (!first) continue;
    first = false;
    arrived();
    await new Promise<void>((resolve) => {
      release = resolve;
      signal?.addEventListener('abort', () => resolve(), { once: true });
    });
    if (signal?.aborted) throw signal.reason;
  }
}

/** A directory sink whose XVA stalls after its first chunk; `midExport` resolves then. */
function stallingSink() {
  let arrived: () => void = () => {};
  const midExport = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const inner = createDirectorySink(dir, { fsync: false });
  const sink: BackupSink = {
    ...inner,
    kind: inner.kind,
    location: inner.location,
    writeFile: (name, source, options) =>
      inner.writeFile(
        name,
        name.endsWith('.xva.gz') ? stallAfterFirst(source, options?.signal, arrived) : source,
        options,
      ),
  };
  return { sink, midExport };
}

/** A directory source whose XVA stalls after its first chunk; `midImport` resolves then. */
function stallingSource() {
  let arrived: () => void = () => {};
  const midImport = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const inner = createDirectorySource(dir);
  const source: BackupSource = {
    kind: inner.kind,
    location: inner.location,
    list: (o) => inner.list(o),
    readManifest: (p, o) => inner.readManifest(p, o),
    readFile: (name, options) =>
      name.endsWith('.xva.gz')
        ? stallAfterFirst(inner.readFile(name, options), options?.signal, arrived)
        : inner.readFile(name, options),
  };
  return { source, midImport };
}

const vmRow = (uuid: string) =>
  [...sim.db.table('VM')].find(([, r]) => r.uuid === uuid) as [string, Record<string, unknown>];
/** hvkit's running-backup snapshots of a VM (not checkpoints). */
const hvkitSnapshots = (uuid: string) =>
  [...sim.db.table('VM').values()].filter(
    (r) =>
      r.snapshot_of === vmRow(uuid)[0] &&
      r.name_label === BACKUP_SNAPSHOT_NAME &&
      !(KEYS.chain in (r.other_config as object)),
  );
const leaseOn = (uuid: string) => (vmRow(uuid)[1].other_config as Record<string, string>)[KEYS.lease];

/** Every regular file below `root`, relative. */
async function filesIn(root: string): Promise<string[]> {
  const entries = await readdir(root, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(root.length + 1));
}

/** The outcome of `p`, or 'pending' after `ms`. */
function within<T>(p: Promise<T>, ms: number): Promise<T | 'pending'> {
  return Promise.race([p, new Promise<'pending'>((r) => setTimeout(() => r('pending'), ms))]);
}

describe('xen-xapi close() during a backup or a restore (private simulator)', () => {
  it('close() in the middle of the export: the backup rejects ABORTED, and snapshot, VDIs, lease, task and sink files are gone before close() resolves', async () => {
    const hv = await open();
    const vdis = sim.db.table('VDI').size;
    const { sink, midExport } = stallingSink();
    const running = hv.backups.backup({ id: VM1 }, sink).catch((e: unknown) => e);
    await midExport;
    expect(hvkitSnapshots(VM1)).toHaveLength(1);
    expect(leaseOn(VM1)).toBeDefined();
    const t0 = performance.now();
    await hv.close();
    const closeMs = performance.now() - t0;
    // What close() leaves, read right when it resolved.
    const after = {
      snapshots: hvkitSnapshots(VM1).length,
      vdis: sim.db.table('VDI').size - vdis,
      lease: leaseOn(VM1),
      tasks: [...sim.db.table('task').values()].map((t) => `${t.name_label}:${t.status}`),
      files: await filesIn(dir),
    };
    release();
    const error = await within(running, 10_000);
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    expect(after).toEqual({ snapshots: 0, vdis: 0, lease: undefined, tasks: [], files: [] });
    expect(closeMs).toBeLessThan(5000);
    console.log(`close() during an export resolved after ${closeMs.toFixed(0)} ms`);
    // Every call after close() is CONNECTION_LOST, not retryable, and changes nothing.
    const late = await hv.backups.backup({ id: VM1 }, sink).catch((e: unknown) => e);
    expect(late).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
    const list = await hv.inventory.listGuests().catch((e: unknown) => e);
    expect(list).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
    expect(hvkitSnapshots(VM1)).toHaveLength(0);
  });

  it('close() in the middle of an in-place restore: ABORTED, and no task, no imported VM or VDI, no lease left', async () => {
    const writer = await open();
    const full = await writer.backups.backup({ id: VM2 }, createDirectorySink(dir, { fsync: false }));
    const vms = sim.db.table('VM').size;
    const vdis = sim.db.table('VDI').size;
    const hv = await open();
    const { source, midImport } = stallingSource();
    const running = hv.backups
      .restore(source, { artifact: full.id, mode: 'in-place' })
      .catch((e: unknown) => e);
    await midImport;
    expect(leaseOn(VM2)).toBeDefined();
    expect([...sim.db.table('task').values()].filter((t) => t.status === 'pending')).toHaveLength(1);
    const t0 = performance.now();
    await hv.close();
    const closeMs = performance.now() - t0;
    const after = {
      vms: sim.db.table('VM').size - vms,
      vdis: sim.db.table('VDI').size - vdis,
      lease: leaseOn(VM2),
      tasks: [...sim.db.table('task').values()].map((t) => `${t.name_label}:${t.status}`),
    };
    release();
    const error = await within(running, 10_000);
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    expect(after).toEqual({ vms: 0, vdis: 0, lease: undefined, tasks: [] });
    expect(closeMs).toBeLessThan(5000);
    console.log(`close() during an import resolved after ${closeMs.toFixed(0)} ms`);
  });

  it('closeTimeoutMs must be a finite number >= 0: a TypeError, and nothing is dialed', async () => {
    for (const closeTimeoutMs of [-1, Number.NaN, Number.POSITIVE_INFINITY, '5' as unknown as number])
      await expect(open({ closeTimeoutMs })).rejects.toThrow(/closeTimeoutMs must be a finite number/);
    expect(sim.sessionCount).toBe(0);
  });

  it('against a host that hangs mid-export, close() resolves within closeTimeoutMs plus the logout bound and names what it left', async () => {
    const logger = spyLogger();
    const hv = await open({ logger, closeTimeoutMs: 1500 });
    const { sink, midExport } = stallingSink();
    const running = hv.backups.backup({ id: VM1 }, sink).catch((e: unknown) => e);
    await midExport;
    const snapshot = String(hvkitSnapshots(VM1)[0]?.uuid);
    sim.hang(true);
    const t0 = performance.now();
    await hv.close();
    const closeMs = performance.now() - t0;
    // closeTimeoutMs (1.5 s), then session.logout's bound (2 s), the connection pool's 1 s, then the
    // connections are destroyed.
    expect(closeMs).toBeGreaterThanOrEqual(1400);
    expect(closeMs).toBeLessThan(1500 + 2000 + 1000 + 1000);
    const error = await within(running, 2000);
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    const warned = logger.warnings.map((w) => w.message).join('\n');
    expect(warned).toContain(snapshot);
    expect(warned).toContain(KEYS.lease);
    expect(warned).not.toContain(sim.password);
    console.log(`close() against a hung host resolved after ${closeMs.toFixed(0)} ms:\n${warned}`);
  });
});
