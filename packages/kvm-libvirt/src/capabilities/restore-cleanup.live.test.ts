/**
 * What a killed restore leaves, and who finds it, live against the libvirtd peer (libvirtd QEMU, pool of
 * `HVKIT_LIBVIRT_POOL`): restores run in child processes (test/restore-child.ts) held in the middle of their
 * upload and killed with SIGKILL; `backups.cleanup` of the target or the source guest, and the next restore,
 * must leave no `hvkit-restore-*` volume of a dead run (`virsh vol-list`), and keep a live restore's volumes.
 *
 * Everything here is a throwaway of this file: a stopped source guest `hvkit-krc<pid>` on a 64 MiB qcow2 with
 * 8 MiB of data (test/throwaway-guest.ts), its full backup in a temporary directory, the restores' runs
 * (named `<tag>-<n>` through the `naming` option, so that their volumes are recognisable) and guests; all are
 * removed in `afterAll`. The peer's guests are not touched.
 */

import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { createDirectorySink, createDirectorySource, HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTestChild } from '../../test/child';
import { createThrowawayGuest, type ThrowawayGuest, virsh } from '../../test/throwaway-guest';
import { connect } from '../connect';
import { BACKUP_LEASE_NAMESPACE } from '../mapping/backup-state';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_POOL']);
const TAG = `hvkit-krc${process.pid.toString(36)}`;

