/**
 * Domain XML (`DOMAIN_GET_XML_DESC`, `virsh dumpxml`) to the spec's {@link Guest}, plus the libvirt facts
 * the adapter needs beyond it ({@link DomainXmlDetails}).
 *
 * Tolerant by design: every element and attribute libvirt may emit that is not read here is ignored, and
 * unexpected shapes (a repeated element, a missing optional element, unknown device kinds, foreign
 * metadata) never throw. Only a document that is not XML, not `<domain>`, or has no `<name>`/`<uuid>`
 * is an error.
 */

import {
  buildXml,
  type Disk,
  type DiskBacking,
  type DiskLimits,
  type Guest,
  hvkitError,
  type Nic,
  type NicLimits,
  type PowerState,
  type ResourceLimits,
  type SecurityLabel,
  type XmlValue,
} from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import { DOMAIN_STATE } from '../protocol/constants';
import type { TypedParam } from '../protocol/types';
import {
  bandwidthToNicLimits,
  type CgroupVersion,
  cpuTuneToCpuLimits,
  IOTUNE_FIELDS,
  ioTuneToDiskLimits,
  type LibvirtBandwidth,
  type LibvirtBlkioDevice,
  type LibvirtCpuTune,
  type LibvirtIoTune,
  type LibvirtMemTune,
  memTuneToMemoryLimits,
} from './limits';
import { type DiskSecurityLabel, parseDiskSeclabels, seclabelsOf } from './seclabel';
import {
  attr,
  child,
  childNames,
  children,
  childText,
  has,
  hasControlChar,
  normalizeUuid,
  parseBigInt,
  parseIntSafe,
  parseRoot,
  rawAttr,
  rawText,
  scaledBytes,
  text,
  unitScale,
} from './xml-util';

/** XML namespace of hvkit's domain metadata (`<metadata><hvkit:guest xmlns:hvkit="...">`). */
export const HVKIT_METADATA_NAMESPACE = 'https://hvkit.dev/xmlns/libvirt/1';
/** Prefix (the `key` of `virDomainSetMetadata`) hvkit writes its metadata with. */
export const HVKIT_METADATA_PREFIX = 'hvkit';
/** `virDomainMetadataType` `VIR_DOMAIN_METADATA_ELEMENT`, the type to set hvkit metadata with. */
export const VIR_DOMAIN_METADATA_ELEMENT = 2;

/** libvirt domain states (`virDomainState`); the RPC client's {@link DOMAIN_STATE}. */
export const LIBVIRT_DOMAIN_STATE = DOMAIN_STATE;

/**
 * libvirt domain state (`DOMAIN_GET_STATE`, `DOMAIN_GET_INFO`) → {@link PowerState}: RUNNING 1 and BLOCKED 2
 * → `running`; SHUTDOWN 4 (shutting down, still running) → `running`; PAUSED 3 → `paused`; SHUTOFF 5 →
 * `stopped`; CRASHED 6 → `crashed`; PMSUSPENDED 7 → `suspended`; NOSTATE 0 and anything else → `unknown`.
 */
export function powerStateFromLibvirt(state: number): PowerState {
  switch (state) {
    case 1:
    case 2:
    case 4:
      return 'running';
    case 3:
      return 'paused';
    case 5:
      return 'stopped';
    case 6:
      return 'crashed';
    case 7:
      return 'suspended';
    default:
      return 'unknown';
  }
}

/** Options of {@link parseDomainXml}. */
export interface ParseDomainXmlOptions {
  /** The guest's power state (XML does not carry it; read it with `DOMAIN_GET_STATE`). Default `unknown`. */
  powerState?: PowerState;
  /** Id of the host, copied to `Guest.hostId`. */
  hostId?: string;
  /**
   * Capacity in bytes per disk device (`vda`), e.g. from {@link diskCapacitiesFromStats} or storage volume
   * info; the XML does not carry it. Disks not in the map have no `capacityBytes`.
   */
  diskCapacities?: ReadonlyMap<string, number>;
}

