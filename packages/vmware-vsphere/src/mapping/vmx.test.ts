import { describe, expect, it } from 'vitest';
import { parseVmConfig, vmConfigOf } from './vm-config';
import { parseVmx, rewriteVmdkExtent, rewriteVmxForNewVm } from './vmx';

const VMX = `.encoding = "UTF-8"
config.version = "8"
displayName = "web-01"
uuid.bios = "56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc"
uuid.location = "56 4d 12 34 56 78 9a bc-de f0 12 34 56 78 9a bc"
vc.uuid = "52 11 22 33 44 55 66 77-88 99 aa bb cc dd ee ff"
numvcpus = "2"
memSize = "2048"
scsi0:0.present = "TRUE"
scsi0:0.fileName = "web-01.vmdk"
ethernet0.present = "TRUE"
ethernet0.networkName = "VM Network"
ethernet0.addressType = "vpx"
ethernet0.generatedAddress = "00:50:56:aa:bb:cc"
ethernet1.addressType = "static"
ethernet1.address = "00:50:56:00:00:01"
nvram = "web-01.nvram"
annotation = "a |22quoted|22 note"
# a comment
`;

describe('.vmx rewrite for a new VM', () => {
  const out = rewriteVmxForNewVm(VMX, {
    displayName: 'web-01-restored',
    disks: new Map([['scsi0:0', 'disk-scsi0-0.vmdk']]),
  });
  const entries = new Map(parseVmx(out).map((e) => [e.key, e.value]));

  it('gives the new name and NVRAM file, and keeps the hardware', () => {
    expect(entries.get('displayName')).toBe('web-01-restored');
    expect(entries.get('nvram')).toBe('web-01-restored.nvram');
    expect(entries.get('numvcpus')).toBe('2');
    expect(entries.get('memSize')).toBe('2048');
    expect(entries.get('ethernet0.networkName')).toBe('VM Network');
    expect(entries.get('annotation')).toBe('a "quoted" note');
    expect(out).toContain('# a comment');
  });

  it('drops the identity (uuid.bios, uuid.location, vc.uuid) so ESXi generates new ones', () => {
    for (const key of ['uuid.bios', 'uuid.location', 'vc.uuid']) expect(entries.has(key)).toBe(false);
  });

  it('gives every NIC a generated address, dropping the old MACs (static ones too)', () => {
    expect(entries.get('ethernet0.addressType')).toBe('generated');
    expect(entries.get('ethernet1.addressType')).toBe('generated');
    expect(entries.has('ethernet0.generatedAddress')).toBe(false);
    expect(entries.has('ethernet1.address')).toBe(false);
  });

  it('points each disk at its restored file', () => {
    expect(entries.get('scsi0:0.fileName')).toBe('disk-scsi0-0.vmdk');
    expect(out.match(/scsi0:0\.fileName/g)).toHaveLength(1);
  });

  it('writes a new VM from an empty .vmx (vcsim keeps them empty)', () => {
    const fresh = new Map(
      parseVmx(
        rewriteVmxForNewVm('', { displayName: 'n', disks: new Map([['ide0:1', 'disk-ide0-1.vmdk']]) }),
      ).map((e) => [e.key, e.value]),
    );
    expect(Object.fromEntries(fresh)).toEqual({
      displayName: 'n',
      nvram: 'n.nvram',
      'ide0:1.fileName': 'disk-ide0-1.vmdk',
      'ide0:1.present': 'TRUE',
    });
  });

  it('escapes quotes and control characters in the values it writes', () => {
    const text = rewriteVmxForNewVm('', { displayName: 'a"b|c\nd', disks: new Map() });
    expect(text).toContain('displayName = "a|22b|7Cc|0Ad"');
    expect(parseVmx(text)[0]?.value).toBe('a"b|c\nd');
  });
});

