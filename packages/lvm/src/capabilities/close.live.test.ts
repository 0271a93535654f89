/**
 * close() during a backup, in the lab VM (peer lab-vm): the running backup stops with ABORTED, close()
 * resolves once it removed its snapshot, its lease tag and its partial files, and calls after close() fail
 * CONNECTION_LOST. Checked with LVM's own tools, never the adapter.
 */

import { HvkitError } from '@hvkit/core';
import { createSshSink, type SshClient } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectLab, createTestVg, lab, labTitle, remoteFiles, sh, type TestVg } from '../../test/lab';
import { connect } from '../connect';

const MiB = 1024 * 1024;

describe.skipIf(!lab.available)(labTitle('lvm close() during a backup'), { timeout: 300_000 }, () => {
  let ssh: SshClient;
  let vg: TestVg;

  beforeAll(async () => {
    ssh = await connectLab();
    vg = await createTestVg(ssh, 128);
    await sh(
      ssh,
      `lvcreate -q -y -L 32M -n data ${vg.name} >/dev/null
dd if=/dev/urandom of=/dev/${vg.name}/data bs=1M count=32 status=none conv=fsync`,
    );
  }, 180_000);
  afterAll(async () => {
    if (ssh) await sh(ssh, `rm -rf /root/${vg?.name}-sink`).catch(() => {});
    await vg?.remove();
    await ssh?.close();
  });

  it('aborts the running backup, waits for its cleanup, and refuses later calls with CONNECTION_LOST', async () => {
    const sinkDir = `/root/${vg.name}-sink`;
    const hv = await connect({ ssh, snapshotSize: { percent: 100 } });
    let closing: Promise<void> | undefined;
    const outcome = hv.backups
      ?.backup(`${vg.name}/data`, createSshSink(ssh, sinkDir), {
        onProgress: (p) => {
          if (p.phase === 'transfer' && p.processedBytes >= 8 * MiB) closing ??= hv.close();
        },
      })
      .then(
        () => 'resolved',
        (e: unknown) => e,
      );
    const error = await outcome;
    expect(HvkitError.isInstance(error, 'ABORTED'), String(error)).toBe(true);
    expect(closing).toBeDefined();
    await closing;
    // When close() resolved, the backup's cleanup was done: no snapshot, no hvkit tag, no file.
    const left = await sh(ssh, `lvs --noheadings -o lv_name,lv_tags ${vg.name}`);
    expect(left.trim().split(/\s+/)).toEqual(['data']);
    expect(await remoteFiles(ssh, sinkDir)).toEqual([]);
    const after = await hv.backups?.backup(`${vg.name}/data`, createSshSink(ssh, sinkDir)).then(
      () => 'resolved',
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(after, 'CONNECTION_LOST'), String(after)).toBe(true);
    expect((after as HvkitError).retryable).toBe(false);
    await hv.close(); // idempotent
  });
});
