import { createExecTranscript, recordingExec } from '@hvkit/conformance/fixtures';
import type { ExecTransport } from '@hvkit/core';
import { connect } from '../src/connect';
import { connectLab, lab, removeTestVg, sh } from './lab';
import { writeLabFixture } from './recording';
import { fixtureNaming } from './replay-options';
import {
  FILLING_OVERWRITE,
  FILLING_SNAPSHOT_SIZE,
  fillingScenario,
  inventoryScenario,
  isFillingSnapshot,
  linearScenario,
  SCENARIO_FIXTURE,
  SCENARIO_SETUP,
  SCENARIO_VG,
  THIN_REWRITE,
  thinScenario,
} from './scenarios';

if (!lab.available) throw new Error(lab.reason);
const ssh = await connectLab();
try {
  await removeTestVg(ssh, SCENARIO_VG);
  await sh(ssh, SCENARIO_SETUP);
  const transcript = createExecTranscript();
  const recording = recordingExec(ssh.exec, transcript);
  let overwrites = 0;
  // After the backup's `lvcreate -s` of filling1 returns, its origin is overwritten whole (unrecorded), so the
  // small copy-on-write area is full before the copy starts.
  const exec: ExecTransport = {
    target: recording.target,
    spawn: (request) => recording.spawn(request),
    async exec(request) {
      const result = await recording.exec(request);
      if (isFillingSnapshot(request.argv) && result.exitCode === 0) {
        overwrites++;
        await sh(ssh, FILLING_OVERWRITE);
      }
      return result;
    },
  };
  const naming = fixtureNaming();
  const hv = await connect({ exec, naming });
  const small = await connect({ exec, naming, snapshotSize: FILLING_SNAPSHOT_SIZE });
  try {
    const inventory = await inventoryScenario(hv);
    console.log(`inventory: ${inventory.guests.map((g) => g.id).join(', ')}`);
    const linear = await linearScenario(hv);
    console.log(`linear: ${linear.artifact.method} ${linear.artifact.id}`);
    const filling = await fillingScenario(small);
    if (overwrites !== 1) throw new Error(`the filling snapshot was made ${overwrites} times, not once`);
    const reason = (filling.error as { details?: { reason?: string } } | undefined)?.details?.reason;
    if (reason !== 'snapshot-invalid')
      throw new Error(`the filling backup did not fail with snapshot-invalid: ${String(filling.error)}`);
    console.log(`filling: ${(filling.error as Error).message}`);
    const thin = await thinScenario(hv, () => sh(ssh, THIN_REWRITE).then(() => undefined));
    console.log(
      `thin: ${thin.full.method} ${thin.full.id}, ${thin.incremental.method} ${thin.incremental.id}`,
    );
  } finally {
    await small.close();
    await hv.close();
  }
  await writeLabFixture(
    ssh,
    SCENARIO_FIXTURE,
    SCENARIO_VG,
    transcript,
    'LVM scenarios over SSH in the lab VM (scripts/peers/lab-vm.sh), in hvkit-test-scenarios on a loop file: inventory with a user COW snapshot and a user thin snapshot; a COW snapshot backup of a linear volume; a snapshot whose copy-on-write area fills (snapshot-invalid); a thin snapshot backup and an incremental. See test/scenarios.ts. Re-record with: node --conditions=@hvkit/source --import tsx packages/lvm/test/record-scenarios.ts',
  );
} finally {
  await removeTestVg(ssh, SCENARIO_VG);
  await ssh.close();
}