describe('VMDK descriptor extent rewrite', () => {
  const descriptor = `# Disk DescriptorFile
version=1
CID=fffffffe
createType="vmfs"

# Extent description
RW 2097152 VMFS "web-01-flat.vmdk"

ddb.virtualHWVersion = "13"
`;
  it('points the single extent at the new name', () => {
    const out = new TextDecoder().decode(
      rewriteVmdkExtent(new TextEncoder().encode(descriptor), 'disk-scsi0-0-flat.vmdk'),
    );
    expect(out).toContain('RW 2097152 VMFS "disk-scsi0-0-flat.vmdk"');
    expect(out).not.toContain('web-01-flat.vmdk');
  });
  it('leaves empty placeholders, binary files and multi-extent descriptors alone', () => {
    expect(rewriteVmdkExtent(new Uint8Array(), 'x')).toBeUndefined();
    expect(rewriteVmdkExtent(new Uint8Array([0x4b, 0x44, 0x4d, 0x56, 0xff, 0xfe]), 'x')).toBeUndefined();
    const two = descriptor.replace(
      'RW 2097152 VMFS "web-01-flat.vmdk"',
      'RW 1 VMFS "a-flat.vmdk"\nRW 1 VMFS "b-flat.vmdk"',
    );
    expect(rewriteVmdkExtent(new TextEncoder().encode(two), 'x')).toBeUndefined();
  });
});

describe('vm-config.json', () => {
  const props = {
    name: 'web-01',
    'config.hardware.numCPU': 2,
    'config.hardware.memoryMB': 2048,
    'config.files.vmPathName': '[ds1] web-01/web-01.vmx',
    'config.guestId': 'otherGuest',
    parent: { type: 'Folder', value: 'group-v3' },
    'config.hardware.device': [
      { _type: 'VirtualLsiLogicController', key: 1000, busNumber: 0, sharedBus: 'noSharing' },
      {
        _type: 'VirtualDisk',
        key: 2000,
        controllerKey: 1000,
        unitNumber: 0,
        capacityInKB: 1024,
        backing: {
          _type: 'VirtualDiskFlatVer2BackingInfo',
          fileName: '[ds1] web-01/web-01.vmdk',
          thinProvisioned: true,
        },
      },
      {
        _type: 'VirtualE1000',
        key: 4000,
        macAddress: '00:0C:29:AA:BB:CC',
        deviceInfo: { _type: 'Description', label: 'Network adapter 1' },
        backing: { _type: 'VirtualEthernetCardNetworkBackingInfo', deviceName: 'VM Network' },
      },
    ],
  };
  it('keeps what a restore needs and round-trips through JSON', () => {
    const config = vmConfigOf(props);
    expect(config).toMatchObject({
      name: 'web-01',
      numCPU: 2,
      memoryMB: 2048,
      guestId: 'otherGuest',
      folder: { type: 'Folder', value: 'group-v3' },
      disks: [
        {
          device: 'scsi0:0',
          capacityBytes: 1024 * 1024,
          datastore: 'ds1',
          thinProvisioned: true,
          controllerKey: 1000,
        },
      ],
      nics: [
        {
          device: 'Network adapter 1',
          type: 'VirtualE1000',
          network: 'VM Network',
          macAddress: '00:0c:29:aa:bb:cc',
        },
      ],
      controllers: [{ key: 1000, type: 'VirtualLsiLogicController', busNumber: 0 }],
    });
    const bytes = new TextEncoder().encode(JSON.stringify(config));
    expect(parseVmConfig(bytes, 'a/vm-config.json')).toEqual(config);
  });
  it('refuses what is not one with artifact-invalid', () => {
    for (const bad of [
      'nope',
      '{}',
      JSON.stringify({ ...vmConfigOf(props), numCPU: 0 }),
      JSON.stringify({ ...vmConfigOf(props), disks: [{}] }),
    ])
      expect(() => parseVmConfig(new TextEncoder().encode(bad), 'a/vm-config.json')).toThrow(
        expect.objectContaining({
          code: 'INVALID_ARGUMENT',
          details: expect.objectContaining({ reason: 'artifact-invalid' }),
        }),
      );
  });
});
