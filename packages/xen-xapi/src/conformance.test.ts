/**
 * Replay conformance: the suite against the cassettes test/record.ts recorded from the XAPI simulator, one
 * per wire protocol (JSON-RPC and XML-RPC), served by msw (`createReplayServer`, unhandled requests are
 * errors) to the adapter's fetch. Every recorded interaction must be used.
 */

import { join } from 'node:path';
import { runAdapterConformance } from '@hvkit/conformance';
import {
  type CassetteHandlers,
  cassetteHandlers,
  type HttpCassette,
  readFixture,
} from '@hvkit/conformance/fixtures';
import { onUnhandledRequest } from 'msw';
import { setupServer } from 'msw/node';
import { afterAll, describe, it } from 'vitest';
import {
  FIXTURES,
  fixtureNaming,
  LIMIT_VALUES,
  REPLAY_ORIGIN,
  REPLAY_SKIPS,
  REPLAY_USERNAME,
} from '../test/replay-options';
import { connect } from './connect';
import { XAPI_SIMULATOR_DEFAULT_PASSWORD } from './simulator';

// One msw server for the file, listening from the start: the suite calls its factory once while it
// collects the checks. Each transport's factory puts that transport's cassette in place (both answer at
// the same recorded origin), and every check starts with a factory call.
const server = setupServer();
let active: CassetteHandlers | undefined;
server.listen({
  onUnhandledRequest(request) {
    const why = active?.unhandled.at(-1);
    if (why && why.url === request.url) console.error(why.explanation);
    return onUnhandledRequest(request, 'error');
  },
});
afterAll(() => server.close());

for (const transport of ['json-rpc', 'xml-rpc'] as const) {
  const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', FIXTURES[transport]));
  const replay = cassetteHandlers((await fixture.readJson('cassette.json')) as HttpCassette);
  const naming = fixtureNaming();

  runAdapterConformance({
    name: `xen-xapi (${FIXTURES[transport]} fixture)`,
    mode: 'replay',
    // The global fetch, looked up at each call: msw intercepts it.
    factory: () => {
      if (active !== replay) {
        active = replay;
        server.resetHandlers(...replay.handlers);
      }
      return connect({
        url: REPLAY_ORIGIN,
        username: REPLAY_USERNAME,
        password: XAPI_SIMULATOR_DEFAULT_PASSWORD,
        insecureHttp: true,
        transport,
        fetch: (input, init) => globalThis.fetch(input, init),
        naming,
      });
    },
    skip: REPLAY_SKIPS,
    limitValues: LIMIT_VALUES,
  });

  describe(`xen-xapi replay (${transport})`, () => {
    it('used every recorded interaction', () => {
      replay.done();
    });
  });
}
