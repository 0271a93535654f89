import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection } from '../__test-utils__';
import { readResponseBody, readResponseText } from './body';
import { createHttpFetch } from './http';

/** What the server did with each response: bytes written before the client went away. */
const written = new Map<string, number>();
const sockets = new Set<Socket>();
let server: Server;
let origin: string;

const MiB = 1024 * 1024;

/** Writes `chunk` until the client stops reading (or `limit` bytes), honouring backpressure. */
function pump(res: ServerResponse, key: string, chunk: Buffer, limit: number): void {
  let sent = 0;
  const write = () => {
    while (sent < limit && !res.destroyed) {
      sent += chunk.length;
      written.set(key, sent);
      if (!res.write(chunk)) {
        res.once('drain', write);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  write();
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', 'http://x');
  switch (url.pathname) {
    case '/json':
      res.setHeader('content-type', 'application/json');
      res.end('{"value":["a","b"]}');
      return;
    case '/declared-huge':
      // Claims 1 TiB; the client must not even start.
      res.writeHead(200, { 'content-length': String(1024 * 1024 * MiB) });
      res.write('x');
      return;
    case '/endless':
      // Chunked, up to 256 MiB (a safety stop for a broken client), 64 KiB at a time.
      res.writeHead(200, { 'content-type': 'application/json' });
      res.write('{"value":[');
      pump(res, url.search, Buffer.from('"x",'.repeat(16 * 1024)), 256 * MiB);
      return;
    case '/trickle': {
      res.writeHead(200);
      const timer = setInterval(() => res.write('x'), 50);
      res.on('close', () => clearInterval(timer));
      return;
    }
    case '/drop':
      res.writeHead(200, { 'content-length': '1000' });
      res.write('x'.repeat(100));
      setTimeout(() => res.socket?.destroy(), 20);
      return;
    case '/latin1':
      res.end(Buffer.from([0x7b, 0xff, 0x7d]));
      return;
    case '/short':
      // Longer than declared is impossible over HTTP/1.1; shorter than declared is a dropped connection.
      res.writeHead(200, { 'content-length': '10' });
      res.end('0123456789');
      return;
    default:
      res.statusCode = 404;
      res.end();
  }
}

beforeAll(async () => {
  server = createServer(handler);
  server.on('connection', (s: Socket) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  origin = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
});

afterAll(async () => {
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

describe('readResponseBody / readResponseText', () => {
  it('reads a body within the bound (global fetch and createHttpFetch)', async () => {
    const own = createHttpFetch();
    try {
      for (const f of [fetch, own]) {
        const response = await f(`${origin}/json`);
        expect(await readResponseText(response, { maxBytes: 100 })).toBe('{"value":["a","b"]}');
      }
      const short = await fetch(`${origin}/short`);
      const bytes = await readResponseBody(short, { maxBytes: 10 });
      expect(bytes.toString()).toBe('0123456789');
    } finally {
      await own.close();
    }
  });

  it('refuses a Content-Length above the bound before reading', async () => {
    const response = await fetch(`${origin}/declared-huge`);
    const error = await rejection(readResponseBody(response, { maxBytes: MiB, operation: 'test' }));
    expect(error.code).toBe('PROTOCOL');
    expect(error.details).toMatchObject({ maxBytes: MiB });
  });

  it('stops an endless body at the bound: bounded memory and time', async () => {
    const maxBytes = 4 * MiB;
    globalThis.gc?.();
    const before = process.memoryUsage();
    const started = performance.now();
    const response = await fetch(`${origin}/endless?endless-1`);
    const error = await rejection(
      readResponseText(response, { maxBytes, adapter: 'x', operation: 'read', target: origin }),
    );
    const ms = performance.now() - started;
    const after = process.memoryUsage();
    expect(error.code).toBe('PROTOCOL');
    expect(error.message).toContain(`larger than ${maxBytes} bytes`);
    // The server wrote a little beyond the bound (socket buffers), far from its 256 MiB stop.
    await new Promise((r) => setTimeout(r, 100));
    expect(written.get('?endless-1')).toBeLessThan(maxBytes + 16 * MiB);
    // Bounds: held data is at most maxBytes (plus undici's buffers); generous for a noisy 2-core machine.
    expect(after.rss - before.rss).toBeLessThan(64 * MiB);
    expect(ms).toBeLessThan(5_000);
  });

  it('gives up on a trickling body when the deadline fires, and on abort', async () => {
    const started = performance.now();
    const timeout = await rejection(
      readResponseBody(await fetch(`${origin}/trickle`), {
        maxBytes: MiB,
        signal: AbortSignal.timeout(300),
      }),
    );
    expect(timeout.code).toBe('TIMEOUT');
    expect(performance.now() - started).toBeLessThan(2_000);
    // A body stream that ignores the signal (the fetch was not given it) is still left behind.
    const controller = new AbortController();
    const response = await fetch(`${origin}/trickle`);
    setTimeout(() => controller.abort(), 200);
    const aborted = await rejection(readResponseBody(response, { maxBytes: MiB, signal: controller.signal }));
    expect(aborted.code).toBe('ABORTED');
    expect(performance.now() - started).toBeLessThan(3_000);
  });

  it('maps a connection dropped mid-body to CONNECTION_LOST (not a raw TypeError)', async () => {
    const own = createHttpFetch();
    try {
      for (const f of [fetch, own]) {
        const error = await rejection(
          readResponseBody(await f(`${origin}/drop`), { maxBytes: MiB, target: origin }),
        );
        expect(error.code).toBe('CONNECTION_LOST');
        expect(error.message).toContain(origin);
      }
    } finally {
      await own.close();
    }
  });

  it('refuses text that is not UTF-8, and bad options', async () => {
    const error = await rejection(readResponseText(await fetch(`${origin}/latin1`), { maxBytes: 100 }));
    expect(error.code).toBe('PROTOCOL');
    const response = await fetch(`${origin}/json`);
    await expect(readResponseBody(response, { maxBytes: 0 })).rejects.toThrow(TypeError);
    await expect(readResponseBody(response, { maxBytes: 1.5 })).rejects.toThrow(TypeError);
    await expect(
      readResponseBody(response, { maxBytes: 10, signal: 'nope' as unknown as AbortSignal }),
    ).rejects.toThrow(TypeError);
    await response.body?.cancel();
  });
});
