/**
 * Live tests of the SSH backup sink against the real sshd peer (scripts/peers/sshd.sh start).
 */
import { createHash } from 'node:crypto';
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
