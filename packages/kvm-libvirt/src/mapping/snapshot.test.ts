import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample, samplesWithRoot } from './__samples__/load';
import {
  buildBackupXml,
  buildCheckpointXml,
  buildSnapshotXml,
  parseBackupXml,
  parseCheckpointXml,
  parseSnapshotXml,
  parseSnapshotXmlDetails,
} from './snapshot';

function expectInvalid(fn: () => unknown): void {
  try {
    fn();
  } catch (error) {
    expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT')).toBe(true);
    return;
  }
  throw new Error('expected INVALID_ARGUMENT');
}

describe('parseSnapshotXml', () => {
  it('reads an external disk-only snapshot of a running domain as disk', () => {
    expect(parseSnapshotXml(sample('qemu-snapshot-disk-external.xml'))).toEqual({
      id: 'snap-disk1',
      name: 'snap-disk1',
      createdAt: new Date(1795707890 * 1000),
      kind: 'disk',
      description: 'disk-only external',
    });
    expect(parseSnapshotXmlDetails(sample('qemu-snapshot-disk-external.xml'))).toMatchObject({
      state: 'disk-snapshot',
      memory: 'no',
      hasDomain: true,
      disks: [
        {
          name: 'vda',
          snapshot: 'external',
          file: '/var/lib/libvirt/images/hvkit-sample-live-a.snap1.qcow2',
          format: 'qcow2',
        },
        { name: 'vdb', snapshot: 'no' },
        { name: 'hdc', snapshot: 'no' },
      ],
    });
  });

  it('reads an external memory snapshot with its parent', () => {
    expect(parseSnapshotXml(sample('qemu-snapshot-memory-external.xml'))).toEqual({
      id: 'snap-mem2',
      name: 'snap-mem2',
      createdAt: new Date(1795707891 * 1000),
      kind: 'memory',
      parentId: 'snap-disk1',
      description: 'memory external',
    });
    expect(parseSnapshotXmlDetails(sample('qemu-snapshot-memory-external.xml'))).toMatchObject({
      state: 'running',
      memory: 'external',
      memoryFile: '/var/lib/libvirt/images/hvkit-sample-live.mem2',
      parentName: 'snap-disk1',
    });
  });

  it('reads internal snapshots of a shut-off and a running domain', () => {
    expect(parseSnapshotXml(sample('qemu-snapshot-internal-shutoff.xml'))).toMatchObject({
      name: 'off1',
      kind: 'disk',
      createdAt: new Date(1795707964 * 1000),
    });
    expect(parseSnapshotXml(sample('qemu-snapshot-internal-running.xml'))).toMatchObject({
      name: 'run2',
      kind: 'memory',
      parentId: 'off1',
    });
    expect(parseSnapshotXml(sample('test-snapshot-running.xml'))).toEqual({
      id: 's2',
      name: 's2',
      createdAt: new Date(1795707968 * 1000),
      kind: 'memory',
      parentId: 's1',
    });
  });

  it('treats a running-state snapshot without <memory> (old libvirt) as a memory snapshot', () => {
    const old =
      '<domainsnapshot><name>o</name><state>running</state><creationTime>1</creationTime></domainsnapshot>';
    expect(parseSnapshotXml(old).kind).toBe('memory');
    const off = '<domainsnapshot><name>o</name><state>shutoff</state></domainsnapshot>';
    expect(parseSnapshotXml(off)).toEqual({ id: 'o', name: 'o', createdAt: new Date(0), kind: 'disk' });
  });

  it('parses every snapshot sample and rejects other documents', () => {
    for (const f of samplesWithRoot('domainsnapshot'))
      expect(parseSnapshotXml(sample(f)).createdAt.getTime()).toBeGreaterThan(0);
    expect(() => parseSnapshotXml('<domaincheckpoint><name>x</name></domaincheckpoint>')).toThrow(HvkitError);
    expect(() => parseSnapshotXml('<domainsnapshot/>')).toThrow(HvkitError);
  });
});

