/**
 * The vAPI tagging client against hostile servers on loopback: redirects to another origin, endless and
 * trickling bodies, dropped connections. Each server records what it received.
 */

import { HvkitError } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type SoapReply, type SoapRequest, type SoapServer, startSoapServer } from '../../test/soap-server';
import { createVimFetch } from './soap/tls';
import { VapiTagging } from './vapi';

const MiB = 1024 * 1024;
const SESSION_ID = 'vapi-session-0f3c9a';
const VM = { type: 'VirtualMachine', id: 'vm-42' };

const servers: SoapServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function serve(handler: (req: SoapRequest) => SoapReply): Promise<SoapServer> {
  const server = await startSoapServer(handler);
  servers.push(server);
  return server;
}

/** A vAPI server: login answers a session id; `other` answers the rest. */
function vapi(other: (req: SoapRequest) => SoapReply): (req: SoapRequest) => SoapReply {
  return (req) =>
    req.path === '/rest/com/vmware/cis/session' && req.httpMethod === 'POST'
      ? { body: JSON.stringify({ value: SESSION_ID }), headers: { 'content-type': 'application/json' } }
      : other(req);
}

function tagging(server: SoapServer, extra: { timeoutMs?: number } = {}): VapiTagging {
  return new VapiTagging({ origin: server.origin, fetch, username: 'u', password: 'p', ...extra });
}

async function outcome(promise: Promise<unknown>): Promise<unknown> {
  return promise.then(
    (value) => ({ resolved: value }),
    (error: unknown) => error,
  );
}

describe('VapiTagging against hostile servers', () => {
  it('never follows a redirect: the session id does not reach another origin', async () => {
    const foreign = await serve(() => ({
      body: '{"value":[]}',
      headers: { 'content-type': 'application/json' },
    }));
    const server = await serve(
      vapi(() => ({ status: 302, headers: { location: `${foreign.origin}/rest/steal` } })),
    );
    const client = tagging(server);
    expect(await client.available()).toBe(true);
    const error = await outcome(client.attachedTags(VM));
    expect(foreign.requests.map((r) => r.headers['vmware-api-session-id'] ?? '(none)')).toEqual([]);
    expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
    expect((error as HvkitError).message).toMatch(/redirect/i);
    // The login itself is not redirected either (basic credentials).
    const loginRedirect = await serve(() => ({
      status: 307,
      headers: { location: `${foreign.origin}/rest/x` },
    }));
    expect(HvkitError.isInstance(await outcome(tagging(loginRedirect).available()), 'PROTOCOL')).toBe(true);
    expect(foreign.requests).toHaveLength(0);
  });

  it('bounds the JSON body: an endless body fails with PROTOCOL in bounded memory and time', async () => {
    let sent = 0;
    const server = await serve(
      vapi(() => ({
        raw: (res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write('{"value":[');
          const chunk = Buffer.from('"urn:vmomi:InventoryServiceTag:0:GLOBAL",'.repeat(1024));
          // Endless for the client; the server stops at 64 MiB so a client without a bound ends too.
          const pump = () => {
            while (sent < 64 * MiB && !res.destroyed) {
              sent += chunk.length;
              if (!res.write(chunk)) return void res.once('drain', pump);
            }
            if (!res.destroyed) res.end(']}');
          };
          pump();
        },
      })),
    );
    const client = tagging(server);
    await client.available();
    globalThis.gc?.();
    const before = process.memoryUsage();
    const started = performance.now();
    const error = await outcome(client.attachedTags(VM));
    const ms = performance.now() - started;
    const grown = process.memoryUsage().rss - before.rss;
    expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
    expect((error as HvkitError).message).toMatch(/larger than \d+ bytes/);
    // The client stopped reading near its bound (4 MiB), far from the 64 MiB the server would send.
    expect(sent).toBeLessThan(24 * MiB);
    expect(grown).toBeLessThan(48 * MiB);
    expect(ms).toBeLessThan(5_000);
  });

  it('gives every request a deadline: a trickling body ends with TIMEOUT', async () => {
    const server = await serve(
      vapi(() => ({
        raw: (res) => {
          res.writeHead(200, { 'content-type': 'application/json' });
          const timer = setInterval(() => res.write(' '), 50);
          res.on('close', () => clearInterval(timer));
        },
      })),
    );
    const client = tagging(server, { timeoutMs: 400 });
    await client.available();
    const started = performance.now();
    const error = await Promise.race([
      outcome(client.attachedTags(VM)),
      new Promise((resolve) => setTimeout(() => resolve('still running after 5 s'), 5_000)),
    ]);
    expect(HvkitError.isInstance(error, 'TIMEOUT'), String(error)).toBe(true);
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('maps transport failures to typed errors: refused connection, connection dropped mid-body', async () => {
    const closed = await serve(() => ({}));
    const origin = closed.origin;
    await closed.close();
    servers.splice(servers.indexOf(closed), 1);
    const refused = await outcome(
      new VapiTagging({ origin, fetch, username: 'u', password: 'p' }).available(),
    );
    expect(HvkitError.isInstance(refused, 'CONNECTION_LOST'), String(refused)).toBe(true);

    const server = await serve(
      vapi(() => ({
        raw: (res) => {
          res.writeHead(200, { 'content-type': 'application/json', 'content-length': '5000' });
          res.write('{"value":["');
          setTimeout(() => res.socket?.destroy(), 20);
        },
      })),
    );
    for (const f of [fetch, createVimFetch()]) {
      const client = new VapiTagging({ origin: server.origin, fetch: f, username: 'u', password: 'p' });
      await client.available();
      const dropped = await outcome(client.attachedTags(VM));
      expect(HvkitError.isInstance(dropped, 'CONNECTION_LOST'), String(dropped)).toBe(true);
    }
  });
});
