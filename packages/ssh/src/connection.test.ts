/**
 * `connectSsh()` against real SSH servers on loopback (ssh2's server, started by this file with fresh host
 * keys), so these run without the sshd peer: every host key policy, every refusal and its message, the
 * known_hosts files, the algorithm preference for the key types already known, and how failures to connect
 * are typed. ssh.live.test.ts runs the same against OpenSSH.
 */

import { createHmac, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { type AddressInfo, createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HvkitError } from '@hvkit/core';
import ssh2 from 'ssh2';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateParsableKeyPair } from '../test/key-pair';
import { rejectsWith } from '../test/sshd-peer';
import { connectSsh, fingerprintOf, type SshConnectOptions, type SshHostKeyPolicy } from './index';

interface HostKey {
  type: string;
  private: string;
  /** The public key blob (SSH wire format). */
  blob: Buffer;
  /** `type base64` as a known_hosts line carries it. */
  field: string;
  fingerprint: string;
}

function hostKey(type: 'ed25519' | 'ecdsa'): HostKey {
  const pair = generateParsableKeyPair(type, type === 'ecdsa' ? 256 : undefined);
  const [keyType, b64] = pair.public.split(' ') as [string, string];
  const blob = Buffer.from(b64, 'base64');
  return {
    type: keyType,
    private: pair.private,
    blob,
    field: `${keyType} ${b64}`,
    fingerprint: fingerprintOf(blob),
  };
}

/**
 * User `u`'s password. It has a space, so it can never occur inside a base64 key fingerprint: error messages
 * redact the password, and a two-letter one was now and then redacted out of a random fingerprint, failing the
 * exact-message checks.
 */
const PASSWORD = 'test password';

