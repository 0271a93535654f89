/**
 * Host: capabilities XML (`CONNECT_GET_CAPABILITIES`), node info (`NODE_GET_INFO`) and versions to the
 * spec's {@link Host}.
 */

import type { Host, HostSecurityModel } from '@hvkit/core';
import { hasEnforcingState, securityModelName } from './seclabel';
import {
  attr,
  child,
  children,
  childText,
  normalizeUuid,
  parseIntSafe,
  parseRoot,
  rawText,
  scaledBytes,
  text,
} from './xml-util';

/** A `<secmodel>` of the capabilities. */
export interface CapabilitiesSecModel {
  /** libvirt's model name: `selinux`, `apparmor`, `dac`, `none`, or a driver's own (`testSecurity`). */
  model: string;
  /** Domain of interpretation; `''` when libvirt reports an empty one. */
  doi?: string;
  /** `<baselabel type='kvm'>+999:+994</baselabel>`: the default label per domain type. */
  baseLabels: { type?: string; label: string }[];
}

/** A `<guest>` of the capabilities: an OS type and architecture the driver can run, and with which domain types. */
export interface CapabilitiesGuest {
  osType: string;
  arch: string;
  wordSize?: number;
  emulator?: string;
  /** `<domain type>` values: `kvm`, `qemu`, `test`... */
  domainTypes: string[];
  /** Machine types (canonical names and aliases). */
  machines: string[];
}

/** Parsed capabilities XML. */
export interface LibvirtCapabilities {
  /** `<host><uuid>`, lower case (the test driver has none). */
  hostUuid?: string;
  cpu: {
    arch?: string;
    model?: string;
    vendor?: string;
    sockets?: number;
    dies?: number;
    cores?: number;
    threads?: number;
  };
  /** Sum of the NUMA cells' memory, in bytes. */
  memoryBytes?: number;
  /** Number of host CPUs listed in the NUMA topology. */
  topologyCpus?: number;
  secmodels: CapabilitiesSecModel[];
  guests: CapabilitiesGuest[];
}

/**
 * Capabilities XML → {@link LibvirtCapabilities}. Tolerant: unknown elements are ignored, missing ones
 * leave fields out.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML or a root other than `<capabilities>`.
 */
export function parseCapabilitiesXml(xml: string): LibvirtCapabilities {
  const root = parseRoot(xml, 'capabilities', 'parseCapabilitiesXml');
  const host = child(root, 'host');
  const cpuEl = child(host, 'cpu');
  const topology = child(cpuEl, 'topology');
  const out: LibvirtCapabilities = { cpu: {}, secmodels: [], guests: [] };
  const uuid = childText(host, 'uuid');
  if (uuid !== undefined) out.hostUuid = normalizeUuid(uuid);
  const setCpu = (key: keyof LibvirtCapabilities['cpu'], value: string | number | undefined) => {
    if (value !== undefined) (out.cpu as Record<string, string | number>)[key] = value;
  };
  setCpu('arch', childText(cpuEl, 'arch'));
  setCpu('model', childText(cpuEl, 'model'));
  setCpu('vendor', childText(cpuEl, 'vendor'));
  setCpu('sockets', positive(attr(topology, 'sockets')));
  setCpu('dies', positive(attr(topology, 'dies')));
  setCpu('cores', positive(attr(topology, 'cores')));
  setCpu('threads', positive(attr(topology, 'threads')));

  let memory = 0;
  let haveMemory = false;
  let cpus = 0;
  for (const cell of children(child(child(host, 'topology'), 'cells'), 'cell')) {
    const m = scaledBytes(child(cell, 'memory'), 'KiB');
    if (m !== undefined) {
      memory += m;
      haveMemory = true;
    }
    const cpusEl = child(cell, 'cpus');
    const num = positive(attr(cpusEl, 'num'));
    cpus += num ?? children(cpusEl, 'cpu').length;
  }
  if (haveMemory && Number.isSafeInteger(memory)) out.memoryBytes = memory;
  if (cpus > 0) out.topologyCpus = cpus;

  for (const sm of children(host, 'secmodel')) {
    const model = childText(sm, 'model');
    if (model === undefined) continue;
    const entry: CapabilitiesSecModel = { model, baseLabels: [] };
    const doiEl = child(sm, 'doi');
    if (doiEl !== undefined) entry.doi = text(doiEl) ?? '';
    for (const bl of children(sm, 'baselabel')) {
      const label = rawText(bl);
      if (label === undefined || label.trim() === '') continue;
      const type = attr(bl, 'type');
      entry.baseLabels.push(type !== undefined ? { type, label } : { label });
    }
    out.secmodels.push(entry);
  }

  for (const g of children(root, 'guest')) {
    const osType = childText(g, 'os_type') ?? 'unknown';
    for (const archEl of children(g, 'arch')) {
      const arch = attr(archEl, 'name');
      if (arch === undefined) continue;
      const guest: CapabilitiesGuest = { osType, arch, domainTypes: [], machines: [] };
      const wordSize = positive(childText(archEl, 'wordsize'));
      if (wordSize !== undefined) guest.wordSize = wordSize;
      const emulator = childText(archEl, 'emulator');
      if (emulator !== undefined) guest.emulator = emulator;
      for (const d of children(archEl, 'domain')) {
        const t = attr(d, 'type');
        if (t !== undefined && !guest.domainTypes.includes(t)) guest.domainTypes.push(t);
      }
      for (const m of children(archEl, 'machine')) {
        const name = text(m);
        if (name !== undefined && !guest.machines.includes(name)) guest.machines.push(name);
      }
      out.guests.push(guest);
    }
  }
  return out;
}

