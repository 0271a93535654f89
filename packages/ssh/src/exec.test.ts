/**
 * How exec learns a command's exit status, against ssh2's server on loopback (no sshd peer needed) behind
 * a proxy that delivers each burst of server packets in one piece (see test/burst-server.ts).
 */

import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { useBurstServer } from '../test/burst-server';
import { rejectsWith, unhandledDuring, within } from '../test/sshd-peer';

const burst = useBurstServer();

describe('exit status of a channel whose replies arrive in one burst', () => {
  it('exec reports the exit status sent together with CHANNEL_SUCCESS', async () => {
    for (const code of [0, 3, 0, 255]) {
      const r = await burst.ssh().exec.exec({ argv: ['status', String(code)], timeoutMs: 10_000 });
      expect(r).toMatchObject({ exitCode: code, signal: null });
      expect(r.stdout.toString()).toBe('out\n');
    }
    const killed = await burst.ssh().exec.exec({ argv: ['signal', 'TERM'], timeoutMs: 10_000 });
    expect(killed).toMatchObject({ exitCode: null, signal: 'SIGTERM' });
  });

  it('spawn().wait() reports it too', async () => {
    const p = burst.ssh().exec.spawn({ argv: ['status', '7'], timeoutMs: 10_000 });
    p.stdout.resume();
    p.stdin.end();
    expect(await p.wait()).toMatchObject({ exitCode: 7, signal: null });
  });

  it('a dialed stream fails with REMOTE when its command exits non-zero', async () => {
    const stream = await burst.ssh().dialer(['status', '5']).dial({ timeoutMs: 10_000 });
    const err = await new Promise<unknown>((resolve) => {
      stream.on('error', resolve);
      stream.on('end', () => resolve(undefined));
      stream.resume();
    });
    expect(HvkitError.isInstance(err, 'REMOTE')).toBe(true);
    expect((err as HvkitError).message).toMatch(/exited with status 5/);
  });

  it('a channel closed without any exit status is PROTOCOL, never a result with no status', async () => {
    const err = await rejectsWith(
      burst.ssh().exec.exec({ argv: ['nostatus'], timeoutMs: 10_000 }),
      'PROTOCOL',
    );
    expect(err.message).toMatch(/without an exit status/);
    const p = burst.ssh().exec.spawn({ argv: ['nostatus'], timeoutMs: 10_000 });
    p.stdout.resume();
    p.stderr.resume();
    p.stdin.end();
    await rejectsWith(p.wait(), 'PROTOCOL');
    // The connection is still fine.
    expect((await burst.ssh().exec.exec({ argv: ['status', '0'], timeoutMs: 10_000 })).exitCode).toBe(0);
  });
});

/** Spawns the burst server's `ticks` under a signal of its own; `killed()` says how it ended since. */
function startTicks() {
  const server = burst.server();
  const before = server.ended.length;
  const ac = new AbortController();
  const p = burst.ssh().exec.spawn({ argv: ['ticks'], signal: ac.signal });
  p.stdin.end();
  return { ac, p, killed: () => server.ended.slice(before) };
}

describe('spawn: an abort settles everything it handed out', () => {
  it('while stdout is read: stdout, stderr and wait() fail with ABORTED, nothing unhandled, the process is killed', async () => {
    const unhandled = await unhandledDuring(async () => {
      const { ac, p, killed } = startTicks();
      let chunks = 0;
      const reading = (async () => {
        for await (const _ of p.stdout) if (++chunks === 2) ac.abort();
      })();
      await rejectsWith(within(reading, 5000, 'reading stdout'), 'ABORTED');
      await rejectsWith(p.wait(), 'ABORTED');
      // Nobody read stderr: a reader who comes later learns why it ended.
      await rejectsWith(within(p.stderr.toArray(), 5000, 'reading stderr'), 'ABORTED');
      await within(p.closed, 5000, 'closed');
      expect(killed()).toEqual([{ command: 'ticks', how: 'close' }]);
    });
    expect(unhandled).toEqual([]);
  });

  it('before anyone reads: a later reader of stdout gets ABORTED, not an early end', async () => {
    const unhandled = await unhandledDuring(async () => {
      const { ac, p, killed } = startTicks();
      await new Promise((r) => setTimeout(r, 400));
      ac.abort();
      await rejectsWith(p.wait(), 'ABORTED');
      expect(HvkitError.isInstance(p.stdout.errored, 'ABORTED')).toBe(true);
      await rejectsWith(within(p.stdout.toArray(), 5000, 'reading stdout'), 'ABORTED');
      await within(p.closed, 5000, 'closed');
      expect(killed()).toEqual([{ command: 'ticks', how: 'close' }]);
      // Aborted before the channel opened: nothing runs, and the streams say why.
      const early = burst.ssh().exec.spawn({ argv: ['ticks'], signal: AbortSignal.abort() });
      await rejectsWith(early.wait(), 'ABORTED');
      await rejectsWith(within(early.stdout.toArray(), 5000, 'reading stdout'), 'ABORTED');
      await within(early.closed, 5000, 'closed');
    });
    expect(unhandled).toEqual([]);
    expect(burst.server().running).toBe(0);
  });
});

describe('spawn: a stdin source that fails', () => {
  it('kills the remote process, and wait() rejects, once it is gone, with REMOTE carrying the error as cause', async () => {
    const server = burst.server();
    const before = server.ended.length;
    const broken = new Error('the source broke');
    async function* source() {
      yield Buffer.from('one\n');
      await new Promise((r) => setTimeout(r, 1000));
      throw broken;
    }
    const p = burst.ssh().exec.spawn({ argv: ['cat'], stdin: source() });
    p.stderr.resume();
    const out: Buffer[] = [];
    p.stdout.on('data', (c: Buffer) => out.push(c));
    const err = await rejectsWith(within(p.wait(), 5000, 'wait()'), 'REMOTE');
    expect(err.message).toMatch(/stdin source failed: the source broke/);
    expect(err.cause).toBe(broken);
    // As with local exec, wait() settles once the process is gone (a writer still running could write on).
    expect(server.ended.slice(before)).toEqual([{ command: 'cat', how: 'close' }]);
    expect(Buffer.concat(out).toString()).toBe('one\n');
  });

  it('an HvkitError of the source is the rejection itself', async () => {
    const own = new HvkitError({ code: 'PROTOCOL', message: 'the artifact does not match its manifest' });
    async function* source() {
      yield Buffer.from('x');
      throw own;
    }
    const p = burst.ssh().exec.spawn({ argv: ['cat'], stdin: source() });
    p.stdout.resume();
    p.stderr.resume();
    expect(await within(p.wait(), 5000, 'wait()').catch((e: unknown) => e)).toBe(own);
    await within(p.closed, 5000, 'closed');
  });

  it('an early exit of the remote process that closes stdin is not an error', async () => {
    async function* endless() {
      for (;;) {
        yield Buffer.alloc(16 * 1024);
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const p = burst.ssh().exec.spawn({ argv: ['status', '0'], stdin: endless() });
    p.stdout.resume();
    p.stderr.resume();
    expect(await within(p.wait(), 5000, 'wait()')).toMatchObject({ exitCode: 0, signal: null });
    expect(burst.server().running).toBe(0);
  });
});
