/**
 * Test helper: a private govmomi vcsim (HVKIT_VCSIM_BIN) for live tests that change state or need their
 * own settings (a short session idle timeout, a big inventory). Plain http on 127.0.0.1, its own temp dir.
 * It does not outlive the process that started it (exit, SIGTERM, SIGINT, SIGHUP, loss of the IPC channel).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stopWithProcess } from '../../core/src/__test-utils__/process-end';

export interface VcsimInstance {
  /** SOAP endpoint, `http://127.0.0.1:<port>/sdk`. */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  /** The running simulator's pid (it changes with {@link restart}). */
  readonly pid: number;
  /** Stops the simulator (SIGTERM, then SIGKILL) and removes its temp dir. */
  stop(): Promise<void>;
  /** Kills the simulator (SIGKILL) and waits for it to exit; the temp dir stays for {@link restart}. */
  kill(): Promise<void>;
  /** Starts the simulator again on the same port (a fresh inventory); resolves when it is ready. */
  restart(): Promise<void>;
  /** Sends a signal (SIGSTOP, SIGCONT, ...) to the running simulator. */
  signal(signal: NodeJS.Signals): void;
}

export interface VcsimInstanceOptions {
  /** The launcher binary (HVKIT_VCSIM_BIN). */
  bin: string;
  /** Model flags, e.g. `['-model', 'vpx', '-vm', '3']`. */
  args?: readonly string[];
  /** Session idle timeout, a Go duration (`2s`); default none. */
  idleTimeout?: string;
  /** Listen on this loopback port (default: any free one). A fixed port lets {@link VcsimInstance.restart} keep the URL. */
  port?: number;
}

export async function startVcsim(options: VcsimInstanceOptions): Promise<VcsimInstance> {
  const dir = mkdtempSync(join(tmpdir(), 'hvkit-vcsim-test-'));
  const ready = join(dir, 'ready');
  const username = 'tester';
  const password = 'vcsim-Test-pw-9f2c';
  const args = [
    ...(options.args ?? ['-model', 'vpx']),
    '-tls=false',
    '-listen',
    `127.0.0.1:${options.port ?? 0}`,
    '-username',
    username,
    '-password',
    password,
    '-ready-file',
    ready,
  ];
  if (options.idleTimeout) args.push('-idle-timeout', options.idleTimeout);
  let child: ChildProcess;
  let exited: Promise<void>;
  let stderr = '';
  const running = () => child.exitCode === null && child.signalCode === null;
  const launch = async (): Promise<string> => {
    rmSync(ready, { force: true });
    stderr = '';
    child = spawn(options.bin, args, {
      env: { ...process.env, TMPDIR: dir },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const current = child;
    current.stderr?.on('data', (chunk: Buffer) => {
      if (stderr.length < 4000) stderr += chunk.toString();
    });
    exited = new Promise<void>((resolve) => current.once('exit', () => resolve()));
    const deadline = Date.now() + 30_000;
    for (;;) {
      if (existsSync(ready)) {
        const url = /^url=(.*)$/m.exec(readFileSync(ready, 'utf8'))?.[1];
        if (url) return url;
      }
      if (current.exitCode !== null || Date.now() > deadline) {
        await kill();
        throw new Error(`vcsim did not start: ${stderr.slice(0, 1000)}`);
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const kill = async () => {
    if (running()) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
      await exited;
    }
  };
  const stop = async () => {
    if (running()) {
      child.kill('SIGCONT');
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    unhook();
    rmSync(dir, { recursive: true, force: true });
  };
  // Killed, and its directory removed, when this process ends without stop(): a file whose afterAll does
  // not run (its tests filtered out, while the conformance suite started one at collection) leaves nothing.
  const unhook = stopWithProcess(() => {
    if (running()) {
      child.kill('SIGCONT');
      child.kill('SIGKILL');
    }
    rmSync(dir, { recursive: true, force: true });
  });
  let url: string;
  try {
    url = await launch();
  } catch (error) {
    unhook();
    rmSync(dir, { recursive: true, force: true });
    throw error;
  }
  return {
    url,
    username,
    password,
    get pid() {
      return child.pid as number;
    },
    stop,
    kill,
    async restart() {
      if (running()) return;
      await launch();
    },
    signal(signal: NodeJS.Signals) {
      if (running()) child.kill(signal);
    },
  };
}
