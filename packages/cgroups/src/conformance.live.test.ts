/**
 * Live conformance: the suite against the backend's files under `HVKIT_CGROUPS_ROOT` on this machine, with
 * the reference-client probe of test/probe.ts. Skipped with its reason when the peer's variables are
 * missing; see `LIVE_PEER` in test/replay-options.ts for when that is a failure.
 */

import { liveMode, livePeer, runAdapterConformance } from '@hvkit/conformance';
import { describe, it } from 'vitest';
import { cgroupsProbe } from '../test/probe';
import { LIVE_PEER } from '../test/replay-options';
import { connect } from './connect';

// An undeclared peer never fails the run: it is looked up as if HVKIT_LIVE were `auto` (or `off`).
const peer = livePeer(
  LIVE_PEER.name,
  LIVE_PEER.variables,
  LIVE_PEER.declared ? process.env : { ...process.env, HVKIT_LIVE: liveMode() === 'off' ? 'off' : 'auto' },
);

if (peer.available) {
  const root = peer.env.HVKIT_CGROUPS_ROOT;
  runAdapterConformance({
    name: `cgroups (live, ${root})`,
    mode: 'live',
    factory: () => connect({ root }),
    probe: cgroupsProbe(),
  });
} else {
  describe('cgroups live conformance', () => {
    it.skip(`skipped: ${peer.reason}`, () => {});
  });
}
