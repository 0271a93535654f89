import { hvkitError } from '../errors/hvkit-error';
import type { DiskLimits, NicLimits, ResourceLimits } from '../hypervisor/v1/model';
import type { DeepReadonly, SupportsManifest } from '../hypervisor/v1/supports';
import { isLimitFieldSupported, LIMIT_FIELDS, type LimitFieldInfo, type LimitFieldKind } from './fields';

/** One problem found by {@link validateLimits}. */
export interface LimitsIssue {
  /** Where, e.g. `cpu.weight` or `disks[1].device`. */
  path: string;
  message: string;
}

/** Options of {@link validateLimits}. */
export interface ValidateLimitsOptions {
  /** Adapter id, put on the error. */
  adapter?: string;
  /** Operation, put on the error. Default `limits.set`. */
  operation?: string;
  /**
   * The guest's device names. When given, disk and NIC entries must name one of them
   * (`INVALID_ARGUMENT` otherwise).
   */
  devices?: { disks?: readonly string[]; nics?: readonly string[] };
  /**
   * What the adapter knows about the host the guest runs on. When given, `cpu.maxCores` above
   * `logicalCpus` and `memory.maxBytes`, `softBytes` or `minBytes` above `memoryBytes` are
   * `INVALID_ARGUMENT`: no host can give a guest more than it has.
   */
  host?: LimitsHostFacts;
}

/** Host facts that bound limits (see {@link ValidateLimitsOptions.host}); a fact left out bounds nothing. */
export interface LimitsHostFacts {
  /** Logical CPUs (hardware threads) of the host: the most `cpu.maxCores` can be. */
  logicalCpus?: number;
  /** Memory of the host in bytes: the most `memory.maxBytes`, `softBytes` and `minBytes` can be. */
  memoryBytes?: number;
}

const SECTION_KEYS: Record<'cpu' | 'memory' | 'pids', readonly string[]> = {
  cpu: LIMIT_FIELDS.filter((f) => f.section === 'cpu').map((f) => f.key),
  memory: LIMIT_FIELDS.filter((f) => f.section === 'memory').map((f) => f.key),
  pids: LIMIT_FIELDS.filter((f) => f.section === 'pids').map((f) => f.key),
};
const ENTRY_FIELDS: Record<'disks' | 'nics', readonly LimitFieldInfo[]> = {
  disks: LIMIT_FIELDS.filter((f) => f.section === 'disks'),
  nics: LIMIT_FIELDS.filter((f) => f.section === 'nics'),
};
const TOP_KEYS = ['cpu', 'memory', 'disks', 'nics', 'pids'];

const KIND_RULE: Record<LimitFieldKind, string> = {
  weight: 'an integer 1..10000 or null',
  cores: 'a finite number > 0 or null',
  mhz: 'safe integer (MHz) or null',
  bytes: 'safe integer (bytes) or null',
  rate: 'finite number (bytes/s) or null',
  iops: 'finite number (operations/s) or null',
  count: 'a positive safe integer or null',
};

/** The rule a field's values follow, for messages. */
function ruleOf(info: LimitFieldInfo): string {
  const rule = KIND_RULE[info.kind];
  if (info.kind === 'weight' || info.kind === 'cores' || info.kind === 'count') return rule;
  return `${info.allowsZero ? 'a non-negative' : 'a positive'} ${rule}`;
}

function validValue(info: LimitFieldInfo, value: unknown): boolean {
  if (value === null) return true;
  if (typeof value !== 'number' || !Number.isFinite(value)) return false;
  if (value === 0 && !info.allowsZero) return false;
  switch (info.kind) {
    case 'weight':
      return Number.isInteger(value) && value >= 1 && value <= 10000;
    case 'cores':
      return value > 0;
    case 'mhz':
    case 'bytes':
      return Number.isSafeInteger(value) && value >= 0;
    case 'rate':
    case 'iops':
      return value >= 0;
    case 'count':
      return Number.isSafeInteger(value) && value >= 1;
  }
}

/** Why a value is invalid, or undefined when it is valid (host bounds included when known). */
function valueIssue(
  info: LimitFieldInfo,
  value: unknown,
  host: LimitsHostFacts | undefined,
): string | undefined {
  if (!validValue(info, value)) {
    const hint = value === 0 && info.kind !== 'weight' ? '; null means unlimited' : '';
    return `must be ${ruleOf(info)} (got ${show(value)}${hint})`;
  }
  if (typeof value !== 'number' || info.hostBound === undefined || host === undefined) return undefined;
  const bound = host[info.hostBound];
  if (bound === undefined || value <= bound) return undefined;
  return info.hostBound === 'logicalCpus'
    ? `must be at most the host's ${bound} logical CPUs (got ${show(value)})`
    : `must be at most the host's memory, ${bound} bytes (got ${show(value)})`;
}

