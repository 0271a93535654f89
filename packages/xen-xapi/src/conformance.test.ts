/**
 * Replay conformance: the suite against the cassette that test/record.ts recorded, served by msw
 * (`createReplayServer`, unhandled requests are errors) to the adapter's fetch. Every recorded interaction
 * must be used.
 */

import { join } from 'node:path';
import { runAdapterConformance } from '@hvkit/conformance';
import { createReplayServer, type HttpCassette, readFixture } from '@hvkit/conformance/fixtures';
import { afterAll, describe, it } from 'vitest';
import { FIXTURE, REPLAY_ORIGIN, REPLAY_SKIPS } from '../test/replay-options';
import { connect } from './connect';

const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', FIXTURE));
const replay = createReplayServer((await fixture.readJson('cassette.json')) as HttpCassette);
// Listening from the start: the suite calls factory() while collecting, before any hook runs.
replay.listen();
afterAll(() => replay.close());

runAdapterConformance({
  name: `xen-xapi (${FIXTURE} fixture)`,
  mode: 'replay',
  // The global fetch, looked up at each call: msw intercepts it.
  factory: () =>
    connect({
      url: `${REPLAY_ORIGIN}/`,
      insecureHttp: true,
      fetch: (input, init) => globalThis.fetch(input, init),
    }),
  skip: REPLAY_SKIPS,
});

describe('xen-xapi replay', () => {
  it('used every recorded interaction', () => {
    replay.done();
  });
});
