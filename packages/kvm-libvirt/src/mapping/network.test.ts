import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample, samplesWithRoot } from './__samples__/load';
import { parseNetworkXml, parseNetworkXmlDetails } from './network';
import { parsePoolXml, parseVolumeXml } from './storage';

describe('parseNetworkXml', () => {
  it('reads the peer network', () => {
    expect(parseNetworkXml(sample('qemu-net-hvkit-net.xml'), { active: true })).toEqual({
      id: '8528a412-236a-4619-9e5b-505bb730a0ca',
      name: 'hvkit-net',
      bridge: 'hvkitbr0',
      active: true,
    });
    expect(parseNetworkXmlDetails(sample('qemu-net-hvkit-net-inactive.xml')).forwardMode).toBe('bridge');
  });

  it('reads VLANs and port groups of an OVS network', () => {
    const net = parseNetworkXml(sample('qemu-net-ovs-vlan-portgroups.xml'));
    expect(net).toEqual({
      id: '68766b69-5a4d-4000-8000-00000000d001',
      name: 'hvkit-sample-ovs',
      bridge: 'ovsbr-hvkit',
      vlan: 42,
    });
    const d = parseNetworkXmlDetails(sample('qemu-net-ovs-vlan-portgroups.xml'));
    expect(d).toMatchObject({
      forwardMode: 'bridge',
      virtualPortType: 'openvswitch',
      vlanTags: [42, 43],
      vlanTrunk: true,
    });
    expect(d.portgroups).toEqual([
      { name: 'prod', isDefault: true, vlanTags: [100], vlanTrunk: false, bandwidth: {} },
      {
        name: 'dmz',
        isDefault: false,
        vlanTags: [200],
        vlanTrunk: false,
        bandwidth: { inboundAverage: 1000 },
      },
      { name: 'untagged', isDefault: false, vlanTags: [], vlanTrunk: false, bandwidth: {} },
    ]);
  });

  it('reads a NAT network with addresses and bandwidth', () => {
    const d = parseNetworkXmlDetails(sample('qemu-net-nat.xml'));
    expect(d).toMatchObject({
      forwardMode: 'nat',
      bridge: 'virbr-hvkit',
      mac: '52:54:00:aa:bb:cc',
      dnsDomain: 'hvkit.test',
      addresses: ['192.168.199.1/24', 'fd00:1::1/64'],
      bandwidth: { inboundAverage: 10000, outboundAverage: 10000 },
    });
    expect(parseNetworkXml(sample('qemu-net-nat.xml')).vlan).toBeUndefined();
  });

  it('reads a macvtap pool and the test driver network', () => {
    const d = parseNetworkXmlDetails(sample('qemu-net-macvtap-private.xml'));
    expect(d.forwardMode).toBe('private');
    expect(d.forwardDevices).toEqual(['eth0', 'eth1']);
    expect(parseNetworkXml(sample('qemu-net-macvtap-private.xml')).bridge).toBeUndefined();
    expect(parseNetworkXml(sample('test-net-default.xml'), { active: false })).toEqual({
      id: 'dd8fe884-6c02-601e-7551-cca97df1c5df',
      name: 'default',
      bridge: 'virbr0',
      active: false,
    });
  });

  it('parses every network sample and treats <forward/> as nat', () => {
    for (const f of samplesWithRoot('network'))
      expect(parseNetworkXml(sample(f)).id).toMatch(/^[0-9a-f-]{36}$/);
    const d = parseNetworkXmlDetails(
      '<network><name>n</name><uuid>68766b69-0000-4000-8000-ffff00000001</uuid><forward/><vlan><tag id="9999"/><tag id="7"/></vlan></network>',
    );
    expect(d.forwardMode).toBe('nat');
    expect(d.vlanTags).toEqual([7]);
    expect(() => parseNetworkXml('<network><name>n</name></network>')).toThrow(HvkitError);
  });
});

describe('parsePoolXml', () => {
  it('reads an active dir pool in bytes', () => {
    expect(parsePoolXml(sample('qemu-pool-default.xml'), { active: true })).toEqual({
      id: '97d1eb70-5e8e-447f-8083-15b3c2066a2e',
      name: 'default',
      type: 'dir',
      capacityBytes: 270553174016,
      allocationBytes: 26105802752,
      availableBytes: 244447371264,
      path: '/var/lib/libvirt/images',
      active: true,
    });
    expect(parsePoolXml(sample('test-pool-default.xml'))).toMatchObject({
      type: 'dir',
      capacityBytes: 107374182400,
      path: '/default-pool',
    });
  });

  it('leaves out the meaningless sizes of inactive pools', () => {
    expect(parsePoolXml(sample('qemu-pool-netfs-inactive.xml'), { active: false })).toEqual({
      id: 'd1093bfb-b9f5-4410-b7ef-894b11e71510',
      name: 'hvkit-sample-nfs',
      type: 'netfs',
      path: '/mnt/hvkit-sample-nfs',
      active: false,
    });
    expect(parsePoolXml(sample('qemu-pool-logical-inactive.xml'), { active: false }).type).toBe('logical');
    expect(parsePoolXml(sample('qemu-pool-iscsi-inactive.xml')).capacityBytes).toBe(0);
  });

  it('converts other units', () => {
    const xml = `<pool type='dir'><name>p</name><uuid>68766b69-0000-4000-8000-ffff00000001</uuid>
      <capacity unit='GiB'>2</capacity><allocation unit='KiB'>3</allocation><available>5</available></pool>`;
    expect(parsePoolXml(xml)).toMatchObject({
      capacityBytes: 2 * 1024 ** 3,
      allocationBytes: 3072,
      availableBytes: 5,
    });
  });
});

describe('parseVolumeXml', () => {
  it('reads volumes of both drivers', () => {
    expect(parseVolumeXml(sample('qemu-vol-qcow2.xml'), { poolId: 'p1' })).toEqual({
      id: '/var/lib/libvirt/images/hvkit-sample-vol.qcow2',
      name: 'hvkit-sample-vol.qcow2',
      poolId: 'p1',
      path: '/var/lib/libvirt/images/hvkit-sample-vol.qcow2',
      capacityBytes: 104857600,
      allocationBytes: 200704,
      format: 'qcow2',
    });
    expect(parseVolumeXml(sample('qemu-vol-guest1.xml'), { poolId: 'p1' })).toMatchObject({
      name: 'hvkit-guest1.qcow2',
      capacityBytes: 67108864,
      format: 'qcow2',
    });
    expect(parseVolumeXml(sample('test-vol.xml'), { poolId: 'tp' })).toEqual({
      id: '/default-pool/hvkit-sample-tvol.img',
      name: 'hvkit-sample-tvol.img',
      poolId: 'tp',
      path: '/default-pool/hvkit-sample-tvol.img',
      capacityBytes: 10485760,
      allocationBytes: 10485760,
      format: 'raw',
    });
  });

  it('needs a pool id and a volume document', () => {
    expect(() => parseVolumeXml(sample('test-vol.xml'), undefined as never)).toThrow(TypeError);
    expect(() => parseVolumeXml('<pool/>', { poolId: 'x' })).toThrow(HvkitError);
    expect(() => parseVolumeXml('<volume><key>k</key></volume>', { poolId: 'x' })).toThrow(HvkitError);
  });
});
