/**
 * Backups against a private XAPI simulator (these tests change much: snapshots, imports, faults): a guest
 * write between a full and an incremental backup reaches the restored disk; faults (a connection dropped
 * mid-export, a failing task, an abort mid-export, a failing transfer) leave no snapshot, no task and no
 * complete artifact; a redirect to a host outside the pool is refused without sending the session there;
 * cleanup removes a crashed run's snapshot but keeps one a live lease holds.
 */

import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BACKUP_MANIFEST_FILE,
  type BackupSink,
  createDirectorySink,
  createDirectorySource,
  HvkitError,
  newLease,
} from '@hvkit/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { connect, type XenXapiAdapter } from '../connect';
import { startXapiSimulator, type XapiSimulator } from '../simulator';
import { BACKUP_SNAPSHOT_NAME, KEYS } from './backups';

const VM1 = '5eed0008-0000-4000-8000-000000000002';
const VM2 = '5eed0008-0000-4000-8000-000000000003';
const VDI_DATA = '5eed000c-0000-4000-8000-000000000002';

let sim: XapiSimulator;
let hv: XenXapiAdapter;
let dir: string;

beforeAll(async () => {
  sim = await startXapiSimulator({ taskDelayMs: 20 });
  hv = await connect({ url: sim.url, username: sim.username, password: sim.password, ...sim.connectOptions });
});
afterAll(async () => {
  await hv?.close();
  await sim?.close();
});
afterEach(async () => {
  if (dir) await rm(dir, { recursive: true, force: true });
});

const vmRow = (uuid: string) =>
  [...sim.db.table('VM')].find(([, r]) => r.uuid === uuid) as [string, Record<string, unknown>];
/** Snapshots of VM1 on the simulator: [uuid, name, other_config]. */
const snapshotsOfVm1 = () =>
  [...sim.db.table('VM').values()]
    .filter((r) => r.snapshot_of === vmRow(VM1)[0])
    .map((r) => ({
      uuid: String(r.uuid),
      name: String(r.name_label),
      config: r.other_config as Record<string, string>,
    }));
const pendingTasks = () => [...sim.db.table('task').values()].filter((t) => t.status === 'pending');
/** hvkit's running-backup snapshots (not checkpoints). */
const hvkitSnapshots = () =>
  snapshotsOfVm1().filter((s) => s.name === BACKUP_SNAPSHOT_NAME && !(KEYS.chain in s.config));

/** The artifact folders in the sink directory and whether each has its manifest. */
async function artifacts(root: string): Promise<Array<{ path: string; complete: boolean }>> {
  const out = [];
  for (const guest of await readdir(root).catch(() => [])) {
    for (const id of await readdir(join(root, guest)).catch(() => [])) {
      const files = await readdir(join(root, guest, id));
      out.push({ path: `${guest}/${id}`, complete: files.includes(BACKUP_MANIFEST_FILE) });
    }
  }
  return out;
}

async function rawSha(vdiUuid: string): Promise<string> {
  const session = (await fetch(`${sim.url}/jsonrpc`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      jsonrpc: '2.0',
      method: 'session.login_with_password',
      params: [sim.username, sim.password],
      id: 1,
    }),
  }).then((r) => r.json())) as { result: string };
  const response = await fetch(`${sim.url}/export_raw_vdi?vdi=${vdiUuid}&session_id=${session.result}`);
  if (!response.ok || !response.body) throw new Error(`/export_raw_vdi answered ${response.status}`);
  const hash = createHash('sha256');
  for await (const chunk of response.body) hash.update(chunk);
  return hash.digest('hex');
}

function vdiOf(vmUuid: string, userdevice: string): string {
  const [ref] = vmRow(vmUuid);
  const vbd = [...sim.db.table('VBD').values()].find((b) => b.VM === ref && b.userdevice === userdevice);
  return String(sim.db.table('VDI').get(vbd?.VDI as string)?.uuid);
}

