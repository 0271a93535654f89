/** Settings shared by the recorder (test/record.ts) and the replay and live conformance tests. */

import type { LimitTestValues } from '@hvkit/conformance';
import type { XenXapiBackupNaming } from '../src/context';

/** The fixture folders under test/fixtures/, one per wire protocol. */
export const FIXTURES = { 'json-rpc': 'xapi-sim-jsonrpc', 'xml-rpc': 'xapi-sim-xmlrpc' } as const;

/**
 * The origin written into the recorded cassettes in place of the simulator's (whose port changes every
 * run), so re-recording gives an identical fixture. Replay connects to it; msw answers.
 */
export const REPLAY_ORIGIN = 'http://xen-xapi.replay.invalid';

/** The credentials the recorder and replay use (the simulator's defaults; test values guarding nothing). */
export const REPLAY_USERNAME = 'root';

/**
 * The live peer: the XAPI simulator started by scripts/peers/xapi-sim.sh. Under `HVKIT_LIVE=require` its
 * variables must be set; otherwise the live test starts a simulator of its own on 127.0.0.1.
 */
export const LIVE_PEER = {
  name: 'xapi-sim',
  variables: ['HVKIT_XAPI_URL', 'HVKIT_XAPI_USERNAME', 'HVKIT_XAPI_PASSWORD'],
  declared: true,
} as const;

/**
 * Limit values for the round trips. `memory.maxBytes` is XAPI's `memory_dynamic_max`, which on a running VM
 * must stay within its static maximum: the suite's default (the guest's memory + 512 MiB) would exceed it.
 */
export const LIMIT_VALUES: LimitTestValues = { 'memory.maxBytes': 3 * 1024 * 1024 * 1024 };

/**
 * Checks skipped in replay and recording, each with its reason: the `event.from` loop is a long poll racing
 * the aborts of the checks, so which requests go out depends on timing and cannot replay exactly. The live
 * tests (src/conformance.live.test.ts, src/service.live.test.ts) run the events checks against the simulator.
 */
export const REPLAY_SKIPS: Record<string, string> = {
  events:
    'the event.from loop is a long poll racing the aborts of the checks, so its requests are timing-dependent; checked live in src/conformance.live.test.ts and src/service.live.test.ts',
};

/**
 * Deterministic backup names, clock and lease owner for the recorder and the replay (one counter per
 * recording or replay run, so names never repeat across checks): a recorded run then replays byte for byte.
 */
export function fixtureNaming(): XenXapiBackupNaming {
  let n = 0;
  return {
    uniqueId: () => `rec${++n}`,
    now: () => new Date('2000-01-01T00:00:00Z'),
    leaseOwner: () => 'hvkit-fixture:1',
  };
}

/** The simulator's clock while recording: one second per reading from 2026-01-01, so recordings repeat. */
export function steppingClock(): () => Date {
  let t = Date.UTC(2026, 0, 1);
  return () => {
    t += 1000;
    return new Date(t);
  };
}
