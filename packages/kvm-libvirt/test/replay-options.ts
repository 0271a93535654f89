/** Settings shared by the recorder (test/record.ts) and the replay conformance test. */

import type { Dialer } from '@hvkit/core';
import { connect, type KvmLibvirtAdapter } from '../src/connect';

/** The two recorded targets: fixture folder, URI opened, conformance target and skipped checks. */
export interface LibvirtFixtureTarget {
  folder: 'libvirt-test-driver' | 'libvirt-qemu-guest';
  /** URI sent in CONNECT_OPEN. */
  openUri: string;
  /** Guest the suite modifies. */
  target: { name: string };
  /** A guest without disks, for `backups.diskless`. */
  disklessGuest?: { name: string };
  skip: Record<string, string>;
}

const NIC_RULE =
  'libvirt refuses a NIC peak or burst without an average in the same direction; the round trip sets it alone';
/** Why the single-field swap round trip is skipped where libvirt uses cgroup v1 semantics. */
export const SWAP_RULE =
  'with cgroup v1 semantics libvirt limits memory + swap (swap_hard_limit ≥ hard_limit), so a swap limit needs a memory hard limit; the round trip sets swap alone';

/**
 * Skips shared by both targets (libvirt rules the suite's single-field round trips cannot satisfy). The
 * `limits.null.*` checks first set the field's test value alone, the same single-field change.
 */
export const NIC_SKIPS: Record<string, string> = Object.fromEntries(
  ['inboundPeakBytesPerSec', 'inboundBurstBytes', 'outboundPeakBytesPerSec', 'outboundBurstBytes'].flatMap(
    (f) => [
      [`limits.round-trip.nics.${f}`, NIC_RULE],
      [`limits.null.nics.${f}`, NIC_RULE],
    ],
  ),
);

const TEST_DRIVER_DISK_RULE =
  "libvirt 9.0's test driver rejects every block IO rate ('cannot be set higher than read_bytes_sec_max' with the maximum 0; virsh blkdeviotune fails the same way)";

/** Why NIC limits cannot be set on the peer's QEMU guest. */
export const QEMU_NIC_RULE =
  "the peer host's kernel lacks the tc modules libvirt uses for <bandwidth> (sfq qdisc, police action): libvirt fails 'Specified qdisc kind is unknown'; peak/burst alone are also refused by libvirt's rules";

/**
 * The URI the replay opens for the test driver: the peer's node XML under a stand-in path, so a fixture does
 * not depend on where the repository was checked out. The recorder opens the real file
 * (`HVKIT_LIBVIRT_TEST_NODE_XML`) and writes this URI into the recorded CONNECT_OPEN call.
 */
export const TEST_NODE_REPLAY_URI = 'test:///hvkit.invalid/test-node.xml';

/**
 * Where an abort lands in a recorded volume stream depends on timing (how many stream packets had arrived
 * when the first chunk reached the sink), so that check neither records nor replays the same way twice; the
 * live test (conformance.live.test.ts) runs it.
 */
export const ABORT_TIMING_RULE =
  'an abort in the middle of a volume stream lands at a timing-dependent packet; covered by conformance.live.test.ts';

/** The test driver with the peer's node XML (private state per connection). */
export const TEST_DRIVER_TARGET: LibvirtFixtureTarget = {
  folder: 'libvirt-test-driver',
  openUri: TEST_NODE_REPLAY_URI,
  target: { name: 'hvkit-test-0004' },
  skip: {
    'limits.round-trip.disks': TEST_DRIVER_DISK_RULE,
    'limits.null.disks': TEST_DRIVER_DISK_RULE,
    'limits.round-trip.memory.swapMaxBytes': SWAP_RULE,
    'limits.null.memory.swapMaxBytes': SWAP_RULE,
    ...NIC_SKIPS,
  },
};

/** The peer's QEMU guest. */
export const QEMU_GUEST_TARGET: LibvirtFixtureTarget = {
  folder: 'libvirt-qemu-guest',
  openUri: 'qemu:///system',
  target: { name: 'hvkit-guest1' },
  disklessGuest: { name: 'hvkit-guest2' },
  skip: {
    'limits.round-trip.nics': QEMU_NIC_RULE,
    'limits.null.nics': QEMU_NIC_RULE,
    'limits.round-trip.memory.swapMaxBytes': SWAP_RULE,
    'limits.null.memory.swapMaxBytes': SWAP_RULE,
    'cancellation.abort-during-backup': ABORT_TIMING_RULE,
  },
};

/**
 * A factory for the suite: every adapter it makes dials through `dialer` with keepalive off and
 * deterministic backup names, clock and lease owner (one counter for the whole run, so names never repeat
 * across tests), so a recorded run replays byte for byte. cgroup v1 is pinned (the recording host's `cpu` controller is on v1).
 */
export function fixtureFactory(dialer: Dialer, openUri: string): () => Promise<KvmLibvirtAdapter> {
  let n = 0;
  return () =>
    connect({
      dialer,
      openUri,
      keepalive: false,
      cgroupVersion: 1,
      naming: {
        uniqueId: () => `rec${++n}`,
        now: () => new Date('2000-01-01T00:00:00Z'),
        // The lease's owner goes into DOMAIN_SET_METADATA frames: not this host and pid.
        leaseOwner: () => 'hvkit-fixture:1',
      },
    });
}
