/**
 * Live tests against the real sshd peer (scripts/peers/sshd.sh start): authentication, host key
 * verification, quoted exec, SFTP files and dialed streams.
 */

import { execFileSync, spawn } from 'node:child_process';
import { createHash, createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  existsSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { createServer, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateParsableKeyPair } from '../test/key-pair';
import {
  connectRoot,
  env,
  liveTitle,
  rejectsWith,
  rootOptions,
  scratchDir,
  sshd,
  unhandledDuring,
  within,
} from '../test/sshd-peer';
import { connectSsh, createSshSink, fingerprintOf, type SshClient } from './index';

/** A fresh ed25519 public key blob (SSH wire format) and its known_hosts key field. */
function freshHostKey(): { blob: Buffer; field: string } {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const type = Buffer.from('ssh-ed25519');
  const blob = Buffer.alloc(8 + type.length + raw.length);
  blob.writeUInt32BE(type.length, 0);
  type.copy(blob, 4);
  blob.writeUInt32BE(raw.length, 4 + type.length);
  raw.copy(blob, 8 + type.length);
  return { blob, field: `ssh-ed25519 ${blob.toString('base64')}` };
}

/** A port on 127.0.0.1 that nothing listens on. */
async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as { port: number };
  await new Promise((r) => server.close(r));
  return port;
}

