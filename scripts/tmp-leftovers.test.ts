/**
 * What the packages' test files leave in the temporary directory. Each package's test files run in a vitest
 * child process of their own with a private `TMPDIR`, twice:
 *
 * - with a test name filter that matches nothing (`-t`), and the peers as this run has them (`.peers/env`,
 *   `HVKIT_LIVE`): every file is collected and every test filtered out, as StrykerJS and `vitest -t` do.
 *   Collecting a file runs its top level and its `describe` bodies (and the conformance suite calls its
 *   factory then), but vitest runs no `beforeAll`/`afterAll` hook of a block without a test to run, so a
 *   folder made there is never removed;
 * - for real with the peers absent (`HVKIT_LIVE=off`), the files that make temporary folders (they mention
 *   `mkdtemp`, `tmpdir()`, `makeTestCert` or `testTempDir`, or a helper module of the package they import
 *   does), live files left out (all their tests skip then): each folder must be gone when its file ends.
 *
 * Either way nothing may be left in that `TMPDIR` but tsx's own cache folder (`tsx-<uid>`), and on Linux no
 * process whose command line names it (a simulator started with its folder there).
 * kvm-libvirt's test/leftovers.test.ts checks its throwaway libvirtd further.
 *
 * The children are independent of each other: as many run at once as the machine has cores (the tests run
 * concurrently and wait for a turn, hence a test's timeout of twice a child's), since each one's vitest runs
 * its files one at a time.
 */

import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const root = join(import.meta.dirname, '..');
const PACKAGES = [
  'core',
  'ssh',
  'conformance',
  'kvm-libvirt',
  'vmware-vsphere',
  'xen-xapi',
  'cgroups',
  'lvm',
];
const MAKES_TEMP = /mkdtemp|tmpdir\(\)|makeTestCert|testTempDir/;
/** What the child may leave: tsx's cache folder. */
const ALLOWED = /^tsx-\d+$/;

/** The package's test files, relative to it. */
function testFiles(pkg: string): string[] {
  return ['src', 'test']
    .filter((top) => existsSync(join(root, 'packages', pkg, top)))
    .flatMap((top) =>
      readdirSync(join(root, 'packages', pkg, top), { recursive: true }).map((f) => join(top, String(f))),
    )
    .filter((f) => f.endsWith('.test.ts'))
    .sort();
}

/** Whether the file, or a module of the same package it imports by a relative path, makes temporary folders. */
function makesTemp(pkg: string, file: string): boolean {
  const path = join(root, 'packages', pkg, file);
  const text = readFileSync(path, 'utf8');
  if (MAKES_TEMP.test(text)) return true;
  const pkgDir = join(root, 'packages', pkg);
  for (const [, spec] of text.matchAll(/from '(\.{1,2}\/[^']+)'/g)) {
    const target = resolve(dirname(path), spec as string);
    if (!target.startsWith(`${pkgDir}/`)) continue;
    for (const candidate of [`${target}.ts`, join(target, 'index.ts')]) {
      if (existsSync(candidate) && MAKES_TEMP.test(readFileSync(candidate, 'utf8'))) return true;
    }
  }
  return false;
}

/** Processes whose command line mentions `path` (read from /proc; none where there is no /proc). */
function processesMentioning(path: string): number[] {
  if (!existsSync('/proc/self/cmdline')) return [];
  return readdirSync('/proc')
    .filter((entry) => /^\d+$/.test(entry) && Number(entry) !== process.pid)
    .filter((entry) => {
      try {
        return readFileSync(join('/proc', entry, 'cmdline'), 'utf8').includes(path);
      } catch {
        return false; // ended meanwhile
      }
    })
    .map(Number);
}

/** Runs `job` once fewer than `max` jobs of this limiter are running. */
function limiter(max: number): <T>(job: () => Promise<T>) => Promise<T> {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async (job) => {
    if (running >= max) await new Promise<void>((resolve) => waiting.push(resolve));
    else running++;
    try {
      return await job();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running--;
    }
  };
}

