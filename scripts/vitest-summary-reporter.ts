import { writeFileSync } from 'node:fs';
import { relative } from 'node:path';
import type { Reporter, TestModule } from 'vitest/node';

/** One failed test (or a file that failed to load, or an error outside any test). */
export interface FailureLine {
  file: string;
  name: string;
  message: string;
}

const firstLine = (text: unknown): string => {
  const line = String(text ?? '').split('\n', 1)[0] ?? '';
  return line.length > 300 ? `${line.slice(0, 297)}...` : line;
};

const errorMessage = (errors: ReadonlyArray<{ message?: string; name?: string }> | undefined): string => {
  const first = errors?.[0];
  if (first === undefined) return 'failed (no error recorded)';
  return firstLine(first.message ?? first.name);
};

/**
 * Lists the failures of a run, one line each: `FAIL <file> > <test name>: <first line of the error>`.
 * Exported for its test.
 */
export function collectFailures(
  testModules: ReadonlyArray<TestModule>,
  unhandledErrors: ReadonlyArray<unknown>,
  root: string,
): FailureLine[] {
  const failures: FailureLine[] = [];
  for (const mod of testModules) {
    const file = relative(root, mod.moduleId);
    const tests = [...mod.children.allTests()];
    if (mod.state() === 'failed' && tests.length === 0) {
      failures.push({ file, name: '(file)', message: errorMessage(mod.errors()) });
    }
    for (const t of tests) {
      const result = t.result();
      if (result.state === 'failed')
        failures.push({ file, name: t.fullName, message: errorMessage(result.errors) });
    }
  }
  for (const error of unhandledErrors) {
    const e = error as { message?: string; name?: string };
    failures.push({ file: '(unhandled)', name: e?.name ?? 'error', message: firstLine(e?.message ?? error) });
  }
  return failures;
}

export const formatFailure = (f: FailureLine): string => `FAIL ${f.file} > ${f.name}: ${f.message}`;

/**
 * Prints one plain closing line, `Tests: N passed, N failed, N skipped`, after vitest's own summary so
 * CI logs end with a count any reader can parse. Before it, each failure gets one line (file, test name,
 * first line of the error). With HVKIT_TEST_FAILURES_FILE set, the same lines are written to that file
 * (empty when nothing failed), so a CI script can repeat them at the very end of its log.
 */
export default class SummaryReporter implements Reporter {
  onTestRunEnd(testModules: ReadonlyArray<TestModule>, unhandledErrors: ReadonlyArray<unknown>): void {
    let passed = 0;
    let failed = 0;
    let skipped = 0;
    for (const mod of testModules) {
      if (mod.state() === 'failed' && [...mod.children.allTests()].length === 0) failed++;
      for (const t of mod.children.allTests()) {
        const state = t.result().state;
        if (state === 'passed') passed++;
        else if (state === 'failed') failed++;
        else skipped++;
      }
    }
    failed += unhandledErrors.length;
    const lines = collectFailures(testModules, unhandledErrors, process.cwd()).map(formatFailure);
    const file = process.env.HVKIT_TEST_FAILURES_FILE;
    if (file) writeFileSync(file, lines.length ? `${lines.join('\n')}\n` : '');
    if (lines.length) process.stdout.write(`\n${lines.join('\n')}\n`);
    process.stdout.write(`\nTests: ${passed} passed, ${failed} failed, ${skipped} skipped\n`);
  }
}
