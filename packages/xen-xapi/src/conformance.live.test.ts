/**
 * Live conformance against the XAPI simulator, over JSON-RPC and over XML-RPC, with the `xen-api` probe of
 * test/probe.ts. The peer is the simulator scripts/peers/xapi-sim.sh starts (`HVKIT_XAPI_*`); under
 * `HVKIT_LIVE=require` it must be running. Otherwise (`auto`) the test starts a simulator of its own on
 * 127.0.0.1 with the seed database; `HVKIT_LIVE=off` skips it.
 */

import { liveMode, livePeer, runAdapterConformance } from '@hvkit/conformance';
import { afterAll, describe, it } from 'vitest';
import { xenXapiProbe } from '../test/probe';
import { LIMIT_VALUES, LIVE_PEER } from '../test/replay-options';
import { connect } from './connect';
import { startXapiSimulator } from './simulator';

const mode = liveMode();
let target: { url: string; username: string; password: string } | undefined;
if (mode === 'require' || process.env.HVKIT_XAPI_URL) {
  const peer = livePeer(LIVE_PEER.name, LIVE_PEER.variables);
  if (peer.available)
    target = {
      url: peer.env.HVKIT_XAPI_URL,
      username: peer.env.HVKIT_XAPI_USERNAME,
      password: peer.env.HVKIT_XAPI_PASSWORD,
    };
} else if (mode !== 'off') {
  const sim = await startXapiSimulator();
  afterAll(() => sim.close());
  target = { url: sim.url, username: sim.username, password: sim.password };
}

if (target) {
  const { url, username, password } = target;
  const probe = await xenXapiProbe(url, username, password);
  afterAll(() => probe.close());
  for (const transport of ['json-rpc', 'xml-rpc'] as const) {
    runAdapterConformance({
      name: `xen-xapi (live ${new URL(url).origin}, ${transport})`,
      mode: 'live',
      factory: () => connect({ url, username, password, insecureHttp: url.startsWith('http:'), transport }),
      probe,
      limitValues: LIMIT_VALUES,
    });
  }
} else {
  describe('xen-xapi live conformance', () => {
    it.skip('skipped: HVKIT_LIVE=off, live xapi-sim tests disabled', () => {});
  });
}
