/**
 * Leases and `backups.cleanup` in the lab VM (peer lab-vm): a backup run killed with SIGKILL in a child
 * process (test/backup-child.ts) leaves its snapshot, its lease tag and a partial file; while its lease is
 * live a backup of the same volume is CONFLICT and cleanup() keeps them; once it expired, cleanup() removes
 * all of it. The same for a restore killed with SIGKILL (test/restore-child.ts: its temporary volume), for
 * an in-place restore killed at each step of its swap (test/swap-child.ts: cleanup puts the original back,
 * or keeps the restored volume once the original is gone), and for a thin pool's metadata snapshot left
 * reserved. What is left is read with LVM's own tools, `dmsetup`
 * and `find`, never the adapter. An expired lease is seen through a second adapter whose clock (connect's
 * `naming.now`) reads a time past its expiry, rather than by waiting for it.
 */

import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { type ExecTransport, HvkitError } from '@hvkit/core';
import { createSshSink, createSshSource, type SshClient } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectLab, createTestVg, lab, labTitle, remoteFiles, sh, type TestVg } from '../../test/lab';
import { SWAP_STEPS, type SwapStep } from '../../test/swap-steps';
import { connect, type LvmAdapter } from '../connect';

/**
 * The killed run's lease lifetime: long enough for the checks made while it holds, far shorter than the default
 * two minutes. The test does not wait for it to pass: an adapter whose clock reads that much later (`later`
 * below) sees the lease expired.
 */
const TTL_MS = 20_000;

/** Runs test/backup-child.ts until it prints STALLED, then kills it with SIGKILL. */
function killedBackup(volume: string, dir: string): Promise<void> {
  return killedChild('backup-child.ts', [volume, dir, String(TTL_MS)]);
}

