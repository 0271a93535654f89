/**
 * Live tests against a private, throwaway libvirtd (peer libvirtd: its binary and the test driver),
 * for what the shared daemon must not be put through: stopping it, server keepalive at 1 s, TCP and
 * TLS listeners with a throwaway PKI, SASL-only auth, and a proxy that corrupts the byte stream.
 */

import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, connect as netConnect, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { HvkitError, unixSocketDialer } from '@hvkit/core';
import { build as bundle } from 'esbuild';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createTestPki,
  libvirtdAvailable,
  type TestPki,
  ThrowawayLibvirtd,
} from '../../test/throwaway-libvirtd';
import { connectRpc } from '../connect';
import { encodePacket } from './packet';
import { remoteProcedures as P } from './remote-protocol';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_SOCKET']);
const usable = peer.available && libvirtdAvailable();

async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  try {
    await promise;
  } catch (error) {
    expect(HvkitError.isInstance(error), `expected an HvkitError, got ${String(error)}`).toBe(true);
    return error as HvkitError;
  }
  throw new Error('expected a rejection');
}

async function freePort(): Promise<number> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const address = server.address();
  server.close();
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

/** A unix-socket proxy in front of the daemon that can inject bytes towards the client. */
class InjectingProxy {
  private inject: Uint8Array | undefined;
  private constructor(
    readonly path: string,
    private readonly server: Server,
  ) {}

  static async start(path: string, upstreamPath: string): Promise<InjectingProxy> {
    rmSync(path, { force: true });
    let proxy: InjectingProxy | undefined;
    const server = createServer((client: Socket) => {
      const upstream = netConnect({ path: upstreamPath });
      client.on('data', (d) => upstream.write(d));
      upstream.on('data', (d) => {
        const extra = proxy?.inject;
        if (extra && proxy) {
          proxy.inject = undefined;
          client.write(extra);
        }
        client.write(d);
      });
      const end = () => {
        client.destroy();
        upstream.destroy();
      };
      client.on('close', end);
      upstream.on('close', end);
      client.on('error', end);
      upstream.on('error', end);
    });
    server.listen(path);
    await once(server, 'listening');
    proxy = new InjectingProxy(path, server);
    return proxy;
  }

  /** Bytes sent to the client right before the next bytes from the daemon. */
  armInjection(bytes: Uint8Array): void {
    this.inject = bytes;
  }

  async close(): Promise<void> {
    this.server.close();
  }
}

