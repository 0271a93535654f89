/**
 * Records the replay fixture of @hvkit/cgroups: runs the conformance suite in replay mode (the checks replay runs) on
 * this machine's files
 * (it must pass), then snapshots the files the adapter reads with `snapshotFileTree`, normalises the
 * snapshot and writes test/fixtures/<FIXTURE>/.
 *
 *   node --conditions=@hvkit/source --import tsx packages/cgroups/test/record.ts
 */

import { join } from 'node:path';
import { formatConformanceReport, runConformanceReport } from '@hvkit/conformance';
import {
  defaultRules,
  fixtureMetadata,
  normalise,
  normaliserId,
  snapshotFileTree,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import { createLocalFiles } from '@hvkit/core';
import { connect } from '../src/connect';
import { FIXTURE, REPLAY_SKIPS, SNAPSHOT } from './replay-options';

const report = await runConformanceReport({
  name: 'cgroups (recording)',
  mode: 'replay',
  factory: () => connect({ root: '/' }),
  skip: REPLAY_SKIPS,
});
console.log(formatConformanceReport(report));
if (report.failed > 0) throw new Error(`${report.failed} checks failed while recording; nothing written`);
const snapshot = await snapshotFileTree(createLocalFiles(), SNAPSHOT.dir, {
  include: SNAPSHOT.files,
  // Only the directory itself: its subdirectories hold nothing the stub reads.
  exclude: (path, entry) => entry.type === 'directory' && path !== '.',
});
const rules = defaultRules();
const hello = await connect({ root: '/' });
await hello.close();
const dir = join(import.meta.dirname, 'fixtures', FIXTURE);
await writeFixture(
  dir,
  {
    metadata: fixtureMetadata({
      recordedFrom: { server: hello.server.product, version: hello.server.version },
      normalisedWith: normaliserId(rules),
      notes: `The conformance suite run live on the local machine, then ${SNAPSHOT.dir} snapshotted (the files the stub reads). Re-record with: node --conditions=@hvkit/source --import tsx packages/cgroups/test/record.ts`,
    }),
    files: { 'files.json': normalise(snapshot, rules) },
  },
  { clean: true },
);
console.log(`wrote ${dir} (${Object.keys(snapshot.entries).length} entries)`);
