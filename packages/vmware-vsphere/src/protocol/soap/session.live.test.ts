/**
 * Live tests of sessions against govmomi's vcsim (peer `vcsim`): TLS verification, thumbprint pinning and
 * the named opt-out, plain http, login failures, an expired session re-established once, the keep-alive.
 */

import { HvkitError, sleep } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVcsim, type VcsimInstance } from '../../../test/vcsim-instance';
import { env, liveTitle, peerCa, tappedFetch, vcsim } from '../../../test/vcsim-peer';
import { retrieveContainer } from './property-collector';
import { connectVim, type VimSessionOptions } from './session';
import { createVimFetch, normalizeThumbprint, thumbprintOf } from './tls';

async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(HvkitError.isInstance(error), String(error)).toBe(true);
  return error as HvkitError;
}

function login(extra: Partial<VimSessionOptions> = {}): VimSessionOptions {
  const e = env();
  return {
    url: e.HVKIT_VCSIM_URL,
    username: e.HVKIT_VCSIM_USER,
    password: e.HVKIT_VCSIM_PASSWORD,
    keepAliveMs: false,
    ...extra,
  };
}

describe.skipIf(!vcsim.available)(liveTitle('TLS'), () => {
  it('verifies the certificate against the given CA, then logs in and out', async () => {
    const session = await connectVim(login({ tls: { ca: peerCa() } }));
    try {
      expect(session.serviceContent.about.apiType).toBe('VirtualCenter');
      expect(session.client.version).toBe('6.5');
      expect(session.userSession?.userName).toBe(env().HVKIT_VCSIM_USER);
      expect(session.client.sessionCookie).toMatch(/^[0-9a-f-]{36}$/);
      expect(await session.isSessionActive()).toBe(true);
      expect(await session.currentTime()).toBeInstanceOf(Date);
      await session.logout();
      expect(session.closed).toBe(true);
      expect(session.client.sessionCookie).toBeUndefined();
    } finally {
      await session.close();
    }
  });

  it('accepts the pinned SHA-1 thumbprint instead of a CA, on every new connection', async () => {
    const e = env();
    expect(thumbprintOf(peerCa())).toBe(e.HVKIT_VCSIM_THUMBPRINT);
    // Connections close after 1 ms idle, so each call is a new TLS handshake (no session resumption).
    const fetch = createVimFetch({
      tls: { thumbprint: e.HVKIT_VCSIM_THUMBPRINT.toLowerCase().replaceAll(':', '') },
      keepAliveTimeoutMs: 1,
    });
    const session = await connectVim(login({ fetch }));
    try {
      for (let i = 0; i < 3; i++) {
        await sleep(50);
        expect(await session.currentTime()).toBeInstanceOf(Date);
      }
    } finally {
      await session.close();
      await fetch.close();
    }
  });

  it('refuses a wrong thumbprint with AUTH_FAILED naming the offered one', async () => {
    const e = env();
    const wrong = normalizeThumbprint('00'.repeat(20));
    const error = await rejection(connectVim(login({ tls: { thumbprint: wrong } })));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toContain(e.HVKIT_VCSIM_THUMBPRINT);
    expect(error.message).toContain(wrong);
    expect(error.details).toMatchObject({
      offeredThumbprint: e.HVKIT_VCSIM_THUMBPRINT,
      pinnedThumbprint: wrong,
    });
  });

  it('refuses an untrusted certificate by default, naming its thumbprint', async () => {
    const error = await rejection(connectVim(login()));
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.message).toMatch(/not trusted/);
    expect(error.message).toContain(env().HVKIT_VCSIM_THUMBPRINT);
  });

  it('like govc, consults the thumbprint only when normal verification fails', async () => {
    const session = await connectVim(login({ tls: { ca: peerCa(), thumbprint: '11'.repeat(20) } }));
    await session.close();
  });

  it("thumbprintMode 'exclusive' refuses the CA-verified certificate when the pin differs, and accepts the pinned one", async () => {
    const e = env();
    const error = await rejection(
      connectVim(login({ tls: { ca: peerCa(), thumbprint: '11'.repeat(20), thumbprintMode: 'exclusive' } })),
    );
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.details).toMatchObject({
      offeredThumbprint: e.HVKIT_VCSIM_THUMBPRINT,
      thumbprintMode: 'exclusive',
    });
    const session = await connectVim(
      login({ tls: { thumbprint: e.HVKIT_VCSIM_THUMBPRINT, thumbprintMode: 'exclusive' } }),
    );
    await session.close();
  });

  it('accepts anything with the named opt-out insecureSkipVerify', async () => {
    const session = await connectVim(login({ tls: { insecureSkipVerify: true } }));
    expect(session.serviceContent.rootFolder.type).toBe('Folder');
    await session.close();
    expect(() =>
      createVimFetch({ tls: { insecureSkipVerify: true, thumbprint: env().HVKIT_VCSIM_THUMBPRINT } }),
    ).toThrow(TypeError);
  });

  it('talks to the ESX model over https too', async () => {
    const session = await connectVim(login({ url: env().HVKIT_VCSIM_ESX_URL, tls: { ca: peerCa() } }));
    expect(session.serviceContent.about.apiType).toBe('HostAgent');
    expect(session.serviceContent.sessionManager?.value).toBe('ha-sessionmgr');
    await session.close();
  });
});

