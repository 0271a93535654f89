/**
 * Live conformance: the suite against the backend on the host named by `HVKIT_LVM_TARGET` (`local`: this
 * machine), with the reference-client probe of test/probe.ts. Skipped with its reason when the peer's
 * variables are missing; see `LIVE_PEER` in test/replay-options.ts for when that is a failure.
 */

import { liveMode, livePeer, runAdapterConformance } from '@hvkit/conformance';
import { createLocalExec } from '@hvkit/core';
import { describe, it } from 'vitest';
import { lvmProbe } from '../test/probe';
import { LIVE_PEER } from '../test/replay-options';
import { connect } from './connect';

// An undeclared peer never fails the run: it is looked up as if HVKIT_LIVE were `auto` (or `off`).
const peer = livePeer(
  LIVE_PEER.name,
  LIVE_PEER.variables,
  LIVE_PEER.declared ? process.env : { ...process.env, HVKIT_LIVE: liveMode() === 'off' ? 'off' : 'auto' },
);

if (peer.available && peer.env.HVKIT_LVM_TARGET !== 'local') {
  throw new Error(
    `HVKIT_LVM_TARGET=${peer.env.HVKIT_LVM_TARGET}: only 'local' is wired up yet (add an SSH target here)`,
  );
}

if (peer.available) {
  runAdapterConformance({
    name: 'lvm (live, local)',
    mode: 'live',
    factory: () => connect({ exec: createLocalExec() }),
    probe: lvmProbe(),
  });
} else {
  describe('lvm live conformance', () => {
    it.skip(`skipped: ${peer.reason}`, () => {});
  });
}
