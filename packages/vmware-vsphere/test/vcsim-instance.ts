/**
 * Test helper: a private govmomi vcsim (HVKIT_VCSIM_BIN) for live tests that change state or need their
 * own settings (a short session idle timeout, a big inventory). Plain http on 127.0.0.1, its own temp dir.
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export interface VcsimInstance {
  /** SOAP endpoint, `http://127.0.0.1:<port>/sdk`. */
  readonly url: string;
  readonly username: string;
  readonly password: string;
  readonly pid: number;
  /** Stops the simulator (SIGTERM, then SIGKILL) and removes its temp dir. */
  stop(): Promise<void>;
}

export interface VcsimInstanceOptions {
  /** The launcher binary (HVKIT_VCSIM_BIN). */
  bin: string;
  /** Model flags, e.g. `['-model', 'vpx', '-vm', '3']`. */
  args?: readonly string[];
  /** Session idle timeout, a Go duration (`2s`); default none. */
  idleTimeout?: string;
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
    '127.0.0.1:0',
    '-username',
    username,
    '-password',
    password,
    '-ready-file',
    ready,
  ];
  if (options.idleTimeout) args.push('-idle-timeout', options.idleTimeout);
  const child: ChildProcess = spawn(options.bin, args, {
    env: { ...process.env, TMPDIR: dir },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => {
    if (stderr.length < 4000) stderr += chunk.toString();
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (existsSync(ready)) {
      const url = /^url=(.*)$/m.exec(readFileSync(ready, 'utf8'))?.[1];
      if (url) return { url, username, password, pid: child.pid as number, stop };
    }
    if (child.exitCode !== null || Date.now() > deadline) {
      await stop();
      throw new Error(`vcsim did not start: ${stderr.slice(0, 1000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}
