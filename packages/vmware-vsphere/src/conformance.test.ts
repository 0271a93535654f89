/**
 * Replay conformance: the suite against the cassettes recorded by test/record.ts from private vcsim
 * instances (vCenter model and ESX model), served by `replayFetch` injected as the adapter's fetch.
 */

import { join } from 'node:path';
import { runAdapterConformance } from '@hvkit/conformance';
import { type HttpCassette, readFixture, replayFetch } from '@hvkit/conformance/fixtures';
import { REPLAY_SKIPS } from '../test/replay-options';
import { connect } from './index';

const FIXTURES = join(import.meta.dirname, '..', 'test', 'fixtures');

/**
 * Checks newer than the cassettes: replayed, they would take the responses recorded for the checks after
 * them. Recording (test/record.ts) runs them; remove them from here once the cassettes are re-recorded.
 */
const NOT_YET_RECORDED: Record<string, string> = {};

for (const model of ['vpx', 'esx'] as const) {
  const fixture = await readFixture(join(FIXTURES, `vcsim-${model}`));
  const cassette = (await fixture.readJson('cassette.json')) as HttpCassette;
  // One fetch for the whole run: the suite's calls come in the recorded order, and repeated requests get
  // their responses in recorded order.
  const fetch = replayFetch(cassette);
  runAdapterConformance({
    name: `vmware-vsphere (vcsim ${model} fixture)`,
    mode: 'replay',
    factory: () =>
      connect({
        url: 'http://127.0.0.1:1/sdk',
        insecureHttp: true,
        username: 'tester',
        password: 'REDACTED',
        fetch,
      }),
    skip: { ...REPLAY_SKIPS, ...NOT_YET_RECORDED },
  });
}
