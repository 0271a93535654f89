import type { DiskLimits, NicLimits, ResourceLimits } from '../hypervisor/v1/model';
import type { DeepReadonly, SupportsManifest } from '../hypervisor/v1/supports';
import { CPU_WEIGHT_DEFAULT } from '../units/cpu';

/**
 * What a limit field measures, which decides its valid values:
 * - `weight`: integer 1..10000 (cgroup-v2 scale);
 * - `cores`: finite number > 0 (host cores);
 * - `mhz`: safe integer (MHz);
 * - `bytes`: safe integer (bytes);
 * - `rate`: finite number (bytes/s);
 * - `iops`: finite number (operations/s);
 * - `count`: positive safe integer (processes).
 *
 * None is negative. Whether 0 is valid depends on the field ({@link LimitFieldInfo.allowsZero}). `null`
 * (the backend's default: unlimited, none, or the default weight) is valid for every kind.
 */
export type LimitFieldKind = 'weight' | 'cores' | 'mhz' | 'bytes' | 'rate' | 'iops' | 'count';

/** A scalar limit field, named by its section and key (`disks.*` and `nics.*` apply to one device entry). */
export type LimitFieldPath =
  | 'cpu.weight'
  | 'cpu.maxCores'
  | 'cpu.reservationMHz'
  | 'memory.maxBytes'
  | 'memory.softBytes'
  | 'memory.minBytes'
  | 'memory.swapMaxBytes'
  | 'disks.readBytesPerSec'
  | 'disks.writeBytesPerSec'
  | 'disks.readIops'
  | 'disks.writeIops'
  | 'nics.inboundAverageBytesPerSec'
  | 'nics.inboundPeakBytesPerSec'
  | 'nics.inboundBurstBytes'
  | 'nics.outboundAverageBytesPerSec'
  | 'nics.outboundPeakBytesPerSec'
  | 'nics.outboundBurstBytes'
  | 'pids.max';

/** Facts about one scalar limit field. */
export interface LimitFieldInfo {
  /** `section.key`, e.g. `cpu.weight` or `nics.inboundBurstBytes`. */
  readonly path: LimitFieldPath;
  readonly section: 'cpu' | 'memory' | 'disks' | 'nics' | 'pids';
  /** Key inside the section object (or inside each device entry for `disks`/`nics`). */
  readonly key: string;
  readonly kind: LimitFieldKind;
  /** Where {@link SupportsManifest} `limits` says whether the field is supported, e.g. `network.inboundAverage`. */
  readonly supportsPath: string;
  /**
   * Whether 0 is a valid value. It is for a reservation (0 = none, the same as `null`) and for swap (0 = no
   * swap). It is not for a cap: a limit of 0 bytes or 0 bytes/s would stop the guest, and backends read 0
   * as "no limit", so it could not round-trip; `null` is the way to say "no limit".
   */
  readonly allowsZero: boolean;
  /**
   * The number that means the same as `null`, the backend's default, where the field has one: `cpu.weight`
   * 100, `cpu.reservationMHz` 0 and `memory.minBytes` 0. Adapters report a field holding it as `null`
   * (see `normalizeLimits`). Undefined for fields whose default is "unlimited", which only `null` says.
   */
  readonly defaultValue?: number;
  /**
   * Which fact about the host bounds the field, when the adapter knows it (see `ValidateLimitsOptions.host`):
   * `cpu.maxCores` at most the host's logical CPUs; `memory.maxBytes`, `softBytes` and `minBytes` at most the
   * host's memory.
   */
  readonly hostBound?: 'logicalCpus' | 'memoryBytes';
}

