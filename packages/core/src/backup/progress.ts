/**
 * Progress reporting for long operations (backups, restores), with the rules every adapter follows: each
 * phase says its `totalBytes` when it is known before the phase starts, `processedBytes` only grows within a
 * phase and never exceeds its total, and callbacks come at most about ten per second plus the last one of
 * each phase.
 */

import type { Progress } from '../hypervisor/v1/model';

/** Options of {@link createProgressReporter}. */
export interface ProgressReporterOptions {
  /**
   * Least time between two callbacks of one phase, in ms (default 100: about ten per second). The first and
   * the last update of each phase are always delivered.
   */
  minIntervalMs?: number;
  /** Clock in ms (default `performance.now`), for tests. */
  now?: () => number;
}

/** Options of {@link ProgressReporter.phase}. */
export interface ProgressPhaseOptions {
  /** The phase's size in bytes, when known before it starts; `processedBytes` may never exceed it. */
  totalBytes?: number;
  /** The file the phase works on, shown in `Progress.file`. */
  file?: string;
}

/**
 * Reports the progress of one operation through an `onProgress` callback (see
 * {@link createProgressReporter}).
 */
export interface ProgressReporter {
  /**
   * Starts a phase: delivers the last pending update of the previous phase, then `{ phase, processedBytes: 0,
   * totalBytes }` at once. `processedBytes` counts from zero again in each phase.
   *
   * @throws TypeError for an empty name or a `totalBytes` that is not a non-negative safe integer.
   */
  phase(name: string, options?: ProgressPhaseOptions): void;
  /**
   * Sets the bytes processed so far in the current phase. Delivered when at least `minIntervalMs` has passed
   * since the last callback, or when it reaches the phase's `totalBytes`; otherwise kept as pending (the next
   * {@link ProgressReporter.phase} or {@link ProgressReporter.done} delivers it).
   *
   * @throws TypeError (an adapter bug, never clamped) when there is no phase, when the value is not a
   *   non-negative safe integer, is smaller than the previous one, or exceeds the phase's `totalBytes`.
   */
  update(processedBytes: number, options?: { file?: string }): void;
  /** Adds `bytes` to the current phase's `processedBytes` (same rules as {@link ProgressReporter.update}). */
  advance(bytes: number, options?: { file?: string }): void;
  /** Delivers the pending update, if any: call it when the operation ends (successfully). */
  done(): void;
  /** The current phase (undefined before the first) and its counters. */
  readonly current: Readonly<Progress> | undefined;
  /** How many callbacks were delivered so far (for tests and logs). */
  readonly calls: number;
}

function checkBytes(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw new TypeError(`${what} must be a non-negative safe integer, got ${String(value)}.`);
  }
  return value;
}

/**
 * Creates the progress reporter of one operation.
 *
 * Progress accounting that goes wrong is an adapter bug, and the reporter refuses it instead of clamping it
 * silently: `processedBytes` going backwards or past the phase's `totalBytes` throws a `TypeError` where it
 * happens, so an adapter's tests (and the conformance suite's progress checks) see it. An adapter that cannot
 * bound a phase exactly (a download whose size is only an upper bound) must not declare its `totalBytes`.
 *
 * Errors thrown by `onProgress` itself are swallowed: a broken progress display must not break a backup.
 * With `onProgress` undefined the reporter still checks the numbers and delivers nothing.
 *
 * @example
 * const progress = createProgressReporter(options.onProgress);
 * progress.phase('transfer', { totalBytes: disk.bytes, file: name });
 * for await (const chunk of data) progress.advance(chunk.byteLength);
 * progress.done();
 */
