/** Network and DistributedVirtualPortgroup properties → spec v1 `Network` (with VLANs and switches). */

import type { Network } from '@hvkit/core';
import type { ObjectProperties, PropertySpecInput } from '../protocol/soap/property-collector';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import { emptyVlanIndex, indexDistributedPortgroup, indexHostPortgroups } from './vm';

/** What {@link mapNetworks} needs, read in one RetrievePropertiesEx. */
export const NETWORK_PROPSET: PropertySpecInput[] = [
  { type: 'Network', pathSet: ['name'] },
  {
    type: 'DistributedVirtualPortgroup',
    pathSet: ['key', 'config.defaultPortConfig', 'config.distributedVirtualSwitch'],
  },
  { type: 'HostSystem', pathSet: ['config.network.portgroup'] },
];

/**
 * Maps networks: standard port groups get the VLAN and vSwitch name from the hosts' port group specs;
 * distributed port groups their single VLAN (none for trunks/PVLANs) and the switch MOID as `bridge`.
 */
export function mapNetworks(list: readonly ObjectProperties[]): Network[] {
  const index = emptyVlanIndex();
  const switches = new Map<string, string>();
  const switchOf = new Map<string, string>();
  for (const item of list) {
    if (item.obj.type === 'HostSystem') {
      indexHostPortgroups(index, item.props['config.network.portgroup']);
      for (const pg of (item.props['config.network.portgroup'] ?? []) as DataObject[]) {
        const spec = pg.spec as DataObject | undefined;
        if (typeof spec?.name === 'string' && typeof spec.vswitchName === 'string')
          switchOf.set(spec.name, spec.vswitchName);
      }
    }
    if (item.obj.type === 'DistributedVirtualPortgroup') {
      indexDistributedPortgroup(index, {
        key: item.props.key,
        defaultPortConfig: item.props['config.defaultPortConfig'],
      });
      const dvs = item.props['config.distributedVirtualSwitch'] as MoRef | undefined;
      if (dvs?.value) switches.set(item.obj.value, dvs.value);
    }
  }
  return list
    .filter((i) => i.obj.type !== 'HostSystem' && typeof i.props.name === 'string')
    .map((i) => {
      const name = i.props.name as string;
      const net: Network = { id: i.obj.value, name };
      if (i.obj.type === 'DistributedVirtualPortgroup') {
        const entry = index.distributed.get(String(i.props.key));
        if (entry?.vlan !== undefined) net.vlan = entry.vlan;
        const dvs = switches.get(i.obj.value);
        if (dvs) net.bridge = dvs;
      } else {
        const vlan = index.standard.get(name);
        if (vlan !== undefined) net.vlan = vlan;
        const sw = switchOf.get(name);
        if (sw) net.bridge = sw;
      }
      return net;
    })
    .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
}
