/**
 * Networks (`NETWORK_GET_XML_DESC`, `virsh net-dumpxml`) to the spec's {@link Network}.
 */

import type { Network, XmlValue } from '@hvkit/core';
import type { LibvirtBandwidth } from './limits';
import { attr, child, children, parseIntSafe, parseRoot, rawAttr, requiredNameUuid } from './xml-util';

/** Options of {@link parseNetworkXml} and `parsePoolXml`. */
export interface ActiveOption {
  /** Whether the object is active (from the list call or `*_IS_ACTIVE`; XML does not say). */
  active?: boolean;
}

function vlanOf(vlan: XmlValue | undefined): { tags: number[]; trunk: boolean } {
  const tags: number[] = [];
  for (const tag of children(vlan, 'tag')) {
    const id = parseIntSafe(attr(tag, 'id'));
    if (id !== undefined && id >= 0 && id <= 4095) tags.push(id);
  }
  return { tags, trunk: attr(vlan, 'trunk') === 'yes' };
}

function bandwidthOf(bw: XmlValue | undefined): LibvirtBandwidth {
  const out: LibvirtBandwidth = {};
  for (const dir of ['inbound', 'outbound'] as const) {
    const el = child(bw, dir);
    for (const [attrName, suffix] of [
      ['average', 'Average'],
      ['peak', 'Peak'],
      ['burst', 'Burst'],
    ] as const) {
      const n = parseIntSafe(attr(el, attrName));
      if (n !== undefined && n >= 0) out[`${dir}${suffix}`] = n;
    }
    const floor = parseIntSafe(attr(el, 'floor'));
    if (dir === 'inbound' && floor !== undefined && floor >= 0) out.inboundFloor = floor;
  }
  return out;
}

/**
 * Network XML → {@link Network}: `id` = `<uuid>` (lower case), `name`, `bridge` = `<bridge name>`, `vlan` =
 * the first `<vlan><tag id>` of the network itself (port groups have their own, see
 * {@link parseNetworkXmlDetails}), `active` from `options`. `management` is not known to libvirt.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML, a root other than `<network>`, or no `<name>`/`<uuid>`.
 */
export function parseNetworkXml(xml: string, options: ActiveOption = {}): Network {
  const root = parseRoot(xml, 'network', 'parseNetworkXml');
  const { uuid, name } = requiredNameUuid(root, 'Network', 'parseNetworkXml');
  const net: Network = { id: uuid, name };
  const bridge = attr(child(root, 'bridge'), 'name');
  if (bridge !== undefined) net.bridge = bridge;
  const vlan = vlanOf(child(root, 'vlan')).tags[0];
  if (vlan !== undefined) net.vlan = vlan;
  if (options.active !== undefined) net.active = options.active;
  return net;
}

/** A `<portgroup>` of a network. */
export interface NetworkPortgroup {
  name: string;
  /** `default='yes'`: used by interfaces that name no port group. */
  isDefault: boolean;
  /** `<vlan><tag id>` values. */
  vlanTags: number[];
  vlanTrunk: boolean;
  bandwidth: LibvirtBandwidth;
}

/** Facts from network XML beyond {@link Network}. */
export interface NetworkXmlDetails {
  uuid: string;
  name: string;
  /** `<forward mode>`: `nat`, `route`, `open`, `bridge`, `private`, `vepa`, `passthrough`, `hostdev`; absent = isolated. */
  forwardMode?: string;
  /** `<forward dev>` and `<forward><interface dev>` host devices. */
  forwardDevices: string[];
  bridge?: string;
  /** `<virtualport type>`, e.g. `openvswitch`. */
  virtualPortType?: string;
  vlanTags: number[];
  vlanTrunk: boolean;
  portgroups: NetworkPortgroup[];
  bandwidth: LibvirtBandwidth;
  /** `<ip>` addresses with prefix (`192.168.122.1/24`, `fd00:1::1/64`). */
  addresses: string[];
  /** `<mac address>`, lower case. */
  mac?: string;
  /** `<domain name>` (DNS domain). */
  dnsDomain?: string;
}

function prefixOf(ip: XmlValue): number | undefined {
  const prefix = parseIntSafe(attr(ip, 'prefix'));
  if (prefix !== undefined) return prefix;
  const mask = attr(ip, 'netmask');
  if (!mask) return undefined;
  const parts = mask.split('.').map(Number);
  if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return undefined;
  return parts.reduce((bits, p) => bits + p.toString(2).replace(/0/g, '').length, 0);
}

/**
 * Network XML → {@link NetworkXmlDetails}: forward mode and devices, VLANs, port groups with their VLANs,
 * bandwidth, addresses.
 *
 * @throws HvkitError `PROTOCOL` as {@link parseNetworkXml}.
 */
export function parseNetworkXmlDetails(xml: string): NetworkXmlDetails {
  const root = parseRoot(xml, 'network', 'parseNetworkXmlDetails');
  const { uuid, name } = requiredNameUuid(root, 'Network', 'parseNetworkXmlDetails');
  const forward = child(root, 'forward');
  const vlan = vlanOf(child(root, 'vlan'));
  const out: NetworkXmlDetails = {
    uuid,
    name,
    forwardDevices: [],
    vlanTags: vlan.tags,
    vlanTrunk: vlan.trunk,
    portgroups: [],
    bandwidth: bandwidthOf(child(root, 'bandwidth')),
    addresses: [],
  };
  const mode = attr(forward, 'mode') ?? (forward !== undefined ? 'nat' : undefined);
  if (mode !== undefined) out.forwardMode = mode;
  const fdev = attr(forward, 'dev');
  if (fdev !== undefined) out.forwardDevices.push(fdev);
  for (const iface of children(forward, 'interface')) {
    const dev = attr(iface, 'dev');
    if (dev !== undefined && !out.forwardDevices.includes(dev)) out.forwardDevices.push(dev);
  }
  const bridge = attr(child(root, 'bridge'), 'name');
  if (bridge !== undefined) out.bridge = bridge;
  const vport = attr(child(root, 'virtualport'), 'type');
  if (vport !== undefined) out.virtualPortType = vport;
  for (const pg of children(root, 'portgroup')) {
    const pgName = rawAttr(pg, 'name');
    if (pgName === undefined) continue;
    const pv = vlanOf(child(pg, 'vlan'));
    out.portgroups.push({
      name: pgName,
      isDefault: attr(pg, 'default') === 'yes',
      vlanTags: pv.tags,
      vlanTrunk: pv.trunk,
      bandwidth: bandwidthOf(child(pg, 'bandwidth')),
    });
  }
  for (const ip of children(root, 'ip')) {
    const address = attr(ip, 'address');
    if (address === undefined) continue;
    const prefix = prefixOf(ip);
    out.addresses.push(prefix !== undefined ? `${address}/${prefix}` : address);
  }
  const mac = attr(child(root, 'mac'), 'address');
  if (mac !== undefined) out.mac = mac.toLowerCase();
  const dns = attr(child(root, 'domain'), 'name');
  if (dns !== undefined) out.dnsDomain = dns;
  return out;
}
