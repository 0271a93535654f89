/**
 * Replay conformance: the suite against the file-tree snapshots test/record.ts recorded from real cgroup
 * trees (this machine's hybrid tree, the lab VM's cgroup v2 tree), served by `replayFiles` with the
 * kernel's read-back rules of test/replay-kernel.ts. The suite restores what it changes, so afterwards
 * every file is as recorded.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runAdapterConformance } from '@hvkit/conformance';
import { type FileTreeSnapshot, readFixture, replayFiles } from '@hvkit/conformance/fixtures';
import { describe, expect, it } from 'vitest';
import { cgroupOnWrite } from '../test/replay-kernel';
import { FIXTURE_GROUP, FIXTURES, LIMIT_VALUES, REPLAY_SKIPS } from '../test/replay-options';
import { connect } from './connect';

for (const [version, name] of Object.entries(FIXTURES)) {
  const dir = join(import.meta.dirname, '..', 'test', 'fixtures', name);
  if (!existsSync(dir)) {
    describe(`cgroups replay (${name})`, () => {
      it.skip(`skipped: no ${name} fixture recorded yet (test/record.ts ${version})`, () => {});
    });
    continue;
  }
  const fixture = await readFixture(dir);
  const snapshot = (await fixture.readJson('files.json')) as FileTreeSnapshot;
  const files = replayFiles(snapshot, { onWrite: cgroupOnWrite, allowCreate: false });
  const target = version === 'v2' ? `${FIXTURE_GROUP}/guest` : FIXTURE_GROUP;

  runAdapterConformance({
    name: `cgroups (${name} fixture)`,
    mode: 'replay',
    factory: () => connect({ files, extraGroups: [target] }),
    target,
    limitValues: LIMIT_VALUES,
    skip: REPLAY_SKIPS,
  });

  describe(`cgroups replay (${name})`, () => {
    it('leaves every file as recorded (the suite restored what it changed)', () => {
      const after = files.toSnapshot().entries;
      const changed = Object.entries(snapshot.entries)
        .filter(([, e]) => e.type === 'file' && e.content !== undefined)
        .filter(([rel, e]) => after[rel]?.content?.trim() !== e.content?.trim())
        .map(([rel]) => rel);
      expect(changed).toEqual([]);
      expect(files.writes.length).toBeGreaterThan(0);
      expect(files.removed).toEqual([]);
    });
  });
}
