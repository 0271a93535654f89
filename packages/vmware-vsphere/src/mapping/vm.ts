/**
 * VirtualMachine properties → spec v1 `Guest`: disks and NICs from the device list, VLANs from standard
 * port groups (host `config.network.portgroup[].spec.vlanId`) and distributed port groups
 * (`config.defaultPortConfig.vlan`).
 */

import type { Disk, Guest, Nic, PowerState } from '@hvkit/core';
import { type DataObject, isVimSubtypeOf, type MoRef } from '../protocol/soap/schema';

/** The VirtualMachine properties the inventory reads (12 paths). */
export const VM_PATHS = [
  'name',
  'config.uuid',
  'config.instanceUuid',
  'runtime.powerState',
  'config.hardware.numCPU',
  'config.hardware.memoryMB',
  'runtime.host',
  'config.template',
  'config.guestId',
  'config.cpuAllocation',
  'config.memoryAllocation',
  'config.hardware.device',
] as const;

/** Where VLAN ids come from: standard port groups by name and distributed port groups by key. */
export interface VlanIndex {
  /** Standard port group name → VLAN id (0..4095; 4095 = trunk, left out). */
  standard: Map<string, number>;
  /** Distributed port group key → name and VLAN id (undefined for trunks and PVLANs). */
  distributed: Map<string, { name?: string; vlan?: number }>;
}

/** An empty {@link VlanIndex}. */
export function emptyVlanIndex(): VlanIndex {
  return { standard: new Map(), distributed: new Map() };
}

/** Adds a host's `config.network.portgroup` list to the index. */
export function indexHostPortgroups(index: VlanIndex, portgroups: unknown): void {
  if (!Array.isArray(portgroups)) return;
  for (const pg of portgroups as DataObject[]) {
    const spec = pg?.spec as DataObject | undefined;
    const name = spec?.name;
    const vlan = spec?.vlanId;
    if (typeof name === 'string' && typeof vlan === 'number' && vlan >= 0 && vlan < 4095) {
      index.standard.set(name, vlan);
    }
  }
}

/** The single VLAN id of a distributed port setting's `vlan` spec; trunks and PVLANs give undefined. */
export function dvsVlanId(vlanSpec: unknown): number | undefined {
  const spec = vlanSpec as DataObject | undefined;
  if (spec?._type !== 'VmwareDistributedVirtualSwitchVlanIdSpec') return undefined;
  const id = spec.vlanId;
  return typeof id === 'number' && id >= 0 && id < 4095 ? id : undefined;
}

/** Adds a distributed port group (`key`, `name`, `config.defaultPortConfig`) to the index. */
export function indexDistributedPortgroup(
  index: VlanIndex,
  props: { key?: unknown; name?: unknown; defaultPortConfig?: unknown },
): void {
  if (typeof props.key !== 'string') return;
  const setting = props.defaultPortConfig as DataObject | undefined;
  index.distributed.set(props.key, {
    name: typeof props.name === 'string' ? props.name : undefined,
    vlan: dvsVlanId(setting?.vlan),
  });
}

/** vSphere power state → spec power state. */
export function mapPowerState(state: unknown): PowerState {
  switch (state) {
    case 'poweredOn':
      return 'running';
    case 'poweredOff':
      return 'stopped';
    case 'suspended':
      return 'suspended';
    default:
      return 'unknown';
  }
}

const CONTROLLER_PREFIX: [RegExp, string][] = [
  [/^VirtualIDEController$/, 'ide'],
  [/SATA|AHCI/, 'sata'],
  [/NVME/i, 'nvme'],
  [/SCSI|LsiLogic|BusLogic|ParaVirtualSCSI/i, 'scsi'],
];

/** The guest-visible name of a disk: `scsi0:1`, `ide0:0`, `sata0:0`, `nvme0:0`; `disk-<key>` otherwise. */
export function diskDeviceName(disk: DataObject, devices: readonly DataObject[]): string {
  const controller = devices.find((d) => d.key === disk.controllerKey);
  const unit = disk.unitNumber;
  if (controller && typeof controller._type === 'string' && typeof unit === 'number') {
    const prefix = CONTROLLER_PREFIX.find(([re]) => re.test(controller._type as string))?.[1];
    const bus = controller.busNumber;
    if (prefix && typeof bus === 'number') return `${prefix}${bus}:${unit}`;
  }
  return `disk-${String(disk.key)}`;
}

