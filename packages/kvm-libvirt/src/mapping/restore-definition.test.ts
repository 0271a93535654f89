import { HvkitError, parseXml } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample } from './__samples__/load';
import { parseDomainXmlDetails } from './domain';
import { rewriteDomainForRestore } from './restore-definition';

const SELINUX = `<domain type='kvm'>
  <name>web1</name>
  <uuid>68766b69-5a4d-4000-8000-00000000b001</uuid>
  <genid>11111111-2222-3333-4444-555555555555</genid>
  <memory unit='KiB'>65536</memory>
  <vcpu>1</vcpu>
  <os firmware='efi'>
    <type arch='x86_64' machine='q35'>hvm</type>
    <nvram template='/usr/share/OVMF/OVMF_VARS.fd'>/var/lib/libvirt/qemu/nvram/web1_VARS.fd</nvram>
  </os>
  <devices>
    <disk type='volume' device='disk'>
      <driver name='qemu' type='raw' cache='none'/>
      <source pool='default' volume='web1.img'>
        <seclabel model='selinux' relabel='yes'><label>system_u:object_r:svirt_image_t:s0:c1,c2</label></seclabel>
      </source>
      <backingStore type='file'>
        <format type='qcow2'/>
        <source file='/old/base.qcow2'/>
        <backingStore/>
      </backingStore>
      <target dev='vda' bus='virtio'/>
      <boot order='1'/>
    </disk>
    <interface type='network'>
      <mac address='52:54:00:aa:bb:cc'/>
      <source network='default'/>
      <target dev='mytap0'/>
    </interface>
    <channel type='unix'>
      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/domain-web1/org.qemu.guest_agent.0'/>
      <target type='virtio' name='org.qemu.guest_agent.0'/>
    </channel>
    <graphics type='spice' port='5901' tlsPort='5902' autoport='no'>
      <listen type='address' address='127.0.0.1'/>
    </graphics>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'>
    <label>system_u:system_r:svirt_t:s0:c100,c200</label>
    <imagelabel>system_u:object_r:svirt_image_t:s0:c100,c200</imagelabel>
    <baselabel>system_u:system_r:svirt_tcg_t:s0:c5,c6</baselabel>
  </seclabel>
  <seclabel type='static' model='dac' relabel='no'>
    <label>+107:+107</label>
  </seclabel>
</domain>
`;

/** parseDomainXmlDetails needs a UUID, which a rewritten definition for a new guest no longer has. */
function details(xml: string) {
  return parseDomainXmlDetails(
    xml.includes('<uuid>')
      ? xml
      : xml.replace('<name>', '<uuid>00000000-0000-4000-8000-000000000000</uuid><name>'),
  );
}

function rejection(run: () => unknown): HvkitError {
  try {
    run();
  } catch (error) {
    expect(HvkitError.isInstance(error), String(error)).toBe(true);
    return error as HvkitError;
  }
  throw new Error('expected a throw');
}

