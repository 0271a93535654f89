/**
 * The lab VM peer for the live tests (scripts/peers/lab-vm.sh): a small Debian guest with device-mapper,
 * lvm2 and thin-provisioning-tools, reached over SSH. Each test file makes its OWN volume group on a loop
 * file (`hvkit-test-<random>`) and removes it afterwards; nothing else on the VM is touched.
 */

import { randomBytes } from 'node:crypto';
import { livePeer } from '@hvkit/conformance';
import { connectSsh, type SshClient } from '@hvkit/ssh';

/** The variables the lab peer sets. */
export const LAB_VARIABLES = [
  'HVKIT_LAB_SSH_HOST',
  'HVKIT_LAB_SSH_PORT',
  'HVKIT_LAB_SSH_USER',
  'HVKIT_LAB_SSH_KEY',
  'HVKIT_LAB_SSH_KNOWN_HOSTS',
] as const;

/** The lab peer, named `lab-vm` in skip reasons. */
export const lab = livePeer('lab-vm', LAB_VARIABLES);

/** A title suffix saying why a live block is skipped. */
export function labTitle(title: string): string {
  return lab.available ? `${title} (live, peer lab-vm)` : `${title} (skipped: ${lab.reason})`;
}

/** One verified SSH connection to the lab VM (each new one costs about 1.1 s under TCG: reuse it). */
export async function connectLab(): Promise<SshClient> {
  if (!lab.available) throw new Error(lab.reason);
  const e = lab.env;
  return connectSsh({
    host: e.HVKIT_LAB_SSH_HOST,
    port: Number(e.HVKIT_LAB_SSH_PORT),
    username: e.HVKIT_LAB_SSH_USER,
    auth: { privateKey: e.HVKIT_LAB_SSH_KEY },
    hostKey: { knownHostsFile: e.HVKIT_LAB_SSH_KNOWN_HOSTS },
  });
}

/** Runs a bash script on the VM (test setup only; the adapter never does this) and returns stdout. */
export async function sh(ssh: SshClient, script: string, timeoutMs = 120_000): Promise<string> {
  const r = await ssh.exec.exec({ argv: ['bash', '-euo', 'pipefail', '-c', script], timeoutMs });
  if (r.exitCode !== 0) {
    throw new Error(
      `lab script failed (${r.exitCode}): ${r.stderr.toString().slice(0, 2000)}\n--- script:\n${script}`,
    );
  }
  return r.stdout.toString();
}

/** A volume group of a test, on a loop file under /root/<name>. */
export interface TestVg {
  name: string;
  /** Removes the group, its loop device and file (idempotent). */
  remove(): Promise<void>;
}

/**
 * Creates a volume group `hvkit-test-<random>` on a sparse loop file of `sizeMiB`, without autoactivation:
 * the VM's udev rule (69-lvm.rules) runs `vgchange -aay --autoactivation event` on the group after each
 * change event of its loop device, which every metadata write (lvcreate, lvrename, a tag) makes, and that
 * would activate a volume a test deactivated (an in-place restore needs it inactive) a few seconds later.
 */
export async function createTestVg(ssh: SshClient, sizeMiB = 256): Promise<TestVg> {
  const name = `hvkit-test-${randomBytes(4).toString('hex')}`;
  await sh(
    ssh,
    `modprobe dm-snapshot; modprobe dm-thin-pool; modprobe loop
mkdir -p /root/${name}; truncate -s ${sizeMiB}M /root/${name}/pv.img
loop=$(losetup -f --show /root/${name}/pv.img)
pvcreate -q "$loop" >/dev/null; vgcreate -q --setautoactivation n ${name} "$loop" >/dev/null`,
  );
  return {
    name,
    remove: () => removeTestVg(ssh, name),
  };
}

/** Removes a test volume group and what holds it up. */
export async function removeTestVg(ssh: SshClient, name: string): Promise<void> {
  await sh(
    ssh,
    `vgchange -q -an ${name} >/dev/null 2>&1 || true
vgremove -q -y -f ${name} >/dev/null 2>&1 || true
for l in $(losetup -j /root/${name}/pv.img | cut -d: -f1); do pvremove -q -y -ff "$l" >/dev/null 2>&1 || true; losetup -d "$l"; done
rm -rf /root/${name}`,
  );
}

/** sha256 of a device or file on the VM (`sha256sum`), read without the adapter. */
export async function remoteSha256(ssh: SshClient, path: string): Promise<string> {
  const out = await sh(ssh, `sha256sum ${path} | cut -d' ' -f1`);
  return out.trim();
}

/** Every file under a directory on the VM (made if missing), relative (`./a/b`), sorted; read with `find`. */
export async function remoteFiles(ssh: SshClient, dir: string): Promise<string[]> {
  return (await sh(ssh, `mkdir -p ${dir}; cd ${dir} && find . -type f | sort`))
    .split('\n')
    .filter((l) => l !== '');
}

/** The client port of the SSH connection `ssh` as the VM sees it (from `$SSH_CLIENT` of a command run over it). */
export async function labClientPort(ssh: SshClient): Promise<number> {
  const { stdout } = await ssh.exec.exec({ argv: ['printenv', 'SSH_CLIENT'], timeoutMs: 30_000 });
  const port = Number(stdout.toString('utf8').trim().split(/\s+/)[1]);
  if (!Number.isInteger(port) || port <= 0) throw new Error(`no client port in SSH_CLIENT=${stdout}`);
  return port;
}

/**
 * Ends the SSH connection of client port `port` (see {@link labClientPort}) from the VM's side, as a crashed
 * or rebooted host would: the sshd processes serving it, found with `ss -tnp` on the VM (run over `admin`,
 * another connection), are killed (SIGKILL). Only that connection is touched. Returns the pids it killed.
 */
export async function killLabSession(admin: SshClient, port: number): Promise<number[]> {
  const listing = await sh(admin, `ss -Htnp state established '( sport = :22 and dport = :${port} )'`);
  const pids = [...new Set([...listing.matchAll(/\("sshd[^"]*",pid=(\d+),/g)].map((m) => Number(m[1])))];
  if (pids.length === 0) throw new Error(`no sshd process on the VM serves client port ${port}:\n${listing}`);
  await sh(admin, `kill -9 ${pids.join(' ')}`);
  return pids;
}

/** Resolves once `ssh` has seen its connection close (its `onClose`; at most 10 s). */
export function untilClosed(ssh: SshClient): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new Error('the SSH client did not see its close within 10 s')),
      10_000,
    );
    const done = () => {
      clearTimeout(timer);
      resolve();
    };
    if (ssh.closed) done();
    else ssh.onClose(done);
  });
}

/**
 * The chunks of `source` until the first MiB passed, then `STALLED` on stdout and no end (for the child
 * processes test/backup-child.ts and test/restore-child.ts, which the test kills with SIGKILL there).
 */
export async function* stallAfterFirstMiB(source: AsyncIterable<Uint8Array>): AsyncGenerator<Uint8Array> {
  let n = 0;
  for await (const chunk of source) {
    yield chunk;
    n += chunk.byteLength;
    if (n >= 2 ** 20) {
      console.log('STALLED');
      await new Promise(() => {});
    }
  }
}
