/**
 * Snapshots a VM, lists its snapshot tree, and backs up its disks into a directory (sha256 per file).
 *
 * Usage: npm run backup -w @hvkit-examples/vsphere -- <vm name> <directory>
 */

import { createDirectorySink } from '@hvkit/core';
import { connectFromEnv } from './connect';

const [name, dir] = process.argv.slice(2);
if (!name || !dir) {
  console.error('usage: backup.ts <vm name> <directory>');
  process.exit(2);
}
const adapter = await connectFromEnv();
try {
  const backups = adapter.backups!;
  const snapshot = await backups.createSnapshot(
    { name },
    { name: `before-backup ${new Date().toISOString()}` },
  );
  console.log(`snapshot ${snapshot.id} (${snapshot.name})`);
  for (const s of await backups.listSnapshots({ name }))
    console.log(`  ${s.id} ${s.name} parent=${s.parentId ?? '-'}`);
  const artifact = await backups.backup({ name }, createDirectorySink(dir), {
    onProgress: (p) => process.stdout.write(`\r${p.phase} ${p.processedBytes} bytes ${p.file ?? ''}   `),
  });
  process.stdout.write('\n');
  for (const f of artifact.files) console.log(`${f.name}  ${f.bytes} bytes  sha256 ${f.sha256}`);
  await backups.deleteSnapshot({ name }, snapshot.id);
  console.log(`removed snapshot ${snapshot.id}`);
} finally {
  await adapter.close();
}