/** A loopback SSH server with the given host keys that lets user `u` in with {@link PASSWORD}. */
async function startServer(
  keys: HostKey[],
  algorithms?: ssh2.ServerConfig['algorithms'],
): Promise<{ port: number; close: () => Promise<void> }> {
  const server = new ssh2.Server({ hostKeys: keys.map((k) => k.private), algorithms }, (client) => {
    client.on('error', () => {});
    client.on('authentication', (ctx) => {
      if (ctx.method === 'password' && ctx.username === 'u' && ctx.password === PASSWORD) ctx.accept();
      else ctx.reject(['password']);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { port, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}

const ed = hostKey('ed25519');
const ec = hostKey('ecdsa');
const other = hostKey('ed25519');
let edOnly: { port: number; close: () => Promise<void> };
let both: { port: number; close: () => Promise<void> };
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'hvkit-ssh-hostkey-'));
  edOnly = await startServer([ed]);
  both = await startServer([ed, ec]);
});

afterAll(async () => {
  // The folder first: a server that fails to start or to close (a mutant under StrykerJS) must not keep it.
  if (dir) rmSync(dir, { recursive: true, force: true });
  await edOnly?.close();
  await both?.close();
});

function options(port: number, hostKey: unknown): SshConnectOptions {
  return {
    host: '127.0.0.1',
    port,
    username: 'u',
    auth: { password: PASSWORD },
    hostKey: hostKey as SshHostKeyPolicy,
    readyTimeout: 10_000,
    keepaliveInterval: 0,
  };
}

/** Connects, then closes at once; returns the verified key. */
async function accepted(port: number, hostKey: unknown): Promise<{ type: string; fingerprint: string }> {
  const ssh = await connectSsh(options(port, hostKey));
  try {
    return ssh.hostKey;
  } finally {
    await ssh.close();
  }
}

/** The AUTH_FAILED a refused host key gives; checks its backendCode. */
async function refused(port: number, hostKey: unknown, backendCode: string): Promise<HvkitError> {
  const error = await rejectsWith(connectSsh(options(port, hostKey)), 'AUTH_FAILED');
  expect(error.backendCode, error.message).toBe(backendCode);
  expect(error.retryable).toBe(false);
  return error;
}

const at = (port: number) => `[127.0.0.1]:${port}`;

describe('host keys from known_hosts text', () => {
  it('accepts the listed key (plain, wildcard and hashed entries) and reports it', async () => {
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(at(edOnly.port)).digest('base64')}`;
    for (const hosts of [at(edOnly.port), `[127.0.0.?]:${edOnly.port}`, `x,[127.0.0.1]:*`, hashed]) {
      expect(await accepted(edOnly.port, { knownHosts: `${hosts} ${ed.field}\n` })).toEqual({
        type: 'ssh-ed25519',
        fingerprint: ed.fingerprint,
      });
    }
  });

  it('refuses a pattern that only contains the host name (wildcards are anchored at both ends)', async () => {
    const port = edOnly.port;
    for (const hosts of ['127.0.0.?', '27.0.0.1', `[127.0.0.1]:${port}0`, `x[127.0.0.1]:${port}`]) {
      const error = await refused(port, { knownHosts: `${hosts} ${ed.field}\n` }, 'HOST_KEY_UNKNOWN');
      expect(error.message).toBe(
        `host 127.0.0.1:${port} is unknown: the server offered ssh-ed25519 key ${ed.fingerprint}, not listed in the given known_hosts text`,
      );
    }
    // Under an alias the same holds: kvm?.lab is not evilkvm1.lab.
    await refused(
      port,
      { knownHosts: `kvm?.lab ${ed.field}\n`, hostKeyAlias: 'evilkvm1.lab' },
      'HOST_KEY_UNKNOWN',
    );
    await refused(
      port,
      { knownHosts: `kvm?.lab ${ed.field}\n`, hostKeyAlias: 'kvm1.lab.evil' },
      'HOST_KEY_UNKNOWN',
    );
  });

  it('looks a host up under its alias, on port 22', async () => {
    const knownHosts = `kvm?.lab ${ed.field}\n${at(edOnly.port)} ${other.field}\n`;
    expect((await accepted(edOnly.port, { knownHosts, hostKeyAlias: 'kvm1.lab' })).fingerprint).toBe(
      ed.fingerprint,
    );
    await refused(
      edOnly.port,
      { knownHosts: `[kvm1.lab]:${edOnly.port} ${ed.field}\n`, hostKeyAlias: 'kvm1.lab' },
      'HOST_KEY_UNKNOWN',
    );
  });

  it('refuses a changed key of the same type, naming both keys and where the old one is listed', async () => {
    const knownHosts = `# comment\n${at(edOnly.port)} ${other.field}\n`;
    const error = await refused(edOnly.port, { knownHosts }, 'HOST_KEY_MISMATCH');
    expect(error.message).toBe(
      `HOST KEY OF 127.0.0.1:${edOnly.port} HAS CHANGED: the server offered ssh-ed25519 key ${ed.fingerprint}, which differs from the ssh-ed25519 key ${other.fingerprint} in the given known_hosts text (known_hosts line 2); someone may be intercepting the connection`,
    );
  });

  it('refuses a revoked key even when it is also listed for the host', async () => {
    const knownHosts = `${at(edOnly.port)} ${ed.field}\n@revoked * ${ed.field}\n`;
    const error = await refused(edOnly.port, { knownHosts }, 'HOST_KEY_REVOKED');
    expect(error.message).toBe(
      `host key of 127.0.0.1:${edOnly.port} is revoked (known_hosts line 2): the server offered ssh-ed25519 key ${ed.fingerprint}`,
    );
  });

  it('refuses a host known only with other key types, and says which', async () => {
    const error = await refused(
      edOnly.port,
      { knownHosts: `${at(edOnly.port)} ${ec.field}\n` },
      'HOST_KEY_UNKNOWN',
    );
    expect(error.message).toBe(
      `host 127.0.0.1:${edOnly.port} is unknown: the server offered ssh-ed25519 key ${ed.fingerprint}, not listed in the given known_hosts text (known there only with ecdsa-sha2-nistp256 keys)`,
    );
    const rsa = generateParsableKeyPair('rsa', 1024).public.split(' ').slice(0, 2).join(' ');
    const two = await refused(
      edOnly.port,
      { knownHosts: `${at(edOnly.port)} ${ec.field}\n${at(edOnly.port)} ${rsa}\n` },
      'HOST_KEY_UNKNOWN',
    );
    expect(two.message).toMatch(/ \(known there only with ecdsa-sha2-nistp256, ssh-rsa keys\)$/);
  });

  it('asks the server first for the key types known for the host', async () => {
    // The server has an ed25519 and an ECDSA key; ssh2 would ask for ed25519 first. Known only by its
    // ECDSA key, the host must be asked for that one, or it is refused as unknown.
    expect(await accepted(both.port, { knownHosts: `${at(both.port)} ${ec.field}\n` })).toEqual({
      type: 'ecdsa-sha2-nistp256',
      fingerprint: ec.fingerprint,
    });
    expect((await accepted(both.port, { knownHosts: `${at(both.port)} ${ed.field}\n` })).type).toBe(
      'ssh-ed25519',
    );
  });
});