describe('xen-xapi backups (private simulator)', () => {
  it('a guest write between the full and the incremental backup is in the restored disk; only one checkpoint stays', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hvkit-xen-bk-'));
    const sink = createDirectorySink(dir, { fsync: false });
    const full = await hv.backups.backup({ id: VM1 }, sink);
    sim.writeDisk(VDI_DATA, 3 * 1024 * 1024 + 7, Buffer.from('written between the backups'));
    const inc = await hv.backups.backup({ id: VM1 }, sink, {
      mode: 'incremental',
      sinceCheckpoint: full.checkpoint,
    });
    expect(inc.parentCheckpoint).toBe(full.checkpoint);
    // The incremental VHD of the data disk holds the one changed 2 MiB block (and its headers), not the disk.
    const delta = inc.files.find((f) => f.name.endsWith('disk-1.vhd'));
    expect(delta?.bytes).toBeLessThan(2 * 1024 * 1024 + 64 * 1024);
    expect(delta?.bytes).toBeGreaterThan(2 * 1024 * 1024);
    // The full backup's snapshot went when the incremental's became the checkpoint.
    expect((await hv.backups.listCheckpoints({ id: VM1 })).map((c) => c.id)).toEqual([inc.checkpoint]);
    const restored = await hv.backups.restore(createDirectorySource(dir), {
      artifact: inc.id,
      name: 'xen-restored',
    });
    try {
      expect(restored.artifacts).toEqual([full.id, inc.id]);
      expect(await rawSha(vdiOf(restored.guest.id, '1'))).toBe(await rawSha(VDI_DATA));
      expect(await rawSha(vdiOf(restored.guest.id, '0'))).toBe(await rawSha(vdiOf(VM1, '0')));
    } finally {
      await removeVm(restored.guest.id);
    }
    // An incremental since a checkpoint that is gone is NOT_FOUND.
    await expect(
      hv.backups.backup({ id: VM1 }, sink, { mode: 'incremental', sinceCheckpoint: full.checkpoint }),
    ).rejects.toMatchObject({ code: 'NOT_FOUND' });
  });

  it('an in-place restore puts the backed-up disk content back into the same halted VM and leaves nothing else', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hvkit-xen-bk-'));
    const sink = createDirectorySink(dir, { fsync: false });
    const root = vdiOf(VM2, '0');
    const before = await rawSha(root);
    const full = await hv.backups.backup({ id: VM2 }, sink);
    sim.writeDisk(root, 1024 * 1024, Buffer.from('written after the backup'));
    expect(await rawSha(root)).not.toBe(before);
    const vms = sim.db.table('VM').size;
    const vdis = sim.db.table('VDI').size;
    const result = await hv.backups.restore(createDirectorySource(dir), {
      artifact: full.id,
      mode: 'in-place',
    });
    expect(result.mode).toBe('in-place');
    expect(result.guest.id).toBe(VM2);
    expect(result.guest.name).toBe('hvkit-xen-vm2');
    expect(await rawSha(vdiOf(VM2, '0'))).toBe(before);
    expect(vdiOf(VM2, '0')).not.toBe(root);
    expect(sim.db.table('VDI').has(root)).toBe(false);
    expect([...sim.db.table('VDI').values()].some((v) => v.uuid === root)).toBe(false);
    expect(sim.db.table('VM').size).toBe(vms);
    expect(sim.db.table('VDI').size).toBe(vdis);
    expect(pendingTasks()).toEqual([]);
    // A running guest is CONFLICT, before anything is uploaded.
    const running = await hv.backups.backup({ id: VM1 }, sink);
    const error = await hv.backups
      .restore(createDirectorySource(dir), { artifact: running.id, mode: 'in-place' })
      .catch((e) => e);
    expect(error).toMatchObject({ code: 'CONFLICT' });
    expect(sim.db.table('VM').size).toBe(vms);
  });

  it('a connection dropped during the export: CONNECTION_LOST, no artifact marked complete, no snapshot, no task', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hvkit-xen-bk-'));
    const before = snapshotsOfVm1();
    sim.faults.dropExportAfterBytes = 100;
    const error = await hv.backups
      .backup({ id: VM1 }, createDirectorySink(dir, { fsync: false }))
      .catch((e) => e);
    expect(error).toMatchObject({ code: 'CONNECTION_LOST' });
    expect((await artifacts(dir)).filter((a) => a.complete)).toEqual([]);
    expect(snapshotsOfVm1()).toEqual(before);
    expect(pendingTasks()).toEqual([]);
  });

  it('a transfer the host fails: its XAPI error, typed, and nothing left', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hvkit-xen-bk-'));
    const before = snapshotsOfVm1();
    sim.faults.failNextTransfer = 'SR_BACKEND_FAILURE_44';
    const error = await hv.backups
      .backup({ id: VM1 }, createDirectorySink(dir, { fsync: false }))
      .catch((e) => e);
    expect(HvkitError.isInstance(error, 'REMOTE')).toBe(true);
    expect((error as HvkitError).backendCode).toBe('SR_BACKEND_FAILURE_44');
    expect((await artifacts(dir)).filter((a) => a.complete)).toEqual([]);
    expect(snapshotsOfVm1()).toEqual(before);
  });

  it('a task that fails (a memory checkpoint of a halted VM) is its XAPI error, and the task is gone', async () => {
    const error = await hv.backups.createSnapshot({ id: VM2 }, { name: 'cp', memory: true }).catch((e) => e);
    expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
    expect((error as HvkitError).backendCode).toBe('VM_BAD_POWER_STATE');
    expect([...sim.db.table('task').values()]).toEqual([]);
  });

  it('an abort in the middle of the export: ABORTED, no snapshot, no task, no complete artifact', async () => {
    dir = await mkdtemp(join(tmpdir(), 'hvkit-xen-bk-'));
    const before = snapshotsOfVm1();
    const controller = new AbortController();
    const inner = createDirectorySink(dir, { fsync: false });
    const sink: BackupSink = {
      ...inner,
      kind: inner.kind,
      location: inner.location,
      writeFile: (name, source, options) =>
        inner.writeFile(
          name,
          (async function* () {
            for await (const chunk of source) {
              yield chunk;
              if (name.endsWith('.xva.gz')) controller.abort();
            }
          })(),
          options,
        ),
    };
    const error = await hv.backups.backup({ id: VM1 }, sink, { signal: controller.signal }).catch((e) => e);
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    expect((await artifacts(dir)).filter((a) => a.complete)).toEqual([]);
    expect(snapshotsOfVm1()).toEqual(before);
    expect(pendingTasks()).toEqual([]);
  });

  it('cleanup keeps a running backup’s snapshot while its lease lives, then removes it and the expired lease', async () => {
    const [vmRef] = vmRow(VM1);
    const api = (method: string, params: unknown[]) =>
      fetch(`${sim.url}/jsonrpc`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }),
      }).then(async (r) => ((await r.json()) as { result: unknown }).result);
    const session = await api('session.login_with_password', [sim.username, sim.password]);
    // What a run in another process looks like: its lease on the VM, its snapshot.
    const run = (await api('VM.snapshot', [session, vmRef, BACKUP_SNAPSHOT_NAME])) as string;
    const runVdis = [...sim.db.table('VBD').values()].filter((b) => b.VM === run).map((b) => b.VDI);
    const lease = newLease('other-run');
    await api('VM.add_to_other_config', [session, vmRef, KEYS.lease, JSON.stringify(lease)]);
    const held = await hv.backups.cleanup({ id: VM1 });
    expect(held.removed).toEqual([]);
    expect(held.kept.map((k) => `${k.kind}:${k.run}`)).toEqual(['snapshot:other-run', 'lease:other-run']);
    // A backup of the VM meanwhile is CONFLICT, and changes nothing.
    dir = await mkdtemp(join(tmpdir(), 'hvkit-xen-bk-'));
    const error = await hv.backups.backup({ id: VM1 }, createDirectorySink(dir)).catch((e) => e);
    expect(error).toMatchObject({ code: 'CONFLICT' });
    expect(hvkitSnapshots().length).toBe(1);
    // The process died: its lease expired.
    const expired = { ...lease, expiresAt: new Date(Date.now() - 1000).toISOString() };
    await api('VM.remove_from_other_config', [session, vmRef, KEYS.lease]);
    await api('VM.add_to_other_config', [session, vmRef, KEYS.lease, JSON.stringify(expired)]);
    const result = await hv.backups.cleanup({ id: VM1 });
    expect(result.removed.map((r) => r.kind)).toEqual(['snapshot', 'lease']);
    expect(result.kept).toEqual([]);
    expect(sim.db.table('VM').has(run)).toBe(false);
    for (const v of runVdis) if (typeof v === 'string') expect(sim.db.table('VDI').has(v)).toBe(false);
    expect(hvkitSnapshots()).toEqual([]);
    expect(KEYS.lease in (vmRow(VM1)[1].other_config as object)).toBe(false);
  });
});