function rootOf(xml: string, operation: string): { root: XmlValue; uuid: string; name: string } {
  const root = parseRoot(xml, 'domain', operation);
  const uuidText = childText(root, 'uuid');
  const name = rawText(child(root, 'name'));
  if (uuidText === undefined || name === undefined || name.trim() === '') {
    throw hvkitError('PROTOCOL', 'Domain XML without <name> or <uuid>.', { adapter: ADAPTER_ID, operation });
  }
  return { root, uuid: normalizeUuid(uuidText), name };
}

/**
 * Domain XML → {@link Guest}.
 *
 * - `id` and `uuid`: `<uuid>`, lower case. `name`: `<name>`.
 * - `vcpus`: the `<vcpu>` text (the maximum; `current=` is the online count); 1 when absent (libvirt's
 *   default). `memoryBytes`: `<memory>` in its `unit` (default KiB; `b`, `KiB`/`k`, `MiB`/`M`, `KB` = 1000...).
 * - `disks`: every `<disk>` (disks, cdroms, floppies, luns) in document order, see {@link DomainDiskDetails}.
 *   `format`: `<driver type>`; without it `raw` for every disk but a pool volume (`type='volume'`, whose
 *   format is the volume's), which is libvirt's default (the QEMU driver writes it into the definition,
 *   the test driver leaves it out). `capacityBytes` is not in the XML: from `options.diskCapacities`.
 * - `nics`: every `<interface>`, see {@link DomainInterfaceDetails} for `device` naming.
 * - `tags`: `<tag>` elements of hvkit's metadata ({@link HVKIT_METADATA_NAMESPACE}), else `[]`.
 * - `isTemplate`: false (libvirt has no templates). `powerState`, `hostId`: from `options`.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML, a root other than `<domain>`, or no `<name>`/`<uuid>`.
 */
export function parseDomainXml(xml: string, options: ParseDomainXmlOptions = {}): Guest {
  const { root, uuid, name } = rootOf(xml, 'parseDomainXml');
  const guest: Guest = {
    id: uuid,
    uuid,
    name,
    powerState: options.powerState ?? 'unknown',
    vcpus: maxVcpus(root),
    memoryBytes: scaledBytes(child(root, 'memory'), 'KiB') ?? 0,
    disks: readDisks(root).map((d) => toDisk(d, options.diskCapacities)),
    nics: readInterfaces(root).map(toNic),
    isTemplate: false,
    tags: readMetadata(root).tags,
  };
  if (options.hostId !== undefined) guest.hostId = options.hostId;
  return guest;
}

function maxVcpus(root: XmlValue): number {
  const n = parseIntSafe(childText(root, 'vcpu'));
  return n !== undefined && n > 0 ? n : 1;
}

// ---------------------------------------------------------------------------------------------------------
// Disks

/** A `<disk>` as read from domain XML. */
export interface DomainDiskDetails {
  /** Guest device name, `<target dev>` (`vda`, `sdc`, `hdc`); `disk<N>` (document index) when missing. */
  device: string;
  /** `device=` attribute: `disk`, `cdrom`, `floppy`, `lun`. */
  deviceType: string;
  /** `type=` attribute: `file`, `block`, `network`, `volume`, `dir`, `nvme`, `vhostuser`, ... */
  type: string;
  backing: DiskBacking;
  /**
   * The backing store: a file or device path; `pool/volume` for volumes; for network disks a URL built
   * from protocol, first host and name (`nbd://127.0.0.1:10809/export1`, `rbd://10.0.0.1:6789/pool/img`,
   * `nbd+unix:///export?socket=/path`), not percent-encoded. Undefined for an empty cdrom.
   */
  source?: string;
  /** `<target bus>`: `virtio`, `scsi`, `sata`, `ide`, `fdc`, `usb`... */
  bus?: string;
  /** `<driver type>`: `qcow2`, `raw`... */
  format?: string;
  readonly: boolean;
  shareable: boolean;
  /** `<alias name>` (live XML). */
  alias?: string;
  /** `<iotune>` values (bytes/s, IOPS). */
  iotune: LibvirtIoTune;
  /** Per-disk `<seclabel>` overrides. */
  seclabels: DiskSecurityLabel[];
}

