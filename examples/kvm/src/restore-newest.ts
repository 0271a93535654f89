/**
 * Restores the newest complete backup of a guest from a local backup directory (the folder layout
 * `<guest>/<artifact id>/` that backups write) as a new guest: new name, new UUID and MACs, disks uploaded
 * into new volumes of the original disks' pools (or `--pool <name>`). Shows progress as a percentage;
 * Ctrl-C aborts, and an aborted restore leaves no volume and no guest behind.
 *
 * Usage: npm run restore-newest -w @hvkit-examples/kvm -- <directory> <guest> [new name] [--pool <pool>]
 */

import { createDirectorySource } from '@hvkit/core';
import { connectFromEnv } from './connect';

const args = process.argv.slice(2);
const poolAt = args.indexOf('--pool');
const pool = poolAt >= 0 ? args.splice(poolAt, 2)[1] : undefined;
const [dir, guest, name] = args;
if (!dir || !guest) {
  console.error('usage: restore-newest.ts <directory> <guest> [new name] [--pool <pool>]');
  process.exit(2);
}

const source = createDirectorySource(dir);
const complete = (await source.list({ guest })).filter((a) => a.complete);
const newest = complete.at(-1);
if (!newest?.manifest) {
  console.error(`${source.location} holds no complete backup of ${guest}.`);
  process.exit(1);
}
console.log(`restoring ${newest.path} (${newest.manifest.kind}, ${newest.manifest.completedAt})`);

const controller = new AbortController();
process.once('SIGINT', () => {
  process.stdout.write('\naborting: removing what the restore created...\n');
  controller.abort();
});

const adapter = await connectFromEnv();
try {
  const result = await adapter.backups.restore!(source, {
    artifact: newest.id,
    ...(name ? { name } : {}),
    ...(pool ? { storage: pool } : {}),
    signal: controller.signal,
    onProgress: (p) => {
      const pct = p.totalBytes ? ` ${((100 * p.processedBytes) / p.totalBytes).toFixed(1)}%` : '';
      process.stdout.write(`\r${p.phase}${pct} ${p.processedBytes} bytes ${p.file ?? ''}   `);
    },
  });
  process.stdout.write('\n');
  console.log(`defined ${result.guest.name} (${result.guest.id}) from ${result.artifacts.join(' + ')}`);
  for (const w of result.warnings) console.log(`  warning: ${w.field ?? ''} ${w.message}`);
} catch (error) {
  process.stdout.write('\n');
  console.error(`restore failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await adapter.close();
}
