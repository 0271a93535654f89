import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import type { Duplex } from 'node:stream';
import { createServer as createTlsServer, type TLSSocket, type Server as TlsServer } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCert, rejection, type TestCert, testTempDir } from '../__test-utils__';
import { HvkitError } from '../errors/hvkit-error';
import { normalizeSha256Fingerprint, tcpDialer, tlsDialer, unixSocketDialer } from './dialers';

const scratch = testTempDir('hvkit-dial-');

function listen(server: Server | TlsServer, target: number | string = 0): Promise<number> {
  track(server);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    const done = () => {
      const address = server.address();
      resolve(typeof address === 'object' && address ? address.port : 0);
    };
    if (typeof target === 'string') server.listen(target, done);
    else server.listen(target, '127.0.0.1', done);
  });
}

const openSockets = new Set<Socket>();

/** Remembers every accepted connection (TLS servers emit the raw socket too) so afterAll can end them. */
function track(server: Server | TlsServer): void {
  server.on('connection', (s: Socket) => {
    openSockets.add(s);
    s.on('close', () => openSockets.delete(s));
  });
}

function close(server: Server | TlsServer): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

function echo(socket: Socket): void {
  socket.on('error', () => {});
  socket.pipe(socket);
}

async function roundTrip(stream: Duplex, text: string): Promise<string> {
  stream.write(text);
  const reply = await new Promise<string>((resolve) =>
    stream.once('data', (d: Buffer) => resolve(d.toString())),
  );
  stream.destroy();
  return reply;
}

async function unusedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await close(server);
  return port;
}

let localhost: TestCert;
let otherName: TestCert;
const servers: (Server | TlsServer)[] = [];

beforeAll(() => {
  localhost = makeTestCert('localhost', 'DNS:localhost,IP:127.0.0.1');
  otherName = makeTestCert('other', 'DNS:other.example');
});

afterAll(async () => {
  for (const socket of openSockets) socket.destroy();
  await Promise.all(servers.map(close));
});

describe('unixSocketDialer', () => {
  it('connects and carries bytes', async () => {
    const path = join(scratch(), 'echo.sock');
    const server = createServer(echo);
    servers.push(server);
    await listen(server, path);
    const dialer = unixSocketDialer(path);
    expect(dialer.target).toBe(`unix:${path}`);
    expect(await roundTrip(await dialer.dial(), 'ping')).toBe('ping');
  });

  it('a missing socket is CONNECTION_LOST (retryable)', async () => {
    const error = await rejection(unixSocketDialer(join(scratch(), 'nobody.sock')).dial());
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.retryable).toBe(true);
    expect(error.backendCode).toBe('ENOENT');
  });

  it('rejects bad paths', () => {
    expect(() => unixSocketDialer('')).toThrow(HvkitError);
    expect(() => unixSocketDialer(5 as unknown as string)).toThrow(TypeError);
  });
});

describe('tcpDialer', () => {
  it('connects and carries bytes', async () => {
    const server = createServer(echo);
    servers.push(server);
    const port = await listen(server);
    const dialer = tcpDialer({ host: '127.0.0.1', port });
    expect(dialer.target).toBe(`tcp:127.0.0.1:${port}`);
    expect(await roundTrip(await dialer.dial(), 'hello')).toBe('hello');
  });

  it('a refused connection is CONNECTION_LOST (retryable)', async () => {
    const error = await rejection(tcpDialer({ host: '127.0.0.1', port: await unusedPort() }).dial());
    expect(error.code).toBe('CONNECTION_LOST');
    expect(error.retryable).toBe(true);
    expect(error.backendCode).toBe('ECONNREFUSED');
    expect(error.message).toContain('127.0.0.1');
  });

  it('rejects an already-aborted signal without connecting', async () => {
    let connections = 0;
    const server = createServer((s) => {
      connections++;
      s.destroy();
    });
    servers.push(server);
    const port = await listen(server);
    const controller = new AbortController();
    controller.abort();
    const error = await rejection(tcpDialer({ host: '127.0.0.1', port }).dial({ signal: controller.signal }));
    expect(error.code).toBe('ABORTED');
    await new Promise((r) => setTimeout(r, 50));
    expect(connections).toBe(0);
  });

  it('validates host and port', () => {
    expect(() => tcpDialer({ host: '127.0.0.1', port: 0 })).toThrow(HvkitError);
    expect(() => tcpDialer({ host: '127.0.0.1', port: 70000 })).toThrow(HvkitError);
    expect(() => tcpDialer({ host: '', port: 22 })).toThrow(HvkitError);
    expect(() => tcpDialer({ host: 'a b', port: 22 })).toThrow(HvkitError);
    expect(() => tcpDialer({ host: '127.0.0.1', port: 22, connectTimeoutMs: -1 })).toThrow(TypeError);
  });
});

