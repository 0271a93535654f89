import { HvkitError, POWER_STATES, parseXml } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { prng } from '../../../core/src/__test-utils__';
import { TYPED_PARAM } from '../protocol/types';
import { sample, samplesWithRoot } from './__samples__/load';
import {
  buildHvkitMetadataXml,
  diskCapacitiesFromStats,
  HVKIT_METADATA_NAMESPACE,
  LIBVIRT_DOMAIN_STATE,
  parseDomainXml,
  parseDomainXmlDetails,
  powerStateFromLibvirt,
} from './domain';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (error) {
    expect(HvkitError.isInstance(error, code as never)).toBe(true);
    return;
  }
  throw new Error(`expected ${code}`);
}

describe('powerStateFromLibvirt', () => {
  it('maps every libvirt domain state', () => {
    expect(powerStateFromLibvirt(LIBVIRT_DOMAIN_STATE.NOSTATE)).toBe('unknown');
    expect(powerStateFromLibvirt(LIBVIRT_DOMAIN_STATE.RUNNING)).toBe('running');
    expect(powerStateFromLibvirt(LIBVIRT_DOMAIN_STATE.BLOCKED)).toBe('running');
    expect(powerStateFromLibvirt(LIBVIRT_DOMAIN_STATE.PAUSED)).toBe('paused');
    expect(powerStateFromLibvirt(LIBVIRT_DOMAIN_STATE.SHUTDOWN)).toBe('running');
    expect(powerStateFromLibvirt(LIBVIRT_DOMAIN_STATE.SHUTOFF)).toBe('stopped');
    expect(powerStateFromLibvirt(LIBVIRT_DOMAIN_STATE.CRASHED)).toBe('crashed');
    expect(powerStateFromLibvirt(LIBVIRT_DOMAIN_STATE.PMSUSPENDED)).toBe('suspended');
    for (const odd of [8, -1, 99, Number.NaN]) expect(powerStateFromLibvirt(odd)).toBe('unknown');
  });
});

describe('parseDomainXml on the QEMU peer guest', () => {
  it('reads the live definition', () => {
    const g = parseDomainXml(sample('qemu-guest1-live.xml'), { powerState: 'running', hostId: 'h1' });
    expect(g).toEqual({
      id: '68766b69-7431-4000-8000-000000000001',
      uuid: '68766b69-7431-4000-8000-000000000001',
      name: 'hvkit-guest1',
      powerState: 'running',
      hostId: 'h1',
      vcpus: 2,
      // <memory unit='KiB'>131072</memory>
      memoryBytes: 134217728,
      disks: [
        {
          device: 'vda',
          backing: 'file',
          source: '/var/lib/libvirt/images/hvkit-guest1.qcow2',
          format: 'qcow2',
          readonly: false,
          shareable: false,
        },
      ],
      // Live XML shows a network NIC as type bridge with both the network and the bridge: the network wins.
      nics: [{ device: 'vnet1', mac: '52:54:00:68:76:01', network: 'hvkit-net', model: 'virtio' }],
      isTemplate: false,
      tags: [],
    });
  });

  it('names the NIC net0 in the inactive definition and defaults the power state', () => {
    const g = parseDomainXml(sample('qemu-guest1-inactive.xml'));
    expect(g.powerState).toBe('unknown');
    expect(g.hostId).toBeUndefined();
    expect(g.nics).toEqual([
      { device: 'net0', mac: '52:54:00:68:76:01', network: 'hvkit-net', model: 'virtio' },
    ]);
    expect(g.memoryBytes).toBe(131072 * 1024);
  });
});

