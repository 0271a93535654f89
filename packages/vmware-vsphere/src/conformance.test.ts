/**
 * Replay conformance: the suite against the cassettes recorded by test/record.ts from private vcsim
 * instances (vCenter model and ESX model), shipped as `@hvkit/vmware-vsphere/testing`, served by msw
 * handlers built from each cassette. The adapter is connected exactly as a user would (no injected fetch):
 * its plain-http requests go through the platform fetch, which msw intercepts. Requests must come in the
 * recorded order, anything the cassette does not serve fails the request (`onUnhandledRequest: 'error'`),
 * and every recorded interaction must have been used.
 */

import { runAdapterConformance } from '@hvkit/conformance';
import { type CassetteHandlers, cassetteHandlers } from '@hvkit/conformance/fixtures';
import { onUnhandledRequest } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, describe, it } from 'vitest';
import { DISKLESS_VM } from '../test/probe';
import { REPLAY_SKIPS, vcsimRunIdRule } from '../test/replay-options';
import { connect } from './index';
import { vcsimCassette } from './testing';

// One msw server for the file, listening from the start: the suite calls its factory once while it
// collects the checks. Each model's factory puts that model's cassette in place (both cassettes answer
// at the same recorded URL), and every check starts with a factory call.
const server = setupServer();
let active: CassetteHandlers | undefined;
server.listen({
  onUnhandledRequest(request) {
    // Say why (e.g. "the recorded call order differs"), then fail the request as msw's 'error' does.
    const why = active?.unhandled.at(-1);
    if (why && why.url === request.url) console.error(why.explanation);
    return onUnhandledRequest(request, 'error');
  },
});
afterAll(() => server.close());

for (const model of ['vpx', 'esx'] as const) {
  // The cassettes users get from `@hvkit/vmware-vsphere/testing`, with the same connect options.
  const { cassette, connectOptions } = await vcsimCassette(model);
  // Run ids and lease owners differ from run to run: pinned in the cassette and in each request alike.
  const replay = cassetteHandlers(cassette, { rules: { text: [vcsimRunIdRule] } });
  describe(`vcsim ${model} cassette over msw`, () => {
    runAdapterConformance({
      name: `vmware-vsphere (vcsim ${model} fixture)`,
      mode: 'replay',
      factory: () => {
        if (active !== replay) {
          active = replay;
          server.resetHandlers(...replay.handlers);
        }
        return connect(connectOptions);
      },
      disklessGuest: { name: DISKLESS_VM },
      skip: REPLAY_SKIPS,
    });
    it('made every recorded call, in the recorded order, and nothing else', () => replay.done());
  });
}