describe('xen-xapi transfers and redirects', () => {
  let proxy: Server;
  let elsewhere: Server;
  const seen: string[] = [];
  beforeAll(async () => {
    elsewhere = createServer((req, res) => {
      seen.push(req.url ?? '');
      res.end('not xapi');
    });
    await new Promise<void>((r) => elsewhere.listen(0, '127.0.0.2', () => r()));
    const away = `http://127.0.0.2:${(elsewhere.address() as AddressInfo).port}`;
    // A host in front of the simulator that redirects every download elsewhere.
    proxy = createServer((req, res) => {
      if (req.url?.startsWith('/export') || req.url?.startsWith('/pool/')) {
        res.writeHead(302, { location: `${away}${req.url}` });
        res.end();
        return;
      }
      const up = request(`${sim.url}${req.url}`, { method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode ?? 500, r.headers);
        r.pipe(res);
      });
      req.pipe(up);
    });
    await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  });
  afterAll(async () => {
    proxy?.closeAllConnections();
    elsewhere?.closeAllConnections();
    await new Promise((r) => proxy?.close(r));
    await new Promise((r) => elsewhere?.close(r));
  });

  it('a 302 to a host the pool does not list is PROTOCOL and the session never goes there; nothing is left', async () => {
    const url = `http://127.0.0.1:${(proxy.address() as AddressInfo).port}`;
    const a = await connect({ url, username: sim.username, password: sim.password, insecureHttp: true });
    dir = await mkdtemp(join(tmpdir(), 'hvkit-xen-bk-'));
    try {
      const before = snapshotsOfVm1();
      const error = await a.backups
        .backup({ id: VM1 }, createDirectorySink(dir, { fsync: false }))
        .catch((e) => e);
      expect(HvkitError.isInstance(error, 'PROTOCOL')).toBe(true);
      expect(String((error as Error).message)).toMatch(/not a member of this pool/);
      const hostError = await a.backups
        .backupHostConfig(createDirectorySink(dir, { fsync: false }))
        .catch((e) => e);
      expect(HvkitError.isInstance(hostError, 'PROTOCOL')).toBe(true);
      expect(seen).toEqual([]);
      expect(snapshotsOfVm1()).toEqual(before);
      expect((await artifacts(dir)).filter((x) => x.complete)).toEqual([]);
    } finally {
      await a.close();
    }
  });
});

async function removeVm(uuid: string): Promise<void> {
  const [ref, row] = vmRow(uuid);
  for (const vbdRef of row.VBDs as string[]) {
    const vbd = sim.db.table('VBD').get(vbdRef);
    if (vbd?.type === 'Disk' && typeof vbd.VDI === 'string') sim.db.table('VDI').delete(vbd.VDI);
    sim.db.table('VBD').delete(vbdRef);
  }
  for (const vif of row.VIFs as string[]) sim.db.table('VIF').delete(vif);
  sim.db.table('VM').delete(ref);
  sim.db.relink();
}
