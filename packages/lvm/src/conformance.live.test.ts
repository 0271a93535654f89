/**
 * Live conformance: the suite over SSH against a volume group of its own in the lab VM (peer `lab-vm`,
 * scripts/peers/lab-vm.sh), with the reference-client probe of test/probe.ts (LVM's own tools over the same SSH
 * connection), so the inventory, snapshot, checkpoint and restore checks are verified on the backend. Skipped with its reason when
 * the peer's variables are missing, and a failure under `HVKIT_LIVE=require` (the peer is declared).
 */

import { livePeer, runAdapterConformance } from '@hvkit/conformance';
import type { SshClient } from '@hvkit/ssh';
import { afterAll, describe, it } from 'vitest';
import { connectLab, createTestVg, sh, type TestVg } from '../test/lab';
import { lvmProbe } from '../test/probe';
import { LIVE_PEER } from '../test/replay-options';
import { connect } from './connect';

// The peer is declared (LIVE_PEER.declared): under HVKIT_LIVE=require a missing lab VM fails the run.
const peer = livePeer(LIVE_PEER.name, LIVE_PEER.variables);

if (peer.available) {
  let ssh: SshClient | undefined;
  let vg: TestVg | undefined;
  const setup = (async () => {
    ssh = await connectLab();
    vg = await createTestVg(ssh, 128);
    await sh(
      ssh,
      `lvcreate -q -y -L 16M -T ${vg.name}/pool >/dev/null 2>&1; lvcreate -q -y -V 4M -T ${vg.name}/pool -n guest1 >/dev/null 2>&1`,
    );
    return { ssh, vgName: vg.name, target: `${vg.name}/guest1` };
  })();
  setup.catch(() => {});
  const { target, vgName } = await setup;
  afterAll(async () => {
    await vg?.remove();
    await ssh?.close();
  });
  runAdapterConformance({
    name: 'lvm (live, lab-vm)',
    mode: 'live',
    target,
    // The suite sees only its own volume: the lab VM is shared, and other tests' groups come and go between a
    // listGuests and the lookups that follow it. A guest mapping of one guest named like the volume keeps the
    // default ids (`vg/lv`).
    factory: async () => connect({ ssh: (await setup).ssh, guests: { [target]: [target] } }),
    probe: async () => lvmProbe((await setup).ssh, vgName),
    // A disk's device is its volume `vg/lv`: a restore as new makes a new volume, so the suite pairs the
    // restored guest's disks with the original's by position.
    restoredDisks: 'order',
  });
} else {
  describe('lvm live conformance', () => {
    it.skip(`skipped: ${peer.reason}`, () => {});
  });
}
