/**
 * Command injection, locally: names with shell metacharacters are refused before any command runs (the
 * adapter replays the lab VM's transcript, so a command that ran would be seen), and a name that does reach a
 * local command is one argv element, never interpreted (core's local exec has no shell).
 */
import { join } from 'node:path';
import { type ExecTranscript, readFixture, replayExec } from '@hvkit/conformance/fixtures';
import { createLocalExec, HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { FIXTURE } from '../test/replay-options';
import { connect } from './connect';
import { LvmClient } from './protocol/client';

const HOSTILE = [
  '$(touch /tmp/hvkit-pwned)',
  'x;touch /tmp/hvkit-pwned',
  '`id`',
  "a'b",
  'a b',
  '-a',
  'a\nb',
  'x|y',
];

describe('names with shell metacharacters, locally', () => {
  it('are INVALID_ARGUMENT before any command runs', async () => {
    const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', FIXTURE));
    const exec = replayExec((await fixture.readJson('transcript.json')) as ExecTranscript);
    await using hv = await connect({ exec });
    const before = exec.calls.length;
    for (const bad of HOSTILE) {
      for (const call of <(() => Promise<unknown> | undefined)[]>[
        () => hv.inventory?.listStorageVolumes?.(bad),
        () => hv.inventory?.listStorageVolumes?.(`vg0/${bad}`),
        () => hv.backups?.deleteSnapshot('hvkit-test-fixture/guest1', `hvkit-test-fixture/${bad}`),
      ]) {
        const error = await Promise.resolve()
          .then(call)
          .catch((e: unknown) => e);
        expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT'), bad).toBe(true);
      }
    }
    expect(exec.calls.length).toBe(before);
  });

  it('reach a local command as one argument each, verbatim', async () => {
    const client = new LvmClient(createLocalExec(), 10_000);
    for (const bad of HOSTILE) {
      const out = await client.run([
        process.execPath,
        '-e',
        'process.stdout.write(JSON.stringify(process.argv.slice(1)))',
        '--',
        bad,
      ]);
      expect(JSON.parse(out)).toEqual([bad]);
    }
  });
});
