/**
 * Replay conformance: the suite against the exec transcript that test/record.ts recorded, served by
 * `replayExec` (each command answered by the next unused recording of the same argv). Every recorded
 * command must be used.
 */

import { join } from 'node:path';
import { runAdapterConformance } from '@hvkit/conformance';
import { type ExecTranscript, readFixture, replayExec } from '@hvkit/conformance/fixtures';
import { describe, expect, it } from 'vitest';
import { FIXTURE, FIXTURE_TARGET, fixtureNaming, REPLAY_SKIPS } from '../test/replay-options';
import { connect } from './connect';

const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', FIXTURE));
const transcript = (await fixture.readJson('transcript.json')) as ExecTranscript;
const exec = replayExec(transcript);
const naming = fixtureNaming();

runAdapterConformance({
  name: `lvm (${FIXTURE} fixture)`,
  mode: 'replay',
  factory: () => connect({ exec, naming }),
  target: FIXTURE_TARGET,
  skip: REPLAY_SKIPS,
});

describe('lvm replay', () => {
  it('used every recorded command', () => {
    expect(exec.calls.filter((call) => call.matched !== null)).toHaveLength(transcript.commands.length);
  });
});