describe.skipIf(!usable)(
  `libvirt RPC client against a throwaway libvirtd (peer libvirtd)${usable ? '' : ` (skipped: ${peer.available ? 'no libvirtd binary' : peer.reason})`}`,
  () => {
    let daemon: ThrowawayLibvirtd;
    let pki: TestPki;
    let tcpPort: number;
    let tlsPort: number;

    beforeAll(async () => {
      pki = createTestPki();
      tcpPort = await freePort();
      tlsPort = await freePort();
      daemon = await ThrowawayLibvirtd.start({ keepaliveInterval: 1, tcpPort, tls: { port: tlsPort, pki } });
    });
    afterAll(async () => {
      await daemon?.dispose();
      if (pki) rmSync(pki.dir, { recursive: true, force: true });
    });

    it('answers the daemon PINGs, so an idle connection survives its 1 s keepalive', async () => {
      await using c = await connectRpc({ uri: daemon.uri, keepalive: false });
      expect(c.openUri).toBe('test:///default');
      await new Promise((r) => setTimeout(r, 2600));
      const s = c.stats();
      expect(s.pingsReceived).toBeGreaterThanOrEqual(2);
      expect(s.pongsSent).toBe(s.pingsReceived);
      expect(s.pingsSent).toBe(0);
      expect(await c.call(P.CONNECT_GET_URI)).toBe('test:///default');
    });

    it('times out a call at a stopped daemon, drops the late reply, and keeps working', async () => {
      await using c = await connectRpc({ uri: daemon.uri });
      daemon.signal('SIGSTOP');
      try {
        const started = Date.now();
        const error = await rejection(c.call(P.CONNECT_GET_HOSTNAME, undefined, { timeoutMs: 150 }));
        expect(error.code).toBe('TIMEOUT');
        expect(Date.now() - started).toBeLessThan(2000);
        // Queued calls can be aborted before they are sent.
        const calls = Array.from({ length: 5 }, () => c.call(P.CONNECT_GET_URI));
        const controller = new AbortController();
        const queued = c.call(P.CONNECT_GET_URI, undefined, { signal: controller.signal });
        expect(c.stats()).toMatchObject({ inFlight: 4, queued: 3 });
        controller.abort();
        expect((await rejection(queued)).code).toBe('ABORTED');
        expect(c.stats().queued).toBe(2);
        daemon.signal('SIGCONT');
        expect(await Promise.all(calls)).toEqual(new Array(5).fill('test:///default'));
      } finally {
        daemon.signal('SIGCONT');
      }
      expect(c.stats().lateReplies).toBe(1);
      expect(c.stats().inFlight).toBe(0);
    });

    it('fails connecting to a stopped daemon with TIMEOUT, to a missing socket with CONNECTION_LOST', async () => {
      daemon.signal('SIGSTOP');
      try {
        const error = await rejection(connectRpc({ uri: daemon.uri, timeoutMs: 300 }));
        expect(error.code).toBe('TIMEOUT');
      } finally {
        daemon.signal('SIGCONT');
      }
      const missing = await rejection(
        connectRpc({ uri: `test+unix:///default?socket=${daemon.dir}/no-such-sock` }),
      );
      expect(missing).toMatchObject({ code: 'CONNECTION_LOST', retryable: true });
    });

    it('connects over TCP (qemu+tcp style URI)', async () => {
      await using c = await connectRpc({ uri: `test+tcp://127.0.0.1:${tcpPort}/default` });
      expect(c.openUri).toBe('test:///default');
      const { domains } = await c.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 });
      expect(domains.map((d) => d.name)).toContain('test');
    });

    it('connects over TLS with a client certificate and reads the confirmation byte', async () => {
      await using c = await connectRpc({
        uri: `test+tls://127.0.0.1:${tlsPort}/default?pkipath=${pki.clientDir}`,
      });
      expect(await c.call(P.CONNECT_GET_URI)).toBe('test:///default');
      const untrusted = await rejection(
        connectRpc({
          uri: `test+tls://127.0.0.1:${tlsPort}/default?pkipath=${pki.untrustedClientDir}`,
        }),
      );
      expect(untrusted.code).toBe('AUTH_FAILED');
      // The server certificate is checked against the CA: another CA is refused, no_verify=1 accepts it.
      const otherCa = await rejection(
        connectRpc({
          uri: `test+tls://127.0.0.1:${tlsPort}/default?pkipath=${pki.clientDir}`,
          transport: { tls: { ca: readFileSync(join(pki.dir, 'othercacert.pem')) } },
        }),
      );
      expect(otherCa.code).toBe('AUTH_FAILED');
      const missingFiles = await rejection(
        connectRpc({
          uri: `test+tls://127.0.0.1:${tlsPort}/default?pkipath=${daemon.dir}/nothing`,
        }),
      );
      expect(missingFiles.code).toBe('INVALID_ARGUMENT');
    });

    it('refuses a SASL-only daemon with UNSUPPORTED', async () => {
      const sasl = await ThrowawayLibvirtd.start({ authUnixRw: 'sasl' });
      try {
        const error = await rejection(connectRpc({ uri: sasl.uri }));
        expect(error.code).toBe('UNSUPPORTED');
        expect(error.details?.authTypes).toEqual([1]);
      } finally {
        await sasl.dispose();
      }
    });

    // AUTH_LIST answers NONE for root, so the polkit path needs a client running as another user.
    it.skipIf(process.getuid?.() !== 0)(
      'takes the polkit path for an unprivileged client (AUTH_POLKIT; no D-Bus here: AUTH_FAILED)',
      async () => {
        const polkit = await ThrowawayLibvirtd.start({ authUnixRw: 'polkit', openToAllUsers: true });
        const dir = mkdtempSync(join(tmpdir(), 'hvkit-polkit-'));
        try {
          chmodSync(dir, 0o755);
          // The unprivileged user may not be able to read the clone (a clone inside a `mktemp -d`
          // folder is mode 700), so it runs a self-contained bundle of the client, written here.
          const entry = join(dir, 'entry.ts');
          const connectModule = join(import.meta.dirname, '..', 'connect.ts');
          writeFileSync(
            entry,
            `import { connectRpc } from ${JSON.stringify(connectModule)};
connectRpc({ uri: ${JSON.stringify(polkit.uri)}, timeoutMs: 10000 }).then(
  async (c) => {
    await c.close();
    console.log(JSON.stringify({ connected: true }));
  },
  (e) => console.log(JSON.stringify({ code: e.code, backendCode: e.backendCode, message: e.message })),
);
`,
          );
          const script = join(dir, 'client.cjs');
          await bundle({
            entryPoints: [entry],
            outfile: script,
            bundle: true,
            platform: 'node',
            format: 'cjs',
            target: 'node20',
            conditions: ['@hvkit/source'],
            // ssh2 loads these optional native helpers inside try/catch and works without them.
            external: ['cpu-features', '*.node'],
            logLevel: 'error',
          });
          chmodSync(script, 0o644);
          const out = execFileSync(process.execPath, [script], {
            cwd: dir,
            uid: 65534,
            gid: 65534,
            env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
            encoding: 'utf8',
            timeout: 60_000,
          });
          const result = JSON.parse(out.trim().split('\n').at(-1) as string);
          expect(result.code).toBe('AUTH_FAILED');
          expect(result.message).toMatch(/polkit/);
        } finally {
          rmSync(dir, { recursive: true, force: true });
          await polkit.dispose();
        }
      },
      90_000,
    );

    describe('a corrupted byte stream', () => {
      let proxy: InjectingProxy;
      beforeAll(async () => {
        proxy = await InjectingProxy.start(join(daemon.dir, 'proxy.sock'), daemon.socketPath);
      });
      afterAll(async () => {
        await proxy?.close();
      });

      const connectThroughProxy = () =>
        connectRpc({ dialer: unixSocketDialer(proxy.path), openUri: 'test:///default' });

      it('an impossible length word fails the pending calls with PROTOCOL and closes', async () => {
        const c = await connectThroughProxy();
        expect(await c.call(P.CONNECT_GET_URI)).toBe('test:///default');
        const closed = new Promise<HvkitError | undefined>((resolve) => c.onClose(resolve));
        proxy.armInjection(Uint8Array.of(0xff, 0xff, 0xff, 0xff));
        const error = await rejection(c.call(P.CONNECT_GET_HOSTNAME));
        expect(error.code).toBe('PROTOCOL');
        expect((await closed)?.code).toBe('PROTOCOL');
        expect(c.closed).toBe(true);
        expect((await rejection(c.call(P.CONNECT_GET_URI))).code).toBe('CONNECTION_LOST');
        await c.close();
      });

      it('a packet of another protocol version closes with PROTOCOL; stray replies are dropped', async () => {
        const c = await connectThroughProxy();
        // A reply for a serial nobody waits for is ignored.
        proxy.armInjection(
          encodePacket({
            program: 0x20008086,
            version: 1,
            procedure: 110,
            type: 1,
            serial: 0xabcdef,
            status: 0,
          }),
        );
        expect(await c.call(P.CONNECT_GET_URI)).toBe('test:///default');
        proxy.armInjection(
          encodePacket({ program: 0x20008086, version: 7, procedure: 110, type: 1, serial: 1, status: 0 }),
        );
        expect((await rejection(c.call(P.CONNECT_GET_URI))).code).toBe('PROTOCOL');
        expect(c.closed).toBe(true);
        await c.close();
      });
    });
  },
);