describe('insecureAcceptUnknownHosts', () => {
  it('accepts a host with no listed key, and still refuses a listed host with another key or key type', async () => {
    const policy = (knownHosts: string) => ({ knownHosts, insecureAcceptUnknownHosts: true });
    expect((await accepted(edOnly.port, policy(`other.lab ${other.field}\n`))).fingerprint).toBe(
      ed.fingerprint,
    );
    expect((await accepted(edOnly.port, policy(''))).type).toBe('ssh-ed25519');
    await refused(edOnly.port, policy(`${at(edOnly.port)} ${other.field}\n`), 'HOST_KEY_MISMATCH');
    await refused(edOnly.port, policy(`${at(edOnly.port)} ${ec.field}\n`), 'HOST_KEY_UNKNOWN');
    await refused(
      edOnly.port,
      policy(`${at(edOnly.port)} ${ed.field}\n@revoked * ${ed.field}\n`),
      'HOST_KEY_REVOKED',
    );
    // Off, or false, is the default refusal.
    await refused(edOnly.port, { knownHosts: '', insecureAcceptUnknownHosts: false }, 'HOST_KEY_UNKNOWN');
    await expect(
      connectSsh(options(edOnly.port, { knownHosts: '', insecureAcceptUnknownHosts: 'yes' })),
    ).rejects.toThrow('hostKey.insecureAcceptUnknownHosts must be a boolean');
  });
});

describe('host keys from known_hosts files', () => {
  it('reads every file given (a missing one counts as empty) and names the files in refusals', async () => {
    const good = join(dir, 'good');
    const wrong = join(dir, 'wrong');
    const missing = join(dir, 'missing');
    writeFileSync(good, `${at(edOnly.port)} ${ed.field}\n`);
    writeFileSync(wrong, `\n\n${at(edOnly.port)} ${other.field}\n`);
    expect((await accepted(edOnly.port, { knownHostsFile: [missing, good] })).fingerprint).toBe(
      ed.fingerprint,
    );
    expect((await accepted(edOnly.port, { knownHostsFile: good })).fingerprint).toBe(ed.fingerprint);

    const changed = await refused(edOnly.port, { knownHostsFile: [wrong, missing] }, 'HOST_KEY_MISMATCH');
    expect(changed.message).toContain(`in ${wrong} (${wrong} line 3)`);
    const unknown = await refused(edOnly.port, { knownHostsFile: [missing] }, 'HOST_KEY_UNKNOWN');
    expect(unknown.message).toContain(`not listed in ${missing} (none exists)`);
    const none = await refused(edOnly.port, { knownHostsFile: [missing, `${missing}2`] }, 'HOST_KEY_UNKNOWN');
    expect(none.message.endsWith(`not listed in ${missing}, ${missing}2 (none exists)`)).toBe(true);
    const empty = join(dir, 'empty');
    writeFileSync(empty, '# nothing\n');
    const listed = await refused(
      edOnly.port,
      { knownHostsFile: [empty, missing, empty] },
      'HOST_KEY_UNKNOWN',
    );
    expect(listed.message.endsWith(`not listed in ${empty}, ${empty}`)).toBe(true);
    // A listed key anywhere among the files is enough.
    expect((await accepted(edOnly.port, { knownHostsFile: [wrong, good] })).fingerprint).toBe(ed.fingerprint);
  });

  it('refuses a known_hosts path it cannot read with INVALID_ARGUMENT, before connecting', async () => {
    const error = await rejectsWith(
      connectSsh(options(edOnly.port, { knownHostsFile: dir })),
      'INVALID_ARGUMENT',
    );
    expect(error.message).toBe(`cannot read known_hosts file ${dir}: EISDIR`);
    expect(error.operation).toBe('ssh.connect');
    expect((error.cause as NodeJS.ErrnoException).code).toBe('EISDIR');
  });

  it('uses ~/.ssh/known_hosts and /etc/ssh/ssh_known_hosts by default (a fresh key is in neither)', async () => {
    const error = await refused(edOnly.port, undefined, 'HOST_KEY_UNKNOWN');
    expect(error.message).toMatch(/not listed in .*(known_hosts|none exists)/);
    expect(error.message).toContain(ed.fingerprint);
  });
});