export function createProgressReporter(
  onProgress: ((progress: Progress) => void) | undefined,
  options: ProgressReporterOptions = {},
): ProgressReporter {
  if (onProgress !== undefined && typeof onProgress !== 'function') {
    throw new TypeError('createProgressReporter: onProgress must be a function.');
  }
  if (typeof options !== 'object' || options === null) {
    throw new TypeError('createProgressReporter: options must be an object.');
  }
  const minIntervalMs = options.minIntervalMs ?? 100;
  if (typeof minIntervalMs !== 'number' || !Number.isFinite(minIntervalMs) || minIntervalMs < 0) {
    throw new TypeError('createProgressReporter: minIntervalMs must be a non-negative number.');
  }
  const now = options.now ?? (() => performance.now());
  let current: Progress | undefined;
  let pending = false;
  let lastAt = Number.NEGATIVE_INFINITY;
  let calls = 0;

  const deliver = () => {
    pending = false;
    lastAt = now();
    calls++;
    if (!onProgress || !current) return;
    try {
      onProgress({ ...current });
    } catch {
      // A throwing callback must not break the operation.
    }
  };

  const reporter: ProgressReporter = {
    phase(name, phaseOptions = {}) {
      if (typeof name !== 'string' || name === '') throw new TypeError('A progress phase needs a name.');
      if (typeof phaseOptions !== 'object' || phaseOptions === null) {
        throw new TypeError('Progress phase options must be an object.');
      }
      const { totalBytes, file } = phaseOptions;
      if (totalBytes !== undefined) checkBytes(totalBytes, `totalBytes of phase ${JSON.stringify(name)}`);
      if (pending) deliver();
      current = {
        phase: name,
        processedBytes: 0,
        ...(totalBytes === undefined ? {} : { totalBytes }),
        ...(file === undefined ? {} : { file }),
      };
      deliver();
    },
    update(processedBytes, updateOptions = {}) {
      if (!current) throw new TypeError('Progress update before the first phase.');
      checkBytes(processedBytes, `processedBytes of phase ${JSON.stringify(current.phase)}`);
      if (processedBytes < current.processedBytes) {
        throw new TypeError(
          `Progress of phase ${JSON.stringify(current.phase)} went backwards: ${current.processedBytes} then ${processedBytes}.`,
        );
      }
      if (current.totalBytes !== undefined && processedBytes > current.totalBytes) {
        throw new TypeError(
          `Progress of phase ${JSON.stringify(current.phase)} exceeds its total: ${processedBytes} of ${current.totalBytes} bytes.`,
        );
      }
      const file = updateOptions.file;
      if (processedBytes === current.processedBytes && (file === undefined || file === current.file)) return;
      current.processedBytes = processedBytes;
      if (file !== undefined) current.file = file;
      pending = true;
      if (processedBytes === current.totalBytes || now() - lastAt >= minIntervalMs) deliver();
    },
    advance(bytes, advanceOptions) {
      if (!current) throw new TypeError('Progress update before the first phase.');
      checkBytes(bytes, 'advance(bytes)');
      reporter.update(current.processedBytes + bytes, advanceOptions);
    },
    done() {
      if (pending) deliver();
    },
    get current() {
      return current ? { ...current } : undefined;
    },
    get calls() {
      return calls;
    },
  };
  return reporter;
}

/** A problem {@link checkProgressLog} found. */
export interface ProgressLogProblem {
  /** Index of the offending call. */
  index: number;
  message: string;
}

/**
 * Checks a log of progress callbacks against the rules of {@link createProgressReporter}: every entry has a
 * phase and whole, non-negative byte counts; within a phase (consecutive entries with the same `phase`)
 * `processedBytes` only grows, `totalBytes` does not change and is never exceeded. With `elapsedMs`, also
 * that there were at most `perSecond` calls per second of the run (default 10) plus the first and last of
 * each phase, plus a margin of 2 for timer jitter.
 *
 * @returns the problems found, empty when the log is fine.
 */
export function checkProgressLog(
  log: readonly Progress[],
  options: { elapsedMs?: number; perSecond?: number } = {},
): ProgressLogProblem[] {
  const problems: ProgressLogProblem[] = [];
  let phases = 0;
  let prev: Progress | undefined;
  for (const [index, p] of log.entries()) {
    if (
      typeof p !== 'object' ||
      p === null ||
      typeof p.phase !== 'string' ||
      p.phase === '' ||
      !Number.isSafeInteger(p.processedBytes) ||
      p.processedBytes < 0 ||
      (p.totalBytes !== undefined && (!Number.isSafeInteger(p.totalBytes) || p.totalBytes < 0))
    ) {
      problems.push({
        index,
        message: `progress #${index} is ${JSON.stringify(p)}; it needs a phase and whole, non-negative byte counts`,
      });
      prev = undefined;
      continue;
    }
    if (p.totalBytes !== undefined && p.processedBytes > p.totalBytes) {
      problems.push({
        index,
        message: `progress #${index} (phase ${JSON.stringify(p.phase)}): processedBytes ${p.processedBytes} exceeds totalBytes ${p.totalBytes}`,
      });
    }
    if (prev && prev.phase === p.phase) {
      if (p.processedBytes < prev.processedBytes) {
        problems.push({
          index,
          message: `progress of phase ${JSON.stringify(p.phase)} went backwards at call #${index}: ${prev.processedBytes} then ${p.processedBytes}`,
        });
      }
      if (p.totalBytes !== prev.totalBytes) {
        problems.push({
          index,
          message: `totalBytes of phase ${JSON.stringify(p.phase)} changed at call #${index}: ${prev.totalBytes} then ${p.totalBytes}`,
        });
      }
    } else {
      phases++;
    }
    prev = p;
  }
  if (options.elapsedMs !== undefined) {
    const perSecond = options.perSecond ?? 10;
    const allowed = Math.floor((Math.max(0, options.elapsedMs) / 1000) * perSecond) + 2 * phases + 2;
    if (log.length > allowed) {
      problems.push({
        index: log.length - 1,
        message: `${log.length} progress callbacks in ${Math.round(options.elapsedMs)} ms over ${phases} phase(s); at most ${allowed} (about ${perSecond} per second plus the first and last of each phase)`,
      });
    }
  }
  return problems;
}
