import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample } from './__samples__/load';
import { formatLibvirtVersion, type LibvirtNodeInfo, mapHost, parseCapabilitiesXml } from './host';

interface HostFacts {
  uri: string;
  type: string;
  version: string;
  libVersion: string;
  hostname: string;
  nodeInfo: Omit<LibvirtNodeInfo, 'memory'> & { memory: string };
  securityModel: { model: string; doi: string };
}

function facts(name: string): HostFacts {
  return JSON.parse(sample(name)) as HostFacts;
}

function nodeInfo(f: HostFacts): LibvirtNodeInfo {
  return { ...f.nodeInfo, memory: BigInt(f.nodeInfo.memory) };
}

describe('formatLibvirtVersion', () => {
  it.each([
    [9000000, '9.0.0'],
    [7002022, '7.2.22'],
    [2, '0.0.2'],
    [10010001, '10.10.1'],
    [0, '0.0.0'],
  ])('%d → %s', (n, s) => {
    expect(formatLibvirtVersion(n)).toBe(s);
    expect(formatLibvirtVersion(BigInt(n))).toBe(s);
  });
  it('rejects garbage', () => {
    expect(() => formatLibvirtVersion(-1)).toThrow(TypeError);
    expect(() => formatLibvirtVersion(1.5)).toThrow(TypeError);
  });
});

describe('parseCapabilitiesXml', () => {
  it('reads the QEMU host', () => {
    const caps = parseCapabilitiesXml(sample('qemu-capabilities.xml'));
    expect(caps.hostUuid).toBe('523be117-0a37-4e23-b27b-290eb6e0a454');
    expect(caps.cpu).toEqual({
      arch: 'x86_64',
      model: 'kvm64',
      vendor: 'AMD',
      sockets: 1,
      dies: 1,
      cores: 2,
      threads: 1,
    });
    expect(caps.memoryBytes).toBe(8874196 * 1024);
    expect(caps.topologyCpus).toBe(2);
    expect(caps.secmodels).toEqual([
      { model: 'none', doi: '0', baseLabels: [] },
      {
        model: 'dac',
        doi: '0',
        baseLabels: [
          { type: 'kvm', label: '+999:+994' },
          { type: 'qemu', label: '+999:+994' },
        ],
      },
    ]);
    const x86 = caps.guests.find((g) => g.arch === 'x86_64');
    expect(x86).toMatchObject({ osType: 'hvm', wordSize: 64, emulator: '/usr/bin/qemu-system-x86_64' });
    expect(x86?.domainTypes).toEqual(['qemu', 'kvm']);
    expect(x86?.machines).toContain('pc-q35-7.2');
    expect(caps.guests.find((g) => g.arch === 'i686')?.domainTypes).toEqual(['qemu', 'kvm']);
  });

  it('reads the test driver hosts', () => {
    const caps = parseCapabilitiesXml(sample('test-capabilities.xml'));
    expect(caps.hostUuid).toBeUndefined();
    expect(caps.cpu.arch).toBe('i686');
    expect(caps.secmodels).toEqual([{ model: 'testSecurity', doi: '', baseLabels: [] }]);
    expect(caps.guests.flatMap((g) => g.domainTypes)).toContain('test');
    expect(caps.memoryBytes).toBeGreaterThan(0);
    const node = parseCapabilitiesXml(sample('test-node-capabilities.xml'));
    expect(node.guests.length).toBeGreaterThan(0);
  });

  it('rejects other documents', () => {
    expect(() => parseCapabilitiesXml('<domain/>')).toThrow(HvkitError);
    expect(() => parseCapabilitiesXml('<capabilities>')).toThrow(HvkitError);
  });

  it('tolerates a minimal document', () => {
    expect(parseCapabilitiesXml('<capabilities/>')).toEqual({ cpu: {}, secmodels: [], guests: [] });
  });
});