describe.skipIf(!sshd.available)(liveTitle('connect, authenticate, verify host keys'), { retry: 0 }, () => {
  let dir: string;
  let peerKeyLine: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'hvkit-ssh-kh-'));
    // "ssh-ed25519 AAAA..." of the peer, from the known_hosts file the peer script wrote.
    const [, type, key] = readFileSync(env().HVKIT_SSH_KNOWN_HOSTS, 'utf8').trim().split(/\s+/);
    peerKeyLine = `${type} ${key}`;
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const knownHostsWith = (name: string, lines: string[]) => {
    const file = join(dir, name);
    writeFileSync(file, `${lines.join('\n')}\n`);
    return file;
  };

  it('logs in by key; the verified fingerprint is the one ssh-keygen computed for the peer', async () => {
    const ssh = await connectRoot();
    try {
      const e = env();
      expect(ssh.target).toBe(`ssh://root@${e.HVKIT_SSH_HOST}:${e.HVKIT_SSH_PORT}`);
      expect(ssh.hostKey).toEqual({ type: 'ssh-ed25519', fingerprint: e.HVKIT_SSH_HOST_FINGERPRINT });
      const r = await ssh.exec.exec({ argv: ['id', '-u'] });
      expect(r.stdout.toString().trim()).toBe('0');
    } finally {
      await ssh.close();
    }
    expect(ssh.closed).toBe(true);
  });

  it('logs in with a password; a wrong password is AUTH_FAILED and never appears in the error', async () => {
    const e = env();
    const base = rootOptions({ username: e.HVKIT_SSH_PASSWORD_USER });
    await using ssh = await connectSsh({ ...base, auth: { password: e.HVKIT_SSH_PASSWORD } });
    const r = await ssh.exec.exec({ argv: ['id', '-un'] });
    expect(r.stdout.toString().trim()).toBe(e.HVKIT_SSH_PASSWORD_USER);

    const wrong = `wrong-${randomBytes(6).toString('hex')}`;
    const err = await rejectsWith(connectSsh({ ...base, auth: { password: wrong } }), 'AUTH_FAILED');
    expect(JSON.stringify(err.toJSON())).not.toContain(wrong);
    expect(err.message).not.toContain(wrong);
  });

  it('refuses a key that is not authorized, and root by password', async () => {
    const { private: privateKey } = generateParsableKeyPair('ed25519');
    await rejectsWith(connectRoot({ auth: { privateKey } }), 'AUTH_FAILED');
    await rejectsWith(connectRoot({ auth: { password: env().HVKIT_SSH_PASSWORD } }), 'AUTH_FAILED');
  });

  it('logs in with an encrypted key and its passphrase; a wrong or missing passphrase is AUTH_FAILED', async () => {
    const keyFile = join(dir, 'encrypted_key');
    copyFileSync(env().HVKIT_SSH_KEY, keyFile);
    chmodSync(keyFile, 0o600);
    const passphrase = `pp-${randomBytes(6).toString('hex')}`;
    execFileSync('ssh-keygen', ['-q', '-p', '-f', keyFile, '-N', passphrase, '-P', '']);
    await using ssh = await connectRoot({ auth: { privateKey: keyFile, passphrase } });
    expect((await ssh.exec.exec({ argv: ['true'] })).exitCode).toBe(0);
    const wrong = await rejectsWith(
      connectRoot({ auth: { privateKey: keyFile, passphrase: 'nope-nope' } }),
      'AUTH_FAILED',
    );
    expect(wrong.message).not.toContain('nope-nope');
    await rejectsWith(connectRoot({ auth: { privateKey: keyFile } }), 'AUTH_FAILED');
    // The key text (not a path) works too.
    await using byText = await connectRoot({
      auth: { privateKey: readFileSync(keyFile, 'utf8'), passphrase },
    });
    expect(byText.closed).toBe(false);
  });

  it('logs in through an ssh-agent socket', async () => {
    const sock = join(dir, 'agent.sock');
    const agent = spawn('ssh-agent', ['-D', '-a', sock], { stdio: 'ignore' });
    try {
      for (let i = 0; i < 50 && !existsSync(sock); i++) await new Promise((r) => setTimeout(r, 50));
      execFileSync('ssh-add', ['-q', env().HVKIT_SSH_KEY], { env: { ...process.env, SSH_AUTH_SOCK: sock } });
      await using ssh = await connectRoot({ auth: { agent: sock } });
      expect((await ssh.exec.exec({ argv: ['id', '-u'] })).stdout.toString().trim()).toBe('0');
    } finally {
      agent.kill();
    }
  });

  it('times out a server that never answers the handshake (readyTimeout)', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((s) => sockets.push(s));
    await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
    try {
      const { port } = silent.address() as { port: number };
      const started = Date.now();
      await rejectsWith(connectRoot({ port, readyTimeout: 800 }), 'TIMEOUT');
      expect(Date.now() - started).toBeLessThan(5000);
    } finally {
      for (const s of sockets) s.destroy();
      await new Promise((r) => silent.close(r));
    }
  });

  it('accepts a pinned fingerprint and refuses a wrong one, naming the offered fingerprint', async () => {
    const e = env();
    await using ok = await connectRoot({ hostKey: { fingerprint: e.HVKIT_SSH_HOST_FINGERPRINT } });
    expect(ok.hostKey.fingerprint).toBe(e.HVKIT_SSH_HOST_FINGERPRINT);

    const wrong = fingerprintOf(freshHostKey().blob);
    const err = await rejectsWith(connectRoot({ hostKey: { fingerprint: wrong } }), 'AUTH_FAILED');
    expect(err.backendCode).toBe('HOST_KEY_MISMATCH');
    expect(err.message).toContain(e.HVKIT_SSH_HOST_FINGERPRINT);
    expect(err.message).toContain(wrong);
  });

  it('refuses a CHANGED host key (known_hosts lists another key for the same host and port)', async () => {
    const e = env();
    const file = knownHostsWith('changed', [
      `[${e.HVKIT_SSH_HOST}]:${e.HVKIT_SSH_PORT} ${freshHostKey().field}`,
    ]);
    const err = await rejectsWith(connectRoot({ hostKey: { knownHostsFile: file } }), 'AUTH_FAILED');
    expect(err.backendCode).toBe('HOST_KEY_MISMATCH');
    expect(err.message).toContain(e.HVKIT_SSH_HOST_FINGERPRINT);
    expect(err.message).toMatch(/changed/i);
  });

  it('refuses an unknown host: no entry, or entries for another port / host only', async () => {
    const e = env();
    for (const lines of [
      [],
      [`${e.HVKIT_SSH_HOST} ${peerKeyLine}`],
      [`[${e.HVKIT_SSH_HOST}]:1 ${peerKeyLine}`, `other.example ${peerKeyLine}`],
    ]) {
      const file = knownHostsWith(`unknown-${lines.length}`, lines);
      const err = await rejectsWith(connectRoot({ hostKey: { knownHostsFile: file } }), 'AUTH_FAILED');
      expect(err.backendCode).toBe('HOST_KEY_UNKNOWN');
      expect(err.message).toContain(e.HVKIT_SSH_HOST_FINGERPRINT);
    }
    const missing = join(dir, 'does-not-exist');
    const err = await rejectsWith(connectRoot({ hostKey: { knownHostsFile: missing } }), 'AUTH_FAILED');
    expect(err.backendCode).toBe('HOST_KEY_UNKNOWN');
  });

  it('accepts a hashed entry and a file with several keys; refuses a @revoked key', async () => {
    const e = env();
    const name = `[${e.HVKIT_SSH_HOST}]:${e.HVKIT_SSH_PORT}`;
    const salt = randomBytes(20);
    const hashed = `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
    const good = knownHostsWith('hashed', [
      `other.example ${freshHostKey().field}`,
      `${hashed} ${peerKeyLine}`,
    ]);
    await using ssh = await connectRoot({ hostKey: { knownHostsFile: good } });
    expect(ssh.hostKey.fingerprint).toBe(e.HVKIT_SSH_HOST_FINGERPRINT);

    const revoked = knownHostsWith('revoked', [`${name} ${peerKeyLine}`, `@revoked * ${peerKeyLine}`]);
    const err = await rejectsWith(connectRoot({ hostKey: { knownHostsFile: revoked } }), 'AUTH_FAILED');
    expect(err.backendCode).toBe('HOST_KEY_REVOKED');
  });

  it('insecureAcceptUnknownHosts accepts a host with no listed key, never a changed or revoked one', async () => {
    const e = env();
    const name = `[${e.HVKIT_SSH_HOST}]:${e.HVKIT_SSH_PORT}`;
    const policy = (file: string) => ({ knownHostsFile: file, insecureAcceptUnknownHosts: true });
    const unknown = knownHostsWith('accept-unknown', [`other.example ${peerKeyLine}`]);
    await using ssh = await connectRoot({ hostKey: policy(unknown) });
    expect(ssh.hostKey.fingerprint).toBe(e.HVKIT_SSH_HOST_FINGERPRINT);

    const changed = knownHostsWith('accept-unknown-changed', [`${name} ${freshHostKey().field}`]);
    const err = await rejectsWith(connectRoot({ hostKey: policy(changed) }), 'AUTH_FAILED');
    expect(err.backendCode).toBe('HOST_KEY_MISMATCH');

    const revoked = knownHostsWith('accept-unknown-revoked', [`@revoked * ${peerKeyLine}`]);
    const rev = await rejectsWith(connectRoot({ hostKey: policy(revoked) }), 'AUTH_FAILED');
    expect(rev.backendCode).toBe('HOST_KEY_REVOKED');

    await expect(
      connectRoot({
        hostKey: { knownHostsFile: unknown, insecureAcceptUnknownHosts: 'yes' as unknown as boolean },
      }),
    ).rejects.toThrow(TypeError);
  });

  it('connects without verification only when asked by name', async () => {
    await using ssh = await connectRoot({ hostKey: { insecureAcceptAnyHostKey: true } });
    expect(ssh.hostKey.fingerprint).toBe(env().HVKIT_SSH_HOST_FINGERPRINT);
  });

  it('reports an unreachable port as CONNECTION_LOST and an aborted connect as ABORTED', async () => {
    const port = await closedPort();
    const err = await rejectsWith(connectRoot({ port }), 'CONNECTION_LOST');
    expect(err.backendCode).toBe('ECONNREFUSED');
    await rejectsWith(connectRoot({ signal: AbortSignal.abort() }), 'ABORTED');
  });
});

describe.skipIf(!sshd.available)(liveTitle('exec'), { retry: 0 }, () => {
  let ssh: SshClient;
  beforeAll(async () => {
    ssh = await connectRoot();
  });
  afterAll(async () => {
    await ssh?.close();
  });

  it('reports exit codes, signals, stdout and stderr', async () => {
    const ok = await ssh.exec.exec({ argv: ['sh', '-c', 'echo out; echo err >&2'] });
    expect(ok).toMatchObject({ exitCode: 0, signal: null });
    expect(ok.stdout.toString()).toBe('out\n');
    expect(ok.stderr.toString()).toBe('err\n');
    for (const code of [1, 3, 42, 255]) {
      const r = await ssh.exec.exec({ argv: ['sh', '-c', `exit ${code}`] });
      expect(r.exitCode).toBe(code);
    }
    const killed = await ssh.exec.exec({ argv: ['sh', '-c', 'kill -KILL $$'] });
    expect(killed).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
    const missing = await ssh.exec.exec({ argv: ['hvkit-no-such-program'] });
    expect(missing.exitCode).toBe(127);
  });

  it('every short exec as the non-root password user carries its exit status (400 calls)', async () => {
    // OpenSSH often sends such a session's CHANNEL_SUCCESS, output, exit-status, EOF and CLOSE in one
    // burst; the status must not be lost between the channel opening and the call wiring it up.
    const e = env();
    await using user = await connectSsh({
      ...rootOptions({ username: e.HVKIT_SSH_PASSWORD_USER }),
      auth: { password: e.HVKIT_SSH_PASSWORD },
    });
    const wrong: string[] = [];
    for (let i = 0; i < 400; i++) {
      const code = i % 2 === 0 ? 0 : 3;
      const r = await user.exec.exec({
        argv: ['sh', '-c', 'echo "$1"; exit "$2"', 'hvkit-exit', `n${i}`, `${code}`],
      });
      if (r.exitCode !== code || r.signal !== null || r.stdout.toString() !== `n${i}\n`) {
        wrong.push(
          `#${i}: exitCode ${r.exitCode}, signal ${r.signal}, stdout ${JSON.stringify(r.stdout.toString())}`,
        );
      }
    }
    expect(wrong).toEqual([]);
  });

  it('passes hostile arguments verbatim and runs nothing they contain', async () => {
    await ssh.exec.exec({ argv: ['rm', '-f', '/tmp/pwned'] });
    const args = [
      "a'b",
      '$(touch /tmp/pwned)',
      '`touch /tmp/pwned`',
      '; rm -rf x',
      'line1\nline2',
      '--leading-dash',
      '*',
      '~',
      'back\\slash \\n \\',
      'ünïcødé ✓ 日本',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell parameter expansion, kept literal
      '"$HOME" ${PATH}',
      '',
      '&& touch /tmp/pwned',
    ];
    const r = await ssh.exec.exec({ argv: ['printf', '%s\\0', ...args] });
    expect(r.exitCode).toBe(0);
    expect(r.stdout.toString('utf8').split('\0').slice(0, -1)).toEqual(args);
    const pwned = await ssh.exec.exec({ argv: ['test', '-e', '/tmp/pwned'] });
    expect(pwned.exitCode).toBe(1);
  });

  it('passes env and cwd, and stdin as bytes or a stream', async () => {
    const r = await ssh.exec.exec({
      argv: ['sh', '-c', 'printf "%s|%s|%s" "$A" "$B" "$PWD"'],
      env: { A: "it's $(x)", B: 'two\nlines' },
      cwd: '/usr',
    });
    expect(r.stdout.toString()).toBe("it's $(x)|two\nlines|/usr");
    const data = randomBytes(300_000);
    const echoed = await ssh.exec.exec({ argv: ['cat'], stdin: data });
    expect(echoed.stdout.equals(data)).toBe(true);
    async function* chunks() {
      for (let i = 0; i < 10; i++) yield Buffer.alloc(100_000, i);
    }
    const counted = await ssh.exec.exec({ argv: ['wc', '-c'], stdin: chunks() });
    expect(counted.stdout.toString().trim()).toBe('1000000');
  });

  it('fails with PROTOCOL beyond maxBuffer', async () => {
    await rejectsWith(
      ssh.exec.exec({ argv: ['head', '-c', '200000', '/dev/zero'], maxBuffer: 100_000 }),
      'PROTOCOL',
    );
    // The connection stays usable.
    expect((await ssh.exec.exec({ argv: ['true'] })).exitCode).toBe(0);
  });

  it('kills the remote process on timeout and on abort', async () => {
    for (const how of ['timeout', 'abort'] as const) {
      const pidFile = `/tmp/hvkit-ssh-live-pid-${process.pid}-${how}`;
      const ac = new AbortController();
      const call = ssh.exec.exec({
        argv: ['sh', '-c', 'echo $$ > "$1"; exec sleep 60', 'sh', pidFile],
        ...(how === 'timeout' ? { timeoutMs: 1500 } : { signal: ac.signal }),
      });
      if (how === 'abort') setTimeout(() => ac.abort(), 1500);
      const started = Date.now();
      await rejectsWith(call, how === 'timeout' ? 'TIMEOUT' : 'ABORTED');
      expect(Date.now() - started).toBeLessThan(5000);
      const pid = (await ssh.files.readFile(pidFile)).toString().trim();
      // Gone within a few seconds (TERM at once, KILL after a grace period).
      let alive = true;
      for (let i = 0; i < 30 && alive; i++) {
        alive = (await ssh.exec.exec({ argv: ['kill', '-0', pid] })).exitCode === 0;
        if (alive) await new Promise((r) => setTimeout(r, 200));
      }
      expect(alive, `remote pid ${pid} still running after ${how}`).toBe(false);
      await ssh.files.remove(pidFile);
    }
    await rejectsWith(ssh.exec.exec({ argv: ['true'], signal: AbortSignal.abort() }), 'ABORTED');
  });

  it('streams with spawn (stdout out, stdin in) and kill() ends the process', async () => {
    const p = ssh.exec.spawn({ argv: ['head', '-c', String(20 * 1024 * 1024), '/dev/zero'] });
    let n = 0;
    for await (const c of p.stdout) n += (c as Buffer).length;
    expect(n).toBe(20 * 1024 * 1024);
    expect((await p.wait()).exitCode).toBe(0);

    const sum = ssh.exec.spawn({ argv: ['sha256sum'] });
    const hash = createHash('sha256');
    for (let i = 0; i < 64; i++) {
      const chunk = randomBytes(64 * 1024);
      hash.update(chunk);
      if (!sum.stdin.write(chunk)) await new Promise((r) => sum.stdin.once('drain', r));
    }
    sum.stdin.end();
    let out = '';
    for await (const c of sum.stdout) out += c;
    expect(out.slice(0, 64)).toBe(hash.digest('hex'));

    const long = ssh.exec.spawn({ argv: ['sleep', '60'] });
    setTimeout(() => long.kill(), 500);
    const r = await long.wait();
    expect(r.exitCode === null ? r.signal : r.exitCode).toBe('SIGTERM');
  });

  /** Whether the remote process whose pid is in `pidFile` is gone within a few seconds. */
  const goneSoon = async (pidFile: string): Promise<string | undefined> => {
    const pid = (await ssh.files.readFile(pidFile)).toString().trim();
    for (let i = 0; i < 30; i++) {
      if ((await ssh.exec.exec({ argv: ['kill', '-0', pid] })).exitCode !== 0) return undefined;
      await new Promise((r) => setTimeout(r, 200));
    }
    return pid;
  };

  it('spawn: an abort while its stdout feeds a sink leaves nothing unhandled and kills the process', async () => {
    const dir = scratchDir('spawn-abort');
    const pidFile = `${dir}.pid`;
    try {
      const unhandled = await unhandledDuring(async () => {
        const ac = new AbortController();
        // As a device reader feeds a backup sink: the source reads a spawn's stdout, under the same signal.
        async function* reader() {
          const p = ssh.exec.spawn({
            argv: ['sh', '-c', 'echo $$ > "$1"; exec cat /dev/zero', 'sh', pidFile],
            signal: ac.signal,
          });
          p.stdin.end();
          try {
            for await (const chunk of p.stdout) yield chunk as Uint8Array;
            await p.wait();
          } finally {
            p.kill();
          }
        }
        const write = createSshSink(ssh, dir).writeFile('disk.raw', reader(), {
          signal: ac.signal,
          onProgress: (p) => {
            if (p.processedBytes >= 8 * 1024 * 1024) ac.abort();
          },
        });
        await rejectsWith(within(write, 30_000, 'writeFile'), 'ABORTED');
        expect(await goneSoon(pidFile), 'remote reader still running').toBeUndefined();
      });
      expect(unhandled).toEqual([]);
      // The same with nobody reading the aborted process's streams until later.
      const ac = new AbortController();
      const p = ssh.exec.spawn({
        argv: [
          'sh',
          '-c',
          'echo $$ > "$1"; while :; do echo out; echo err >&2; sleep 0.05; done',
          'sh',
          pidFile,
        ],
        signal: ac.signal,
      });
      p.stdin.end();
      await new Promise((r) => setTimeout(r, 500));
      ac.abort();
      await rejectsWith(p.wait(), 'ABORTED');
      await rejectsWith(within(p.stdout.toArray(), 10_000, 'stdout'), 'ABORTED');
      await rejectsWith(within(p.stderr.toArray(), 10_000, 'stderr'), 'ABORTED');
      expect(await goneSoon(pidFile), 'remote process still running').toBeUndefined();
    } finally {
      await ssh.exec.exec({ argv: ['rm', '-rf', '--', dir, pidFile] });
    }
  });

  it('spawn: a failing stdin source kills the remote process; then wait() rejects with REMOTE and the cause', async () => {
    const pidFile = `${scratchDir('spawn-stdin')}.pid`;
    try {
      const broken = new Error('the source broke');
      async function* source() {
        yield Buffer.alloc(64 * 1024, 1);
        await new Promise((r) => setTimeout(r, 1000));
        throw broken;
      }
      const p = ssh.exec.spawn({
        argv: ['sh', '-c', 'echo $$ > "$1"; exec cat > /dev/null', 'sh', pidFile],
        stdin: source(),
      });
      p.stdout.resume();
      p.stderr.resume();
      const err = await rejectsWith(within(p.wait(), 10_000, 'wait()'), 'REMOTE');
      expect(err.message).toMatch(/stdin source failed: the source broke/);
      expect(err.cause).toBe(broken);
      // Already gone when wait() rejects, as with local exec.
      const pid = (await ssh.files.readFile(pidFile)).toString().trim();
      expect(
        (await ssh.exec.exec({ argv: ['kill', '-0', pid] })).exitCode,
        'remote cat still running',
      ).not.toBe(0);
      // A process that exits early, closing its stdin, is no error.
      async function* endless() {
        for (;;) yield Buffer.alloc(64 * 1024);
      }
      const early = ssh.exec.spawn({ argv: ['head', '-c', '1000'], stdin: endless() });
      early.stdout.resume();
      early.stderr.resume();
      expect(await within(early.wait(), 10_000, 'wait()')).toMatchObject({ exitCode: 0 });
    } finally {
      await ssh.exec.exec({ argv: ['rm', '-f', '--', pidFile] });
    }
  });

  it('multiplexes many concurrent calls over one connection (more than maxChannels)', async () => {
    const results = await Promise.all(
      Array.from({ length: 25 }, (_, i) =>
        ssh.exec.exec({ argv: ['sh', '-c', 'sleep 0.2; echo "$1"', 'sh', String(i)] }),
      ),
    );
    expect(results.map((r) => Number(r.stdout.toString()))).toEqual(Array.from({ length: 25 }, (_, i) => i));
  });

  it('rejects bad input before running anything', async () => {
    await expect(ssh.exec.exec({ argv: [] })).rejects.toThrow(TypeError);
    await rejectsWith(ssh.exec.exec({ argv: ['echo', 'a\0b'] }), 'INVALID_ARGUMENT');
    await rejectsWith(ssh.exec.exec({ argv: ['env'], env: { 'A-B': '1' } }), 'INVALID_ARGUMENT');
  });
});

