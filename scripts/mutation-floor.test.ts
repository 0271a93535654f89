import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { belowFloor, fileScores } from './mutation-floor.mjs';

const mutants = (statuses: Record<string, number>) =>
  Object.entries(statuses).flatMap(([status, n]) => Array.from({ length: n }, () => ({ status })));

const REPORT = {
  files: {
    'b/strong.ts': { mutants: mutants({ Killed: 9, Survived: 1, CompileError: 5 }) },
    'a/weak.ts': { mutants: mutants({ Killed: 6, Timeout: 1, Survived: 2, NoCoverage: 1, Ignored: 4 }) },
    'c/none.ts': { mutants: mutants({ CompileError: 2 }) },
  },
};

describe('mutation-floor', () => {
  it('scores each file as StrykerJS does: killed + timeout over everything but errors and ignored', () => {
    expect(fileScores(REPORT)).toEqual([
      { file: 'a/weak.ts', detected: 7, valid: 10, score: 70 },
      { file: 'b/strong.ts', detected: 9, valid: 10, score: 90 },
      { file: 'c/none.ts', detected: 0, valid: 0, score: 100 },
    ]);
  });

  it('names the files below the floor, and only those', () => {
    const scores = fileScores(REPORT);
    expect(belowFloor(scores, 80)).toEqual(['a/weak.ts: 70.00 % (7 of 10 detected), floor 80 %']);
    expect(belowFloor(scores, 70)).toEqual([]);
    expect(belowFloor(scores, 90.01)).toHaveLength(2);
  });

  const dir = mkdtempSync(join(tmpdir(), 'hvkit-mutation-floor-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const run = (args: string[]) => {
    try {
      return {
        status: 0,
        out: execFileSync(process.execPath, [join(import.meta.dirname, 'mutation-floor.mjs'), ...args], {
          encoding: 'utf8',
          stdio: 'pipe',
        }),
      };
    } catch (error) {
      const e = error as { status: number; stderr: string };
      return { status: e.status, out: e.stderr };
    }
  };

  it('exits 1 below the floor, 0 at it, 2 without a report', () => {
    const file = join(dir, 'report.json');
    writeFileSync(file, JSON.stringify(REPORT));
    const low = run([file]);
    expect(low.status).toBe(1);
    expect(low.out).toContain('a/weak.ts: 70.00 %');
    expect(run(['--floor', '70', file]).status).toBe(0);
    expect(run([join(dir, 'missing.json')]).status).toBe(2);
  });
});
