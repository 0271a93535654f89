/**
 * The article's backup recipe for a KVM guest on LVM, done so that it cannot lose data quietly:
 * snapshot the guest's volume, copy the snapshot to a remote server with a checksum, drop the snapshot.
 *
 *   LVM_HOST=kvm1 BACKUP_HOST=backup1 BACKUP_DIR=/srv/backups VOLUME=vg0/guest1 \
 *     npm start -w @hvkit-examples/lvm-snapshot-to-remote
 *
 * Both hosts are reached as root with ~/.ssh/id_ed25519 and checked against ~/.ssh/known_hosts
 * (SSH_KEY, KNOWN_HOSTS, *_PORT override them). Without LVM_HOST the volume is read on this machine.
 * Ctrl-C aborts: the snapshot is removed and no file that looks complete is left on the backup server.
 * With FULL_THEN=incremental and a thin volume, a second run sends only what changed (CHECKPOINT=<artifact id>).
 */

import { homedir } from 'node:os';
import { join } from 'node:path';
import { createLocalExec } from '@hvkit/core';
import { connect } from '@hvkit/lvm';
import { connectSsh, createSshSink, type SshClient } from '@hvkit/ssh';

const env = process.env;
const key = env.SSH_KEY ?? join(homedir(), '.ssh', 'id_ed25519');
const knownHostsFile = env.KNOWN_HOSTS ?? join(homedir(), '.ssh', 'known_hosts');
const volume = env.VOLUME ?? 'vg0/guest1';
const open = (host: string, port: string | undefined): Promise<SshClient> =>
  connectSsh({
    host,
    port: Number(port ?? 22),
    username: env.SSH_USER ?? 'root',
    auth: { privateKey: key },
    hostKey: { knownHostsFile },
  });

if (!env.BACKUP_HOST)
  throw new Error('Set BACKUP_HOST (and BACKUP_DIR) to the server that keeps the backups.');
const controller = new AbortController();
process.once('SIGINT', () => controller.abort());

await using lvmHost = env.LVM_HOST ? await open(env.LVM_HOST, env.LVM_PORT) : undefined;
await using backupHost = await open(env.BACKUP_HOST, env.BACKUP_PORT);
await using hv = await connect(lvmHost ? { ssh: lvmHost } : { exec: createLocalExec() });

const sink = createSshSink(backupHost, env.BACKUP_DIR ?? '/srv/backups');
let shown = -1;
const artifact = await hv.backups?.backup(volume, sink, {
  signal: controller.signal,
  ...(env.CHECKPOINT ? { mode: 'incremental' as const, sinceCheckpoint: env.CHECKPOINT } : {}),
  onProgress: (p) => {
    if (p.totalBytes === undefined || p.totalBytes === 0) return console.log(`${p.phase}...`);
    const percent = Math.floor((100 * p.processedBytes) / p.totalBytes);
    if (percent !== shown) process.stdout.write(`\r${p.phase} ${percent}%`);
    shown = percent;
  },
});
console.log(`\n${artifact?.kind} backup ${artifact?.id} of ${volume} in ${sink.location}/${artifact?.path}:`);
for (const file of artifact?.files ?? [])
  console.log(`  ${file.name}  ${file.bytes} bytes  sha256 ${file.sha256}`);
if (artifact?.checkpoint) console.log(`next incremental: CHECKPOINT=${artifact.checkpoint}`);
for (const s of (await hv.backups?.listSnapshots(volume)) ?? [])
  console.log(`snapshot left: ${s.id} (${s.description ?? 'not hvkit'})`);