describe.skipIf(!sshd.available)(liveTitle('files over SFTP'), { retry: 0 }, () => {
  let ssh: SshClient;
  let dir: string;
  beforeAll(async () => {
    ssh = await connectRoot();
    dir = scratchDir('files');
    await ssh.files.mkdir(`${dir}/sub/deeper`, { recursive: true });
  });
  afterAll(async () => {
    if (ssh && !ssh.closed) {
      await ssh.exec.exec({ argv: ['rm', '-rf', '--', dir] });
      await ssh.close();
    }
  });

  it('round-trips bytes, stats, lists and streams', async () => {
    const data = randomBytes(1024 * 1024 + 17);
    await ssh.files.writeFile(`${dir}/a.bin`, data, { mode: 0o640 });
    expect((await ssh.files.readFile(`${dir}/a.bin`)).equals(data)).toBe(true);
    await ssh.files.writeFile(`${dir}/a.bin`, 'replaced');
    expect((await ssh.files.readFile(`${dir}/a.bin`)).toString()).toBe('replaced');
    await ssh.files.writeFile(`${dir}/b.bin`, data, { mode: 0o640 });
    const st = await ssh.files.stat(`${dir}/b.bin`);
    expect(st).toMatchObject({ name: 'b.bin', type: 'file', size: data.length });
    const mode = await ssh.exec.exec({ argv: ['stat', '-c', '%a', `${dir}/b.bin`] });
    expect(mode.stdout.toString().trim()).toBe('640');
    await ssh.exec.exec({ argv: ['ln', '-s', 'b.bin', `${dir}/link`] });
    const list = await ssh.files.list(dir);
    expect(list.map((e) => [e.name, e.type])).toEqual([
      ['a.bin', 'file'],
      ['b.bin', 'file'],
      ['link', 'symlink'],
      ['sub', 'directory'],
    ]);
    const stream = await ssh.files.createReadStream(`${dir}/b.bin`, { start: 1000 });
    const parts: Buffer[] = [];
    for await (const c of stream) parts.push(c as Buffer);
    expect(Buffer.concat(parts).equals(data.subarray(1000))).toBe(true);
    await ssh.files.remove(`${dir}/link`);
    await ssh.files.remove(`${dir}/sub/deeper`);
    expect((await ssh.files.list(`${dir}/sub`)).length).toBe(0);
    // No temporary files are left behind by writeFile.
    expect((await ssh.files.list(dir)).map((e) => e.name)).toEqual(['a.bin', 'b.bin', 'sub']);
  });

  it('maps SFTP status codes: NOT_FOUND, PERMISSION_DENIED', async () => {
    await rejectsWith(ssh.files.stat(`${dir}/nope`), 'NOT_FOUND');
    await rejectsWith(ssh.files.readFile(`${dir}/nope`), 'NOT_FOUND');
    await rejectsWith(ssh.files.list(`${dir}/nope`), 'NOT_FOUND');
    await rejectsWith(ssh.files.remove(`${dir}/nope`), 'NOT_FOUND');
    await rejectsWith(ssh.files.createReadStream(`${dir}/nope`), 'NOT_FOUND');
    const e = env();
    await using user = await connectSsh({
      ...rootOptions({ username: e.HVKIT_SSH_PASSWORD_USER }),
      auth: { password: e.HVKIT_SSH_PASSWORD },
    });
    await rejectsWith(user.files.writeFile('/root/hvkit-denied', 'x'), 'PERMISSION_DENIED');
    await rejectsWith(user.files.list('/root'), 'PERMISSION_DENIED');
  });
});

