/**
 * Replay conformance: the suite against the socket transcripts recorded by test/record.ts from the
 * libvirtd peer (the test driver's node XML, and the QEMU guest), served by `replayDialer` in place of the
 * daemon's Unix socket. No server is needed; every client frame must match the recorded one byte for byte.
 */

import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { runAdapterConformance } from '@hvkit/conformance';
import { readFixture, replayDialer, type SocketTranscript } from '@hvkit/conformance/fixtures';
import { afterAll, describe, it } from 'vitest';
import { fixtureFactory, QEMU_GUEST_TARGET, TEST_DRIVER_TARGET } from '../test/replay-options';

/**
 * Where an abort lands in a recorded volume stream depends on timing (how many stream packets had arrived
 * when the first chunk reached the sink), so that check does not replay byte for byte; the live test runs it.
 */
const REPLAY_ONLY_SKIPS: Record<string, string> = {
  'cancellation.abort-during-backup':
    'an abort in the middle of a volume stream lands at a timing-dependent packet; covered by conformance.live.test.ts',
};

/**
 * Checks newer than the transcripts: replayed, they would dial connections the recording does not have and
 * shift every later one. Recording (test/record.ts) runs them; remove them from here once the transcripts
 * are re-recorded (or move them to the target's skips if they do not replay byte for byte).
 */
const NOT_YET_RECORDED: Record<string, string> = {};

const FIXTURES = join(import.meta.dirname, '..', 'test', 'fixtures');

for (const t of [TEST_DRIVER_TARGET, QEMU_GUEST_TARGET]) {
  const dir = join(FIXTURES, t.folder);
  if (!existsSync(join(dir, 'fixture.json'))) {
    // A missing fixture is a failure, never a quiet skip: the replay tier would otherwise test nothing.
    describe(`kvm-libvirt (${t.folder} fixture)`, () => {
      it('has its recorded fixture', () => {
        throw new Error(
          `${join(dir, 'fixture.json')} is missing: record it with ` +
            'node --conditions=@hvkit/source --import tsx packages/kvm-libvirt/test/record.ts (docs/fixtures.md)',
        );
      });
    });
    continue;
  }
  const fixture = await readFixture(dir);
  const transcript = (await fixture.readJson('transcript.json')) as SocketTranscript;
  // One dialer for the whole run: the suite dials its connections in the recorded order.
  const dialer = replayDialer(transcript);
  runAdapterConformance({
    name: `kvm-libvirt (${t.folder} fixture)`,
    mode: 'replay',
    factory: fixtureFactory(dialer, t.openUri),
    target: t.target,
    ...(t.disklessGuest ? { disklessGuest: t.disklessGuest } : {}),
    skip: {
      ...t.skip,
      ...(t.folder === 'libvirt-qemu-guest' ? { ...REPLAY_ONLY_SKIPS, ...NOT_YET_RECORDED } : {}),
    },
  });
  afterAll(() => {
    if (t.folder === 'libvirt-test-driver') {
      // Every recorded connection was dialled and played to its end, without a mismatch.
      dialer.done();
      return;
    }
    // The QEMU transcript ends with the skipped abort check's connections, which are never dialled; every
    // connection that was dialled must have been played to its end without a mismatch.
    const unfinished = dialer.connections.filter((c) => !c.complete).map((c) => c.index);
    if (dialer.errors.length > 0 || unfinished.length > 0) {
      throw new Error(
        `replay of ${t.folder}: ${dialer.errors[0]?.message ?? ''} unfinished connections: ${unfinished.join(', ')}`,
      );
    }
  });
}