function checkHostFacts(host: LimitsHostFacts | undefined): void {
  if (host === undefined) return;
  if (!isPlainObject(host)) throw new TypeError(`options.host must be an object (got ${show(host)})`);
  for (const key of ['logicalCpus', 'memoryBytes'] as const) {
    const v = host[key];
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0)) {
      throw new TypeError(`options.host.${key} must be a positive number (got ${show(v)})`);
    }
  }
}

function show(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value);
  if (value === undefined) return 'undefined';
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Collects the INVALID_ARGUMENT problems of a patch without throwing. */
export function findLimitsIssues(
  patch: ResourceLimits,
  options: Pick<ValidateLimitsOptions, 'devices' | 'host'> = {},
): LimitsIssue[] {
  checkHostFacts(options.host);
  const issues: LimitsIssue[] = [];
  const raw = patch as unknown as Record<string, unknown>;
  for (const key of Object.keys(raw)) {
    if (!TOP_KEYS.includes(key)) issues.push({ path: key, message: `unknown key ${JSON.stringify(key)}` });
  }
  for (const section of ['cpu', 'memory', 'pids'] as const) {
    const value = raw[section];
    if (value === undefined) continue;
    if (!isPlainObject(value)) {
      issues.push({ path: section, message: `must be an object (got ${show(value)})` });
      continue;
    }
    for (const key of Object.keys(value)) {
      const path = `${section}.${key}`;
      const info = LIMIT_FIELDS.find((f) => f.path === path);
      if (!info || !SECTION_KEYS[section].includes(key)) {
        issues.push({ path, message: `unknown key ${JSON.stringify(key)}` });
        continue;
      }
      const v = value[key];
      const problem = v === undefined ? undefined : valueIssue(info, v, options.host);
      if (problem) issues.push({ path, message: problem });
    }
  }
  for (const section of ['disks', 'nics'] as const) {
    const value = raw[section];
    if (value === undefined) continue;
    if (!Array.isArray(value)) {
      issues.push({ path: section, message: `must be an array of entries (got ${show(value)})` });
      continue;
    }
    const seen = new Set<string>();
    const known = options.devices?.[section];
    value.forEach((entry: unknown, i: number) => {
      const at = `${section}[${i}]`;
      if (!isPlainObject(entry)) {
        issues.push({ path: at, message: `must be an object (got ${show(entry)})` });
        return;
      }
      const device = entry.device;
      if (typeof device !== 'string' || device.trim() === '') {
        issues.push({
          path: `${at}.device`,
          message: `must be a non-empty device name (got ${show(device)})`,
        });
      } else if (seen.has(device)) {
        issues.push({ path: `${at}.device`, message: `duplicate device ${JSON.stringify(device)}` });
      } else {
        seen.add(device);
        if (known && !known.includes(device)) {
          const list = known.length > 0 ? known.join(', ') : 'none';
          issues.push({
            path: `${at}.device`,
            message: `${JSON.stringify(device)} is not a ${section === 'disks' ? 'disk' : 'NIC'} of the guest (known: ${list})`,
          });
        }
      }
      for (const key of Object.keys(entry)) {
        if (key === 'device') continue;
        const info = ENTRY_FIELDS[section].find((f) => f.key === key);
        if (!info) {
          issues.push({ path: `${at}.${key}`, message: `unknown key ${JSON.stringify(key)}` });
          continue;
        }
        const v = entry[key];
        const problem = v === undefined ? undefined : valueIssue(info, v, options.host);
        if (problem) issues.push({ path: `${at}.${key}`, message: problem });
      }
    });
  }
  return issues;
}

/** Lists the fields a (valid) patch sets that the manifest says are unsupported, as `LIMIT_FIELDS` paths. */
export function findUnsupportedLimits(
  patch: ResourceLimits,
  supports: DeepReadonly<SupportsManifest>['limits'],
): string[] {
  const out: string[] = [];
  for (const info of LIMIT_FIELDS) {
    let used = false;
    if (info.section === 'disks' || info.section === 'nics') {
      const entries = (patch[info.section] ?? []) as readonly (DiskLimits | NicLimits)[];
      used = entries.some((e) => (e as unknown as Record<string, unknown>)[info.key] !== undefined);
    } else {
      const section = patch[info.section] as Record<string, unknown> | undefined;
      used = section?.[info.key] !== undefined;
    }
    if (used && !isLimitFieldSupported(supports, info.path)) out.push(info.path);
  }
  return out;
}

