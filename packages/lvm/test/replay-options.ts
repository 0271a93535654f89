/** Settings shared by the recorder (test/record.ts) and the replay and live conformance tests. */

import type { LvmBackupNaming } from '../src/context';

/** The fixture folder under test/fixtures/ that the replay test reads and the recorder writes. */
export const FIXTURE = 'lab-vm';

/** The volume group the recorder makes in the lab VM (a fixed name, so the transcript replays). */
export const FIXTURE_VG = 'hvkit-test-fixture';

/** The guest the suite runs against: one 256 KiB thin volume (extents of 256 KiB) of {@link FIXTURE_VG} (thin, so the suite's incremental checks run). */
export const FIXTURE_TARGET = `${FIXTURE_VG}/guest1`;

/**
 * The live peer: the lab VM (scripts/peers/lab-vm.sh), reached over SSH. Declared: CI's .peers/env carries its
 * `HVKIT_LAB_*` variables, so under `HVKIT_LIVE=require` a missing lab VM fails the run instead of skipping.
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

/** Checks skipped in replay and recording, each with its reason (none: every check the suite runs in replay is recorded). */
export const REPLAY_SKIPS: Record<string, string> = {};

/**
 * Deterministic artifact ids, snapshot names, clock and lease owner for the recorder and the replay (one
 * counter per recording or replay run, so names never repeat across checks): a recorded run then replays
 * command for command. The lease is renewed only every hour, so no renewal falls into a run.
 */
export function fixtureNaming(): LvmBackupNaming {
  let n = 0;
  return {
    uniqueId: () => `rec${++n}`,
    now: () => new Date('2000-01-01T00:00:00Z'),
    leaseOwner: () => 'hvkit-fixture:1',
    leaseRenewMs: 3_600_000,
    leaseTtlMs: 7_200_000,
  };
}
