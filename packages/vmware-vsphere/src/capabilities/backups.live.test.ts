/**
 * Disk backups (`/folder` downloads) against a hostile server: an https proxy on loopback in front of a
 * private vcsim ESX model (peer `vcsim`) that passes everything through except the VMDK downloads it is
 * told to answer itself: a redirect to another origin over plain http, an endless body, a stalled body,
 * dropped connections. A second server stands for the other origin and records what reaches it. Also the
 * host configuration backup on vcsim's ESX model (a typed UNSUPPORTED: vcsim lacks it).
 */

import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import {
  type BackupSink,
  createDirectorySink,
  createStreamSink,
  HvkitError,
  type HypervisorAdapterV1,
  type SinkWriteOptions,
} from '@hvkit/core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCert, type TestCert } from '../../../core/src/__test-utils__';
import { type HostileProxy, startHostileProxy } from '../../test/hostile-proxy';
import { DISK_BYTES, diskContent, startPreparedVcsim } from '../../test/probe';
import { type SoapServer, startSoapServer } from '../../test/soap-server';
import type { VcsimInstance } from '../../test/vcsim-instance';
import { env, liveTitle, vcsim } from '../../test/vcsim-peer';
import { connect, type VmwareVsphereOptions } from '../connect';

const MiB = 1024 * 1024;
const FLAT = /-flat\.vmdk\?/;

