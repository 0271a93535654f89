/**
 * Records the replay fixture of @hvkit/xen-xapi: runs the conformance suite live, in the order replay runs
 * it, with every request of the adapter going through `recordingFetch`, normalises the cassette and
 * writes test/fixtures/<FIXTURE>/.
 *
 *   node --conditions=@hvkit/source --import tsx packages/xen-xapi/test/record.ts
 *
 * Against the server named by `HVKIT_XEN_XAPI_URL` (and `HVKIT_XEN_XAPI_TOKEN`) when set, else against the stub server
 * of test/stub-peer.ts. The probe is left out on purpose: the recorded calls are then exactly the calls
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
import { FIXTURE, REPLAY_ORIGIN, REPLAY_SKIPS } from './replay-options';
import { startStubPeer } from './stub-peer';

const given = process.env.HVKIT_XEN_XAPI_URL;
const token = process.env.HVKIT_XEN_XAPI_TOKEN;
const stub = given ? undefined : await startStubPeer();
const url = given ?? (stub?.url as string);
const cassette = createHttpCassette();
try {
  const report = await runConformanceReport({
    name: 'xen-xapi (recording)',
    mode: 'live',
    factory: () =>
      connect({
        url,
        ...(token ? { token } : {}),
        insecureHttp: url.startsWith('http:'),
        fetch: recordingFetch(globalThis.fetch, cassette),
      }),
    probe: {},
    skip: REPLAY_SKIPS,
  });
  console.log(formatConformanceReport(report));
  if (report.failed > 0) throw new Error(`${report.failed} checks failed while recording; nothing written`);
  const origin = new URL(url).origin;
  for (const interaction of cassette.interactions) {
    interaction.request.url = REPLAY_ORIGIN + interaction.request.url.slice(origin.length);
  }
  const knownSecrets = token ? [token] : [];
  const rules = defaultRules({ knownSecrets });
  const hello = await connect({ url, ...(token ? { token } : {}), insecureHttp: url.startsWith('http:') });
  const server = { server: hello.server.product, version: hello.server.version };
  await hello.close();
  const dir = join(import.meta.dirname, 'fixtures', FIXTURE);
  await writeFixture(
    dir,
    {
      metadata: fixtureMetadata({
        recordedFrom: server,
        normalisedWith: normaliserId(rules),
        notes: `The conformance suite run live against ${given ? 'a xen-xapi server' : 'the stub server of test/stub-peer.ts'}, origin replaced by ${REPLAY_ORIGIN}. Re-record with: node --conditions=@hvkit/source --import tsx packages/xen-xapi/test/record.ts`,
      }),
      files: { 'cassette.json': normalise(cassette, rules) },
    },
    { clean: true, knownSecrets },
  );
  console.log(`wrote ${dir} (${cassette.interactions.length} interactions)`);
} finally {
  await stub?.close();
}
