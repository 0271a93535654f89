/**
 * Live tests of @hvkit/ssh against the lab VM peer (scripts/peers/lab-vm.sh start): a real remote Debian
 * 12 guest under QEMU, not this machine's loopback sshd. Host key pinning, exec, SFTP files and a backup
 * sink/source round trip with sha256 checked on both sides.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { artifactPath, type BackupManifest, readVerifiedFile, writeBackupManifest } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateParsableKeyPair } from '../test/key-pair';
import { connectLab, labEnv, labTitle, labVm } from '../test/lab-vm-peer';
import { generated, rejectsWith, remoteSha256, scratchDir } from '../test/sshd-peer';
import { createSshSink, createSshSource, fingerprintOf, type SshClient } from './index';

const MiB = 1024 * 1024;

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of iterable) parts.push(c);
  return Buffer.concat(parts);
}

async function* collectable(data: Uint8Array) {
  yield data;
}

/** A fresh ed25519 public key: its known_hosts key field and its SHA256 fingerprint. */
function otherHostKey(): { field: string; fingerprint: string } {
  const [type, base64] = generateParsableKeyPair('ed25519').public.trim().split(/\s+/) as [string, string];
  return { field: `${type} ${base64}`, fingerprint: fingerprintOf(Buffer.from(base64, 'base64')) };
}