describe('parseDomainXml on the rich definition', () => {
  const g = parseDomainXml(sample('qemu-rich-inactive.xml'));

  it('converts <memory unit=GiB> (stored by libvirt as KiB) and takes <vcpu> as the maximum', () => {
    expect(g.memoryBytes).toBe(1024 ** 3);
    expect(g.vcpus).toBe(4);
  });

  it('reads every disk kind in order', () => {
    expect(g.disks.map((d) => [d.device, d.backing, d.source, d.format, d.readonly, d.shareable])).toEqual([
      ['vda', 'file', '/var/lib/libvirt/images/hvkit-sample-rich-a.qcow2', 'qcow2', false, false],
      ['vdb', 'file', '/var/lib/libvirt/images/hvkit-sample-rich-b.img', 'raw', false, true],
      ['vdc', 'network', 'nbd://127.0.0.1:10809/export1', 'raw', false, false],
      ['vdd', 'network', 'rbd://10.0.0.1:6789/rbdpool/image1', 'raw', false, false],
      ['vde', 'network', 'http://images.example.com:80/images/base.qcow2', 'qcow2', true, false],
      ['vdf', 'volume', 'default/hvkit-sample-rich-vol.qcow2', 'qcow2', false, false],
      ['sda', 'block', '/dev/loop0', 'raw', true, false],
      [
        'sdb',
        'network',
        'iscsi://example.com:3260/iqn.2013-07.com.example:iscsi-nopool/1',
        'raw',
        false,
        false,
      ],
      ['sdc', 'file', '/var/lib/libvirt/images/hvkit-sample.iso', 'raw', true, false],
      ['sdd', 'file', undefined, 'raw', true, false],
      ['fda', 'file', '/var/lib/libvirt/images/hvkit-sample.img', 'raw', false, false],
    ]);
    for (const d of g.disks) expect(d.capacityBytes).toBeUndefined();
  });

  it('reads every NIC kind with VLANs and stable inactive names', () => {
    expect(g.nics).toEqual([
      { device: 'net0', mac: '52:54:00:5a:4d:01', network: 'default', model: 'virtio' },
      { device: 'hvkit-tap0', mac: '52:54:00:5a:4d:02', network: 'br-hvkit0', vlan: 42, model: 'e1000e' },
      { device: 'net2', mac: '52:54:00:5a:4d:03', model: 'rtl8139' },
      { device: 'net3', mac: '52:54:00:5a:4d:04', network: 'eth0', vlan: 100, model: 'virtio' },
    ]);
  });

  it('reads hvkit tags from metadata and ignores foreign namespaces', () => {
    expect(g.tags).toEqual(['prod', 'web tier']);
    expect(g.isTemplate).toBe(false);
  });
});