describe('mapHost', () => {
  it('maps the QEMU host from real facts', () => {
    const f = facts('qemu-host-facts.json');
    const host = mapHost({
      hostname: f.hostname,
      capabilities: sample('qemu-capabilities.xml'),
      nodeInfo: nodeInfo(f),
      hypervisorType: f.type,
      hypervisorVersion: BigInt(f.version),
      libVersion: BigInt(f.libVersion),
      uri: f.uri,
      securityModel: f.securityModel,
    });
    expect(host).toEqual({
      id: '523be117-0a37-4e23-b27b-290eb6e0a454',
      name: 'vm',
      hypervisor: { kind: 'QEMU', version: '7.2.22', build: '9.0.0' },
      cpu: { model: 'kvm64', sockets: 1, cores: 2, threads: 1, mhz: 2445 },
      memoryBytes: 8874196 * 1024,
      securityModels: [
        { model: 'none', doi: '0' },
        { model: 'dac', doi: '0' },
      ],
    });
  });

  it('maps the test driver host: sockets per node × nodes, no spec security model', () => {
    const f = facts('test-host-facts.json');
    const host = mapHost({
      hostname: f.hostname,
      capabilities: parseCapabilitiesXml(sample('test-capabilities.xml')),
      nodeInfo: nodeInfo(f),
      hypervisorVersion: Number(f.version),
      libVersion: Number(f.libVersion),
      uri: 'test+unix:///default',
      securityModel: f.securityModel,
    });
    expect(host).toEqual({
      id: 'vm',
      name: 'vm',
      hypervisor: { kind: 'TEST', version: '0.0.2', build: '9.0.0' },
      cpu: { model: 'i686', sockets: 4, cores: 2, threads: 2, mhz: 1400 },
      memoryBytes: 3145728 * 1024,
      securityModels: [],
    });
    const node = facts('test-node-host-facts.json');
    expect(mapHost({ hostname: node.hostname, nodeInfo: nodeInfo(node) }).cpu).toEqual({
      model: 'hvkit-test-cpu',
      sockets: 2,
      cores: 4,
      threads: 2,
      mhz: 2400,
    });
  });

  it('falls back to the capabilities and the primary security model', () => {
    const host = mapHost({
      hostname: 'h',
      capabilities:
        '<capabilities><host><cpu><topology sockets="2" cores="8" threads="2"/></cpu></host></capabilities>',
      securityModel: { model: 'selinux', doi: '0' },
      libVersion: 9000000,
    });
    expect(host).toEqual({
      id: 'h',
      name: 'h',
      hypervisor: { kind: 'libvirt', version: '9.0.0', build: '9.0.0' },
      cpu: { sockets: 2, cores: 8, threads: 2 },
      securityModels: [{ model: 'selinux', doi: '0' }],
    });
    expect(() => mapHost({} as never)).toThrow(TypeError);
  });

  it('puts a known host enforcing state on SELinux and AppArmor only, never on DAC or none', () => {
    const capabilities =
      '<capabilities><host><secmodel><model>selinux</model><doi>0</doi></secmodel>' +
      '<secmodel><model>dac</model><doi>0</doi></secmodel><secmodel><model>none</model></secmodel></host></capabilities>';
    expect(
      mapHost({ hostname: 'h', capabilities, enforcing: { selinux: false, dac: true } as never })
        .securityModels,
    ).toEqual([
      { model: 'selinux', doi: '0', enforcing: false },
      { model: 'dac', doi: '0' },
      { model: 'none' },
    ]);
    expect(mapHost({ hostname: 'h', capabilities }).securityModels).toEqual([
      { model: 'selinux', doi: '0' },
      { model: 'dac', doi: '0' },
      { model: 'none' },
    ]);
    expect(
      mapHost({ hostname: 'h', securityModel: { model: 'apparmor' }, enforcing: { apparmor: true } })
        .securityModels,
    ).toEqual([{ model: 'apparmor', enforcing: true }]);
  });
});
