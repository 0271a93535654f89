/**
 * Live conformance: the suite against a real server named by `HVKIT_XEN_XAPI_URL` (and `HVKIT_XEN_XAPI_TOKEN` when
 * it needs one), with the reference-client probe of test/probe.ts. Skipped with its reason when the
 * peer's variables are missing; see `LIVE_PEER` in test/replay-options.ts for when that is a failure.
 */

import { liveMode, livePeer, runAdapterConformance } from '@hvkit/conformance';
import { describe, it } from 'vitest';
import { xenXapiProbe } from '../test/probe';
import { LIVE_PEER } from '../test/replay-options';
import { connect } from './connect';

// An undeclared peer never fails the run: it is looked up as if HVKIT_LIVE were `auto` (or `off`).
const peer = livePeer(
  LIVE_PEER.name,
  LIVE_PEER.variables,
  LIVE_PEER.declared ? process.env : { ...process.env, HVKIT_LIVE: liveMode() === 'off' ? 'off' : 'auto' },
);

if (peer.available) {
  const url = peer.env.HVKIT_XEN_XAPI_URL;
  const token = process.env.HVKIT_XEN_XAPI_TOKEN;
  const probe = xenXapiProbe();
  runAdapterConformance({
    name: `xen-xapi (live ${new URL(url).origin})`,
    mode: 'live',
    factory: () => connect({ url, ...(token ? { token } : {}), insecureHttp: url.startsWith('http:') }),
    probe,
  });
} else {
  describe('xen-xapi live conformance', () => {
    it.skip(`skipped: ${peer.reason}`, () => {});
  });
}