describe.skipIf(!sshd.available)(liveTitle('dialer'), { retry: 0 }, () => {
  let ssh: SshClient;
  beforeAll(async () => {
    ssh = await connectRoot();
  });
  afterAll(async () => {
    await ssh?.close();
  });

  it('round-trips bytes through a remote cat and ends when the channel closes', async () => {
    const dialer = ssh.dialer(['cat']);
    expect(dialer.target).toContain(ssh.target);
    const stream = await dialer.dial({ timeoutMs: 10_000 });
    const data = randomBytes(4 * 1024 * 1024);
    const received: Buffer[] = [];
    const done = new Promise<void>((resolve, reject) => {
      stream.on('data', (c: Buffer) => received.push(c));
      stream.on('end', resolve);
      stream.on('error', reject);
    });
    stream.end(data);
    await done;
    expect(Buffer.concat(received).equals(data)).toBe(true);
  });

  it('fails the stream with REMOTE and the command stderr when the command fails', async () => {
    const stream = await ssh.dialer(['nc', '-U', '/nonexistent/hvkit.sock']).dial();
    const err = await new Promise<unknown>((resolve) => {
      stream.on('error', resolve);
      stream.on('end', () => resolve(undefined));
      stream.resume();
    });
    expect(HvkitError.isInstance(err, 'REMOTE')).toBe(true);
    expect((err as HvkitError).message).toMatch(/exited with status \d+|killed/);
  });

  it('carries several streams at once', async () => {
    const streams = await Promise.all([1, 2, 3].map(() => ssh.dialer(['cat']).dial()));
    const outs = await Promise.all(
      streams.map(async (s, i) => {
        s.end(`stream ${i}`);
        let out = '';
        for await (const c of s) out += c;
        return out;
      }),
    );
    expect(outs).toEqual(['stream 0', 'stream 1', 'stream 2']);
  });
});

