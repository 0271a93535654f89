import { createServer, type RequestListener } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpFetch, HvkitError } from '@hvkit/core';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { startXapiSimulator, type XapiSimulator } from '../simulator';
import { XapiClient } from './client';

const VM1 = '5eed0008-0000-4000-8000-000000000002';
const fetch = createHttpFetch();
afterAll(() => fetch.close());
const open: XapiSimulator[] = [];
afterEach(async () => {
  for (const s of open.splice(0)) await s.close();
});

async function sim(options: Parameters<typeof startXapiSimulator>[0] = {}) {
  const s = await startXapiSimulator(options);
  open.push(s);
  return s;
}

function client(url: string, extra: Partial<ConstructorParameters<typeof XapiClient>[0]> = {}) {
  return new XapiClient({ url: new URL(url), fetch, timeoutMs: 5000, ...extra });
}

describe('XapiClient against the simulator', () => {
  it.each(['json-rpc', 'xml-rpc'] as const)('logs in, calls and logs out over %s', async (transport) => {
    const s = await sim();
    const c = client(s.url, { transport });
    await c.login(s.username, s.password);
    expect(s.sessionCount).toBe(1);
    const ref = (await c.call('VM.get_by_uuid', [VM1])) as string;
    expect(await c.call('VM.get_name_label', [ref])).toBe('hvkit-xen-vm1');
    await c.logout();
    expect(s.sessionCount).toBe(0);
  });

  it('falls back to XML-RPC for good when /jsonrpc answers text/xml (an old host)', async () => {
    const s = await sim({ jsonRpc: false });
    const c = client(s.url);
    expect(c.transport).toBe('json-rpc');
    await c.login(s.username, s.password);
    expect(c.transport).toBe('xml-rpc');
    expect(await c.call('VM.get_by_uuid', [VM1])).toMatch(/^OpaqueRef:/);
  });

  it('refused credentials are AUTH_FAILED and the password is nowhere in the error', async () => {
    const s = await sim();
    const c = client(s.url);
    const error = await c.login('root', 'wrong-password-123').catch((e: unknown) => e);
    expect(HvkitError.isInstance(error, 'AUTH_FAILED')).toBe(true);
    expect((error as HvkitError).backendCode).toBe('SESSION_AUTHENTICATION_FAILED');
    expect(JSON.stringify({ ...(error as object), message: (error as Error).message })).not.toContain(
      'wrong-password-123',
    );
  });

  it('SESSION_INVALID mid-run (a toolstack restart): one new login, the call retried and answered', async () => {
    const s = await sim();
    const c = client(s.url);
    await c.login(s.username, s.password);
    const before = c.session;
    s.invalidateSessions();
    expect(s.sessionCount).toBe(0);
    const [a, b] = await Promise.all([c.call('VM.get_by_uuid', [VM1]), c.call('pool.get_all', [])]);
    expect(a).toMatch(/^OpaqueRef:/);
    expect(b).toHaveLength(1);
    expect(c.session).not.toBe(before);
    expect(s.sessionCount).toBe(1); // the two calls shared one new login
  });

  it('HOST_IS_SLAVE at login: followed once to a listed pool member on the same scheme and port', async () => {
    const master = await sim();
    const port = Number(new URL(master.url).port);
    const slave = await sim({ host: '127.0.0.2', port, slaveOf: '127.0.0.1' });
    const c = client(slave.url, { poolHosts: ['127.0.0.1'] });
    await c.login(master.username, master.password);
    expect(c.origin).toBe(master.url);
    expect(master.sessionCount).toBe(1);
    expect(await c.call('VM.get_by_uuid', [VM1])).toMatch(/^OpaqueRef:/);
  });

  it('HOST_IS_SLAVE naming a host not in poolHosts: CONFLICT, and the password goes nowhere else', async () => {
    const master = await sim();
    const port = Number(new URL(master.url).port);
    const slave = await sim({ host: '127.0.0.2', port, slaveOf: '127.0.0.1' });
    const error = await client(slave.url)
      .login(master.username, master.password)
      .catch((e: unknown) => e);
    expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
    expect((error as HvkitError).backendCode).toBe('HOST_IS_SLAVE');
    expect((error as HvkitError).details?.params).toEqual(['127.0.0.1']);
    expect(master.sessionCount).toBe(0);
  });

  it('HOST_IS_SLAVE pointing at a master whose records do not list it: PROTOCOL, session closed', async () => {
    const master = await sim();
    const port = Number(new URL(master.url).port);
    // Rewrite the master's own records so no host has the address the slave named.
    for (const h of master.db.table('host').values()) h.address = '192.0.2.99';
    const slave = await sim({ host: '127.0.0.2', port, slaveOf: '127.0.0.1' });
    const error = await client(slave.url, { poolHosts: ['127.0.0.1'] })
      .login(master.username, master.password)
      .catch((e: unknown) => e);
    expect(HvkitError.isInstance(error, 'PROTOCOL')).toBe(true);
    expect(master.sessionCount).toBe(0);
  });

  it('an Async call is awaited and its XML-fragment result decoded (also over JSON-RPC); the task is destroyed', async () => {
    const s = await sim();
    const c = client(s.url);
    await c.login(s.username, s.password);
    const ref = await c.call('VM.get_by_uuid', [VM1]);
    expect(await c.callAsync('VM.get_uuid', [ref as string])).toBe(VM1);
    const record = (await c.callAsync('VM.get_record', [ref as string])) as Record<string, unknown>;
    expect(record.name_label).toBe('hvkit-xen-vm1');
    expect(s.db.table('task').size).toBe(0);
  });

  it('a task that fails rejects with its XAPI error, nothing changed, the task destroyed', async () => {
    const s = await sim();
    const c = client(s.url);
    await c.login(s.username, s.password);
    const ref = (await c.call('VM.get_by_uuid', [VM1])) as string;
    const error = await c
      .callAsync('VM.set_memory_limits', [ref, 1, 2, 1, 2]) // the VM is running: XAPI refuses
      .catch((e: unknown) => e);
    expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
    expect((error as HvkitError).backendCode).toBe('VM_BAD_POWER_STATE');
    expect((error as HvkitError).details?.params).toEqual([ref, 'halted', 'running']);
    expect(s.db.table('VM').get(ref)?.memory_static_max).toBe(4 * 1024 ** 3);
    expect(s.db.table('task').size).toBe(0);
  });

  it('aborting a pending task cancels it on the host (task.cancel) before rejecting', async () => {
    const s = await sim({ taskDelayMs: 10_000 });
    const c = client(s.url, { taskPollMs: { min: 20, max: 50 } });
    await c.login(s.username, s.password);
    const ref = (await c.call('VM.get_by_uuid', [VM1])) as string;
    const controller = new AbortController();
    const seen: string[] = [];
    const pending = c.callAsync('VM.hard_shutdown', [ref], { signal: controller.signal });
    setTimeout(() => {
      for (const t of s.db.table('task').values()) seen.push(String(t.status));
      controller.abort();
    }, 150);
    const error = await pending.catch((e: unknown) => e);
    expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
    expect(seen).toEqual(['pending']);
    await new Promise((r) => setTimeout(r, 100));
    expect(s.db.table('task').size).toBe(0);
    expect(s.db.table('VM').get(ref)?.power_state).toBe('Running');
  });
});

