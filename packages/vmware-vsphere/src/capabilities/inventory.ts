/**
 * Inventory: the host (or the vCenter), guests with their VLANs, networks, datastores as storage pools and
 * the VMDKs on a datastore as its volumes.
 */

import {
  type CallOptions,
  type Guest,
  type GuestRef,
  type Host,
  hvkitError,
  type InventoryCapability,
  type Network,
  type StoragePool,
  type StorageVolume,
} from '@hvkit/core';
import { propsOf, readObject, resolveVm, retrieveView, type VsphereContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { mapDatastore, volumesOnDatastore } from '../mapping/datastore';
import { HOST_PATHS, mapHost } from '../mapping/host';
import { mapNetworks, NETWORK_PROPSET } from '../mapping/network';
import {
  emptyVlanIndex,
  indexDistributedPortgroup,
  indexHostPortgroups,
  mapGuest,
  type VlanIndex,
  VM_PATHS,
} from '../mapping/vm';
import type { ObjectProperties, PropertySpecInput } from '../protocol/soap/property-collector';

/** What the VLAN index is built from: the hosts' standard port groups and the distributed port groups. */
const PORTGROUP_PROPSET: PropertySpecInput[] = [
  { type: 'HostSystem', pathSet: ['config.network.portgroup'] },
  { type: 'DistributedVirtualPortgroup', pathSet: ['key', 'name', 'config.defaultPortConfig'] },
];

/** The VLAN index of the port groups in a property collector result. */
function vlanIndexOf(list: ObjectProperties[]): VlanIndex {
  const index = emptyVlanIndex();
  for (const item of list) {
    if (item.obj.type === 'HostSystem') indexHostPortgroups(index, item.props['config.network.portgroup']);
    else if (item.obj.type === 'DistributedVirtualPortgroup')
      indexDistributedPortgroup(index, {
        key: item.props.key,
        name: item.props.name,
        defaultPortConfig: item.props['config.defaultPortConfig'],
      });
  }
  return index;
}

/** The inventory capability of one adapter. */
export function createInventory(ctx: VsphereContext): InventoryCapability {
  return {
    async host(o: CallOptions = {}): Promise<Host> {
      const hosts = propsOf(
        await retrieveView(ctx, [{ type: 'HostSystem', pathSet: [...HOST_PATHS] }], o.signal),
        'HostSystem',
      );
      return mapHost(hosts, ctx.session.serviceContent.about, ctx.url.hostname);
    },

    async listGuests(o: CallOptions = {}): Promise<Guest[]> {
      const list = await retrieveView(
        ctx,
        [{ type: 'VirtualMachine', pathSet: [...VM_PATHS] }, ...PORTGROUP_PROPSET],
        o.signal,
      );
      const index = vlanIndexOf(list);
      return propsOf(list, 'VirtualMachine')
        .map((vm) => mapGuest(vm.obj, vm.props, index))
        .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    },

    async getGuest(ref: GuestRef, o: CallOptions = {}): Promise<Guest> {
      const vm = await resolveVm(ctx, ref, 'inventory.getGuest', o.signal);
      const props = await readObject(ctx, vm, VM_PATHS, o.signal);
      return mapGuest(vm, props, vlanIndexOf(await retrieveView(ctx, PORTGROUP_PROPSET, o.signal)));
    },

    async listNetworks(o: CallOptions = {}): Promise<Network[]> {
      return mapNetworks(await retrieveView(ctx, NETWORK_PROPSET, o.signal));
    },

    async listStoragePools(o: CallOptions = {}): Promise<StoragePool[]> {
      const list = await retrieveView(ctx, [{ type: 'Datastore', pathSet: ['name', 'summary'] }], o.signal);
      return list.map(mapDatastore).sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    },

    /** The virtual disks of VMs on a datastore (a datastore's VMDKs as volumes). */
    async listStorageVolumes(poolId: string, o: CallOptions = {}): Promise<StorageVolume[]> {
      if (typeof poolId !== 'string' || poolId === '')
        throw hvkitError('INVALID_ARGUMENT', 'poolId must be a non-empty string.', {
          adapter: ADAPTER_ID,
          operation: 'inventory.listStorageVolumes',
        });
      const list = await retrieveView(
        ctx,
        [
          { type: 'Datastore', pathSet: ['name'] },
          { type: 'VirtualMachine', pathSet: ['config.hardware.device'] },
        ],
        o.signal,
      );
      if (!list.some((d) => d.obj.type === 'Datastore' && d.obj.value === poolId))
        throw hvkitError('NOT_FOUND', `No datastore ${JSON.stringify(poolId.slice(0, 200))}.`, {
          adapter: ADAPTER_ID,
          operation: 'inventory.listStorageVolumes',
        });
      return volumesOnDatastore(propsOf(list, 'VirtualMachine'), poolId);
    },
  };
}
