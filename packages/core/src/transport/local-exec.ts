/**
 * Running local commands without a shell, as an {@link ExecTransport}.
 */

import { type ChildProcessWithoutNullStreams, spawn as spawnChild } from 'node:child_process';
import { PassThrough, Readable, Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import {
  abortError,
  checkSignal,
  checkTimeoutMs,
  DEFAULT_TIMEOUT_MS,
  type DerivedSignal,
  deriveSignal,
} from '../signal/abort';
import { errnoToHvkitError } from './local-files';
import type { ExecProcess, ExecRequest, ExecResult, ExecTransport } from './types';

/** Default {@link ExecRequest.maxBuffer}: 64 MiB. */
export const DEFAULT_EXEC_MAX_BUFFER = 64 * 1024 * 1024;

/** Options of {@link createLocalExec}. */
export interface LocalExecOptions {
  /** Timeout of an `exec` that gives no `timeoutMs` (default {@link DEFAULT_TIMEOUT_MS}). */
  defaultTimeoutMs?: number;
  /** Time between SIGTERM and SIGKILL when a command is killed (default 2000 ms). */
  killGraceMs?: number;
  /** Environment the commands start from (default `process.env`); `request.env` is added on top. */
  env?: Readonly<Record<string, string | undefined>>;
}

const OPERATION = 'exec';

function validateRequest(request: ExecRequest): void {
  if (typeof request !== 'object' || request === null)
    throw new TypeError('exec: request must be an object.');
  const { argv } = request;
  if (!Array.isArray(argv) || argv.some((a) => typeof a !== 'string')) {
    throw new TypeError('exec: argv must be an array of strings.');
  }
  if (argv.length === 0 || argv[0] === '') {
    throw hvkitError('INVALID_ARGUMENT', 'exec: argv must name a program.', { operation: OPERATION });
  }
  if (argv.some((a) => a.includes('\0'))) {
    throw hvkitError('INVALID_ARGUMENT', 'exec: arguments cannot contain NUL bytes.', {
      operation: OPERATION,
    });
  }
  if (request.env !== undefined) {
    if (typeof request.env !== 'object' || request.env === null)
      throw new TypeError('exec: env must be an object.');
    for (const [key, value] of Object.entries(request.env)) {
      if (typeof value !== 'string') throw new TypeError(`exec: env.${key} must be a string.`);
      if (key === '' || key.includes('=') || key.includes('\0') || value.includes('\0')) {
        throw hvkitError('INVALID_ARGUMENT', `exec: invalid environment variable ${JSON.stringify(key)}.`, {
          operation: OPERATION,
        });
      }
    }
  }
  if (request.cwd !== undefined && typeof request.cwd !== 'string')
    throw new TypeError('exec: cwd must be a string.');
  if (request.maxBuffer !== undefined && !(typeof request.maxBuffer === 'number' && request.maxBuffer > 0)) {
    throw new TypeError('exec: maxBuffer must be a positive number.');
  }
  const { stdin } = request;
  if (
    stdin !== undefined &&
    typeof stdin !== 'string' &&
    !(stdin instanceof Uint8Array) &&
    typeof (stdin as AsyncIterable<Uint8Array>)[Symbol.asyncIterator] !== 'function'
  ) {
    throw new TypeError('exec: stdin must be a string, a Uint8Array or an AsyncIterable<Uint8Array>.');
  }
  checkSignal(request.signal);
  if (request.timeoutMs !== undefined) checkTimeoutMs(request.timeoutMs);
}

function spawnError(error: unknown, program: string): HvkitError {
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (errno === 'ENOENT') {
    return hvkitError(
      'NOT_FOUND',
      `exec: cannot run ${JSON.stringify(program)}: program or working directory not found.`,
      {
        operation: OPERATION,
        cause: error,
        backendCode: errno,
        details: { program },
      },
    );
  }
  return errnoToHvkitError(error, { operation: OPERATION, path: program });
}

/** A started child and the bookkeeping shared by `exec` and `spawn`. */
interface Running {
  child: ChildProcessWithoutNullStreams;
  /** Settles when the process has ended and its output is closed (or failed to start). */
  ended: Promise<{ exitCode: number | null; signal: string | null }>;
  /** Kills the process group: SIGTERM now, SIGKILL after the grace period unless it ended. */
  kill(): void;
  /** Whether the process has ended. */
  readonly closed: boolean;
}

function start(request: ExecRequest, env: NodeJS.ProcessEnv, killGraceMs: number): Running {
  const argv = request.argv;
  const program = argv[0] as string;
  let child: ChildProcessWithoutNullStreams;
  try {
    child = spawnChild(program, argv.slice(1), {
      shell: false,
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
      env: request.env ? { ...env, ...request.env } : env,
      cwd: request.cwd,
      windowsHide: true,
    });
  } catch (error) {
    throw spawnError(error, program);
  }
  let closed = false;
  let graceTimer: ReturnType<typeof setTimeout> | undefined;

  const signalGroup = (sig: NodeJS.Signals) => {
    if (closed || child.pid === undefined) return;
    try {
      // Negative pid: the whole process group the detached child leads (its own children included).
      process.kill(-child.pid, sig);
    } catch {
      try {
        child.kill(sig);
      } catch {
        // Already gone.
      }
    }
  };

  const ended = new Promise<{ exitCode: number | null; signal: string | null }>((resolve, reject) => {
    child.once('error', (error) => {
      if (child.pid === undefined) {
        closed = true;
        reject(spawnError(error, program));
      }
    });
    child.once('close', (code, sig) => {
      closed = true;
      if (graceTimer !== undefined) clearTimeout(graceTimer);
      resolve({ exitCode: code, signal: sig });
    });
  });
  ended.catch(() => {});
  // Writing to a process that has exited gives EPIPE: that is the process's business, not a crash.
  child.stdin.on('error', () => {});

  return {
    child,
    ended,
    get closed() {
      return closed;
    },
    kill() {
      if (closed) return;
      signalGroup('SIGTERM');
      if (graceTimer === undefined) {
        graceTimer = setTimeout(() => signalGroup('SIGKILL'), killGraceMs);
      }
    },
  };
}

/** Feeds `stdin` to the child; resolves when done, rejects when the source fails. */
async function feedStdin(
  child: ChildProcessWithoutNullStreams,
  stdin: ExecRequest['stdin'],
  endIfAbsent: boolean,
) {
  if (stdin === undefined) {
    if (endIfAbsent) child.stdin.end();
    return;
  }
  if (typeof stdin === 'string' || stdin instanceof Uint8Array) {
    child.stdin.end(stdin);
    return;
  }
  try {
    await pipeline(Readable.from(stdin, { objectMode: false }), child.stdin);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'EPIPE' || code === 'ERR_STREAM_DESTROYED' || code === 'ERR_STREAM_PREMATURE_CLOSE') return;
    throw error;
  }
}

