/**
 * Records the replay fixtures of @hvkit/cgroups from real cgroup trees:
 *
 *   node --conditions=@hvkit/source --import tsx packages/cgroups/test/record.ts v1   # this machine (hybrid)
 *   node --conditions=@hvkit/source --import tsx packages/cgroups/test/record.ts v2   # the lab VM (HVKIT_LAB_SSH_*)
 *
 * It makes a scratch group `hvkit-test-<random>` (v1: in the cpu, memory, blkio and pids hierarchies,
 * with a 768 MiB memory limit; v2: a parent with +cpu +memory +io +pids and a leaf), puts a `sleep` in
 * it, runs the conformance suite (it must pass) with the scratch group as the target, snapshots what the
 * adapter reads (mounts, host facts, block devices, the scratch group and libvirt's machine groups),
 * renames the scratch group to `hvkit-test-fixture`, normalises and writes test/fixtures/<name>/, and
 * removes the scratch group in every case.
 */

import { join } from 'node:path';
import { formatConformanceReport, runConformanceReport } from '@hvkit/conformance';
import {
  defaultRules,
  fixtureMetadata,
  normalise,
  normaliserId,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import { createLocalExec, createLocalFiles, type ExecTransport, type FilesTransport } from '@hvkit/core';
import { connectSsh, type SshClient } from '@hvkit/ssh';
import { connect } from '../src/connect';
import { sshCgroupFiles } from '../src/protocol/ssh-files';
import { FIXTURE_GROUP, FIXTURES, LIMIT_VALUES } from './replay-options';
import { createScratchGroup, scratchName } from './scratch';
import { snapshotHost } from './snapshot';

const which = process.argv[2];
if (which !== 'v1' && which !== 'v2') throw new Error('usage: record.ts v1|v2');

let ssh: SshClient | undefined;
let exec: ExecTransport;
let files: FilesTransport;
if (which === 'v2') {
  const env = process.env;
  for (const k of [
    'HVKIT_LAB_SSH_HOST',
    'HVKIT_LAB_SSH_PORT',
    'HVKIT_LAB_SSH_KEY',
    'HVKIT_LAB_SSH_KNOWN_HOSTS',
  ]) {
    if (!env[k]) throw new Error(`${k} is not set: start the lab-vm peer (scripts/peers/lab-vm.sh)`);
  }
  ssh = await connectSsh({
    host: env.HVKIT_LAB_SSH_HOST as string,
    port: Number(env.HVKIT_LAB_SSH_PORT),
    username: env.HVKIT_LAB_SSH_USER ?? 'root',
    auth: { privateKey: env.HVKIT_LAB_SSH_KEY as string },
    hostKey: { knownHostsFile: env.HVKIT_LAB_SSH_KNOWN_HOSTS as string },
  });
  exec = ssh.exec;
  files = sshCgroupFiles(ssh);
} else {
  exec = createLocalExec();
  files = createLocalFiles();
}

const name = scratchName();
try {
  const probe = await connect({ files });
  const { controllers, mounts } = probe.server;
  const v2Mount = mounts.find((m) => m.version === 2)?.mountPoint;
  const group =
    which === 'v2'
      ? await createScratchGroup(exec, { v2: v2Mount as string }, { name })
      : await createScratchGroup(
          exec,
          (['cpu', 'memory', 'io', 'pids'] as const).map((c) => controllers[c]?.mountPoint as string),
          { name },
        );
  try {
    if (which === 'v1') {
      const limit = `${controllers.memory?.mountPoint}/${name}/memory.limit_in_bytes`;
      await exec.exec({ argv: ['sh', '-c', 'echo 805306368 > "$1"', 'sh', limit], timeoutMs: 10_000 });
    }
    await group.populate();
    const report = await runConformanceReport({
      name: `cgroups (recording ${which})`,
      mode: 'replay',
      factory: () => connect({ files, extraGroups: [group.id] }),
      target: group.id,
      limitValues: LIMIT_VALUES,
    });
    console.log(formatConformanceReport(report));
    if (report.failed > 0) throw new Error(`${report.failed} checks failed while recording; nothing written`);

    const blocks = (await files.list('/sys/block')).map((e) => e.name);
    const cgroupMounts = [...new Set(Object.values(controllers).map((p) => p.mountPoint))];
    const snapshot = await snapshotHost(
      files,
      {
        files: [
          '/proc/self/mountinfo',
          '/proc/sys/kernel/osrelease',
          '/proc/sys/kernel/hostname',
          '/proc/meminfo',
          '/sys/devices/system/cpu/online',
          ...(v2Mount ? [`${v2Mount}/cgroup.controllers`] : []),
          ...(controllers.memory?.version === 1
            ? [`${controllers.memory.mountPoint}/memory.memsw.limit_in_bytes`]
            : []),
          ...blocks.flatMap((b) => [`/sys/block/${b}/dev`, `/sys/block/${b}/size`]),
        ],
        lists: ['/sys/block', ...cgroupMounts],
        trees: cgroupMounts.flatMap((m) => [`${m}/machine`, `${m}/machine.slice`, `${m}/${name}`]),
        rename: [name, FIXTURE_GROUP],
      },
      which === 'v2' ? 'ssh://lab-vm' : 'local',
    );
    const rules = defaultRules();
    const dir = join(import.meta.dirname, 'fixtures', FIXTURES[which]);
    await writeFixture(
      dir,
      {
        metadata: fixtureMetadata({
          recordedFrom: { server: probe.server.product, version: probe.server.version },
          normalisedWith: normaliserId(rules),
          notes: `The conformance suite run on a scratch group of ${which === 'v2' ? "the lab VM's cgroup v2 tree over SSH" : "this machine's hybrid tree"} (renamed ${FIXTURE_GROUP}), then the files the adapter reads snapshotted (mounts, host facts, block devices, the scratch group, libvirt's machine groups). Re-record with: node --conditions=@hvkit/source --import tsx packages/cgroups/test/record.ts ${which}`,
        }),
        files: { 'files.json': normalise(snapshot, rules) },
      },
      { clean: true },
    );
    console.log(`wrote ${dir} (${Object.keys(snapshot.entries).length} entries)`);
  } finally {
    await group.remove();
  }
} finally {
  await ssh?.close();
}
