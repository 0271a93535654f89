/**
 * Live tests of the SSH backup sink against the real sshd peer (scripts/peers/sshd.sh start).
 */
import { createHash } from 'node:crypto';
import { HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectRoot,
  env,
  generated,
  liveTitle,
  rejectsWith,
  remoteSha256,
  rootOptions,
  scratchDir,
  sshd,
} from '../test/sshd-peer';
import { connectSsh, createSshSink, type SshClient } from './index';

const MiB = 1024 * 1024;

describe.skipIf(!sshd.available)(liveTitle('SSH backup sink'), { retry: 0 }, () => {
  let ssh: SshClient;
  let dir: string;
  beforeAll(async () => {
    ssh = await connectRoot();
    dir = scratchDir('sink');
  });
  afterAll(async () => {
    if (ssh && !ssh.closed) {
      await ssh.exec.exec({ argv: ['rm', '-rf', '--', dir] });
      await ssh.close();
    }
  });

  /** Names in `sub` of the sink dir, temporary files included. */
  const names = async (sub = '') =>
    (await ssh.files.list(sub ? `${dir}/${sub}` : dir).catch(() => [])).map((e) => e.name);

  for (const [method, checksumCommand] of [
    ['exec', undefined],
    ['sftp', 'sha256sum'],
  ] as const) {
    it(`writes, verifies and renames a file into place (${method}, ${checksumCommand ?? 'default checksum tool'})`, async () => {
      const sink = createSshSink(ssh, dir, { method, checksumCommand });
      expect(sink.kind).toBe('ssh');
      expect(sink.location).toBe(`${ssh.target}${dir}`);
      const src = generated(5 * MiB + 123, 256 * 1024);
      const progress: number[] = [];
      const file = await sink.writeFile(`${method}/disk0.raw`, src, {
        expectedBytes: 5 * MiB + 123,
        onProgress: (p) => progress.push(p.processedBytes),
      });
      expect(file).toEqual({ name: `${method}/disk0.raw`, bytes: 5 * MiB + 123, sha256: src.sha256 });
      expect(await remoteSha256(ssh, `${dir}/${method}/disk0.raw`)).toBe(src.sha256);
      expect(progress.at(-1)).toBe(5 * MiB + 123);
      expect(progress.every((v, i) => i === 0 || v >= (progress[i - 1] as number))).toBe(true);
      expect(await names(method)).toEqual(['disk0.raw']);
      const mode = await ssh.exec.exec({ argv: ['stat', '-c', '%a', `${dir}/${method}/disk0.raw`] });
      expect(mode.stdout.toString().trim()).toBe('600');
      // Overwriting replaces the file atomically.
      const again = generated(1000);
      await sink.writeFile(`${method}/disk0.raw`, again);
      expect(await remoteSha256(ssh, `${dir}/${method}/disk0.raw`)).toBe(again.sha256);
      await sink.removeFile(`${method}/disk0.raw`);
      await sink.removeFile(`${method}/disk0.raw`);
      expect(await names(method)).toEqual([]);
    });
  }

  it('writes an empty file', async () => {
    const sink = createSshSink(ssh, dir);
    const file = await sink.writeFile('empty', generated(0));
    expect(file).toEqual({ name: 'empty', bytes: 0, sha256: createHash('sha256').digest('hex') });
    expect((await ssh.files.stat(`${dir}/empty`)).size).toBe(0);
  });

  it('rejects a corrupted upload (sha256 mismatch on the remote side) and leaves nothing behind', async () => {
    const sink = createSshSink(ssh, dir);
    const src = generated(8 * MiB, 64 * 1024);
    async function* corrupting() {
      let n = 0;
      for await (const chunk of src) {
        yield chunk;
        n += chunk.length;
        if (n === 2 * MiB) {
          // Wait until the remote temporary file has data, then flip its first byte behind the sink's back.
          const script =
            'for i in $(seq 1 100); do for f in "$1"/.bad.bin.*.hvkit-tmp; do if [ -s "$f" ]; then printf Z | dd of="$f" bs=1 count=1 conv=notrunc 2>/dev/null; exit 0; fi; done; sleep 0.05; done; exit 1';
          const r = await ssh.exec.exec({ argv: ['sh', '-c', script, 'sh', dir] });
          expect(r.exitCode).toBe(0);
        }
      }
    }
    const err = await rejectsWith(sink.writeFile('bad.bin', corrupting()), 'PROTOCOL');
    expect(err.backendCode).toBe('SHA256_MISMATCH');
    expect((await names()).filter((n) => n.startsWith('.bad.bin') || n === 'bad.bin')).toEqual([]);
  });

  it('rejects a size other than expectedBytes with PROTOCOL, leaving nothing behind', async () => {
    const sink = createSshSink(ssh, dir);
    await rejectsWith(sink.writeFile('short.bin', generated(1000), { expectedBytes: 2000 }), 'PROTOCOL');
    await rejectsWith(sink.writeFile('long.bin', generated(3 * MiB), { expectedBytes: MiB }), 'PROTOCOL');
    expect((await names()).filter((n) => n.includes('short') || n.includes('long'))).toEqual([]);
  });

  it('on abort or a failing source: removes the temporary file and rejects', async () => {
    const sink = createSshSink(ssh, dir);
    const ac = new AbortController();
    async function* slow() {
      for (let i = 0; ; i++) {
        yield Buffer.alloc(64 * 1024, i);
        if (i === 20) setTimeout(() => ac.abort(), 10);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    await rejectsWith(sink.writeFile('aborted.bin', slow(), { signal: ac.signal }), 'ABORTED');

    const boom = new Error('source failed');
    async function* failing() {
      yield Buffer.alloc(MiB);
      throw boom;
    }
    await expect(sink.writeFile('failed.bin', failing())).rejects.toBe(boom);
    expect((await names()).filter((n) => n.includes('aborted') || n.includes('failed'))).toEqual([]);
    await rejectsWith(
      sink.writeFile('pre-aborted.bin', generated(10), { signal: AbortSignal.abort() }),
      'ABORTED',
    );
  });

  it('fails promptly when the remote side cannot write (no permission), leaving nothing behind', async () => {
    const e = env();
    await using user = await connectSsh({
      ...rootOptions({ username: e.HVKIT_SSH_PASSWORD_USER }),
      auth: { password: e.HVKIT_SSH_PASSWORD },
    });
    for (const method of ['exec', 'sftp'] as const) {
      const sink = createSshSink(user, '/', { method });
      const started = Date.now();
      await rejectsWith(
        sink.writeFile(`hvkit-denied-${method}.bin`, generated(8 * MiB)),
        'PERMISSION_DENIED',
      );
      expect(Date.now() - started).toBeLessThan(20_000);
    }
    const left = await ssh.exec.exec({ argv: ['sh', '-c', 'ls -a / | grep -c hvkit-denied || true'] });
    expect(left.stdout.toString().trim()).toBe('0');
  });

  it('refuses names that leave the directory', async () => {
    const sink = createSshSink(ssh, dir);
    for (const name of ['../x', '/etc/x', 'a/../../x', '', 'a//b', './x', 'a\\b', 'a\0b']) {
      await rejectsWith(sink.writeFile(name, generated(1)), 'INVALID_ARGUMENT');
    }
  });
});

describe.skipIf(!sshd.available)(liveTitle('SSH backup sink: symbolic links and names'), { retry: 0 }, () => {
  let ssh: SshClient;
  let base: string;
  let counter = 0;
  beforeAll(async () => {
    ssh = await connectRoot();
    base = scratchDir('sink-links');
  });
  afterAll(async () => {
    if (ssh && !ssh.closed) {
      await ssh.exec.exec({ argv: ['rm', '-rf', '--', base] });
      await ssh.close();
    }
  });

  /** Runs a shell script on the peer (arguments as $1...); fails the test on a non-zero exit. */
  const sh = async (script: string, ...args: string[]) => {
    const r = await ssh.exec.exec({ argv: ['sh', '-c', script, 'sh', ...args] });
    expect(r.exitCode, r.stderr.toString()).toBe(0);
    return r.stdout.toString();
  };

  /** A fresh sink root and an `outside` directory beside it, on the peer. */
  const plant = async () => {
    const root = `${base}/t${++counter}/root`;
    const outside = `${base}/t${counter}/outside`;
    await sh('mkdir -p -- "$1" "$2"', root, outside);
    return { root, outside };
  };

  /** Every entry below `dir` on the peer (hidden ones included), without following links. */
  const tree = async (dir: string) =>
    (await sh('cd -- "$1" && find . -mindepth 1 | sort', dir)).split('\n').filter(Boolean);

  for (const method of ['exec', 'sftp'] as const) {
    it(`refuses a symlinked subdirectory planted in the remote root (${method}): nothing is written outside, nothing deleted through it`, async () => {
      const { root, outside } = await plant();
      await sh('ln -s -- "$2" "$1/guest-1" && echo keep > "$2/victim.raw"', root, outside);
      const sink = createSshSink(ssh, root, { method });
      for (const name of ['guest-1/disk.raw', 'guest-1/new/disk.raw']) {
        const error = await rejectsWith(sink.writeFile(name, generated(64 * 1024)), 'CONFLICT');
        expect(error.message).toContain('symbolic link');
        expect(error.details?.path).toBe(`${root}/guest-1`);
      }
      const removal = await rejectsWith(sink.removeFile('guest-1/victim.raw'), 'CONFLICT');
      expect(removal.details?.path).toBe(`${root}/guest-1`);
      expect(await tree(outside)).toEqual(['./victim.raw']);
      expect(await tree(root)).toEqual(['./guest-1']);
      expect(await sh('readlink -- "$1"', `${root}/guest-1`)).toBe(`${outside}\n`);
    });

    it(`refuses a link deeper down and a file where a directory is needed (${method})`, async () => {
      const { root, outside } = await plant();
      await sh(
        'mkdir -- "$1/a" && ln -s -- "$2" "$1/a/b" && ln -s . "$1/loop" && echo x > "$1/file"',
        root,
        outside,
      );
      const sink = createSshSink(ssh, root, { method });
      for (const name of ['a/b/disk.raw', 'a/b/c/disk.raw', 'loop/disk.raw']) {
        await rejectsWith(sink.writeFile(name, generated(1000)), 'CONFLICT');
      }
      const notDir = await rejectsWith(sink.writeFile('file/disk.raw', generated(10)), 'CONFLICT');
      expect(notDir.backendCode).toBe('ENOTDIR');
      expect(await tree(outside)).toEqual([]);
      expect(await tree(root)).toEqual(['./a', './a/b', './file', './loop']);
    });

    it(`replaces a link at the file name itself and follows the remote directory when it is a link (${method})`, async () => {
      const { root, outside } = await plant();
      await sh('echo untouched > "$2/target" && ln -s -- "$2/target" "$1/disk.raw"', root, outside);
      const sink = createSshSink(ssh, root, { method });
      const src = generated(100_000);
      await sink.writeFile('disk.raw', src);
      expect(await sh('[ -f "$1" ] && [ ! -L "$1" ] && echo regular', `${root}/disk.raw`)).toBe('regular\n');
      expect(await remoteSha256(ssh, `${root}/disk.raw`)).toBe(src.sha256);
      expect(await sh('cat -- "$1"', `${outside}/target`)).toBe('untouched\n');
      // The root itself may be a link: the caller chose it.
      const viaLink = createSshSink(ssh, `${root}/../root-link`, { method });
      await sh('ln -s -- "$1" "$1/../root-link"', root);
      await viaLink.writeFile('guest/x.raw', generated(10));
      expect(await tree(root)).toContain('./guest/x.raw');
      await viaLink.removeFile('guest/x.raw');
      await viaLink.removeFile('guest/x.raw');
      expect(await tree(root)).not.toContain('./guest/x.raw');
    });

    it(`writes 255-byte names in any script and refuses longer ones with INVALID_ARGUMENT (${method})`, async () => {
      const { root } = await plant();
      const sink = createSshSink(ssh, root, { method });
      for (const name of ['日'.repeat(85), 'x'.repeat(255)]) {
        const src = generated(1000);
        await sink.writeFile(`${name}/${name}`, src);
        expect(await remoteSha256(ssh, `${root}/${name}/${name}`)).toBe(src.sha256);
      }
      for (const name of ['x'.repeat(256), 'a\nb', 'evil\u202Eexe.raw', 'guest\uFF0Fdisk']) {
        await rejectsWith(sink.writeFile(name, generated(1)), 'INVALID_ARGUMENT');
      }
    });
  }

  it('a remote path too long for the host is INVALID_ARGUMENT, not REMOTE', async () => {
    const { root } = await plant();
    const deep = `${root}/${Array.from({ length: 17 }, () => 'd'.repeat(250)).join('/')}`;
    await sh('mkdir -p -- "$1"', deep);
    for (const method of ['exec', 'sftp'] as const) {
      const sink = createSshSink(ssh, deep, { method });
      await rejectsWith(
        sink.writeFile(`${'e'.repeat(250)}/${'f'.repeat(250)}`, generated(10)),
        'INVALID_ARGUMENT',
      );
    }
  });

  it('never writes outside nor deletes through a link while an attacker swaps a subdirectory for one', async () => {
    const { root, outside } = await plant();
    await sh('mkdir -- "$1/sub"', root);
    // The attacker loops on the peer, swapping root/sub for a link to `outside` and back.
    const script =
      'while :; do mv -T -- "$1/sub" "$1/sub.real" 2>/dev/null; ln -s -- "$2" "$1/sub"; rm -f -- "$1/sub"; mv -T -- "$1/sub.real" "$1/sub" 2>/dev/null; done';
    const attacker = ssh.exec.spawn({ argv: ['sh', '-c', script, 'sh', root, outside] });
    attacker.stdout.resume();
    attacker.stderr.resume();
    const ended = attacker.wait().catch(() => undefined);
    try {
      const outcomes = new Map<string, number>();
      for (const method of ['exec', 'sftp'] as const) {
        const sink = createSshSink(ssh, root, { method });
        for (let i = 0; i < 12; i++) {
          let outcome = 'written';
          try {
            await sink.writeFile(`sub/${method}-${i}.raw`, generated(4096));
          } catch (error) {
            if (!HvkitError.isInstance(error)) throw error;
            outcome = error.code;
          }
          outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
          await sh('echo keep > "$1/victim.raw"', outside);
          await sink.removeFile('sub/victim.raw').catch((error: unknown) => {
            if (!HvkitError.isInstance(error)) throw error;
          });
          expect(await tree(outside), `${method} write ${i}`).toEqual(['./victim.raw']);
        }
      }
      expect(outcomes.get('written')).toBeGreaterThan(0);
      expect(outcomes.size).toBeGreaterThan(1);
    } finally {
      attacker.kill();
      // Gone before the next test (and the cleanup) touch the directory.
      await ended;
    }
  }, 180_000);
});
