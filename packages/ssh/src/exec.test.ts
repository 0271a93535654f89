/**
 * How exec learns a command's exit status, against ssh2's server on loopback (no sshd peer needed). The
 * server is reached through a proxy that holds back what the server sends until it has been quiet for a
 * moment and then writes it at once: the client then reads a channel's CHANNEL_SUCCESS, output,
 * exit-status, EOF and CLOSE in one chunk, as it often does from OpenSSH for a short command.
 */

import { type AddressInfo, createServer, type Server, type Socket, connect as tcpConnect } from 'node:net';
import { HvkitError } from '@hvkit/core';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateParsableKeyPair } from '../test/key-pair';
import { rejectsWith } from '../test/sshd-peer';
import { connectSsh, fingerprintOf, type SshClient } from './index';

const PASSWORD = 'exec test password';

/**
 * Runs the command `status N` (output `out\n`, exit status N), `signal NAME` (killed by SIGNAME) and
 * `nostatus` (output, then EOF and CLOSE with neither exit-status nor exit-signal).
 */
function startServer(): Promise<{ server: ssh2.Server; port: number; fingerprint: string }> {
  const key = generateParsableKeyPair('ed25519');
  const fingerprint = fingerprintOf(Buffer.from(key.public.split(' ')[1] as string, 'base64'));
  const server = new ssh2.Server({ hostKeys: [key.private] }, (client) => {
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (ctx.method === 'password' && ctx.username === 'u' && ctx.password === PASSWORD) ctx.accept();
      else ctx.reject(['password']);
    });
    client.on('session', (acceptSession) => {
      const session = acceptSession();
      session.on('exec', (accept, _reject, info) => {
        const stream = accept();
        // The command arrives quoted (`... exec 'status' '3'`): take the words back out.
        const words = [...info.command.matchAll(/'([^']*)'/g)].map((m) => m[1]);
        const at = words.findIndex((w) => w === 'status' || w === 'signal' || w === 'nostatus');
        const [what, arg] = [words[at], words[at + 1]];
        stream.resume();
        stream.write('out\n');
        if (what === 'status') stream.exit(Number(arg));
        else if (what === 'signal') stream.exit(String(arg), false, '');
        stream.end();
      });
    });
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({ server, port: (server.address() as AddressInfo).port, fingerprint }),
    ),
  );
}

/** Forwards to `port`; what comes back is written on in one piece once nothing arrived for 100 ms (more than a delayed ACK). */
function startBatchingProxy(port: number): Promise<{ proxy: Server; port: number; sockets: Set<Socket> }> {
  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = tcpConnect(port, '127.0.0.1');
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on('error', () => {});
      s.on('close', () => {
        sockets.delete(s);
        client.destroy();
        upstream.destroy();
      });
    }
    client.pipe(upstream);
    let held: Buffer[] = [];
    let timer: NodeJS.Timeout | undefined;
    upstream.on('data', (chunk: Buffer) => {
      held.push(chunk);
      clearTimeout(timer);
      timer = setTimeout(() => {
        const all = Buffer.concat(held);
        held = [];
        if (!client.destroyed) client.write(all);
      }, 100);
    });
  });
  return new Promise((resolve) =>
    proxy.listen(0, '127.0.0.1', () =>
      resolve({ proxy, port: (proxy.address() as AddressInfo).port, sockets }),
    ),
  );
}

let server: ssh2.Server;
let proxy: Awaited<ReturnType<typeof startBatchingProxy>>;
let ssh: SshClient;

beforeAll(async () => {
  const started = await startServer();
  server = started.server;
  proxy = await startBatchingProxy(started.port);
  ssh = await connectSsh({
    host: '127.0.0.1',
    port: proxy.port,
    username: 'u',
    auth: { password: PASSWORD },
    hostKey: { fingerprint: started.fingerprint },
    readyTimeout: 10_000,
    keepaliveInterval: 0,
  });
});

afterAll(async () => {
  await ssh?.close();
  for (const s of proxy?.sockets ?? []) s.destroy();
  await new Promise<void>((r) => (proxy ? proxy.proxy.close(() => r()) : r()));
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
});

describe('exit status of a channel whose replies arrive in one burst', () => {
  it('exec reports the exit status sent together with CHANNEL_SUCCESS', async () => {
    for (const code of [0, 3, 0, 255]) {
      const r = await ssh.exec.exec({ argv: ['status', String(code)], timeoutMs: 10_000 });
      expect(r).toMatchObject({ exitCode: code, signal: null });
      expect(r.stdout.toString()).toBe('out\n');
    }
    const killed = await ssh.exec.exec({ argv: ['signal', 'TERM'], timeoutMs: 10_000 });
    expect(killed).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
  });

  it('spawn().wait() reports it too', async () => {
    const p = ssh.exec.spawn({ argv: ['status', '7'], timeoutMs: 10_000 });
    p.stdout.resume();
    p.stdin.end();
    expect(await p.wait()).toMatchObject({ exitCode: 7, signal: null });
  });

  it('a dialed stream fails with REMOTE when its command exits non-zero', async () => {
    const stream = await ssh.dialer(['status', '5']).dial({ timeoutMs: 10_000 });
    const err = await new Promise<unknown>((resolve) => {
      stream.on('error', resolve);
      stream.on('end', () => resolve(undefined));
      stream.resume();
    });
    expect(HvkitError.isInstance(err, 'REMOTE')).toBe(true);
    expect((err as HvkitError).message).toMatch(/exited with status 5/);
  });

  it('a channel closed without any exit status is PROTOCOL, never a result with no status', async () => {
    const err = await rejectsWith(ssh.exec.exec({ argv: ['nostatus'], timeoutMs: 10_000 }), 'PROTOCOL');
    expect(err.message).toMatch(/without an exit status/);
    const p = ssh.exec.spawn({ argv: ['nostatus'], timeoutMs: 10_000 });
    p.stdout.resume();
    p.stderr.resume();
    p.stdin.end();
    await rejectsWith(p.wait(), 'PROTOCOL');
    // The connection is still fine.
    expect((await ssh.exec.exec({ argv: ['status', '0'], timeoutMs: 10_000 })).exitCode).toBe(0);
  });
});
