/**
 * Records the `lab-vm-scenarios` fixture in the lab VM: makes the volume group of test/scenarios.ts, runs its
 * scenarios (inventory and snapshots; a COW snapshot backup of a linear volume; a snapshot that fills up; a
 * thin snapshot backup and an incremental one) over SSH with every adapter command going through
 * `recordingExec`, normalises the transcript, writes test/fixtures/lab-vm-scenarios/ and removes the group.
 * The setup, the overwrite that fills the snapshot and the rewrite between the thin backups run on a
 * connection of their own and are not recorded: replay sees only the adapter's commands.
 *
 *   set -a; . /work/lab/env; set +a   # or .peers/env with the lab-vm peer
 *   node --conditions=@hvkit/source --import tsx packages/lvm/test/record-scenarios.ts
 *
 * Each scenario's outcome is checked before anything is written (a recording in which the snapshot did not
 * fill, say, is refused), and running it twice gives the same transcript (only `recordedAt` differs).
 */

import { join } from 'node:path';
import {
  createExecTranscript,
  fixtureMetadata,
  normalise,
  normaliserId,
  recordingExec,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import type { ExecTransport } from '@hvkit/core';
import { connect } from '../src/connect';
import { connectLab, lab, removeTestVg, sh } from './lab';
import { lvmRules } from './normalise-lvm';
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
  // The lab VM's forwarded port changes with every boot; the fixture names the peer instead.
  transcript.target = 'ssh://root@lab-vm';
  const rules = lvmRules(SCENARIO_VG);
  const dir = join(import.meta.dirname, 'fixtures', SCENARIO_FIXTURE);
  const hello = await connect({ ssh });
  await hello.close();
  await writeFixture(
    dir,
    {
      metadata: fixtureMetadata({
        recordedFrom: { server: hello.server.product, version: hello.server.version },
        normalisedWith: normaliserId(rules),
        notes:
          'LVM scenarios over SSH in the lab VM (scripts/peers/lab-vm.sh), in hvkit-test-scenarios on a loop file: inventory with a user COW snapshot and a user thin snapshot; a COW snapshot backup of a linear volume; a snapshot whose copy-on-write area fills (snapshot-invalid); a thin snapshot backup and an incremental. See test/scenarios.ts. Re-record with: node --conditions=@hvkit/source --import tsx packages/lvm/test/record-scenarios.ts',
      }),
      files: { 'transcript.json': normalise(transcript, rules) },
    },
    { clean: true },
  );
  console.log(`wrote ${dir} (${transcript.commands.length} commands)`);
} finally {
  await removeTestVg(ssh, SCENARIO_VG);
  await ssh.close();
}
