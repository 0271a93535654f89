/**
 * The simulator's transfer endpoints and the snapshot messages behind them, over real HTTP on loopback:
 * export/import round trips, incremental VHDs that carry exactly the changed blocks, XAPI's refusals
 * (chunked uploads, bad sessions, power state), and the database dump read back by the loader.
 */

import { createHash } from 'node:crypto';
import { request } from 'node:http';
import { gunzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startXapiSimulator, type XapiSimulator } from '../simulator';
import { parseXmlDbDump } from './db';
import { CHUNK_BYTES } from './disks';
import { readTar, readVhd, VHD_BLOCK_BYTES } from './formats';

const VM1 = '5eed0008-0000-4000-8000-000000000002';
const VDI_ROOT = '5eed000c-0000-4000-8000-000000000001';

let sim: XapiSimulator;
let session: string;
let call: (method: string, ...params: unknown[]) => Promise<unknown>;

beforeAll(async () => {
  sim = await startXapiSimulator();
  const rpc = async (method: string, params: unknown[]) => {
    const r = await fetch(`${sim.url}/jsonrpc`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', method, params, id: 1 }),
    });
    const body = (await r.json()) as { result?: unknown; error?: { message: string; data: unknown[] } };
    if (body.error) throw new Error([body.error.message, ...body.error.data].join(' '));
    return body.result;
  };
  session = (await rpc('session.login_with_password', [sim.username, sim.password, '1.0', 'test'])) as string;
  call = (method, ...params) => rpc(method, [session, ...params]);
});
afterAll(() => sim?.close());

const get = (path: string) =>
  fetch(`${sim.url}${path}${path.includes('?') ? '&' : '?'}session_id=${session}`);
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

