import { ConformanceSkip, within } from './assert';
import { runAdapterConformance } from './run';
import type {
  ConformanceOptions,
  ConformanceTestApi,
  ConformanceTestContext,
  ConformanceTestFn,
} from './types';

/** The outcome of one test run by a collector. */
export interface ConformanceResult {
  /** The test's own name, e.g. `limits.round-trip.cpu.weight: set ... restored afterwards`. */
  name: string;
  /** Enclosing describe names, outermost first. */
  path: string[];
  /** The check id: the part of the name before the first `: `. */
  id: string;
  status: 'passed' | 'failed' | 'skipped';
  /** Failure message, or the skip reason. */
  message?: string;
  error?: unknown;
  durationMs: number;
}

/** All outcomes of a collector run. */
export interface ConformanceReport {
  results: ConformanceResult[];
  passed: number;
  failed: number;
  skipped: number;
  /** True when nothing failed. */
  ok: boolean;
}

/** A test API that records describe/it calls, then runs them itself and reports the outcomes. */
export interface ConformanceCollector {
  /** Pass as `runAdapterConformance({ test })`. */
  readonly test: ConformanceTestApi;
  /** Collects (awaiting async describe callbacks) and runs every registered test, in order. */
  run(options?: {
    timeoutMs?: number;
    filter?: (result: Pick<ConformanceResult, 'id' | 'name' | 'path'>) => boolean;
  }): Promise<ConformanceReport>;
}

interface Suite {
  name: string;
  path: string[];
  fn: () => void | Promise<void>;
}

interface Entry {
  name: string;
  path: string[];
  fn?: ConformanceTestFn;
  timeout?: number;
  skipped: boolean;
}

/** The check id of a test name (`id: title`). */
function idOf(name: string): string {
  const i = name.indexOf(': ');
  return i < 0 ? name : name.slice(0, i);
}

/** The skip reason in a skipped test's name: `... [skipped: reason]`, or after `id: ` for group skips. */
function skipReasonOf(name: string): string {
  const m = /\[skipped: (.*)\]$/.exec(name);
  if (m) return m[1] as string;
  const i = name.indexOf(': ');
  return i < 0 ? name : name.slice(i + 2);
}

/**
 * Creates a collector: a stand-in for vitest's `describe`/`it` that lets code run the conformance suite
 * outside a test runner (a CLI, a demo) or check the suite itself (its self-tests run it against broken
 * adapters and assert which checks fail, and with what message).
 *
 * @example
 * const collector = createConformanceCollector();
 * runAdapterConformance({ name: 'in-memory', mode: 'replay', factory, test: collector.test });
 * const report = await collector.run();
 */
export function createConformanceCollector(): ConformanceCollector {
  const pending: Suite[] = [];
  const entries: Entry[] = [];
  let current: string[] = [];

  const describe = (name: string, fn: () => void | Promise<void>) => {
    pending.push({ name, path: [...current, name], fn });
  };
  const it = Object.assign(
    (name: string, fn: ConformanceTestFn, timeout?: number) => {
      entries.push({
        name,
        path: [...current],
        fn,
        ...(timeout === undefined ? {} : { timeout }),
        skipped: false,
      });
    },
    {
      skip: (name: string) => {
        entries.push({ name, path: [...current], skipped: true });
      },
    },
  );
  const test: ConformanceTestApi = { describe, it };

  async function collect(): Promise<void> {
    // Depth-first, in registration order: a describe's children are collected right after it.
    while (pending.length > 0) {
      const suite = pending.shift() as Suite;
      const before = pending.length;
      const outer = current;
      current = suite.path;
      try {
        await suite.fn();
      } finally {
        current = outer;
      }
      const added = pending.splice(before);
      pending.unshift(...added);
    }
  }

  return {
    test,
    async run(options = {}) {
      await collect();
      const results: ConformanceResult[] = [];
      for (const e of entries) {
        const base = { name: e.name, path: e.path, id: idOf(e.name) };
        if (options.filter && !options.filter(base)) continue;
        if (e.skipped || !e.fn) {
          results.push({ ...base, status: 'skipped', message: skipReasonOf(e.name), durationMs: 0 });
          continue;
        }
        const started = Date.now();
        const context: ConformanceTestContext = {
          skip: (note?: string) => {
            throw new ConformanceSkip(note ?? 'skipped');
          },
        };
        try {
          const timeout = options.timeoutMs ?? e.timeout ?? 120_000;
          await within(
            Promise.resolve().then(() => (e.fn as ConformanceTestFn)(context)),
            timeout,
            `test "${e.name}"`,
          );
          results.push({ ...base, status: 'passed', durationMs: Date.now() - started });
        } catch (error) {
          if (error instanceof ConformanceSkip) {
            results.push({
              ...base,
              status: 'skipped',
              message: error.reason,
              durationMs: Date.now() - started,
            });
          } else {
            results.push({
              ...base,
              status: 'failed',
              message: error instanceof Error ? error.message : String(error),
              error,
              durationMs: Date.now() - started,
            });
          }
        }
      }
      const count = (s: ConformanceResult['status']) => results.filter((r) => r.status === s).length;
      return {
        results,
        passed: count('passed'),
        failed: count('failed'),
        skipped: count('skipped'),
        ok: count('failed') === 0,
      };
    },
  };
}

/**
 * Runs the conformance suite outside a test runner and returns the report: handy for a CLI or a demo.
 * Same options as `runAdapterConformance` without `test`.
 */
export async function runConformanceReport(
  options: Omit<ConformanceOptions, 'test'>,
): Promise<ConformanceReport> {
  const collector = createConformanceCollector();
  runAdapterConformance({ ...options, test: collector.test });
  return collector.run();
}

/** A plain-text report: one line per test (`✓`, `✗` with the message, `-` with the skip reason) and totals. */
export function formatConformanceReport(report: ConformanceReport): string {
  const lines = report.results.map((r) => {
    const mark = r.status === 'passed' ? '✓' : r.status === 'failed' ? '✗' : '-';
    const tail =
      r.status === 'failed'
        ? `\n    ${r.message}`
        : r.status === 'skipped'
          ? `  (skipped: ${r.message})`
          : '';
    return `${mark} ${r.id}${tail}`;
  });
  lines.push(`${report.passed} passed, ${report.failed} failed, ${report.skipped} skipped`);
  return lines.join('\n');
}
