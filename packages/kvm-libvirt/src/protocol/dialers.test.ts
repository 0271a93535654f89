/**
 * URI-driven transport choices that need no libvirt daemon: what an implicit-TLS URI with an unknown
 * driver reports, and that `?no_verify=1` alone never turns TLS verification off. The TLS server is a
 * real `node:tls` server on loopback with a self-signed certificate made by openssl for this run.
 */

import { readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { createServer, type Server, type TLSSocket } from 'node:tls';
import { HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestPki, type TestPki } from '../../test/throwaway-libvirtd';
import { connectRpc } from '../connect';
import { resolveLibvirtTransport } from './dialers';
import { LIBVIRT_DRIVERS } from './uri';

async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  try {
    const value = await promise;
    (value as { destroy?: () => void } | undefined)?.destroy?.();
  } catch (error) {
    expect(HvkitError.isInstance(error), String(error)).toBe(true);
    return error as HvkitError;
  }
  throw new Error('expected a rejection');
}

describe('a URI with a host and no transport (read as remote TLS, as libvirt does)', () => {
  it('bogus://x: the error names the driver, says the URI was read as remote TLS and lists the known drivers', async () => {
    const error = await rejection(connectRpc({ uri: 'bogus://x', timeoutMs: 5000 }));
    expect(error.message).toContain('"bogus"');
    expect(error.message).toMatch(/read as a remote TLS URI/);
    expect(error.message).toContain('bogus+tls://x');
    for (const driver of ['qemu', 'test', 'lxc']) expect(error.message).toContain(driver);
    expect(LIBVIRT_DRIVERS).toContain('qemu');
    expect(LIBVIRT_DRIVERS).not.toContain('bogus');
  });

  it('a known driver read as TLS says so too, without calling the driver unknown', async () => {
    const error = await rejection(
      resolveLibvirtTransport('qemu://host.invalid/system?pkipath=/nonexistent/hvkit-pki'),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toContain('/nonexistent/hvkit-pki/cacert.pem');
    expect(error.message).toMatch(/read as a remote TLS URI \(qemu\+tls:\/\/host\.invalid/);
    expect(error.message).not.toMatch(/not a libvirt driver/);
  });

  it('an explicit qemu+tls:// URI keeps the plain message', async () => {
    const error = await rejection(
      resolveLibvirtTransport('qemu+tls://host.invalid/system?pkipath=/nonexistent/hvkit-pki'),
    );
    expect(error.message).not.toMatch(/read as a remote TLS URI/);
  });
});

describe('?no_verify=1 on TLS against a server with a self-signed certificate', () => {
  let pki: TestPki;
  let server: Server;
  let port: number;
  let handshakes = 0;

  beforeAll(async () => {
    pki = createTestPki();
    // The server presents a self-signed certificate (the "other" CA's own), which the client's CA
    // (pki.clientDir/cacert.pem) did not sign. After the handshake it sends libvirt's confirmation byte.
    server = createServer(
      {
        cert: readFileSync(join(pki.dir, 'othercacert.pem')),
        key: readFileSync(join(pki.dir, 'othercakey.pem')),
      },
      (socket: TLSSocket) => {
        handshakes++;
        socket.on('error', () => {});
        socket.write(Buffer.from([1]));
      },
    );
    server.on('tlsClientError', () => {});
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as { port: number }).port;
  });

  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
    rmSync(pki.dir, { recursive: true, force: true });
  });

  const uri = (query: string) => `test+tls://127.0.0.1:${port}/default?pkipath=${pki.clientDir}${query}`;

  it('without the named option the certificate is still verified: AUTH_FAILED, and the message says why', async () => {
    const before = handshakes;
    const resolved = await resolveLibvirtTransport(uri('&no_verify=1'));
    const error = await rejection(resolved.dialer.dial({ timeoutMs: 5000 }));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toMatch(/no_verify=1/);
    expect(error.message).toMatch(/insecureAllowUriNoVerify/);
    // The handshake never completed on the server side.
    expect(handshakes).toBe(before);
  });

  it('without no_verify the certificate is refused the same way', async () => {
    const resolved = await resolveLibvirtTransport(uri(''));
    const error = await rejection(resolved.dialer.dial({ timeoutMs: 5000 }));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).not.toMatch(/no_verify/);
  });

  it('with transport.insecureAllowUriNoVerify the URI turns verification off', async () => {
    const resolved = await resolveLibvirtTransport(uri('&no_verify=1'), { insecureAllowUriNoVerify: true });
    const socket = await resolved.dialer.dial({ timeoutMs: 5000 });
    socket.destroy();
    // The option alone, without no_verify=1 in the URI, changes nothing.
    const strict = await resolveLibvirtTransport(uri(''), { insecureAllowUriNoVerify: true });
    expect((await rejection(strict.dialer.dial({ timeoutMs: 5000 }))).code).toBe('AUTH_FAILED');
  });

  it('the explicit transport.tls.insecureSkipVerify stays the caller’s choice', async () => {
    const resolved = await resolveLibvirtTransport(uri(''), { tls: { insecureSkipVerify: true } });
    const socket = await resolved.dialer.dial({ timeoutMs: 5000 });
    socket.destroy();
  });

  it('refuses a non-boolean insecureAllowUriNoVerify with TypeError', async () => {
    await expect(
      resolveLibvirtTransport(uri('&no_verify=1'), {
        insecureAllowUriNoVerify: 'yes' as unknown as boolean,
      }),
    ).rejects.toThrow(TypeError);
  });
});