describe('parseDomainXmlDetails', () => {
  it('reads title, description, partition, type, vCPUs, memory, OS', () => {
    const d = parseDomainXmlDetails(sample('qemu-rich-inactive.xml'));
    expect(d.domainType).toBe('kvm');
    expect(d.live).toBe(false);
    expect(d.domainId).toBeUndefined();
    expect(d.title).toBe('hvkit sample: rich device set');
    expect(d.description).toBe(
      'Throwaway domain defined to capture libvirt XML with many device kinds & "quotes" <escaped>',
    );
    expect(d.resourcePartition).toBe('/machine');
    expect(d.vcpus).toEqual({ max: 4, current: 2 });
    expect(d.memory).toEqual({ maxBytes: 1073741824, currentBytes: 536870912 });
    expect(d.iothreads).toBe(2);
    expect(d.os).toEqual({ type: 'hvm', arch: 'x86_64', machine: 'pc-q35-7.2' });
    expect(d.metadataNamespaces).toEqual([
      HVKIT_METADATA_NAMESPACE,
      'http://app1.org/app1/',
      'http://libosinfo.org/xmlns/libvirt/domain/1.0',
    ]);
  });

  it('reads the tuning elements in libvirt units', () => {
    const d = parseDomainXmlDetails(sample('qemu-rich-inactive.xml'));
    expect(d.cputune).toEqual({
      shares: 2048n,
      period: 100000n,
      quota: 50000n,
      globalPeriod: 100000n,
      globalQuota: 150000n,
      emulatorPeriod: 100000n,
      emulatorQuota: 20000n,
      iothreadPeriod: 100000n,
      iothreadQuota: 30000n,
    });
    // <hard_limit unit='MiB'>1536</hard_limit> was stored by libvirt as 1572864 KiB.
    expect(d.memtune).toEqual({ hardLimitKib: 1572864n, softLimitKib: 786432n, swapHardLimitKib: 2097152n });
    expect(d.blkiotune).toEqual({
      weight: 500,
      devices: [
        {
          path: '/dev/loop0',
          weight: 300,
          readBytesSec: 10485760,
          writeBytesSec: 5242880,
          readIopsSec: 1000,
          writeIopsSec: 500,
        },
      ],
    });
    expect(d.disks[0]?.iotune).toEqual({
      readBytesSec: 20971520n,
      writeBytesSec: 10485760n,
      readIopsSec: 2000n,
      writeIopsSec: 1000n,
    });
    expect(d.interfaces[0]?.bandwidth).toEqual({
      inboundAverage: 1000,
      inboundPeak: 5000,
      inboundBurst: 1024,
      outboundAverage: 128,
      outboundPeak: 256,
      outboundBurst: 256,
    });
  });

  it('maps the definition to ResourceLimits (cgroup v1)', () => {
    const d = parseDomainXmlDetails(sample('qemu-rich-inactive.xml'), { cgroupVersion: 1 });
    expect(d.limits.cpu).toEqual({ weight: 200, maxCores: 1.5 });
    expect(d.limits.memory).toEqual({
      maxBytes: 1536 * 1024 ** 2,
      softBytes: 768 * 1024 ** 2,
      // v1: swap_hard_limit (2 GiB) is memory + swap.
      swapMaxBytes: 512 * 1024 ** 2,
    });
    expect(d.limits.disks?.[0]).toEqual({
      device: 'vda',
      readBytesPerSec: 20971520,
      writeBytesPerSec: 10485760,
      readIops: 2000,
      writeIops: 1000,
    });
    // vdb has total_* limits: reported as each direction's bound.
    expect(d.limits.disks?.[1]).toEqual({
      device: 'vdb',
      readBytesPerSec: 31457280,
      writeBytesPerSec: 31457280,
      readIops: 3000,
      writeIops: 3000,
    });
    expect(d.limits.disks).toHaveLength(11);
    expect(d.limits.nics?.[0]).toEqual({
      device: 'net0',
      inboundAverageBytesPerSec: 1000 * 1024,
      inboundPeakBytesPerSec: 5000 * 1024,
      inboundBurstBytes: 1024 * 1024,
      outboundAverageBytesPerSec: 128 * 1024,
      outboundPeakBytesPerSec: 256 * 1024,
      outboundBurstBytes: 256 * 1024,
    });
    expect(d.limits.nics?.[3]?.inboundAverageBytesPerSec).toBe(2048 * 1024);
    expect(d.limits.nics?.[1]?.inboundAverageBytesPerSec).toBeNull();
  });

  it('uses the cgroup v2 meanings when told', () => {
    const d = parseDomainXmlDetails(sample('qemu-rich-inactive.xml'), { cgroupVersion: 2 });
    expect(d.limits.cpu?.weight).toBe(2048);
    expect(d.limits.memory?.swapMaxBytes).toBe(2 * 1024 ** 3);
  });

  it('reports unset tuning as null in a plain definition', () => {
    const d = parseDomainXmlDetails(sample('qemu-guest1-inactive.xml'));
    expect(d.limits.cpu).toEqual({ weight: null, maxCores: null });
    expect(d.limits.memory).toEqual({ maxBytes: null, softBytes: null, swapMaxBytes: null });
    expect(d.limits.disks).toEqual([
      { device: 'vda', readBytesPerSec: null, writeBytesPerSec: null, readIops: null, writeIops: null },
    ]);
  });

  it('marks live XML, its domain id and NIC parameter keys', () => {
    const d = parseDomainXmlDetails(sample('qemu-live-rich-live.xml'));
    expect(d.live).toBe(true);
    expect(d.domainId).toBe(6);
    expect(d.interfaces.map((n) => [n.device, n.paramsDevice, n.type, n.alias])).toEqual([
      ['vnet4', 'vnet4', 'bridge', 'net0'],
      ['net1', '52:54:00:5a:4d:11', 'user', 'net1'],
    ]);
    expect(d.interfaces[0]).toMatchObject({ network: 'hvkit-net', bridge: 'hvkitbr0' });
    expect(d.disks.map((x) => [x.device, x.deviceType, x.bus, x.alias])).toEqual([
      ['vda', 'disk', 'virtio', 'virtio-disk0'],
      ['vdb', 'disk', 'virtio', 'virtio-disk1'],
      ['hdc', 'cdrom', 'ide', 'ide0-1-0'],
    ]);
    const inactive = parseDomainXmlDetails(sample('qemu-live-rich-inactive.xml'));
    expect(inactive.interfaces.map((n) => [n.device, n.paramsDevice])).toEqual([
      ['net0', '52:54:00:5a:4d:10'],
      ['net1', '52:54:00:5a:4d:11'],
    ]);
  });

  it('reads the VLAN trunk, direct mode and per-disk labels', () => {
    const d = parseDomainXmlDetails(sample('qemu-rich-inactive.xml'));
    expect(d.interfaces[1]).toMatchObject({ type: 'bridge', vlanTags: [42, 47], vlanTrunk: true });
    expect(d.interfaces[3]).toMatchObject({ type: 'direct', sourceDev: 'eth0', sourceMode: 'vepa' });
    expect(d.diskSeclabels).toEqual([
      { disk: 'vda', model: 'dac', relabel: false },
      { disk: 'vdb', model: 'dac', relabel: true, label: '+0:+0' },
    ]);
    expect(d.seclabels).toEqual([{ model: 'dac', type: 'dynamic', relabel: true, source: 'config' }]);
  });

  it('rejects a bad cgroupVersion with a TypeError', () => {
    expect(() =>
      parseDomainXmlDetails(sample('qemu-guest1-live.xml'), { cgroupVersion: 3 as never }),
    ).toThrow(TypeError);
  });
});

