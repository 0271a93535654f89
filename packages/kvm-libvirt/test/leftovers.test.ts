/**
 * What this package's tests leave behind on the machine.
 *
 * - Every live file run with its peers absent (`HVKIT_LIVE=off`, as `npm run test:replay` does) in a vitest
 *   child process of its own, with a private `TMPDIR`: every test is skipped, and no process (a throwaway
 *   libvirtd) and no file or folder in that `TMPDIR` is left afterwards. Collecting a skipped file runs its
 *   `describe` bodies, so nothing there may start a daemon or make a folder.
 * - A throwaway libvirtd (test/throwaway-libvirtd.ts) whose process ends without disposing of it (an exit,
 *   SIGTERM as vitest ends its workers, SIGINT, SIGHUP, SIGKILL) does not outlive it, and one whose process
 *   loses its parent's IPC channel (a vitest worker whose main process was ended) is stopped at once (needs
 *   the libvirtd binary).
 */

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { liveMode, waitUntil as until } from '@hvkit/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawnTestChild, type TestChild } from './child';
import { libvirtdAvailable } from './throwaway-libvirtd';

const pkg = join(import.meta.dirname, '..');
const onLinux = process.platform === 'linux';

/** Processes whose command line mentions `path` (read from /proc; zombies have none). */
function processesMentioning(path: string): { pid: number; cmdline: string }[] {
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(join('/proc', entry, 'cmdline'), 'utf8')
        .replaceAll('\0', ' ')
        .trim();
    } catch {
      continue; // ended meanwhile
    }
    if (cmdline.includes(path)) found.push({ pid: Number(entry), cmdline });
  }
  return found;
}

/** Kills what a failed run left (SIGCONT first, in case it is stopped), so that the next run starts clean. */
function killLeftovers(path: string): void {
  for (const { pid } of processesMentioning(path)) {
    for (const signal of ['SIGCONT', 'SIGKILL'] as const) {
      try {
        process.kill(pid, signal);
      } catch {
        // already gone
      }
    }
  }
}

/** This package's live test files, relative to it. */
function liveFiles(): string[] {
  return ['src', 'test']
    .flatMap((top) => readdirSync(join(pkg, top), { recursive: true }).map((f) => join(top, String(f))))
    .filter((f) => f.endsWith('.live.test.ts'))
    .sort();
}

interface JsonReport {
  numTotalTests: number;
  numPassedTests: number;
  numFailedTests: number;
  numPendingTests: number;
  numTodoTests: number;
  numFailedTestSuites: number;
  testResults: { name: string; status: string }[];
}

describe.skipIf(!onLinux)(
  `skipped live files leave nothing behind${onLinux ? '' : ' (skipped: reads /proc, Linux only)'}`,
  () => {
    let base = '';
    beforeAll(() => {
      base = mkdtempSync(join(tmpdir(), 'hvkit-leftovers-'));
    });
    afterAll(() => {
      if (!base) return;
      killLeftovers(base);
      rmSync(base, { recursive: true, force: true });
    });

    it('every live file with its peers absent: all tests skipped, no process and nothing in TMPDIR left', async () => {
      const files = liveFiles();
      expect(files.length).toBeGreaterThan(10);
      const childTmp = join(base, 'tmp');
      mkdirSync(childTmp);
      const report = join(base, 'report.json');
      const env: NodeJS.ProcessEnv = {};
      for (const [k, v] of Object.entries(process.env)) {
        if (!k.startsWith('VITEST') && !k.startsWith('HVKIT_')) env[k] = v;
      }
      env.HVKIT_LIVE = 'off';
      env.TMPDIR = childTmp;
      const cli = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
      const outcome = await new Promise<{ error: Error | null; output: string }>((resolve) => {
        execFile(
          process.execPath,
          [cli, 'run', '--fileParallelism', '--reporter=json', `--outputFile=${report}`, ...files],
          { cwd: pkg, env, timeout: 90_000, maxBuffer: 16 * 1024 * 1024 },
          (error, stdout, stderr) => resolve({ error, output: `${stdout}\n${stderr}`.slice(-4000) }),
        );
      });
      expect(outcome.error, outcome.output).toBeNull();
      const result = JSON.parse(readFileSync(report, 'utf8')) as JsonReport;
      // The files really were collected and skipped (else the test would prove nothing).
      expect(result.testResults).toHaveLength(files.length);
      expect(result.numFailedTestSuites).toBe(0);
      expect(result.numTotalTests).toBeGreaterThan(100);
      expect(result.numPendingTests + result.numTodoTests).toBe(result.numTotalTests);
      expect(processesMentioning(childTmp).map((p) => p.cmdline)).toEqual([]);
      expect(readdirSync(childTmp)).toEqual([]);
    }, 120_000);
  },
);

const mode = liveMode();
const daemonSkip =
  mode === 'off'
    ? 'HVKIT_LIVE=off'
    : !onLinux
      ? 'reads /proc, Linux only'
      : libvirtdAvailable()
        ? undefined
        : 'no libvirtd binary';

describe.skipIf(daemonSkip !== undefined && mode !== 'require')(
  `a throwaway libvirtd does not outlive the process that started it${daemonSkip ? ` (skipped: ${daemonSkip})` : ''}`,
  () => {
    it('exit without dispose, SIGTERM, SIGINT, SIGHUP, IPC disconnect: daemon stopped and its folder removed; SIGKILL: daemon stopped', async () => {
      const endings = ['exit', 'SIGTERM', 'SIGINT', 'SIGHUP', 'SIGKILL', 'disconnect'] as const;
      const children: TestChild[] = endings.map((e) =>
        spawnTestChild('throwaway-child.ts', [], { ipc: e === 'disconnect' }),
      );
      const daemons: { pid: number; dir: string }[] = [];
      try {
        for (const line of await Promise.all(children.map((c) => c.waitFor('STARTED ')))) {
          const [, pid, dir] = line.split(' ');
          daemons.push({ pid: Number(pid), dir: dir as string });
        }
        // The daemons really run (else the test would prove nothing).
        for (const d of daemons) expect(processesMentioning(d.dir).map((p) => p.pid)).toEqual([d.pid]);
        endings.forEach((ending, i) => {
          const { child } = children[i] as TestChild;
          if (ending === 'exit') child.stdin?.write('exit\n');
          else if (ending === 'disconnect') child.disconnect();
          else child.kill(ending);
        });
        // The disconnected child goes on running (as an orphaned vitest worker would), so it is not awaited.
        const ended = children.slice(0, -1);
        await Promise.all(ended.map((c) => c.exited));
        // The children end as they would have without a daemon: exit code 0, or killed by the signal.
        expect(ended.map((c) => c.child.signalCode ?? c.child.exitCode)).toEqual([
          0,
          ...endings.slice(1, -1),
        ]);
        // The endings whose daemon still runs (a killed daemon can take a moment to go).
        const survivors = () =>
          endings.filter((_, i) => processesMentioning(daemons[i]?.dir as string).length > 0);
        await until('every daemon gone', () => survivors().length === 0, 5000).catch(() => {});
        expect(survivors()).toEqual([]);
        expect(daemons.map((d, i) => [endings[i], existsSync(d.dir)])).toEqual(
          // SIGKILL leaves no chance to remove the folder (the test removes it).
          endings.map((e) => [e, e === 'SIGKILL' ? expect.any(Boolean) : false]),
        );
      } finally {
        for (const c of children) await c.kill();
        for (const d of daemons) {
          killLeftovers(d.dir);
          rmSync(d.dir, { recursive: true, force: true });
        }
      }
    }, 60_000);
  },
);
