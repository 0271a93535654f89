import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { rejection, testTempDir } from '../__test-utils__';
import type { HvkitError } from '../errors/hvkit-error';
import { createLocalExec } from './local-exec';

const exec = createLocalExec({ killGraceMs: 300 });
const scratch = testTempDir('hvkit-exec-');

/** Whether a process exists and is not a zombie. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3);
    return state !== 'Z' && state !== 'X';
  } catch {
    return false;
  }
}

async function waitUntil(condition: () => boolean, ms = 5000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (condition()) return true;
    await new Promise((r) => setTimeout(r, 25));
  }
  return condition();
}

async function readPids(file: string): Promise<number[]> {
  await waitUntil(() => existsSync(file) && readFileSync(file, 'utf8').trim().split(/\s+/).length >= 2);
  return readFileSync(file, 'utf8')
    .trim()
    .split(/\s+/)
    .map((s) => Number(s));
}

/** Arguments a shell would misread (made in the tests: the paths are in the scratch folder). */
const hostile = (): string[] => [
  "a'b",
  'a"b',
  `$(touch ${join(scratch(), 'injected-1')})`,
  `\`touch ${join(scratch(), 'injected-2')}\``,
  `; touch ${join(scratch(), 'injected-3')}`,
  `| touch ${join(scratch(), 'injected-4')}`,
  `&& touch ${join(scratch(), 'injected-5')}`,
  'line1\nline2',
  '-n',
  '--help',
  '*',
  '~',
  '$HOME',
  '',
  ' spaced ',
  'tab\there',
  '\\',
  'émoji 😀',
  '> /dev/null',
];

describe('createLocalExec: argv is passed verbatim', () => {
  it('printf receives every hostile argument unchanged and nothing is executed', async () => {
    const result = await exec.exec({ argv: ['printf', '%s\\0', ...hostile()] });
    expect(result.exitCode).toBe(0);
    expect(result.signal).toBeNull();
    const parts = result.stdout.toString('utf8').split('\0');
    expect(parts.pop()).toBe('');
    expect(parts).toEqual(hostile());
    for (let i = 1; i <= 5; i++) expect(existsSync(join(scratch(), `injected-${i}`))).toBe(false);
  });

  it('node sees the same argv', async () => {
    const script = 'process.stdout.write(JSON.stringify(process.argv.slice(1)))';
    const args = hostile().filter((a) => a !== '');
    const result = await exec.exec({ argv: [process.execPath, '-e', script, '--', ...args] });
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout.toString('utf8'))).toEqual(args);
  });

  it('a program name is not interpreted by a shell either', async () => {
    const error = (await rejection(exec.exec({ argv: ['printf hi; touch /tmp/hvkit-never'] }))) as HvkitError;
    expect(error.code).toBe('NOT_FOUND');
    expect(existsSync('/tmp/hvkit-never')).toBe(false);
  });

  it('rejects NUL bytes and empty argv', async () => {
    expect(((await rejection(exec.exec({ argv: ['printf', 'a\0b'] }))) as HvkitError).code).toBe(
      'INVALID_ARGUMENT',
    );
    expect(((await rejection(exec.exec({ argv: [] }))) as HvkitError).code).toBe('INVALID_ARGUMENT');
    await expect(exec.exec({ argv: 'ls -l' as unknown as string[] })).rejects.toThrow(TypeError);
    await expect(exec.exec({ argv: ['ls', 5 as unknown as string] })).rejects.toThrow(TypeError);
  });
});

