/**
 * `adapter.connection` on the recorded hybrid tree (replayed files): `open` until `close()`, then every
 * call fails `CONNECTION_LOST`, not retryable. The SSH case, whose state follows the SSH client's
 * `closed`, runs against the real sshd peer in connection.live.test.ts; here only the watch that tells
 * listeners while no call runs, on a connection whose `closed` the test sets.
 */

import { join } from 'node:path';
import { type FileTreeSnapshot, readFixture, replayFiles } from '@hvkit/conformance/fixtures';
import { type ConnectionStateChange, HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { FIXTURE_GROUP, FIXTURES } from '../test/replay-options';
import { connect } from './connect';
import { CgroupsConnection, SSH_WATCH_INTERVAL_MS } from './connection';

const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', FIXTURES.v1));
const snapshot = (await fixture.readJson('files.json')) as FileTreeSnapshot;
const files = () => replayFiles(snapshot, { allowCreate: false });

describe('adapter.connection (replayed hybrid tree)', () => {
  it('is open after connect; close() makes it closed, tells the listeners once, and every later call fails CONNECTION_LOST, not retryable', async () => {
    const hv = await connect({ files: files(), extraGroups: [FIXTURE_GROUP] });
    expect(hv.connection.state).toBe('open');
    expect(hv.connection.lastError).toBeUndefined();
    expect((await hv.inventory.listGuests()).map((g) => g.id)).toContain(FIXTURE_GROUP);
    const changes: ConnectionStateChange[] = [];
    hv.connection.onChange((c) => changes.push(c));
    await hv.close();
    await hv.close();
    expect(hv.connection.state).toBe('closed');
    expect(changes).toEqual([
      expect.objectContaining({ previous: 'open', state: 'closed', error: undefined }),
    ]);
    for (const call of [
      () => hv.inventory.host(),
      () => hv.inventory.listGuests(),
      () => hv.limits.get(FIXTURE_GROUP),
      () => hv.limits.set(FIXTURE_GROUP, { cpu: { weight: 50 } }),
    ]) {
      const error = await call().then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(HvkitError.isInstance(error, 'CONNECTION_LOST')).toBe(true);
      expect(error).toMatchObject({ retryable: false, adapter: 'cgroups' });
    }
  });

  it('a connection whose closed becomes true is reported closed to listeners within the watch interval, with a CONNECTION_LOST lastError that says how to reconnect', async () => {
    const ssh = { closed: false };
    const connection = new CgroupsConnection('ssh://root@host:22', ssh);
    const changes: ConnectionStateChange[] = [];
    connection.onChange((c) => changes.push(c));
    ssh.closed = true;
    const started = Date.now();
    while (changes.length === 0 && Date.now() - started < 5 * SSH_WATCH_INTERVAL_MS) {
      await new Promise((r) => setTimeout(r, 5));
    }
    expect(Date.now() - started).toBeLessThan(2 * SSH_WATCH_INTERVAL_MS);
    expect(changes).toHaveLength(1);
    expect(changes[0]?.error).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
    expect(changes[0]?.error?.message).toMatch(/open a new SSH client and a new adapter/);
    expect(() => connection.ensureOpen('read')).toThrow(/the connection to ssh:\/\/root@host:22 is closed/);
  });

  it('a connection without `closed` (local files) stays open until close()', () => {
    const connection = new CgroupsConnection('local', {});
    expect(connection.state).toBe('open');
    expect(() => connection.ensureOpen('read')).not.toThrow();
    expect(connection.closedErrorAfter('read', new Error('EIO'))).toBeUndefined();
    connection.close();
    expect(connection.state).toBe('closed');
    expect(() => connection.ensureOpen('read')).toThrow(HvkitError);
  });
});
