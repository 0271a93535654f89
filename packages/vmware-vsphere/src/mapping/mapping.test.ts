import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { decodeSoapResponse } from '../protocol/soap/decode';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import { flagsText, securityFlags, tagLabel } from './labels';
import { buildLimitsSpec, mapLimits } from './limits';
import { flattenSnapshots } from './snapshot';
import { dvsVlanId, emptyVlanIndex, indexHostPortgroups, mapGuest, parseDatastorePath } from './vm';

/** VMs as vcsim 0.24.2 returned them (RetrievePropertiesEx of the vCenter model). */
function sampleVms(): { obj: MoRef; props: Record<string, unknown> }[] {
  const xml = readFileSync(
    join(import.meta.dirname, '../protocol/soap/__samples__/retrieve-vms-vpx.xml'),
    'utf8',
  );
  const decoded = decodeSoapResponse(xml, 'RetrievePropertiesEx');
  const objects = ((decoded.returnval as DataObject).objects ?? []) as DataObject[];
  return objects.map((o) => ({
    obj: o.obj as MoRef,
    props: Object.fromEntries(((o.propSet ?? []) as DataObject[]).map((p) => [p.name as string, p.val])),
  }));
}

describe('mapGuest', () => {
  it('maps a vcsim VM: MOID id, lower-case instance uuid, MB to bytes, scsi disk name, NIC label', () => {
    const [vm] = sampleVms();
    if (!vm) throw new Error('sample has no VM');
    const guest = mapGuest(vm.obj, vm.props, emptyVlanIndex());
    expect(guest).toMatchObject({
      id: 'vm-51',
      uuid: 'b4689bed-97f0-5bcd-8a4c-07477cc8f06f',
      name: 'DC0_H0_VM0',
      powerState: 'running',
      vcpus: 1,
      memoryBytes: 32 * 1024 * 1024,
      isTemplate: false,
    });
    expect(guest.disks[0]).toMatchObject({ device: 'scsi0:0', backing: 'file', format: 'vmdk' });
    expect(guest.disks[0]?.source).toMatch(/^\[LocalDS_0\] /);
    expect(guest.nics[0]?.mac).toMatch(/^[0-9a-f:]{17}$/);
  });

  it('resolves VLANs of standard port groups and single-VLAN distributed port groups, not trunks', () => {
    const index = emptyVlanIndex();
    indexHostPortgroups(index, [
      { _type: 'HostPortGroup', spec: { _type: 'HostPortGroupSpec', name: 'VM Network', vlanId: 42 } },
      { _type: 'HostPortGroup', spec: { _type: 'HostPortGroupSpec', name: 'Trunk', vlanId: 4095 } },
    ]);
    expect(index.standard.get('VM Network')).toBe(42);
    expect(index.standard.has('Trunk')).toBe(false);
    expect(dvsVlanId({ _type: 'VmwareDistributedVirtualSwitchVlanIdSpec', vlanId: 7 })).toBe(7);
    expect(
      dvsVlanId({ _type: 'VmwareDistributedVirtualSwitchTrunkVlanSpec', vlanId: [{ start: 1, end: 9 }] }),
    ).toBeUndefined();
  });

  it('splits datastore paths', () => {
    expect(parseDatastorePath('[LocalDS_0] vm1/disk1.vmdk')).toEqual({
      datastore: 'LocalDS_0',
      path: 'vm1/disk1.vmdk',
    });
    expect(parseDatastorePath('no brackets')).toBeUndefined();
  });
});