describe('pinned fingerprints and the explicit opt-out', () => {
  it('accepts a pinned fingerprint (one of several, padded or not) and refuses others, naming both', async () => {
    expect((await accepted(edOnly.port, { fingerprint: ed.fingerprint })).fingerprint).toBe(ed.fingerprint);
    expect(
      (await accepted(edOnly.port, { fingerprint: [other.fingerprint, `${ed.fingerprint}=`] })).type,
    ).toBe('ssh-ed25519');
    const error = await refused(
      edOnly.port,
      { fingerprint: [other.fingerprint, ec.fingerprint] },
      'HOST_KEY_MISMATCH',
    );
    expect(error.message).toBe(
      `host key of 127.0.0.1:${edOnly.port} does not match the pinned fingerprint: the server offered ssh-ed25519 key ${ed.fingerprint}, expected ${other.fingerprint} or ${ec.fingerprint}`,
    );
  });

  it('refuses malformed pins before connecting', async () => {
    for (const bad of ['MD5:16:27:ac', [ed.fingerprint, 'SHA256:short'], [42]]) {
      const error = await rejectsWith(
        connectSsh(options(edOnly.port, { fingerprint: bad })),
        'INVALID_ARGUMENT',
      );
      expect(error.message).toMatch(/^hostKey\.fingerprint .* is not a SHA256:<base64> fingerprint$/);
      expect(error.operation).toBe('ssh.connect');
    }
    for (const bad of [[], 7]) {
      await expect(connectSsh(options(edOnly.port, { fingerprint: bad }))).rejects.toThrow(
        'hostKey.fingerprint must be a fingerprint string or a non-empty array of them',
      );
    }
  });

  it('accepts any key only with insecureAcceptAnyHostKey: true', async () => {
    expect((await accepted(edOnly.port, { insecureAcceptAnyHostKey: true })).fingerprint).toBe(
      ed.fingerprint,
    );
    await expect(connectSsh(options(edOnly.port, { insecureAcceptAnyHostKey: 'yes' }))).rejects.toThrow(
      /insecureAcceptAnyHostKey must be true/,
    );
  });

  it('refuses policies of the wrong shape with TypeError', async () => {
    const cases: [unknown, string][] = [
      ['strict', 'hostKey must be an object'],
      [{ knownHosts: 1 }, 'hostKey.knownHosts must be a string'],
      [{ knownHostsFile: [dir, 1] }, 'hostKey.knownHostsFile must be a path or an array of paths'],
      [{ knownHostsFile: 7 }, 'hostKey.knownHostsFile must be a path or an array of paths'],
    ];
    for (const [policy, message] of cases) {
      await expect(connectSsh(options(edOnly.port, policy)), JSON.stringify(policy)).rejects.toThrow(message);
    }
    await expect(connectSsh(options(edOnly.port, {}))).rejects.toThrow(
      'hostKey must have one of knownHostsFile, knownHosts, fingerprint or insecureAcceptAnyHostKey: true',
    );
  });
});

