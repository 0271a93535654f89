import { HvkitError } from '@hvkit/core';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { makeTestCert, type TestCert } from '../../../../core/src/__test-utils__';
import { type SoapServer, sample, startSoapServer } from '../../../test/soap-server';
import { VimSoapClient } from './client';
import { SERVICE_INSTANCE } from './session';
import { createVimFetch, normalizeThumbprint, thumbprintOf, type VimTlsOptions } from './tls';

describe('normalizeThumbprint', () => {
  it('accepts govc and vCenter spellings', () => {
    const canonical = 'E6:16:A7:C4:09:38:CB:17:FB:73:3A:BC:1B:15:F1:AC:81:13:EF:28';
    expect(normalizeThumbprint(canonical)).toBe(canonical);
    expect(normalizeThumbprint(canonical.toLowerCase())).toBe(canonical);
    expect(normalizeThumbprint(canonical.replaceAll(':', ''))).toBe(canonical);
    expect(normalizeThumbprint(` ${canonical.replaceAll(':', ' ')} `)).toBe(canonical);
  });

  it('rejects anything but a SHA-1 thumbprint', () => {
    for (const bad of ['', 'zz'.repeat(20), 'AB'.repeat(32), 'AB'.repeat(19)]) {
      let thrown: unknown;
      try {
        normalizeThumbprint(bad);
      } catch (error) {
        thrown = error;
      }
      expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT'), bad).toBe(true);
    }
    expect(() => normalizeThumbprint(5 as never)).toThrow(TypeError);
  });
});

describe('createVimFetch', () => {
  it('refuses a thumbprint together with the opt-out, and a malformed thumbprint', () => {
    expect(() => createVimFetch({ tls: { insecureSkipVerify: true, thumbprint: 'AB'.repeat(20) } })).toThrow(
      TypeError,
    );
    expect(() => createVimFetch({ tls: { thumbprint: 'nope' } })).toThrow(HvkitError);
  });

  it('thumbprintOf needs a certificate (the live tests check it against the peer certificate)', () => {
    expect(() =>
      thumbprintOf('-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----'),
    ).toThrow();
  });
});

describe('thumbprint modes against a TLS server on loopback', () => {
  // Made in beforeAll, not while the file is collected.
  let cert: TestCert;
  let right: string;
  beforeAll(() => {
    cert = makeTestCert('vc', 'IP:127.0.0.1');
    right = thumbprintOf(cert.cert);
  });
  const other = normalizeThumbprint('11'.repeat(20));
  let server: SoapServer | undefined;
  afterEach(async () => {
    await server?.close();
    server = undefined;
  });

  async function call(tls: VimTlsOptions): Promise<unknown> {
    server ??= await startSoapServer(() => ({ body: sample('current-time.xml') }), { tls: cert });
    const fetch = createVimFetch({ tls });
    try {
      const client = new VimSoapClient({ url: server.url, fetch });
      return await client.invoke('CurrentTime', SERVICE_INSTANCE).then(
        (value) => value,
        (error: unknown) => error,
      );
    } finally {
      await fetch.close();
    }
  }

  it('fallback (the default, as govc): a certificate the CA verifies is accepted whatever its thumbprint', async () => {
    expect(await call({ ca: cert.cert, thumbprint: other })).toBeInstanceOf(Date);
    expect(await call({ thumbprint: right })).toBeInstanceOf(Date);
    expect(server?.requests).toHaveLength(2);
  });

  it('exclusive: only the pinned certificate is accepted, a CA-valid one with another thumbprint is not', async () => {
    const error = await call({ ca: cert.cert, thumbprint: other, thumbprintMode: 'exclusive' });
    expect(HvkitError.isInstance(error, 'AUTH_FAILED'), String(error)).toBe(true);
    expect((error as HvkitError).message).toContain(right);
    expect((error as HvkitError).details).toMatchObject({
      offeredThumbprint: right,
      pinnedThumbprint: other,
    });
    // Nothing was sent over the refused connection.
    expect(server?.requests).toHaveLength(0);
    expect(await call({ thumbprint: right, thumbprintMode: 'exclusive' })).toBeInstanceOf(Date);
    expect(await call({ ca: cert.cert, thumbprint: right, thumbprintMode: 'exclusive' })).toBeInstanceOf(
      Date,
    );
    expect(server?.requests).toHaveLength(2);
  });

  it('refuses a mode without a thumbprint, and unknown modes', () => {
    expect(() => createVimFetch({ tls: { thumbprintMode: 'exclusive' } })).toThrow(TypeError);
    expect(() => createVimFetch({ tls: { thumbprint: right, thumbprintMode: 'only' as never } })).toThrow(
      TypeError,
    );
  });
});