describe('tlsDialer', () => {
  let port: number;
  let otherPort: number;
  let silentPort: number;

  beforeAll(async () => {
    const server = createTlsServer({ cert: localhost.cert, key: localhost.key }, echo);
    server.on('tlsClientError', () => {});
    servers.push(server);
    port = await listen(server);
    const other = createTlsServer({ cert: otherName.cert, key: otherName.key }, echo);
    other.on('tlsClientError', () => {});
    servers.push(other);
    otherPort = await listen(other);
    // Accepts TCP but never answers the TLS handshake.
    const silent = createServer((s) => s.on('error', () => {}));
    servers.push(silent);
    silentPort = await listen(silent);
  });

  it('refuses a self-signed certificate by default (AUTH_FAILED)', async () => {
    const error = await rejection(tlsDialer({ host: '127.0.0.1', port }).dial());
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.retryable).toBe(false);
    expect(error.backendCode).toBe('DEPTH_ZERO_SELF_SIGNED_CERT');
    expect(error.message).toContain('insecureSkipVerify');
  });

  it('accepts it with its CA', async () => {
    const socket = await tlsDialer({ host: '127.0.0.1', port, ca: localhost.cert }).dial();
    expect(await roundTrip(socket, 'over tls')).toBe('over tls');
    const byName = await tlsDialer({ host: 'localhost', port, ca: localhost.cert }).dial();
    expect(await roundTrip(byName, 'sni')).toBe('sni');
  });

  it('checks the host name against a trusted certificate', async () => {
    const error = await rejection(
      tlsDialer({ host: '127.0.0.1', port: otherPort, ca: otherName.cert }).dial(),
    );
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.backendCode).toBe('ERR_TLS_CERT_ALTNAME_INVALID');
    // With the right servername it is accepted.
    const ok = await tlsDialer({
      host: '127.0.0.1',
      port: otherPort,
      ca: otherName.cert,
      servername: 'other.example',
    }).dial();
    expect(await roundTrip(ok, 'named')).toBe('named');
  });

  it('accepts exactly the pinned certificate', async () => {
    const pinned = await tlsDialer({ host: '127.0.0.1', port, pinnedSha256: localhost.fingerprint }).dial();
    expect(await roundTrip(pinned, 'pinned')).toBe('pinned');
    // Pins ignore the name (the pin is the identity).
    const lower = localhost.fingerprint.replace(/:/g, '').toLowerCase();
    const other = await tlsDialer({
      host: '127.0.0.1',
      port: otherPort,
      pinnedSha256: otherName.fingerprint,
    }).dial();
    expect(await roundTrip(other, 'x')).toBe('x');
    expect(
      await roundTrip(await tlsDialer({ host: '127.0.0.1', port, pinnedSha256: lower }).dial(), 'y'),
    ).toBe('y');
  });

  it('checks the pin on every dial: no TLS session is resumed', async () => {
    const dialer = tlsDialer({ host: '127.0.0.1', port, pinnedSha256: localhost.fingerprint });
    for (let i = 0; i < 4; i++) {
      const socket = (await dialer.dial()) as TLSSocket;
      expect(socket.isSessionReused()).toBe(false);
      expect(await roundTrip(socket, `d${i}`)).toBe(`d${i}`);
    }
    const wrong = tlsDialer({ host: '127.0.0.1', port, pinnedSha256: otherName.fingerprint });
    for (let i = 0; i < 2; i++) expect((await rejection(wrong.dial())).code).toBe('AUTH_FAILED');
  });

  it('refuses any other certificate when pinned, even a trusted one', async () => {
    const wrong = await rejection(
      tlsDialer({ host: '127.0.0.1', port, pinnedSha256: otherName.fingerprint }).dial(),
    );
    expect(wrong.code).toBe('AUTH_FAILED');
    expect(wrong.details?.actual).toBe(localhost.fingerprint);
    const trustedButWrong = await rejection(
      tlsDialer({ host: '127.0.0.1', port, ca: localhost.cert, pinnedSha256: otherName.fingerprint }).dial(),
    );
    expect(trustedButWrong.code).toBe('AUTH_FAILED');
    // And with insecureSkipVerify the pin still wins.
    const skipButPinned = await rejection(
      tlsDialer({
        host: '127.0.0.1',
        port,
        insecureSkipVerify: true,
        pinnedSha256: otherName.fingerprint,
      }).dial(),
    );
    expect(skipButPinned.code).toBe('AUTH_FAILED');
  });

  it('accepts anything with the named opt-out (and rejectUnauthorized: false)', async () => {
    expect(
      await roundTrip(await tlsDialer({ host: '127.0.0.1', port, insecureSkipVerify: true }).dial(), 'a'),
    ).toBe('a');
    expect(
      await roundTrip(await tlsDialer({ host: '127.0.0.1', port, rejectUnauthorized: false }).dial(), 'b'),
    ).toBe('b');
  });

  it('times out a handshake that never completes', async () => {
    const started = Date.now();
    const error = await rejection(
      tlsDialer({ host: '127.0.0.1', port: silentPort, connectTimeoutMs: 200 }).dial(),
    );
    expect(error.code).toBe('TIMEOUT');
    expect(error.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    // A dial's own timeoutMs wins over the dialer's.
    const perCall = await rejection(
      tlsDialer({ host: '127.0.0.1', port: silentPort }).dial({ timeoutMs: 150 }),
    );
    expect(perCall.code).toBe('TIMEOUT');
  });

  it('aborts a pending handshake', async () => {
    const controller = new AbortController();
    const pending = rejection(
      tlsDialer({ host: '127.0.0.1', port: silentPort }).dial({ signal: controller.signal }),
    );
    setTimeout(() => controller.abort(), 50);
    expect((await pending).code).toBe('ABORTED');
  });

  it('rejects malformed pins', () => {
    expect(() => tlsDialer({ host: '127.0.0.1', port, pinnedSha256: 'abc' })).toThrow(HvkitError);
  });

  it('rejects unknown option keys, naming them (a misspelt pin must not be ignored)', () => {
    expect(() => tlsDialer({ host: '127.0.0.1', port, thumbprint: 'AB' } as never)).toThrow(
      /^tlsDialer: unknown option thumbprint; accepted options: host, port, connectTimeoutMs, rejectUnauthorized, ca, /,
    );
  });
});

describe('normalizeSha256Fingerprint', () => {
  it('normalises separators and case', () => {
    const hex = 'ab'.repeat(32);
    const expected = Array(32).fill('AB').join(':');
    expect(normalizeSha256Fingerprint(hex)).toBe(expected);
    expect(normalizeSha256Fingerprint(expected.toLowerCase())).toBe(expected);
    expect(normalizeSha256Fingerprint(`sha256:${hex}`)).toBe(expected);
    expect(normalizeSha256Fingerprint(Array(32).fill('ab').join(' '))).toBe(expected);
  });

  it('rejects wrong lengths and non-hex', () => {
    for (const bad of [
      '',
      'ab'.repeat(31),
      'ab'.repeat(33),
      'zz'.repeat(32),
      'SHA256:47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU',
    ]) {
      expect(() => normalizeSha256Fingerprint(bad)).toThrow(HvkitError);
    }
  });
});
