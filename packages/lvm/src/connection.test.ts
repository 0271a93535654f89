/**
 * `adapter.connection` on the recorded lab VM transcript (replayed commands): `open` until `close()`, then
 * every call fails `CONNECTION_LOST`, not retryable, without running a command. The SSH case, whose state
 * follows the caller's SSH client, runs against the lab VM in connection.live.test.ts.
 */

import { join } from 'node:path';
import { type ExecTranscript, readFixture, replayExec } from '@hvkit/conformance/fixtures';
import { type ConnectionStateChange, HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { FIXTURE, FIXTURE_TARGET, fixtureNaming } from '../test/replay-options';
import { connect } from './connect';

const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', FIXTURE));
const transcript = (await fixture.readJson('transcript.json')) as ExecTranscript;

describe('adapter.connection (replayed lab VM transcript)', () => {
  it('is open after connect; close() makes it closed, tells the listeners once, and every later call fails CONNECTION_LOST, not retryable, without running a command', async () => {
    const exec = replayExec(transcript);
    const hv = await connect({ exec, naming: fixtureNaming() });
    expect(hv.connection).toBeDefined();
    expect(hv.connection.state).toBe('open');
    expect(hv.connection.lastError).toBeUndefined();
    const heard: ConnectionStateChange[] = [];
    const stop = hv.connection.onChange((c) => heard.push(c));
    await Promise.all([hv.close(), hv.close()]);
    stop();
    expect(hv.connection.state).toBe('closed');
    expect(heard.map((c) => [c.previous, c.state, c.error])).toEqual([['open', 'closed', undefined]]);
    const ran = exec.calls.length;
    const calls: (() => Promise<unknown> | undefined)[] = [
      () => hv.inventory?.listGuests(),
      () => hv.inventory?.listStoragePools?.(),
      () => hv.backups?.listSnapshots(FIXTURE_TARGET),
      () => hv.backups?.cleanup?.(FIXTURE_TARGET),
    ];
    for (const call of calls) {
      const error = await Promise.resolve()
        .then(call)
        .then(
          () => undefined,
          (e: unknown) => e,
        );
      expect(HvkitError.isInstance(error, 'CONNECTION_LOST'), String(error)).toBe(true);
      expect(error).toMatchObject({ retryable: false, adapter: 'lvm' });
    }
    expect(exec.calls.length).toBe(ran);
  });

  it('over an SSH client that is already closed, connect() fails CONNECTION_LOST, not retryable, without running a command', async () => {
    const exec = replayExec(transcript);
    const error = await connect({ ssh: { exec, closed: true } }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'CONNECTION_LOST'), String(error)).toBe(true);
    expect(error).toMatchObject({ retryable: false, adapter: 'lvm' });
    expect(exec.calls).toHaveLength(0);
  });
});
