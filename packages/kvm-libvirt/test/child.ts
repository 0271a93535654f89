/**
 * Test helper: runs one of this folder's child scripts (test/backup-child.ts, test/restore-child.ts) in a
 * Node process of its own, so that a live test can kill it with SIGKILL at a point it reports, and awaits
 * its stdout lines by prefix.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { join } from 'node:path';
import { createInterface } from 'node:readline';

const pkg = join(import.meta.dirname, '..');

/** A running child script: its process, its end, its stdout lines awaited by prefix, and a SIGKILL. */
export interface TestChild {
  child: ChildProcess;
  exited: Promise<void>;
  /** Resolves with the first line starting with `prefix` (or rejects after 120 s or when the child ends). */
  waitFor(prefix: string): Promise<string>;
  /** SIGKILL, then waits for the process to end. */
  kill(): Promise<void>;
}

/**
 * Starts `node --conditions=@hvkit/source --import tsx test/<script> ...args` (stdin piped); with `ipc`,
 * also with an IPC channel, as vitest starts its workers.
 */
export function spawnTestChild(
  script: string,
  args: readonly string[],
  options: { ipc?: boolean } = {},
): TestChild {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--conditions=@hvkit/source', '--import', 'tsx', join(pkg, 'test', script), ...args],
    { cwd: pkg, stdio: ['pipe', 'pipe', 'inherit', ...(options.ipc ? (['ipc'] as const) : [])] },
  );
  const seen: string[] = [];
  const waiters: { prefix: string; resolve: (line: string) => void }[] = [];
  createInterface({ input: child.stdout as NodeJS.ReadableStream }).on('line', (line) => {
    seen.push(line);
    for (const w of waiters.splice(0)) {
      if (line.startsWith(w.prefix)) w.resolve(line);
      else waiters.push(w);
    }
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    child,
    exited,
    waitFor(prefix: string): Promise<string> {
      const old = seen.find((l) => l.startsWith(prefix));
      if (old) return Promise.resolve(old);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`no ${prefix} from the child; saw ${seen.join(' | ')}`)),
          120_000,
        );
        waiters.push({
          prefix,
          resolve: (line) => {
            clearTimeout(timer);
            resolve(line);
          },
        });
        void exited.then(() => {
          clearTimeout(timer);
          setTimeout(
            () => reject(new Error(`the child ended before ${prefix}; saw ${seen.join(' | ')}`)),
            200,
          );
        });
      });
    },
    async kill(): Promise<void> {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await exited;
    },
  };
}
