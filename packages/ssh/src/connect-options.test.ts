/**
 * connectSsh() against what a real sshd cannot be made to do: option keys it does not know are refused
 * before it opens a socket (a misspelt `hostKey` or `auth` key would otherwise be ignored, and a misspelt
 * host key pin would silently fall back to known_hosts), and a hostile server whose disconnect message
 * echoes the password does not get it into the error.
 */

import { createServer, type Server, type Socket } from 'node:net';
import { HvkitError } from '@hvkit/core';
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
      /unknown option hostKey\.pinnedSha256; hostKey accepts: knownHostsFile, knownHosts, hostKeyAlias, fingerprint, insecureAcceptAnyHostKey, insecureAcceptUnknownHosts\.$/,
    );
    expect(connections).toBe(0);
  });
});

/** An SSH_MSG_DISCONNECT binary packet (unencrypted, as before key exchange) with `description`. */
function disconnectPacket(description: string): Buffer {
  const text = Buffer.from(description, 'utf8');
  const payload = Buffer.alloc(1 + 4 + 4 + text.length + 4);
  payload[0] = 1; // SSH_MSG_DISCONNECT
  payload.writeUInt32BE(2, 1); // SSH_DISCONNECT_PROTOCOL_ERROR
  payload.writeUInt32BE(text.length, 5);
  text.copy(payload, 9);
  let padding = 8 - ((4 + 1 + payload.length) % 8);
  if (padding < 4) padding += 8;
  const packet = Buffer.alloc(4 + 1 + payload.length + padding);
  packet.writeUInt32BE(1 + payload.length + padding, 0);
  packet[4] = padding;
  payload.copy(packet, 5);
  return packet;
}

/** A server that greets like sshd, then disconnects with `description` when the client speaks. */
async function startEchoingSshServer(description: string): Promise<{ port: number; close(): Promise<void> }> {
  const sockets = new Set<Socket>();
  const echo = createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    socket.write('SSH-2.0-OpenSSH_9.2\r\n');
    socket.once('data', () => socket.end(disconnectPacket(description)));
  });
  await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
  return {
    port: (echo.address() as { port: number }).port,
    close: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        echo.close(() => resolve());
      }),
  };
}

describe('connectSsh errors', () => {
  it('keeps the password and passphrase out of the error when the server echoes them', async () => {
    const password = 'Hunter2-S3cret';
    const passphrase = 'my passphrase 42';
    const hostile = await startEchoingSshServer(
      `denied: password ${password} passphrase ${passphrase} \u001b[31mred\u001b[0m\r\nforged log line`,
    );
    try {
      const error = await connectSsh({
        host: '127.0.0.1',
        port: hostile.port,
        username: 'root',
        auth: { password, passphrase },
        hostKey: { insecureAcceptAnyHostKey: true },
        readyTimeout: 5000,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(HvkitError.isInstance(error), String(error)).toBe(true);
      const e = error as HvkitError;
      const texts = [
        e.message,
        e.backendMessage,
        e.stack,
        JSON.stringify(e),
        (e.cause as Error | undefined)?.message,
      ];
      for (const text of texts) {
        expect(text ?? '').not.toContain(password);
        expect(text ?? '').not.toContain(passphrase);
      }
      expect(e.message).toContain('[REDACTED]');
      for (const control of ['\u001b', '\r', '\n']) expect(e.message).not.toContain(control);
    } finally {
      await hostile.close();
    }
  });
});
