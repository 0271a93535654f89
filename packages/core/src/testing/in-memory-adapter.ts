import { createHash } from 'node:crypto';
import type { CapabilityName } from '../adapter/capability';
import { resolveGuestRef } from '../adapter/guest-ref';
import { wrapAdapter } from '../adapter/wrap';
import type { BackupSink } from '../backup/sink';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import { quoteForMessage } from '../errors/message';
import type {
  BackupOptions,
  BackupsCapability,
  CallOptions,
  CreateSnapshotOptions,
  EventsCapability,
  HypervisorAdapterV1,
  InventoryCapability,
  LabelsCapability,
  LimitsCapability,
  LimitsGetOptions,
  LimitsSetOptions,
  LimitsSetResult,
  SubscribeOptions,
} from '../hypervisor/v1/hypervisor-adapter-v1';
import { SPEC_V1_CAPABILITIES, SPEC_V1_METHODS, type SpecV1Method } from '../hypervisor/v1/methods';
import type {
  BackupArtifact,
  BackupFile,
  Guest,
  GuestEvent,
  GuestRef,
  Host,
  HvkitWarning,
  ResourceLimits,
  SecurityLabel,
  Snapshot,
} from '../hypervisor/v1/model';
import { SECURITY_MODEL_NAMES } from '../hypervisor/v1/model';
import type { DeepReadonly, LimitsApplyMode, SupportsManifest } from '../hypervisor/v1/supports';
import { isLimitFieldSupported, LIMIT_FIELDS, type LimitFieldPath } from '../limits/fields';
import { forEachLimitHolder } from '../limits/holders';
import { normalizeLimits } from '../limits/normalize';
import { type LimitsHostFacts, mergeLimits, validateLimits } from '../limits/validate';
import { abortError, checkSignal, raceAbort, sleep, throwIfAborted } from '../signal/abort';
import {
  type BackendInternals,
  type CheckpointState,
  createInMemoryBackend,
  type DiskState,
  type GuestState,
  INTERNALS,
  type InMemoryBackend,
  isActivePowerState,
} from './backend';
import type { InMemoryDataset } from './dataset';
import { generateBlock, IN_MEMORY_BLOCK_BYTES, IN_MEMORY_DELTA_HEADER_BYTES } from './disk-data';

const ADAPTER = 'in-memory';

/** Backup method the in-memory adapter reports. */
export const IN_MEMORY_BACKUP_METHOD = 'in-memory-stream';

export type { CapabilityName } from '../adapter/capability';

type DeepPartial<T> = T extends readonly unknown[]
  ? T
  : T extends object
    ? { [K in keyof T]?: DeepPartial<T[K]> }
    : T;

/**
 * Changes to the default manifest, field by field, e.g. `{ limits: { memory: { swapMaxBytes: false } } }`.
 * The adapter behaves as its manifest says: unsupported limit fields reject with `UNSUPPORTED`, optional
 * methods marked unsupported are absent. To remove a whole capability use `without`.
 */
export type InMemorySupportsOverride = {
  [K in keyof SupportsManifest]?: DeepPartial<Exclude<SupportsManifest[K], false>>;
};

/**
 * Deliberate bugs, for testing code (such as the conformance suite) that must notice a broken adapter.
 * Every fault is off by default.
 */
export interface InMemoryFaults {
  /** Report guest and host memory in KiB while calling it bytes (a classic libvirt unit slip). */
  reportMemoryInKiB?: boolean;
  /**
   * Multiply these limit fields when storing them, so what `limits.set` writes does not read back, e.g.
   * `{ 'cpu.weight': 10.24 }` (a forgotten shares conversion).
   */
  scaleLimitsOnWrite?: Partial<Record<LimitFieldPath, number>>;
  /** An aborted or failed backup leaves its temporary snapshot behind. */
  leaveSnapshotOnAbort?: boolean;
  /** A backup that fails without an abort (its sink fails, say) leaves its new checkpoint behind. */
  leaveCheckpointOnFailure?: boolean;
  /** Calls ignore a signal that is already aborted when they start (they run as if none was given). */
  ignorePreAbortedSignal?: boolean;
  /** What an unknown guest rejects with, instead of a `NOT_FOUND` HvkitError. */
  unknownGuestError?: (ref: GuestRef) => unknown;
  /** Backup artifacts report a sha256 that differs from the sha256 of the bytes the sink received. */
  misreportArtifactSha256?: boolean;
  /** `null` on a limit field the manifest marks unsupported is accepted (and ignored) instead of `UNSUPPORTED`. */
  acceptNullOnUnsupported?: boolean;
  /** Limits above the host's logical CPUs or memory are accepted instead of `INVALID_ARGUMENT`. */
  ignoreHostBounds?: boolean;
  /**
   * `null` is stored as the backend's default number (weight 100, reservations 0) and limits are reported
   * as stored, so `null` does not read back as `null` (what a backend does when the adapter does not
   * normalise with `normalizeLimits`).
   */
  reportDefaultsAsNumbers?: boolean;
}

/** Options of {@link createInMemoryAdapter}. */
export interface InMemoryAdapterOptions {
  /** The state to serve; share one backend between adapters to model several connections to one host. */
  backend?: InMemoryBackend;
  /** Initial state of a new backend (ignored with `backend`). Default: `createDefaultDataset()`. */
  dataset?: InMemoryDataset;
  /** Field-level changes to the manifest. */
  supports?: InMemorySupportsOverride;
  /** Capability objects to leave out (their `supports` entry becomes `false`). */
  without?: readonly CapabilityName[];
  /** Deliberate bugs. */
  faults?: InMemoryFaults;
  /** Delay of every call in ms (cancellable), to test timeouts and cancellation. Default 0. */
  latencyMs?: number;
  /** Delay before each backup chunk in ms (cancellable), to abort a backup midway. Default 0. */
  chunkDelayMs?: number;
  /** Blocks per disk a running guest writes before each backup, so incrementals carry data. Default 2. */
  writesPerBackup?: number;
  /** Timeout of calls without `timeoutMs`. Default 30 000 ms. */
  defaultTimeoutMs?: number;
  /** Timeout of backups without `timeoutMs`. Default 600 000 ms. */
  backupTimeoutMs?: number;
}

