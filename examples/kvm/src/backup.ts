/**
 * Backs up every running guest (libvirt push backup, checkpoint for the next incremental) into a local
 * directory or, with an `ssh://user@host/path` target, into a directory on an SSH host (key from
 * `SSH_KEY`, host keys from `SSH_KNOWN_HOSTS`, default ~/.ssh/known_hosts). Prints sha256 per file.
 *
 * Usage: npm run backup -w @hvkit-examples/kvm -- <directory | ssh://user@host[:port]/path>
 */

import { homedir } from 'node:os';
import { join } from 'node:path';
import { type BackupSink, createDirectorySink } from '@hvkit/core';
import { connectSsh, createSshSink, type SshClient } from '@hvkit/ssh';
import { connectFromEnv } from './connect';

const [target] = process.argv.slice(2);
if (!target) {
  console.error('usage: backup.ts <directory | ssh://user@host[:port]/path>');
  process.exit(2);
}

let ssh: SshClient | undefined;
async function sinkFor(dest: string, guest: string): Promise<BackupSink> {
  if (!dest.startsWith('ssh://')) return createDirectorySink(join(dest, guest));
  const url = new URL(dest);
  ssh ??= await connectSsh({
    host: url.hostname,
    port: url.port ? Number(url.port) : 22,
    username: decodeURIComponent(url.username || 'root'),
    auth: { privateKey: process.env.SSH_KEY ?? join(homedir(), '.ssh', 'id_ed25519') },
    hostKey: { knownHostsFile: process.env.SSH_KNOWN_HOSTS ?? join(homedir(), '.ssh', 'known_hosts') },
  });
  return createSshSink(ssh, `${decodeURIComponent(url.pathname)}/${guest}`);
}

const adapter = await connectFromEnv();
try {
  for (const g of await adapter.inventory!.listGuests()) {
    if (g.powerState !== 'running') continue;
    const artifact = await adapter.backups!.backup(g.id, await sinkFor(target, g.name), {
      mode: 'full',
      onProgress: (p) => process.stdout.write(`\r${g.name}: ${p.phase} ${p.processedBytes} bytes   `),
    });
    process.stdout.write('\n');
    for (const f of artifact.files) console.log(`  ${f.name}  ${f.bytes} bytes  sha256 ${f.sha256}`);
    console.log(`  method ${artifact.method}, checkpoint ${artifact.checkpoint ?? '-'}`);
  }
} finally {
  await adapter.close();
  await ssh?.close();
}
