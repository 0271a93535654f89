/** Settings shared by the recorder (test/record.ts) and the replay and live conformance tests. */

/** The fixture folder under test/fixtures/ that the replay test reads and the recorder writes. */
export const FIXTURE = 'stub';

/**
 * The live peer: the environment variables the live tier needs (`HVKIT_LVM_TARGET=local` runs it on this
 * machine). Until `declared` is true (set it once scripts/peers/ provides a host with the backend), a
 * missing peer is a skip with its reason even under `HVKIT_LIVE=require`; after that, `HVKIT_LIVE=require`
 * makes it a failure.
 */
export const LIVE_PEER = {
  name: 'lvm',
  variables: ['HVKIT_LVM_TARGET'],
  declared: false,
} as const;

/** Checks skipped in replay and recording, each with its reason (none yet: every capability is false). */
export const REPLAY_SKIPS: Record<string, string> = {};