describe.skipIf(!peer.available)(
  `restore leftovers and the restore lease, live (peer libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const uri = env.HVKIT_LIBVIRT_QEMU_URI as string;
    const pool = env.HVKIT_LIBVIRT_POOL as string;
    let dir = '';
    const guests = new Set<string>();
    let g: ThrowawayGuest | undefined;
    let artifact = '';
    let runs = 0;
    /** A run id of this file: its volumes are `hvkit-restore-<run>…`. */
    const newRun = () => `${TAG}-${++runs}`;

    /** This file's restore volumes in the pool (`virsh vol-list`), sorted. */
    async function restoreVolumes(): Promise<string[]> {
      return (await virsh(uri, 'vol-list', pool))
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0] ?? '')
        .filter((v) => v.startsWith(`hvkit-restore-${TAG}-`))
        .sort();
    }
    const ofRun = (vols: string[], run: string) =>
      vols.filter((v) => v === `hvkit-restore-${run}.lease` || v.startsWith(`hvkit-restore-${run}-`));

    /** A restore in a child process, held in its upload (`upload`: for good; `stdin`: until told). */
    function restoreChild(mode: 'new' | 'in-place', name: string, run: string, hold: 'upload' | 'stdin') {
      if (mode === 'new') guests.add(name);
      return spawnTestChild('restore-child.ts', [uri, dir, artifact, mode, name, run, hold]);
    }

    beforeAll(async () => {
      dir = mkdtempSync(join(tmpdir(), 'hvkit-rclean-'));
      g = await createThrowawayGuest(uri, pool, TAG, { diskMiB: 64, dataMiB: 8 });
      await virsh(uri, 'destroy', TAG);
      await using hv = await connect({ uri });
      artifact = (await hv.backups.backup({ name: TAG }, createDirectorySink(dir, { fsync: false }))).id;
    }, 300_000);

    afterAll(async () => {
      if (!peer.available) return;
      for (const name of guests) {
        await virsh(uri, 'destroy', name).catch(() => {});
        await virsh(uri, 'undefine', name).catch(() => {});
      }
      await g?.remove();
      for (const v of await restoreVolumes().catch(() => [])) {
        await virsh(uri, 'vol-delete', '--pool', pool, v).catch(() => {});
      }
      if (dir) rmSync(dir, { recursive: true, force: true });
    }, 300_000);

    it("a restore as new killed mid-upload: cleanup of its target name removes its volumes and lease; a live restore's are kept", async () => {
      // A restore (as new) that runs meanwhile, held in its upload; started first, since the start of every
      // restore removes what dead runs left (the next test).
      const liveRun = newRun();
      const liveName = `${TAG}-new2`;
      const live = restoreChild('new', liveName, liveRun, 'stdin');
      await using hv = await connect({ uri });
      try {
        await live.waitFor('STALLED');
        const liveVolumes = ofRun(await restoreVolumes(), liveRun);
        expect(liveVolumes).toHaveLength(2);

        const killedRun = newRun();
        const killedName = `${TAG}-new1`;
        const killed = restoreChild('new', killedName, killedRun, 'upload');
        await killed.waitFor('STALLED');
        await killed.kill();
        // The killed run's leftovers are really there (else the test would prove nothing).
        expect(ofRun(await restoreVolumes(), killedRun)).toEqual([
          `hvkit-restore-${killedRun}-vda-0.qcow2`,
          `hvkit-restore-${killedRun}.lease`,
        ]);

        // The guest the killed restore targeted was never defined: its name still finds the leftovers.
        const result = await hv.backups.cleanup?.({ name: killedName });
        expect(result?.kept).toEqual([]);
        expect(result?.removed.map((r) => [r.kind, r.run])).toEqual(
          expect.arrayContaining([
            ['volume', `hvkit-restore-${killedRun}`],
            ['lease', `hvkit-restore-${killedRun}`],
          ]),
        );
        expect(result?.removed).toHaveLength(2);
        expect(ofRun(await restoreVolumes(), killedRun)).toEqual([]);
        expect(ofRun(await restoreVolumes(), liveRun)).toEqual(liveVolumes);

        // The source guest's cleanup sees the live restore from its artifact and keeps what it holds.
        const source = await hv.backups.cleanup?.({ name: TAG });
        expect(source?.removed).toEqual([]);
        expect(source?.kept.map((k) => [k.kind, k.run]).sort()).toEqual([
          ['lease', `hvkit-restore-${liveRun}`],
          ['volume', `hvkit-restore-${liveRun}`],
        ]);
        expect(source?.kept.find((k) => k.kind === 'lease')?.name).toMatch(
          new RegExp(`/hvkit-restore-${liveRun}\\.lease$`),
        );

        // A second restore to the live one's target name is CONFLICT while it runs; nothing created.
        const before = await restoreVolumes();
        const clash = await hv.backups
          .restore?.(createDirectorySource(dir), { artifact, name: liveName })
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(HvkitError.isInstance(clash, 'CONFLICT'), String(clash)).toBe(true);
        expect((clash as HvkitError).details).toMatchObject({
          reason: 'lease',
          run: `hvkit-restore-${liveRun}`,
        });
        expect(await restoreVolumes()).toEqual(before);

        // The live restore completes; its disk, now the new guest's, is no leftover.
        live.child.stdin?.write('go\n');
        expect(await live.waitFor('DONE')).toContain(liveName);
        await live.exited;
        expect(ofRun(await restoreVolumes(), liveRun)).toEqual([`hvkit-restore-${liveRun}-vda-0.qcow2`]);
        expect(await hv.backups.cleanup?.({ name: TAG })).toEqual({ removed: [], kept: [] });
        expect(await hv.backups.cleanup?.({ name: liveName })).toEqual({ removed: [], kept: [] });
        expect(ofRun(await restoreVolumes(), liveRun)).toEqual([`hvkit-restore-${liveRun}-vda-0.qcow2`]);
        // A name no guest and no restore has is NOT_FOUND, as before.
        const none = await hv.backups.cleanup?.({ name: killedName }).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(HvkitError.isInstance(none, 'NOT_FOUND'), String(none)).toBe(true);
      } finally {
        await live.kill();
      }
    }, 300_000);

    it('a restore killed mid-upload: the next restore removes what it left before it starts', async () => {
      const killedRun = newRun();
      const killed = restoreChild('new', `${TAG}-new3`, killedRun, 'upload');
      await killed.waitFor('STALLED');
      await killed.kill();
      expect(ofRun(await restoreVolumes(), killedRun)).toHaveLength(2);
      const info: string[] = [];
      const logger = {
        debug() {},
        info: (m: string) => info.push(m),
        warn: (m: string) => info.push(`warn: ${m}`),
        error: (m: string) => info.push(`error: ${m}`),
      };
      const name = `${TAG}-new4`;
      guests.add(name);
      const run = newRun();
      await using hv = await connect({ uri, logger, naming: { uniqueId: () => run } });
      const result = await hv.backups.restore?.(createDirectorySource(dir), { artifact, name });
      expect(result?.guest.name).toBe(name);
      expect(ofRun(await restoreVolumes(), killedRun)).toEqual([]);
      expect(ofRun(await restoreVolumes(), run)).toEqual([`hvkit-restore-${run}-vda-0.qcow2`]);
      const removed = info.find((m) => m.includes('killed restores left'));
      expect(removed).toContain(`hvkit-restore-${killedRun}.lease`);
      expect(info.filter((m) => m.startsWith('warn') || m.startsWith('error'))).toEqual([]);
    }, 300_000);

    it("in place: a live restore's guest lease makes a backup CONFLICT and cleanup keep it; killed, cleanup of the guest removes its lease and volumes", async () => {
      const guestLease = () =>
        virsh(uri, 'metadata', TAG, '--uri', BACKUP_LEASE_NAMESPACE).then(
          (s) => s.trim(),
          () => '',
        );
      const liveRun = newRun();
      const live = restoreChild('in-place', '-', liveRun, 'stdin');
      await using hv = await connect({ uri });
      try {
        await live.waitFor('STALLED');
        expect(await guestLease()).toContain('operation="restore"');
        // Backups already see an in-place restore through the guest's lease: CONFLICT, naming the restore.
        const blocked = await hv.backups
          .backup({ name: TAG }, createDirectorySink(dir, { fsync: false }))
          .then(
            () => undefined,
            (e: unknown) => e,
          );
        expect(HvkitError.isInstance(blocked, 'CONFLICT'), String(blocked)).toBe(true);
        expect((blocked as HvkitError).message).toContain('restore');
        expect((blocked as HvkitError).details).toMatchObject({
          reason: 'lease',
          run: `hvkit-restore-${liveRun}`,
        });
        const kept = await hv.backups.cleanup?.({ name: TAG });
        expect(kept?.removed).toEqual([]);
        expect(kept?.kept.map((k) => [k.kind, k.run]).sort()).toEqual([
          ['lease', `hvkit-restore-${liveRun}`],
          ['lease', `hvkit-restore-${liveRun}`],
          ['volume', `hvkit-restore-${liveRun}`],
        ]);
      } finally {
        await live.kill();
      }
      // Killed: the guest lease (dead now: its owner is gone), the lease volume and the upload's volume.
      expect(await guestLease()).toContain('operation="restore"');
      expect(ofRun(await restoreVolumes(), liveRun)).toHaveLength(2);
      const result = await hv.backups.cleanup?.({ name: TAG });
      expect(result?.kept).toEqual([]);
      expect(result?.removed.map((r) => [r.kind, r.run]).sort()).toEqual([
        ['lease', `hvkit-restore-${liveRun}`],
        ['lease', `hvkit-restore-${liveRun}`],
        ['volume', `hvkit-restore-${liveRun}`],
      ]);
      expect(await guestLease()).toBe('');
      expect(ofRun(await restoreVolumes(), liveRun)).toEqual([]);
      // The guest still has its own disk.
      expect(await virsh(uri, 'domblklist', TAG)).toContain(`${TAG}.qcow2`);
    }, 300_000);
  },
);