describe('test driver domains', () => {
  it('reads the default test domain', () => {
    const g = parseDomainXml(sample('test-default-test-live.xml'), { powerState: 'running' });
    expect(g).toMatchObject({
      id: '6695eb01-f6a4-8304-79aa-97f2502e193f',
      name: 'test',
      vcpus: 2,
      memoryBytes: 8 * 1024 ** 3,
      disks: [
        { device: 'vda', backing: 'file', source: '/guest/diskimage1', readonly: false, shareable: false },
      ],
      nics: [{ device: 'testnet0', mac: 'aa:bb:cc:dd:ee:ff', network: 'default' }],
    });
    // No <driver type>: libvirt's default for a disk that is not a pool volume is raw (what the QEMU
    // driver writes into the definition; the test driver leaves the attribute out).
    expect(g.disks[0]?.format).toBe('raw');
    expect(parseDomainXmlDetails(sample('test-default-test-live.xml')).disks[0]?.format).toBeUndefined();
    expect(parseDomainXmlDetails(sample('test-default-test-live.xml')).domainType).toBe('test');
  });

  it('reads the test-node domains', () => {
    const g = parseDomainXml(sample('test-node-0004-inactive.xml'));
    expect(g.uuid).toBe('68766b69-0000-4000-8000-000000000004');
    // The test driver keeps the target dev in inactive XML.
    expect(g.nics[0]?.device).toBe('testnet0');
    expect(parseDomainXml(sample('test-node-0001-live.xml')).memoryBytes).toBe(262144 * 1024);
  });
});

