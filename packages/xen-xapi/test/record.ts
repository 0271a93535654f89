/**
 * Records the replay fixtures of @hvkit/xen-xapi, one per wire protocol: runs the conformance suite in
 * replay mode (the checks replay runs, in its order) against a fresh XAPI simulator (seed database, stepping
 * clock), with every request going through `recordingFetch`, normalises each cassette and writes
 * test/fixtures/<FIXTURES[transport]>/. Live-only checks (service, events) never dial a connection the
 * replay does not have.
 *
 *   node --conditions=@hvkit/source --import tsx packages/xen-xapi/test/record.ts
 *
 * A fresh simulator per recording makes the result deterministic: re-recording gives identical fixtures
 * apart from `recordedAt`. The probe is left out on purpose: the recorded calls are then exactly the calls
 * replay makes (see docs/adding-an-adapter.md, "Recording").
 */

import { join } from 'node:path';
import { formatConformanceReport, runConformanceReport } from '@hvkit/conformance';
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
import {
  FIXTURES,
  fixtureNaming,
  LIMIT_VALUES,
  REPLAY_ORIGIN,
  REPLAY_SKIPS,
  steppingClock,
} from './replay-options';

for (const transport of ['json-rpc', 'xml-rpc'] as const) {
  const sim = await startXapiSimulator({ clock: steppingClock() });
  const cassette = createHttpCassette();
  try {
    const options = {
      url: sim.url,
      username: sim.username,
      password: sim.password,
      ...sim.connectOptions,
      transport,
    };
    const naming = fixtureNaming();
    const report = await runConformanceReport({
      name: `xen-xapi (recording, ${transport})`,
      // The checks replay runs (no wall-clock comparisons: the simulator's clock is a stepping one here).
      mode: 'replay',
      factory: () => connect({ ...options, fetch: recordingFetch(globalThis.fetch, cassette), naming }),
      probe: {},
      skip: REPLAY_SKIPS,
      limitValues: LIMIT_VALUES,
    });
    console.log(formatConformanceReport(report));
    if (report.failed > 0) throw new Error(`${report.failed} checks failed while recording; nothing written`);
    for (const interaction of cassette.interactions) {
      interaction.request.url = REPLAY_ORIGIN + interaction.request.url.slice(sim.url.length);
    }
    const knownSecrets = [sim.password];
    const rules = defaultRules({ knownSecrets });
    const hello = await connect(options);
    const server = {
      server: `XAPI simulator (@hvkit/xen-xapi/simulator) as ${hello.server.product}`,
      version: hello.server.version,
    };
    await hello.close();
    const dir = join(import.meta.dirname, 'fixtures', FIXTURES[transport]);
    await writeFixture(
      dir,
      {
        metadata: fixtureMetadata({
          recordedFrom: server,
          normalisedWith: normaliserId(rules),
          notes: `The conformance suite run live over ${transport} against the XAPI simulator of this package with its seed database (simulator/seed-db.xml), origin replaced by ${REPLAY_ORIGIN}. Re-record with: node --conditions=@hvkit/source --import tsx packages/xen-xapi/test/record.ts`,
        }),
        files: { 'cassette.json': normalise(cassette, rules) },
      },
      { clean: true, knownSecrets },
    );
    console.log(`wrote ${dir} (${cassette.interactions.length} interactions)`);
  } finally {
    await sim.close();
  }
}