describe('buildSnapshotXml', () => {
  it('builds a disk-only external snapshot', () => {
    const xml = buildSnapshotXml({
      name: 'hvkit-1',
      description: 'nightly & <safe>',
      diskOnly: true,
      disks: [
        { name: 'vda', file: '/var/lib/libvirt/images/g1.hvkit-1.qcow2', format: 'qcow2' },
        { name: 'hdc', snapshot: 'no' },
      ],
    });
    expect(xml).toBe(
      [
        '<domainsnapshot>',
        '  <name>hvkit-1</name>',
        '  <description>nightly &amp; &lt;safe&gt;</description>',
        '  <memory snapshot="no"/>',
        '  <disks>',
        '    <disk name="vda" snapshot="external" type="file">',
        '      <driver type="qcow2"/>',
        '      <source file="/var/lib/libvirt/images/g1.hvkit-1.qcow2"/>',
        '    </disk>',
        '    <disk name="hdc" snapshot="no"/>',
        '  </disks>',
        '</domainsnapshot>',
      ].join('\n'),
    );
    const back = parseSnapshotXmlDetails(xml);
    expect(back).toMatchObject({ name: 'hvkit-1', memory: 'no', hasDomain: false });
    expect(back.disks).toEqual([
      {
        name: 'vda',
        snapshot: 'external',
        file: '/var/lib/libvirt/images/g1.hvkit-1.qcow2',
        format: 'qcow2',
      },
      { name: 'hdc', snapshot: 'no' },
    ]);
    expect(parseSnapshotXml(xml)).toMatchObject({ kind: 'disk', description: 'nightly & <safe>' });
  });

  it('builds the minimal and the memory forms', () => {
    expect(buildSnapshotXml()).toBe('<domainsnapshot/>');
    expect(buildSnapshotXml({ name: 's' })).toBe('<domainsnapshot>\n  <name>s</name>\n</domainsnapshot>');
    expect(buildSnapshotXml({ name: 's', memoryFile: '/m.save' })).toContain(
      '<memory snapshot="external" file="/m.save"/>',
    );
  });

  it('rejects invalid input', () => {
    expectInvalid(() => buildSnapshotXml({ name: '' }));
    expectInvalid(() => buildSnapshotXml({ name: 'a\nb' }));
    expectInvalid(() => buildSnapshotXml({ name: 'a\u0000' }));
    expectInvalid(() => buildSnapshotXml({ diskOnly: true, memoryFile: '/m' }));
    expectInvalid(() => buildSnapshotXml({ memoryFile: 'relative' }));
    expectInvalid(() => buildSnapshotXml({ disks: [{ name: 'vda' }, { name: 'vda' }] }));
    expectInvalid(() => buildSnapshotXml({ disks: [{ name: 'vda', snapshot: 'internal', file: '/x' }] }));
    expectInvalid(() => buildSnapshotXml({ disks: [{ name: 'vda', snapshot: 'bogus' as never }] }));
    expect(() => buildSnapshotXml({ name: 5 as never })).toThrow(TypeError);
  });
});

describe('checkpoints', () => {
  it('reads checkpoints with and without the domain and sizes', () => {
    expect(parseCheckpointXml(sample('qemu-checkpoint-cp1.xml'))).toEqual({
      name: 'cp1',
      description: 'first checkpoint',
      createdAt: new Date(1795707900 * 1000),
      disks: [
        { name: 'vda', checkpoint: 'bitmap', bitmap: 'cp1' },
        { name: 'vdb', checkpoint: 'no' },
        { name: 'hdc', checkpoint: 'no' },
      ],
      hasDomain: true,
    });
    expect(parseCheckpointXml(sample('qemu-checkpoint-cp2-nodomain.xml'))).toEqual({
      name: 'cp2',
      createdAt: new Date(1795707902 * 1000),
      parentName: 'cp1',
      disks: [
        { name: 'vda', checkpoint: 'bitmap', bitmap: 'cp2' },
        { name: 'vdb', checkpoint: 'no' },
        { name: 'hdc', checkpoint: 'no' },
      ],
      hasDomain: false,
    });
    expect(parseCheckpointXml(sample('qemu-checkpoint-cp2-size.xml')).disks[0]).toEqual({
      name: 'vda',
      checkpoint: 'bitmap',
      bitmap: 'cp2',
      sizeBytes: 0,
    });
  });

  it('builds a checkpoint and reads it back', () => {
    const xml = buildCheckpointXml({
      name: 'hvkit-cp-1',
      description: 'before backup',
      disks: [{ name: 'vda' }, { name: 'vdb', checkpoint: 'no' }],
    });
    expect(xml).toBe(
      [
        '<domaincheckpoint>',
        '  <name>hvkit-cp-1</name>',
        '  <description>before backup</description>',
        '  <disks>',
        '    <disk name="vda" checkpoint="bitmap"/>',
        '    <disk name="vdb" checkpoint="no"/>',
        '  </disks>',
        '</domaincheckpoint>',
      ].join('\n'),
    );
    expect(parseCheckpointXml(xml)).toEqual({
      name: 'hvkit-cp-1',
      description: 'before backup',
      createdAt: new Date(0),
      disks: [
        { name: 'vda', checkpoint: 'bitmap' },
        { name: 'vdb', checkpoint: 'no' },
      ],
      hasDomain: false,
    });
    expect(buildCheckpointXml({ name: 'c' })).toBe(
      '<domaincheckpoint>\n  <name>c</name>\n</domaincheckpoint>',
    );
  });

  it('rejects invalid checkpoints', () => {
    expectInvalid(() => buildCheckpointXml({ name: ' ' }));
    expectInvalid(() =>
      buildCheckpointXml({ name: 'c', disks: [{ name: 'vda', checkpoint: 'yes' as never }] }),
    );
    expectInvalid(() => buildCheckpointXml({ name: 'c', disks: [{ name: 'vda' }, { name: 'vda' }] }));
    expect(() => buildCheckpointXml(null as never)).toThrow(TypeError);
    expect(() => parseCheckpointXml('<domainsnapshot/>')).toThrow(HvkitError);
  });
});