describe('disk capacity and format', () => {
  const xml = `<domain type='test'><name>d</name><uuid>5a1e0000-0000-4000-8000-000000000001</uuid>
    <devices>
      <disk type='file' device='disk'><source file='/p/a.img'/><target dev='vda'/></disk>
      <disk type='volume' device='disk'><source pool='p' volume='b.img'/><target dev='vdb'/></disk>
      <disk type='file' device='cdrom'><driver name='qemu' type='raw'/><target dev='sda'/></disk>
    </devices></domain>`;

  it('reads capacities from CONNECT_GET_ALL_DOMAIN_STATS block fields (QEMU, hvkit-guest1 as measured)', () => {
    const params = [
      { field: 'state.state', type: TYPED_PARAM.INT, value: 1 },
      { field: 'block.count', type: TYPED_PARAM.UINT, value: 2 },
      { field: 'block.0.name', type: TYPED_PARAM.STRING, value: 'vda' },
      {
        field: 'block.0.path',
        type: TYPED_PARAM.STRING,
        value: '/var/lib/libvirt/images/hvkit-guest1.qcow2',
      },
      { field: 'block.0.backingIndex', type: TYPED_PARAM.UINT, value: 1 },
      { field: 'block.0.allocation', type: TYPED_PARAM.ULLONG, value: 0n },
      { field: 'block.0.capacity', type: TYPED_PARAM.ULLONG, value: 67108864n },
      { field: 'block.0.physical', type: TYPED_PARAM.ULLONG, value: 204800n },
      // A disk without a capacity (an empty cdrom) and a capacity too large for a number are left out.
      { field: 'block.1.name', type: TYPED_PARAM.STRING, value: 'sda' },
      { field: 'block.2.name', type: TYPED_PARAM.STRING, value: 'vdz' },
      { field: 'block.2.capacity', type: TYPED_PARAM.ULLONG, value: 2n ** 60n },
    ];
    expect(diskCapacitiesFromStats(params)).toEqual(new Map([['vda', 67108864]]));
    expect(diskCapacitiesFromStats([])).toEqual(new Map());
  });

  it('puts the capacities on the disks they name; a volume disk without <driver type> has no format', () => {
    const g = parseDomainXml(xml, { diskCapacities: new Map([['vdb', 25165824]]) });
    expect(g.disks).toEqual([
      {
        device: 'vda',
        backing: 'file',
        source: '/p/a.img',
        format: 'raw',
        readonly: false,
        shareable: false,
      },
      {
        device: 'vdb',
        backing: 'volume',
        source: 'p/b.img',
        capacityBytes: 25165824,
        readonly: false,
        shareable: false,
      },
      { device: 'sda', backing: 'file', format: 'raw', readonly: false, shareable: false },
    ]);
  });
});

describe('units of <memory>', () => {
  const wrap = (memory: string) =>
    `<domain type='kvm'><name>u</name><uuid>68766B69-0000-4000-8000-0000000000AA</uuid>${memory}</domain>`;
  it.each([
    ["<memory unit='KiB'>131072</memory>", 134217728],
    ['<memory>131072</memory>', 134217728],
    ["<memory unit='b'>4096</memory>", 4096],
    ["<memory unit='bytes'>4096</memory>", 4096],
    ["<memory unit='k'>2</memory>", 2048],
    ["<memory unit='KB'>2</memory>", 2000],
    ["<memory unit='M'>3</memory>", 3 * 1024 ** 2],
    ["<memory unit='MiB'>3</memory>", 3 * 1024 ** 2],
    ["<memory unit='MB'>3</memory>", 3_000_000],
    ["<memory unit='G'>2</memory>", 2 * 1024 ** 3],
    ["<memory unit='GiB'>2</memory>", 2 * 1024 ** 3],
    ["<memory unit='GB'>2</memory>", 2_000_000_000],
    ["<memory unit='TiB'>1</memory>", 1024 ** 4],
    ["<memory unit='gib'>1</memory>", 1024 ** 3],
  ])('%s → %d bytes', (memory, bytes) => {
    expect(parseDomainXml(wrap(memory)).memoryBytes).toBe(bytes);
  });

  it('lower-cases and dashes UUIDs', () => {
    expect(parseDomainXml(wrap('')).uuid).toBe('68766b69-0000-4000-8000-0000000000aa');
    const plain = '<domain><name>u</name><uuid>68766B6900004000800000000000AAAA</uuid></domain>';
    expect(parseDomainXml(plain).id).toBe('68766b69-0000-4000-8000-00000000aaaa');
  });

  it('falls back to 0 bytes and 1 vCPU on garbage instead of throwing', () => {
    const g = parseDomainXml(wrap("<memory unit='parsecs'>12</memory><vcpu>many</vcpu>"));
    expect(g.memoryBytes).toBe(0);
    expect(g.vcpus).toBe(1);
  });
});

describe('errors', () => {
  it('rejects what is not a domain', () => {
    expectCode(() => parseDomainXml('<network><name>x</name></network>'), 'PROTOCOL');
    expectCode(() => parseDomainXml('<domain><name>x</name>'), 'PROTOCOL');
    expectCode(() => parseDomainXml('<domain><name>x</name></domain>'), 'PROTOCOL');
    expectCode(() => parseDomainXml('<!DOCTYPE d [<!ENTITY e "x">]><domain/>'), 'PROTOCOL');
    expect(() => parseDomainXml(42 as unknown as string)).toThrow(TypeError);
  });
});

