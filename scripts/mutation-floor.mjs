#!/usr/bin/env node
/**
 * The per-file floor of mutation testing: StrykerJS's `thresholds.break` applies to the score over all
 * mutated files together, so one weakly tested module can hide behind the others. This reads the run's
 * JSON report (reports/mutation/mutation.json) and fails when any mutated file's score is below the floor.
 *
 * Score as StrykerJS counts it: (killed + timeout) / (killed + timeout + survived + no coverage); compile
 * and runtime errors and ignored mutants do not count.
 *
 * Usage: node scripts/mutation-floor.mjs [--floor 80] [report.json]
 * Exit code: 0 when every file reaches the floor, 1 when one does not, 2 on a missing or unreadable report.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const DETECTED = new Set(['Killed', 'Timeout']);
const UNDETECTED = new Set(['Survived', 'NoCoverage']);

/**
 * Per-file scores of a mutation-testing-report-schema report.
 * @param {{ files: Record<string, { mutants: { status: string }[] }> }} report
 * @returns {{ file: string, detected: number, valid: number, score: number }[]}
 */
export function fileScores(report) {
  return Object.entries(report.files)
    .map(([file, { mutants }]) => {
      const detected = mutants.filter((m) => DETECTED.has(m.status)).length;
      const valid = detected + mutants.filter((m) => UNDETECTED.has(m.status)).length;
      return { file, detected, valid, score: valid === 0 ? 100 : (100 * detected) / valid };
    })
    .sort((a, b) => a.file.localeCompare(b.file));
}

/**
 * The files below `floor`, as lines to print.
 * @param {ReturnType<typeof fileScores>} scores
 * @param {number} floor
 */
export function belowFloor(scores, floor) {
  return scores
    .filter((s) => s.score < floor)
    .map(
      (s) => `${s.file}: ${s.score.toFixed(2)} % (${s.detected} of ${s.valid} detected), floor ${floor} %`,
    );
}

function main(argv) {
  let floor = 80;
  let file = join(fileURLToPath(new URL('..', import.meta.url)), 'reports', 'mutation', 'mutation.json');
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--floor') floor = Number(argv[++i]);
    else file = argv[i];
  }
  if (!Number.isFinite(floor)) {
    console.error('mutation-floor: --floor needs a number');
    return 2;
  }
  let report;
  try {
    report = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    console.error(`mutation-floor: cannot read ${file}: ${error.message}`);
    return 2;
  }
  const scores = fileScores(report);
  const low = belowFloor(scores, floor);
  for (const s of scores) console.log(`${s.score.toFixed(2).padStart(6)} %  ${s.file}`);
  if (low.length > 0) {
    console.error(`mutation-floor: ${low.length} file(s) below the floor:\n  ${low.join('\n  ')}`);
    return 1;
  }
  console.log(`mutation-floor: every file at or above ${floor} %`);
  return 0;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1])
  process.exitCode = main(process.argv.slice(2));
