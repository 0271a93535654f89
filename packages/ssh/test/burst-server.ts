/**
 * ssh2's SSH server on loopback, reached through a proxy that holds back what the server sends until it
 * has been quiet for 100 ms (longer than a delayed ACK) and then writes it at once. The client then reads a
 * channel's CHANNEL_SUCCESS, output, exit-status, EOF and CLOSE in one chunk, as it often does from OpenSSH
 * for a short command.
 *
 * Exec commands (the words of the quoted command line): `status N` writes `out\n` and exits with N,
 * `signal NAME` is killed by SIGNAME, `nostatus` closes the channel with neither exit-status nor
 * exit-signal. A command with the word `hvkit-probe` (a sink looking for its checksum tool) answers with
 * {@link BurstServer.probeReply}.
 *
 * Long-running commands, which end only when stdin ends or when the client closes the channel (how a
 * client kills them here: ssh2's server refuses `signal` requests; see {@link BurstServer.ended}): `ticks`
 * writes `tick\n` to stdout and `tock\n` to stderr every 150 ms (with pauses, so the proxy passes them
 * on), `cat` echoes stdin and exits 0 at EOF.
 */
import { type AddressInfo, createServer, type Socket, connect as tcpConnect } from 'node:net';
import ssh2 from 'ssh2';
import { afterAll, beforeAll } from 'vitest';
import { connectSsh, fingerprintOf, type SshClient } from '../src/index';
import { generateParsableKeyPair } from './key-pair';

const PASSWORD = 'burst server password';

export interface ProbeReply {
  stdout?: string;
  stderr?: string;
  /** Exit status, or a signal name (`KILL`). */
  exit: number | string;
}

export interface BurstServer {
  /** Connects as the server's one user, through the proxy. */
  connect(): Promise<SshClient>;
  /** How the server answers a sink's checksum tool probe. */
  probeReply: ProbeReply;
  /** Each long-running command (`ticks`, `cat`) that ended, and how: stdin EOF, or the client closed the channel. */
  ended: { command: string; how: 'eof' | 'close' }[];
  /** How many long-running commands are running now. */
  running: number;
  close(): Promise<void>;
}

function finish(stream: ssh2.ServerChannel, exit: number | string | undefined): void {
  if (typeof exit === 'number') stream.exit(exit);
  else if (typeof exit === 'string') stream.exit(exit, false, '');
  stream.end();
}

export async function startBurstServer(): Promise<BurstServer> {
  const key = generateParsableKeyPair('ed25519');
  const fingerprint = fingerprintOf(Buffer.from(key.public.split(' ')[1] as string, 'base64'));
  const state: BurstServer = {
    probeReply: { exit: 127 },
    ended: [],
    running: 0,
    connect: () =>
      connectSsh({
        host: '127.0.0.1',
        port: proxyPort,
        username: 'u',
        auth: { password: PASSWORD },
        hostKey: { fingerprint },
        readyTimeout: 10_000,
        keepaliveInterval: 0,
      }),
    close: async () => {
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => proxy.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
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
        const words = [...info.command.matchAll(/'([^']*)'/g)].map((m) => m[1]);
        const long = words.find((w) => w === 'ticks' || w === 'cat');
        if (long) {
          state.running++;
          let ended = false;
          const end = (how: 'eof' | 'close') => {
            if (ended) return;
            ended = true;
            state.running--;
            state.ended.push({ command: long, how });
            clearInterval(timer);
            if (how === 'eof') finish(stream, 0);
          };
          const timer =
            long === 'ticks'
              ? setInterval(() => {
                  stream.write('tick\n');
                  stream.stderr.write('tock\n');
                }, 150)
              : undefined;
          if (long === 'cat') {
            stream.on('data', (chunk: Buffer) => stream.write(chunk));
            // A channel closed by the client ends its input too: EOF is only what is not followed by the close.
            stream.on('end', () => setTimeout(() => end('eof'), 20));
          } else stream.resume();
          stream.on('close', () => end('close'));
          return;
        }
        stream.resume();
        if (words.includes('hvkit-probe')) {
          const reply = state.probeReply;
          if (reply.stdout) stream.write(reply.stdout);
          if (reply.stderr) stream.stderr.write(reply.stderr);
          finish(stream, reply.exit);
          return;
        }
        const at = words.findIndex((w) => w === 'status' || w === 'signal' || w === 'nostatus');
        const [what, arg] = [words[at], words[at + 1]];
        stream.write('out\n');
        finish(stream, what === 'status' ? Number(arg) : what === 'signal' ? String(arg) : undefined);
      });
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const serverPort = (server.address() as AddressInfo).port;

  const sockets = new Set<Socket>();
  const proxy = createServer((client) => {
    const upstream = tcpConnect(serverPort, '127.0.0.1');
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
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', r));
  const proxyPort = (proxy.address() as AddressInfo).port;
  return state;
}

/**
 * Starts a burst server and connects to it before the file's tests, closes both after them. The
 * getters are for use inside tests.
 */
export function useBurstServer(): { server: () => BurstServer; ssh: () => SshClient } {
  let server: BurstServer | undefined;
  let ssh: SshClient | undefined;
  beforeAll(async () => {
    server = await startBurstServer();
    ssh = await server.connect();
  });
  afterAll(async () => {
    await ssh?.close();
    await server?.close();
  });
  const started = <T>(value: T | undefined): T => {
    if (value === undefined) throw new Error('the burst server is not started');
    return value;
  };
  return { server: () => started(server), ssh: () => started(ssh) };
}