function positive(value: string | undefined): number | undefined {
  const n = parseIntSafe(value);
  return n !== undefined && n > 0 ? n : undefined;
}

/** `NODE_GET_INFO` reply (`virNodeInfo`). */
export interface LibvirtNodeInfo {
  /** CPU model string (`x86_64` on QEMU hosts; the node file's model on the test driver). */
  model: string;
  /** Memory in KiB. */
  memory: number | bigint;
  /** Active CPUs. */
  cpus: number;
  /** CPU frequency in MHz. */
  mhz: number;
  /** NUMA nodes (1 when unknown). */
  nodes: number;
  /** Sockets **per NUMA node**. */
  sockets: number;
  /** Cores per socket. */
  cores: number;
  /** Threads per core. */
  threads: number;
}

/**
 * libvirt's version number (`CONNECT_GET_LIB_VERSION`, `CONNECT_GET_VERSION`):
 * major × 1000000 + minor × 1000 + micro → `major.minor.micro` (9000000 → `9.0.0`, 7002022 → `7.2.22`).
 *
 * @throws TypeError for a negative or non-integer value.
 */
export function formatLibvirtVersion(version: number | bigint): string {
  const v = typeof version === 'bigint' ? version : Number.isSafeInteger(version) ? BigInt(version) : -1n;
  if (v < 0n) throw new TypeError(`Not a libvirt version number: ${String(version)}.`);
  return `${v / 1_000_000n}.${(v / 1000n) % 1000n}.${v % 1000n}`;
}

/** Inputs of {@link mapHost}: whatever the adapter has read; every part is optional except the hostname. */
export interface MapHostInput {
  /** `CONNECT_GET_HOSTNAME`. */
  hostname: string;
  /** Parsed capabilities ({@link parseCapabilitiesXml}) or the XML itself. */
  capabilities?: LibvirtCapabilities | string;
  nodeInfo?: LibvirtNodeInfo;
  /** `CONNECT_GET_TYPE` (`QEMU`, `TEST`); else derived from `uri`. */
  hypervisorType?: string;
  /** `CONNECT_GET_VERSION` (the hypervisor's version, e.g. QEMU 7002022; 0 when unknown). */
  hypervisorVersion?: number | bigint;
  /** `CONNECT_GET_LIB_VERSION` (libvirt's version, 9000000). */
  libVersion?: number | bigint;
  /** Connection URI (`qemu:///system`, `test:///default`), used when `hypervisorType` is absent. */
  uri?: string;
  /** `NODE_GET_SECURITY_MODEL` (primary model); used when the capabilities list none. */
  securityModel?: { model: string; doi?: string };
  /**
   * The host's enforcing state per model, where known. libvirt's RPC does not report it (the capabilities'
   * `<secmodel>` has no such field); the adapter reads `/sys/fs/selinux/enforce` when the daemon runs on
   * this machine. Only models with such a state (`selinux`, `apparmor`) take it.
   */
  enforcing?: { selinux?: boolean; apparmor?: boolean };
}

const SCHEME_KIND: Readonly<Record<string, string>> = {
  qemu: 'QEMU',
  test: 'TEST',
  xen: 'Xen',
  lxc: 'LXC',
  bhyve: 'BHYVE',
  ch: 'CH',
  vbox: 'VBOX',
};

