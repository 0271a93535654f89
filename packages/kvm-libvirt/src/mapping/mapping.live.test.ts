/**
 * Live checks of the XML builders against the real libvirtd peer (scripts/peers/start libvirtd): libvirt
 * must accept what they produce, and the parsers must read back what libvirt stored. Uses `virsh` as the
 * probe; every domain is a throwaway `hvkit-sample-live-*` that is removed afterwards.
 */

import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sample } from './__samples__/load';
import { parseDomainXml, parseDomainXmlDetails } from './domain';
import { setDomainSeclabel } from './seclabel';
import {
  buildBackupXml,
  buildCheckpointXml,
  buildSnapshotXml,
  parseBackupXml,
  parseCheckpointXml,
  parseSnapshotXml,
  parseSnapshotXmlDetails,
} from './snapshot';

const peer = livePeer('libvirtd', [
  'HVKIT_LIBVIRT_QEMU_URI',
  'HVKIT_LIBVIRT_TEST_URI',
  'HVKIT_LIBVIRT_ACCEL',
]);
const title = `mapping against the libvirtd peer${peer.available ? '' : ` (skipped: ${peer.reason})`}`;

function virsh(uri: string, ...args: string[]): string {
  return execFileSync('virsh', ['-q', '-c', uri, ...args], { encoding: 'utf8', timeout: 60_000 });
}

function tryVirsh(uri: string, ...args: string[]): void {
  try {
    virsh(uri, ...args);
  } catch {
    // cleanup: the object may already be gone
  }
}

