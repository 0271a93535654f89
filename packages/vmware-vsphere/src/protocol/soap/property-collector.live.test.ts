/**
 * Live inventory reads against govmomi's vcsim (peer `vcsim`, read-only): a ContainerView over all VMs
 * with the 12 properties the adapter reads, decoded per the schema.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { env, liveTitle, peerCa, vcsim } from '../../../test/vcsim-peer';
import { moRef } from './envelope';
import { type ObjectProperties, retrieveContainer, retrieveProperties } from './property-collector';
import type { DataObject } from './schema';
import { connectVim, type VimSession } from './session';

const VM_PATHS = [
  'name',
  'config.uuid',
  'config.instanceUuid',
  'runtime.powerState',
  'config.hardware.numCPU',
  'config.hardware.memoryMB',
  'guest.guestId',
  'runtime.host',
  'config.cpuAllocation',
  'config.memoryAllocation',
  'resourceConfig',
  'config.hardware.device',
];

function checkVm(vm: ObjectProperties): DataObject[] {
  const p = vm.props;
  expect(vm.obj.type).toBe('VirtualMachine');
  expect(vm.missing).toEqual([]);
  expect(p.name).toBeTypeOf('string');
  expect(p['config.uuid']).toMatch(/^[0-9a-f]{8}-[0-9a-f-]{27}$/);
  expect(p['config.instanceUuid']).toMatch(/^[0-9a-f]{8}-[0-9a-f-]{27}$/);
  expect(['poweredOn', 'poweredOff', 'suspended']).toContain(p['runtime.powerState']);
  expect(Number.isInteger(p['config.hardware.numCPU'])).toBe(true);
  expect(Number.isInteger(p['config.hardware.memoryMB'])).toBe(true);
  expect(p['runtime.host']).toEqual({ type: 'HostSystem', value: expect.any(String) });
  for (const key of ['config.cpuAllocation', 'config.memoryAllocation']) {
    expect(p[key]).toMatchObject({
      _type: 'ResourceAllocationInfo',
      reservation: expect.any(Number),
      limit: expect.any(Number),
      shares: { _type: 'SharesInfo', shares: expect.any(Number), level: expect.any(String) },
    });
  }
  // vcsim leaves these unset: absent from the result.
  expect(p['guest.guestId']).toBeUndefined();
  expect(p.resourceConfig).toBeUndefined();
  const devices = p['config.hardware.device'] as DataObject[];
  expect(Array.isArray(devices)).toBe(true);
  for (const device of devices) expect(device.key).toBeTypeOf('number');
  const disks = devices.filter((d) => d._type === 'VirtualDisk');
  expect(disks.length).toBeGreaterThan(0);
  for (const disk of disks) {
    expect(disk.backing).toMatchObject({
      _type: 'VirtualDiskFlatVer2BackingInfo',
      fileName: expect.stringMatching(/\.vmdk$/),
      datastore: { type: 'Datastore', value: expect.any(String) },
    });
    expect(disk.capacityInKB).toBeTypeOf('number');
  }
  return devices;
}

describe.skipIf(!vcsim.available)(liveTitle('ContainerView inventory'), () => {
  let session: VimSession;
  beforeAll(async () => {
    const e = env();
    session = await connectVim({
      url: e.HVKIT_VCSIM_URL,
      tls: { ca: peerCa() },
      username: e.HVKIT_VCSIM_USER,
      password: e.HVKIT_VCSIM_PASSWORD,
      keepAliveMs: false,
    });
  });
  afterAll(() => session?.close());

  it('reads the 12 VM properties of every VM (vCenter model: DVS port backings)', async () => {
    const vms = await retrieveContainer(session, { type: 'VirtualMachine', paths: VM_PATHS });
    expect(vms).toHaveLength(Number(env().HVKIT_VCSIM_VMS));
    expect(new Set(vms.map((v) => v.props['config.instanceUuid'])).size).toBe(vms.length);
    for (const vm of vms) {
      const nics = checkVm(vm).filter((d) => d.macAddress !== undefined);
      expect(nics.length).toBeGreaterThan(0);
      for (const nic of nics) {
        expect(['VirtualE1000', 'VirtualE1000e', 'VirtualVmxnet3', 'VirtualPCNet32']).toContain(nic._type);
        expect(nic.backing).toMatchObject({
          _type: 'VirtualEthernetCardDistributedVirtualPortBackingInfo',
          port: {
            _type: 'DistributedVirtualSwitchPortConnection',
            switchUuid: expect.any(String),
            portgroupKey: expect.any(String),
          },
        });
      }
    }
  });

  it('pages with maxObjects (vcsim ignores it and returns one page) and reads one VM directly', async () => {
    const vms = await retrieveContainer(
      session,
      { type: 'VirtualMachine', paths: ['name', 'runtime.host'] },
      { maxObjects: 2 },
    );
    expect(vms).toHaveLength(Number(env().HVKIT_VCSIM_VMS));
    const first = vms[0] as ObjectProperties;
    const [direct] = await retrieveProperties(session, [
      {
        propSet: [{ type: 'VirtualMachine', pathSet: ['name', 'config.bogus'] }],
        objectSet: [{ obj: first.obj }],
      },
    ]);
    expect(direct?.props).toEqual({ name: first.props.name });
    expect(direct?.missing.map((m) => [m.path, m.faultType, m.error.code])).toEqual([
      ['config.bogus', 'InvalidProperty', 'INVALID_ARGUMENT'],
    ]);
  });

  it('fails with NOT_FOUND for an object that does not exist', async () => {
    await expect(
      retrieveProperties(session, [
        {
          propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }],
          objectSet: [{ obj: moRef('VirtualMachine', 'vm-nope') }],
        },
      ]),
    ).rejects.toMatchObject({ code: 'NOT_FOUND', backendCode: 'ManagedObjectNotFound' });
  });

  it('reads host and datastore summaries through views', async () => {
    const hosts = await retrieveContainer(session, {
      type: 'HostSystem',
      paths: ['name', 'summary.hardware'],
    });
    expect(hosts.length).toBeGreaterThan(0);
    expect(hosts[0]?.props['summary.hardware']).toMatchObject({
      _type: 'HostHardwareSummary',
      memorySize: expect.any(Number),
      numCpuCores: expect.any(Number),
      otherIdentifyingInfo: expect.any(Array),
    });
    const stores = await retrieveContainer(session, { type: 'Datastore', paths: ['summary'] });
    expect(stores[0]?.props.summary).toMatchObject({
      _type: 'DatastoreSummary',
      capacity: expect.any(Number),
      type: expect.any(String),
    });
  });
});

describe.skipIf(!vcsim.available)(liveTitle('ESX model inventory'), () => {
  it('decodes standard network backings', async () => {
    const e = env();
    const session = await connectVim({
      url: e.HVKIT_VCSIM_ESX_URL,
      tls: { thumbprint: e.HVKIT_VCSIM_THUMBPRINT },
      username: e.HVKIT_VCSIM_USER,
      password: e.HVKIT_VCSIM_PASSWORD,
      keepAliveMs: false,
    });
    try {
      const vms = await retrieveContainer(session, { type: 'VirtualMachine', paths: VM_PATHS });
      expect(vms.length).toBeGreaterThan(0);
      for (const vm of vms) {
        const nic = checkVm(vm).find((d) => d.macAddress !== undefined) as DataObject;
        expect(nic.backing).toMatchObject({
          _type: 'VirtualEthernetCardNetworkBackingInfo',
          deviceName: expect.any(String),
          network: { type: 'Network', value: expect.any(String) },
        });
      }
    } finally {
      await session.close();
    }
  });
});