/** A TCP server on loopback that runs `onSocket` for each connection (and destroys them on close). */
async function tcpServer(
  onSocket: (socket: Socket) => void,
): Promise<{ port: number; close: () => Promise<void> }> {
  const sockets: Socket[] = [];
  const server = createServer((socket) => {
    sockets.push(socket);
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    port,
    close: () => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('failures to connect', () => {
  const pinned = () => ({ fingerprint: ed.fingerprint });

  it('a refused password is AUTH_FAILED and the password appears nowhere', async () => {
    const error = await rejectsWith(
      connectSsh({ ...options(edOnly.port, pinned()), auth: { password: 'Wr0ng-Secret' } }),
      'AUTH_FAILED',
    );
    expect(error.message).toBe(
      `authentication to ssh://u@127.0.0.1:${edOnly.port} failed (all offered methods were refused)`,
    );
    expect(error.retryable).toBe(false);
    expect(error.operation).toBe('ssh.connect');
    expect(JSON.stringify({ ...error, message: error.message, stack: error.stack })).not.toContain(
      'Wr0ng-Secret',
    );
  });

  it('an ssh-agent that cannot be reached is AUTH_FAILED with backendCode AGENT', async () => {
    const error = await rejectsWith(
      connectSsh({ ...options(edOnly.port, pinned()), auth: { agent: join(dir, 'no-agent.sock') } }),
      'AUTH_FAILED',
    );
    expect(error.backendCode).toBe('AGENT');
    expect(error.message).toMatch(/^authentication to ssh:\/\/u@127\.0\.0\.1:\d+ failed: ssh-agent error: /);
  });

  it('a port nobody listens on is CONNECTION_LOST naming the errno', async () => {
    const closed = await tcpServer(() => {});
    await closed.close();
    const error = await rejectsWith(connectSsh(options(closed.port, pinned())), 'CONNECTION_LOST');
    expect(error.backendCode).toBe('ECONNREFUSED');
    expect(error.message).toBe(`cannot reach ssh://u@127.0.0.1:${closed.port}: ECONNREFUSED`);
    expect(error.operation).toBe('ssh.connect');
    expect(error.cause).toBeInstanceOf(Error);
    expect(error.backendMessage).toMatch(/ECONNREFUSED/);
  });

  it('a host name that does not resolve is CONNECTION_LOST naming the errno', async () => {
    const error = await rejectsWith(
      connectSsh({ ...options(22, pinned()), host: 'hvkit-no-such-host.invalid' }),
      'CONNECTION_LOST',
    );
    expect(error.backendCode).toBe('ENOTFOUND');
    expect(error.message).toBe('cannot reach ssh://u@hvkit-no-such-host.invalid:22: ENOTFOUND');
  });

  it('a server that never answers the handshake is TIMEOUT after readyTimeout', async () => {
    const silent = await tcpServer(() => {});
    try {
      const started = Date.now();
      const error = await rejectsWith(
        connectSsh({ ...options(silent.port, pinned()), readyTimeout: 300 }),
        'TIMEOUT',
      );
      expect(error.message).toMatch(
        new RegExp(`^connecting to ssh://u@127\\.0\\.0\\.1:${silent.port} timed out \\(`),
      );
      expect(error.operation).toBe('ssh.connect');
      expect(error.cause).toBeInstanceOf(Error);
      expect(error.backendMessage).toBe((error.cause as Error).message);
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      await silent.close();
    }
  });

  it('a server with no key exchange in common is PROTOCOL; one that is not SSH is CONNECTION_LOST', async () => {
    const old = await startServer([ed], { kex: ['diffie-hellman-group1-sha1'] });
    try {
      const error = await rejectsWith(connectSsh(options(old.port, pinned())), 'PROTOCOL');
      expect(error.message).toBe(
        `SSH handshake with ssh://u@127.0.0.1:${old.port} failed: Handshake failed: no matching key exchange algorithm`,
      );
      expect(error.operation).toBe('ssh.connect');
      expect(error.backendMessage).toBe('Handshake failed: no matching key exchange algorithm');
      expect(error.cause).toBeInstanceOf(Error);
      expect(error.retryable).toBe(false);
    } finally {
      await old.close();
    }
    const v1 = await tcpServer((socket) => socket.write('SSH-1.5-ancient\r\n'));
    try {
      const error = await rejectsWith(connectSsh(options(v1.port, pinned())), 'CONNECTION_LOST');
      expect(error.message).toBe(
        `connection to ssh://u@127.0.0.1:${v1.port} failed: Invalid identification string`,
      );
      expect(error.operation).toBe('ssh.connect');
      expect(error.backendMessage).toBe('Invalid identification string');
      expect(error.cause).toBeInstanceOf(Error);
    } finally {
      await v1.close();
    }
  });
});
