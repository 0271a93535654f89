/**
 * connectSsh() refuses option keys it does not know before it opens a socket: a misspelt `hostKey` or
 * `auth` key would otherwise be ignored, and a misspelt host key pin would silently fall back to
 * known_hosts.
 */

import { createServer, type Server } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectSsh, type SshConnectOptions } from './index';

// A listener that counts connections: none may arrive for refused options.
let server: Server;
let port = 0;
let connections = 0;
beforeAll(async () => {
  server = createServer((socket) => {
    connections++;
    socket.destroy();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as { port: number }).port;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

function base(): SshConnectOptions {
  return { host: '127.0.0.1', port, username: 'root', auth: { password: 'pw' }, readyTimeout: 2000 };
}

async function misuse(options: unknown): Promise<string> {
  const error = await connectSsh(options as SshConnectOptions).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(TypeError);
  return (error as Error).message;
}

describe('connectSsh option keys', () => {
  it('refuses unknown keys at the top level, in auth and in hostKey, naming them, without connecting', async () => {
    expect(await misuse({ ...base(), hostkey: { insecureAcceptAnyHostKey: true } })).toMatch(
      /^connectSsh: unknown option hostkey; accepted options: host, port, username, auth, hostKey, /,
    );
    expect(await misuse({ ...base(), auth: { pasword: 'pw' } })).toMatch(
      /unknown option auth\.pasword; auth accepts: privateKey, passphrase, agent, password\.$/,
    );
    expect(await misuse({ ...base(), hostKey: { pinnedSha256: 'SHA256:abc' } })).toMatch(
      /unknown option hostKey\.pinnedSha256; hostKey accepts: knownHostsFile, knownHosts, hostKeyAlias, fingerprint, insecureAcceptAnyHostKey\.$/,
    );
    expect(connections).toBe(0);
  });
});
