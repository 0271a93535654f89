/** Sample backup artifacts for the backup tests. */
import { createHash, randomBytes } from 'node:crypto';
import { createDirectorySink } from '../backup/directory-sink';
import { artifactPath, type BackupManifest, writeBackupManifest } from '../backup/manifest';
import { chunksOf } from './index';

const SHA = 'a'.repeat(64);

/** A valid full-backup manifest with two files (the sha256 values are made up). */
export function sampleManifest(over: Partial<BackupManifest> = {}): BackupManifest {
  return {
    format: 'hvkit-backup',
    version: 1,
    specificationVersion: 'v1',
    adapter: 'in-memory',
    id: '20261207T120000Z-full-abc123',
    kind: 'full',
    method: 'in-memory-stream',
    guest: { id: 'vm-1', name: 'web', uuid: '11111111-2222-3333-4444-555555555555' },
    startedAt: '2026-12-07T12:00:00.000Z',
    completedAt: '2026-12-07T12:00:05.000Z',
    consistency: 'crash',
    chain: { id: '20261207T120000Z-full-abc123', position: 0 },
    checkpoint: 'cp-1',
    files: [
      {
        name: 'guest.json',
        role: 'definition',
        bytes: 10,
        sha256: SHA,
        format: 'hvkit-in-memory-guest-json',
      },
      {
        name: 'disk-vda.raw',
        role: 'disk',
        bytes: 4096,
        sha256: 'b'.repeat(64),
        disk: { device: 'vda', format: 'raw', capacityBytes: 8192 },
      },
    ],
    ...over,
  };
}

const sha = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

/** Writes a complete artifact through the directory sink; returns its path and manifest. */
export async function writeArtifact(
  dir: string,
  over: Partial<BackupManifest> & { guestName?: string; disk?: Uint8Array; complete?: boolean } = {},
) {
  const { guestName = 'web', disk = randomBytes(3000), complete = true, ...rest } = over;
  const sink = createDirectorySink(dir, { fsync: false });
  const base = sampleManifest(rest);
  const path = artifactPath(guestName, base.id);
  const definition = new TextEncoder().encode(JSON.stringify({ name: guestName }));
  await sink.writeFile(`${path}/guest.json`, chunksOf(Buffer.from(definition), 100));
  await sink.writeFile(`${path}/disk-vda.raw`, chunksOf(Buffer.from(disk), 1000));
  const manifest: BackupManifest = {
    ...base,
    guest: { ...base.guest, name: guestName },
    files: [
      {
        name: 'guest.json',
        role: 'definition',
        bytes: definition.length,
        sha256: sha(definition),
        format: 'json',
      },
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
  return { path, manifest, disk };
}