function stdinError(error: unknown): HvkitError {
  if (HvkitError.isInstance(error)) return error;
  return hvkitError(
    'REMOTE',
    `exec: the stdin source failed: ${error instanceof Error ? error.message : String(error)}`,
    {
      operation: OPERATION,
      cause: error,
    },
  );
}

/**
 * Runs local commands. `argv` is passed verbatim to the program (no shell: quotes, `$()`, `;` and newlines
 * are plain characters). Each command leads its own process group, so a timeout, an abort or `kill()`
 * ends the command and everything it started: SIGTERM, then SIGKILL after `killGraceMs`.
 *
 * - `exec` buffers stdout and stderr (each up to `maxBuffer`, default 64 MiB; beyond it the command is
 *   killed and the call fails with `PROTOCOL`) and has a default timeout ({@link DEFAULT_TIMEOUT_MS}).
 *   stdin is closed at once when no `stdin` is given.
 * - `spawn` streams stdout (for big data). It has a timeout only when `timeoutMs` is given. When it is
 *   killed by a timeout or abort, stdout fails with that error rather than ending as if complete. Without
 *   `stdin`, the process's stdin stays open for the caller to write and end.
 *
 * A non-zero exit is not an error at this level. A program that does not exist fails with `NOT_FOUND`.
 * `request.env` is added to the base environment (it does not replace it).
 */
