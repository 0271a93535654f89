import {
  createServer as createHttpServer,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import { createServer as createNetServer, type Socket } from 'node:net';
import type { TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCert, rejection, type TestCert, testTempDir } from '../__test-utils__';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import { closeHttpFetch, createHttpFetch, fetchErrorToHvkitError, type HttpFetch } from './http';

const _scratch = testTempDir('hvkit-http-');

const servers: Server[] = [];
const sockets = new Set<Socket>();
const fetches: HttpFetch[] = [];
let connections = 0;

function handler(req: IncomingMessage, res: ServerResponse): void {
  if (req.url === '/slow') {
    // Never answers; the client must give up.
    return;
  }
  if (req.url === '/echo') {
    let body = '';
    req.on('data', (c) => {
      body += c;
    });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ method: req.method, body, auth: req.headers.authorization ?? null }));
    });
    return;
  }
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ ok: true, url: req.url }));
}

async function start(server: Server): Promise<number> {
  servers.push(server);
  server.on('connection', (s: Socket) => {
    connections++;
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  return typeof address === 'object' && address ? address.port : 0;
}

function client(options: Parameters<typeof createHttpFetch>[0] = {}): HttpFetch {
  const f = createHttpFetch(options);
  fetches.push(f);
  return f;
}

let cert: TestCert;
let other: TestCert;
let httpsUrl: string;
let httpUrl: string;
let silentUrl: string;

beforeAll(async () => {
  cert = makeTestCert('localhost', 'DNS:localhost,IP:127.0.0.1');
  other = makeTestCert('other', 'DNS:other.example');
  httpsUrl = `https://127.0.0.1:${await start(createHttpsServer({ cert: cert.cert, key: cert.key }, handler))}`;
  httpUrl = `http://127.0.0.1:${await start(createHttpServer(handler))}`;
  // Accepts TCP and never answers the TLS handshake.
  const silent = createNetServer((s) => {
    sockets.add(s);
    s.on('error', () => {});
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
  servers.push(silent as unknown as Server);
  const a = silent.address();
  silentUrl = `https://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
});

afterAll(async () => {
  await Promise.all(fetches.map((f) => f.close().catch(() => {})));
  for (const s of sockets) s.destroy();
  await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
});

describe('createHttpFetch over plain HTTP', () => {
  it('makes requests and reuses the connection (keep-alive)', async () => {
    const f = client();
    const before = connections;
    const first = await f(`${httpUrl}/a`);
    expect(first.status).toBe(200);
    expect(await first.json()).toEqual({ ok: true, url: '/a' });
    const second = await f(new URL(`${httpUrl}/b`));
    expect(await second.json()).toEqual({ ok: true, url: '/b' });
    for (let i = 0; i < 8; i++) await (await f(`${httpUrl}/c${i}`)).text();
    // undici may open a second socket while the first is being returned to the pool; ten requests on
    // fresh connections would open ten.
    expect(connections - before).toBeLessThanOrEqual(2);
  });

  it('sends bodies and headers', async () => {
    const f = client();
    const response = await f(`${httpUrl}/echo`, {
      method: 'POST',
      body: '{"x":1}',
      headers: { authorization: 'Basic abc', 'content-type': 'application/json' },
    });
    expect(await response.json()).toEqual({ method: 'POST', body: '{"x":1}', auth: 'Basic abc' });
  });

  it('a refused connection is CONNECTION_LOST (retryable)', async () => {
    const probe = createNetServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const a = probe.address();
    const port = typeof a === 'object' && a ? a.port : 0;
    await new Promise((r) => probe.close(r));
    const error = await rejection(client()(`http://127.0.0.1:${port}/`));
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.retryable).toBe(true);
    expect(error.backendCode).toBe('ECONNREFUSED');
    expect(error.details?.target).toBe(`http://127.0.0.1:${port}`);
  });

  it('aborts a pending request with ABORTED', async () => {
    const controller = new AbortController();
    const pending = rejection(client()(`${httpUrl}/slow`, { signal: controller.signal }));
    setTimeout(() => controller.abort(), 50);
    expect((await pending).code).toBe('ABORTED');
  });

  it('keeps an HvkitError abort reason (a derived TIMEOUT)', async () => {
    const controller = new AbortController();
    const pending = rejection(client()(`${httpUrl}/slow`, { signal: controller.signal }));
    setTimeout(() => controller.abort(hvkitError('TIMEOUT', 'call timed out')), 50);
    const error = await pending;
    expect(error.code).toBe('TIMEOUT');
    expect(error.message).toBe('call timed out');
  });

  it('times out waiting for headers', async () => {
    const error = await rejection(client({ headersTimeoutMs: 200 })(`${httpUrl}/slow`));
    expect(error.code).toBe('TIMEOUT');
    expect(error.backendCode).toBe('UND_ERR_HEADERS_TIMEOUT');
  });

  it('passes API misuse through as TypeError', async () => {
    const error = await rejection(client()('not a url'));
    // By name: vitest runs test code in its own realm, so undici's TypeError is not `instanceof` this one.
    expect((error as unknown as Error).name).toBe('TypeError');
    expect(HvkitError.isInstance(error)).toBe(false);
  });
});

describe('createHttpFetch TLS', () => {
  it('verifies certificates by default', async () => {
    const error = await rejection(client()(`${httpsUrl}/`));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.backendCode).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
  });

  it('trusts a given CA', async () => {
    const response = await client({ tls: { ca: cert.cert } })(`${httpsUrl}/ca`);
    expect(await response.json()).toEqual({ ok: true, url: '/ca' });
  });

  it('checks host names of trusted certificates', async () => {
    const error = await rejection(client({ tls: { ca: other.cert } })(`${httpsUrl}/`));
    expect(error.code).toBe('AUTH_FAILED');
  });

  it('accepts the pinned certificate even though it is self-signed', async () => {
    const response = await client({ tls: { pinnedSha256: cert.fingerprint } })(`${httpsUrl}/pinned`);
    expect(await response.json()).toEqual({ ok: true, url: '/pinned' });
  });

  it('refuses any other certificate when pinned, even a trusted one', async () => {
    const wrong = await rejection(client({ tls: { pinnedSha256: other.fingerprint } })(`${httpsUrl}/`));
    expect(wrong.code).toBe('AUTH_FAILED');
    expect(wrong.message).toContain('pinned');
    const trusted = await rejection(
      client({ tls: { ca: cert.cert, pinnedSha256: other.fingerprint } })(`${httpsUrl}/`),
    );
    expect(trusted.code).toBe('AUTH_FAILED');
  });

  it('checks the pin on every fresh connection, also where the server would resume the TLS session', async () => {
    // A server that offers session resumption (tickets and a session cache) and closes each connection,
    // so every request makes a new handshake that could resume the previous one.
    const resumed: boolean[] = [];
    const server = createHttpsServer({ cert: cert.cert, key: cert.key }, (req, res) => {
      resumed.push((req.socket as TLSSocket).isSessionReused());
      res.setHeader('connection', 'close');
      res.end(JSON.stringify({ ok: true, url: req.url }));
    });
    const url = `https://127.0.0.1:${await start(server)}`;
    const pinnedFetch = client({ tls: { pinnedSha256: cert.fingerprint } });
    const before = connections;
    for (let i = 0; i < 5; i++) {
      const response = await pinnedFetch(`${url}/p${i}`);
      expect(await response.json()).toEqual({ ok: true, url: `/p${i}` });
    }
    expect(connections - before).toBe(5);
    // Resumption is off under a pin: every handshake carried the certificate that was checked.
    expect(resumed).toEqual([false, false, false, false, false]);
    // The server does resume sessions for a client that asks: the test would catch a regression.
    const resuming = client({ tls: { insecureSkipVerify: true } });
    for (let i = 0; i < 3; i++) await (await resuming(`${url}/r${i}`)).text();
    expect(resumed.slice(5)).toEqual([false, true, true]);
    const wrongFetch = client({ tls: { pinnedSha256: other.fingerprint } });
    for (let i = 0; i < 3; i++) {
      const error = await rejection(wrongFetch(`${url}/w${i}`));
      expect(error.code).toBe('AUTH_FAILED');
    }
    expect(resumed).toHaveLength(8);
  });

  it('accepts anything with the named opt-out', async () => {
    const response = await client({ tls: { insecureSkipVerify: true } })(`${httpsUrl}/insecure`);
    expect(response.status).toBe(200);
  });

  it('times out a TLS handshake that never completes', async () => {
    const started = Date.now();
    const error = await rejection(
      client({ connectTimeoutMs: 200, tls: { insecureSkipVerify: true } })(`${silentUrl}/`),
    );
    expect(error.code).toBe('TIMEOUT');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('lets verifyPeer decide after the handshake, with the verdict of normal verification at hand', async () => {
    const seen: { authorized: boolean; target: string }[] = [];
    const accept = client({
      verifyPeer: (socket, target) => {
        seen.push({ authorized: socket.authorized, target });
        return socket.getPeerCertificate().fingerprint256 === cert.fingerprint ? undefined : new Error('no');
      },
      disableTlsSessionResumption: true,
    });
    const response = await accept(`${httpsUrl}/hook`);
    expect(await response.json()).toEqual({ ok: true, url: '/hook' });
    expect(seen[0]).toEqual({ authorized: false, target: httpsUrl });
    const refuse = client({
      verifyPeer: () => hvkitError('AUTH_FAILED', 'refused by hook', { adapter: 'x' }),
      adapter: 'x',
    });
    const error = await rejection(refuse(`${httpsUrl}/`));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toBe('refused by hook');
    expect(() => createHttpFetch({ verifyPeer: () => undefined, tls: { insecureSkipVerify: true } })).toThrow(
      TypeError,
    );
  });

  it('rejects a malformed pin at creation', () => {
    expect(() => createHttpFetch({ tls: { pinnedSha256: 'nope' } })).toThrow(HvkitError);
    expect(() => createHttpFetch({ connectTimeoutMs: 0 })).toThrow(TypeError);
  });

  it('rejects unknown option keys, also inside tls, naming them (a misspelt pin must not be ignored)', () => {
    expect(() => createHttpFetch({ tls: { thumbprint: 'AB' } } as never)).toThrow(
      /createHttpFetch: unknown option tls\.thumbprint; tls accepts: ca, cert, key, servername, pinnedSha256, insecureSkipVerify\./,
    );
    expect(() => createHttpFetch({ timeout: 5 } as never)).toThrow(TypeError);
    expect(() => createHttpFetch({ timeout: 5 } as never)).toThrow(/unknown option timeout;/);
  });

  it('closes its pool', async () => {
    const f = createHttpFetch();
    await f(`${httpUrl}/x`).then((r) => r.text());
    await f.close();
    await expect(f(`${httpUrl}/y`)).rejects.toBeTruthy();
  });
});

describe('fetchErrorToHvkitError', () => {
  it('maps the shapes of the global fetch', async () => {
    const refused = await (async () => {
      try {
        await fetch('http://127.0.0.1:1/');
      } catch (error) {
        return error;
      }
    })();
    expect(fetchErrorToHvkitError(refused)).toMatchObject({ code: 'CONNECTION_LOST' });
    const controller = new AbortController();
    controller.abort();
    expect(
      fetchErrorToHvkitError(new DOMException('x', 'AbortError'), { signal: controller.signal }),
    ).toMatchObject({
      code: 'ABORTED',
    });
    const misuse = new TypeError('Invalid URL');
    expect(fetchErrorToHvkitError(misuse)).toBe(misuse);
  });
});

describe('closeHttpFetch', () => {
  it('is bounded against a server that never answers: it lets go of the running request after graceMs', async () => {
    const held: ServerResponse[] = [];
    const server = createHttpServer((_req, res) => {
      held.push(res); // never answered
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const fetch = createHttpFetch({});
      const { port } = server.address() as { port: number };
      void fetch(`http://127.0.0.1:${port}/`).catch(() => {});
      await new Promise((r) => setTimeout(r, 100));
      expect(held).toHaveLength(1);
      const started = Date.now();
      await closeHttpFetch(fetch, 300);
      const ms = Date.now() - started;
      expect(ms).toBeGreaterThanOrEqual(290);
      expect(ms).toBeLessThan(1500);
    } finally {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    }
  });

  it('returns as soon as the pool is idle', async () => {
    const fetch = createHttpFetch({});
    const started = Date.now();
    await closeHttpFetch(fetch, 5000);
    expect(Date.now() - started).toBeLessThan(500);
  });
});