describe('hvkit metadata', () => {
  it('builds the metadata element and reads it back when libvirt stores it under another prefix', () => {
    const xml = buildHvkitMetadataXml([' prod ', 'web', 'prod', 'a&b <c>']);
    expect(xml).toBe(
      `<hvkit:guest xmlns:hvkit="${HVKIT_METADATA_NAMESPACE}"><hvkit:tag>prod</hvkit:tag><hvkit:tag>web</hvkit:tag><hvkit:tag>a&amp;b &lt;c&gt;</hvkit:tag></hvkit:guest>`,
    );
    const renamed = xml.replace(/hvkit:/g, 'x:').replace('xmlns:hvkit', 'xmlns:x');
    const domain = `<domain><name>m</name><uuid>68766b69-0000-4000-8000-000000000001</uuid><metadata>${renamed}</metadata></domain>`;
    expect(parseDomainXml(domain).tags).toEqual(['prod', 'web', 'a&b <c>']);
  });

  it('ignores tags of other namespaces and resolves a default namespace', () => {
    const domain = `<domain><name>m</name><uuid>68766b69-0000-4000-8000-000000000001</uuid><metadata>
      <other:guest xmlns:other="urn:other"><other:tag>no</other:tag></other:guest>
      <guest xmlns="${HVKIT_METADATA_NAMESPACE}"><tag>yes</tag></guest>
    </metadata></domain>`;
    expect(parseDomainXml(domain).tags).toEqual(['yes']);
  });

  it('rejects bad tags', () => {
    expectCode(() => buildHvkitMetadataXml(['']), 'INVALID_ARGUMENT');
    expectCode(() => buildHvkitMetadataXml(['a\u0001']), 'INVALID_ARGUMENT');
    expectCode(() => buildHvkitMetadataXml(['x'.repeat(257)]), 'INVALID_ARGUMENT');
    expect(() => buildHvkitMetadataXml('prod' as unknown as string[])).toThrow(TypeError);
  });
});

// ---------------------------------------------------------------------------------------------------------
// Tolerance: libvirt may emit (or a newer libvirt may add) elements and attributes this code does not know.

const DOMAIN_SAMPLES = samplesWithRoot('domain');

const INSERTIONS = [
  '<hvkitUnknownElement a="1"><deeper x="y">text</deeper></hvkitUnknownElement>',
  '<foo:bar xmlns:foo="urn:foo" foo:attr="1"><foo:baz/></foo:bar>',
  '<!-- a comment -->',
  '<![CDATA[ raw <text> ]]>',
  '<disk/>',
  '<interface/>',
  '<seclabel/>',
  '<source/>',
  '<target/>',
  '<vlan><tag id="notanumber"/></vlan>',
  '<memory unit="ZiB">1</memory>',
  '<bandwidth><inbound average="-5"/></bandwidth>',
  '<iotune><read_bytes_sec>lots</read_bytes_sec></iotune>',
  '<metadata><x:y xmlns:x="urn:x"/></metadata>',
];

/** Inserts unknown elements after random start tags and unknown attributes into random start tags. */
function mutate(xml: string, random: () => number): string {
  const tags = [...xml.matchAll(/<([A-Za-z_][\w:.-]*)([^<>]*?)(\/?)>/g)];
  let out = xml;
  for (let k = 0; k < 6; k++) {
    const m = tags[Math.floor(random() * tags.length)];
    if (!m || m.index === undefined) continue;
    const at = out.indexOf(m[0]);
    if (at === -1) continue;
    const isRoot = at === out.search(/<[A-Za-z]/);
    // Elements go only into element content (a start tag followed by a line break or a tag), never into text.
    const afterTag = out.slice(at + m[0].length).trimStart();
    const elementContent = m[3] !== '/' && afterTag.startsWith('<') && !afterTag.startsWith('</');
    if (random() < 0.5 || !elementContent || isRoot) {
      // An unknown attribute, possibly namespaced (declared on the same element).
      const attr =
        random() < 0.5 ? ` hvkitUnknown${k}="v&amp;${k}"` : ` xmlns:u${k}="urn:u${k}" u${k}:flag="yes"`;
      const insertAt = at + m[0].length - (m[3] === '/' ? 2 : 1);
      out = out.slice(0, insertAt) + attr + out.slice(insertAt);
    } else {
      const piece = INSERTIONS[Math.floor(random() * INSERTIONS.length)] as string;
      const insertAt = at + m[0].length;
      out = out.slice(0, insertAt) + piece + out.slice(insertAt);
    }
  }
  return out;
}