describe.skipIf(!sshd.available)(liveTitle('connection loss and close'), { retry: 0 }, () => {
  it('fails pending calls with CONNECTION_LOST when the server drops the connection', async () => {
    const ssh = await connectRoot();
    const pending = ssh.exec.exec({ argv: ['sleep', '30'] });
    const dialed = await ssh.dialer(['cat']).dial();
    const dialError = new Promise((resolve) => dialed.on('error', resolve));
    // The parent of a session's process is the sshd process serving this connection.
    const killer = ssh.exec.exec({ argv: ['sh', '-c', 'kill -KILL "$PPID"'] });
    await rejectsWith(pending, 'CONNECTION_LOST');
    await killer.catch(() => {});
    expect(HvkitError.isInstance(await dialError, 'CONNECTION_LOST')).toBe(true);
    expect(ssh.closed).toBe(true);
    await rejectsWith(ssh.exec.exec({ argv: ['true'] }), 'CONNECTION_LOST');
    await rejectsWith(ssh.files.stat('/'), 'CONNECTION_LOST');
    await ssh.close();
  });

  it('close() fails pending calls with CONNECTION_LOST and is idempotent; await using closes', async () => {
    const ssh = await connectRoot();
    const pending = rejectsWith(ssh.exec.exec({ argv: ['sleep', '30'] }), 'CONNECTION_LOST');
    await new Promise((r) => setTimeout(r, 200));
    await ssh.close();
    await pending;
    await ssh.close();
    let inner: SshClient | undefined;
    {
      await using c = await connectRoot();
      inner = c;
      expect(c.closed).toBe(false);
    }
    expect(inner.closed).toBe(true);
  });
});

describe.skipIf(!sshd.available)(liveTitle('onClose'), { retry: 0 }, () => {
  it('calls its listener once with CONNECTION_LOST when the connection closes; a listener added later is called too, an unregistered one never', async () => {
    const ssh = await connectRoot();
    const seen: HvkitError[] = [];
    let dropped = 0;
    ssh.onClose((error) => seen.push(error));
    const off = ssh.onClose(() => dropped++);
    off();
    await ssh.close();
    expect(seen).toHaveLength(1);
    expect(seen[0]).toMatchObject({ code: 'CONNECTION_LOST' });
    const late = await new Promise<HvkitError>((resolve) => ssh.onClose(resolve));
    expect(late).toMatchObject({ code: 'CONNECTION_LOST' });
    await ssh.close();
    expect(seen).toHaveLength(1);
    expect(dropped).toBe(0);
    expect(() => ssh.onClose(undefined as never)).toThrow(TypeError);
  });
});