describe('backups', () => {
  it('builds an incremental push backup', () => {
    const xml = buildBackupXml({
      mode: 'push',
      incremental: 'cp1',
      disks: [
        { name: 'vda', target: '/backup/g1-vda.qcow2', format: 'qcow2' },
        { name: 'vdb', backup: false },
      ],
    });
    expect(xml).toBe(
      [
        '<domainbackup mode="push">',
        '  <incremental>cp1</incremental>',
        '  <disks>',
        '    <disk name="vda" backup="yes" type="file">',
        '      <driver type="qcow2"/>',
        '      <target file="/backup/g1-vda.qcow2"/>',
        '    </disk>',
        '    <disk name="vdb" backup="no"/>',
        '  </disks>',
        '</domainbackup>',
      ].join('\n'),
    );
    expect(parseBackupXml(xml)).toEqual({
      mode: 'push',
      incremental: 'cp1',
      disks: [
        { name: 'vda', backup: true, target: '/backup/g1-vda.qcow2', format: 'qcow2' },
        { name: 'vdb', backup: false },
      ],
    });
  });

  it('builds pull backups and block targets', () => {
    const pull = buildBackupXml({
      mode: 'pull',
      server: { transport: 'unix', socket: '/run/hvkit/nbd.sock' },
      disks: [{ name: 'vda', scratch: '/var/tmp/scratch.qcow2' }],
    });
    expect(pull).toContain('<server transport="unix" socket="/run/hvkit/nbd.sock"/>');
    expect(pull).toContain('<scratch file="/var/tmp/scratch.qcow2"/>');
    const tcp = buildBackupXml({
      mode: 'pull',
      server: { transport: 'tcp', name: '127.0.0.1', port: 10809 },
    });
    expect(tcp).toBe(
      '<domainbackup mode="pull">\n  <server transport="tcp" name="127.0.0.1" port="10809"/>\n</domainbackup>',
    );
    const block = buildBackupXml({
      disks: [{ name: 'vda', target: '/dev/vg/bk', targetType: 'block', format: 'raw' }],
    });
    expect(block).toContain('<disk name="vda" backup="yes" type="block">');
    expect(block).toContain('<target dev="/dev/vg/bk"/>');
    expect(buildBackupXml({})).toBe('<domainbackup mode="push"/>');
  });

  it('reads a running pull backup with its NBD exports', () => {
    expect(parseBackupXml(sample('qemu-backup-pull-live.xml'))).toEqual({
      mode: 'pull',
      incremental: 'cp1',
      server: { transport: 'unix', socket: '/var/lib/libvirt/qemu/hvkit-sample/nbd.sock' },
      disks: [
        {
          name: 'vda',
          backup: true,
          backupMode: 'incremental',
          incremental: 'cp1',
          exportName: 'vda',
          exportBitmap: 'backup-vda',
          scratch: '/var/lib/libvirt/images/hvkit-sample-scratch-vda.qcow2',
          format: 'qcow2',
        },
        { name: 'vdb', backup: false },
        { name: 'hdc', backup: false },
      ],
    });
  });

  it('rejects invalid backups', () => {
    expectInvalid(() => buildBackupXml({ mode: 'pull' }));
    expectInvalid(() => buildBackupXml({ mode: 'push', server: { transport: 'unix', socket: '/s' } }));
    expectInvalid(() => buildBackupXml({ mode: 'bogus' as never }));
    expectInvalid(() => buildBackupXml({ disks: [{ name: 'vda', target: 'relative.qcow2' }] }));
    expectInvalid(() => buildBackupXml({ disks: [{ name: 'vda', scratch: '/s' }] }));
    expectInvalid(() =>
      buildBackupXml({
        mode: 'pull',
        server: { transport: 'unix', socket: '/s' },
        disks: [{ name: 'vda', target: '/t' }],
      }),
    );
    expectInvalid(() => buildBackupXml({ disks: [{ name: 'vda', format: 'vmdk' as never }] }));
    expectInvalid(() => buildBackupXml({ disks: [{ name: 'vda' }, { name: 'vda' }] }));
    expectInvalid(() =>
      buildBackupXml({ mode: 'pull', server: { transport: 'tcp', name: 'h', port: 70000 } }),
    );
    expectInvalid(() => buildBackupXml({ incremental: '' }));
  });
});