/** Runs a test/ helper until it prints STALLED, then kills it with SIGKILL. */
async function killedChild(script: string, args: readonly string[]): Promise<void> {
  const pkg = join(import.meta.dirname, '..', '..');
  const child = spawn(
    process.execPath,
    ['--conditions=@hvkit/source', '--import', 'tsx', join(pkg, 'test', script), ...args],
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
    /**
     * The same adapter with a clock that reads no earlier than `clockFloor`: what `hv` would see once the wall
     * clock got there. {@link expiredAfter} puts it past a killed run's lease, so the test need not wait for it.
     */
    let later: LvmAdapter;
    let clockFloor = 0;
    let sinkDir: string;
    let data: string;

    /**
     * Moves `later`'s clock past the lease of a run killed (or failed) at `endedAt`: the run renewed it at the
     * latest then, for `ttlMs`. The wall clock would get there as soon as the test had waited that long.
     */
    const expiredAfter = (endedAt: number, ttlMs: number) => {
      clockFloor = endedAt + ttlMs + 500;
    };

    /** Every volume of the group with its tags, by LVM's own lvs. */
    const volumesLeft = async () =>
      (await sh(ssh, `lvs --noheadings -o lv_name,lv_tags ${vg.name}`))
        .split('\n')
        .map((l) => l.trim())
        .filter((l) => l !== '');
    const sinkFiles = () => remoteFiles(ssh, sinkDir);
    /** sha256 of a volume's content (activated for the read, deactivated after). */
    const sum = async (lv: string) =>
      (
        await sh(
          ssh,
          `lvchange -q -ay ${vg.name}/${lv}; sha256sum /dev/${vg.name}/${lv} | cut -d' ' -f1; lvchange -q -an ${vg.name}/${lv}`,
        )
      ).trim();

    /** Writes new random content into the inactive `data` (left inactive); its sha256. */
    const overwriteData = async () => {
      await sh(
        ssh,
        `lvchange -q -ay ${data}; dd if=/dev/urandom of=/dev/${data} bs=1M count=8 status=none conv=fsync; lvchange -q -an ${data}`,
      );
      return sum('data');
    };

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
      later = await connect({ ssh, naming: { now: () => new Date(Math.max(Date.now(), clockFloor)) } });
    });

    afterAll(async () => {
      await later?.close();
      await hv?.close();
      if (ssh) await sh(ssh, `rm -rf ${sinkDir}`).catch(() => {});
      await vg?.remove();
      await ssh?.close();
    });

    it('a SIGKILLed run: its live lease (on its snapshot) blocks a backup (CONFLICT) and cleanup keeps it; expired, cleanup removes the snapshot with its lease and the partial file', async () => {
      await killedBackup(data, sinkDir);
      const killedAt = Date.now();

      // What the killed run left: a snapshot tagged with its run and lease, a partial file; the origin has no
      // tag of the run.
      const left = await volumesLeft();
      expect(left.some((l) => /^data-hvkit-\S+ .*hvkit-run-/.test(l))).toBe(true);
      expect(left.find((l) => l.startsWith('data-hvkit-'))).toMatch(/hvkit-lease-/);
      expect(left).toContain('data');
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
      expect(early?.kept.map((k) => k.kind).sort()).toEqual(['snapshot']);
      expect(await volumesLeft()).toEqual(left);
      expect((await sinkFiles()).length).toBeGreaterThan(0);

      // Expired: cleanup removes the snapshot (its lease with it) and the partial artifact.
      expiredAfter(killedAt, TTL_MS);
      const result = await later.backups?.cleanup?.(data, { sink: createSshSink(ssh, sinkDir) });
      expect(result?.kept).toEqual([]);
      expect(result?.removed.map((r) => r.kind).sort()).toEqual(['file', 'snapshot']);
      expect(await volumesLeft()).toEqual(['data']);
      expect(await sinkFiles()).toEqual([]);

      // The volume is free again: a backup runs, and its own lease is gone at its end.
      const artifact = await hv.backups?.backup(data, createSshSink(ssh, sinkDir));
      expect(artifact?.files.length).toBe(3);
      expect(await volumesLeft()).toEqual(['data']);
      const again = await hv.backups?.cleanup?.(data, { sink: createSshSink(ssh, sinkDir) });
      expect(again).toEqual({ removed: [], kept: [] });
    });

    it('a SIGKILLed restore: its live lease blocks a restore into the same target (CONFLICT) and cleanup keeps its temporary volume; expired, cleanup removes it', async () => {
      const dir = `${sinkDir}-restore`;
      try {
        await hv.backups?.backup(data, createSshSink(ssh, dir));
        await killedChild('restore-child.ts', [dir, 'restored', String(TTL_MS)]);
        const killedAt = Date.now();

        // What the killed restore left: its temporary volume, tagged with its run and holding its lease.
        const left = await volumesLeft();
        const temp = left.find((l) => l.startsWith('hvkit-restore-'));
        expect(temp, left.join(' | ')).toMatch(/hvkit-run-restore-/);
        expect(temp).toMatch(/hvkit-lease-/);
        expect(left.some((l) => l.startsWith('restored '))).toBe(false);

        // The live lease: a restore into the same target is CONFLICT (and changes nothing); cleanup keeps it.
        const conflict = await hv.backups?.restore?.(createSshSource(ssh, dir), { name: 'restored' }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(HvkitError.isInstance(conflict, 'CONFLICT'), String(conflict)).toBe(true);
        expect((conflict as HvkitError).message).toMatch(/restored by run/);
        expect(await volumesLeft()).toEqual(left);
        const early = await hv.backups?.cleanup?.(data);
        expect(early?.removed).toEqual([]);
        expect(early?.kept.map((k) => k.kind)).toEqual(['volume']);
        expect(await volumesLeft()).toEqual(left);

        // Expired: cleanup removes the temporary volume; a restore into the target then runs.
        expiredAfter(killedAt, TTL_MS);
        const result = await later.backups?.cleanup?.(data);
        expect(result?.kept).toEqual([]);
        expect(result?.removed.map((r) => r.kind)).toEqual(['volume']);
        expect(await volumesLeft()).toEqual(['data']);
        const restored = await hv.backups?.restore?.(createSshSource(ssh, dir), { name: 'restored' });
        expect(restored?.guest.id).toBe(`${vg.name}/restored`);
        expect((await volumesLeft()).sort()).toEqual(['data', 'restored']);
      } finally {
        await sh(ssh, `lvremove -q -y ${vg.name}/restored >/dev/null 2>&1 || true; rm -rf ${dir}`);
      }
    });

    describe('in-place restores of one artifact of `data`', () => {
      const dir = () => `${sinkDir}-swap`;
      /** The artifact's content (A); before each restore `data` holds other content (B). */
      let a: string;

      beforeAll(async () => {
        // `anchor` is a guest of the group to call cleanup on while `data` has no name.
        await sh(ssh, `lvcreate -q -y -L 4M -n anchor ${vg.name} >/dev/null; lvchange -q -ay ${data}`);
        await hv.backups?.backup(data, createSshSink(ssh, dir()));
        a = await sum('data');
      });

      afterAll(async () => {
        if (ssh) await sh(ssh, `lvremove -q -y ${vg.name}/anchor >/dev/null 2>&1 || true; rm -rf ${dir()}`);
      });

      it('an in-place restore killed in its swap: once its lease expired, cleanup puts the original back under its name (or, past the removal of the original, keeps the restored volume) and leaves no hvkit volume or tag', async () => {
        // Before each restore the volume holds content B (and is inactive, as an in-place restore needs).
        let b: string | undefined;
        for (const [step, kept] of [
          ['aside', 'original'],
          ['into-place', 'original'],
          ['remove-aside', 'original'],
          ['deactivate', 'restored'],
        ] as const) {
          b ??= await overwriteData();
          await killedChild('swap-child.ts', [dir(), String(TTL_MS), step]);
          const killedAt = Date.now();
          const left = await volumesLeft();
          expect(
            left.some((l) => /hvkit-run-restore-/.test(l)),
            `${step}: ${left.join(' | ')}`,
          ).toBe(true);

          expiredAfter(killedAt, TTL_MS);
          const result = await later.backups?.cleanup?.(`${vg.name}/anchor`);
          expect(result?.kept, step).toEqual([]);
          expect(result?.removed.length, step).toBeGreaterThan(0);
          // Only the two volumes, without any hvkit tag; `data` holds the original's content or the restored.
          expect((await volumesLeft()).sort(), step).toEqual(['anchor', 'data']);
          expect(await sum('data'), step).toBe(kept === 'original' ? b : a);
          expect(await hv.backups?.cleanup?.(`${vg.name}/anchor`), step).toEqual({ removed: [], kept: [] });
          // A step that put the original back left B in the volume; after one that kept the restored volume, B
          // is written again.
          if (kept === 'restored') b = undefined;
        }
      });

      it('an in-place restore whose swap fails at a step rejects and has put the original back; past the removal of the original, the restored volume keeps the name and cleanup completes it', async () => {
        let b: string | undefined;
        for (const step of Object.keys(SWAP_STEPS) as SwapStep[]) {
          b ??= await overwriteData();
          // The step's command fails (as LVM would, exit 5) instead of running.
          const failing: ExecTransport = {
            target: ssh.exec.target,
            exec: async (request) =>
              SWAP_STEPS[step](request.argv)
                ? {
                    exitCode: 5,
                    signal: null,
                    stdout: Buffer.alloc(0),
                    stderr: Buffer.from('  injected failure\n'),
                  }
                : ssh.exec.exec(request),
            spawn: (request) => ssh.exec.spawn(request),
          };
          const failingHv = await connect({
            exec: failing,
            naming: { leaseTtlMs: TTL_MS, leaseRenewMs: TTL_MS / 4 },
          });
          const error = await failingHv.backups
            ?.restore?.(createSshSource(ssh, dir()), { mode: 'in-place' })
            .then(
              () => undefined,
              (e: unknown) => e,
            );
          const failedAt = Date.now();
          await failingHv.close();
          expect(HvkitError.isInstance(error), `${step}: ${String(error)}`).toBe(true);
          expect((error as HvkitError).backendMessage, step).toBe('injected failure');
          if (step !== 'deactivate') {
            expect((await volumesLeft()).sort(), step).toEqual(['anchor', 'data']);
            expect(await sum('data'), step).toBe(b);
            continue;
          }
          // The original is gone: the restored volume has its name, still with the run's tags, for cleanup.
          expect((await volumesLeft()).find((l) => l.startsWith('data '))).toMatch(/hvkit-run-restore-/);
          expiredAfter(failedAt, TTL_MS);
          const result = await later.backups?.cleanup?.(`${vg.name}/anchor`);
          expect(result?.removed.map((r) => r.kind)).toEqual(['lease']);
          expect((await volumesLeft()).sort()).toEqual(['anchor', 'data']);
          expect(await sum('data')).toBe(a);
          b = undefined;
        }
      });

      it('an in-place restore whose swap outlasts its lease lifetime keeps renewing it: a cleanup meanwhile keeps its volumes, and the restore completes', async () => {
        // A short lease (4 s, renewed every second) and a removal of the original that stalls longer than that.
        const ttlMs = 4000;
        await overwriteData();
        let stalled!: () => void;
        const stalledNow = new Promise<void>((resolve) => {
          stalled = resolve;
        });
        let release!: () => void;
        const released = new Promise<void>((resolve) => {
          release = resolve;
        });
        const slow: ExecTransport = {
          target: ssh.exec.target,
          exec: async (request) => {
            if (SWAP_STEPS['remove-aside'](request.argv)) {
              stalled();
              await released;
            }
            return ssh.exec.exec(request);
          },
          spawn: (request) => ssh.exec.spawn(request),
        };
        const slowHv = await connect({ exec: slow, naming: { leaseTtlMs: ttlMs, leaseRenewMs: ttlMs / 4 } });
        try {
          const restoring = slowHv.backups?.restore?.(createSshSource(ssh, dir()), { mode: 'in-place' });
          restoring?.catch(() => {});
          await stalledNow;
          await new Promise((resolve) => setTimeout(resolve, ttlMs * 1.5));
          // Past the first lease's lifetime, with the original aside and the restored volume named `data`.
          const meanwhile = await hv.backups?.cleanup?.(`${vg.name}/anchor`);
          expect(meanwhile?.removed).toEqual([]);
          expect(meanwhile?.kept.length).toBeGreaterThan(0);
          expect(meanwhile?.kept.every((k) => k.kind === 'volume')).toBe(true);
          release();
          expect((await restoring)?.mode).toBe('in-place');
        } finally {
          release();
          await slowHv.close();
        }
        expect((await volumesLeft()).sort()).toEqual(['anchor', 'data']);
        expect(await sum('data')).toBe(a);
        expect(await hv.backups?.cleanup?.(`${vg.name}/anchor`)).toEqual({ removed: [], kept: [] });
      });
    });

    it('a thin pool metadata snapshot left reserved: kept while a live lease in the pool may need it, released by cleanup once none does', async () => {
      const thin = `${vg.name}/thin`;
      const dir = `${sinkDir}-thin`;
      const tpool = `/dev/mapper/${vg.name.replaceAll('-', '--')}-pool-tpool`;
      /** The held metadata root of the pool (`-` when none is reserved), by dmsetup. */
      const held = async () => {
        const fields = (await sh(ssh, `dmsetup status ${tpool}`)).trim().split(/\s+/);
        return fields[fields.indexOf('thin-pool') + 4];
      };
      try {
        await sh(
          ssh,
          `lvcreate -q -y -L 16M -T ${vg.name}/pool >/dev/null
lvcreate -q -y -V 8M -T ${vg.name}/pool -n thin >/dev/null
dd if=/dev/urandom of=/dev/${thin} bs=1M count=8 status=none conv=fsync`,
        );
        expect(await held()).toBe('-');
        // A run killed between reserve_metadata_snap and release_metadata_snap leaves the pool like this (the
        // window is milliseconds long, so the test reserves it itself), while another run, SIGKILLed too,
        // still holds a live lease on a volume of the pool.
        await killedBackup(thin, dir);
        const killedAt = Date.now();
        await sh(ssh, `dmsetup message ${tpool} 0 reserve_metadata_snap`);
        expect(await held()).not.toBe('-');

        const early = await hv.backups?.cleanup?.(thin);
        expect(early?.kept.map((k) => k.kind).sort()).toEqual(['snapshot', 'snapshot']);
        expect(early?.kept.find((k) => k.name.endsWith(':metadata-snapshot'))).toBeDefined();
        expect(await held()).not.toBe('-');

        expiredAfter(killedAt, TTL_MS);
        const result = await later.backups?.cleanup?.(thin);
        expect(result?.kept).toEqual([]);
        expect(result?.removed.find((k) => k.name === `${vg.name}/pool:metadata-snapshot`)).toBeDefined();
        expect(await held()).toBe('-');
        const again = await hv.backups?.cleanup?.(thin);
        expect(again).toEqual({ removed: [], kept: [] });
      } finally {
        await sh(
          ssh,
          `dmsetup message ${tpool} 0 release_metadata_snap >/dev/null 2>&1 || true
lvremove -q -y -f ${vg.name}/pool >/dev/null 2>&1 || true; rm -rf ${dir}`,
        );
      }
    });
  },
);
