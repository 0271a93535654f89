/**
 * Leases and `backups.cleanup` in the lab VM (peer lab-vm): a backup run killed with SIGKILL in a child
 * process (test/backup-child.ts) leaves its snapshot, its lease tag and a partial file; while its lease is
 * live a backup of the same volume is CONFLICT and cleanup() keeps them; once it expired, cleanup() removes
 * all of it. What is left is read with LVM's own tools and `find`, never the adapter.
 */

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { HvkitError } from '@hvkit/core';
import { createSshSink, type SshClient } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectLab, createTestVg, lab, labTitle, remoteFiles, sh, type TestVg } from '../../test/lab';
import { connect, type LvmAdapter } from '../connect';

/** The killed run's lease lifetime: short, so the test waits seconds, not the default two minutes. */
const TTL_MS = 20_000;

/** Runs test/backup-child.ts until it prints STALLED, then kills it with SIGKILL. */
async function killedBackup(volume: string, dir: string): Promise<void> {
  const pkg = join(import.meta.dirname, '..', '..');
  const child = spawn(
    process.execPath,
    [
      '--conditions=@hvkit/source',
      '--import',
      'tsx',
      join(pkg, 'test', 'backup-child.ts'),
      volume,
      dir,
      String(TTL_MS),
    ],
    { cwd: pkg, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const lines: string[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`no STALLED from the child; saw ${lines.join(' | ')}`)),
        120_000,
      );
      createInterface({ input: child.stdout }).on('line', (line) => {
        lines.push(line);
        if (line === 'STALLED') {
          clearTimeout(timer);
          resolve();
        }
      });
      void exited.then(() => reject(new Error(`the child ended before STALLED; saw ${lines.join(' | ')}`)));
    });
  } finally {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  }
  expect(child.signalCode).toBe('SIGKILL');
}

describe.skipIf(!lab.available)(
  labTitle('lvm leases and cleanup in the lab VM'),
  { timeout: 300_000 },
  () => {
    let ssh: SshClient;
    let vg: TestVg;
    let hv: LvmAdapter;
    let sinkDir: string;
    let data: string;

    /** Every volume of the group with its tags, by LVM's own lvs. */
    const volumesLeft = async () =>
      (await sh(ssh, `lvs --noheadings -o lv_name,lv_tags ${vg.name}`))
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '');
    const sinkFiles = () => remoteFiles(ssh, sinkDir);

    beforeAll(async () => {
      ssh = await connectLab();
      vg = await createTestVg(ssh, 128);
      sinkDir = `/root/${vg.name}-sink`;
      data = `${vg.name}/data`;
      await sh(
        ssh,
        `lvcreate -q -y -L 8M -n data ${vg.name} >/dev/null
dd if=/dev/urandom of=/dev/${data} bs=1M count=8 status=none conv=fsync`,
      );
      hv = await connect({ ssh });
    });

    afterAll(async () => {
      await hv?.close();
      if (ssh) await sh(ssh, `rm -rf ${sinkDir}`).catch(() => {});
      await vg?.remove();
      await ssh?.close();
    });

    it('a SIGKILLed run: its live lease blocks a backup (CONFLICT) and cleanup keeps it; expired, cleanup removes snapshot, lease and partial file', async () => {
      await killedBackup(data, sinkDir);
      const killedAt = Date.now();

      // What the killed run left: a tagged snapshot, the lease tag on the origin, a partial file.
      const left = await volumesLeft();
      expect(left.some((l) => /^data-hvkit-\S+ .*hvkit-run-/.test(l))).toBe(true);
      expect(left.find((l) => l.startsWith('data '))).toMatch(/hvkit-lease-/);
      expect((await sinkFiles()).length).toBeGreaterThan(0);

      // The live lease: another backup of the volume is CONFLICT (and changes nothing), cleanup keeps it all.
      const conflict = await hv.backups?.backup(data, createSshSink(ssh, sinkDir)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(HvkitError.isInstance(conflict, 'CONFLICT'), String(conflict)).toBe(true);
      expect((conflict as HvkitError).message).toMatch(/being backed up by run/);
      expect(await volumesLeft()).toEqual(left);
      const early = await hv.backups?.cleanup?.(data, { sink: createSshSink(ssh, sinkDir) });
      expect(early?.removed).toEqual([]);
      expect(early?.kept.map((k) => k.kind).sort()).toEqual(['lease', 'snapshot']);
      expect(await volumesLeft()).toEqual(left);
      expect((await sinkFiles()).length).toBeGreaterThan(0);

      // Expired: cleanup removes the snapshot, the lease tag and the partial artifact.
      await new Promise((r) => setTimeout(r, Math.max(0, killedAt + TTL_MS + 500 - Date.now())));
      const result = await hv.backups?.cleanup?.(data, { sink: createSshSink(ssh, sinkDir) });
      expect(result?.kept).toEqual([]);
      expect(result?.removed.map((r) => r.kind).sort()).toEqual(['file', 'lease', 'snapshot']);
      expect(await volumesLeft()).toEqual(['data']);
      expect(await sinkFiles()).toEqual([]);

      // The volume is free again: a backup runs, and its own lease is gone at its end.
      const artifact = await hv.backups?.backup(data, createSshSink(ssh, sinkDir));
      expect(artifact?.files.length).toBe(3);
      expect(await volumesLeft()).toEqual(['data']);
      const again = await hv.backups?.cleanup?.(data, { sink: createSshSink(ssh, sinkDir) });
      expect(again).toEqual({ removed: [], kept: [] });
    });
  },
);
