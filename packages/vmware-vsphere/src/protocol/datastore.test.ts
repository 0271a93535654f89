/**
 * Datastore uploads (`PUT /folder`) against hostile servers on loopback: a redirect, a server that never
 * reads or never answers, an error status, a source that fails half-way or yields the wrong size.
 */

import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { HvkitError, hvkitError } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { UPLOAD_BUFFER_BYTES, type UploadOptions, uploadFile } from './datastore';

interface Seen {
  method: string;
  url: string;
  bytes: number;
  complete: boolean;
}

const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  }
});

async function serve(handler: (req: IncomingMessage, res: ServerResponse, seen: Seen) => void) {
  const seen: Seen[] = [];
  const server = createServer((req, res) => {
    const s: Seen = { method: req.method ?? '', url: req.url ?? '', bytes: 0, complete: false };
    seen.push(s);
    req.on('data', (c: Buffer) => {
      s.bytes += c.length;
    });
    req.on('end', () => {
      s.complete = true;
    });
    handler(req, res, s);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { origin, seen };
}

const options = (extra: Partial<UploadOptions> = {}): UploadOptions => ({
  fetch: globalThis.fetch,
  cookie: () => 'vmware_soap_session=abc',
  idleTimeoutMs: 500,
  operation: 'backups.restore',
  what: 'Datastore file [ds] x/disk-flat.vmdk',
  ...extra,
});

async function* chunks(n: number, size: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < n; i++) yield new Uint8Array(size).fill(i);
}

async function outcome(p: Promise<unknown>) {
  return p.then(
    () => 'resolved',
    (e: unknown) => e,
  );
}

describe('uploadFile', () => {
  it('sends the body with its length and the session cookie, and resolves on 200', async () => {
    let cookie: string | undefined;
    let length: string | undefined;
    const { origin, seen } = await serve((req, res) => {
      cookie = req.headers.cookie;
      length = req.headers['content-length'];
      req.on('end', () => res.end());
    });
    await uploadFile(new URL(`${origin}/folder/x/a`), chunks(4, 1000), 4000, options());
    expect(seen[0]).toMatchObject({ method: 'PUT', bytes: 4000, complete: true });
    expect(cookie).toBe('vmware_soap_session=abc');
    expect(length).toBe('4000');
  });

  it('an empty file goes as an empty body, also through a fetch that buffers bodies (as the recorder does)', async () => {
    let length: string | undefined;
    const { origin, seen } = await serve((req, res) => {
      length = req.headers['content-length'];
      req.on('end', () => res.end());
    });
    // A wrapper that buffers the body and forwards the rest, like recordingFetch.
    const buffering: UploadOptions['fetch'] = async (input, init) => {
      const bytes = new Uint8Array(await new Response(init?.body ?? null).arrayBuffer());
      const { duplex: _d, ...rest } = (init ?? {}) as RequestInit & { duplex?: string };
      return globalThis.fetch(input, { ...rest, body: bytes.byteLength > 0 ? bytes : undefined });
    };
    await uploadFile(new URL(`${origin}/folder/x/empty`), chunks(0, 0), 0, options({ fetch: buffering }));
    expect(seen[0]).toMatchObject({ method: 'PUT', bytes: 0 });
    expect(length ?? '0').toBe('0');
    const error = await outcome(uploadFile(new URL(`${origin}/folder/x/empty`), chunks(1, 5), 0, options()));
    expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
  });

  it('streams a file over UPLOAD_BUFFER_BYTES with its length stated; one that fails half-way never completes', async () => {
    let length: string | undefined;
    const { origin, seen } = await serve((req, res) => {
      length = req.headers['content-length'];
      req.on('end', () => res.end());
    });
    const big = UPLOAD_BUFFER_BYTES + 64 * 1024;
    await uploadFile(new URL(`${origin}/folder/x/big`), chunks(big / 1024, 1024), big, options());
    expect(length).toBe(String(big));
    expect(seen[0]).toMatchObject({ bytes: big, complete: true });
    const failing = async function* () {
      yield new Uint8Array(UPLOAD_BUFFER_BYTES);
      await new Promise((r) => setTimeout(r, 20));
      throw hvkitError('INVALID_ARGUMENT', 'mismatch', { details: { reason: 'artifact-mismatch' } });
    };
    const error = await outcome(uploadFile(new URL(`${origin}/folder/x/bad`), failing(), big, options()));
    expect((error as HvkitError).details?.reason).toBe('artifact-mismatch');
    await new Promise((r) => setTimeout(r, 50));
    expect(seen[1]?.complete ?? false).toBe(false);
    expect(seen[1]?.bytes ?? 0).toBeLessThan(big);
  });

  it('does not follow a redirect (PROTOCOL): the other origin gets nothing', async () => {
    const other = await serve((_req, res) => res.end());
    const { origin } = await serve((_req, res) => {
      res.writeHead(307, { location: `${other.origin}/folder/x/a` });
      res.end();
    });
    const error = await outcome(uploadFile(new URL(`${origin}/folder/x/a`), chunks(2, 10), 20, options()));
    expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
    expect(other.seen).toEqual([]);
  });

  it('a server that never answers is TIMEOUT after the idle deadline', async () => {
    const { origin } = await serve(() => {});
    const started = performance.now();
    const error = await outcome(uploadFile(new URL(`${origin}/folder/x/a`), chunks(1, 10), 10, options()));
    expect(HvkitError.isInstance(error, 'TIMEOUT'), String(error)).toBe(true);
    expect(performance.now() - started).toBeLessThan(3000);
  });

  it('an error status is typed (403 PERMISSION_DENIED, 404 NOT_FOUND)', async () => {
    for (const [status, code] of [
      [403, 'PERMISSION_DENIED'],
      [404, 'NOT_FOUND'],
    ] as const) {
      const { origin } = await serve((req, res) => {
        req.resume();
        req.on('end', () => {
          res.writeHead(status);
          res.end();
        });
      });
      const error = await outcome(uploadFile(new URL(`${origin}/folder/x/a`), chunks(1, 10), 10, options()));
      expect(HvkitError.isInstance(error, code), String(error)).toBe(true);
    }
  });

  it('a source that fails half-way aborts the request with its own error: the server never gets a whole body', async () => {
    const { origin, seen } = await serve((req, res) => req.on('end', () => res.end()));
    const failing = async function* () {
      yield new Uint8Array(1000);
      throw hvkitError('INVALID_ARGUMENT', 'mismatch', { details: { reason: 'artifact-mismatch' } });
    };
    const error = await outcome(uploadFile(new URL(`${origin}/folder/x/a`), failing(), 2000, options()));
    expect((error as HvkitError).details?.reason).toBe('artifact-mismatch');
    await new Promise((r) => setTimeout(r, 50));
    expect(seen[0]?.bytes ?? 0).toBeLessThan(2000);
  });

  it('a source that yields more or fewer bytes than stated is PROTOCOL', async () => {
    for (const [n, stated] of [
      [3, 20],
      [1, 20],
    ] as const) {
      const { origin } = await serve((req, res) => req.on('end', () => res.end()));
      const error = await outcome(
        uploadFile(new URL(`${origin}/folder/x/a`), chunks(n, 10), stated, options()),
      );
      expect(HvkitError.isInstance(error, 'PROTOCOL'), String(error)).toBe(true);
    }
  });

  it('an aborted signal is ABORTED', async () => {
    const { origin } = await serve(() => {});
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 50);
    const error = await outcome(
      uploadFile(
        new URL(`${origin}/folder/x/a`),
        chunks(1, 10),
        10,
        options({ signal: controller.signal, idleTimeoutMs: 10_000 }),
      ),
    );
    expect(HvkitError.isInstance(error, 'ABORTED'), String(error)).toBe(true);
  });
});
