import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TestModule } from 'vitest/node';
import SummaryReporter, { collectFailures, formatFailure } from './vitest-summary-reporter';

type FakeTest = { fullName: string; state: 'passed' | 'failed' | 'skipped'; errors?: { message: string }[] };

const fakeModule = (moduleId: string, tests: FakeTest[], opts: { loadError?: string } = {}): TestModule =>
  ({
    moduleId,
    state: () => (opts.loadError || tests.some((t) => t.state === 'failed') ? 'failed' : 'passed'),
    errors: () => (opts.loadError ? [{ message: opts.loadError }] : []),
    children: {
      *allTests() {
        for (const t of tests)
          yield { fullName: t.fullName, result: () => ({ state: t.state, errors: t.errors }) };
      },
    },
  }) as unknown as TestModule;

describe('vitest summary reporter', () => {
  const dirs: string[] = [];
  afterEach(() => {
    vi.unstubAllEnvs();
    vi.restoreAllMocks();
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });

  it('names each failed test with its file and the first line of its error', () => {
    const modules = [
      fakeModule('/repo/packages/a/src/x.test.ts', [
        { fullName: 'x > works', state: 'passed' },
        { fullName: 'x > breaks', state: 'failed', errors: [{ message: 'expected 1 to be 2\n  at line 3' }] },
      ]),
      fakeModule('/repo/packages/b/src/y.test.ts', [], { loadError: 'Cannot find module z' }),
    ];
    const lines = collectFailures(modules, [new Error('late rejection')], '/repo').map(formatFailure);
    expect(lines).toEqual([
      'FAIL packages/a/src/x.test.ts > x > breaks: expected 1 to be 2',
      'FAIL packages/b/src/y.test.ts > (file): Cannot find module z',
      'FAIL (unhandled) > Error: late rejection',
    ]);
  });

  it('cuts a long message and copes with a failure that recorded no error', () => {
    const modules = [
      fakeModule('/r/t.test.ts', [
        { fullName: 'long', state: 'failed', errors: [{ message: 'm'.repeat(1000) }] },
        { fullName: 'bare', state: 'failed' },
      ]),
    ];
    const [long, bare] = collectFailures(modules, [], '/r');
    expect(long?.message).toHaveLength(300);
    expect(long?.message.endsWith('...')).toBe(true);
    expect(bare?.message).toBe('failed (no error recorded)');
  });

  it('writes the failure lines to HVKIT_TEST_FAILURES_FILE and prints the plain closing count last', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvkit-reporter-'));
    dirs.push(dir);
    const file = join(dir, 'failures.txt');
    vi.stubEnv('HVKIT_TEST_FAILURES_FILE', file);
    const out: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk) => {
      out.push(String(chunk));
      return true;
    });
    const cwd = process.cwd();
    new SummaryReporter().onTestRunEnd(
      [
        fakeModule(join(cwd, 'a.test.ts'), [
          { fullName: 'ok', state: 'passed' },
          { fullName: 'bad', state: 'failed', errors: [{ message: 'boom' }] },
          { fullName: 'later', state: 'skipped' },
        ]),
      ],
      [],
    );
    expect(readFileSync(file, 'utf8')).toBe('FAIL a.test.ts > bad: boom\n');
    const printed = out.join('');
    expect(printed).toContain('FAIL a.test.ts > bad: boom');
    expect(printed.trimEnd().split('\n').at(-1)).toBe('Tests: 1 passed, 1 failed, 1 skipped');
  });

  it('leaves the failures file empty when everything passed', () => {
    const dir = mkdtempSync(join(tmpdir(), 'hvkit-reporter-'));
    dirs.push(dir);
    const file = join(dir, 'failures.txt');
    vi.stubEnv('HVKIT_TEST_FAILURES_FILE', file);
    vi.spyOn(process.stdout, 'write').mockImplementation(() => true);
    new SummaryReporter().onTestRunEnd(
      [fakeModule('/x/a.test.ts', [{ fullName: 'ok', state: 'passed' }])],
      [],
    );
    expect(readFileSync(file, 'utf8')).toBe('');
  });
});
