/**
 * connect() against a local SOAP server doing what vcsim will not: refusing option keys it does not know
 * before any request (`tls: { pinnedSha256 }` is core's spelling; vSphere pins `thumbprint`, and the
 * unknown key used to be accepted and ignored), a login fault that echoes the password back in every
 * form a server might use, and plain http only with the named opt-out (and never with TLS settings).
 */

import { HvkitError } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { rejection } from '../../core/src/__test-utils__';
import { bootstrapReply, type SoapServer, sample, soapEnvelope, startSoapServer } from '../test/soap-server';
import { connect, type VmwareVsphereOptions } from './connect';

let server: SoapServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

async function misuse(options: unknown): Promise<string> {
  const error = await connect(options as VmwareVsphereOptions).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TypeError);
  return (error as Error).message;
}

function xmlEscape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');
}

describe('vmware-vsphere connect option keys', () => {
  it('refuses unknown keys, also inside tls, naming them and the accepted ones, before any request', async () => {
    server = await startSoapServer(() => ({ body: sample('service-content-vpx.xml') }));
    const base = { url: server.url, username: 'u', password: 'p', insecureHttp: true };
    expect(await misuse({ ...base, tls: { pinnedSha256: 'AB:CD' } })).toBe(
      'vmware-vsphere connect: unknown option tls.pinnedSha256; tls accepts: ca, thumbprint, insecureSkipVerify, servername, thumbprintMode.',
    );
    expect(await misuse({ ...base, timeout: 5000 })).toMatch(
      /^vmware-vsphere connect: unknown option timeout; accepted options: url, username, password, tls, /,
    );
    expect(server.requests).toHaveLength(0);
  });
});

describe('vmware-vsphere connect errors', () => {
  it('keeps the password out of a login fault that echoes it, plain, XML-escaped and in the fault detail', async () => {
    const password = `S3cret&<pw>"x`;
    server = await startSoapServer((request) => {
      if (request.method === 'RetrieveServiceContent') return { body: sample('service-content-vpx.xml') };
      const escaped = xmlEscape(password);
      return {
        status: 500,
        body: soapEnvelope(
          '<soapenv:Fault><faultcode>ServerFaultCode</faultcode>' +
            `<faultstring>Login failure for root/${escaped} (&#34;${escaped}&#34;)&#13;&#10;forged</faultstring>` +
            '<detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin">' +
            `<faultMessage><key>login</key><message>${escaped}</message></faultMessage>` +
            '</InvalidLoginFault></detail></soapenv:Fault>',
        ),
      };
    });
    const error = await connect({ url: server.url, username: 'root', password, insecureHttp: true }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'AUTH_FAILED'), String(error)).toBe(true);
    const e = error as HvkitError;
    const forms = [password, xmlEscape(password), encodeURIComponent(password)];
    for (const text of [e.message, e.backendMessage, e.stack, JSON.stringify(e), JSON.stringify(e.details)]) {
      for (const form of forms) expect(text ?? '').not.toContain(form);
    }
    expect(e.message).toContain('[REDACTED]');
    for (const control of ['\r', '\n']) expect(e.message).not.toContain(control);
  });
});

describe('plain http', () => {
  it('connect() refuses an http URL without insecureHttp and sends nothing (not even the password)', async () => {
    server = await startSoapServer((req) => bootstrapReply(req, 'vpx') ?? { status: 404 });
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
    server = await startSoapServer((req) => bootstrapReply(req, 'vpx') ?? { status: 404 });
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
