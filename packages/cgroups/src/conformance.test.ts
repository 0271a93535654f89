/**
 * Replay conformance: the suite against the file-tree snapshot that test/record.ts recorded, served by
 * `replayFiles` (read-only: nothing the suite does may write).
 */

import { join } from 'node:path';
import { runAdapterConformance } from '@hvkit/conformance';
import { type FileTreeSnapshot, readFixture, replayFiles } from '@hvkit/conformance/fixtures';
import { describe, expect, it } from 'vitest';
import { FIXTURE, REPLAY_SKIPS } from '../test/replay-options';
import { connect } from './connect';

const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', FIXTURE));
const files = replayFiles((await fixture.readJson('files.json')) as FileTreeSnapshot, { readOnly: true });

runAdapterConformance({
  name: `cgroups (${FIXTURE} fixture)`,
  mode: 'replay',
  factory: () => connect({ files, root: '/' }),
  skip: REPLAY_SKIPS,
});

describe('cgroups replay', () => {
  it('wrote nothing', () => {
    expect(files.writes).toEqual([]);
    expect(files.removed).toEqual([]);
  });
});