export function createLocalExec(options: LocalExecOptions = {}): ExecTransport {
  const defaultTimeoutMs = checkTimeoutMs(options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS, 'defaultTimeoutMs');
  const killGraceMs = options.killGraceMs ?? 2000;
  if (!(typeof killGraceMs === 'number' && killGraceMs >= 0 && Number.isFinite(killGraceMs))) {
    throw new TypeError('killGraceMs must be a finite non-negative number.');
  }
  const baseEnv = (options.env ?? process.env) as NodeJS.ProcessEnv;

  return {
    target: 'local',

    async exec(request: ExecRequest): Promise<ExecResult> {
      validateRequest(request);
      const maxBuffer = request.maxBuffer ?? DEFAULT_EXEC_MAX_BUFFER;
      const derived = deriveSignal(request, { defaultTimeoutMs, operation: OPERATION });
      try {
        if (derived.signal.aborted) throw derived.signal.reason;
        const running = start(request, baseEnv, killGraceMs);
        const { child } = running;
        return await new Promise<ExecResult>((resolve, reject) => {
          let settled = false;
          const fail = (error: unknown) => {
            if (settled) return;
            settled = true;
            running.kill();
            reject(error);
          };
          const onAbort = () => fail(abortError(derived.signal, { operation: OPERATION }));
          derived.signal.addEventListener('abort', onAbort, { once: true });

          const collect = (stream: Readable, name: 'stdout' | 'stderr') => {
            const chunks: Buffer[] = [];
            let size = 0;
            stream.on('data', (chunk: Buffer) => {
              size += chunk.length;
              if (size > maxBuffer) {
                fail(
                  hvkitError(
                    'PROTOCOL',
                    `exec: ${name} exceeded maxBuffer (${maxBuffer} bytes); the command was killed.`,
                    {
                      operation: OPERATION,
                      details: { maxBuffer, stream: name },
                    },
                  ),
                );
                stream.destroy();
                return;
              }
              chunks.push(chunk);
            });
            return () => Buffer.concat(chunks, Math.min(size, maxBuffer));
          };
          const stdout = collect(child.stdout, 'stdout');
          const stderr = collect(child.stderr, 'stderr');

          feedStdin(child, request.stdin, true).catch((error) => fail(stdinError(error)));

          running.ended.then(
            ({ exitCode, signal }) => {
              derived.signal.removeEventListener('abort', onAbort);
              if (settled) return;
              settled = true;
              resolve({ exitCode, signal, stdout: stdout(), stderr: stderr() });
            },
            (error) => {
              derived.signal.removeEventListener('abort', onAbort);
              fail(error);
            },
          );
        });
      } finally {
        derived.dispose();
      }
    },

    spawn(request: ExecRequest): ExecProcess {
      validateRequest(request);
      const maxStderr = Math.min(request.maxBuffer ?? DEFAULT_EXEC_MAX_BUFFER, 1024 * 1024);
      // Only an explicit timeoutMs applies: a stream lives as long as its consumer needs.
      const derived: DerivedSignal = deriveSignal(
        { signal: request.signal, timeoutMs: request.timeoutMs ?? Infinity },
        { operation: OPERATION },
      );
      if (derived.signal.aborted) {
        const error = derived.signal.reason as unknown;
        derived.dispose();
        return deadProcess(error);
      }
      let running: Running;
      try {
        running = start(request, baseEnv, killGraceMs);
      } catch (error) {
        derived.dispose();
        throw error;
      }
      const { child } = running;
      let failure: unknown;
      const stderrChunks: Buffer[] = [];
      let stderrSize = 0;
      child.stderr.on('data', (chunk: Buffer) => {
        if (stderrSize >= maxStderr) return;
        const part = chunk.subarray(0, maxStderr - stderrSize);
        stderrChunks.push(part);
        stderrSize += part.length;
      });
      // The consumer sees stream errors through its own pipeline or iterator; this keeps an unread
      // stdout that is destroyed with an error from crashing the process.
      child.stdout.on('error', () => {});
      child.stderr.on('error', () => {});
      const onAbort = () => {
        failure = abortError(derived.signal, { operation: OPERATION });
        running.kill();
        // A killed producer's stdout must not look like a complete stream.
        child.stdout.destroy(failure as Error);
      };
      derived.signal.addEventListener('abort', onAbort, { once: true });
      const stdinDone = feedStdin(child, request.stdin, false).catch((error) => {
        failure ??= stdinError(error);
        running.kill();
      });
      const result = running.ended
        .then(async ({ exitCode, signal }) => {
          await stdinDone;
          if (failure !== undefined) throw failure;
          return { exitCode, signal, stderr: Buffer.concat(stderrChunks, stderrSize) };
        })
        .finally(() => {
          derived.signal.removeEventListener('abort', onAbort);
          derived.dispose();
        });
      result.catch(() => {});
      return {
        stdout: child.stdout,
        stderr: child.stderr,
        stdin: child.stdin,
        wait: () => result,
        kill: () => running.kill(),
      };
    },
  };
}

/** The process `spawn` returns for an already-aborted signal: nothing was started. */
function deadProcess(error: unknown): ExecProcess {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  stdout.on('error', () => {});
  stdout.destroy(error as Error);
  stderr.end();
  const stdin = new Writable({
    write(_chunk, _encoding, callback) {
      callback();
    },
  });
  const result = Promise.reject(error);
  result.catch(() => {});
  return { stdout, stderr, stdin, wait: () => result, kill: () => {} };
}