describe('XapiClient against a misbehaving server', () => {
  async function hostile(handler: RequestListener) {
    const server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      close: () => new Promise((r) => server.close(r)),
    };
  }

  it('refuses a redirect (PROTOCOL) without following it', async () => {
    let hits = 0;
    const h = await hostile((_req, res) => {
      hits++;
      res.writeHead(302, { location: 'http://192.0.2.1/jsonrpc' }).end();
    });
    const error = await client(h.url)
      .login('root', 'pw-xyz-1234')
      .catch((e: unknown) => e);
    expect(HvkitError.isInstance(error, 'PROTOCOL')).toBe(true);
    expect(hits).toBe(1);
    await h.close();
  });

  it('an endless body stops at maxResponseBytes (PROTOCOL); a silent server at the deadline (TIMEOUT)', async () => {
    const h = await hostile((req, res) => {
      if (req.url === '/jsonrpc') {
        res.writeHead(200, { 'content-type': 'application/json' });
        const chunk = Buffer.alloc(64 * 1024, 0x20);
        const write = () => {
          while (res.write(chunk)) {}
          res.once('drain', write);
        };
        write();
        req.socket.on('close', () => res.destroy());
      }
    });
    const big = await client(h.url, { maxResponseBytes: 1024 * 1024 })
      .login('root', 'pw-xyz-1234')
      .catch((e: unknown) => e);
    expect(HvkitError.isInstance(big, 'PROTOCOL')).toBe(true);
    await h.close();
    const silent = await hostile(() => {});
    const started = Date.now();
    const late = await client(silent.url, { timeoutMs: 300 })
      .login('root', 'pw-xyz-1234')
      .catch((e: unknown) => e);
    expect(HvkitError.isInstance(late, 'TIMEOUT')).toBe(true);
    expect(Date.now() - started).toBeLessThan(3000);
    await silent.close();
  });

  it('a JSON-RPC reply with the wrong id or no result is PROTOCOL', async () => {
    const h = await hostile((_req, res) => {
      res
        .writeHead(200, { 'content-type': 'application/json' })
        .end('{"jsonrpc":"2.0","result":"OpaqueRef:x","id":999}');
    });
    const error = await client(h.url)
      .login('root', 'pw-xyz-1234')
      .catch((e: unknown) => e);
    expect(HvkitError.isInstance(error, 'PROTOCOL')).toBe(true);
    await h.close();
  });
});