describe('createLocalExec: exec', () => {
  it('reports exit codes and signals without throwing', async () => {
    const fail = await exec.exec({ argv: ['sh', '-c', 'echo out; echo err >&2; exit 3'] });
    expect(fail.exitCode).toBe(3);
    expect(fail.stdout.toString()).toBe('out\n');
    expect(fail.stderr.toString()).toBe('err\n');
    const killed = await exec.exec({ argv: ['sh', '-c', 'kill -9 $$'] });
    expect(killed.exitCode).toBeNull();
    expect(killed.signal).toBe('SIGKILL');
  });

  it('feeds stdin from a string, bytes or an async iterable', async () => {
    expect((await exec.exec({ argv: ['cat'], stdin: 'hello\n' })).stdout.toString()).toBe('hello\n');
    expect((await exec.exec({ argv: ['cat'], stdin: new Uint8Array([104, 105]) })).stdout.toString()).toBe(
      'hi',
    );
    const data = randomBytes(3 * 1024 * 1024);
    async function* chunks() {
      for (let i = 0; i < data.length; i += 65536) yield data.subarray(i, i + 65536);
    }
    const result = await exec.exec({ argv: ['sha256sum'], stdin: chunks() });
    expect(result.stdout.toString().split(' ')[0]).toBe(createHash('sha256').update(data).digest('hex'));
  });

  it('closes stdin when none is given (cat ends at once)', async () => {
    const result = await exec.exec({ argv: ['cat'], timeoutMs: 5000 });
    expect(result.exitCode).toBe(0);
    expect(result.stdout.length).toBe(0);
  });

  it('adds env to the inherited environment and honours cwd', async () => {
    const result = await exec.exec({
      argv: ['sh', '-c', 'printf "%s|%s|%s" "$HVKIT_TEST" "$(pwd)" "$(test -n "$PATH" && echo has-path)"'],
      env: { HVKIT_TEST: "it's $(fine)" },
      cwd: scratch(),
    });
    expect(result.stdout.toString()).toBe(`it's $(fine)|${scratch()}|has-path`);
  });

  it('fails with NOT_FOUND for a missing program and a missing cwd', async () => {
    const error = (await rejection(exec.exec({ argv: ['hvkit-no-such-program-xyz'] }))) as HvkitError;
    expect(error.code).toBe('NOT_FOUND');
    expect(error.backendCode).toBe('ENOENT');
    expect(
      ((await rejection(exec.exec({ argv: ['true'], cwd: join(scratch(), 'missing') }))) as HvkitError).code,
    ).toBe('NOT_FOUND');
  });

  it('fails with PROTOCOL beyond maxBuffer and kills the command', async () => {
    const pidFile = join(scratch(), 'maxbuf.pid');
    const error = (await rejection(
      exec.exec({
        argv: ['sh', '-c', `echo $$ > ${pidFile}; while :; do echo xxxxxxxxxxxxxxxx; done`],
        maxBuffer: 4096,
      }),
    )) as HvkitError;
    expect(error.code).toBe('PROTOCOL');
    const pid = Number(readFileSync(pidFile, 'utf8'));
    expect(await waitUntil(() => !isAlive(pid))).toBe(true);
  });

  it('a timeout kills the whole process group', async () => {
    const pidFile = join(scratch(), 'timeout.pid');
    const started = Date.now();
    const error = (await rejection(
      exec.exec({ argv: ['sh', '-c', `sleep 30 & echo $$ $! > ${pidFile}; wait`], timeoutMs: 1000 }),
    )) as HvkitError;
    expect(error.code).toBe('TIMEOUT');
    expect(error.retryable).toBe(true);
    expect(Date.now() - started).toBeLessThan(5000);
    const pids = await readPids(pidFile);
    expect(pids).toHaveLength(2);
    expect(await waitUntil(() => pids.every((pid) => !isAlive(pid)))).toBe(true);
  });

  it('SIGKILL follows when the command ignores SIGTERM', async () => {
    const pidFile = join(scratch(), 'stubborn.pid');
    const error = (await rejection(
      exec.exec({
        argv: ['sh', '-c', `trap '' TERM; sleep 30 & echo $$ $! > ${pidFile}; wait`],
        timeoutMs: 1000,
      }),
    )) as HvkitError;
    expect(error.code).toBe('TIMEOUT');
    const pids = await readPids(pidFile);
    expect(await waitUntil(() => pids.every((pid) => !isAlive(pid)))).toBe(true);
  });

  it('an abort kills the whole process group', async () => {
    const pidFile = join(scratch(), 'abort.pid');
    const controller = new AbortController();
    const promise = exec.exec({
      argv: ['sh', '-c', `sleep 30 & echo $$ $! > ${pidFile}; wait`],
      signal: controller.signal,
    });
    const pids = await readPids(pidFile);
    controller.abort();
    expect(((await rejection(promise)) as HvkitError).code).toBe('ABORTED');
    expect(await waitUntil(() => pids.every((pid) => !isAlive(pid)))).toBe(true);
  });

  it('does not start anything for an already-aborted signal', async () => {
    const marker = join(scratch(), 'never-run');
    const controller = new AbortController();
    controller.abort();
    const error = (await rejection(
      exec.exec({ argv: ['touch', marker], signal: controller.signal }),
    )) as HvkitError;
    expect(error.code).toBe('ABORTED');
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(marker)).toBe(false);
  });

  it('uses the default timeout of the transport', async () => {
    const quick = createLocalExec({ defaultTimeoutMs: 200, killGraceMs: 100 });
    expect(((await rejection(quick.exec({ argv: ['sleep', '30'] }))) as HvkitError).code).toBe('TIMEOUT');
    expect(quick.target).toBe('local');
  });
});