interface Outcome {
  error: Error | null;
  output: string;
  left: string[];
  processes: number[];
  report: { numTotalTests: number; numPassedTests: number; numFailedTests: number; testResults: unknown[] };
}

describe.concurrent('test files leave nothing in TMPDIR', () => {
  let base = '';
  let runs = 0;
  const turn = limiter(Math.max(1, availableParallelism()));
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'hvkit-tmp-leftovers-'));
  });
  afterAll(() => {
    if (!base) return;
    // What a failed run left, killed so that the next run starts clean.
    for (const pid of processesMentioning(base)) process.kill(pid, 'SIGKILL');
    rmSync(base, { recursive: true, force: true });
  });

  /** Runs vitest on `files` of `pkg` with a private TMPDIR (and the peers absent, `off`); what it left. */
  async function runChild(pkg: string, files: string[], extra: string[], off: boolean): Promise<Outcome> {
    const childTmp = join(base, `tmp${++runs}`);
    mkdirSync(childTmp);
    const reportFile = join(base, `report${runs}.json`);
    const env: NodeJS.ProcessEnv = {};
    for (const [k, v] of Object.entries(process.env)) {
      if (!k.startsWith('VITEST') && !(off && k.startsWith('HVKIT_'))) env[k] = v;
    }
    if (off) env.HVKIT_LIVE = 'off';
    env.TMPDIR = childTmp;
    const cli = join(dirname(createRequire(import.meta.url).resolve('vitest/package.json')), 'vitest.mjs');
    const { error, output } = await turn(
      () =>
        new Promise<{ error: Error | null; output: string }>((done) => {
          execFile(
            process.execPath,
            [cli, 'run', '--reporter=json', `--outputFile=${reportFile}`, ...extra, ...files],
            { cwd: join(root, 'packages', pkg), env, timeout: 120_000, maxBuffer: 64 * 1024 * 1024 },
            (e, stdout, stderr) => done({ error: e, output: `${stdout}\n${stderr}`.slice(-4000) }),
          );
        }),
    );
    const report = existsSync(reportFile)
      ? JSON.parse(readFileSync(reportFile, 'utf8'))
      : { numTotalTests: 0, numPassedTests: 0, numFailedTests: 0, testResults: [] };
    return {
      error,
      output,
      left: readdirSync(childTmp).filter((f) => !ALLOWED.test(f)),
      processes: processesMentioning(childTmp),
      report,
    };
  }

  for (const pkg of PACKAGES) {
    it(`${pkg}: every file collected, every test filtered out: no folder and no process left`, async () => {
      const files = testFiles(pkg);
      expect(files.length).toBeGreaterThan(3);
      const filter = ['--passWithNoTests', '-t', 'no test has this name: tmp-leftovers'];
      const run = await runChild(pkg, files, filter, false);
      expect(run.error, run.output).toBeNull();
      // The files really were collected (else the test would prove nothing).
      expect(run.report.testResults).toHaveLength(files.length);
      expect(run.report.numPassedTests + run.report.numFailedTests).toBe(0);
      expect(run.left).toEqual([]);
      expect(run.processes).toEqual([]);
    }, 300_000);

    it(`${pkg}: the files that make temporary folders, run with the peers absent: all removed`, async (context) => {
      // A leftovers test (kvm-libvirt's) runs vitest children itself: checked by the first test only. Live
      // files are skipped here (HVKIT_LIVE=off), so only their collection counts: the first test has it.
      const files = testFiles(pkg).filter(
        (f) => !f.endsWith('leftovers.test.ts') && !f.endsWith('.live.test.ts') && makesTemp(pkg, f),
      );
      if (files.length === 0)
        context.skip(`no test file of ${pkg} outside its live files makes temporary folders`);
      const run = await runChild(pkg, files, [], true);
      expect(run.error, run.output).toBeNull();
      expect(run.report.numFailedTests).toBe(0);
      expect(run.left).toEqual([]);
      expect(run.processes).toEqual([]);
    }, 300_000);
  }
});
