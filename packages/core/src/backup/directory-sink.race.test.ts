/**
 * The directory sink against a live race: another process keeps swapping a subdirectory for a symbolic
 * link while the sink writes and removes files below it. Nothing may land outside the sink. Kept apart from
 * ./directory-sink.test.ts because it runs for seconds and its outcome depends on timing: the mutation run
 * (`npm run test:mutation`) leaves it out, since it would run for every mutant of the sink.
 */

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { chunksOf, listAll, testTempDir } from '../__test-utils__';
import { HvkitError } from '../errors/hvkit-error';
import { createDirectorySink } from './directory-sink';

const root = testTempDir('hvkit-dirsink-race-');

/** A sink directory and a directory outside it that a planted link points to. */
function plant(): { dir: string; outside: string } {
  const dir = join(root(), 'sink');
  const outside = join(root(), 'outside');
  mkdirSync(dir, { recursive: true });
  mkdirSync(outside, { recursive: true });
  return { dir, outside };
}

describe('createDirectorySink: symbolic links and long names', () => {
  it('never lets a write land outside while an attacker swaps a subdirectory for a symlink', async () => {
    const { dir, outside } = plant();
    mkdirSync(join(dir, 'sub'));
    // The attacker runs in its own process, so its renames interleave with the sink's system calls.
    const attacker = spawn(
      process.execPath,
      [
        '-e',
        `const fs = require('node:fs');
         const [dir, outside] = process.argv.slice(1);
         const sub = dir + '/sub';
         const pause = new Int32Array(new SharedArrayBuffer(4));
         process.stdout.write('ready\\n');
         // Each step on its own: whatever the sink left at sub (a directory it made, files) is removed, so
         // the loop never sticks in a state where the swap stops happening. rmSync removes a link itself.
         for (;;) {
           try { fs.rmSync(sub, { recursive: true, force: true }); } catch {}
           try { fs.symlinkSync(outside, sub); } catch {}
           try { fs.unlinkSync(sub); } catch {}
           try { fs.mkdirSync(sub); } catch {}
           // A moment with a real directory in place, so that some writes get through as well.
           Atomics.wait(pause, 0, 0, 1);
         }`,
        dir,
        outside,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    try {
      await new Promise((resolve, reject) => {
        attacker.stdout.once('data', resolve);
        attacker.once('exit', (code) =>
          reject(new Error(`the attacker process exited (${code}) before it was ready`)),
        );
      });
      const sink = createDirectorySink(dir, { fsync: false });
      const outcomes = new Map<string, number>();
      const started = Date.now();
      let i = 0;
      while (Date.now() - started < 2000 || !outcomes.has('written') || outcomes.size < 2) {
        if (Date.now() - started > 20_000) break;
        let outcome = 'written';
        try {
          await sink.writeFile(`sub/f${i++}.raw`, chunksOf(Buffer.alloc(4096, 1), 1024));
        } catch (error) {
          expect(HvkitError.isInstance(error), String(error)).toBe(true);
          outcome = (error as HvkitError).code;
        }
        outcomes.set(outcome, (outcomes.get(outcome) ?? 0) + 1);
        // Removal through the link would delete the planted victim.
        writeFileSync(join(outside, 'victim.raw'), 'keep');
        await sink.removeFile?.('sub/victim.raw').catch((error: unknown) => {
          expect(HvkitError.isInstance(error), String(error)).toBe(true);
        });
        expect(listAll(outside), `after ${i} writes`).toEqual(['victim.raw']);
      }
      // The race really happened: some writes succeeded and some were refused.
      expect(outcomes.get('written')).toBeGreaterThan(0);
      expect([...outcomes.keys()].length).toBeGreaterThan(1);
    } finally {
      attacker.kill('SIGKILL');
      await new Promise((resolve) => attacker.once('exit', resolve));
    }
  }, 60_000);
});