describe.skipIf(!peer.available)(title, () => {
  const env = peer.available ? peer.env : ({} as Record<string, string>);
  const qemu = env.HVKIT_LIBVIRT_QEMU_URI as string;
  const test = env.HVKIT_LIBVIRT_TEST_URI as string;
  const images = '/var/lib/libvirt/images';
  const id = randomUUID().slice(0, 8);
  const name = `hvkit-sample-live-${id}`;
  const uuid = randomUUID();
  const disk = join(images, `${name}.qcow2`);
  const files = [disk];
  let tmp = '';

  function file(base: string, text: string): string {
    const path = join(tmp, base);
    writeFileSync(path, text);
    return path;
  }

  beforeAll(() => {
    tmp = mkdtempSync(join(tmpdir(), 'hvkit-mapping-live-'));
    execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '64M'], { timeout: 60_000 });
    const xml = `<domain type='${env.HVKIT_LIBVIRT_ACCEL === 'kvm' ? 'kvm' : 'qemu'}'>
  <name>${name}</name>
  <uuid>${uuid}</uuid>
  <title>hvkit mapping live test</title>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <cpu mode='custom' match='exact'><model fallback='allow'>qemu64</model><feature policy='disable' name='svm'/></cpu>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='${disk}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='file' device='cdrom'><target dev='hdc' bus='ide'/><readonly/></disk>
    <memballoon model='none'/>
  </devices>
</domain>`;
    virsh(qemu, 'define', file('domain.xml', xml));
  });

  afterAll(() => {
    tryVirsh(qemu, 'destroy', name);
    tryVirsh(qemu, 'undefine', name, '--snapshots-metadata', '--checkpoints-metadata');
    for (const f of files) rmSync(f, { force: true });
    if (tmp) rmSync(tmp, { recursive: true, force: true });
  });

  it('libvirt accepts the labels setDomainSeclabel writes, and they read back', () => {
    const cases = [
      {
        label: { model: 'dac', type: 'static', label: '+107:+107', relabel: true },
        expected: { relabel: true },
      },
      { label: { model: 'dac', type: 'static', label: '+0:+0' }, expected: { relabel: false } },
      { label: { model: 'dac', type: 'none' }, expected: { relabel: false } },
      { label: { model: 'dac', type: 'dynamic' }, expected: { relabel: true } },
    ] as const;
    for (const { label, expected } of cases) {
      const current = virsh(qemu, 'dumpxml', '--inactive', '--security-info', name);
      const next = setDomainSeclabel(current, label);
      virsh(qemu, 'define', file('seclabel.xml', next));
      const stored = parseDomainXmlDetails(virsh(qemu, 'dumpxml', '--inactive', name));
      const { relabel: _ignored, ...rest } = label as { relabel?: boolean };
      expect(stored.seclabels).toEqual([{ ...rest, ...expected, source: 'config' }]);
      expect(stored.uuid).toBe(uuid);
    }
  });

  it('parses the definition libvirt stored', () => {
    const g = parseDomainXml(virsh(qemu, 'dumpxml', '--inactive', name), { powerState: 'stopped' });
    expect(g).toMatchObject({
      id: uuid,
      uuid,
      name,
      vcpus: 1,
      memoryBytes: 64 * 1024 ** 2,
      powerState: 'stopped',
    });
    expect(g.disks.map((d) => [d.device, d.source, d.format, d.readonly])).toEqual([
      ['vda', disk, 'qcow2', false],
      ['hdc', undefined, 'raw', true],
    ]);
  });

  it('libvirt accepts the snapshot, checkpoint and backup XML built here (running guest)', async () => {
    virsh(qemu, 'start', name);
    const live = parseDomainXmlDetails(virsh(qemu, 'dumpxml', name));
    expect(live.live).toBe(true);
    expect(live.seclabels[0]).toMatchObject({ model: 'dac', type: 'dynamic', source: 'live' });
    expect(live.seclabels[0]?.label).toMatch(/^\+\d+:\+\d+$/);

    // Disk-only external snapshot.
    const overlay = join(images, `${name}.snap1.qcow2`);
    files.push(overlay);
    const snapXml = buildSnapshotXml({
      name: 'hvkit-snap1',
      description: 'built by buildSnapshotXml',
      diskOnly: true,
      disks: [
        { name: 'vda', file: overlay, format: 'qcow2' },
        { name: 'hdc', snapshot: 'no' },
      ],
    });
    virsh(qemu, 'snapshot-create', name, file('snap.xml', snapXml), '--disk-only');
    const snap = parseSnapshotXml(virsh(qemu, 'snapshot-dumpxml', name, 'hvkit-snap1'));
    expect(snap).toMatchObject({ id: 'hvkit-snap1', kind: 'disk', description: 'built by buildSnapshotXml' });
    expect(Math.abs(snap.createdAt.getTime() - Date.now())).toBeLessThan(10 * 60_000);
    expect(
      parseSnapshotXmlDetails(virsh(qemu, 'snapshot-dumpxml', name, 'hvkit-snap1')).disks[0],
    ).toMatchObject({
      name: 'vda',
      snapshot: 'external',
      file: overlay,
    });
    expect(existsSync(overlay)).toBe(true);

    // Checkpoint, then a full push backup that creates a second checkpoint, then an incremental one.
    virsh(
      qemu,
      'checkpoint-create',
      name,
      file('cp1.xml', buildCheckpointXml({ name: 'hvkit-cp1', disks: [{ name: 'vda' }] })),
    );
    expect(parseCheckpointXml(virsh(qemu, 'checkpoint-dumpxml', name, 'hvkit-cp1')).disks).toEqual([
      { name: 'vda', checkpoint: 'bitmap', bitmap: 'hvkit-cp1' },
      { name: 'hdc', checkpoint: 'no' },
    ]);
    for (const [n, incremental] of [
      [1, undefined],
      [2, 'hvkit-cp1'],
    ] as const) {
      const target = join(images, `${name}.backup${n}.qcow2`);
      files.push(target);
      const backupXml = buildBackupXml({
        mode: 'push',
        ...(incremental ? { incremental } : {}),
        disks: [
          { name: 'vda', target, format: 'qcow2' },
          { name: 'hdc', backup: false },
        ],
      });
      const cpXml = buildCheckpointXml({
        name: `hvkit-bk${n}`,
        disks: [{ name: 'vda' }, { name: 'hdc', checkpoint: 'no' }],
      });
      virsh(qemu, 'backup-begin', name, file(`backup${n}.xml`, backupXml), file(`backup-cp${n}.xml`, cpXml));
      // A running job describes itself; a finished one is gone.
      let runningXml: string | undefined;
      try {
        runningXml = virsh(qemu, 'backup-dumpxml', name);
      } catch {
        // already completed
      }
      if (runningXml !== undefined) {
        const running = parseBackupXml(runningXml);
        expect(running.mode).toBe('push');
        expect(running.disks[0]).toMatchObject({ name: 'vda', backup: true, target });
      }
      const deadline = Date.now() + 60_000;
      for (;;) {
        const info = virsh(qemu, 'domjobinfo', name, '--completed');
        if (/Completed/.test(info)) {
          expect(info).toMatch(/Backup/);
          break;
        }
        if (Date.now() > deadline) throw new Error(`backup ${n} did not complete: ${info}`);
        await new Promise((r) => setTimeout(r, 200));
      }
      expect(existsSync(target)).toBe(true);
      const cp = parseCheckpointXml(virsh(qemu, 'checkpoint-dumpxml', name, `hvkit-bk${n}`, '--no-domain'));
      expect(cp.name).toBe(`hvkit-bk${n}`);
      expect(cp.parentName).toBe(n === 1 ? 'hvkit-cp1' : 'hvkit-bk1');
    }
  });

  it('the test driver accepts stacked SELinux/AppArmor labels written by setDomainSeclabel', () => {
    const base = sample('test-seclabels-selinux-inactive.xml');
    const next = setDomainSeclabel(base, {
      model: 'selinux',
      type: 'static',
      label: 'system_u:system_r:svirt_t:s0:c7,c99',
      relabel: true,
    });
    const withAppArmor = setDomainSeclabel(next, { model: 'apparmor', type: 'dynamic' });
    // One session: the test driver forgets its state when the connection closes.
    const out = virsh(
      test,
      `define ${file('test-domain.xml', withAppArmor)}; dumpxml --inactive hvkit-sample-selinux`,
    );
    const xml = out.slice(out.indexOf('<domain'));
    expect(parseDomainXmlDetails(xml).seclabels).toEqual([
      {
        model: 'selinux',
        type: 'static',
        label: 'system_u:system_r:svirt_t:s0:c7,c99',
        relabel: true,
        source: 'config',
      },
      { model: 'apparmor', type: 'dynamic', relabel: true, source: 'config' },
      { model: 'dac', type: 'dynamic', relabel: true, source: 'config' },
    ]);
  });
});
