/** Settings shared by the recorder (test/record.ts) and the replay and live conformance tests. */

/** The fixture folder under test/fixtures/ that the replay test reads and the recorder writes. */
export const FIXTURE = 'stub';

/**
 * The origin written into the recorded cassette in place of the server's (whose port changes every run),
 * so re-recording an unchanged server gives an identical fixture. Replay connects to it; msw answers.
 */
export const REPLAY_ORIGIN = 'http://xen-xapi.replay.invalid';

/**
 * The live peer: the environment variables the live tier needs. Until `declared` is true (set it once
 * scripts/peers/ starts a real server or the package ships a simulator), a missing peer is a skip with
 * its reason even under `HVKIT_LIVE=require`; after that, `HVKIT_LIVE=require` makes it a failure.
 */
export const LIVE_PEER = {
  name: 'xen-xapi',
  variables: ['HVKIT_XEN_XAPI_URL'],
  declared: false,
} as const;

/** Checks skipped in replay and recording, each with its reason (none yet: every capability is false). */
export const REPLAY_SKIPS: Record<string, string> = {};
