/**
 * The adapter's transport security against fake servers on loopback: plain http needs the named opt-out,
 * TLS settings with an http URL are refused.
 */

import { HvkitError } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { connect } from './adapter';
import { bootstrapReply, type SoapServer, startSoapServer } from './soap/__fixtures__/soap-server';

const servers: SoapServer[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close();
});

async function fakeVsphere(model: 'vpx' | 'esx'): Promise<SoapServer> {
  const server = await startSoapServer((req) => bootstrapReply(req, model) ?? { status: 404 });
  servers.push(server);
  return server;
}

async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(HvkitError.isInstance(error), String(error)).toBe(true);
  return error as HvkitError;
}

describe('plain http', () => {
  it('connect() refuses an http URL without insecureHttp and sends nothing (not even the password)', async () => {
    const server = await fakeVsphere('vpx');
    const password = 'Clear-Text-Secret-1';
    const error = await rejection(connect({ url: server.url, username: 'u', password }));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/insecureHttp: true/);
    expect(error.message).not.toContain(password);
    expect(server.requests).toHaveLength(0);
    // The named opt-out connects.
    const adapter = await connect({ url: server.url, insecureHttp: true, username: 'u', password });
    await adapter.close();
    expect(server.requests.map((r) => r.method)).toContain('Login');
  });

  it('connect() refuses TLS settings with an http URL (a thumbprint would be silently ignored)', async () => {
    const server = await fakeVsphere('vpx');
    const error = await rejection(
      connect({
        url: server.url,
        insecureHttp: true,
        username: 'u',
        password: 'p',
        tls: { thumbprint: 'AB'.repeat(20) },
      }),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('tls.thumbprint');
    expect(server.requests).toHaveLength(0);
  });
});