function put(path: string, body: Buffer, chunked = false): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const url = new URL(`${sim.url}${path}${path.includes('?') ? '&' : '?'}session_id=${session}`);
    const req = request(
      url,
      {
        method: 'PUT',
        headers: chunked ? { 'transfer-encoding': 'chunked' } : { 'content-length': body.length },
      },
      (res) => {
        let text = '';
        res.on('data', (c) => (text += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

async function vbdVdis(vmRef: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const vbd of (await call('VM.get_VBDs', vmRef)) as string[]) {
    const r = (await call('VBD.get_record', vbd)) as Record<string, string>;
    if (r.type === 'Disk') out.set(r.userdevice as string, r.VDI as string);
  }
  return out;
}

describe('simulator transfers', () => {
  it('refuses a bad session with 401 and a running VM export with VM_BAD_POWER_STATE', async () => {
    expect((await fetch(`${sim.url}/export?uuid=${VM1}&session_id=OpaqueRef:nope`)).status).toBe(401);
    const r = await get(`/export?uuid=${VM1}`);
    expect(r.status).toBe(500);
    expect(await r.text()).toContain('VM_BAD_POWER_STATE');
  });

  it('a raw export is the whole disk with its seeded content; vhd with base carries only changed blocks', async () => {
    const vmRef = (await call('VM.get_by_uuid', VM1)) as string;
    const raw = Buffer.from(await (await get(`/export_raw_vdi?vdi=${VDI_ROOT}&format=raw`)).arrayBuffer());
    expect(raw.length).toBe(64 * 1024 * 1024);
    expect(raw.subarray(0, 4096).some((b) => b !== 0)).toBe(true);
    const snap1 = (await call('VM.snapshot', vmRef, 'first')) as string;
    const base = (await vbdVdis(snap1)).get('0') as string;
    sim.writeDisk(VDI_ROOT, 5 * VHD_BLOCK_BYTES + 10, Buffer.from('changed after the snapshot'));
    const snap2 = (await call('VM.snapshot', vmRef, 'second')) as string;
    const top = (await vbdVdis(snap2)).get('0') as string;
    const delta = readVhd(
      Buffer.from(await (await get(`/export_raw_vdi?vdi=${top}&format=vhd&base=${base}`)).arrayBuffer()),
    );
    expect([...delta.blocks.keys()]).toEqual([5]);
    const full = readVhd(
      Buffer.from(await (await get(`/export_raw_vdi?vdi=${top}&format=vhd`)).arrayBuffer()),
    );
    expect([...full.blocks.keys()].sort((a, b) => a - b)).toEqual([0, 5, 31]);
    // The delta applied to a copy of the base gives the top.
    const copy = (await call('VDI.snapshot', base, {})) as string;
    const vhd = Buffer.from(
      await (await get(`/export_raw_vdi?vdi=${top}&format=vhd&base=${base}`)).arrayBuffer(),
    );
    expect((await put(`/import_raw_vdi?vdi=${copy}&format=vhd`, vhd)).status).toBe(200);
    const a = Buffer.from(await (await get(`/export_raw_vdi?vdi=${copy}`)).arrayBuffer());
    const b = Buffer.from(await (await get(`/export_raw_vdi?vdi=${top}`)).arrayBuffer());
    expect(sha(a)).toBe(sha(b));
    // Destroying a snapshot leaves its VDIs (as XAPI); VDI.destroy removes them.
    const vdis = [...(await vbdVdis(snap1)).values()];
    await call('VM.destroy', snap1);
    for (const v of vdis) expect(await call('VDI.get_uuid', v)).toMatch(/-/);
    for (const v of vdis) await call('VDI.destroy', v);
    await expect(call('VDI.get_uuid', vdis[0])).rejects.toThrow(/HANDLE_INVALID/);
    await call('VM.destroy', snap2);
  });

  it('an XVA export of a snapshot imports as a new VM with the same disks and new MACs', async () => {
    const vmRef = (await call('VM.get_by_uuid', VM1)) as string;
    const snap = (await call('VM.snapshot', vmRef, 'xva')) as string;
    const xva = Buffer.from(await (await get(`/export?ref=${snap}&use_compression=gzip`)).arrayBuffer());
    const names = readTar(gunzipSync(xva)).map((e) => e.name);
    expect(names[0]).toBe('ova.xml');
    expect(names.filter((n) => /^Ref:\d+\/00000000\.checksum$/.test(n))).toHaveLength(2);
    const task = (await call('task.create', 'import', '')) as string;
    expect((await put(`/import?task_id=${task}`, xva)).status).toBe(200);
    const rec = (await call('task.get_record', task)) as Record<string, string>;
    expect(rec.status).toBe('success');
    const newVm = /OpaqueRef:[^<]+/.exec(rec.result as string)?.[0] as string;
    await call('task.destroy', task);
    const orig = await vbdVdis(snap);
    const made = await vbdVdis(newVm);
    expect([...made.keys()].sort()).toEqual([...orig.keys()].sort());
    for (const [dev, vdi] of orig) {
      const x = Buffer.from(await (await get(`/export_raw_vdi?vdi=${vdi}`)).arrayBuffer());
      const y = Buffer.from(await (await get(`/export_raw_vdi?vdi=${made.get(dev)}`)).arrayBuffer());
      expect(sha(y)).toBe(sha(x));
    }
    const macs = async (vm: string) =>
      Promise.all(((await call('VM.get_VIFs', vm)) as string[]).map((v) => call('VIF.get_MAC', v)));
    const newMacs = await macs(newVm);
    expect(newMacs.length).toBe((await macs(snap)).length);
    for (const m of newMacs) expect(await macs(snap)).not.toContain(m);
    expect(await call('VM.get_uuid', newVm)).not.toBe(await call('VM.get_uuid', snap));
  });

  it('refuses a chunked import with IMPORT_ERROR_CANNOT_HANDLE_CHUNKED and creates nothing', async () => {
    const before = ((await call('VM.get_all')) as string[]).length;
    const r = await put('/import', Buffer.from('x'.repeat(2048)), true);
    expect(r.status).toBe(500);
    expect(r.text).toContain('IMPORT_ERROR_CANNOT_HANDLE_CHUNKED');
    expect(((await call('VM.get_all')) as string[]).length).toBe(before);
  });

  it('cuts an export when told to, and its task is gone', async () => {
    const vmRef = (await call('VM.get_by_uuid', VM1)) as string;
    const snap = (await call('VM.snapshot', vmRef, 'drop')) as string;
    sim.faults.dropExportAfterBytes = CHUNK_BYTES;
    const r = await get(`/export?ref=${snap}`);
    await expect(r.arrayBuffer()).rejects.toThrow();
    expect(((await call('task.get_all')) as string[]).length).toBe(0);
  });

  it('a task_id given to an export gets its progress while it runs, then success', async () => {
    const task = (await call('task.create', 'export', '')) as string;
    const seen: number[] = [];
    const r = await get(`/export_raw_vdi?vdi=${VDI_ROOT}&task_id=${task}`);
    const reader = (r.body as ReadableStream<Uint8Array>).getReader();
    for (let n = 0; ; n++) {
      const step = await reader.read();
      if (step.done) break;
      if (n % 64 === 0) seen.push(Number(await call('task.get_progress', task)));
    }
    expect(seen.some((p) => p > 0 && p < 1)).toBe(true);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect(await call('task.get_status', task)).toBe('success');
    expect(await call('task.get_progress', task)).toBe(1);
    await call('task.destroy', task);
  });

  it('/pool/xmldbdump is the database in the dump format; /host_backup holds it', async () => {
    const text = await (await get('/pool/xmldbdump')).text();
    const db = parseXmlDbDump(text);
    expect([...db.table('VM').values()].some((v) => v.uuid === VM1)).toBe(true);
    const backup = readTar(gunzipSync(Buffer.from(await (await get('/host_backup')).arrayBuffer())));
    expect(backup.map((e) => e.name)).toEqual(['var/backup/pool-database.xml', 'etc/xensource-inventory']);
  });
});
