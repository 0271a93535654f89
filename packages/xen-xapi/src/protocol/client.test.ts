import { HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { STUB_HELLO, type StubPeer, startStubPeer } from '../../test/stub-peer';
import { MAX_RESPONSE_BYTES, parseHello, XenXapiClient } from './client';

let peer: StubPeer;
const open: Set<() => void> = new Set();

beforeAll(async () => {
  // A real server on loopback; some routes misbehave on purpose.
  peer = await startStubPeer((request, response) => {
    switch (request.url) {
      case '/redirect':
        response.writeHead(302, { location: 'http://127.0.0.1:1/elsewhere' });
        response.end();
        return true;
      case '/huge':
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end(`"${'x'.repeat(MAX_RESPONSE_BYTES + 10)}"`);
        return true;
      case '/not-json':
        response.writeHead(200, { 'content-type': 'text/plain' });
        response.end('hello');
        return true;
      case '/hang':
        open.add(() => response.destroy());
        return true;
      case '/denied':
        response.writeHead(403, { 'content-type': 'application/json' });
        response.end('{"error":{"message":"not yours"}}');
        return true;
      default:
        return false;
    }
  });
});

afterAll(async () => {
  for (const end of open) end();
  await peer.close();
});

function client(timeoutMs = 5000): XenXapiClient {
  return new XenXapiClient({ baseUrl: new URL(peer.url), fetch: globalThis.fetch, timeoutMs });
}

async function failure(promise: Promise<unknown>): Promise<HvkitError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!HvkitError.isInstance(error)) throw new Error(`expected an HvkitError, got ${String(error)}`);
  return error;
}

describe('XenXapiClient (http)', () => {
  it('reads what the server says about itself', async () => {
    expect(await client().hello()).toEqual(STUB_HELLO);
  });

  it('maps an error status through errors.ts', async () => {
    const error = await failure(client().getJson('denied'));
    expect(error).toMatchObject({ code: 'PERMISSION_DENIED', backendCode: 403, backendMessage: 'not yours' });
  });

  it('refuses a redirect instead of following it', async () => {
    expect(await failure(client().getJson('redirect'))).toMatchObject({ code: 'PROTOCOL', backendCode: 302 });
  });

  it('refuses a body above MAX_RESPONSE_BYTES', async () => {
    expect(await failure(client().getJson('huge'))).toMatchObject({ code: 'PROTOCOL' });
  });

  it('refuses a body that is not JSON', async () => {
    expect((await failure(client().getJson('not-json'))).message).toMatch(/not JSON/);
  });

  it('times out on a server that never answers', async () => {
    expect(await failure(client(200).getJson('hang'))).toMatchObject({ code: 'TIMEOUT' });
  });

  it('stops at once when the signal aborts', async () => {
    const controller = new AbortController();
    const pending = client().getJson('hang', { signal: controller.signal });
    controller.abort();
    expect(await failure(pending)).toMatchObject({ code: 'ABORTED' });
  });

  it('fails with CONNECTION_LOST when nothing listens', async () => {
    const nobody = new XenXapiClient({
      baseUrl: new URL('http://127.0.0.1:1/'),
      fetch: globalThis.fetch,
      timeoutMs: 5000,
    });
    expect(await failure(nobody.hello())).toMatchObject({ code: 'CONNECTION_LOST' });
  });

  it('checks the shape of the version answer', () => {
    expect(() => parseHello({ product: 'p' })).toThrow(/product, version/);
    expect(() => parseHello(null)).toThrow(HvkitError);
    expect(parseHello({ product: 'p', version: '1', build: 'b' })).toEqual({
      product: 'p',
      version: '1',
      build: 'b',
    });
  });
});
