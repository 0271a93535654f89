/**
 * Backs up a guest (a full backup: an XVA of a snapshot, plus the VM's definition and a manifest with
 * sha256 per file) into a local directory, optionally an incremental one on top (`--incremental`: a VHD
 * per disk of the blocks changed since the full backup's snapshot), then restores the newest backup as a
 * new VM, verifying every file against the manifest. Progress is shown as a percentage; Ctrl-C aborts and
 * leaves no snapshot, no task and no complete-looking artifact behind (nor a half-restored VM).
 *
 * Without HVKIT_XAPI_URL it runs against an XAPI simulator started here.
 *
 * Usage: npm run backup-restore -w @hvkit-examples/xen -- <directory> [guest name] [--incremental] [--no-restore]
 */

import { createDirectorySink, createDirectorySource, type Progress } from '@hvkit/core';
import { open } from './connect';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const at = args.indexOf(name);
  if (at >= 0) args.splice(at, 1);
  return at >= 0;
};
const incremental = flag('--incremental');
const restore = !flag('--no-restore');
const [dir, guestName = 'hvkit-xen-vm1'] = args;
if (!dir) {
  console.error('usage: backup-restore.ts <directory> [guest name] [--incremental] [--no-restore]');
  process.exit(2);
}

const controller = new AbortController();
process.once('SIGINT', () => {
  process.stdout.write('\naborting...\n');
  controller.abort();
});
const show = (p: Progress) => {
  const pct = p.totalBytes ? ` ${((100 * p.processedBytes) / p.totalBytes).toFixed(1)}%` : '';
  process.stdout.write(`\r${p.phase}${pct} ${p.processedBytes} bytes   `);
};

const { hv, close } = await open();
try {
  const sink = createDirectorySink(dir);
  const options = { signal: controller.signal, onProgress: show };
  const full = await hv.backups.backup({ name: guestName }, sink, options);
  process.stdout.write('\n');
  console.log(`full backup ${full.path}, checkpoint ${full.checkpoint}`);
  for (const f of full.files) console.log(`  ${f.name}  ${f.bytes} bytes  sha256 ${f.sha256}`);
  let newest = full;
  if (incremental) {
    newest = await hv.backups.backup({ name: guestName }, sink, {
      ...options,
      mode: 'incremental',
      sinceCheckpoint: full.checkpoint,
    });
    process.stdout.write('\n');
    console.log(`incremental backup ${newest.path} (since ${newest.parentCheckpoint})`);
    for (const f of newest.files) console.log(`  ${f.name}  ${f.bytes} bytes  sha256 ${f.sha256}`);
  }
  if (restore) {
    const result = await hv.backups.restore(createDirectorySource(dir), {
      artifact: newest.id,
      name: `${guestName}-restored`,
      ...options,
    });
    process.stdout.write('\n');
    console.log(`restored ${result.guest.name} (${result.guest.id}) from ${result.artifacts.join(' + ')}`);
    console.log(
      `  disks: ${result.guest.disks.map((d) => `${d.device} ${d.capacityBytes} bytes`).join(', ')}`,
    );
    console.log(`  NICs:  ${result.guest.nics.map((n) => `${n.device} ${n.mac}`).join(', ')}`);
  }
} catch (error) {
  process.stdout.write('\n');
  console.error(`failed: ${(error as Error).message}`);
  process.exitCode = 1;
} finally {
  await close();
}