describe.skipIf(!vcsim.available)(liveTitle('disk backups against a hostile /folder server'), () => {
  // Made in beforeAll, not here: a skipped describe body still runs when the file is collected.
  let cert: TestCert;
  let sim: VcsimInstance;
  let proxy: HostileProxy;
  let foreign: SoapServer;
  let adapter: HypervisorAdapterV1;
  let vm: string;
  let flatName: string;
  const dirs: string[] = [];

  const options = (extra: Partial<VmwareVsphereOptions> = {}): VmwareVsphereOptions => ({
    url: proxy.url,
    username: sim.username,
    password: sim.password,
    tls: { ca: cert.cert },
    ...extra,
  });

  beforeAll(async () => {
    cert = makeTestCert('vc-proxy', 'IP:127.0.0.1');
    sim = await startPreparedVcsim(env().HVKIT_VCSIM_BIN, 'esx');
    proxy = await startHostileProxy(sim.url, { tls: cert });
    foreign = await startSoapServer(() => ({
      raw: (res) => {
        res.writeHead(200, {
          'content-type': 'application/octet-stream',
          'content-length': String(DISK_BYTES),
        });
        res.end(Buffer.alloc(DISK_BYTES, 0xee));
      },
    }));
    adapter = await connect(options());
    const guests = await adapter.inventory!.listGuests();
    const guest = guests.find((g) => g.powerState === 'running') ?? guests[0];
    vm = guest!.id;
    const disk = guest!.disks[0]!.source!;
    flatName = (disk.split('/').pop() as string).replace(/\.vmdk$/, '-flat.vmdk');
  });
  afterEach(() => {
    proxy.intercept = () => false;
    foreign.requests.length = 0;
  });
  afterAll(async () => {
    await adapter?.close();
    await foreign?.close();
    await proxy?.close();
    await sim?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  const directory = () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvkit-vs-backup-'));
    dirs.push(dir);
    return { dir, sink: createDirectorySink(dir) };
  };

  /** Files under `dir`, temporary ones included. */
  const filesIn = (dir: string) => readdirSync(dir, { recursive: true }).map(String);

  /** A sink that counts and discards (an endless source must not fill the disk before the fix). */
  const nullSink = () => {
    const seen: { name: string; expectedBytes?: number; bytes: number }[] = [];
    const sink = createStreamSink((name) => {
      const entry = { name, bytes: 0 };
      seen.push(entry);
      return new Writable({
        write(chunk: Buffer, _encoding, callback) {
          entry.bytes += chunk.length;
          callback();
        },
      });
    });
    const recording: BackupSink = {
      ...sink,
      writeFile: (name, source, o?: SinkWriteOptions) => {
        const result = sink.writeFile(name, source, o);
        const entry = seen.at(-1);
        if (entry && o?.expectedBytes !== undefined) entry.expectedBytes = o.expectedBytes;
        return result;
      },
    };
    return { sink: recording, seen };
  };

  async function outcome(promise: Promise<unknown>, guardMs = 20_000): Promise<unknown> {
    return Promise.race([
      promise.then(
        (value) => ({ resolved: value }),
        (error: unknown) => error,
      ),
      new Promise((resolve) => setTimeout(() => resolve(`still running after ${guardMs} ms`), guardMs)),
    ]);
  }

  /** Answers the disk range asked for (200, or 206 for a Range) with `bytes` of `fill`, then stops. */
  function startOfRange(req: IncomingMessage, res: ServerResponse, bytes: number, fill: number): void {
    const from = Number(/^bytes=(\d+)-$/.exec(String(req.headers.range ?? ''))?.[1] ?? 0);
    res.writeHead(from > 0 ? 206 : 200, {
      'content-length': String(DISK_BYTES - from),
      ...(from > 0 ? { 'content-range': `bytes ${from}-${DISK_BYTES - 1}/${DISK_BYTES}` } : {}),
    });
    res.write(Buffer.alloc(bytes, fill));
  }

  /** {@link startOfRange}, then drops the connection. */
  function dropAfter(req: IncomingMessage, res: ServerResponse, bytes: number, fill: number): void {
    startOfRange(req, res, bytes, fill);
    setTimeout(() => res.socket?.destroy(), 20);
  }

  async function noSnapshotsLeft(): Promise<void> {
    expect(await adapter.backups!.listSnapshots(vm)).toEqual([]);
  }

  it('backs up through the proxy as through vcsim itself (the baseline), telling the sink each size', async () => {
    const { sink, seen } = nullSink();
    const artifact = await adapter.backups!.backup(vm, sink);
    const flat = artifact.files.find((f) => f.name.endsWith('-flat.vmdk'));
    expect(flat?.bytes).toBe(DISK_BYTES);
    expect(flat?.sha256).toBe(
      createHash('sha256')
        .update(diskContent((await adapter.inventory!.getGuest(vm)).disks[0]!.source!))
        .digest('hex'),
    );
    expect(seen.find((s) => s.name.endsWith('-flat.vmdk'))?.expectedBytes).toBe(DISK_BYTES);
    await noSnapshotsLeft();
  });

  it('does not follow a redirect to another origin over plain http: no request there, no foreign disk', async () => {
    proxy.intercept = (req, res) => {
      if (req.method !== 'GET' || !FLAT.test(req.url ?? '')) return false;
      res.writeHead(302, { location: `${foreign.origin}/folder/${flatName}` });
      res.end();
      return true;
    };
    const { dir, sink } = directory();
    const error = await outcome(adapter.backups!.backup(vm, sink));
    expect(foreign.requests).toHaveLength(0);
    expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
    expect((error as HvkitError).message).toMatch(/redirect/i);
    expect(filesIn(dir).filter((f) => !f.endsWith('/') && f.includes('.vmdk'))).toEqual([]);
    await noSnapshotsLeft();
  });

  it('cuts an endless body at the disk capacity bound instead of writing until the disk fills', async () => {
    let sent = 0;
    proxy.intercept = (req, res) => {
      if (req.method !== 'GET' || !FLAT.test(req.url ?? '')) return false;
      res.writeHead(200, { 'content-type': 'application/octet-stream' });
      const chunk = Buffer.alloc(64 * 1024, 0x5a);
      const pump = () => {
        while (!res.destroyed) {
          sent += chunk.length;
          if (!res.write(chunk)) return void res.once('drain', pump);
        }
      };
      pump();
      return true;
    };
    const { sink, seen } = nullSink();
    const started = performance.now();
    const error = await outcome(adapter.backups!.backup(vm, sink));
    expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
    // vcsim's disks have a capacity of 1 MiB: the bound is that plus 1 MiB of VMDK metadata slack.
    const written = seen.find((s) => s.name.endsWith('-flat.vmdk'))?.bytes ?? 0;
    expect(written).toBeLessThanOrEqual(2 * MiB);
    expect(sent).toBeLessThan(32 * MiB);
    expect(performance.now() - started).toBeLessThan(10_000);
    await noSnapshotsLeft();
  });

  it('refuses a declared size above the capacity bound before writing anything', async () => {
    proxy.intercept = (req, res) => {
      if (req.method !== 'GET' || !FLAT.test(req.url ?? '')) return false;
      res.writeHead(200, { 'content-length': String(64 * 1024 * MiB) });
      res.write(Buffer.alloc(1024));
      return true;
    };
    const { sink, seen } = nullSink();
    const error = await outcome(adapter.backups!.backup(vm, sink));
    expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
    expect(seen.find((s) => s.name.endsWith('-flat.vmdk'))?.bytes ?? 0).toBe(0);
    await noSnapshotsLeft();
  });

  it('ends a stalled body with TIMEOUT after the idle deadline (backupIdleTimeoutMs)', async () => {
    proxy.intercept = (req, res) => {
      if (req.method !== 'GET' || !FLAT.test(req.url ?? '')) return false;
      startOfRange(req, res, 1000, 0);
      return true; // and then nothing
    };
    const stalling = await connect(options({ backupIdleTimeoutMs: 300 }));
    try {
      const { sink } = nullSink();
      const started = performance.now();
      const error = await outcome(stalling.backups!.backup(vm, sink), 10_000);
      expect(HvkitError.isInstance(error, 'TIMEOUT'), String(error)).toBe(true);
      // One try and its resumes, each ended by the idle deadline.
      expect(performance.now() - started).toBeLessThan(5_000);
    } finally {
      await stalling.close();
    }
    await noSnapshotsLeft();
  });

  it('resumes a dropped download with Range and writes the complete file', async () => {
    let dropped = 0;
    proxy.intercept = (req, res) => {
      if (req.method !== 'GET' || !FLAT.test(req.url ?? '') || dropped >= 2) return false;
      dropped++;
      dropAfter(req, res, 1000, 0x11);
      return true;
    };
    const ranges: string[] = [];
    const seenRequests = proxy.requests.length;
    const { sink } = nullSink();
    const artifact = await adapter.backups!.backup(vm, sink);
    for (const r of proxy.requests.slice(seenRequests))
      if (FLAT.test(r.path) && r.method === 'GET') ranges.push(String(r.headers.range ?? ''));
    expect(ranges).toEqual(['', 'bytes=1000-', 'bytes=2000-']);
    const flat = artifact.files.find((f) => f.name.endsWith('-flat.vmdk'));
    expect(flat?.bytes).toBe(DISK_BYTES);
    // The proxy's first 2000 bytes were 0x11, the rest came from vcsim.
    const expected = Buffer.from(diskContent((await adapter.inventory!.getGuest(vm)).disks[0]!.source!));
    expected.fill(0x11, 0, 2000);
    expect(flat?.sha256).toBe(createHash('sha256').update(expected).digest('hex'));
    await noSnapshotsLeft();
  });

  it('a connection that keeps dropping ends with a typed CONNECTION_LOST, not a raw TypeError', async () => {
    proxy.intercept = (req, res) => {
      if (req.method !== 'GET' || !FLAT.test(req.url ?? '')) return false;
      dropAfter(req, res, 100, 0);
      return true;
    };
    const { sink } = nullSink();
    const error = await outcome(adapter.backups!.backup(vm, sink));
    expect(HvkitError.isInstance(error, 'CONNECTION_LOST'), String(error)).toBe(true);
    await noSnapshotsLeft();
  });
});

describe.skipIf(!vcsim.available)(liveTitle('host configuration backup'), () => {
  it('host configuration backup on vcsim ESX is a typed UNSUPPORTED', async () => {
    const e = env();
    const adapter = await connect({
      url: e.HVKIT_VCSIM_ESX_URL,
      username: e.HVKIT_VCSIM_USER,
      password: e.HVKIT_VCSIM_PASSWORD,
      tls: { ca: readFileSync(e.HVKIT_VCSIM_CA, 'utf8') },
    });
    try {
      const sink = {
        kind: 'test',
        location: 'nowhere',
        writeFile: async () => ({ name: 'x', bytes: 0, sha256: '' }),
      };
      await expect(adapter.backups!.backupHostConfig!(sink)).rejects.toMatchObject({ code: 'UNSUPPORTED' });
    } finally {
      await adapter.close();
    }
  });
});
