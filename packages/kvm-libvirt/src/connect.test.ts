/**
 * connect() refuses option keys it does not know, at every level it reads (transport.ssh, transport.tls,
 * keepalive, naming), before it dials: a misspelt pin such as `transport.tls.thumbprint` would otherwise
 * be ignored and the certificate checked some other way than the caller believes. And the SSH password it
 * was given never reaches an error, even when the remote side echoes it.
 */

import { type Dialer, HvkitError, hvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { connect, type KvmLibvirtOptions } from './connect';

function countingDialer(): Dialer & { dials: number } {
  const dialer = {
    target: 'counting',
    dials: 0,
    async dial(): Promise<never> {
      dialer.dials++;
      throw new Error('no dialing in this test');
    },
  };
  return dialer;
}

async function misuse(options: unknown): Promise<string> {
  const error = await connect(options as KvmLibvirtOptions).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TypeError);
  return (error as Error).message;
}

describe('kvm-libvirt connect option keys', () => {
  it('refuses unknown keys at every level, naming the key and the accepted ones, without dialing', async () => {
    const dialer = countingDialer();
    const base = { dialer, openUri: 'test:///default' };
    expect(await misuse({ ...base, timeout: 5000 })).toMatch(
      /^kvm-libvirt connect: unknown option timeout; accepted options: uri, dialer, openUri, transport, /,
    );
    expect(await misuse({ ...base, transport: { tls: { thumbprint: 'AB:CD' } } })).toBe(
      'kvm-libvirt connect: unknown option transport.tls.thumbprint; transport.tls accepts: ' +
        'ca, cert, key, servername, pinnedSha256, insecureSkipVerify, pkiPath.',
    );
    expect(
      await misuse({ ...base, transport: { ssh: { connect: { hostKey: { pinnedSha256: 'SHA256:x' } } } } }),
    ).toMatch(
      /unknown option transport\.ssh\.connect\.hostKey\.pinnedSha256; transport\.ssh\.connect\.hostKey accepts: /,
    );
    expect(await misuse({ ...base, transport: { ssh: { dialer: { stderrLimt: 1 } } } })).toMatch(
      /unknown option transport\.ssh\.dialer\.stderrLimt;/,
    );
    expect(await misuse({ ...base, keepalive: { interval: 1 } })).toMatch(
      /unknown option keepalive\.interval; keepalive accepts: intervalMs, countMax\.$/,
    );
    expect(await misuse({ ...base, naming: { uniqueID: () => 'x' } })).toMatch(
      /unknown option naming\.uniqueID;/,
    );
    expect(dialer.dials).toBe(0);
  });
});

describe('kvm-libvirt connect errors', () => {
  it('removes the SSH password and passphrase from a dial error that echoes them', async () => {
    const password = 'Hunter2-S3cret';
    const passphrase = 'correct horse battery';
    // What virt-ssh-helper's stderr becomes when a hostile host prints the credentials back.
    const echoing: Dialer = {
      target: 'ssh://root@hostile virt-ssh-helper',
      async dial(): Promise<never> {
        throw hvkitError('CONNECTION_LOST', `remote said: ${password} / ${passphrase}`, {
          backendMessage: `stderr: ${password}`,
          cause: new Error(`exit 1: ${passphrase}`),
        });
      },
    };
    const error = await connect({
      dialer: echoing,
      openUri: 'qemu:///system',
      transport: { ssh: { connect: { auth: { password, passphrase: Buffer.from(passphrase) } } } },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'CONNECTION_LOST'), String(error)).toBe(true);
    const e = error as HvkitError;
    for (const text of [
      e.message,
      e.backendMessage,
      e.stack,
      JSON.stringify(e),
      (e.cause as Error).message,
    ]) {
      expect(text).not.toContain(password);
      expect(text).not.toContain(passphrase);
    }
    expect(e.message).toBe('remote said: [REDACTED] / [REDACTED]');
  });
});
