/**
 * Live tests of the SSH backup source (and the SSH sink's removeIncomplete) against the real sshd peer.
 */
import { createHash } from 'node:crypto';
import {
  artifactPath,
  BACKUP_MANIFEST_FILE,
  type BackupManifest,
  readVerifiedFile,
  resolveRestoreChain,
  writeBackupManifest,
} from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRoot, liveTitle, rejectsWith, scratchDir, sshd } from '../test/sshd-peer';
import { createSshSink, createSshSource, type SshClient } from './index';

const MiB = 1024 * 1024;

async function* bytes(data: Uint8Array, size = 256 * 1024) {
  for (let at = 0; at < data.length; at += size) yield data.subarray(at, at + size);
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

async function collect(iterable: AsyncIterable<Uint8Array>): Promise<Buffer> {
  const parts: Uint8Array[] = [];
  for await (const c of iterable) parts.push(c);
  return Buffer.concat(parts);
}

describe.skipIf(!sshd.available)(liveTitle('SSH backup source'), { retry: 0 }, () => {
  let ssh: SshClient;
  let dir: string;
  beforeAll(async () => {
    ssh = await connectRoot();
    dir = scratchDir('source');
  });
  afterAll(async () => {
    if (ssh && !ssh.closed) {
      await ssh.exec.exec({ argv: ['rm', '-rf', '--', dir] });
      await ssh.close();
    }
  });

  const sh = async (script: string) => {
    const r = await ssh.exec.exec({ argv: ['sh', '-c', script, 'test', dir] });
    expect(r.exitCode, r.stderr.toString()).toBe(0);
  };

  /** Writes an artifact through the SSH sink: definition, disk, then (unless incomplete) the manifest. */
  async function artifact(id: string, guestName: string, disk: Uint8Array, complete = true) {
    const sink = createSshSink(ssh, dir);
    const path = artifactPath(guestName, id);
    const definition = new TextEncoder().encode(`{"name":"${guestName}"}`);
    await sink.writeFile(`${path}/guest.json`, bytes(definition));
    await sink.writeFile(`${path}/disk-vda.raw`, bytes(disk));
    const manifest: BackupManifest = {
      format: 'hvkit-backup',
      version: 1,
      specificationVersion: 'v1',
      adapter: 'in-memory',
      id,
      kind: 'full',
      method: 'in-memory-stream',
      guest: { id: `id-${guestName}`, name: guestName },
      startedAt: '2026-12-07T12:00:00.000Z',
      completedAt: '2026-12-07T12:00:01.000Z',
      consistency: 'crash',
      chain: { id, position: 0 },
      files: [
        { name: 'guest.json', role: 'definition', bytes: definition.length, sha256: sha(definition) },
        {
          name: 'disk-vda.raw',
          role: 'disk',
          bytes: disk.length,
          sha256: sha(disk),
          disk: { device: 'vda', format: 'raw', capacityBytes: disk.length },
        },
      ],
    };
    if (complete) await writeBackupManifest(sink, path, manifest);
    return { path, manifest };
  }

  it('lists, reads manifests and streams files; a verified read catches a flipped byte', async () => {
    const disk = new Uint8Array(3 * MiB + 17);
    for (let i = 0; i < disk.length; i++) disk[i] = (i * 7919) & 0xff;
    const a = await artifact('20261207T120000Z-full-a', 'web', disk);
    const b = await artifact('20261207T130000Z-full-b', 'web', disk.subarray(0, 1000), false);
    const c = await artifact('20261207T110000Z-full-c', 'db', disk.subarray(0, 10));
    const source = createSshSource(ssh, dir);
    expect(source.kind).toBe('ssh');
    expect(source.location).toBe(`${ssh.target}${dir}`);
    const all = await source.list();
    expect(all.map((l) => [l.path, l.complete])).toEqual([
      [c.path, true],
      [a.path, true],
      [b.path, false],
    ]);
    expect(all[1]?.manifest).toEqual(a.manifest);
    expect((await source.list({ guest: 'db' })).map((l) => l.path)).toEqual([c.path]);
    expect(await source.readManifest(a.path)).toEqual(a.manifest);
    const got = await collect(source.readFile(`${a.path}/disk-vda.raw`));
    expect(sha(got)).toBe(sha(disk));
    const chain = await resolveRestoreChain(source, { guest: 'web' });
    expect(chain.target.path).toBe(a.path);
    const file = a.manifest.files[1] as BackupManifest['files'][number];
    expect((await collect(readVerifiedFile(source, a.path, file))).length).toBe(disk.length);
    // Flip one byte on the remote side.
    await sh(`printf '\\377' | dd of="$1/${a.path}/disk-vda.raw" bs=1 seek=12345 conv=notrunc status=none`);
    const error = await rejectsWith(collect(readVerifiedFile(source, a.path, file)), 'INVALID_ARGUMENT');
    expect(error.details).toMatchObject({ reason: 'artifact-mismatch', file: `${a.path}/disk-vda.raw` });
    await rejectsWith(collect(source.readFile(`${a.path}/disk-vda.raw`, { maxBytes: MiB })), 'PROTOCOL');
    await rejectsWith(collect(source.readFile(`${a.path}/nothing`)), 'NOT_FOUND');
    await rejectsWith(source.readManifest(b.path), 'NOT_FOUND');
    expect(await createSshSource(ssh, `${dir}/missing`).list()).toEqual([]);
  });

  it('never reads through a symbolic link, and refuses names with ..', async () => {
    await artifact('20261207T140000Z-full-l', 'links', new Uint8Array(100));
    await sh(
      'mkdir -p "$1.outside" && echo secret > "$1.outside/secret" && ' +
        'ln -s "$1.outside/secret" "$1/links/20261207T140000Z-full-l/file-link" && ' +
        'ln -s "$1.outside" "$1/links/dir-link" && ln -s "$1.outside" "$1/guest-link"',
    );
    try {
      const source = createSshSource(ssh, dir);
      await rejectsWith(collect(source.readFile('links/20261207T140000Z-full-l/file-link')), 'CONFLICT');
      await rejectsWith(collect(source.readFile('links/dir-link/secret')), 'CONFLICT');
      await rejectsWith(collect(source.readFile('guest-link/secret')), 'CONFLICT');
      await rejectsWith(source.readManifest('links/dir-link'), 'CONFLICT');
      await rejectsWith(collect(source.readFile('links/20261207T140000Z-full-l')), 'CONFLICT');
      expect(() => source.readFile('../etc/passwd')).toThrow(/"\.\." segment/);
      const listed = (await source.list()).map((l) => l.path);
      expect(listed.filter((p) => p.includes('-link'))).toEqual([]);
      expect(listed).toContain('links/20261207T140000Z-full-l');
    } finally {
      await sh('rm -rf -- "$1.outside"');
    }
  });

  it('aborts a read in progress', async () => {
    const big = await artifact('20261207T150000Z-full-big', 'big', new Uint8Array(16 * MiB));
    const source = createSshSource(ssh, dir);
    const controller = new AbortController();
    let seen = 0;
    const error = await rejectsWith(
      (async () => {
        for await (const c of source.readFile(`${big.path}/disk-vda.raw`, { signal: controller.signal })) {
          seen += c.byteLength;
          if (seen > MiB) controller.abort();
        }
      })(),
      'ABORTED',
    );
    expect(error.message).toMatch(/abort/i);
    expect(seen).toBeLessThan(16 * MiB);
  });

  it('the SSH sink removes incomplete artifacts of a guest, keeping complete ones, live runs and links', async () => {
    const done = await artifact('20261207T160000Z-full-d', 'tidy', new Uint8Array(10));
    const crashed = await artifact('20261207T170000Z-full-e', 'tidy', new Uint8Array(10), false);
    const running = await artifact('20261207T180000Z-full-f', 'tidy', new Uint8Array(10), false);
    await sh(
      `mkdir -p "$1.keep" && echo x > "$1.keep/f" && ln -s "$1.keep" "$1/tidy/20261207T190000Z-full-link" && ` +
        `touch "$1/${crashed.path}/.disk-vdb.raw.0a0b0c0d0e0f.hvkit-tmp"`,
    );
    try {
      const sink = createSshSink(ssh, dir);
      expect(await sink.removeIncomplete('tidy', [running.manifest.id])).toEqual([crashed.path]);
      const left = (await ssh.files.list(`${dir}/tidy`)).map((e) => e.name).sort();
      expect(left).toEqual([
        '20261207T160000Z-full-d',
        '20261207T180000Z-full-f',
        '20261207T190000Z-full-link',
      ]);
      expect((await ssh.files.list(`${dir}.keep`)).map((e) => e.name)).toEqual(['f']);
      expect((await ssh.files.stat(`${dir}/${done.path}/${BACKUP_MANIFEST_FILE}`)).type).toBe('file');
      expect(await sink.removeIncomplete('nobody', [])).toEqual([]);
      await rejectsWith(sink.removeIncomplete('a/b', []), 'INVALID_ARGUMENT');
      await rejectsWith(
        createSshSink(ssh, dir, { method: 'sftp', verify: false }).removeIncomplete('tidy', []),
        'UNSUPPORTED',
      );
    } finally {
      await sh('rm -rf -- "$1.keep"');
    }
  });
});