/**
 * Validates a `limits.set` patch before anything is changed.
 *
 * Throws `HvkitError` with code
 * - `INVALID_ARGUMENT` for bad values: `cpu.weight` not an integer 1..10000, `cpu.maxCores` not a finite
 *   number > 0, MHz and byte sizes not safe integers, rates or IOPS not finite, anything negative, 0 where
 *   it has no meaning (every cap; only the reservations and `swapMaxBytes` may be 0),
 *   `pids.max` not a positive integer, values above the host's facts (when `options.host` is given),
 *   disk/NIC entries without a device name, duplicate devices, unknown devices (when `options.devices` is
 *   given) and unknown keys; `null` is always valid (the backend's default). The error's `details.issues`
 *   lists every problem ({@link LimitsIssue}).
 * - `UNSUPPORTED` for fields the manifest marks unsupported (`details.fields`), checked only once the
 *   values are valid.
 *
 * A patch that is not an object, or `options.host` facts that are not positive numbers, are API misuse
 * and throw a `TypeError`.
 *
 * @example
 * validateLimits({ cpu: { weight: 200 } }, adapter.supports.limits, { adapter: 'kvm-libvirt' });
 * @example
 * // With what the adapter knows about the host: 12 cores on an 8-thread host is INVALID_ARGUMENT.
 * validateLimits({ cpu: { maxCores: 12 } }, supports, { host: { logicalCpus: 8, memoryBytes: 2 ** 34 } });
 */
export function validateLimits(
  patch: ResourceLimits,
  supports: DeepReadonly<SupportsManifest>['limits'],
  options: ValidateLimitsOptions = {},
): void {
  if (!isPlainObject(patch)) throw new TypeError(`limits must be an object (got ${show(patch)})`);
  const operation = options.operation ?? 'limits.set';
  const issues = findLimitsIssues(patch, options);
  if (issues.length > 0) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `invalid limits: ${issues.map((i) => `${i.path} ${i.message}`).join('; ')}`,
      { adapter: options.adapter, operation, details: { issues } },
    );
  }
  const unsupported = findUnsupportedLimits(patch, supports);
  if (unsupported.length > 0) {
    const who = options.adapter ? `the ${options.adapter} adapter` : 'this adapter';
    const where =
      supports === false
        ? 'supports.limits = false'
        : unsupported
            .map((p) => `supports.limits.${LIMIT_FIELDS.find((f) => f.path === p)?.supportsPath} = false`)
            .join(', ');
    throw hvkitError('UNSUPPORTED', `${unsupported.join(', ')} cannot be set by ${who} (${where})`, {
      adapter: options.adapter,
      operation,
      details: { fields: unsupported },
    });
  }
}

function mergeEntries<T extends { device: string }>(
  current: readonly T[] | undefined,
  patch: readonly T[] | undefined,
): T[] | undefined {
  if (current === undefined && patch === undefined) return undefined;
  const out: T[] = (current ?? []).map((e) => ({ ...e }));
  for (const entry of patch ?? []) {
    const existing = out.find((e) => e.device === entry.device);
    const defined = definedFields(entry);
    if (existing) Object.assign(existing, defined);
    else out.push({ ...defined, device: entry.device } as T);
  }
  return out;
}

function definedFields<T extends object>(value: T | undefined): Partial<T> {
  const out: Partial<T> = {};
  if (!value) return out;
  for (const [k, v] of Object.entries(value)) {
    if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  }
  return out;
}

/**
 * Applies a patch to current limits and returns a new object (neither input is modified). Fields present in
 * the patch (including `null`) override; absent or `undefined` fields keep the current value. Disk and NIC
 * entries are merged by `device`: a patch entry updates the fields it names in the entry of the same device,
 * or is appended when the device has no entry yet.
 */
export function mergeLimits(current: ResourceLimits, patch: ResourceLimits): ResourceLimits {
  const out: ResourceLimits = {};
  for (const section of ['cpu', 'memory', 'pids'] as const) {
    if (current[section] === undefined && patch[section] === undefined) continue;
    (out as Record<string, unknown>)[section] = {
      ...definedFields(current[section]),
      ...definedFields(patch[section]),
    };
  }
  const disks = mergeEntries(current.disks, patch.disks);
  if (disks) out.disks = disks;
  const nics = mergeEntries(current.nics, patch.nics);
  if (nics) out.nics = nics;
  return out;
}
