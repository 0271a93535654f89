/**
 * VimSoapClient against a local HTTP server, for what vcsim 0.24.2 cannot show: vCenter's quoted session
 * cookie, HTTP errors, oversized and non-SOAP bodies, a server that hangs.
 */

import { HvkitError } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type SoapReply, type SoapServer, sample, startSoapServer } from '../../../test/soap-server';
import { VimSoapClient } from './client';
import { moRef } from './envelope';
import { connectVim, SERVICE_INSTANCE } from './session';

let server: SoapServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(HvkitError.isInstance(error), String(error)).toBe(true);
  return error as HvkitError;
}

const SM = moRef('SessionManager', 'SessionManager');

describe('VimSoapClient', () => {
  it('sends SOAPAction and content type, and keeps the session cookie exactly as vCenter sends it', async () => {
    const cookie = 'vmware_soap_session="52b7c1e3a0f4d5e6b7c8d9e0f1a2b3c4d5e6f7a8"';
    server = await startSoapServer((req): SoapReply => {
      if (req.method === 'Login') {
        return {
          body: sample('login.xml'),
          headers: { 'set-cookie': [`${cookie}; Path=/; HttpOnly; Secure;`, 'other=1; Max-Age=3600'] },
        };
      }
      return { body: sample('current-time.xml') };
    });
    const client = new VimSoapClient({ url: server.url, insecureHttp: true, version: '6.7' });
    await client.invoke('Login', SM, { userName: 'u', password: 'p' });
    expect(client.sessionCookie).toBe('"52b7c1e3a0f4d5e6b7c8d9e0f1a2b3c4d5e6f7a8"');
    const now = await client.invoke('CurrentTime', SERVICE_INSTANCE);
    expect(now).toBeInstanceOf(Date);
    const [login, time] = server.requests;
    expect(login?.headers.soapaction).toBe('urn:vim25/6.7');
    expect(login?.headers['content-type']).toBe('text/xml; charset="utf-8"');
    expect(login?.headers.cookie).toBeUndefined();
    // Secure is ignored on purpose: the cookie came over this very connection.
    expect(time?.headers.cookie).toBe(`${cookie}; other=1`);
  });

  it('forgets a cookie the server expires', async () => {
    server = await startSoapServer((req) =>
      req.method === 'Login'
        ? { body: sample('login.xml'), headers: { 'set-cookie': 'vmware_soap_session=abc; HttpOnly' } }
        : { body: sample('logout.xml'), headers: { 'set-cookie': 'vmware_soap_session=; Max-Age=0' } },
    );
    const client = new VimSoapClient({ url: server.url, insecureHttp: true });
    await client.invoke('Login', SM, { userName: 'u', password: 'p' });
    expect(client.sessionCookie).toBe('abc');
    await client.invoke('Logout', SM);
    expect(client.sessionCookie).toBeUndefined();
    expect(client.cookieHeader()).toBeUndefined();
  });

  it('turns SOAP faults into typed errors and keeps the password out of them', async () => {
    server = await startSoapServer(() => ({ status: 500, body: sample('fault-invalid-login.xml') }));
    const client = new VimSoapClient({ url: server.url, insecureHttp: true });
    const error = await rejection(client.invoke('Login', SM, { userName: 'u', password: 'S3cret-pw!' }));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.backendCode).toBe('InvalidLogin');
    expect(JSON.stringify(error.toJSON())).not.toContain('S3cret-pw!');
    expect(String(error.stack)).not.toContain('S3cret-pw!');
  });

  it('maps HTTP errors and bodies that are not SOAP', async () => {
    const replies: SoapReply[] = [
      { status: 503, body: 'busy', headers: { 'retry-after': '2' } },
      { status: 500, body: '<html>oops</html>' },
      { status: 404, body: 'not here' },
      { status: 401, body: '' },
      { status: 200, body: sample('current-time.xml').replace('</soapenv:Envelope>', '') },
      { status: 302, body: '', headers: { location: 'http://127.0.0.1:1/elsewhere' } },
    ];
    server = await startSoapServer(() => replies.shift() as SoapReply);
    const client = new VimSoapClient({ url: server.url, insecureHttp: true });
    const busy = await rejection(client.invoke('CurrentTime', SERVICE_INSTANCE));
    expect([busy.code, busy.retryable, busy.details?.retryAfterMs]).toEqual(['CONNECTION_LOST', true, 2000]);
    expect((await rejection(client.invoke('CurrentTime', SERVICE_INSTANCE))).code).toBe('PROTOCOL');
    expect((await rejection(client.invoke('CurrentTime', SERVICE_INSTANCE))).code).toBe('PROTOCOL');
    expect((await rejection(client.invoke('CurrentTime', SERVICE_INSTANCE))).code).toBe('AUTH_FAILED');
    expect((await rejection(client.invoke('CurrentTime', SERVICE_INSTANCE))).code).toBe('PROTOCOL');
    // Redirects are not followed (the session cookie must not travel elsewhere).
    expect((await rejection(client.invoke('CurrentTime', SERVICE_INSTANCE))).code).toBe('PROTOCOL');
    expect(server.requests).toHaveLength(6);
  });

  it('refuses responses above maxResponseBytes', async () => {
    const big = sample('retrieve-vms-vpx.xml');
    server = await startSoapServer(() => ({ body: big }));
    const client = new VimSoapClient({ url: server.url, insecureHttp: true, maxResponseBytes: 10_000 });
    const error = await rejection(client.invoke('RetrievePropertiesEx', moRef('PropertyCollector', 'pc')));
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toMatch(/larger than 10000 bytes/);
  });

  it('stops an endless response at the default bound (64 MiB) in bounded memory and time', async () => {
    const MiB = 1024 * 1024;
    let sent = 0;
    server = await startSoapServer(() => ({
      raw: (res) => {
        res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' });
        res.write(sample('retrieve-vms-esx.xml').replace(/<\/returnval>.*$/s, ''));
        const chunk = Buffer.from('<objects><obj type="VirtualMachine">vm-1</obj></objects>'.repeat(1024));
        // Endless for the client; the server gives up at 512 MiB.
        const pump = () => {
          while (sent < 512 * MiB && !res.destroyed) {
            sent += chunk.length;
            if (!res.write(chunk)) return void res.once('drain', pump);
          }
          res.destroy();
        };
        pump();
      },
    }));
    const client = new VimSoapClient({ url: server.url, insecureHttp: true });
    globalThis.gc?.();
    const before = process.memoryUsage().rss;
    let peak = before;
    const sampler = setInterval(() => {
      peak = Math.max(peak, process.memoryUsage().rss);
    }, 5);
    const started = performance.now();
    const error = await rejection(client.invoke('RetrievePropertiesEx', moRef('PropertyCollector', 'pc')));
    clearInterval(sampler);
    const grown = Math.max(peak, process.memoryUsage().rss) - before;
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toMatch(/larger than 67108864 bytes/);
    expect(sent).toBeLessThan(96 * MiB);
    // The body is held once (at most the bound) while it is read; measured: +67 MiB RSS (128 MiB bound before: +170 MiB).
    expect(grown).toBeLessThan(112 * MiB);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  it('a trickling response ends at the call deadline', async () => {
    server = await startSoapServer(() => ({
      raw: (res) => {
        res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' });
        const timer = setInterval(() => res.write(' '), 50);
        res.on('close', () => clearInterval(timer));
      },
    }));
    const client = new VimSoapClient({ url: server.url, insecureHttp: true });
    const started = performance.now();
    const error = await rejection(
      client.invoke('CurrentTime', SERVICE_INSTANCE, undefined, { timeoutMs: 300 }),
    );
    expect(error.code).toBe('TIMEOUT');
    expect(performance.now() - started).toBeLessThan(2_000);
  });

  it('times out and aborts a call the server never answers', async () => {
    server = await startSoapServer(() => ({ body: sample('current-time.xml'), delayMs: 5_000 }));
    const client = new VimSoapClient({ url: server.url, insecureHttp: true });
    const started = Date.now();
    const timeout = await rejection(
      client.invoke('CurrentTime', SERVICE_INSTANCE, undefined, { timeoutMs: 200 }),
    );
    expect(timeout.code).toBe('TIMEOUT');
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 100);
    const aborted = await rejection(
      client.invoke('CurrentTime', SERVICE_INSTANCE, undefined, { signal: controller.signal }),
    );
    expect(aborted.code).toBe('ABORTED');
    expect(Date.now() - started).toBeLessThan(3_000);
  });

  it('reads the server versions and rejects bad settings', async () => {
    server = await startSoapServer(() => ({ body: sample('vimServiceVersions.xml') }));
    const client = new VimSoapClient({ url: server.url.replace('/sdk', ''), insecureHttp: true });
    expect(client.url.pathname).toBe('/sdk');
    expect(await client.serviceVersions()).toEqual(['6.5', '6.0', '5.5']);
    expect(() => new VimSoapClient({ url: 'https://user:pw@vc.example/sdk' })).toThrow(/not in the URL/);
    expect(() => new VimSoapClient({ url: 'ftp://vc.example/sdk' })).toThrow(HvkitError);
    expect(() => new VimSoapClient({ url: 'https://vc.example/sdk', version: 'x' })).toThrow(TypeError);
  });

  it('refuses a plain http URL unless insecureHttp names the opt-out, before sending anything', async () => {
    server = await startSoapServer(() => ({ body: sample('current-time.xml') }));
    const url = server.url;
    let thrown: unknown;
    try {
      new VimSoapClient({ url });
    } catch (error) {
      thrown = error;
    }
    expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT'), String(thrown)).toBe(true);
    expect((thrown as Error).message).toMatch(/insecureHttp/);
    const error = await rejection(
      connectVim({ url, username: 'u', password: 'S3cret-in-clear', keepAliveMs: false }),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(server.requests).toHaveLength(0);
    const client = new VimSoapClient({ url, insecureHttp: true });
    expect(await client.invoke('CurrentTime', SERVICE_INSTANCE)).toBeInstanceOf(Date);
    // The opt-out changes nothing for https.
    expect(new VimSoapClient({ url: 'https://vc.example/sdk', insecureHttp: true }).url.protocol).toBe(
      'https:',
    );
    expect(() => new VimSoapClient({ url, insecureHttp: 'yes' as never })).toThrow(TypeError);
  });

  it('refuses TLS settings with an http URL (they would be silently ignored), even with insecureHttp', () => {
    for (const tls of [
      { thumbprint: 'AB'.repeat(20) },
      { ca: 'PEM' },
      { insecureSkipVerify: true },
      { servername: 'vc.example' },
    ]) {
      let thrown: unknown;
      try {
        new VimSoapClient({ url: 'http://127.0.0.1:1/sdk', insecureHttp: true, tls });
      } catch (error) {
        thrown = error;
      }
      expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT'), JSON.stringify(tls)).toBe(true);
      expect((thrown as Error).message).toMatch(/tls\.\w+/);
    }
  });

  it('reports a refused connection as CONNECTION_LOST', async () => {
    const probe = await startSoapServer(() => ({}));
    const url = probe.url;
    await probe.close();
    const client = new VimSoapClient({ url, insecureHttp: true });
    const error = await rejection(client.invoke('CurrentTime', SERVICE_INSTANCE));
    expect(error.code).toBe('CONNECTION_LOST');
    await client.close();
  });
});
