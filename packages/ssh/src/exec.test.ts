/**
 * How exec learns a command's exit status, against ssh2's server on loopback (no sshd peer needed) behind
 * a proxy that delivers each burst of server packets in one piece (see test/burst-server.ts).
 */

import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { useBurstServer } from '../test/burst-server';
import { rejectsWith } from '../test/sshd-peer';

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
