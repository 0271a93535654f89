/**
 * `close()` while a backup runs, live against the libvirtd peer's running guest (hvkit-guest1, 64 MiB
 * disk): the backup streams into a sink that stalls on its first chunk (a stream sink over a Writable that
 * never accepts the data), and `close()` is called then, with the checkpoint and the temporary volume in
 * place, the job finished and the download running on the second connection.
 *
 * The probe is `virsh -c qemu:///system` (an independent libvirt client): no volume of the backup left in
 * the pool, no checkpoint of it, no domain job; and the sink directory is empty. Every name the backups
 * here create carries a per-run prefix, so backups of other tests on the same guest do not count.
 */

import { execFile } from 'node:child_process';
import { createWriteStream, mkdirSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { Writable } from 'node:stream';
import { livePeer } from '@hvkit/conformance';
import { type BackupSink, createStreamSink, HvkitError, type Logger } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { connect, type KvmLibvirtAdapter } from '../connect';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_GUEST', 'HVKIT_LIBVIRT_POOL']);

const RUN = `kvma${process.pid.toString(36)}${Date.now().toString(36)}`;
let seq = 0;
const naming = { uniqueId: () => `${RUN}-${++seq}` };

/** Runs virsh without blocking the event loop (the adapter's connections stay served meanwhile). */
function virsh(uri: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8', timeout: 60_000 }, (error, stdout) =>
      error ? reject(error) : resolve(stdout),
    );
  });
}

/** Logger keeping every warning and error with its metadata. */
function spyLogger(): Logger & {
  lines: { level: string; message: string; meta?: Record<string, unknown> }[];
} {
  const lines: { level: string; message: string; meta?: Record<string, unknown> }[] = [];
  return {
    lines,
    debug() {},
    info() {},
    warn(message, meta) {
      lines.push({ level: 'warn', message, ...(meta ? { meta } : {}) });
    },
    error(message, meta) {
      lines.push({ level: 'error', message, ...(meta ? { meta } : {}) });
    },
  };
}

/**
 * A stream sink writing into `dir` through a Writable that takes the first chunk of a disk file and never
 * finishes writing it (a stalled receiver): the sink's pump waits for `drain` until its signal aborts. `removeFile`
 * deletes the file, or hangs forever with `hangOnRemove`. `firstChunk` resolves when data arrived.
 */
function stallingSink(dir: string, options: { hangOnRemove?: boolean } = {}) {
  let arrived: () => void = () => {};
  const firstChunk = new Promise<void>((resolve) => {
    arrived = resolve;
  });
  const sink: BackupSink = createStreamSink(
    (name) => {
      // Names are `<guest>/<artifact id>/<file>`.
      mkdirSync(dirname(join(dir, name)), { recursive: true });
      const file = createWriteStream(join(dir, name));
      // The definition (`domain.xml`, written before the job) goes through; a disk file stalls.
      const stalls = /\/disk-[^/]+$/.test(name);
      return new Writable({
        highWaterMark: 1024,
        write(chunk: Buffer, _encoding, callback) {
          if (!stalls) {
            file.write(chunk, callback);
            return;
          }
          // Part of the data reaches the file (a partial that must not stay); the callback never comes.
          file.write(chunk.subarray(0, 512));
          arrived();
        },
        final(callback) {
          file.end(callback);
        },
        destroy(error, callback) {
          file.end(() => callback(error));
        },
      });
    },
    {
      location: dir,
      remove: (name) =>
        options.hangOnRemove
          ? new Promise<void>(() => {})
          : Promise.resolve(rmSync(join(dir, name), { force: true })),
    },
  );
  return { sink, firstChunk };
}

/** The files below `dir` (relative paths), without the folders that hold them. */
function files(dir: string): string[] {
  return (readdirSync(dir, { recursive: true, withFileTypes: true }) as import('node:fs').Dirent[])
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath, e.name).slice(dir.length + 1))
    .sort();
}