/**
 * Builds the spec's {@link Host}.
 *
 * - `id`: the capabilities' host UUID, else the hostname. `name`: the hostname.
 * - `hypervisor.kind`: `hypervisorType`, else from the URI scheme (`qemu` → `QEMU`, `test` → `TEST`, as `CONNECT_GET_TYPE` says).
 *   `version`: the hypervisor version (`7.2.22`) when known and non-zero, else libvirt's. `build`: libvirt's
 *   version (`9.0.0`).
 * - `cpu.model`: the capabilities' CPU model, else node info's model. `sockets`: node info nodes × sockets
 *   (node info counts sockets per NUMA node), else the capabilities' topology; `cores` per socket and
 *   `threads` per core likewise; `mhz` from node info.
 * - `memoryBytes`: node info memory (KiB × 1024), else the NUMA cells' sum.
 * - `securityModels`: the capabilities' secmodels whose model the spec names (`selinux`, `apparmor`, `dac`,
 *   `none`), with `doi`; else `securityModel`. Driver-specific models (`testSecurity`) are left out.
 *   `enforcing` from `input.enforcing`, for SELinux and AppArmor only (DAC and none have no such state).
 */
export function mapHost(input: MapHostInput): Host {
  if (typeof input !== 'object' || input === null || typeof input.hostname !== 'string') {
    throw new TypeError('mapHost: input.hostname must be a string.');
  }
  const caps =
    typeof input.capabilities === 'string' ? parseCapabilitiesXml(input.capabilities) : input.capabilities;
  const ni = input.nodeInfo;
  const scheme = input.uri ? /^([a-z0-9]+)(?:\+[a-z0-9]+)?:/i.exec(input.uri)?.[1]?.toLowerCase() : undefined;
  const kind = input.hypervisorType ?? (scheme ? (SCHEME_KIND[scheme] ?? scheme) : 'libvirt');
  const lib = input.libVersion !== undefined ? formatLibvirtVersion(input.libVersion) : undefined;
  const hv =
    input.hypervisorVersion !== undefined && BigInt(input.hypervisorVersion) > 0n
      ? formatLibvirtVersion(input.hypervisorVersion)
      : undefined;
  const host: Host = {
    id: caps?.hostUuid ?? input.hostname,
    name: input.hostname,
    hypervisor: { kind, version: hv ?? lib ?? 'unknown' },
    cpu: {},
    securityModels: [],
  };
  if (lib !== undefined) host.hypervisor.build = lib;
  const model = caps?.cpu.model ?? (ni?.model ? ni.model : undefined);
  if (model !== undefined) host.cpu.model = model;
  const nodes = ni && ni.nodes > 0 ? ni.nodes : 1;
  const sockets = ni && ni.sockets > 0 ? ni.sockets * nodes : caps?.cpu.sockets;
  const cores = ni && ni.cores > 0 ? ni.cores : caps?.cpu.cores;
  const threads = ni && ni.threads > 0 ? ni.threads : caps?.cpu.threads;
  if (sockets !== undefined) host.cpu.sockets = sockets;
  if (cores !== undefined) host.cpu.cores = cores;
  if (threads !== undefined) host.cpu.threads = threads;
  if (ni && ni.mhz > 0) host.cpu.mhz = ni.mhz;
  if (ni) {
    const kib = BigInt(ni.memory);
    const bytes = kib * 1024n;
    if (kib >= 0n && bytes <= BigInt(Number.MAX_SAFE_INTEGER)) host.memoryBytes = Number(bytes);
  } else if (caps?.memoryBytes !== undefined) {
    host.memoryBytes = caps.memoryBytes;
  }
  const models: HostSecurityModel[] = [];
  for (const sm of caps?.secmodels ?? []) {
    const name = securityModelName(sm.model);
    if (!name || models.some((m) => m.model === name)) continue;
    models.push(sm.doi !== undefined && sm.doi !== '' ? { model: name, doi: sm.doi } : { model: name });
  }
  if (models.length === 0 && input.securityModel) {
    const name = securityModelName(input.securityModel.model);
    if (name) {
      const doi = input.securityModel.doi;
      models.push(doi ? { model: name, doi } : { model: name });
    }
  }
  for (const m of models) {
    const enforcing = input.enforcing?.[m.model as 'selinux' | 'apparmor'];
    if (hasEnforcingState(m.model) && typeof enforcing === 'boolean') m.enforcing = enforcing;
  }
  host.securityModels = models;
  return host;
}