function checkGuest(xml: string): void {
  const g = parseDomainXml(xml);
  expect(g.id).toMatch(UUID);
  expect(g.uuid).toBe(g.id);
  expect(typeof g.name).toBe('string');
  expect(g.name.length).toBeGreaterThan(0);
  expect(POWER_STATES).toContain(g.powerState);
  expect(Number.isSafeInteger(g.vcpus) && g.vcpus >= 1).toBe(true);
  expect(Number.isSafeInteger(g.memoryBytes) && g.memoryBytes >= 0).toBe(true);
  for (const d of g.disks) {
    expect(typeof d.device).toBe('string');
    expect(['file', 'block', 'network', 'volume', 'other']).toContain(d.backing);
  }
  const devices = new Set(g.nics.map((n) => n.device));
  expect(devices.size).toBe(g.nics.length);
  for (const n of g.nics) {
    if (n.vlan !== undefined) expect(Number.isInteger(n.vlan) && n.vlan >= 0 && n.vlan <= 4095).toBe(true);
  }
  const details = parseDomainXmlDetails(xml);
  expect(details.uuid).toBe(g.uuid);
  for (const v of Object.values(details.limits.cpu ?? {})) {
    if (v !== null) expect(Number.isFinite(v)).toBe(true);
  }
}

describe('tolerance', () => {
  it('has domain samples from both drivers, live and inactive', () => {
    expect(DOMAIN_SAMPLES.length).toBeGreaterThanOrEqual(14);
    expect(DOMAIN_SAMPLES.some((f) => f.startsWith('test-'))).toBe(true);
    expect(DOMAIN_SAMPLES.some((f) => f.endsWith('-live.xml'))).toBe(true);
    expect(DOMAIN_SAMPLES.some((f) => f.endsWith('-inactive.xml'))).toBe(true);
  });

  it.each(DOMAIN_SAMPLES)('parses %s into a well-formed guest', (file) => {
    checkGuest(sample(file));
  });

  it.each(DOMAIN_SAMPLES)('never throws on mutated copies of %s', (file) => {
    const xml = sample(file);
    const random = prng(file.length * 7919);
    for (let i = 0; i < 25; i++) {
      const mutated = mutate(xml, random);
      // The mutation must keep the document well-formed, or the test would prove nothing.
      parseXml(mutated);
      checkGuest(mutated);
    }
  });

  it('ignores unknown elements where known ones are expected', () => {
    const xml = sample('qemu-rich-inactive.xml')
      .replace('<devices>', '<devices><future-device kind="x"><source file="/x"/></future-device>')
      .replace("<disk type='file' device='disk'>", "<disk type='file' device='disk' newattr='1'><future/>")
      .replace('<metadata>', '<metadata><z:deep xmlns:z="urn:z"><z:tag>not hvkit</z:tag></z:deep>');
    const g = parseDomainXml(xml);
    expect(g.disks).toHaveLength(11);
    expect(g.tags).toEqual(['prod', 'web tier']);
  });

  it('copes with devices given once (not as arrays) and empty <devices/>', () => {
    const base = "<domain type='kvm'><name>x</name><uuid>68766b69-0000-4000-8000-000000000001</uuid>";
    expect(parseDomainXml(`${base}<devices/></domain>`).disks).toEqual([]);
    const one = parseDomainXml(
      `${base}<devices><disk><target dev='vdz'/></disk><interface type='user'/></devices></domain>`,
    );
    expect(one.disks).toEqual([
      { device: 'vdz', backing: 'file', format: 'raw', readonly: false, shareable: false },
    ]);
    expect(one.nics).toEqual([{ device: 'net0' }]);
    const twice = parseDomainXml(
      `${base}<vcpu>3</vcpu><vcpu>5</vcpu><devices><disk/><disk/></devices></domain>`,
    );
    expect(twice.vcpus).toBe(3);
    expect(twice.disks.map((d) => d.device)).toEqual(['disk0', 'disk1']);
  });
});
