/**
 * Test helper run as a child process by src/capabilities/cleanup.live.test.ts: backs up one volume of the
 * lab VM into an SSH sink and stalls for good once the first MiB of the disk file reached the sink, after
 * printing `STALLED`; the test then kills it with SIGKILL, leaving a crashed run behind (its snapshot, its
 * lease tag, a partial file). Its lease lives `ttlMs` (renewed every `ttlMs / 4`), so the test need not wait
 * two minutes for it to expire.
 *
 *   node --conditions=@hvkit/source --import tsx test/backup-child.ts <vg/lv> <sink dir> <ttlMs>
 */

import type { BackupSink } from '@hvkit/core';
import { createSshSink } from '@hvkit/ssh';
import { connect } from '../src/connect';
import { connectLab, stallAfterFirstMiB } from './lab';

const [volume, dir, ttl] = process.argv.slice(2);
if (!volume || !dir || !ttl) throw new Error('usage: backup-child.ts <vg/lv> <sink dir> <ttlMs>');
const ttlMs = Number(ttl);

const ssh = await connectLab();
const inner = createSshSink(ssh, dir);
const sink: BackupSink = {
  kind: inner.kind,
  location: inner.location,
  writeFile(name, source, options) {
    if (!/\/disk-[^/]+$/.test(name)) return inner.writeFile(name, source, options);
    return inner.writeFile(name, stallAfterFirstMiB(source), options);
  },
};
const hv = await connect({ ssh, naming: { leaseTtlMs: ttlMs, leaseRenewMs: Math.floor(ttlMs / 4) } });
await hv.backups?.backup(volume, sink);
console.log('DONE (not expected: the sink stalls)');