/** The guest-visible name of a NIC: its label (`Network adapter 1`), else `nic-<key>`. */
export function nicDeviceName(nic: DataObject): string {
  const label = (nic.deviceInfo as DataObject | undefined)?.label;
  return typeof label === 'string' && label !== '' ? label : `nic-${String(nic.key)}`;
}

/** True for a virtual disk in a device list. */
export function isDisk(device: DataObject): boolean {
  return device?._type === 'VirtualDisk';
}

/** True for a virtual Ethernet card (any model) in a device list. */
export function isNic(device: DataObject): boolean {
  const type = device?._type;
  return (
    typeof type === 'string' &&
    (isVimSubtypeOf(type, 'VirtualEthernetCard') || typeof device.macAddress === 'string')
  );
}

/** Splits a datastore path `[ds] dir/file.vmdk` into the datastore name and the path. */
export function parseDatastorePath(fileName: string): { datastore: string; path: string } | undefined {
  const match = /^\[([^\]]+)\]\s*(.*)$/.exec(fileName);
  return match ? { datastore: match[1] as string, path: match[2] as string } : undefined;
}

/** A virtual disk's capacity in bytes (`capacityInBytes`, else `capacityInKB` × 1024), when it states one. */
export function diskCapacityBytes(disk: DataObject): number | undefined {
  return typeof disk.capacityInBytes === 'number'
    ? disk.capacityInBytes
    : typeof disk.capacityInKB === 'number'
      ? disk.capacityInKB * 1024
      : undefined;
}

function diskOf(disk: DataObject, devices: readonly DataObject[]): Disk {
  const backing = (disk.backing ?? {}) as DataObject;
  const fileName = typeof backing.fileName === 'string' ? backing.fileName : undefined;
  const bytes = diskCapacityBytes(disk);
  const out: Disk = {
    device: diskDeviceName(disk, devices),
    backing:
      fileName !== undefined
        ? 'file'
        : backing._type === 'VirtualDiskRawDiskMappingVer1BackingInfo'
          ? 'block'
          : 'other',
  };
  if (fileName !== undefined) out.source = fileName;
  if (bytes !== undefined) out.capacityBytes = bytes;
  if (fileName?.endsWith('.vmdk')) out.format = 'vmdk';
  if (backing.diskMode === 'independent_nonpersistent') out.readonly = false;
  if (backing.sharing === 'sharingMultiWriter') out.shareable = true;
  return out;
}

function nicOf(nic: DataObject, vlans: VlanIndex): Nic {
  const out: Nic = { device: nicDeviceName(nic) };
  if (typeof nic.macAddress === 'string') out.mac = nic.macAddress.toLowerCase();
  out.model = String(nic._type)
    .replace(/^Virtual/, '')
    .toLowerCase();
  const backing = (nic.backing ?? {}) as DataObject;
  if (typeof backing.deviceName === 'string') {
    out.network = backing.deviceName;
    const vlan = vlans.standard.get(backing.deviceName);
    if (vlan !== undefined) out.vlan = vlan;
  }
  const port = backing.port as DataObject | undefined;
  if (typeof port?.portgroupKey === 'string') {
    const pg = vlans.distributed.get(port.portgroupKey);
    out.network = pg?.name ?? port.portgroupKey;
    if (pg?.vlan !== undefined) out.vlan = pg.vlan;
  }
  return out;
}

/**
 * Maps one VirtualMachine's properties (by path, as {@link VM_PATHS}) to a `Guest`. `id` is the MOID
 * (`vm-42`); `uuid` is `config.instanceUuid` lower-cased (the vCenter-unique id), falling back to the BIOS
 * `config.uuid`.
 */
export function mapGuest(obj: MoRef, props: Record<string, unknown>, vlans: VlanIndex): Guest {
  const devices = (
    Array.isArray(props['config.hardware.device']) ? props['config.hardware.device'] : []
  ) as DataObject[];
  const uuid = String(props['config.instanceUuid'] ?? props['config.uuid'] ?? '').toLowerCase();
  const host = props['runtime.host'] as MoRef | undefined;
  const guest: Guest = {
    id: obj.value,
    uuid,
    name: String(props.name ?? obj.value),
    powerState: mapPowerState(props['runtime.powerState']),
    vcpus: Number(props['config.hardware.numCPU'] ?? 0),
    memoryBytes: Number(props['config.hardware.memoryMB'] ?? 0) * 1024 * 1024,
    disks: devices.filter(isDisk).map((d) => diskOf(d, devices)),
    nics: devices.filter(isNic).map((n) => nicOf(n, vlans)),
    isTemplate: props['config.template'] === true,
    tags: [],
  };
  if (host?.value) guest.hostId = host.value;
  return guest;
}
