/** Settings shared by the recorder (test/record.ts) and the replay and live conformance tests. */

const MiB = 1024 * 1024;

/** The fixture folders under test/fixtures/: this machine's hybrid tree, and the lab VM's cgroup v2 tree. */
export const FIXTURES = { v1: 'hybrid-local', v2: 'v2-lab-vm' } as const;

/** The scratch group's name in the fixtures (the recorder's random `hvkit-test-<hex>` is renamed to it). */
export const FIXTURE_GROUP = 'hvkit-test-fixture';

/**
 * Limit values for the suite: a scratch group's guest memory is the host's, so the default memory values
 * (guest memory + 512 MiB, 1 GiB) would exceed a small host's memory; these fit a 1 GiB lab VM.
 */
export const LIMIT_VALUES = {
  'memory.maxBytes': 512 * MiB,
  'memory.softBytes': 256 * MiB,
  'memory.minBytes': 64 * MiB,
  'memory.swapMaxBytes': 128 * MiB,
} as const;

/**
 * The lab VM peer (cgroup v2 over SSH): the variables scripts/peers/lab-vm.sh writes. A missing peer is a
 * skip with its reason, and a failure under `HVKIT_LIVE=require`.
 */
export const LIVE_PEER = {
  name: 'lab-vm',
  variables: [
    'HVKIT_LAB_SSH_HOST',
    'HVKIT_LAB_SSH_PORT',
    'HVKIT_LAB_SSH_USER',
    'HVKIT_LAB_SSH_KEY',
    'HVKIT_LAB_SSH_KNOWN_HOSTS',
  ],
  declared: true,
} as const;

/** Checks skipped in replay and recording, each with its reason. */
export const REPLAY_SKIPS: Record<string, string> = {};
