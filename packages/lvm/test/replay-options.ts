/** Settings shared by the recorder (test/record.ts) and the replay and live conformance tests. */

/** The fixture folder under test/fixtures/ that the replay test reads and the recorder writes. */
export const FIXTURE = 'lab-vm';

/** The volume group the recorder makes in the lab VM (a fixed name, so the transcript replays). */
export const FIXTURE_VG = 'hvkit-test-fixture';

/** The guest the suite runs against: one 4 MiB thin volume of {@link FIXTURE_VG} (thin, so the suite's incremental checks run). */
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

const NOT_REPLAYABLE =
  'live tier only: a backup names its snapshots after its artifact id (time and random), so its commands differ on every run and cannot replay; src/capabilities/backups.live.test.ts and the live conformance cover it';

/** Checks skipped in replay and recording, each with its reason. */
export const REPLAY_SKIPS: Record<string, string> = {
  'backups.full': NOT_REPLAYABLE,
  'backups.incremental': NOT_REPLAYABLE,
  'backups.sink-failure': NOT_REPLAYABLE,
  'backups.artifact.self-describing': NOT_REPLAYABLE,
  'backups.progress': NOT_REPLAYABLE,
  'backups.chains': NOT_REPLAYABLE,
  'backups.restore.corrupt': NOT_REPLAYABLE,
  'backups.restore.abort': NOT_REPLAYABLE,
  'cancellation.abort-during-backup': NOT_REPLAYABLE,
};
