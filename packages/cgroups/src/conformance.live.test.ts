/**
 * Live conformance: the suite against real cgroup trees, each on a scratch group it creates and removes
 * (with a `sleep` in it, so it is a running guest): this machine's hybrid tree (v1 controllers), and the
 * lab VM's cgroup v2 tree over one SSH connection (the `lab-vm` peer). The probe of test/probe.ts reads
 * the files with `cat`, not through the adapter.
 */

import { livePeer, runAdapterConformance } from '@hvkit/conformance';
import { createLocalExec } from '@hvkit/core';
import { connectSsh, type SshClient } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, it } from 'vitest';
import { localTree } from '../test/local-tree';
import { cgroupsProbe } from '../test/probe';
import { LIMIT_VALUES, LIVE_PEER } from '../test/replay-options';
import { createScratchGroup, type ScratchGroup, scratchName } from '../test/scratch';
import { connect } from './connect';

const tree = localTree();
if (tree.available) {
  const { cpu, memory, blkio, pids } = tree.mounts;
  const exec = createLocalExec();
  const name = scratchName();
  let group: ScratchGroup | undefined;
  const id = name;
  describe('local tree scratch group', () => {
    beforeAll(async () => {
      group = await createScratchGroup(exec, [cpu, memory, blkio, pids], { name });
      // A hard limit like a guest's: on v1 a swap limit exists only as memsw = limit + swap.
      await exec.exec({
        argv: ['sh', '-c', 'echo 805306368 > "$1"', 'sh', `${memory}/${name}/memory.limit_in_bytes`],
        timeoutMs: 10_000,
      });
      await group.populate();
    });
    afterAll(async () => {
      await group?.remove();
    });
    runAdapterConformance({
      name: 'cgroups (live, local hybrid tree)',
      mode: 'live',
      factory: () => connect({ extraGroups: [id] }),
      target: id,
      limitValues: LIMIT_VALUES,
      probe: cgroupsProbe(exec, {
        version: 1,
        cpu,
        memory,
        io: blkio,
        pids,
        disks: { vda: '254:0' },
      }),
    });
  });
} else {
  describe('cgroups live conformance (local tree)', () => {
    it.skip(`skipped: ${tree.reason}`, () => {});
  });
}

// The lab VM's cgroup v2 tree over one SSH connection (each new connection costs ~1.1 s under TCG).
const lab = livePeer(LIVE_PEER.name, LIVE_PEER.variables);
if (lab.available) {
  let ssh: SshClient | undefined;
  let group: ScratchGroup | undefined;
  const name = scratchName();
  const id = `${name}/guest`;
  const layout = {
    version: 2 as const,
    cpu: '/sys/fs/cgroup',
    memory: '/sys/fs/cgroup',
    io: '/sys/fs/cgroup',
    pids: '/sys/fs/cgroup',
    disks: {} as Record<string, string>,
  };
  const client = () => {
    if (!ssh) throw new Error('the lab VM connection is not open');
    return ssh;
  };
  // The suite calls factory() while it collects its checks, so the connection opens here, once.
  ssh = await connectSsh({
    host: lab.env.HVKIT_LAB_SSH_HOST,
    port: Number(lab.env.HVKIT_LAB_SSH_PORT),
    username: lab.env.HVKIT_LAB_SSH_USER,
    auth: { privateKey: lab.env.HVKIT_LAB_SSH_KEY },
    hostKey: { knownHostsFile: lab.env.HVKIT_LAB_SSH_KNOWN_HOSTS },
  });
  describe('lab VM (cgroup v2) scratch group over SSH', () => {
    beforeAll(async () => {
      layout.disks.vda = (await client().files.readFile('/sys/block/vda/dev')).toString().trim();
      group = await createScratchGroup(client().exec, { v2: '/sys/fs/cgroup' }, { name });
      await group.populate();
    }, 60_000);
    afterAll(async () => {
      try {
        await group?.remove();
      } finally {
        await ssh?.close();
      }
    }, 60_000);
    runAdapterConformance({
      name: 'cgroups (live, lab VM cgroup v2 over SSH)',
      mode: 'live',
      factory: () => connect({ ssh: client(), extraGroups: [id] }),
      target: id,
      limitValues: LIMIT_VALUES,
      callTimeoutMs: 60_000,
      testTimeoutMs: 120_000,
      probe: cgroupsProbe(
        {
          get target() {
            return client().exec.target;
          },
          exec: (request) => client().exec.exec(request),
          spawn: (request) => client().exec.spawn(request),
        },
        layout,
      ),
    });
  });
} else {
  describe('cgroups live conformance (lab-vm, cgroup v2)', () => {
    it.skip(`skipped: ${lab.reason}`, () => {});
  });
}
