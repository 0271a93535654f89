/**
 * Live conformance against vcsim (peer `vcsim`): a private vCenter-model and a private ESX-model vcsim
 * (plain http, started per file, so the suite may change them), plus a read-only run against the shared
 * https vCenter peer with its CA. Checks of one capability live beside it (capabilities/*.live.test.ts).
 */

import { readFileSync } from 'node:fs';
import { runAdapterConformance } from '@hvkit/conformance';
import { afterAll, describe } from 'vitest';
import { addDisklessVm, DISKLESS_VM, startPreparedVcsim, type VcsimProbe, vcsimProbe } from '../test/probe';
import { VCSIM_SKIPS } from '../test/replay-options';
import type { VcsimInstance } from '../test/vcsim-instance';
import { env, liveTitle, vcsim } from '../test/vcsim-peer';
import { connect } from './connect';

const cleanups: (() => Promise<void>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

function privateRun(model: 'vpx' | 'esx'): void {
  let started: Promise<{ sim: VcsimInstance; probe: VcsimProbe }> | undefined;
  const instance = () => {
    started ??= startPreparedVcsim(env().HVKIT_VCSIM_BIN, model).then(async (sim) => {
      await addDisklessVm(sim);
      const probe = vcsimProbe({
        url: sim.url,
        insecureHttp: true,
        username: sim.username,
        password: sim.password,
      });
      cleanups.push(async () => {
        await probe.close();
        await sim.stop();
      });
      return { sim, probe };
    });
    return started;
  };
  runAdapterConformance({
    name: `vmware-vsphere (private vcsim ${model})`,
    mode: 'live',
    factory: async () => {
      const { sim } = await instance();
      return connect({ url: sim.url, insecureHttp: true, username: sim.username, password: sim.password });
    },
    probe: async () => (await instance()).probe,
    disklessGuest: { name: DISKLESS_VM },
    skip: VCSIM_SKIPS,
  });
}

describe.skipIf(!vcsim.available)(liveTitle('adapter conformance'), () => {
  privateRun('vpx');
  privateRun('esx');

  const shared = () => {
    const e = env();
    const ca = readFileSync(e.HVKIT_VCSIM_CA, 'utf8');
    return {
      url: e.HVKIT_VCSIM_URL,
      username: e.HVKIT_VCSIM_USER,
      password: e.HVKIT_VCSIM_PASSWORD,
      tls: { ca },
    };
  };
  let sharedProbe: VcsimProbe | undefined;
  cleanups.push(async () => sharedProbe?.close());
  runAdapterConformance({
    name: 'vmware-vsphere (shared vcsim vpx, https + CA, read-only)',
    mode: 'live',
    factory: () => connect(shared()),
    // Read-only: no triggerEvent (it would power-cycle a VM others may be using); events.lifecycle then
    // skips with the suite's reason, and the private runs above cover it.
    probe: () => {
      sharedProbe ??= vcsimProbe(shared());
      const { triggerEvent: _unused, ...readOnly } = sharedProbe;
      return readOnly;
    },
    mutations: false,
    skip: VCSIM_SKIPS,
  });
});