function backingOf(type: string): DiskBacking {
  switch (type) {
    case 'file':
    case 'block':
    case 'network':
    case 'volume':
      return type;
    default:
      return 'other';
  }
}

function networkSourceUrl(source: XmlValue | undefined): string | undefined {
  const protocol = attr(source, 'protocol');
  const name = rawAttr(source, 'name');
  if (!protocol) return name;
  const host = child(source, 'host');
  const path = name === undefined ? '' : name.startsWith('/') ? name : `/${name}`;
  const transport = attr(host, 'transport');
  const socket = attr(host, 'socket');
  if (transport === 'unix' || socket !== undefined) {
    return `${protocol}+unix://${path}${socket !== undefined ? `?socket=${socket}` : ''}`;
  }
  const hostName = attr(host, 'name');
  const port = attr(host, 'port');
  const hostPart =
    hostName === undefined
      ? ''
      : (hostName.includes(':') ? `[${hostName}]` : hostName) + (port ? `:${port}` : '');
  const scheme = transport && transport !== 'tcp' ? `${protocol}+${transport}` : protocol;
  return `${scheme}://${hostPart}${path}`;
}

function diskSource(type: string, source: XmlValue | undefined): string | undefined {
  switch (type) {
    case 'file':
      return rawAttr(source, 'file') || undefined;
    case 'block':
      return rawAttr(source, 'dev') || undefined;
    case 'dir':
      return rawAttr(source, 'dir') || undefined;
    case 'volume': {
      const pool = rawAttr(source, 'pool');
      const volume = rawAttr(source, 'volume');
      return pool && volume ? `${pool}/${volume}` : volume || undefined;
    }
    case 'network':
      return networkSourceUrl(source);
    default:
      return (
        rawAttr(source, 'file') ||
        rawAttr(source, 'dev') ||
        rawAttr(source, 'path') ||
        rawAttr(source, 'dir') ||
        undefined
      );
  }
}

