/**
 * Checkpoint chains, leases, cleanup of crashed runs and progress, live against the libvirtd peer:
 *
 * - the peer's running guest hvkit-guest1 for the chain test (ten full and ten incremental backups, and a
 *   checkpoint made with virsh that must survive them) and its stopped, disk-less guest hvkit-guest2;
 * - a throwaway guest of this file (a 1 GiB qcow2 disk with 768 MiB of data, see test/throwaway-guest.ts)
 *   for runs killed with SIGKILL in a child process (test/backup-child.ts), leases and progress.
 *
 * The probe is `virsh -c qemu:///system` (an independent libvirt client) and the sink directory itself.
 */

import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import {
  BACKUP_MANIFEST_FILE,
  checkProgressLog,
  createDirectorySink,
  HvkitError,
  type Progress,
  parseBackupManifest,
} from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTestChild } from '../../test/child';
import { createThrowawayGuest, type ThrowawayGuest, virsh } from '../../test/throwaway-guest';
import { connect } from '../connect';
import { BACKUP_LEASE_KEY, BACKUP_LEASE_NAMESPACE, tempVolumePrefix } from '../mapping/backup-state';
import { PROGRAM } from '../protocol/constants';
import { remoteProcedures } from '../protocol/remote-protocol';
import { writeDomain } from '../protocol/types';
import { XdrReader, XdrWriter } from '../protocol/xdr';

/** `QEMU_PROC_DOMAIN_MONITOR_COMMAND` (qemu_protocol.x): dom, cmd, flags → result. */
const QEMU_PROC_DOMAIN_MONITOR_COMMAND = 1;

const peer = livePeer('libvirtd', [
  'HVKIT_LIBVIRT_QEMU_URI',
  'HVKIT_LIBVIRT_GUEST',
  'HVKIT_LIBVIRT_STOPPED_GUEST',
  'HVKIT_LIBVIRT_POOL',
]);
const RUN = `kbc${process.pid.toString(36)}`;

/** Every file and folder below `dir`, relative, sorted. */
function tree(dir: string, prefix = ''): string[] {
  const out: string[] = [];
  for (const e of readdirSync(join(dir, prefix), { withFileTypes: true })) {
    const rel = prefix ? `${prefix}/${e.name}` : e.name;
    out.push(e.isDirectory() ? `${rel}/` : rel);
    if (e.isDirectory()) out.push(...tree(dir, rel));
  }
  return out.sort();
}

/** Artifact folders (`<guest>/<id>/`) below `dir` that have no manifest, and hidden partial files. */
function incomplete(dir: string): string[] {
  const all = tree(dir);
  return all.filter(
    (p) =>
      /\/\.hvkit-partial-/.test(p) ||
      (/^[^/]+\/[^/]+\/$/.test(p) && !all.includes(`${p}${BACKUP_MANIFEST_FILE}`)),
  );
}

/** A child process backing up `guest` (test/backup-child.ts): its stdout lines, awaited by prefix. */
function backupChild(uri: string, guest: string, dir: string, hold: 'none' | 'download' | 'stdin') {
  return spawnTestChild('backup-child.ts', [uri, guest, dir, hold]);
}

