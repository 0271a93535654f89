/**
 * Records the replay fixture of @hvkit/lvm in the lab VM: makes the volume group `hvkit-test-fixture` on a
 * loop file with one 256 KiB thin volume `guest1` (pool `pool`) of known content, runs the conformance suite in replay mode (the
 * checks replay runs) against it over SSH with every command going through `recordingExec`, normalises the
 * transcript, writes test/fixtures/lab-vm/ and removes the group.
 *
 *   set -a; . /work/lab/env; set +a   # or .peers/env with the lab-vm peer
 *   node --conditions=@hvkit/source --import tsx packages/lvm/test/record.ts
 *
 * The probe is left out on purpose: the recorded calls are then exactly the calls replay makes (see
 * docs/adding-an-adapter.md, "Recording"). The scenarios fixture (`lab-vm-scenarios`: linear, snapshot, a
 * filling snapshot, thin pool and thin snapshot) is recorded by test/record-scenarios.ts.
 */

import { formatConformanceReport, runConformanceReport } from '@hvkit/conformance';
import { createExecTranscript, recordingExec } from '@hvkit/conformance/fixtures';
import { connect } from '../src/connect';
import { connectLab, lab, removeTestVg, sh } from './lab';
import { onlyVolumeGroupExec, writeLabFixture } from './recording';
import { FIXTURE, FIXTURE_TARGET, FIXTURE_VG, fixtureNaming, REPLAY_SKIPS } from './replay-options';

if (!lab.available) throw new Error(lab.reason);
const ssh = await connectLab();
try {
  await removeTestVg(ssh, FIXTURE_VG);
  await sh(
    ssh,
    `modprobe dm-snapshot; modprobe dm-thin-pool; modprobe loop
mkdir -p /root/${FIXTURE_VG}; truncate -s 128M /root/${FIXTURE_VG}/pv.img
loop=$(losetup -f --show /root/${FIXTURE_VG}/pv.img)
pvcreate -q "$loop" >/dev/null; vgcreate -q -s 256k ${FIXTURE_VG} "$loop" >/dev/null
lvcreate -q -y -L 16M -T ${FIXTURE_VG}/pool >/dev/null 2>&1
lvcreate -q -y -V 256k -T ${FIXTURE_VG}/pool -n guest1 >/dev/null 2>&1
head -c 262144 /dev/zero | tr '\\0' 'h' > /dev/${FIXTURE_VG}/guest1; sync`,
  );
  const transcript = createExecTranscript();
  const exec = recordingExec(onlyVolumeGroupExec(ssh.exec, FIXTURE_VG), transcript);
  const naming = fixtureNaming();
  const report = await runConformanceReport({
    name: 'lvm (recording)',
    mode: 'replay',
    factory: () => connect({ exec, naming }),
    target: FIXTURE_TARGET,
    skip: REPLAY_SKIPS,
  });
  console.log(formatConformanceReport(report));
  if (report.failed > 0) throw new Error(`${report.failed} checks failed while recording; nothing written`);
  await writeLabFixture(
    ssh,
    FIXTURE,
    FIXTURE_VG,
    transcript,
    'The conformance suite over SSH in the lab VM (scripts/peers/lab-vm.sh), against hvkit-test-fixture/guest1 on a loop file. Re-record with: node --conditions=@hvkit/source --import tsx packages/lvm/test/record.ts',
  );
} finally {
  await removeTestVg(ssh, FIXTURE_VG);
  await ssh.close();
}