/**
 * The in-memory adapter: every capability of spec v1 over an {@link InMemoryBackend}. Capability objects
 * are always present unless removed with `without`; optional methods follow the manifest.
 */
export interface InMemoryAdapter extends HypervisorAdapterV1<'in-memory'> {
  readonly inventory: InventoryCapability;
  readonly limits: LimitsCapability;
  readonly labels: LabelsCapability;
  readonly backups: BackupsCapability;
  readonly events: EventsCapability;
  /** The state behind the adapter: read it to check what calls changed; also a conformance probe. */
  readonly backend: InMemoryBackend;
}

/** An in-memory adapter built with `without`: capability objects may be absent. */
export interface PartialInMemoryAdapter extends HypervisorAdapterV1<'in-memory'> {
  readonly backend: InMemoryBackend;
}

/** The manifest of an in-memory adapter with no overrides: everything supported. */
export function defaultInMemorySupports(): SupportsManifest {
  return {
    inventory: { host: true, guests: true, networks: true, storage: true, vlans: true },
    limits: {
      applies: 'live',
      modes: ['live', 'persistent', 'both'],
      cpu: { weight: true, maxCores: true, reservationMHz: true },
      memory: { maxBytes: true, softBytes: true, minBytes: true, swapMaxBytes: true },
      disks: { readBytesPerSec: true, writeBytesPerSec: true, readIops: true, writeIops: true },
      network: {
        inboundAverage: true,
        inboundPeak: true,
        inboundBurst: true,
        outboundAverage: true,
        outboundPeak: true,
        outboundBurst: true,
      },
      pids: true,
    },
    labels: { models: ['selinux', 'dac'], set: true, hostModels: true },
    backups: {
      snapshots: true,
      memorySnapshots: true,
      full: true,
      incremental: true,
      hostConfig: true,
      methods: [IN_MEMORY_BACKUP_METHOD],
    },
    events: { lifecycle: true },
  };
}