describe.skipIf(!peer.available)(
  `backup chains, leases and cleanup, live (peer libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const uri = env.HVKIT_LIBVIRT_QEMU_URI as string;
    const guest1 = env.HVKIT_LIBVIRT_GUEST as string;
    const stopped = env.HVKIT_LIBVIRT_STOPPED_GUEST as string;
    const pool = env.HVKIT_LIBVIRT_POOL as string;
    const dirs: string[] = [];
    let tg: ThrowawayGuest | undefined;

    function tempDir(): string {
      const dir = mkdtempSync(join(tmpdir(), 'hvkit-chain-'));
      dirs.push(dir);
      return dir;
    }

    /** What is on the daemon for `guest`: its checkpoints, temporary volumes, job and lease. */
    async function daemonState(name: string, uuid: string) {
      await virsh(uri, 'pool-refresh', pool);
      const volumes = (await virsh(uri, 'vol-list', pool))
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[0] ?? '')
        .filter((v) => v.startsWith(tempVolumePrefix(uuid)));
      const checkpoints = (await virsh(uri, 'checkpoint-list', name, '--name'))
        .split('\n')
        .map((s) => s.trim())
        .filter((s) => s !== '')
        .sort();
      // A stopped domain has no job ("domain is not running").
      const info = await virsh(uri, 'domjobinfo', name).catch(() => 'Job type: None');
      const job = /Job type:\s*(\S+)/.exec(info)?.[1] ?? '?';
      const lease = await virsh(uri, 'metadata', name, '--uri', BACKUP_LEASE_NAMESPACE).then(
        (s) => s.trim(),
        () => '',
      );
      return { volumes, checkpoints, job, lease };
    }

    /**
     * Polls QEMU's block jobs of `name` through the monitor (QEMU program, DOMAIN_MONITOR_COMMAND, on a
     * connection of its own: a tight loop, no process per call) until a job appears, then sets its speed to
     * 1 MiB/s. False when no job appeared within 60 s.
     */
    async function slowDownBackupJob(name: string): Promise<boolean> {
      const hv = await connect({ uri });
      try {
        const dom = await hv.rpc.call(remoteProcedures.DOMAIN_LOOKUP_BY_NAME, { name });
        const monitor = async (command: object): Promise<{ return: { device: string }[] }> => {
          const w = new XdrWriter();
          writeDomain(w, dom);
          w.string(JSON.stringify(command));
          w.int(0);
          const r = new XdrReader(
            await hv.rpc.callRaw(PROGRAM.QEMU, QEMU_PROC_DOMAIN_MONITOR_COMMAND, w.bytes()),
          );
          return JSON.parse(r.string());
        };
        const until = Date.now() + 60_000;
        while (Date.now() < until) {
          const jobs = await monitor({ execute: 'query-block-jobs' });
          for (const j of jobs.return) {
            await monitor({
              execute: 'block-job-set-speed',
              arguments: { device: j.device, speed: 2 ** 20 },
            });
          }
          if (jobs.return.length > 0) return true;
        }
        return false;
      } finally {
        await hv.close();
      }
    }

    beforeAll(async () => {
      tg = await createThrowawayGuest(uri, pool, `hvkit-${RUN}`, { diskMiB: 1024, dataMiB: 768 });
    }, 300_000);

    afterAll(async () => {
      await tg?.remove();
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    }, 120_000);

    it('ten full and ten incremental backups of hvkit-guest1 leave only the current chain; a virsh-made checkpoint survives', async () => {
      const foreign = `${RUN}-virsh`;
      const uuid = (await virsh(uri, 'domuuid', guest1)).trim();
      await virsh(uri, 'checkpoint-create-as', guest1, '--name', foreign, '--description', 'virtnbdbackup.0');
      const hv = await connect({ uri });
      const dir = tempDir();
      const sink = createDirectorySink(dir);
      try {
        const ours = (s: string[]) => s.filter((c) => c !== foreign);
        // A full backup, then ten incrementals, each extending the one before.
        const full = await hv.backups.backup({ name: guest1 }, sink);
        let prev = full;
        const chain = [full.checkpoint];
        for (let i = 1; i <= 10; i++) {
          const inc = await hv.backups.backup({ name: guest1 }, sink, {
            mode: 'incremental',
            sinceCheckpoint: prev.checkpoint as string,
          });
          expect(inc.chain).toBe(full.id);
          const m = parseBackupManifest(readFileSync(join(dir, inc.path as string, BACKUP_MANIFEST_FILE)));
          expect(m.chain).toEqual({ id: full.id, position: i });
          expect(m.base).toBe(prev.id);
          expect(m.parentCheckpoint).toBe(prev.checkpoint);
          expect(m.files.find((f) => f.role === 'disk')?.disk?.incremental).toBe('qcow2-overlay');
          chain.push(inc.checkpoint);
          prev = inc;
        }
        let state = await daemonState(guest1, uuid);
        expect(ours(state.checkpoints)).toEqual([...chain].sort());
        expect(state.checkpoints).toContain(foreign);
        const listed = await hv.backups.listCheckpoints?.({ name: guest1 });
        expect(listed?.find((c) => c.id === foreign)).toMatchObject({ managed: false });
        expect(listed?.filter((c) => c.managed).every((c) => c.chain === full.id)).toBe(true);
        // Nine more fulls: after each, only its own checkpoint (and the foreign one) remain.
        for (let i = 0; i < 9; i++) {
          const next = await hv.backups.backup({ name: guest1 }, sink);
          expect(next.chain).toBe(next.id);
          state = await daemonState(guest1, uuid);
          expect(ours(state.checkpoints)).toEqual([next.checkpoint]);
          expect(state.checkpoints).toContain(foreign);
        }
        expect(state.volumes).toEqual([]);
        expect(state.job).toBe('None');
        expect(state.lease).toBe('');
        expect(incomplete(dir)).toEqual([]);
        // Every artifact describes itself: 20 folders, each with its manifest listing every other file.
        const folders = readdirSync(join(dir, guest1));
        expect(folders).toHaveLength(20);
        for (const id of folders) {
          const m = parseBackupManifest(readFileSync(join(dir, guest1, id, BACKUP_MANIFEST_FILE)));
          expect(m.id).toBe(id);
          expect(m.files.map((f) => f.name).sort()).toEqual(
            readdirSync(join(dir, guest1, id))
              .filter((f) => f !== BACKUP_MANIFEST_FILE)
              .sort(),
          );
          for (const f of m.files) expect(statSync(join(dir, guest1, id, f.name)).size).toBe(f.bytes);
        }
      } finally {
        await hv.close();
        await virsh(uri, 'checkpoint-delete', guest1, foreign).catch(() => {});
      }
    }, 300_000);

    it('a stopped guest without disks backs up to an artifact holding its definition', async () => {
      const hv = await connect({ uri });
      const dir = tempDir();
      try {
        const artifact = await hv.backups.backup({ name: stopped }, createDirectorySink(dir));
        expect(artifact.method).toBe('volume-download');
        expect(artifact.files.map((f) => f.name)).toEqual([
          `${artifact.path}/domain.xml`,
          `${artifact.path}/${BACKUP_MANIFEST_FILE}`,
        ]);
        const m = parseBackupManifest(readFileSync(join(dir, artifact.path as string, BACKUP_MANIFEST_FILE)));
        expect(m.files).toEqual([
          expect.objectContaining({ name: 'domain.xml', role: 'definition', format: 'libvirt-domain-xml' }),
        ]);
        expect(m.guest.name).toBe(stopped);
        const saved = readFileSync(join(dir, artifact.path as string, 'domain.xml'), 'utf8');
        const expected = await virsh(uri, 'dumpxml', '--inactive', '--security-info', stopped);
        expect(saved.trim()).toBe(expected.replace(/\s*<metadata\/>/, '').trim());
        expect((await daemonState(stopped, artifact.guest)).lease).toBe('');
      } finally {
        await hv.close();
      }
    });

    it('a run killed with SIGKILL mid-download leaves its lease, checkpoint, volume and partial file; cleanup({ sink }) removes them', async () => {
      const g = tg as ThrowawayGuest;
      const dir = tempDir();
      const child = backupChild(uri, g.name, dir, 'download');
      await child.waitFor('STALLED');
      await child.kill();
      const left = await daemonState(g.name, g.uuid);
      // The crashed run's leftovers are really there (else the test would prove nothing).
      expect(left.lease).toContain(`owner="${hostname()}:${child.child.pid}"`);
      expect(left.volumes).toHaveLength(1);
      expect(left.checkpoints.filter((c) => c.startsWith('hvkit-'))).toHaveLength(1);
      expect(incomplete(dir).some((p) => p.includes('.hvkit-partial-'))).toBe(true);

      const hv = await connect({ uri });
      try {
        const result = await hv.backups.cleanup?.({ name: g.name }, { sink: createDirectorySink(dir) });
        expect(result?.kept).toEqual([]);
        expect(result?.removed.map((r) => r.kind).sort()).toEqual(['checkpoint', 'file', 'lease', 'volume']);
        const after = await daemonState(g.name, g.uuid);
        expect(after).toEqual({ volumes: [], checkpoints: [], job: 'None', lease: '' });
        expect(tree(dir)).toEqual([`${g.name}/`]);
        // Nothing more to do the second time.
        expect(await hv.backups.cleanup?.({ name: g.name }, { sink: createDirectorySink(dir) })).toEqual({
          removed: [],
          kept: [],
        });
      } finally {
        await hv.close();
      }
    }, 300_000);

    it('a run killed with SIGKILL while its push job runs: the next backup aborts the stale job, removes the rest and succeeds', async () => {
      const g = tg as ThrowawayGuest;
      const dir = tempDir();
      const child = backupChild(uri, g.name, dir, 'none');
      // Slow QEMU's backup job down as soon as it appears (test only, through the monitor), so that it
      // still runs after the kill: watched in a tight loop from before the child starts it.
      const slowed = await slowDownBackupJob(g.name);
      expect(slowed, 'the backup job never showed up in query-block-jobs').toBe(true);
      await child.waitFor('PHASE libvirt-push');
      await child.kill();
      const left = await daemonState(g.name, g.uuid);
      expect(left.lease).not.toBe('');
      expect(left.job).not.toBe('None');
      expect(left.checkpoints.filter((c) => c.startsWith('hvkit-'))).toHaveLength(1);

      const info: string[] = [];
      const logger = {
        debug() {},
        info: (m: string) => info.push(m),
        warn: (m: string) => info.push(`warn: ${m}`),
        error: (m: string) => info.push(`error: ${m}`),
      };
      const hv = await connect({ uri, logger });
      try {
        const artifact = await hv.backups.backup({ name: g.name }, createDirectorySink(dir));
        const after = await daemonState(g.name, g.uuid);
        expect(after).toEqual({ volumes: [], checkpoints: [artifact.checkpoint], job: 'None', lease: '' });
        expect(incomplete(dir)).toEqual([]);
        expect(readdirSync(join(dir, g.name))).toEqual([artifact.id]);
        const removed = info.find((m) => m.includes('removed what crashed backups'));
        // (libvirt deletes the files of a push job it cancels, so no volume is left to remove then.)
        for (const what of ['job backup job', 'checkpoint hvkit-', 'lease ']) expect(removed).toContain(what);
        expect(info.filter((m) => m.startsWith('warn') || m.startsWith('error'))).toEqual([]);
      } finally {
        await hv.close();
      }
    }, 300_000);

    it("another process's live lease is respected: cleanup keeps what it holds, a backup is CONFLICT, the other backup completes", async () => {
      const g = tg as ThrowawayGuest;
      const dir = tempDir();
      const child = backupChild(uri, g.name, dir, 'stdin');
      const hv = await connect({ uri });
      try {
        await child.waitFor('STALLED');
        const result = await hv.backups.cleanup?.({ name: g.name }, { sink: createDirectorySink(dir) });
        expect(result?.removed).toEqual([]);
        expect(result?.kept.map((k) => k.kind).sort()).toEqual(['checkpoint', 'file', 'lease', 'volume']);
        const run = result?.kept.find((k) => k.kind === 'lease')?.run;
        expect(result?.kept.every((k) => k.run === run)).toBe(true);
        const other = await hv.backups.backup({ name: g.name }, createDirectorySink(tempDir())).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(HvkitError.isInstance(other, 'CONFLICT'), String(other)).toBe(true);
        expect((other as HvkitError).message).toContain(`${hostname()}:${child.child.pid}`);
        // The other run goes on untouched and completes.
        child.child.stdin?.write('go\n');
        const done = await child.waitFor('DONE');
        const artifact = JSON.parse(done.slice(5)) as { id: string; checkpoint: string };
        expect(artifact.id).toBe(run);
        await child.exited;
        expect(await daemonState(g.name, g.uuid)).toEqual({
          volumes: [],
          checkpoints: [artifact.checkpoint],
          job: 'None',
          lease: '',
        });
        expect(incomplete(dir)).toEqual([]);
      } finally {
        await hv.close();
        await child.kill();
      }
    }, 300_000);

    it("another host's lease blocks while live and is removed as a leftover once expired", async () => {
      const g = tg as ThrowawayGuest;
      const hv = await connect({ uri });
      const setLease = (expiresAt: string) =>
        virsh(
          uri,
          'metadata',
          g.name,
          '--uri',
          BACKUP_LEASE_NAMESPACE,
          '--key',
          BACKUP_LEASE_KEY,
          '--live',
          '--config',
          '--set',
          `<lease owner="elsewhere.invalid:4242" run="${RUN}-other" operation="backup" startedAt="2026-01-01T00:00:00.000Z" expiresAt="${expiresAt}"/>`,
        );
      try {
        await setLease(new Date(Date.now() + 3_600_000).toISOString());
        const blocked = await hv.backups.backup({ name: g.name }, createDirectorySink(tempDir())).then(
          () => undefined,
          (e: unknown) => e,
        );
        expect(HvkitError.isInstance(blocked, 'CONFLICT'), String(blocked)).toBe(true);
        expect(await hv.backups.cleanup?.({ name: g.name })).toEqual({
          removed: [],
          kept: [{ kind: 'lease', name: 'elsewhere.invalid:4242', run: `${RUN}-other` }],
        });
        await setLease('2026-01-01T00:02:00.000Z');
        expect(await hv.backups.cleanup?.({ name: g.name })).toEqual({
          removed: [{ kind: 'lease', name: 'elsewhere.invalid:4242', run: `${RUN}-other` }],
          kept: [],
        });
        expect((await daemonState(g.name, g.uuid)).lease).toBe('');
      } finally {
        await virsh(
          uri,
          'metadata',
          g.name,
          '--uri',
          BACKUP_LEASE_NAMESPACE,
          '--remove',
          '--live',
          '--config',
        ).catch(() => {});
        await hv.close();
      }
    }, 120_000);

    it('the lease is renewed while the backup runs and removed at its end', async () => {
      const g = tg as ThrowawayGuest;
      // Renewals every 200 ms with a 1 s lifetime (internal options), a sink held after the first MiB.
      const hv = await connect({ uri, naming: { leaseRenewMs: 200, leaseTtlMs: 1000 } });
      const inner = createDirectorySink(tempDir());
      let release: () => void = () => {};
      const released = new Promise<void>((resolve) => {
        release = resolve;
      });
      let held: () => void = () => {};
      const holding = new Promise<void>((resolve) => {
        held = resolve;
      });
      const sink = {
        ...inner,
        writeFile: (
          name: string,
          source: AsyncIterable<Uint8Array>,
          options?: Parameters<typeof inner.writeFile>[2],
        ) => {
          if (!name.includes('/disk-')) return inner.writeFile(name, source, options);
          async function* slow(): AsyncGenerator<Uint8Array> {
            let n = 0;
            for await (const chunk of source) {
              yield chunk;
              n += chunk.byteLength;
              if (n >= 2 ** 20 && n - chunk.byteLength < 2 ** 20) {
                held();
                await released;
              }
            }
          }
          return inner.writeFile(name, slow(), options);
        },
      };
      try {
        const backup = hv.backups.backup({ name: g.name }, sink);
        backup.catch(() => {});
        await holding;
        const expiry = async () =>
          Date.parse(/expiresAt="([^"]+)"/.exec((await daemonState(g.name, g.uuid)).lease)?.[1] ?? '');
        const first = await expiry();
        await new Promise((resolve) => setTimeout(resolve, 800));
        const second = await expiry();
        // Without renewal the lease would have expired by now (1 s lifetime); it was pushed forward.
        expect(Number.isFinite(first)).toBe(true);
        expect(second).toBeGreaterThan(first);
        expect(second).toBeGreaterThan(Date.now());
        release();
        await backup;
        expect((await daemonState(g.name, g.uuid)).lease).toBe('');
      } finally {
        release();
        await hv.close();
      }
    }, 300_000);

    it('progress: one reporter, each phase with its total before it starts, never past it, about 10 calls a second', async () => {
      const g = tg as ThrowawayGuest;
      const hv = await connect({ uri });
      const log: Progress[] = [];
      const started = performance.now();
      try {
        const artifact = await hv.backups.backup({ name: g.name }, createDirectorySink(tempDir()), {
          onProgress: (p) => log.push(p),
        });
        const elapsedMs = performance.now() - started;
        expect(checkProgressLog(log, { elapsedMs })).toEqual([]);
        const phases = [...new Set(log.map((p) => p.phase))];
        expect(phases).toEqual(['libvirt-push', 'download']);
        for (const phase of phases) {
          const entries = log.filter((p) => p.phase === phase);
          expect(entries[0]?.processedBytes).toBe(0);
          expect(entries[0]?.totalBytes).toBeGreaterThan(0);
          expect(entries.at(-1)?.processedBytes).toBe(entries[0]?.totalBytes);
        }
        const disk = artifact.files.find((f) => f.name.endsWith('.qcow2'));
        expect(log.filter((p) => p.phase === 'download')[0]?.totalBytes).toBe(disk?.bytes);
        console.log(
          `progress: ${log.length} callbacks in ${Math.round(elapsedMs)} ms for ${disk?.bytes} bytes downloaded (push total ${log[0]?.totalBytes})`,
        );
      } finally {
        await hv.close();
      }
    }, 300_000);
  },
);