describe('createLocalExec: spawn (streams)', () => {
  it('streams big output', async () => {
    const size = 8 * 1024 * 1024;
    const proc = exec.spawn({ argv: ['head', '-c', String(size), '/dev/urandom'] });
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of proc.stdout) {
      bytes += chunk.length;
      hash.update(chunk);
    }
    const result = await proc.wait();
    expect(result.exitCode).toBe(0);
    expect(bytes).toBe(size);
    expect(hash.digest('hex')).toMatch(/^[0-9a-f]{64}$/);
  });

  it('round trips data through stdin and stdout with backpressure', async () => {
    const data = randomBytes(4 * 1024 * 1024);
    async function* chunks() {
      for (let i = 0; i < data.length; i += 100_000) yield data.subarray(i, i + 100_000);
    }
    const proc = exec.spawn({ argv: ['cat'], stdin: chunks() });
    const out: Buffer[] = [];
    for await (const chunk of proc.stdout) out.push(chunk as Buffer);
    await proc.wait();
    expect(Buffer.concat(out).equals(data)).toBe(true);
  });

  it('leaves stdin open for the caller when no stdin is given', async () => {
    const proc = exec.spawn({ argv: ['cat'] });
    proc.stdin.end('written by the caller');
    let text = '';
    for await (const chunk of proc.stdout) text += chunk.toString();
    expect(text).toBe('written by the caller');
    expect((await proc.wait()).exitCode).toBe(0);
  });

  it('collects stderr and reports the exit', async () => {
    const proc = exec.spawn({ argv: ['sh', '-c', 'echo oops >&2; exit 4'] });
    proc.stdout.resume();
    const result = await proc.wait();
    expect(result.exitCode).toBe(4);
    expect(result.stderr.toString()).toBe('oops\n');
  });

  it('an abort kills the group and fails stdout instead of ending it cleanly', async () => {
    const pidFile = join(scratch(), 'spawn-abort.pid');
    const controller = new AbortController();
    const proc = exec.spawn({
      argv: ['sh', '-c', `sleep 30 & echo $$ $! > ${pidFile}; while :; do echo data; sleep 0.05; done`],
      signal: controller.signal,
    });
    const pids = await readPids(pidFile);
    const reading = (async () => {
      for await (const _ of proc.stdout) {
        // consume
      }
    })();
    controller.abort();
    expect(((await rejection(reading)) as HvkitError).code).toBe('ABORTED');
    expect(((await rejection(proc.wait())) as HvkitError).code).toBe('ABORTED');
    expect(await waitUntil(() => pids.every((pid) => !isAlive(pid)))).toBe(true);
  });

  it('a timeout applies only when given, and then kills', async () => {
    const proc = exec.spawn({ argv: ['sleep', '30'], timeoutMs: 200 });
    proc.stdout.resume();
    expect(((await rejection(proc.wait())) as HvkitError).code).toBe('TIMEOUT');
  });

  it('kill() ends the command', async () => {
    const proc = exec.spawn({ argv: ['sleep', '30'] });
    proc.stdout.resume();
    setTimeout(() => proc.kill(), 50);
    const result = await proc.wait();
    expect(result.signal).toBe('SIGTERM');
  });

  it('does not start anything for an already-aborted signal', async () => {
    const marker = join(scratch(), 'never-spawned');
    const controller = new AbortController();
    controller.abort();
    const proc = exec.spawn({ argv: ['touch', marker], signal: controller.signal });
    expect(((await rejection(proc.wait())) as HvkitError).code).toBe('ABORTED');
    expect(
      (
        (await rejection(
          (async () => {
            for await (const _ of proc.stdout) {
              /* */
            }
          })(),
        )) as HvkitError
      ).code,
    ).toBe('ABORTED');
    await new Promise((r) => setTimeout(r, 100));
    expect(existsSync(marker)).toBe(false);
  });

  it('reports a missing program through wait()', async () => {
    const proc = exec.spawn({ argv: ['hvkit-no-such-program-xyz'] });
    proc.stdout.on('error', () => {});
    expect(((await rejection(proc.wait())) as HvkitError).code).toBe('NOT_FOUND');
  });
});