describe('rewriteDomainForRestore', () => {
  it('as new: new name, no uuid, no MACs or tap names, static labels gone, dynamic ones unassigned, disk on the new volume', () => {
    const { xml, warnings } = rewriteDomainForRestore(SELINUX, {
      mode: 'new',
      name: 'web1-restored',
      disks: [{ device: 'vda', path: '/pool/hvkit-restore-r1-vda.qcow2', format: 'qcow2' }],
    });
    const d = details(xml);
    expect(d.name).toBe('web1-restored');
    expect(xml).not.toContain('<uuid>');
    expect(xml).toContain('<genid/>');
    expect(xml).not.toContain('11111111-2222');
    expect(d.interfaces).toHaveLength(1);
    expect(d.interfaces[0]?.mac).toBeUndefined();
    expect(d.interfaces[0]?.targetDev).toBeUndefined();
    expect(d.interfaces[0]?.network).toBe('default');
    // Static DAC label removed; the SELinux one stays dynamic without its assigned label or categories.
    expect(xml).not.toContain("type='static'");
    expect(xml).not.toContain('+107:+107');
    expect(xml).not.toContain('c100,c200');
    expect(xml).toContain('<baselabel>system_u:system_r:svirt_tcg_t:s0</baselabel>');
    expect(d.seclabels.map((l) => l.model)).toEqual(['selinux']);
    // The disk: a file on the new volume, qcow2, the old per-disk label and backing chain gone.
    const vda = d.disks.find((x) => x.device === 'vda');
    expect(vda).toMatchObject({ type: 'file', source: '/pool/hvkit-restore-r1-vda.qcow2', format: 'qcow2' });
    expect(vda?.seclabels).toEqual([]);
    expect(xml).not.toContain('/old/base.qcow2');
    expect(xml).toContain("<driver name='qemu' type='qcow2' cache='none'/>");
    expect(xml).toContain("<boot order='1'/>");
    // Ties to the old guest: NVRAM path, channel path, fixed graphics ports.
    expect(xml).toContain("<nvram template='/usr/share/OVMF/OVMF_VARS.fd'></nvram>");
    expect(xml).not.toContain('domain-web1');
    expect(xml).toMatch(/<graphics type='spice' autoport='yes'>/);
    expect(warnings.map((w) => w.field)).toEqual(['os.nvram']);
    // Still one well-formed document.
    expect(() => parseXml(xml)).not.toThrow();
  });

  it('as new, on a sample captured from libvirt: every byte it does not edit stays', () => {
    const original = sample('qemu-guest1-inactive.xml');
    const { xml } = rewriteDomainForRestore(original, {
      mode: 'new',
      name: 'copy',
      disks: [{ device: 'vda', path: '/var/lib/libvirt/images/copy-vda.qcow2', format: 'qcow2' }],
    });
    const before = parseDomainXmlDetails(original);
    const after = details(xml);
    expect(after.vcpus).toEqual(before.vcpus);
    expect(after.memory).toEqual(before.memory);
    expect(after.interfaces.map((i) => ({ ...i, mac: undefined, paramsDevice: undefined }))).toEqual(
      before.interfaces.map((i) => ({ ...i, mac: undefined, paramsDevice: undefined })),
    );
    // Only name, uuid, MAC and the disk source differ, line by line.
    const removed = original.split('\n').filter((l) => !xml.split('\n').includes(l));
    for (const line of removed) expect(line).toMatch(/<name>|<uuid>|<mac |<source file=|<driver /);
  });

  it('drops disks that have no restored copy (not shared with the original) and says so', () => {
    const { xml, warnings } = rewriteDomainForRestore(sample('qemu-rich-inactive.xml'), {
      mode: 'new',
      name: 'rich-copy',
      disks: [
        { device: 'vda', path: '/p/a.qcow2', format: 'qcow2' },
        { device: 'vdb', path: '/p/b.qcow2', format: 'qcow2' },
      ],
    });
    const d = details(xml);
    const disks = d.disks.map((x) => `${x.device}:${x.deviceType}`);
    // Network, volume and block disks without a copy go; cdroms and the floppy stay.
    expect(disks).toEqual(['vda:disk', 'vdb:disk', 'sdc:cdrom', 'sdd:cdrom', 'fda:floppy']);
    expect(warnings.filter((w) => w.field?.startsWith('disks.')).map((w) => w.field)).toEqual([
      'disks.vdc',
      'disks.vdd',
      'disks.vde',
      'disks.vdf',
      'disks.sda',
      'disks.sdb',
    ]);
    expect(d.disks[1]).toMatchObject({ source: '/p/b.qcow2', format: 'qcow2', shareable: true });
    expect(d.diskSeclabels).toEqual([]);
    expect(d.interfaces.every((i) => i.mac === undefined)).toBe(true);
    expect(d.interfaces.find((i) => i.type === 'bridge')?.targetDev).toBeUndefined();
    // Metadata of hvkit and of other tools is kept as it was.
    expect(xml).toContain('<app1:bar spam="eggs">fizz</app1:bar>');
    expect(xml).toContain('<hvkit:tag>web tier</hvkit:tag>');
  });

  it('in place: only the disks change (name, uuid, MACs and labels stay)', () => {
    const original = sample('qemu-seclabel-static-norelabel-inactive.xml');
    const { xml, warnings } = rewriteDomainForRestore(original, {
      mode: 'in-place',
      disks: [{ device: 'vda', path: '/pool/hvkit-restore-r2-vda.qcow2', format: 'qcow2' }],
    });
    const before = parseDomainXmlDetails(original);
    const after = details(xml);
    expect(after.uuid).toBe(before.uuid);
    expect(after.name).toBe(before.name);
    expect(after.seclabels).toEqual(before.seclabels);
    expect(after.interfaces.map((i) => i.mac)).toEqual(before.interfaces.map((i) => i.mac));
    expect(after.disks[0]).toMatchObject({ source: '/pool/hvkit-restore-r2-vda.qcow2', format: 'qcow2' });
    expect(warnings).toEqual([]);
  });

  it('writes an incremental chain as <backingStore> layers ending in an empty one', () => {
    const { xml } = rewriteDomainForRestore(sample('qemu-guest1-inactive.xml'), {
      mode: 'new',
      name: 'chain',
      disks: [
        {
          device: 'vda',
          path: '/p/l2.qcow2',
          format: 'qcow2',
          backing: [
            { path: '/p/l1.qcow2', format: 'qcow2' },
            { path: '/p/l0.qcow2', format: 'qcow2' },
          ],
        },
      ],
    });
    // biome-ignore lint/suspicious/noExplicitAny: a parsed test document, read by known paths
    const disk = (parseXml(xml) as Record<string, any>).domain.devices.disk;
    expect(disk.source['@_file']).toBe('/p/l2.qcow2');
    expect(disk.backingStore.source['@_file']).toBe('/p/l1.qcow2');
    expect(disk.backingStore.format['@_type']).toBe('qcow2');
    expect(disk.backingStore.backingStore.source['@_file']).toBe('/p/l0.qcow2');
    expect(disk.backingStore.backingStore.backingStore).toBe('');
  });

  it('escapes the new name and paths', () => {
    const { xml } = rewriteDomainForRestore(sample('qemu-guest1-inactive.xml'), {
      mode: 'new',
      name: 'a<b>&"c\'',
      disks: [{ device: 'vda', path: "/p/x'y&.qcow2", format: 'qcow2' }],
    });
    const d = details(xml);
    expect(d.name).toBe('a<b>&"c\'');
    expect(d.disks[0]?.source).toBe("/p/x'y&.qcow2");
  });

  it('a restored disk missing from the definition, or a document that is not a domain: INVALID_ARGUMENT artifact-invalid', () => {
    const e = rejection(() =>
      rewriteDomainForRestore(sample('qemu-guest1-inactive.xml'), {
        mode: 'new',
        name: 'x',
        disks: [{ device: 'vdz', path: '/p/z', format: 'raw' }],
      }),
    );
    expect(e.code).toBe('INVALID_ARGUMENT');
    expect(e.details).toMatchObject({ reason: 'artifact-invalid', device: 'vdz' });
    expect(rejection(() => rewriteDomainForRestore('<network/>', { mode: 'in-place', disks: [] })).code).toBe(
      'PROTOCOL',
    );
    expect(rejection(() => rewriteDomainForRestore('<domain', { mode: 'in-place', disks: [] })).code).toBe(
      'PROTOCOL',
    );
  });

  it('misuse is a TypeError', () => {
    expect(() => rewriteDomainForRestore(SELINUX, { mode: 'new', disks: [] })).toThrow(TypeError);
    expect(() => rewriteDomainForRestore(SELINUX, { mode: 'x' as 'new', disks: [] })).toThrow(TypeError);
  });
});
