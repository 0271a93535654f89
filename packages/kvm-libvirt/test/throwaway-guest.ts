/**
 * Test helper: a throwaway QEMU guest on the shared libvirtd peer, for backup tests that need a guest of
 * their own (a disk large enough for a backup to be caught mid-way, crashed runs left on purpose) without
 * disturbing hvkit-guest1. Its disk is a qcow2 v3 volume (dirty bitmaps need v3) in the peer's pool, with
 * `dataMiB` of a fixed byte pattern written at its start; the guest runs no OS (64 MiB of memory; KVM when
 * the peer has it, `HVKIT_LIBVIRT_ACCEL`, else TCG).
 * `remove()` destroys and undefines it (checkpoint metadata included) and deletes its disk and every
 * temporary backup volume of it.
 */

import { execFile } from 'node:child_process';
import { rmSync, writeFileSync } from 'node:fs';

/** Runs virsh without blocking the event loop. */
export function virsh(uri: string, ...args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      'virsh',
      ['-q', '-c', uri, ...args],
      { encoding: 'utf8', timeout: 120_000 },
      (error, stdout, stderr) =>
        error ? reject(new Error(`virsh ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}

function run(cmd: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, args, { encoding: 'utf8', timeout: 300_000 }, (error, stdout, stderr) =>
      error ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || error.message}`)) : resolve(stdout),
    );
  });
}

/** A guest made by {@link createThrowawayGuest}. */
export interface ThrowawayGuest {
  name: string;
  uuid: string;
  /** Its disk image path. */
  disk: string;
  remove(): Promise<void>;
}

/** The target path of a storage pool. */
export async function poolPath(uri: string, pool: string): Promise<string> {
  const xml = await virsh(uri, 'pool-dumpxml', pool);
  const m = /<path>([^<]+)<\/path>/.exec(xml);
  if (!m?.[1]) throw new Error(`pool ${pool} has no target path`);
  return m[1];
}

/** Creates and starts a throwaway guest named `name` with a `diskMiB` disk holding `dataMiB` of data. */
export async function createThrowawayGuest(
  uri: string,
  pool: string,
  name: string,
  options: { diskMiB: number; dataMiB: number },
): Promise<ThrowawayGuest> {
  const dir = await poolPath(uri, pool);
  const disk = `${dir}/${name}.qcow2`;
  const xmlFile = `/tmp/${name}.xml`;
  let uuid = '';
  const remove = async () => {
    await virsh(uri, 'destroy', name).catch(() => {});
    await virsh(uri, 'undefine', name, '--checkpoints-metadata', '--snapshots-metadata').catch(() => {});
    await virsh(uri, 'pool-refresh', pool).catch(() => {});
    const vols = await virsh(uri, 'vol-list', pool).catch(() => '');
    for (const line of vols.split('\n')) {
      const path = line.trim().split(/\s+/)[1] ?? '';
      if (path === disk || (uuid !== '' && path.includes(`hvkit-backup-${uuid}-`))) {
        await virsh(uri, 'vol-delete', path).catch(() => {});
      }
    }
    rmSync(xmlFile, { force: true });
  };
  try {
    await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-o', 'compat=1.1', disk, `${options.diskMiB}M`]);
    if (options.dataMiB > 0) {
      await run('qemu-io', ['-f', 'qcow2', '-c', `write -P 0x5a 0 ${options.dataMiB}M`, disk]);
    }
    await run('chmod', ['0600', disk]);
    await virsh(uri, 'pool-refresh', pool);
    const type = process.env.HVKIT_LIBVIRT_ACCEL === 'kvm' ? 'kvm' : 'qemu';
    writeFileSync(
      xmlFile,
      `<domain type='${type}'>
  <name>${name}</name>
  <description>throwaway guest of a kvm-libvirt backup live test</description>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
`,
    );
    await virsh(uri, 'define', xmlFile);
    uuid = (await virsh(uri, 'domuuid', name)).trim().toLowerCase();
    await virsh(uri, 'start', name);
  } catch (error) {
    await remove();
    throw error;
  }
  return { name, uuid, disk, remove };
}
