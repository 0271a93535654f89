/**
 * Records the calls of the demo's Xen section (examples/demo: `npm run demo`) against a fresh XAPI
 * simulator with the seed database, over JSON-RPC: the pool master's record, the guests, then the limits
 * and labels of each guest in turn, on one connection, closed at the end. Writes
 * test/fixtures/xapi-sim-demo/, which the demo replays through msw with every interaction used.
 *
 *   node --conditions=@hvkit/source --import tsx packages/xen-xapi/test/record-demo.ts
 *
 * Kept apart from the conformance recordings (test/record.ts) so either can be re-recorded alone; a fresh
 * simulator makes the result identical apart from `recordedAt`.
 */

import { join } from 'node:path';
import {
  createHttpCassette,
  defaultRules,
  fixtureMetadata,
  normalise,
  normaliserId,
  recordingFetch,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import { connect } from '../src/connect';
import { startXapiSimulator } from '../src/simulator';
import { REPLAY_ORIGIN } from './replay-options';

/** The demo's fixture folder under test/fixtures/. */
const DEMO_FIXTURE = 'xapi-sim-demo';

const sim = await startXapiSimulator();
const cassette = createHttpCassette();
let server: { server: string; version: string };
try {
  const adapter = await connect({
    url: sim.url,
    username: sim.username,
    password: sim.password,
    ...sim.connectOptions,
    transport: 'json-rpc',
    fetch: recordingFetch(globalThis.fetch, cassette),
  });
  try {
    await adapter.inventory.host();
    for (const g of await adapter.inventory.listGuests()) {
      await adapter.limits.get(g.id);
      await adapter.labels.get(g.id);
    }
    server = {
      server: `XAPI simulator (@hvkit/xen-xapi/simulator) as ${adapter.server.product}`,
      version: adapter.server.version,
    };
  } finally {
    await adapter.close();
  }
  for (const interaction of cassette.interactions) {
    interaction.request.url = REPLAY_ORIGIN + interaction.request.url.slice(sim.url.length);
  }
  const knownSecrets = [sim.password];
  const rules = defaultRules({ knownSecrets });
  const dir = join(import.meta.dirname, 'fixtures', DEMO_FIXTURE);
  await writeFixture(
    dir,
    {
      metadata: fixtureMetadata({
        recordedFrom: server,
        normalisedWith: normaliserId(rules),
        notes: `The calls of examples/demo's Xen section (host, guests, then limits and labels of each guest) over json-rpc against the XAPI simulator of this package with its seed database (simulator/seed-db.xml), origin replaced by ${REPLAY_ORIGIN}. Re-record with: node --conditions=@hvkit/source --import tsx packages/xen-xapi/test/record-demo.ts`,
      }),
      files: { 'demo-cassette.json': normalise(cassette, rules) },
    },
    { clean: true, knownSecrets },
  );
  console.log(`wrote ${dir} (${cassette.interactions.length} interactions)`);
} finally {
  await sim.close();
}
