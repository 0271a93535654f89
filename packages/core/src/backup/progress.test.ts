import { describe, expect, it } from 'vitest';
import type { Progress } from '../hypervisor/v1/model';
import { checkProgressLog, createProgressReporter } from './progress';

function clock() {
  let t = 0;
  return { now: () => t, tick: (ms: number) => (t += ms) };
}

describe('createProgressReporter', () => {
  it('delivers the first update of a phase, then at most one per interval, then the last', () => {
    const c = clock();
    const log: Progress[] = [];
    const r = createProgressReporter((p) => log.push(p), { now: c.now });
    r.phase('transfer', { totalBytes: 1000, file: 'a' });
    for (let i = 1; i <= 100; i++) {
      c.tick(5);
      r.advance(10);
    }
    // 500 ms of updates every 5 ms: the start, one per 100 ms, and the last (reaching the total).
    expect(log[0]).toEqual({ phase: 'transfer', processedBytes: 0, totalBytes: 1000, file: 'a' });
    expect(log.at(-1)).toEqual({ phase: 'transfer', processedBytes: 1000, totalBytes: 1000, file: 'a' });
    expect(log.length).toBeLessThanOrEqual(7);
    expect(log.length).toBeGreaterThanOrEqual(5);
    expect(r.calls).toBe(log.length);
    expect(checkProgressLog(log, { elapsedMs: 500 })).toEqual([]);
  });

  it('flushes the pending update of a phase when the next one starts, and on done()', () => {
    const c = clock();
    const log: Progress[] = [];
    const r = createProgressReporter((p) => log.push(p), { now: c.now });
    r.phase('upload');
    r.update(10);
    r.update(20);
    r.phase('verify', { totalBytes: 5 });
    r.update(3);
    r.done();
    r.done();
    expect(log).toEqual([
      { phase: 'upload', processedBytes: 0 },
      { phase: 'upload', processedBytes: 20 },
      { phase: 'verify', processedBytes: 0, totalBytes: 5 },
      { phase: 'verify', processedBytes: 3, totalBytes: 5 },
    ]);
  });

  it('refuses progress that goes backwards or past the total instead of clamping it', () => {
    const r = createProgressReporter(undefined);
    expect(() => r.update(1)).toThrow(/before the first phase/);
    r.phase('transfer', { totalBytes: 100 });
    r.update(50);
    expect(() => r.update(40)).toThrow(/went backwards: 50 then 40/);
    expect(() => r.update(101)).toThrow(/exceeds its total: 101 of 100/);
    expect(() => r.advance(51)).toThrow(TypeError);
    expect(() => r.update(-1)).toThrow(TypeError);
    expect(() => r.update(1.5)).toThrow(TypeError);
    expect(() => r.phase('')).toThrow(TypeError);
    expect(() => r.phase('x', { totalBytes: -3 })).toThrow(TypeError);
    expect(r.current).toEqual({ phase: 'transfer', processedBytes: 50, totalBytes: 100 });
  });

  it('swallows errors of the callback', () => {
    const r = createProgressReporter(() => {
      throw new Error('display broke');
    });
    r.phase('transfer', { totalBytes: 1 });
    r.update(1);
    expect(r.calls).toBe(2);
  });

  it('checks its arguments', () => {
    expect(() => createProgressReporter('x' as never)).toThrow(TypeError);
    expect(() => createProgressReporter(undefined, { minIntervalMs: -1 })).toThrow(TypeError);
    expect(() => createProgressReporter(undefined, null as never)).toThrow(TypeError);
  });

  it('keeps a million tiny updates to about ten callbacks per second', () => {
    const log: Progress[] = [];
    const r = createProgressReporter((p) => log.push(p));
    const started = performance.now();
    r.phase('transfer', { totalBytes: 1_000_000 });
    for (let i = 0; i < 1_000_000; i++) r.advance(1);
    const elapsed = performance.now() - started;
    expect(checkProgressLog(log, { elapsedMs: elapsed })).toEqual([]);
    expect(log.at(-1)?.processedBytes).toBe(1_000_000);
  });
});

describe('checkProgressLog', () => {
  it('finds every kind of problem', () => {
    const problems = checkProgressLog([
      { phase: 'a', processedBytes: 5, totalBytes: 10 },
      { phase: 'a', processedBytes: 4, totalBytes: 10 },
      { phase: 'a', processedBytes: 11, totalBytes: 10 },
      { phase: 'a', processedBytes: 11, totalBytes: 12 },
      { phase: '', processedBytes: 0 },
      { phase: 'b', processedBytes: 0.5 } as Progress,
    ]);
    expect(problems.map((p) => p.index)).toEqual([1, 2, 3, 4, 5]);
    expect(problems[0]?.message).toMatch(/went backwards/);
    expect(problems[1]?.message).toMatch(/exceeds totalBytes/);
    expect(problems[2]?.message).toMatch(/changed/);
  });

  it('counts callbacks against the rate', () => {
    const log = Array.from({ length: 30 }, (_, i) => ({ phase: 'a', processedBytes: i }));
    expect(checkProgressLog(log, { elapsedMs: 1000 })).toHaveLength(1);
    expect(checkProgressLog(log, { elapsedMs: 3000 })).toEqual([]);
    // A new phase resets the counters (processedBytes counts per phase).
    expect(checkProgressLog([...log, { phase: 'b', processedBytes: 0 }])).toEqual([]);
  });
});