/** Every scalar field of {@link ResourceLimits}, in a stable order. */
export const LIMIT_FIELDS: readonly LimitFieldInfo[] = [
  {
    path: 'cpu.weight',
    section: 'cpu',
    key: 'weight',
    kind: 'weight',
    supportsPath: 'cpu.weight',
    allowsZero: false,
    defaultValue: CPU_WEIGHT_DEFAULT,
  },
  {
    path: 'cpu.maxCores',
    section: 'cpu',
    key: 'maxCores',
    kind: 'cores',
    supportsPath: 'cpu.maxCores',
    allowsZero: false,
    hostBound: 'logicalCpus',
  },
  {
    path: 'cpu.reservationMHz',
    section: 'cpu',
    key: 'reservationMHz',
    kind: 'mhz',
    supportsPath: 'cpu.reservationMHz',
    allowsZero: true,
    defaultValue: 0,
  },
  {
    path: 'memory.maxBytes',
    section: 'memory',
    key: 'maxBytes',
    kind: 'bytes',
    supportsPath: 'memory.maxBytes',
    allowsZero: false,
    hostBound: 'memoryBytes',
  },
  {
    path: 'memory.softBytes',
    section: 'memory',
    key: 'softBytes',
    kind: 'bytes',
    supportsPath: 'memory.softBytes',
    allowsZero: false,
    hostBound: 'memoryBytes',
  },
  {
    path: 'memory.minBytes',
    section: 'memory',
    key: 'minBytes',
    kind: 'bytes',
    supportsPath: 'memory.minBytes',
    allowsZero: true,
    defaultValue: 0,
    hostBound: 'memoryBytes',
  },
  {
    path: 'memory.swapMaxBytes',
    section: 'memory',
    key: 'swapMaxBytes',
    kind: 'bytes',
    supportsPath: 'memory.swapMaxBytes',
    allowsZero: true,
  },
  {
    path: 'disks.readBytesPerSec',
    section: 'disks',
    key: 'readBytesPerSec',
    kind: 'rate',
    supportsPath: 'disks.readBytesPerSec',
    allowsZero: false,
  },
  {
    path: 'disks.writeBytesPerSec',
    section: 'disks',
    key: 'writeBytesPerSec',
    kind: 'rate',
    supportsPath: 'disks.writeBytesPerSec',
    allowsZero: false,
  },
  {
    path: 'disks.readIops',
    section: 'disks',
    key: 'readIops',
    kind: 'iops',
    supportsPath: 'disks.readIops',
    allowsZero: false,
  },
  {
    path: 'disks.writeIops',
    section: 'disks',
    key: 'writeIops',
    kind: 'iops',
    supportsPath: 'disks.writeIops',
    allowsZero: false,
  },
  {
    path: 'nics.inboundAverageBytesPerSec',
    section: 'nics',
    key: 'inboundAverageBytesPerSec',
    kind: 'rate',
    supportsPath: 'network.inboundAverage',
    allowsZero: false,
  },
  {
    path: 'nics.inboundPeakBytesPerSec',
    section: 'nics',
    key: 'inboundPeakBytesPerSec',
    kind: 'rate',
    supportsPath: 'network.inboundPeak',
    allowsZero: false,
  },
  {
    path: 'nics.inboundBurstBytes',
    section: 'nics',
    key: 'inboundBurstBytes',
    kind: 'bytes',
    supportsPath: 'network.inboundBurst',
    allowsZero: false,
  },
  {
    path: 'nics.outboundAverageBytesPerSec',
    section: 'nics',
    key: 'outboundAverageBytesPerSec',
    kind: 'rate',
    supportsPath: 'network.outboundAverage',
    allowsZero: false,
  },
  {
    path: 'nics.outboundPeakBytesPerSec',
    section: 'nics',
    key: 'outboundPeakBytesPerSec',
    kind: 'rate',
    supportsPath: 'network.outboundPeak',
    allowsZero: false,
  },
  {
    path: 'nics.outboundBurstBytes',
    section: 'nics',
    key: 'outboundBurstBytes',
    kind: 'bytes',
    supportsPath: 'network.outboundBurst',
    allowsZero: false,
  },
  {
    path: 'pids.max',
    section: 'pids',
    key: 'max',
    kind: 'count',
    supportsPath: 'pids',
    allowsZero: false,
  },
];

const FIELD_BY_PATH: ReadonlyMap<string, LimitFieldInfo> = new Map(LIMIT_FIELDS.map((f) => [f.path, f]));

/** The {@link LimitFieldInfo} of a path. Throws a `TypeError` for an unknown path. */
export function limitField(path: LimitFieldPath): LimitFieldInfo {
  const info = FIELD_BY_PATH.get(path);
  if (!info) throw new TypeError(`unknown limit field ${JSON.stringify(path)}`);
  return info;
}

/**
 * Whether the manifest says the adapter can set and report a field. `false` when the adapter has no
 * limits capability at all.
 */
export function isLimitFieldSupported(
  supports: DeepReadonly<SupportsManifest>['limits'],
  path: LimitFieldPath,
): boolean {
  if (supports === false) return false;
  const info = limitField(path);
  let node: unknown = supports;
  for (const part of info.supportsPath.split('.')) {
    if (typeof node !== 'object' || node === null) return false;
    node = (node as Record<string, unknown>)[part];
  }
  return node === true;
}

/**
 * Builds a patch that sets one field. `device` is required for `disks.*` and `nics.*` fields.
 *
 * @example limitPatch('cpu.weight', 200) // { cpu: { weight: 200 } }
 * @example limitPatch('disks.readIops', 500, 'vda') // { disks: [{ device: 'vda', readIops: 500 }] }
 */
export function limitPatch(path: LimitFieldPath, value: number | null, device?: string): ResourceLimits {
  const info = limitField(path);
  if (info.section === 'disks' || info.section === 'nics') {
    if (typeof device !== 'string' || device === '') {
      throw new TypeError(`limitPatch(${path}) needs the device the entry applies to`);
    }
    return { [info.section]: [{ device, [info.key]: value }] } as ResourceLimits;
  }
  return { [info.section]: { [info.key]: value } } as ResourceLimits;
}

/**
 * Reads one field from limits: the number, `null` (unlimited) or `undefined` (absent). For `disks.*` and
 * `nics.*` it reads the entry of `device`.
 */
export function readLimitField(
  limits: ResourceLimits | undefined,
  path: LimitFieldPath,
  device?: string,
): number | null | undefined {
  if (!limits) return undefined;
  const info = limitField(path);
  if (info.section === 'disks' || info.section === 'nics') {
    const entries = (limits[info.section] ?? []) as readonly (DiskLimits | NicLimits)[];
    const entry = entries.find((e) => e.device === device);
    if (!entry) return undefined;
    return (entry as unknown as Record<string, number | null | undefined>)[info.key];
  }
  const section = limits[info.section] as Record<string, number | null | undefined> | undefined;
  const value = section?.[info.key];
  return value === undefined ? undefined : value;
}
