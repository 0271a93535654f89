/**
 * Test helper run as a child process by src/capabilities/cleanup.live.test.ts: restores the newest artifact
 * of an SSH source on the lab VM as a new volume `<name>` and stalls for good once the first MiB of the disk
 * file was read, after printing `STALLED`; the test then kills it with SIGKILL, leaving a crashed restore
 * behind (its temporary volume with its lease tag). Its lease lives `ttlMs` (renewed every `ttlMs / 4`).
 *
 *   node --conditions=@hvkit/source --import tsx test/restore-child.ts <source dir> <name> <ttlMs>
 */

import type { BackupSource } from '@hvkit/core';
import { createSshSource } from '@hvkit/ssh';
import { connect } from '../src/connect';
import { connectLab, stallAfterFirstMiB } from './lab';

const [dir, name, ttl] = process.argv.slice(2);
if (!dir || !name || !ttl) throw new Error('usage: restore-child.ts <source dir> <name> <ttlMs>');
const ttlMs = Number(ttl);

const ssh = await connectLab();
const inner = createSshSource(ssh, dir);
const source: BackupSource = {
  ...inner,
  readFile(file, options) {
    const bytes = inner.readFile(file, options);
    return /\/disk-[^/]+$/.test(file) ? stallAfterFirstMiB(bytes) : bytes;
  },
};
const hv = await connect({ ssh, naming: { leaseTtlMs: ttlMs, leaseRenewMs: Math.floor(ttlMs / 4) } });
await hv.backups?.restore?.(source, { name });
console.log('DONE (not expected: the source stalls)');