describe.skipIf(!labVm.available)(
  labTitle('@hvkit/ssh against a remote Debian guest'),
  // Under TCG the guest's crypto is emulated: 6 MiB over ssh take seconds, more on a busy machine.
  { retry: 0, timeout: 120_000 },
  () => {
    let ssh: SshClient;
    let dir: string;
    let local: string;
    beforeAll(async () => {
      ssh = await connectLab();
      dir = scratchDir('lab');
      await ssh.files.mkdir(dir, { recursive: true });
      local = mkdtempSync(join(tmpdir(), 'hvkit-ssh-lab-'));
    });
    afterAll(async () => {
      rmSync(local, { recursive: true, force: true });
      if (ssh && !ssh.closed) {
        await ssh.exec.exec({ argv: ['rm', '-rf', '--', dir] });
        await ssh.close();
      }
    });

    const run = async (...argv: string[]) => {
      const r = await ssh.exec.exec({ argv, timeoutMs: 60_000 });
      expect(r.exitCode, r.stderr.toString()).toBe(0);
      return r.stdout.toString();
    };

    it('verifies the pinned host key; the remote is the Debian guest, not this machine', async () => {
      const e = labEnv();
      expect(ssh.target).toBe(`ssh://root@${e.HVKIT_LAB_SSH_HOST}:${e.HVKIT_LAB_SSH_PORT}`);
      expect(ssh.hostKey).toEqual({ type: 'ssh-ed25519', fingerprint: e.HVKIT_LAB_SSH_HOST_FINGERPRINT });
      expect((await run('uname', '-r')).trim()).toBe(e.HVKIT_LAB_KERNEL);
      expect((await run('hostname')).trim()).toBe('hvkit-lab');
      expect(await run('cat', '/etc/os-release')).toMatch(/^VERSION_ID="12"$/m);
      // Another kernel instance: its boot id differs from this machine's.
      const bootId = (await run('cat', '/proc/sys/kernel/random/boot_id')).trim();
      expect(bootId).toMatch(/^[0-9a-f-]{36}$/);
      expect(bootId).not.toBe(readFileSync('/proc/sys/kernel/random/boot_id', 'utf8').trim());
      // Pinning by fingerprint alone works too.
      await using pinned = await connectLab({ hostKey: { fingerprint: e.HVKIT_LAB_SSH_HOST_FINGERPRINT } });
      expect(pinned.hostKey.fingerprint).toBe(e.HVKIT_LAB_SSH_HOST_FINGERPRINT);
      expect((await pinned.exec.exec({ argv: ['true'] })).exitCode).toBe(0);
    });

    it('refuses a wrong pinned key: another key in known_hosts for the port, or another fingerprint', async () => {
      const e = labEnv();
      const other = otherHostKey();
      const file = join(local, 'known_hosts-wrong');
      writeFileSync(file, `[${e.HVKIT_LAB_SSH_HOST}]:${e.HVKIT_LAB_SSH_PORT} ${other.field}\n`);
      const changed = await rejectsWith(connectLab({ hostKey: { knownHostsFile: file } }), 'AUTH_FAILED');
      expect(changed.backendCode).toBe('HOST_KEY_MISMATCH');
      expect(changed.message).toContain(e.HVKIT_LAB_SSH_HOST_FINGERPRINT);
      const wrong = await rejectsWith(
        connectLab({ hostKey: { fingerprint: other.fingerprint } }),
        'AUTH_FAILED',
      );
      expect(wrong.backendCode).toBe('HOST_KEY_MISMATCH');
      expect(wrong.message).toContain(other.fingerprint);
      // A known_hosts entry for another port only is not this host's key.
      const elsewhere = join(local, 'known_hosts-elsewhere');
      const line = readFileSync(e.HVKIT_LAB_SSH_KNOWN_HOSTS, 'utf8').trim().split(/\s+/).slice(1).join(' ');
      writeFileSync(elsewhere, `[${e.HVKIT_LAB_SSH_HOST}]:${Number(e.HVKIT_LAB_SSH_PORT) + 1} ${line}\n`);
      const unknown = await rejectsWith(
        connectLab({ hostKey: { knownHostsFile: elsewhere } }),
        'AUTH_FAILED',
      );
      expect(unknown.backendCode).toBe('HOST_KEY_UNKNOWN');
    });

    it('exec: exit codes, stdout and stderr apart, a signal, stdin, and large output intact', async () => {
      const r = await ssh.exec.exec({
        argv: ['sh', '-c', 'echo out; echo "err $1" >&2; exit 7', 'sh', "it's"],
      });
      expect(r).toMatchObject({ exitCode: 7, signal: null });
      expect(r.stdout.toString()).toBe('out\n');
      expect(r.stderr.toString()).toBe("err it's\n");
      expect((await ssh.exec.exec({ argv: ['false'] })).exitCode).toBe(1);
      const missing = await ssh.exec.exec({ argv: ['hvkit-no-such-command'] });
      expect(missing.exitCode).toBe(127);
      expect(missing.stderr.toString()).toMatch(/not found/);
      const killed = await ssh.exec.exec({ argv: ['sh', '-c', 'kill -TERM $$'] });
      expect(killed).toMatchObject({ exitCode: null, signal: 'SIGTERM' });

      // Arguments travel verbatim, shell metacharacters included.
      const odd = ['a b', '$(id)', '`id`', '; rm -rf /', '*', "'", '"', '\\', 'ünï', ''];
      expect(await run('printf', '%s\\0', ...odd)).toBe(odd.map((a) => `${a}\0`).join(''));

      // 2 MiB through stdin, hashed on the guest.
      const input = randomBytes(2 * MiB);
      const hashed = await ssh.exec.exec({ argv: ['sha256sum'], stdin: input, timeoutMs: 60_000 });
      expect(hashed.stdout.toString().slice(0, 64)).toBe(sha(input));

      // About 5.9 MB of output, byte for byte what seq prints.
      const big = await ssh.exec.exec({ argv: ['seq', '1', '800000'], timeoutMs: 60_000 });
      const expected = `${Array.from({ length: 800000 }, (_, i) => i + 1).join('\n')}\n`;
      expect(big.stdout.length).toBe(expected.length);
      expect(sha(big.stdout)).toBe(sha(Buffer.from(expected)));
      // Beyond maxBuffer the call fails instead of growing without bound.
      await rejectsWith(ssh.exec.exec({ argv: ['seq', '1', '800000'], maxBuffer: 64 * 1024 }), 'PROTOCOL');
      // The connection is still usable.
      expect((await run('echo', 'still here')).trim()).toBe('still here');
    });

    it('files: write, stat, list, read back, rename and remove; errors are typed', async () => {
      const text = 'hello from hvkit\n';
      const data = randomBytes(MiB + 4321);
      await ssh.files.mkdir(`${dir}/files/sub`, { recursive: true });
      await ssh.files.writeFile(`${dir}/files/hello.txt`, text);
      await ssh.files.writeFile(`${dir}/files/sub/data.bin`, data, { mode: 0o640 });
      expect((await ssh.files.readFile(`${dir}/files/hello.txt`)).toString()).toBe(text);
      expect(sha(await ssh.files.readFile(`${dir}/files/sub/data.bin`))).toBe(sha(data));
      expect(await remoteSha256(ssh, `${dir}/files/sub/data.bin`)).toBe(sha(data));
      expect((await run('stat', '-c', '%a', `${dir}/files/sub/data.bin`)).trim()).toBe('640');
      expect(await ssh.files.stat(`${dir}/files/sub/data.bin`)).toMatchObject({
        name: 'data.bin',
        type: 'file',
        size: data.length,
      });
      const names = (await ssh.files.list(`${dir}/files`)).map((f) => [f.name, f.type]).sort();
      expect(names).toEqual([
        ['hello.txt', 'file'],
        ['sub', 'directory'],
      ]);
      await ssh.files.rename(`${dir}/files/hello.txt`, `${dir}/files/renamed.txt`);
      expect((await ssh.files.readFile(`${dir}/files/renamed.txt`)).toString()).toBe(text);
      await rejectsWith(ssh.files.stat(`${dir}/files/hello.txt`), 'NOT_FOUND');
      await rejectsWith(ssh.files.readFile(`${dir}/files/nothing`), 'NOT_FOUND');
      await ssh.files.remove(`${dir}/files/renamed.txt`);
      await rejectsWith(ssh.files.remove(`${dir}/files/renamed.txt`), 'NOT_FOUND');
      const stream = await ssh.files.createReadStream(`${dir}/files/sub/data.bin`, { start: 4321 });
      expect(sha(await collect(stream))).toBe(sha(data.subarray(4321)));
    });

    for (const method of ['exec', 'sftp'] as const) {
      it(`backup sink then source round trip of 6 MiB (${method}); sha256 checked on both sides`, async () => {
        const root = `${dir}/backups-${method}`;
        const sink = createSshSink(ssh, root, { method });
        const path = artifactPath('lab-guest', `20261207T150000Z-full-${method}`);
        const total = 6 * MiB + 777;
        const src = generated(total, 256 * 1024);
        const progress: number[] = [];
        const file = await sink.writeFile(`${path}/disk-vda.raw`, src, {
          expectedBytes: total,
          onProgress: (p) => progress.push(p.processedBytes),
        });
        // The sink's own remote check, then sha256sum run by hand on the guest, then a local re-read.
        expect(file).toEqual({ name: `${path}/disk-vda.raw`, bytes: total, sha256: src.sha256 });
        expect(progress.at(-1)).toBe(total);
        expect(await remoteSha256(ssh, `${root}/${path}/disk-vda.raw`)).toBe(src.sha256);
        const definition = Buffer.from('{"name":"lab-guest"}');
        await sink.writeFile(`${path}/guest.json`, collectable(definition));
        const manifest: BackupManifest = {
          format: 'hvkit-backup',
          version: 1,
          specificationVersion: 'v1',
          adapter: 'in-memory',
          id: `20261207T150000Z-full-${method}`,
          kind: 'full',
          method: 'in-memory-stream',
          guest: { id: 'id-lab-guest', name: 'lab-guest' },
          startedAt: '2026-12-07T15:00:00.000Z',
          completedAt: '2026-12-07T15:00:01.000Z',
          consistency: 'crash',
          chain: { id: `20261207T150000Z-full-${method}`, position: 0 },
          files: [
            { name: 'guest.json', role: 'definition', bytes: definition.length, sha256: sha(definition) },
            {
              name: 'disk-vda.raw',
              role: 'disk',
              bytes: total,
              sha256: src.sha256,
              disk: { device: 'vda', format: 'raw', capacityBytes: total },
            },
          ],
        };
        await writeBackupManifest(sink, path, manifest);

        const source = createSshSource(ssh, root);
        const listed = await source.list({ guest: 'lab-guest' });
        expect(listed.map((a) => [a.path, a.complete])).toEqual([[path, true]]);
        expect(await source.readManifest(path)).toEqual(manifest);
        const disk = manifest.files[1] as BackupManifest['files'][number];
        const back = await collect(readVerifiedFile(source, path, disk));
        expect(back.length).toBe(total);
        expect(sha(back)).toBe(src.sha256);
        // A byte flipped on the guest is caught on the way back.
        await run(
          'sh',
          '-c',
          `printf '\\377' | dd of="$1" bs=1 seek=4097 conv=notrunc status=none`,
          'sh',
          `${root}/${path}/disk-vda.raw`,
        );
        const error = await rejectsWith(collect(readVerifiedFile(source, path, disk)), 'INVALID_ARGUMENT');
        expect(error.details).toMatchObject({ reason: 'artifact-mismatch' });
      });
    }
  },
);