describe('limits', () => {
  const disk = {
    _type: 'VirtualDisk',
    key: 2000,
    controllerKey: 1000,
    unitNumber: 1,
    storageIOAllocation: { _type: 'StorageIOAllocationInfo', limit: 300 },
  };
  const controller = { _type: 'VirtualLsiLogicController', key: 1000, busNumber: 0 };
  const nic = {
    _type: 'VirtualVmxnet3',
    key: 4000,
    macAddress: '00:50:56:aa:bb:cc',
    deviceInfo: { _type: 'Description', label: 'Network adapter 1' },
    resourceAllocation: { _type: 'VirtualEthernetCardResourceAllocation', limit: 100 },
  };
  const props = {
    'config.hardware.numCPU': 4,
    'config.cpuAllocation': { reservation: 500, limit: 1147, shares: { shares: 8000, level: 'custom' } },
    'config.memoryAllocation': { reservation: 256, limit: -1, shares: { shares: 0, level: 'normal' } },
    'config.hardware.device': [controller, disk, nic],
  };

  it('converts per notes: MHz / core MHz, shares per vCPU, MB, IOPS to read and write, Mbit/s × 125000, -1 = null', () => {
    expect(mapLimits(props, 2294)).toEqual({
      cpu: { weight: 200, maxCores: 0.5, reservationMHz: 500 },
      memory: { maxBytes: null, minBytes: 256 * 1024 * 1024 },
      disks: [{ device: 'scsi0:1', readIops: 300, writeIops: 300 }],
      nics: [{ device: 'Network adapter 1', outboundAverageBytesPerSec: 12_500_000 }],
    });
  });

  it('builds a spec that sends the device back whole and warns when read and write IOPS differ', () => {
    const { spec, warnings } = buildLimitsSpec(
      { cpu: { weight: 100, maxCores: null }, disks: [{ device: 'scsi0:1', readIops: 500, writeIops: 250 }] },
      props,
      2294,
    );
    expect(spec?.cpuAllocation).toMatchObject({
      limit: -1,
      reservation: 500,
      shares: { level: 'normal', shares: 4000 },
    });
    const change = ((spec?.deviceChange ?? []) as DataObject[])[0] as DataObject;
    expect(change).toMatchObject({
      operation: 'edit',
      device: { ...disk, storageIOAllocation: { limit: 250 } },
    });
    expect(warnings.map((w) => w.type)).toEqual(['compatibility']);
  });

  it('leaves the spec empty when nothing is set', () => {
    expect(buildLimitsSpec({}, props, 2294).spec).toBeUndefined();
  });
});

describe('labels and snapshots', () => {
  it('reports tags and the encryption, vTPM and secure-boot flags', () => {
    const flags = securityFlags({
      'config.keyId': { _type: 'CryptoKeyId', keyId: 'k' },
      'config.firmware': 'efi',
      'config.bootOptions': { _type: 'VirtualMachineBootOptions', efiSecureBootEnabled: true },
      'config.hardware.device': [{ _type: 'VirtualTPM', key: 11000 }],
    });
    expect(flagsText(flags)).toBe('encrypted=yes vtpm=yes secure-boot=yes firmware=efi');
    expect(
      tagLabel(
        [
          { category: 'zone', name: 'b' },
          { category: 'domain', name: 'a' },
        ],
        flags,
      ),
    ).toMatchObject({
      model: 'tag',
      type: 'static',
      tags: [
        { category: 'domain', name: 'a' },
        { category: 'zone', name: 'b' },
      ],
    });
  });

  it('flattens the snapshot tree with parents and memory kind from layoutEx', () => {
    const at = new Date('2026-01-01T00:00:00Z');
    const tree = {
      rootSnapshotList: [
        {
          snapshot: { type: 'VirtualMachineSnapshot', value: 'snapshot-1' },
          name: 'a',
          createTime: at,
          childSnapshotList: [
            { snapshot: { type: 'VirtualMachineSnapshot', value: 'snapshot-2' }, name: 'b', createTime: at },
          ],
        },
      ],
    };
    const layout = [{ key: { type: 'VirtualMachineSnapshot', value: 'snapshot-2' }, memoryKey: 7 }];
    expect(flattenSnapshots(tree, layout).map((n) => n.snapshot)).toEqual([
      { id: 'snapshot-1', name: 'a', createdAt: at, kind: 'disk' },
      { id: 'snapshot-2', name: 'b', createdAt: at, kind: 'memory', parentId: 'snapshot-1' },
    ]);
  });
});