describe.skipIf(!vcsim.available)(liveTitle('login over plain http'), () => {
  it('refuses the http URL without the named opt-out insecureHttp, sending nothing', async () => {
    const [fetch, tap] = tappedFetch();
    const error = await rejection(connectVim(login({ url: env().HVKIT_VCSIM_HTTP_URL, fetch })));
    expect(error.code).toBe('INVALID_ARGUMENT');
    expect(error.message).toMatch(/insecureHttp/);
    expect(tap.calls).toHaveLength(0);
  });

  it('connects over http', async () => {
    const session = await connectVim(login({ url: env().HVKIT_VCSIM_HTTP_URL, insecureHttp: true }));
    expect(session.userSession?.key).toBe(session.client.sessionCookie);
    await session.close();
  });

  it('fails a bad password with AUTH_FAILED and never shows the password', async () => {
    const password = 'Wrong-Secret-4711';
    const error = await rejection(
      connectVim(login({ url: env().HVKIT_VCSIM_HTTP_URL, insecureHttp: true, password })),
    );
    expect(error.code).toBe('AUTH_FAILED');
    expect(error.backendCode).toBe('InvalidLogin');
    expect(`${error.message} ${JSON.stringify(error.toJSON())} ${error.stack}`).not.toContain(password);
  });

  it('reads the service content without logging in, and rejects an empty user name', async () => {
    const session = await connectVim({
      url: env().HVKIT_VCSIM_HTTP_URL,
      insecureHttp: true,
      keepAliveMs: false,
    });
    expect(session.userSession).toBeUndefined();
    expect(session.serviceContent.propertyCollector).toEqual({
      type: 'PropertyCollector',
      value: 'propertyCollector',
    });
    await session.close();
    const error = await rejection(
      connectVim({ url: env().HVKIT_VCSIM_HTTP_URL, insecureHttp: true, username: '', password: 'x' }),
    );
    expect(error.code).toBe('INVALID_ARGUMENT');
  });
});

describe.skipIf(!vcsim.available)(liveTitle('expired sessions (own vcsim, 1 s idle timeout)'), () => {
  let sim: VcsimInstance;
  beforeAll(async () => {
    sim = await startVcsim({
      bin: env().HVKIT_VCSIM_BIN,
      idleTimeout: '1s',
      args: ['-model', 'vpx', '-cluster', '1', '-host', '1', '-standalone-host', '0', '-vm', '2'],
    });
  });
  afterAll(() => sim?.stop());

  const options = (extra: Partial<VimSessionOptions> = {}): VimSessionOptions => ({
    url: sim.url,
    insecureHttp: true,
    username: sim.username,
    password: sim.password,
    keepAliveMs: false,
    ...extra,
  });

  it('re-establishes an expired session transparently, once per call', async () => {
    const [fetch, tap] = tappedFetch();
    const session = await connectVim(options({ fetch }));
    try {
      const firstKey = session.userSession?.key;
      // vcsim checks idle sessions every second and drops those idle longer than 1 s.
      await sleep(2_600);
      expect(await session.currentTime()).toBeInstanceOf(Date);
      expect(session.stats.relogins).toBe(1);
      expect(session.userSession?.key).not.toBe(firstKey);
      expect(tap.calls.map((c) => c.method).slice(-3)).toEqual(['CurrentTime', 'Login', 'CurrentTime']);
      // After another expiry, a ContainerView retrieval starts over with a new session and view.
      await sleep(2_600);
      const vms = await retrieveContainer(session, { type: 'VirtualMachine', paths: ['name'] });
      expect(vms).toHaveLength(2);
      expect(session.stats.relogins).toBe(2);
    } finally {
      await session.close();
    }
  });

  it('does not retry a second consecutive NotAuthenticated', async () => {
    const [fetch, tap] = tappedFetch();
    const session = await connectVim(options({ fetch }));
    try {
      tap.calls.length = 0;
      // The server really sees no cookie, so every call but Login is NotAuthenticated.
      tap.stripCookies = true;
      const error = await rejection(session.currentTime());
      expect(error.code).toBe('AUTH_FAILED');
      expect(error.backendCode).toBe('NotAuthenticated');
      expect(tap.calls.map((c) => c.method)).toEqual(['CurrentTime', 'Login', 'CurrentTime']);
      expect(session.stats.relogins).toBe(1);
    } finally {
      tap.stripCookies = false;
      await session.close();
    }
  });

  it('keeps an idle session alive with CurrentTime', async () => {
    const [fetch, tap] = tappedFetch();
    const session = await connectVim(options({ fetch, keepAliveMs: 300 }));
    try {
      await sleep(2_600);
      expect(session.stats.keepAlives).toBeGreaterThanOrEqual(4);
      expect(await session.isSessionActive()).toBe(true);
      expect(session.stats.relogins).toBe(0);
      expect(tap.calls.filter((c) => c.method === 'CurrentTime').length).toBe(session.stats.keepAlives);
    } finally {
      await session.close();
    }
    const calls = tap.calls.length;
    await sleep(700);
    // Closed: the keep-alive stopped.
    expect(tap.calls.length).toBe(calls);
  });
});