function deepMerge(base: unknown, override: unknown): unknown {
  if (override === undefined) return base;
  if (typeof override !== 'object' || override === null || Array.isArray(override)) return override;
  if (typeof base !== 'object' || base === null || Array.isArray(base)) return override;
  const out: Record<string, unknown> = { ...(base as Record<string, unknown>) };
  for (const [k, v] of Object.entries(override)) out[k] = deepMerge(out[k], v);
  return out;
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function scaleLimits(
  patch: ResourceLimits,
  factors: Partial<Record<LimitFieldPath, number>> | undefined,
): ResourceLimits {
  if (!factors) return patch;
  const out = clone(patch);
  for (const info of LIMIT_FIELDS) {
    const factor = factors[info.path];
    if (factor === undefined) continue;
    forEachLimitHolder(out, info, (h) => {
      const v = h[info.key];
      if (typeof v === 'number') h[info.key] = v * factor;
    });
  }
  return out;
}

function sha256Hex(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/**
 * Creates an in-memory hvkit adapter (`adapter: 'in-memory'`) for unit tests of code that uses hvkit, and
 * as the reference the conformance suite is checked against. It implements every capability:
 *
 * - **inventory**: host, guests, networks, storage pools and volumes from the dataset;
 * - **limits**: validated with `validateLimits` (bad values `INVALID_ARGUMENT`, unsupported fields
 *   `UNSUPPORTED`, unknown devices `INVALID_ARGUMENT`, nothing changed), bounded by the host: `maxCores` at
 *   most its logical CPUs (sockets × cores per socket × threads per core) and memory at most its memory;
 *   `apply: 'live' | 'persistent' | 'both'` (default `both` for active guests, `persistent` otherwise).
 *   Persistent values of a running guest apply at its next boot (`appliesAt: 'next-boot'`); `live` on an
 *   inactive guest is a `CONFLICT`. Limits read back normalised (`normalizeLimits`: a field at its default,
 *   such as weight 100, reads `null`);
 * - **labels**: live labels (active guests) then the definition's; `set` on inactive guests only
 *   (`CONFLICT` otherwise); `hostModels`;
 * - **backups**: snapshots (create, list, delete, revert; memory snapshots of active guests), full and
 *   incremental backups that stream each disk's deterministic data in 64 KiB chunks into the sink, with a
 *   temporary snapshot and a checkpoint per backup, and `backupHostConfig` (a JSON document of the state).
 *   An abort or failure removes the temporary snapshot, the new checkpoint and the files already written;
 * - **events**: lifecycle events of the backend (see {@link InMemoryBackend.setPowerState}).
 *
 * Like every adapter it is returned wrapped by `wrapAdapter`, which gives each call its signal and deadline
 * (an already-aborted signal rejects with `ABORTED` without calling it; `timeoutMs`, else `defaultTimeoutMs`,
 * or `backupTimeoutMs` for backups) and converts what it throws. Calls reject with `NOT_FOUND` for an
 * unknown guest; after `close()` they reject with `CONNECTION_LOST`.
 *
 * @example
 * import { createInMemoryAdapter } from '@hvkit/core/testing';
 * const adapter = createInMemoryAdapter();
 * await adapter.limits.set('vm-101', { cpu: { weight: 200 } });
 * expect(adapter.backend.getLimits('vm-101').cpu?.weight).toBe(200);
 *
 * @example A broken variant, to prove a test notices:
 * const broken = createInMemoryAdapter({ faults: { reportMemoryInKiB: true } });
 */
export function createInMemoryAdapter(
  options?: InMemoryAdapterOptions & { without?: undefined },
): InMemoryAdapter;
export function createInMemoryAdapter(options: InMemoryAdapterOptions): PartialInMemoryAdapter;
export function createInMemoryAdapter(
  options: InMemoryAdapterOptions = {},
): InMemoryAdapter | PartialInMemoryAdapter {
  const backend = options.backend ?? createInMemoryBackend({ dataset: options.dataset });
  const internals: BackendInternals = backend[INTERNALS];
  const faults: InMemoryFaults = options.faults ?? {};
  const latencyMs = options.latencyMs ?? 0;
  const chunkDelayMs = options.chunkDelayMs ?? 0;
  const writesPerBackup = options.writesPerBackup ?? 2;
  const defaultTimeoutMs = options.defaultTimeoutMs ?? 30_000;
  const backupTimeoutMs = options.backupTimeoutMs ?? 600_000;
  for (const [name, v] of [
    ['latencyMs', latencyMs],
    ['chunkDelayMs', chunkDelayMs],
    ['writesPerBackup', writesPerBackup],
  ] as const) {
    if (!Number.isFinite(v) || v < 0) throw new TypeError(`${name} must be a non-negative number`);
  }

  const manifest = deepMerge(defaultInMemorySupports(), options.supports) as SupportsManifest;
  for (const cap of options.without ?? []) (manifest as unknown as Record<string, unknown>)[cap] = false;
  const supports = deepFreeze(manifest) as DeepReadonly<SupportsManifest>;

  let closed = false;
  const closeHooks = new Set<() => void>();

  // ------------------------------------------------------------ call plumbing

  /**
   * One call. `wrapAdapter` (at the end) has checked the options, refused an already-aborted signal and
   * passes the call's own signal: the caller's signal and the call's deadline in one.
   */
  async function run<T>(
    operation: string,
    options: CallOptions | undefined,
    fn: (signal: AbortSignal) => T | Promise<T>,
    /** Backups handle their own abort, so their cleanup finishes before the call settles. */
    streaming = false,
  ): Promise<T> {
    const context = { adapter: ADAPTER, operation };
    const signal = options?.signal ?? new AbortController().signal;
    if (closed)
      throw hvkitError('CONNECTION_LOST', `${operation}: the adapter is closed`, {
        ...context,
        retryable: false,
      });
    throwIfAborted(signal, context);
    const failure = internals.takeFailure(operation);
    if (failure !== undefined) throw failure;
    if (latencyMs > 0) await sleep(latencyMs, { signal, ...context });
    const work = Promise.resolve().then(() => fn(signal));
    return await (streaming ? work : raceAbort(work, signal, context));
  }

  function guestState(ref: GuestRef, operation: string): GuestState {
    const { by, value } = resolveGuestRef(ref);
    const state = internals.find({ [by]: value } as GuestRef);
    if (!state) {
      const error = hvkitError('NOT_FOUND', `${operation}: no guest with ${by} ${quoteForMessage(value)}`, {
        adapter: ADAPTER,
        operation,
        details: { [by]: value },
      });
      // The fault layer outside wrapAdapter swaps it for the fault's error.
      unknownGuestErrors.set(error, ref);
      throw error;
    }
    return state;
  }

  function unsupported(operation: string, what: string): HvkitError {
    return hvkitError(
      'UNSUPPORTED',
      `${operation}: ${what} is not supported by the in-memory adapter as configured`,
      {
        adapter: ADAPTER,
        operation,
      },
    );
  }

  const memoryView = (bytes: number) => (faults.reportMemoryInKiB ? Math.floor(bytes / 1024) : bytes);

  function guestView(s: GuestState): Guest {
    const g = clone(s.guest);
    g.memoryBytes = memoryView(g.memoryBytes);
    return g;
  }

  // ------------------------------------------------------------ inventory

  const inv = supports.inventory;
  const inventory: InventoryCapability | undefined =
    inv === false
      ? undefined
      : {
          host: (options) =>
            run('inventory.host', options, (): Host => {
              if (!inv.host) throw unsupported('inventory.host', 'reading the host');
              const h = clone(internals.host);
              if (h.memoryBytes !== undefined) h.memoryBytes = memoryView(h.memoryBytes);
              return h;
            }),
          listGuests: (options) =>
            run('inventory.listGuests', options, () => {
              if (!inv.guests) throw unsupported('inventory.listGuests', 'listing guests');
              return internals.guests.map(guestView);
            }),
          getGuest: (ref, options) =>
            run('inventory.getGuest', options, () => {
              if (!inv.guests) throw unsupported('inventory.getGuest', 'reading guests');
              return guestView(guestState(ref, 'inventory.getGuest'));
            }),
          ...(inv.networks
            ? {
                listNetworks: (options?: CallOptions) =>
                  run('inventory.listNetworks', options, () => clone(internals.networks)),
              }
            : {}),
          ...(inv.storage
            ? {
                listStoragePools: (options?: CallOptions) =>
                  run('inventory.listStoragePools', options, () => clone(internals.pools)),
                listStorageVolumes: (poolId: string, options?: CallOptions) =>
                  run('inventory.listStorageVolumes', options, () => {
                    if (typeof poolId !== 'string')
                      throw new TypeError('listStorageVolumes: poolId must be a string');
                    if (!internals.pools.some((p) => p.id === poolId)) {
                      throw hvkitError(
                        'NOT_FOUND',
                        `inventory.listStorageVolumes: no storage pool ${quoteForMessage(poolId)}`,
                        {
                          adapter: ADAPTER,
                          operation: 'inventory.listStorageVolumes',
                        },
                      );
                    }
                    return clone(internals.volumes.filter((v) => v.poolId === poolId));
                  }),
              }
            : {}),
        };

  // ------------------------------------------------------------ limits

  const lim = supports.limits;
  /**
   * What the adapter reports: stored values minus fields its manifest says it cannot read, with a field at
   * its default reported as `null`.
   */
  const visibleLimits = (stored: ResourceLimits): ResourceLimits => {
    const out = faults.reportDefaultsAsNumbers ? clone(stored) : normalizeLimits(stored);
    for (const info of LIMIT_FIELDS) {
      if (isLimitFieldSupported(lim, info.path)) continue;
      forEachLimitHolder(out, info, (h) => {
        delete h[info.key];
      });
    }
    for (const section of ['cpu', 'memory', 'pids'] as const) {
      if (out[section] && Object.keys(out[section] as object).length === 0) delete out[section];
    }
    for (const section of ['disks', 'nics'] as const) {
      const entries = (out[section] ?? []) as { device: string }[];
      const kept = entries.filter((e) => Object.keys(e).length > 1);
      if (out[section] === undefined) continue;
      if (kept.length === 0) delete out[section];
      else (out as Record<string, unknown>)[section] = kept;
    }
    return out;
  };
  /** The host facts that bound limits: logical CPUs and memory. */
  const hostFacts = (): LimitsHostFacts => {
    const { sockets, cores, threads } = internals.host.cpu;
    const out: LimitsHostFacts = {};
    if (sockets !== undefined && cores !== undefined && threads !== undefined)
      out.logicalCpus = sockets * cores * threads;
    if (internals.host.memoryBytes !== undefined) out.memoryBytes = internals.host.memoryBytes;
    return out;
  };
  /** Fault `acceptNullOnUnsupported`: drops `null` on unsupported fields, so validation lets them through. */
  const withoutUnsupportedNulls = (patch: ResourceLimits): ResourceLimits => {
    if (typeof patch !== 'object' || patch === null) return patch;
    const out = clone(patch);
    for (const info of LIMIT_FIELDS) {
      if (isLimitFieldSupported(lim, info.path)) continue;
      forEachLimitHolder(out, info, (h) => {
        if (h[info.key] === null) delete h[info.key];
      });
    }
    return out;
  };
  /** Fault `reportDefaultsAsNumbers`: `null` on a field with a default number is stored as that number. */
  const nullsAsDefaults = (patch: ResourceLimits): ResourceLimits => {
    const out = clone(patch);
    for (const info of LIMIT_FIELDS) {
      if (info.defaultValue === undefined) continue;
      forEachLimitHolder(out, info, (h) => {
        if (h[info.key] === null) h[info.key] = info.defaultValue;
      });
    }
    return out;
  };
  const limits: LimitsCapability | undefined =
    lim === false
      ? undefined
      : {
          get: (ref, options: LimitsGetOptions = {}) =>
            run('limits.get', options, () => {
              const from = options.from;
              if (from !== undefined && from !== 'live' && from !== 'persistent') {
                throw new TypeError(`limits.get: from must be 'live' or 'persistent', got ${String(from)}`);
              }
              const s = guestState(ref, 'limits.get');
              if (from === 'live' && s.live === undefined) {
                throw hvkitError(
                  'CONFLICT',
                  `limits.get: guest ${s.guest.name} is not running; it has no live limits`,
                  {
                    adapter: ADAPTER,
                    operation: 'limits.get',
                  },
                );
              }
              return visibleLimits(from !== 'persistent' && s.live !== undefined ? s.live : s.persistent);
            }),
          set: (ref, patch, options: LimitsSetOptions = {}) =>
            run('limits.set', options, (): LimitsSetResult => {
              const operation = 'limits.set';
              const apply = options.apply;
              if (apply !== undefined && apply !== 'live' && apply !== 'persistent' && apply !== 'both') {
                throw new TypeError(
                  `limits.set: apply must be 'live', 'persistent' or 'both', got ${String(apply)}`,
                );
              }
              if (apply !== undefined && !lim.modes.includes(apply))
                throw unsupported(operation, `apply: '${apply}'`);
              const s = guestState(ref, operation);
              if (faults.acceptNullOnUnsupported) patch = withoutUnsupportedNulls(patch);
              validateLimits(patch, lim, {
                adapter: ADAPTER,
                operation,
                devices: {
                  disks: s.guest.disks.map((d) => d.device),
                  nics: s.guest.nics.map((n) => n.device),
                },
                ...(faults.ignoreHostBounds ? {} : { host: hostFacts() }),
              });
              const active = s.live !== undefined;
              const mode: LimitsApplyMode = apply ?? (active ? 'both' : 'persistent');
              const warnings: HvkitWarning[] = [];
              let live = mode === 'live' || mode === 'both';
              if (mode === 'live' && !active) {
                throw hvkitError(
                  'CONFLICT',
                  `${operation}: guest ${s.guest.name} is not running; apply 'persistent' instead`,
                  {
                    adapter: ADAPTER,
                    operation,
                  },
                );
              }
              if (mode === 'both' && !active) {
                live = false;
                warnings.push({
                  type: 'compatibility',
                  message: `guest ${s.guest.name} is not running: applied to its definition only`,
                });
              }
              const stored = scaleLimits(
                faults.reportDefaultsAsNumbers ? nullsAsDefaults(patch) : patch,
                faults.scaleLimitsOnWrite,
              );
              if (live) s.live = mergeLimits(s.live ?? {}, stored);
              if (mode !== 'live') {
                s.persistent = mergeLimits(s.persistent, stored);
                internals.emit(s, 'defined', 'updated');
              }
              return {
                limits: visibleLimits(live ? (s.live as ResourceLimits) : s.persistent),
                appliesAt: live ? 'live' : 'next-boot',
                warnings,
              };
            }),
        };

  // ------------------------------------------------------------ labels

  const lab = supports.labels;
  const visibleLabel = (l: SecurityLabel) => lab !== false && lab.models.includes(l.model);
  const labels: LabelsCapability | undefined =
    lab === false
      ? undefined
      : {
          get: (ref, options) =>
            run('labels.get', options, () => {
              const s = guestState(ref, 'labels.get');
              return clone([...(s.liveLabels ?? []), ...s.configLabels].filter(visibleLabel));
            }),
          ...(lab.hostModels
            ? {
                hostModels: (options?: CallOptions) =>
                  run('labels.hostModels', options, () =>
                    clone(internals.host.securityModels.filter((m) => lab.models.includes(m.model))),
                  ),
              }
            : {}),
          ...(lab.set
            ? {
                set: (ref: GuestRef, label: SecurityLabel, options?: CallOptions) =>
                  run('labels.set', options, () => {
                    const operation = 'labels.set';
                    if (typeof label !== 'object' || label === null)
                      throw new TypeError('labels.set: label must be an object');
                    const invalid = (message: string) =>
                      hvkitError('INVALID_ARGUMENT', `${operation}: ${message}`, {
                        adapter: ADAPTER,
                        operation,
                      });
                    if (!SECURITY_MODEL_NAMES.includes(label.model))
                      throw invalid(`unknown model ${quoteForMessage(label.model)}`);
                    if (!['dynamic', 'static', 'none'].includes(label.type)) {
                      throw invalid(
                        `type must be 'dynamic', 'static' or 'none' (got ${quoteForMessage(label.type)})`,
                      );
                    }
                    if (!lab.models.includes(label.model)) {
                      throw hvkitError(
                        'UNSUPPORTED',
                        `${operation}: model ${label.model} is not supported (supports.labels.models = ${lab.models.join(', ')})`,
                        { adapter: ADAPTER, operation },
                      );
                    }
                    if (label.type === 'static' && (typeof label.label !== 'string' || label.label === '')) {
                      throw invalid('a static label needs a non-empty label');
                    }
                    if (label.type === 'dynamic' && label.label !== undefined) {
                      throw invalid('a dynamic label is generated at boot; give baseLabel instead of label');
                    }
                    if (label.type === 'dynamic' && label.relabel === false)
                      throw invalid('dynamic labels always relabel');
                    const s = guestState(ref, operation);
                    if (isActivePowerState(s.guest.powerState)) {
                      throw hvkitError(
                        'CONFLICT',
                        `${operation}: guest ${s.guest.name} is running; labels change only while it is stopped`,
                        {
                          adapter: ADAPTER,
                          operation,
                        },
                      );
                    }
                    const stored: SecurityLabel = { model: label.model, type: label.type, source: 'config' };
                    if (label.type === 'static') {
                      stored.label = label.label;
                      if (label.imageLabel !== undefined) stored.imageLabel = label.imageLabel;
                      stored.relabel = label.relabel ?? false;
                    }
                    if (label.type === 'dynamic') {
                      if (label.baseLabel !== undefined) stored.baseLabel = label.baseLabel;
                      stored.relabel = true;
                    }
                    const at = s.configLabels.findIndex((l) => l.model === label.model);
                    if (at >= 0) s.configLabels[at] = stored;
                    else s.configLabels.push(stored);
                    internals.emit(s, 'defined', 'updated');
                    return clone([...(s.liveLabels ?? []), ...s.configLabels].filter(visibleLabel));
                  }),
              }
            : {}),
        };

  // ------------------------------------------------------------ backups

  const bk = supports.backups;

  function publicSnapshot(record: Snapshot): Snapshot {
    const { id, name, createdAt, kind, parentId, description } = record;
    return clone({
      id,
      name,
      createdAt,
      kind,
      ...(parentId === undefined ? {} : { parentId }),
      ...(description === undefined ? {} : { description }),
    });
  }

  function addSnapshot(
    s: GuestState,
    fields: { name: string; kind: 'disk' | 'memory'; description?: string; temporary: boolean },
  ): string {
    const id = internals.nextId('snap');
    const parentId = s.snapshots.filter((x) => !x.record.temporary).at(-1)?.record.id;
    s.snapshots.push({
      record: {
        id,
        name: fields.name,
        createdAt: internals.now(),
        kind: fields.kind,
        ...(parentId === undefined ? {} : { parentId }),
        ...(fields.description === undefined ? {} : { description: fields.description }),
        guestId: s.guest.id,
        temporary: fields.temporary,
        powerState: s.guest.powerState,
      },
      gens: internals.snapshotGens(s),
    });
    return id;
  }

  function removeSnapshot(s: GuestState, id: string): void {
    const i = s.snapshots.findIndex((x) => x.record.id === id);
    if (i >= 0) s.snapshots.splice(i, 1);
  }

  function removeCheckpoint(s: GuestState, id: string): void {
    const i = s.checkpoints.findIndex((x) => x.record.id === id);
    if (i >= 0) s.checkpoints.splice(i, 1);
  }

  function fileBase(s: GuestState): string {
    return s.guest.name.replace(/[^A-Za-z0-9._-]/g, '_');
  }

  /** Streams blocks of one disk (raw for a full backup, delta records for an incremental). */
  async function* diskChunks(
    disk: DiskState,
    gens: Uint32Array,
    blocks: readonly number[],
    delta: boolean,
    signal: AbortSignal,
    onChunk: (bytes: number) => void,
  ): AsyncGenerator<Uint8Array> {
    const context = { adapter: ADAPTER, operation: 'backups.backup' };
    for (const i of blocks) {
      throwIfAborted(signal, context);
      if (chunkDelayMs > 0) await sleep(chunkDelayMs, { signal, ...context });
      const offset = i * IN_MEMORY_BLOCK_BYTES;
      const length = Math.min(IN_MEMORY_BLOCK_BYTES, disk.dataBytes - offset);
      const data = generateBlock(disk.seed, i, gens[i] as number, length);
      let chunk = data;
      if (delta) {
        chunk = new Uint8Array(IN_MEMORY_DELTA_HEADER_BYTES + length);
        const view = new DataView(chunk.buffer);
        view.setBigUint64(0, BigInt(offset));
        view.setUint32(8, length);
        chunk.set(data, IN_MEMORY_DELTA_HEADER_BYTES);
      }
      yield chunk;
      onChunk(chunk.length);
    }
  }

  async function* bufferChunks(data: Uint8Array, signal: AbortSignal, onChunk: (bytes: number) => void) {
    for (let at = 0; at < data.length; at += IN_MEMORY_BLOCK_BYTES) {
      throwIfAborted(signal, { adapter: ADAPTER, operation: 'backups' });
      const chunk = data.subarray(at, Math.min(data.length, at + IN_MEMORY_BLOCK_BYTES));
      yield chunk;
      onChunk(chunk.length);
    }
  }

  function checkSink(sink: BackupSink, operation: string): void {
    if (typeof sink !== 'object' || sink === null || typeof sink.writeFile !== 'function') {
      throw new TypeError(`${operation}: sink must be a BackupSink (an object with writeFile)`);
    }
  }

  function checkProgress(options: BackupOptions, operation: string): void {
    if (options.onProgress !== undefined && typeof options.onProgress !== 'function') {
      throw new TypeError(`${operation}: onProgress must be a function`);
    }
  }

  async function misreport(file: BackupFile): Promise<BackupFile> {
    if (!faults.misreportArtifactSha256) return file;
    return { ...file, sha256: sha256Hex(new TextEncoder().encode(`not ${file.sha256}`)) };
  }

  async function backupGuest(
    ref: GuestRef,
    sink: BackupSink,
    options: BackupOptions,
    signal: AbortSignal,
  ): Promise<BackupArtifact> {
    const operation = 'backups.backup';
    const context = { adapter: ADAPTER, operation };
    if (bk === false) throw unsupported(operation, 'backups');
    checkSink(sink, operation);
    checkProgress(options, operation);
    const mode = options.mode ?? 'full';
    if (mode !== 'full' && mode !== 'incremental') {
      throw new TypeError(`${operation}: mode must be 'full' or 'incremental', got ${String(mode)}`);
    }
    if (mode === 'full' && !bk.full) throw unsupported(operation, 'a full backup');
    if (mode === 'incremental' && !bk.incremental) throw unsupported(operation, 'an incremental backup');
    const s = guestState(ref, operation);
    let parent: CheckpointState | undefined;
    if (mode === 'incremental') {
      if (typeof options.sinceCheckpoint !== 'string' || options.sinceCheckpoint === '') {
        throw hvkitError(
          'INVALID_ARGUMENT',
          `${operation}: an incremental backup needs sinceCheckpoint`,
          context,
        );
      }
      parent = s.checkpoints.find((c) => c.record.id === options.sinceCheckpoint && !c.record.temporary);
      if (!parent) {
        throw hvkitError(
          'NOT_FOUND',
          `${operation}: guest ${s.guest.name} has no checkpoint ${quoteForMessage(options.sinceCheckpoint)}`,
          context,
        );
      }
    }

    // The guest keeps writing while it runs.
    if (s.guest.powerState === 'running') internals.dirty(s, writesPerBackup);

    const progress = options.onProgress;
    let processed = 0;
    const snapshotId = addSnapshot(s, { name: 'hvkit-backup', kind: 'disk', temporary: true });
    const snap = s.snapshots.find((x) => x.record.id === snapshotId);
    if (snap) snap.record.name = `hvkit-backup-${snapshotId}`;
    const cpId = internals.nextId('cp');
    const checkpoint: CheckpointState = {
      record: {
        id: cpId,
        guestId: s.guest.id,
        createdAt: internals.now(),
        ...(parent ? { parentId: parent.record.id } : {}),
        temporary: true,
      },
      gens: new Map([...(snap?.gens ?? new Map<string, Uint32Array>())].map(([d, g]) => [d, g.slice()])),
    };
    s.checkpoints.push(checkpoint);

    const base = fileBase(s);
    const plan = [...s.disks.values()].map((disk) => {
      const gens = snap?.gens.get(disk.disk.device) ?? disk.gens;
      const before = parent?.gens.get(disk.disk.device);
      const blocks: number[] = [];
      for (let i = 0; i < gens.length; i++) if (!before || before[i] !== gens[i]) blocks.push(i);
      const dataBytes = blocks.reduce(
        (n, i) => n + Math.min(IN_MEMORY_BLOCK_BYTES, disk.dataBytes - i * IN_MEMORY_BLOCK_BYTES),
        0,
      );
      const bytes = parent ? dataBytes + blocks.length * IN_MEMORY_DELTA_HEADER_BYTES : dataBytes;
      const name = parent
        ? `${base}-${disk.disk.device}-${cpId}.delta`
        : `${base}-${disk.disk.device}-${cpId}.raw`;
      return { disk, gens, blocks, bytes, name };
    });
    const definition = new TextEncoder().encode(
      `${JSON.stringify(
        {
          guest: s.guest,
          limits: s.persistent,
          labels: s.configLabels,
          checkpoint: cpId,
          ...(parent ? { parentCheckpoint: parent.record.id } : {}),
        },
        null,
        2,
      )}\n`,
    );
    const definitionName = `${base}-${cpId}.json`;
    const totalBytes = plan.reduce((n, p) => n + p.bytes, 0) + definition.length;
    const report = (phase: string, file?: string) =>
      progress?.({ phase, processedBytes: processed, totalBytes, ...(file ? { file } : {}) });
    const written: string[] = [];
    const files: BackupFile[] = [];
    try {
      report('snapshot');
      for (const p of plan) {
        const onChunk = (n: number) => {
          processed += n;
          report('transfer', p.name);
        };
        const file = await raceAbort(
          sink.writeFile(
            p.name,
            diskChunks(p.disk, p.gens, p.blocks, parent !== undefined, signal, onChunk),
            {
              signal,
              expectedBytes: p.bytes,
            },
          ),
          signal,
          context,
        );
        written.push(p.name);
        files.push(await misreport(file));
      }
      const onChunk = (n: number) => {
        processed += n;
        report('transfer', definitionName);
      };
      const defFile = await raceAbort(
        sink.writeFile(definitionName, bufferChunks(definition, signal, onChunk), {
          signal,
          expectedBytes: definition.length,
        }),
        signal,
        context,
      );
      written.push(definitionName);
      files.push(await misreport(defFile));
      throwIfAborted(signal, context);
      removeSnapshot(s, snapshotId);
      checkpoint.record.temporary = false;
      report('done');
      return {
        id: internals.nextId('artifact'),
        guest: s.guest.id,
        kind: parent ? 'incremental' : 'full',
        method: IN_MEMORY_BACKUP_METHOD,
        createdAt: internals.now(),
        files,
        checkpoint: cpId,
        ...(parent ? { parentCheckpoint: parent.record.id } : {}),
        consistency: s.guest.powerState === 'running' && s.guestAgent ? 'fs-frozen' : 'crash',
      };
    } catch (error) {
      if (!faults.leaveSnapshotOnAbort) removeSnapshot(s, snapshotId);
      if (!faults.leaveCheckpointOnFailure || signal.aborted) removeCheckpoint(s, cpId);
      for (const name of written) {
        try {
          await sink.removeFile?.(name);
        } catch {
          // Best effort: the original error matters more.
        }
      }
      if (signal.aborted) throw abortError(signal, context);
      if (HvkitError.isInstance(error)) throw error;
      throw hvkitError(
        'REMOTE',
        `${operation}: writing to the ${sink.kind} sink failed: ${String((error as Error)?.message ?? error)}`,
        {
          ...context,
          cause: error,
        },
      );
    }
  }

  async function backupHost(
    sink: BackupSink,
    options: BackupOptions,
    signal: AbortSignal,
  ): Promise<BackupArtifact> {
    const operation = 'backups.backupHostConfig';
    const context = { adapter: ADAPTER, operation };
    checkSink(sink, operation);
    checkProgress(options, operation);
    const doc = {
      format: 'hvkit-in-memory-host-config/1',
      exportedAt: internals.now().toISOString(),
      host: internals.host,
      networks: internals.networks,
      pools: internals.pools,
      volumes: internals.volumes,
      guests: internals.guests.map((s) => ({
        ...s.guest,
        limits: s.persistent,
        labels: s.configLabels,
        snapshots: s.snapshots.filter((x) => !x.record.temporary).map((x) => publicSnapshot(x.record)),
        checkpoints: s.checkpoints.filter((c) => !c.record.temporary).map((c) => c.record.id),
      })),
    };
    const data = new TextEncoder().encode(`${JSON.stringify(doc, null, 2)}\n`);
    const id = internals.nextId('host-config');
    const name = `${internals.host.name.replace(/[^A-Za-z0-9._-]/g, '_')}-${id}.json`;
    let processed = 0;
    const onChunk = (n: number) => {
      processed += n;
      options.onProgress?.({
        phase: 'transfer',
        processedBytes: processed,
        totalBytes: data.length,
        file: name,
      });
    };
    let file: BackupFile;
    try {
      file = await raceAbort(
        sink.writeFile(name, bufferChunks(data, signal, onChunk), { signal, expectedBytes: data.length }),
        signal,
        context,
      );
    } catch (error) {
      if (signal.aborted) throw abortError(signal, context);
      if (HvkitError.isInstance(error)) throw error;
      throw hvkitError('REMOTE', `${operation}: writing to the ${sink.kind} sink failed`, {
        ...context,
        cause: error,
      });
    }
    try {
      throwIfAborted(signal, context);
    } catch (error) {
      await sink.removeFile?.(name).catch(() => {});
      throw error;
    }
    return {
      id,
      guest: internals.host.id,
      kind: 'host-config',
      method: IN_MEMORY_BACKUP_METHOD,
      createdAt: internals.now(),
      files: [await misreport(file)],
      consistency: 'crash',
    };
  }

  const backups: BackupsCapability | undefined =
    bk === false
      ? undefined
      : {
          listSnapshots: (ref, options) =>
            run('backups.listSnapshots', options, () => {
              if (!bk.snapshots) throw unsupported('backups.listSnapshots', 'snapshots');
              return guestState(ref, 'backups.listSnapshots').snapshots.map((x) => publicSnapshot(x.record));
            }),
          createSnapshot: (ref, options: CreateSnapshotOptions = {}) =>
            run('backups.createSnapshot', options, () => {
              const operation = 'backups.createSnapshot';
              const context = { adapter: ADAPTER, operation };
              if (!bk.snapshots) throw unsupported(operation, 'snapshots');
              const { name, description, memory, quiesce } = options;
              if (
                name !== undefined &&
                (typeof name !== 'string' || name.trim() === '' || name.includes('/'))
              ) {
                throw hvkitError(
                  'INVALID_ARGUMENT',
                  `${operation}: name must be a non-empty string without '/'`,
                  context,
                );
              }
              if (description !== undefined && typeof description !== 'string') {
                throw hvkitError('INVALID_ARGUMENT', `${operation}: description must be a string`, context);
              }
              if (memory && !bk.memorySnapshots) throw unsupported(operation, 'a memory snapshot');
              const s = guestState(ref, operation);
              const active = isActivePowerState(s.guest.powerState);
              if (memory && !active) {
                throw hvkitError(
                  'CONFLICT',
                  `${operation}: guest ${s.guest.name} is not running; a memory snapshot needs a running guest`,
                  context,
                );
              }
              if (quiesce && !(s.guest.powerState === 'running' && s.guestAgent)) {
                throw hvkitError(
                  'CONFLICT',
                  `${operation}: quiescing needs a running guest with a guest agent`,
                  context,
                );
              }
              const finalName =
                name ?? `${s.guest.name}-${internals.now().toISOString().replace(/[:.]/g, '-')}`;
              if (s.snapshots.some((x) => x.record.name === finalName)) {
                throw hvkitError(
                  'CONFLICT',
                  `${operation}: guest ${s.guest.name} already has a snapshot named ${quoteForMessage(finalName)}`,
                  context,
                );
              }
              const id = addSnapshot(s, {
                name: finalName,
                kind: memory ? 'memory' : 'disk',
                ...(description === undefined ? {} : { description }),
                temporary: false,
              });
              const record = s.snapshots.find((x) => x.record.id === id)?.record as Snapshot;
              return publicSnapshot(record);
            }),
          deleteSnapshot: (ref, snapshotId, options) =>
            run('backups.deleteSnapshot', options, () => {
              const operation = 'backups.deleteSnapshot';
              if (!bk.snapshots) throw unsupported(operation, 'snapshots');
              if (typeof snapshotId !== 'string')
                throw new TypeError(`${operation}: snapshotId must be a string`);
              const s = guestState(ref, operation);
              if (!s.snapshots.some((x) => x.record.id === snapshotId)) {
                throw hvkitError(
                  'NOT_FOUND',
                  `${operation}: guest ${s.guest.name} has no snapshot ${quoteForMessage(snapshotId)}`,
                  {
                    adapter: ADAPTER,
                    operation,
                  },
                );
              }
              removeSnapshot(s, snapshotId);
            }),
          ...(bk.snapshots
            ? {
                revertSnapshot: (ref: GuestRef, snapshotId: string, options?: CallOptions) =>
                  run('backups.revertSnapshot', options, () => {
                    const operation = 'backups.revertSnapshot';
                    if (typeof snapshotId !== 'string')
                      throw new TypeError(`${operation}: snapshotId must be a string`);
                    const s = guestState(ref, operation);
                    const snap = s.snapshots.find((x) => x.record.id === snapshotId);
                    if (!snap) {
                      throw hvkitError(
                        'NOT_FOUND',
                        `${operation}: guest ${s.guest.name} has no snapshot ${quoteForMessage(snapshotId)}`,
                        {
                          adapter: ADAPTER,
                          operation,
                        },
                      );
                    }
                    for (const [device, gens] of snap.gens) {
                      const disk = s.disks.get(device);
                      if (disk) disk.gens.set(gens);
                    }
                    if (snap.record.kind === 'memory')
                      backend.setPowerState(s.guest.id, snap.record.powerState);
                  }),
              }
            : {}),
          backup: (ref, sink, options: BackupOptions = {}) =>
            run('backups.backup', options, (signal) => backupGuest(ref, sink, options, signal), true),
          ...(bk.hostConfig
            ? {
                backupHostConfig: (sink: BackupSink, options: BackupOptions = {}) =>
                  run(
                    'backups.backupHostConfig',
                    options,
                    (signal) => backupHost(sink, options, signal),
                    true,
                  ),
              }
            : {}),
        };

  // ------------------------------------------------------------ events

  const ev = supports.events;
  const events: EventsCapability | undefined =
    ev === false
      ? undefined
      : {
          subscribe(options: SubscribeOptions = {}): AsyncIterable<GuestEvent> {
            const signal = checkSignal(options.signal);
            return {
              [Symbol.asyncIterator](): AsyncIterator<GuestEvent> {
                const queue: GuestEvent[] = [];
                let waiting: ((r: IteratorResult<GuestEvent>) => void) | undefined;
                let done = false;
                let unlisten: (() => void) | undefined;
                const finish = () => {
                  if (done) return;
                  done = true;
                  unlisten?.();
                  signal?.removeEventListener('abort', finish);
                  closeHooks.delete(finish);
                  waiting?.({ done: true, value: undefined });
                  waiting = undefined;
                };
                // On a closed adapter the first next() fails (not retryable), so a resubscribe loop cannot spin.
                let closedError: HvkitError | undefined =
                  closed && !signal?.aborted
                    ? hvkitError('CONNECTION_LOST', 'events.subscribe: the adapter is closed', {
                        adapter: ADAPTER,
                        operation: 'events.subscribe',
                        retryable: false,
                      })
                    : undefined;
                if (closed || signal?.aborted) {
                  done = true;
                } else {
                  unlisten = backend.listen((event) => {
                    if (!ev.lifecycle) return;
                    if (waiting) {
                      const w = waiting;
                      waiting = undefined;
                      w({ done: false, value: event });
                    } else {
                      queue.push(event);
                      if (queue.length > 10_000) queue.shift();
                    }
                  });
                  signal?.addEventListener('abort', finish, { once: true });
                  closeHooks.add(finish);
                }
                return {
                  next: () => {
                    if (closedError) {
                      const e = closedError;
                      closedError = undefined;
                      return Promise.reject(e);
                    }
                    const event = queue.shift();
                    if (event) return Promise.resolve({ done: false, value: event });
                    if (done) return Promise.resolve({ done: true, value: undefined });
                    return new Promise((resolve) => {
                      waiting = resolve;
                    });
                  },
                  return: () => {
                    finish();
                    queue.length = 0;
                    return Promise.resolve({ done: true, value: undefined });
                  },
                };
              },
            };
          },
        };

  // ------------------------------------------------------------ adapter

  const close = async () => {
    closed = true;
    for (const hook of [...closeHooks]) hook();
  };
  const adapter = {
    specificationVersion: 'v1' as const,
    adapter: ADAPTER,
    supports,
    ...(inventory ? { inventory } : {}),
    ...(limits ? { limits } : {}),
    ...(labels ? { labels } : {}),
    ...(backups ? { backups } : {}),
    ...(events ? { events } : {}),
    backend,
    close,
    [Symbol.asyncDispose]: close,
  };
  const wrapped = wrapAdapter(adapter as PartialInMemoryAdapter, {
    defaultTimeoutMs,
    operationTimeoutsMs: { 'backups.backup': backupTimeoutMs, 'backups.backupHostConfig': backupTimeoutMs },
  });
  return withOuterFaults(wrapped, faults) as InMemoryAdapter | PartialInMemoryAdapter;
}

/** Guest NOT_FOUND errors of in-memory adapters, with the ref not found (for the `unknownGuestError` fault). */
const unknownGuestErrors = new WeakMap<object, GuestRef>();

/**
 * The faults `wrapAdapter` would hide, put on top of the wrapped adapter (as a broken adapter that does
 * not use `wrapAdapter` would behave): `ignorePreAbortedSignal` drops an already-aborted signal before the
 * wrapper sees it, `unknownGuestError` replaces a guest's NOT_FOUND with the fault's error after it.
 */
function withOuterFaults(adapter: PartialInMemoryAdapter, faults: InMemoryFaults): PartialInMemoryAdapter {
  const { ignorePreAbortedSignal, unknownGuestError } = faults;
  if (!ignorePreAbortedSignal && !unknownGuestError) return adapter;
  const outer = Object.create(adapter) as Record<string, unknown>;
  for (const capability of SPEC_V1_CAPABILITIES) {
    const inner = (adapter as unknown as Record<string, Record<string, unknown> | undefined>)[capability];
    if (!inner) continue;
    const layer = Object.create(inner) as Record<string, unknown>;
    for (const [name, info] of Object.entries(SPEC_V1_METHODS[capability] as Record<string, SpecV1Method>)) {
      const method = inner[name];
      if (typeof method !== 'function' || info.kind !== 'call') continue;
      const faulty = async (...args: unknown[]) => {
        const given = args[info.optionsIndex] as CallOptions | undefined;
        if (ignorePreAbortedSignal && given?.signal?.aborted) {
          const { signal: _ignored, ...rest } = given;
          args = args.slice();
          args[info.optionsIndex] = rest;
        }
        try {
          return await method.apply(inner, args);
        } catch (error) {
          const ref = typeof error === 'object' && error !== null ? unknownGuestErrors.get(error) : undefined;
          if (unknownGuestError && ref !== undefined) throw unknownGuestError(ref);
          throw error;
        }
      };
      // The wrapped objects' properties are read-only: define, do not assign.
      Object.defineProperty(layer, name, { value: faulty, enumerable: true, configurable: true });
    }
    Object.defineProperty(outer, capability, { value: layer, enumerable: true, configurable: true });
  }
  return outer as unknown as PartialInMemoryAdapter;
}