describe.skipIf(!peer.available)(
  `close() during a backup, live (peer libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const uri = env.HVKIT_LIBVIRT_QEMU_URI as string;
    const guest = env.HVKIT_LIBVIRT_GUEST as string;
    const pool = env.HVKIT_LIBVIRT_POOL as string;
    const dirs: string[] = [];

    /** What the backups of this run left on the daemon: volumes and checkpoints whose names carry RUN. */
    async function leftovers(): Promise<{ volumes: string[]; checkpoints: string[]; job: string }> {
      await virsh(uri, 'pool-refresh', pool);
      const volumes = (await virsh(uri, 'vol-list', pool))
        .split('\n')
        .map((l) => l.trim().split(/\s+/)[1] ?? '')
        .filter((p) => p.includes(RUN));
      const checkpoints = (await virsh(uri, 'checkpoint-list', guest, '--name'))
        .split('\n')
        .map((s) => s.trim())
        .filter((s) => s.includes(RUN));
      const job = /Job type:\s*(\S+)/.exec(await virsh(uri, 'domjobinfo', guest))?.[1] ?? '?';
      return { volumes, checkpoints, job };
    }

    afterEach(async () => {
      // Whatever a failing run left behind goes, so the shared guest stays clean.
      let left = await leftovers();
      // A job while this run's files exist is this run's backup (other tests' jobs are left alone).
      if (left.job !== 'None' && (left.volumes.length > 0 || left.checkpoints.length > 0)) {
        await virsh(uri, 'domjobabort', guest).catch(() => {});
        left = await leftovers();
      }
      for (const name of left.checkpoints.reverse()) await virsh(uri, 'checkpoint-delete', guest, name);
      for (const path of left.volumes) await virsh(uri, 'vol-delete', path);
      for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
    });

    function tempDir(): string {
      const dir = mkdtempSync(join(tmpdir(), 'hvkit-close-'));
      dirs.push(dir);
      return dir;
    }

    /** Starts a backup into `sink`; resolves (with the backup's promise) once its first chunk reached the sink. */
    async function backupInFlight(hv: KvmLibvirtAdapter, sink: BackupSink, firstChunk: Promise<void>) {
      const backup = hv.backups!.backup({ name: guest }, sink);
      backup.catch(() => {});
      const started = await Promise.race([
        firstChunk.then(() => true),
        backup.then(
          () => false,
          () => false,
        ),
      ]);
      if (!started) throw await backup.then(() => new Error('the backup ended before any data arrived'));
      // Mid-stream: the job is done, the checkpoint and the temporary volume exist.
      const during = await leftovers();
      expect(during.checkpoints).toHaveLength(1);
      expect(during.volumes).toHaveLength(1);
      // In an object: an async function returning the promise itself would wait for it.
      return { backup };
    }

    it('aborts the backup, removes its volume, checkpoint and sink file before close() resolves; later calls reject', async () => {
      const logger = spyLogger();
      const hv = await connect({ uri, logger, naming });
      const dir = tempDir();
      const { sink, firstChunk } = stallingSink(dir);
      const { backup } = await backupInFlight(hv, sink, firstChunk);
      // The definition and the disk file being written.
      expect(files(dir)).toHaveLength(2);

      const started = Date.now();
      const closing = hv.close();
      const closed = await Promise.race([
        closing.then(() => true),
        new Promise<false>((resolve) => setTimeout(() => resolve(false), 30_000).unref()),
      ]);
      const closeMs = Date.now() - started;
      expect(closed, 'close() did not resolve within 30 s: the backup was not aborted').toBe(true);
      // Checked the moment close() resolved: the cleanup ran before it.
      expect(await leftovers()).toEqual({ volumes: [], checkpoints: [], job: 'None' });
      expect(files(dir)).toEqual([]);
      // The backup was aborted by close() (ABORTED: cancelled on purpose, not a lost connection).
      const outcome = await backup.then(
        () => 'resolved',
        (e: unknown) => e,
      );
      expect(HvkitError.isInstance(outcome, 'ABORTED'), String(outcome)).toBe(true);
      expect((outcome as HvkitError).message).toMatch(/closed/);
      expect(logger.lines.filter((l) => l.level === 'warn')).toEqual([]);
      console.log(`close() during a backup resolved after ${closeMs} ms`);

      // Nothing succeeds on a closed adapter.
      for (const call of [
        () => hv.inventory!.listGuests(),
        () => hv.limits!.get({ name: guest }),
        () => hv.backups!.backup({ name: guest }, stallingSink(tempDir()).sink),
        () => hv.labels!.get({ name: guest }),
      ]) {
        const error = await call().then(
          () => 'resolved',
          (e: unknown) => e,
        );
        expect(HvkitError.isInstance(error, 'CONNECTION_LOST'), String(error)).toBe(true);
      }
      expect(await leftovers()).toEqual({ volumes: [], checkpoints: [], job: 'None' });
    }, 90_000);

    it('when the cleanup outlasts closeTimeoutMs, close() resolves at the bound and logs what it could not remove, by name', async () => {
      const logger = spyLogger();
      const hv = await connect({ uri, logger, naming, closeTimeoutMs: 1500 });
      const dir = tempDir();
      // The sink never finishes removing its file: that cleanup step cannot complete.
      const { sink, firstChunk } = stallingSink(dir, { hangOnRemove: true });
      const { backup } = await backupInFlight(hv, sink, firstChunk);
      const written = files(dir);

      const started = Date.now();
      await hv.close();
      const closeMs = Date.now() - started;
      expect(closeMs).toBeGreaterThanOrEqual(1400);
      expect(closeMs).toBeLessThan(1500 + 5000);
      // The daemon side was cleaned within the bound; the sink file is what is left, and it is named.
      expect(await leftovers()).toEqual({ volumes: [], checkpoints: [], job: 'None' });
      // (The lease went before the sink's files: only those are left, each named.)
      const warned = logger.lines.filter((l) => l.level === 'warn').map((l) => l.message);
      expect(warned).toHaveLength(written.length);
      for (const [i, file] of written.entries()) {
        expect(warned.some((w) => w.includes(`sink file ${JSON.stringify(file)}`))).toBe(true);
        expect(warned[i]).toContain(dir);
      }
      // The backup does not wait for the sink forever: it rejects once close() stopped waiting.
      const outcome = await Promise.race([
        backup.then(
          () => 'resolved',
          (e: unknown) => e,
        ),
        new Promise((resolve) => setTimeout(() => resolve('still pending'), 2000).unref()),
      ]);
      expect(HvkitError.isInstance(outcome, 'ABORTED'), String(outcome)).toBe(true);
      console.log(`close() with a hanging sink cleanup resolved after ${closeMs} ms (closeTimeoutMs 1500)`);
    }, 90_000);

    it('with closeTimeoutMs 0, whatever is still on the daemon after close() was logged by name', async () => {
      const logger = spyLogger();
      const hv = await connect({ uri, logger, naming, closeTimeoutMs: 0 });
      const dir = tempDir();
      const { sink, firstChunk } = stallingSink(dir);
      const { backup } = await backupInFlight(hv, sink, firstChunk);
      await hv.close();
      await backup.catch(() => {});
      const warned = logger.lines
        .filter((l) => l.level === 'warn')
        .map((l) => l.message)
        .join('\n');
      const left = await leftovers();
      for (const path of left.volumes) expect(warned).toContain(path);
      for (const name of left.checkpoints) expect(warned).toContain(name);
      if (left.job !== 'None') expect(warned).toMatch(/backup job/);
      for (const name of files(dir)) expect(warned).toContain(name);
      console.log(
        `closeTimeoutMs 0 left ${left.volumes.length} volume(s), ${left.checkpoints.length} checkpoint(s), job ${left.job}; ${logger.lines.length} warning(s):\n${warned}`,
      );
    }, 90_000);
  },
);