function readIoTune(iotune: XmlValue | undefined): LibvirtIoTune {
  const out: LibvirtIoTune = {};
  for (const [key, name] of IOTUNE_FIELDS) {
    const v = parseBigInt(childText(iotune, name));
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function readDisks(root: XmlValue): DomainDiskDetails[] {
  const devices = child(root, 'devices');
  return children(devices, 'disk').map((el, i) => {
    const type = attr(el, 'type') ?? 'file';
    const target = child(el, 'target');
    const source = child(el, 'source');
    const device = rawAttr(target, 'dev')?.trim() || `disk${i}`;
    const d: DomainDiskDetails = {
      device,
      deviceType: attr(el, 'device') ?? 'disk',
      type,
      backing: backingOf(type),
      readonly: has(el, 'readonly'),
      shareable: has(el, 'shareable'),
      iotune: readIoTune(child(el, 'iotune')),
      seclabels: parseDiskSeclabels(device, source),
    };
    const src = diskSource(type, source);
    if (src !== undefined) d.source = src;
    const bus = attr(target, 'bus');
    if (bus !== undefined) d.bus = bus;
    const format = attr(child(el, 'driver'), 'type');
    if (format !== undefined) d.format = format;
    const alias = attr(child(el, 'alias'), 'name');
    if (alias !== undefined) d.alias = alias;
    return d;
  });
}

function toDisk(d: DomainDiskDetails, capacities: ReadonlyMap<string, number> | undefined): Disk {
  const disk: Disk = { device: d.device, backing: d.backing, readonly: d.readonly, shareable: d.shareable };
  if (d.source !== undefined) disk.source = d.source;
  const capacity = capacities?.get(d.device);
  if (capacity !== undefined) disk.capacityBytes = capacity;
  const format = d.format ?? (d.type === 'volume' ? undefined : 'raw');
  if (format !== undefined) disk.format = format;
  return disk;
}

/**
 * Disk capacities from one record of `CONNECT_GET_ALL_DOMAIN_STATS` with the block group
 * (`VIR_DOMAIN_STATS_BLOCK`): `block.<n>.name` (the target dev) → `block.<n>.capacity` (bytes). QEMU reports
 * them for running guests and, read from the image, for stopped ones; the test driver reports none. A disk
 * without a capacity (an empty cdrom) or with one beyond 2^53 is left out.
 */
export function diskCapacitiesFromStats(params: readonly TypedParam[]): Map<string, number> {
  const names = new Map<string, string>();
  const capacities = new Map<string, number>();
  for (const p of params) {
    const m = /^block\.(\d+)\.(name|capacity)$/.exec(p.field);
    if (!m) continue;
    const [, index, key] = m as unknown as [string, string, string];
    if (key === 'name' && typeof p.value === 'string') names.set(index, p.value);
    else if (key === 'capacity') {
      const n = typeof p.value === 'bigint' ? Number(p.value) : p.value;
      if (typeof n === 'number' && Number.isSafeInteger(n) && n >= 0) capacities.set(index, n);
    }
  }
  const out = new Map<string, number>();
  for (const [index, name] of names) {
    const capacity = capacities.get(index);
    if (capacity !== undefined) out.set(name, capacity);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Interfaces

/** An `<interface>` as read from domain XML. */
export interface DomainInterfaceDetails {
  /**
   * NIC name used as `Nic.device` and as the key of NIC limits: `<target dev>` (live XML: `vnet3`; also
   * kept in inactive XML when set by the user), else `<alias name>` (live: `net1` for user-mode NICs),
   * else `net<N>` with N the NIC's index among the domain's interfaces (inactive XML). libvirt's own
   * aliases follow the same `net<N>` numbering.
   */
  device: string;
  /**
   * What to pass as `device` to `DOMAIN_GET/SET_INTERFACE_PARAMETERS`: the target dev when the XML is live,
   * else the MAC address (which libvirt also accepts, and the only key an inactive NIC has).
   */
  paramsDevice: string;
  /** `type=`: `network`, `bridge`, `user`, `direct`, `ethernet`, `hostdev`, `vhostuser`, ... */
  type: string;
  mac?: string;
  /** `<source network>`. */
  network?: string;
  /** `<source bridge>`. */
  bridge?: string;
  /** `<source dev>` (direct/macvtap). */
  sourceDev?: string;
  /** `<source mode>` (direct: `vepa`, `bridge`, `private`, `passthrough`). */
  sourceMode?: string;
  portgroup?: string;
  targetDev?: string;
  alias?: string;
  model?: string;
  /** `<vlan><tag id>` values, in order. */
  vlanTags: number[];
  /** `<vlan trunk='yes'>`. */
  vlanTrunk: boolean;
  /** `<bandwidth>` (KiB/s; burst KiB). */
  bandwidth: LibvirtBandwidth;
}

function readBandwidth(bw: XmlValue | undefined): LibvirtBandwidth {
  const out: LibvirtBandwidth = {};
  const dir = (el: XmlValue | undefined, prefix: 'inbound' | 'outbound') => {
    const get = (name: string) => {
      const n = parseIntSafe(attr(el, name));
      return n !== undefined && n >= 0 ? n : undefined;
    };
    const average = get('average');
    const peak = get('peak');
    const burst = get('burst');
    const floor = get('floor');
    if (average !== undefined) out[`${prefix}Average`] = average;
    if (peak !== undefined) out[`${prefix}Peak`] = peak;
    if (burst !== undefined) out[`${prefix}Burst`] = burst;
    if (floor !== undefined && prefix === 'inbound') out.inboundFloor = floor;
  };
  dir(child(bw, 'inbound'), 'inbound');
  dir(child(bw, 'outbound'), 'outbound');
  return out;
}

function readVlan(vlan: XmlValue | undefined): { tags: number[]; trunk: boolean } {
  const tags: number[] = [];
  for (const tag of children(vlan, 'tag')) {
    const id = parseIntSafe(attr(tag, 'id'));
    if (id !== undefined && id >= 0 && id <= 4095) tags.push(id);
  }
  return { tags, trunk: attr(vlan, 'trunk') === 'yes' };
}

function readInterfaces(root: XmlValue, live = isLive(root)): DomainInterfaceDetails[] {
  const devices = child(root, 'devices');
  return children(devices, 'interface').map((el, i) => {
    const source = child(el, 'source');
    const targetDev = attr(child(el, 'target'), 'dev');
    const alias = attr(child(el, 'alias'), 'name');
    const mac = attr(child(el, 'mac'), 'address')?.toLowerCase();
    const device = targetDev ?? alias ?? `net${i}`;
    const vlan = readVlan(child(el, 'vlan'));
    const d: DomainInterfaceDetails = {
      device,
      paramsDevice: live && targetDev !== undefined ? targetDev : (mac ?? device),
      type: attr(el, 'type') ?? 'unknown',
      vlanTags: vlan.tags,
      vlanTrunk: vlan.trunk,
      bandwidth: readBandwidth(child(el, 'bandwidth')),
    };
    const opt = (key: keyof DomainInterfaceDetails, value: string | undefined) => {
      if (value !== undefined) (d as unknown as Record<string, unknown>)[key] = value;
    };
    opt('mac', mac);
    opt('network', attr(source, 'network'));
    opt('bridge', attr(source, 'bridge'));
    opt('sourceDev', attr(source, 'dev'));
    opt('sourceMode', attr(source, 'mode'));
    opt('portgroup', attr(source, 'portgroup'));
    opt('targetDev', targetDev);
    opt('alias', alias);
    opt('model', attr(child(el, 'model'), 'type'));
    return d;
  });
}

function toNic(d: DomainInterfaceDetails): Nic {
  const nic: Nic = { device: d.device };
  if (d.mac !== undefined) nic.mac = d.mac;
  const network = d.network ?? d.bridge ?? d.sourceDev;
  if (network !== undefined) nic.network = network;
  if (d.vlanTags[0] !== undefined) nic.vlan = d.vlanTags[0];
  if (d.model !== undefined) nic.model = d.model;
  return nic;
}

// ---------------------------------------------------------------------------------------------------------
// Metadata

function resolveNamespace(
  prefix: string | undefined,
  scopes: readonly (XmlValue | undefined)[],
): string | undefined {
  const key = prefix === undefined ? 'xmlns' : `xmlns:${prefix}`;
  for (const scope of scopes) {
    const ns = attr(scope, key);
    if (ns !== undefined) return ns;
  }
  return undefined;
}

function splitName(name: string): { prefix?: string; local: string } {
  const i = name.indexOf(':');
  return i === -1 ? { local: name } : { prefix: name.slice(0, i), local: name.slice(i + 1) };
}

function readMetadata(root: XmlValue): { tags: string[]; namespaces: string[] } {
  const metadata = child(root, 'metadata');
  const tags: string[] = [];
  const namespaces = new Set<string>();
  for (const name of childNames(metadata)) {
    const { prefix } = splitName(name);
    for (const el of children(metadata, name)) {
      const ns = resolveNamespace(prefix, [el, metadata, root]);
      if (ns === undefined) continue;
      namespaces.add(ns);
      if (ns !== HVKIT_METADATA_NAMESPACE) continue;
      for (const tagName of childNames(el)) {
        const tagParts = splitName(tagName);
        if (tagParts.local !== 'tag') continue;
        for (const tagEl of children(el, tagName)) {
          if (resolveNamespace(tagParts.prefix, [tagEl, el, metadata, root]) !== HVKIT_METADATA_NAMESPACE)
            continue;
          const t = text(tagEl);
          if (t !== undefined && !tags.includes(t)) tags.push(t);
        }
      }
    }
  }
  return { tags, namespaces: [...namespaces] };
}

/**
 * The metadata element holding hvkit's tags, for `DOMAIN_SET_METADATA` with type
 * {@link VIR_DOMAIN_METADATA_ELEMENT}, key {@link HVKIT_METADATA_PREFIX} and uri
 * {@link HVKIT_METADATA_NAMESPACE}: `<hvkit:guest xmlns:hvkit="..."><hvkit:tag>prod</hvkit:tag></hvkit:guest>`.
 * Tags are trimmed and de-duplicated, in order.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for an empty tag, a tag over 256 characters or with control
 *   characters.
 */
export function buildHvkitMetadataXml(tags: readonly string[]): string {
  if (!Array.isArray(tags)) throw new TypeError('tags must be an array of strings.');
  const unique: string[] = [];
  for (const tag of tags) {
    if (typeof tag !== 'string') throw new TypeError('tags must be an array of strings.');
    const t = tag.trim();
    if (t === '' || t.length > 256 || hasControlChar(t)) {
      throw hvkitError('INVALID_ARGUMENT', `Invalid tag ${JSON.stringify(tag.slice(0, 80))}.`, {
        adapter: ADAPTER_ID,
        details: { tag: tag.slice(0, 80) },
      });
    }
    if (!unique.includes(t)) unique.push(t);
  }
  return buildXml({
    [`${HVKIT_METADATA_PREFIX}:guest`]: {
      [`@_xmlns:${HVKIT_METADATA_PREFIX}`]: HVKIT_METADATA_NAMESPACE,
      [`${HVKIT_METADATA_PREFIX}:tag`]: unique,
    },
  });
}

// ---------------------------------------------------------------------------------------------------------
// Details

/** Options of {@link parseDomainXmlDetails}. */
export interface ParseDomainXmlDetailsOptions {
  /**
   * cgroup version of the host, for `limits` (CPU weight and swap); see `LimitsMappingOptions`. Default 1
   * (pass the host's real version: the v1 formulas are wrong on v2 hosts).
   */
  cgroupVersion?: CgroupVersion;
  /** `source` of the security labels. Default: `live` when the root element has an `id` (live XML), else `config`. */
  labelSource?: 'live' | 'config';
}

/** Facts from domain XML beyond {@link Guest}. */
export interface DomainXmlDetails {
  uuid: string;
  name: string;
  /** `<domain type>`: `kvm`, `qemu`, `test`, `xen`, `lxc`... */
  domainType: string;
  /** Whether the XML describes the running domain (its root has an `id`). */
  live: boolean;
  /** Domain id of a running domain. */
  domainId?: number;
  title?: string;
  description?: string;
  /** `<resource><partition>`, e.g. `/machine`. */
  resourcePartition?: string;
  /** `<vcpu>` (maximum) and its `current=` (online vCPUs; equals the maximum when absent). */
  vcpus: { max: number; current: number };
  /** `<memory>`, `<currentMemory>`, `<maxMemory>` (hotplug maximum) in bytes. */
  memory: { maxBytes?: number; currentBytes?: number; hotplugMaxBytes?: number };
  iothreads?: number;
  os: { type?: string; arch?: string; machine?: string };
  /** Domain-level labels (models the spec names only). */
  seclabels: SecurityLabel[];
  /** Per-disk `<seclabel>` overrides. */
  diskSeclabels: DiskSecurityLabel[];
  /** `<cputune>` (µs; shares). */
  cputune: LibvirtCpuTune;
  /** `<memtune>` in KiB. */
  memtune: LibvirtMemTune;
  /** `<blkiotune>`: weight and per-host-device throttles. */
  blkiotune: { weight?: number; devices: LibvirtBlkioDevice[] };
  /**
   * The definition's limits as {@link ResourceLimits} (the persistent view; a running domain's live values
   * may differ): `cpu` from `<cputune>`, `memory` from `<memtune>`, `disks` from each disk's `<iotune>`,
   * `nics` from each interface's `<bandwidth>`. Every disk and NIC has an entry; unset values are `null`.
   * `<blkiotune>` device throttles are keyed by host path and are in `blkiotune`, not here.
   */
  limits: ResourceLimits;
  disks: DomainDiskDetails[];
  interfaces: DomainInterfaceDetails[];
  /** hvkit tags (as in `Guest.tags`). */
  tags: string[];
  /** Namespace URIs of the elements in `<metadata>`. */
  metadataNamespaces: string[];
}

function isLive(root: XmlValue): boolean {
  return attr(root, 'id') !== undefined;
}

/** A `<memtune>`-style size element in KiB (libvirt rounds bytes up to whole KiB). */
function scaledKib(value: XmlValue | undefined): bigint | undefined {
  const n = parseBigInt(text(value));
  if (n === undefined || n < 0n) return undefined;
  const scale = unitScale(attr(value, 'unit') ?? 'KiB');
  if (scale === undefined) return undefined;
  return (n * scale + 1023n) / 1024n;
}

function readCpuTune(cputune: XmlValue | undefined): LibvirtCpuTune {
  const out: LibvirtCpuTune = {};
  const map: ReadonlyArray<readonly [keyof LibvirtCpuTune, string]> = [
    ['shares', 'shares'],
    ['period', 'period'],
    ['quota', 'quota'],
    ['globalPeriod', 'global_period'],
    ['globalQuota', 'global_quota'],
    ['emulatorPeriod', 'emulator_period'],
    ['emulatorQuota', 'emulator_quota'],
    ['iothreadPeriod', 'iothread_period'],
    ['iothreadQuota', 'iothread_quota'],
  ];
  for (const [key, name] of map) {
    const v = parseBigInt(childText(cputune, name));
    if (v !== undefined) out[key] = v;
  }
  return out;
}

function readMemTune(memtune: XmlValue | undefined): LibvirtMemTune {
  const out: LibvirtMemTune = {};
  const hard = scaledKib(child(memtune, 'hard_limit'));
  const soft = scaledKib(child(memtune, 'soft_limit'));
  const swap = scaledKib(child(memtune, 'swap_hard_limit'));
  const min = scaledKib(child(memtune, 'min_guarantee'));
  if (hard !== undefined) out.hardLimitKib = hard;
  if (soft !== undefined) out.softLimitKib = soft;
  if (swap !== undefined) out.swapHardLimitKib = swap;
  if (min !== undefined) out.minGuaranteeKib = min;
  return out;
}

function readBlkioTune(blkiotune: XmlValue | undefined): { weight?: number; devices: LibvirtBlkioDevice[] } {
  const devices: LibvirtBlkioDevice[] = [];
  for (const dev of children(blkiotune, 'device')) {
    const path = childText(dev, 'path');
    if (path === undefined) continue;
    const d: LibvirtBlkioDevice = { path };
    const map: ReadonlyArray<readonly [keyof Omit<LibvirtBlkioDevice, 'path'>, string]> = [
      ['weight', 'weight'],
      ['readBytesSec', 'read_bytes_sec'],
      ['writeBytesSec', 'write_bytes_sec'],
      ['readIopsSec', 'read_iops_sec'],
      ['writeIopsSec', 'write_iops_sec'],
    ];
    for (const [key, name] of map) {
      const v = parseIntSafe(childText(dev, name));
      if (v !== undefined && v >= 0) d[key] = v;
    }
    devices.push(d);
  }
  const weight = parseIntSafe(childText(blkiotune, 'weight'));
  return { ...(weight !== undefined ? { weight } : {}), devices };
}

/**
 * Domain XML → {@link DomainXmlDetails}: labels, tuning, limits, title/description, resource partition,
 * domain type and the full disk and interface lists.
 *
 * @throws HvkitError `PROTOCOL` as {@link parseDomainXml}; TypeError for a bad `cgroupVersion`.
 */
export function parseDomainXmlDetails(
  xml: string,
  options: ParseDomainXmlDetailsOptions = {},
): DomainXmlDetails {
  const cgroupVersion = options.cgroupVersion ?? 1;
  if (cgroupVersion !== 1 && cgroupVersion !== 2) throw new TypeError('cgroupVersion must be 1 or 2.');
  const { root, uuid, name } = rootOf(xml, 'parseDomainXmlDetails');
  const live = isLive(root);
  const labelSource = options.labelSource ?? (live ? 'live' : 'config');
  const disks = readDisks(root);
  const interfaces = readInterfaces(root, live);
  const vcpuEl = child(root, 'vcpu');
  const max = maxVcpus(root);
  const current = parseIntSafe(attr(vcpuEl, 'current'));
  const cputune = readCpuTune(child(root, 'cputune'));
  const memtune = readMemTune(child(root, 'memtune'));
  const meta = readMetadata(root);
  const osType = child(child(root, 'os'), 'type');

  const diskLimits: DiskLimits[] = disks.map((d) => ioTuneToDiskLimits(d.device, d.iotune));
  const nicLimits: NicLimits[] = interfaces.map((n) => bandwidthToNicLimits(n.device, n.bandwidth));
  const cpu = cpuTuneToCpuLimits({ shares: 0n, ...cputune }, { cgroupVersion, vcpus: max });
  if (cpu.maxCores === undefined) cpu.maxCores = null;
  const memory = memTuneToMemoryLimits(
    {
      hardLimitKib: 9_007_199_254_740_991n,
      softLimitKib: 9_007_199_254_740_991n,
      swapHardLimitKib: 9_007_199_254_740_991n,
      ...memtune,
    },
    { cgroupVersion },
  );

  const details: DomainXmlDetails = {
    uuid,
    name,
    domainType: attr(root, 'type') ?? 'unknown',
    live,
    vcpus: { max, current: current !== undefined && current > 0 ? current : max },
    memory: {},
    os: {},
    seclabels: seclabelsOf(root, labelSource),
    diskSeclabels: disks.flatMap((d) => d.seclabels),
    cputune,
    memtune,
    blkiotune: readBlkioTune(child(root, 'blkiotune')),
    limits: { cpu, memory, disks: diskLimits, nics: nicLimits },
    disks,
    interfaces,
    tags: meta.tags,
    metadataNamespaces: meta.namespaces,
  };
  const id = parseIntSafe(attr(root, 'id'));
  if (id !== undefined) details.domainId = id;
  const title = rawText(child(root, 'title'));
  if (title !== undefined && title !== '') details.title = title;
  const description = rawText(child(root, 'description'));
  if (description !== undefined && description !== '') details.description = description;
  const partition = childText(child(root, 'resource'), 'partition');
  if (partition !== undefined) details.resourcePartition = partition;
  const maxBytes = scaledBytes(child(root, 'memory'), 'KiB');
  const currentBytes = scaledBytes(child(root, 'currentMemory'), 'KiB');
  const hotplugMaxBytes = scaledBytes(child(root, 'maxMemory'), 'KiB');
  if (maxBytes !== undefined) details.memory.maxBytes = maxBytes;
  if (currentBytes !== undefined) details.memory.currentBytes = currentBytes;
  if (hotplugMaxBytes !== undefined) details.memory.hotplugMaxBytes = hotplugMaxBytes;
  const iothreads = parseIntSafe(childText(root, 'iothreads'));
  if (iothreads !== undefined) details.iothreads = iothreads;
  const type = text(osType);
  const arch = attr(osType, 'arch');
  const machine = attr(osType, 'machine');
  if (type !== undefined) details.os.type = type;
  if (arch !== undefined) details.os.arch = arch;
  if (machine !== undefined) details.os.machine = machine;
  return details;
}
