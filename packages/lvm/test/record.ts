/**
 * Records the replay fixture of @hvkit/lvm: runs the conformance suite in replay mode (the checks replay runs)
 * on this machine, in the
 * order replay runs it, with every command of the adapter going through `recordingExec`, normalises the
 * transcript and writes test/fixtures/<FIXTURE>/.
 *
 *   node --conditions=@hvkit/source --import tsx packages/lvm/test/record.ts
 *
 * The probe is left out on purpose: the recorded calls are then exactly the calls replay makes (see
 * docs/adding-an-adapter.md, "Recording").
 */

import { join } from 'node:path';
import { formatConformanceReport, runConformanceReport } from '@hvkit/conformance';
import {
  createExecTranscript,
  defaultRules,
  fixtureMetadata,
  normalise,
  normaliserId,
  recordingExec,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import { createLocalExec } from '@hvkit/core';
import { connect } from '../src/connect';
import { FIXTURE, REPLAY_SKIPS } from './replay-options';

const transcript = createExecTranscript();
const exec = recordingExec(createLocalExec(), transcript);
const report = await runConformanceReport({
  name: 'lvm (recording)',
  mode: 'replay',
  factory: () => connect({ exec }),
  skip: REPLAY_SKIPS,
});
console.log(formatConformanceReport(report));
if (report.failed > 0) throw new Error(`${report.failed} checks failed while recording; nothing written`);
const rules = defaultRules();
const hello = await connect({});
await hello.close();
const dir = join(import.meta.dirname, 'fixtures', FIXTURE);
await writeFixture(
  dir,
  {
    metadata: fixtureMetadata({
      recordedFrom: { server: hello.server.product, version: hello.server.version },
      normalisedWith: normaliserId(rules),
      notes:
        'The conformance suite run live on the local machine (the stub asks the kernel). Re-record with: node --conditions=@hvkit/source --import tsx packages/lvm/test/record.ts',
    }),
    files: { 'transcript.json': normalise(transcript, rules) },
  },
  { clean: true },
);
console.log(`wrote ${dir} (${transcript.commands.length} commands)`);
