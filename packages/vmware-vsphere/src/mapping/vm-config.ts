/**
 * `vm-config.json`, the VM configuration a backup keeps beside the .vmx (role `config`, format
 * `vim-vm-config-json`): the properties a restore needs, read through the API, so that a restore can check
 * and complete what the server made of the registered .vmx. Pure functions.
 */

import { hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import { diskCapacityBytes, diskDeviceName, isDisk, isNic, nicDeviceName, parseDatastorePath } from './vm';

/** The VirtualMachine properties {@link vmConfigOf} reads. */
export const VM_CONFIG_PATHS = [
  'name',
  'parent',
  'resourcePool',
  'runtime.host',
  'runtime.powerState',
  'config.uuid',
  'config.instanceUuid',
  'config.guestId',
  'config.firmware',
  'config.version',
  'config.files.vmPathName',
  'config.hardware.numCPU',
  'config.hardware.numCoresPerSocket',
  'config.hardware.memoryMB',
  'config.hardware.device',
] as const;

/** A disk in `vm-config.json`. */
export interface VmConfigDisk {
  /** Guest-visible name, `scsi0:0` (also the manifest's `disk.device`). */
  device: string;
  key: number;
  controllerKey: number;
  unitNumber: number;
  capacityBytes: number;
  /** The backing file as it was, `[ds] vm/vm.vmdk`. */
  fileName: string;
  datastore: string;
  backing: string;
  diskMode?: string;
  thinProvisioned?: boolean;
}

/** A NIC in `vm-config.json`. */
export interface VmConfigNic {
  device: string;
  /** The card's vim25 type, `VirtualVmxnet3`. */
  type: string;
  key: number;
  macAddress?: string;
  addressType?: string;
  /** Standard network: its name. */
  network?: string;
  /** Distributed port group: its key and switch uuid. */
  portgroupKey?: string;
  switchUuid?: string;
}

/** A storage controller a disk hangs off. */
export interface VmConfigController {
  key: number;
  type: string;
  busNumber: number;
  sharedBus?: string;
}

/** The content of `vm-config.json`. */
export interface VmConfig {
  format: 'hvkit-vsphere-vm-config';
  version: 1;
  name: string;
  uuid?: string;
  instanceUuid?: string;
  guestId?: string;
  firmware?: string;
  hardwareVersion?: string;
  numCPU: number;
  numCoresPerSocket?: number;
  memoryMB: number;
  /** The .vmx as a datastore path, `[ds] vm/vm.vmx`. */
  vmPathName: string;
  /** Inventory folder, resource pool and host the VM was in (morefs of the server it was backed up from). */
  folder?: MoRef;
  resourcePool?: MoRef;
  host?: MoRef;
  disks: VmConfigDisk[];
  nics: VmConfigNic[];
  controllers: VmConfigController[];
}

const str = (v: unknown): string | undefined => (typeof v === 'string' && v !== '' ? v : undefined);
const num = (v: unknown): number | undefined =>
  typeof v === 'number' && Number.isFinite(v) ? v : typeof v === 'bigint' ? Number(v) : undefined;
const ref = (v: unknown): MoRef | undefined => {
  const r = v as MoRef | undefined;
  return typeof r?.type === 'string' && typeof r.value === 'string'
    ? { type: r.type, value: r.value }
    : undefined;
};

/** Builds `vm-config.json` from the properties of {@link VM_CONFIG_PATHS}. */
export function vmConfigOf(props: Record<string, unknown>): VmConfig {
  const devices = (
    Array.isArray(props['config.hardware.device']) ? props['config.hardware.device'] : []
  ) as DataObject[];
  const disks: VmConfigDisk[] = [];
  const controllerKeys = new Set<number>();
  for (const d of devices.filter(isDisk)) {
    const backing = (d.backing ?? {}) as DataObject;
    const fileName = str(backing.fileName) ?? '';
    const controllerKey = num(d.controllerKey) ?? 0;
    controllerKeys.add(controllerKey);
    const disk: VmConfigDisk = {
      device: diskDeviceName(d, devices),
      key: num(d.key) ?? 0,
      controllerKey,
      unitNumber: num(d.unitNumber) ?? 0,
      capacityBytes: diskCapacityBytes(d) ?? 0,
      fileName,
      datastore: parseDatastorePath(fileName)?.datastore ?? '',
      backing: String(backing._type ?? 'VirtualDiskFlatVer2BackingInfo'),
    };
    if (str(backing.diskMode)) disk.diskMode = backing.diskMode as string;
    if (typeof backing.thinProvisioned === 'boolean') disk.thinProvisioned = backing.thinProvisioned;
    disks.push(disk);
  }
  const nics: VmConfigNic[] = devices.filter(isNic).map((n) => {
    const backing = (n.backing ?? {}) as DataObject;
    const port = backing.port as DataObject | undefined;
    const nic: VmConfigNic = { device: nicDeviceName(n), type: String(n._type), key: num(n.key) ?? 0 };
    if (str(n.macAddress)) nic.macAddress = (n.macAddress as string).toLowerCase();
    if (str(n.addressType)) nic.addressType = n.addressType as string;
    if (str(backing.deviceName)) nic.network = backing.deviceName as string;
    if (str(port?.portgroupKey)) nic.portgroupKey = port?.portgroupKey as string;
    if (str(port?.switchUuid)) nic.switchUuid = port?.switchUuid as string;
    return nic;
  });
  const controllers: VmConfigController[] = devices
    .filter((d) => controllerKeys.has(num(d.key) ?? Number.NaN))
    .map((c) => {
      const out: VmConfigController = {
        key: num(c.key) ?? 0,
        type: String(c._type),
        busNumber: num(c.busNumber) ?? 0,
      };
      if (str(c.sharedBus)) out.sharedBus = c.sharedBus as string;
      return out;
    });
  const config: VmConfig = {
    format: 'hvkit-vsphere-vm-config',
    version: 1,
    name: String(props.name ?? ''),
    numCPU: num(props['config.hardware.numCPU']) ?? 1,
    memoryMB: num(props['config.hardware.memoryMB']) ?? 0,
    vmPathName: String(props['config.files.vmPathName'] ?? ''),
    disks,
    nics,
    controllers,
  };
  const optional: [keyof VmConfig, unknown][] = [
    ['uuid', str(props['config.uuid'])],
    ['instanceUuid', str(props['config.instanceUuid'])],
    ['guestId', str(props['config.guestId'])],
    ['firmware', str(props['config.firmware'])],
    ['hardwareVersion', str(props['config.version'])],
    ['numCoresPerSocket', num(props['config.hardware.numCoresPerSocket'])],
    ['folder', ref(props.parent)],
    ['resourcePool', ref(props.resourcePool)],
    ['host', ref(props['runtime.host'])],
  ];
  for (const [k, v] of optional) if (v !== undefined) (config as unknown as Record<string, unknown>)[k] = v;
  return config;
}

/**
 * Reads `vm-config.json` back.
 *
 * @throws HvkitError `INVALID_ARGUMENT` (`details.reason = 'artifact-invalid'`) when it is not one.
 */
export function parseVmConfig(bytes: Uint8Array, file: string): VmConfig {
  const bad = (why: string): never => {
    throw hvkitError('INVALID_ARGUMENT', `${file} is not a valid vm-config.json: ${why}.`, {
      adapter: ADAPTER_ID,
      operation: 'backups.restore',
      details: { reason: 'artifact-invalid', file },
    });
  };
  let v: VmConfig;
  try {
    v = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes)) as VmConfig;
  } catch {
    return bad('not JSON');
  }
  if (typeof v !== 'object' || v === null || v.format !== 'hvkit-vsphere-vm-config' || v.version !== 1)
    bad('format or version');
  if (typeof v.name !== 'string' || typeof v.vmPathName !== 'string') bad('name or vmPathName');
  if (!Number.isSafeInteger(v.numCPU) || v.numCPU < 1 || !Number.isSafeInteger(v.memoryMB) || v.memoryMB < 0)
    bad('numCPU or memoryMB');
  for (const list of ['disks', 'nics', 'controllers'] as const) if (!Array.isArray(v[list])) bad(list);
  for (const d of v.disks)
    if (
      typeof d?.device !== 'string' ||
      !Number.isSafeInteger(d.capacityBytes) ||
      !Number.isSafeInteger(d.unitNumber)
    )
      bad('a disk lacks device, capacityBytes or unitNumber');
  for (const n of v.nics)
    if (typeof n?.device !== 'string' || typeof n.type !== 'string') bad('a NIC lacks device or type');
  for (const c of v.controllers)
    if (typeof c?.type !== 'string' || !Number.isSafeInteger(c.busNumber) || !Number.isSafeInteger(c.key))
      bad('a controller lacks type, key or busNumber');
  return v;
}
