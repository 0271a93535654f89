import { createHash, randomBytes, randomUUID } from 'node:crypto';
import type { CapabilityName } from '../adapter/capability';
import { resolveGuestRef } from '../adapter/guest-ref';
import { wrapAdapter } from '../adapter/wrap';
import { BACKUP_LEASE_TTL_MS, type BackupLease, holdLease, leaseIsLive, newLease } from '../backup/lease';
import {
  artifactPath,
  type BackupManifest,
  type BackupManifestFile,
  newArtifactId,
  writeBackupManifest,
} from '../backup/manifest';
import { createProgressReporter } from '../backup/progress';
import { type RestoreLink, readVerifiedFile, resolveRestoreChain } from '../backup/restore';
import type { BackupSink } from '../backup/sink';
import type { BackupSource } from '../backup/source';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import { quoteForMessage } from '../errors/message';
import type {
  BackupCleanupOptions,
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
  RestoreOptions,
  SubscribeOptions,
} from '../hypervisor/v1/hypervisor-adapter-v1';
import { SPEC_V1_CAPABILITIES, SPEC_V1_METHODS, type SpecV1Method } from '../hypervisor/v1/methods';
import type {
  BackupArtifact,
  BackupCheckpoint,
  BackupCleanupResult,
  BackupFile,
  BackupLeftover,
  Guest,
  GuestEvent,
  GuestRef,
  Host,
  HvkitWarning,
  ResourceLimits,
  RestoreResult,
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
  blockBytes,
  type CheckpointState,
  createInMemoryBackend,
  type DiskState,
  type GuestState,
  INTERNALS,
  type InMemoryBackend,
  isActivePowerState,
} from './backend';
import type { InMemoryDataset } from './dataset';
import { applyInMemoryDelta, IN_MEMORY_BLOCK_BYTES, IN_MEMORY_DELTA_HEADER_BYTES } from './disk-data';

const ADAPTER = 'in-memory';

/** Backup method the in-memory adapter reports. */
export const IN_MEMORY_BACKUP_METHOD = 'in-memory-stream';

/** `format` of the in-memory adapter's definition file (`guest.json`) in an artifact. */
export const IN_MEMORY_DEFINITION_FORMAT = 'hvkit-in-memory-guest-json';

/** `disk.incremental` of the in-memory adapter's incremental disk files (see `applyInMemoryDelta`). */
export const IN_MEMORY_DELTA_FORMAT = 'hvkit-in-memory-delta';

/** A guest device name as a file name segment. */
function safeSegment(text: string): string {
  return text.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_') || '_';
}

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
  /** A restore as a new guest keeps the original's MAC addresses (a clash on the network). */
  restoreKeepsMacs?: boolean;
  /** A restore reads files without checking them against the manifest (a corrupt artifact is accepted). */
  restoreWithoutVerify?: boolean;
  /** A full backup keeps hvkit's checkpoints of older chains (they pile up). */
  keepOldChainCheckpoints?: boolean;
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
      checkpoints: true,
      cleanup: true,
      restore: { asNew: true, inPlace: true, incrementalChains: true },
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
      const data = blockBytes(disk, i, gens[i] as number);
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

  /** The guest's lease, when live (another run in progress). */
  function liveLease(s: GuestState): BackupLease | undefined {
    const lease = internals.leases.get(s.guest.id);
    return lease && leaseIsLive(lease, internals.now()) ? lease : undefined;
  }

  /**
   * Removes what crashed runs left on the guest (temporary snapshots and checkpoints, an expired lease) and,
   * with a sink, its incomplete artifacts; keeps what the live lease of another run holds.
   */
  async function sweep(
    s: GuestState,
    sink: BackupSink | undefined,
    signal: AbortSignal,
    operation: string,
  ): Promise<BackupCleanupResult> {
    const removed: BackupLeftover[] = [];
    const kept: BackupLeftover[] = [];
    const stored = internals.leases.get(s.guest.id);
    const live = liveLease(s);
    if (stored && !live) {
      internals.leases.delete(s.guest.id);
      removed.push({ kind: 'lease', name: stored.owner, run: stored.run });
    }
    const held = (run: string | undefined) => live !== undefined && run === live.run;
    for (const snap of [...s.snapshots]) {
      if (!snap.record.temporary) continue;
      const leftover: BackupLeftover = {
        kind: 'snapshot',
        name: snap.record.name,
        ...(snap.record.run ? { run: snap.record.run } : {}),
      };
      if (held(snap.record.run)) kept.push(leftover);
      else {
        removeSnapshot(s, snap.record.id);
        removed.push(leftover);
      }
    }
    for (const cp of [...s.checkpoints]) {
      if (!cp.record.temporary || !cp.record.managed) continue;
      const leftover: BackupLeftover = {
        kind: 'checkpoint',
        name: cp.record.id,
        ...(cp.record.artifact ? { run: cp.record.artifact } : {}),
      };
      if (held(cp.record.artifact)) kept.push(leftover);
      else {
        removeCheckpoint(s, cp.record.id);
        removed.push(leftover);
      }
    }
    if (sink !== undefined) {
      if (typeof sink.removeIncomplete !== 'function') {
        throw unsupported(
          operation,
          `removing incomplete artifacts from a ${sink.kind} sink (it has no removeIncomplete)`,
        );
      }
      const folder = guestFolder(s);
      const gone = await raceAbort(
        sink.removeIncomplete(folder, live ? [live.run] : [], { signal }),
        signal,
        { adapter: ADAPTER, operation },
      );
      for (const name of gone) removed.push({ kind: 'file', name, run: name.slice(folder.length + 1) });
      if (live) kept.push({ kind: 'file', name: `${folder}/${live.run}`, run: live.run });
    }
    return { removed, kept };
  }

  function guestFolder(s: GuestState): string {
    return artifactPath(s.guest.name, 'x').split('/')[0] as string;
  }

  function conflictIfLeased(s: GuestState, operation: string): void {
    const live = liveLease(s);
    if (live) {
      throw hvkitError(
        'CONFLICT',
        `${operation}: guest ${s.guest.name} is held by run ${live.run} of ${live.owner} until ${live.expiresAt}`,
        { adapter: ADAPTER, operation, details: { lease: live } },
      );
    }
  }

  /** Takes the guest's lease for run `run` and keeps it renewed; the returned function releases it. */
  function takeLease(s: GuestState, run: string): () => Promise<void> {
    const lease = newLease(run, BACKUP_LEASE_TTL_MS, { now: internals.now() });
    internals.leases.set(s.guest.id, lease);
    const holder = holdLease(lease, {
      store: async (l) => {
        internals.leases.set(s.guest.id, l);
      },
    });
    return async () => {
      await holder.stop();
      if (internals.leases.get(s.guest.id)?.run === run) internals.leases.delete(s.guest.id);
    };
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
      if (!parent.record.managed || parent.record.chain === undefined) {
        throw hvkitError(
          'INVALID_ARGUMENT',
          `${operation}: checkpoint ${quoteForMessage(options.sinceCheckpoint)} was not made by an hvkit backup, so it starts no chain`,
          context,
        );
      }
    }
    conflictIfLeased(s, operation);
    // What crashed runs left goes first (and their incomplete artifacts, when the sink can remove them).
    await sweep(s, typeof sink.removeIncomplete === 'function' ? sink : undefined, signal, operation);

    const startedAt = internals.now();
    const kind = parent ? 'incremental' : 'full';
    const id = newArtifactId(kind, startedAt, () => randomBytes(3).toString('hex'));
    const path = artifactPath(s.guest.name, id);
    const chain = parent ? (parent.record.chain as string) : id;
    const position = parent ? (parent.record.position ?? 0) + 1 : 0;
    const release = takeLease(s, id);

    // The guest keeps writing while it runs.
    if (s.guest.powerState === 'running') internals.dirty(s, writesPerBackup);

    const progress = createProgressReporter(options.onProgress);
    const snapshotId = addSnapshot(s, { name: `hvkit-backup-${id}`, kind: 'disk', temporary: true });
    const snap = s.snapshots.find((x) => x.record.id === snapshotId);
    if (snap) snap.record.run = id;
    const cpId = internals.nextId('cp');
    const checkpoint: CheckpointState = {
      record: {
        id: cpId,
        guestId: s.guest.id,
        createdAt: internals.now(),
        ...(parent ? { parentId: parent.record.id } : {}),
        temporary: true,
        managed: true,
        chain,
        position,
        artifact: id,
      },
      gens: new Map([...(snap?.gens ?? new Map<string, Uint32Array>())].map(([d, g]) => [d, g.slice()])),
    };
    s.checkpoints.push(checkpoint);

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
      const file = `disk-${safeSegment(disk.disk.device)}.${parent ? 'delta' : 'raw'}`;
      return { disk, gens, blocks, bytes, file, name: `${path}/${file}` };
    });
    const definition = new TextEncoder().encode(
      `${JSON.stringify(
        {
          format: IN_MEMORY_DEFINITION_FORMAT,
          guest: s.guest,
          limits: s.persistent,
          labels: s.configLabels,
          guestAgent: s.guestAgent,
        },
        null,
        2,
      )}\n`,
    );
    const definitionName = `${path}/guest.json`;
    const totalBytes = plan.reduce((n, p) => n + p.bytes, 0) + definition.length;
    const written: string[] = [];
    const files: BackupFile[] = [];
    const entries: BackupManifestFile[] = [];
    try {
      progress.phase('snapshot');
      progress.phase('transfer', { totalBytes });
      const defFile = await raceAbort(
        sink.writeFile(
          definitionName,
          bufferChunks(definition, signal, (n) => progress.advance(n, { file: definitionName })),
          { signal, expectedBytes: definition.length },
        ),
        signal,
        context,
      );
      written.push(definitionName);
      files.push(await misreport(defFile));
      entries.push({
        name: 'guest.json',
        role: 'definition',
        bytes: defFile.bytes,
        sha256: defFile.sha256,
        format: IN_MEMORY_DEFINITION_FORMAT,
      });
      for (const p of plan) {
        const file = await raceAbort(
          sink.writeFile(
            p.name,
            diskChunks(p.disk, p.gens, p.blocks, parent !== undefined, signal, (n) =>
              progress.advance(n, { file: p.name }),
            ),
            { signal, expectedBytes: p.bytes },
          ),
          signal,
          context,
        );
        written.push(p.name);
        files.push(await misreport(file));
        entries.push({
          name: p.file,
          role: 'disk',
          bytes: file.bytes,
          sha256: file.sha256,
          disk: {
            device: p.disk.disk.device,
            format: 'raw',
            capacityBytes: p.disk.disk.capacityBytes ?? p.disk.dataBytes,
            ...(parent ? { incremental: IN_MEMORY_DELTA_FORMAT } : {}),
          },
        });
      }
      throwIfAborted(signal, context);
      const consistency = s.guest.powerState === 'running' && s.guestAgent ? 'fs-frozen' : 'crash';
      const manifest: BackupManifest = {
        format: 'hvkit-backup',
        version: 1,
        specificationVersion: 'v1',
        adapter: ADAPTER,
        id,
        kind,
        method: IN_MEMORY_BACKUP_METHOD,
        guest: { id: s.guest.id, name: s.guest.name, uuid: s.guest.uuid },
        startedAt: startedAt.toISOString(),
        completedAt: internals.now().toISOString(),
        consistency,
        chain: { id: chain, position },
        ...(parent ? { base: parent.record.artifact as string, parentCheckpoint: parent.record.id } : {}),
        checkpoint: cpId,
        files: entries,
      };
      const manifestFile = await raceAbort(
        writeBackupManifest(sink, path, manifest, { signal }),
        signal,
        context,
      );
      written.push(manifestFile.name);
      files.push(manifestFile);
      throwIfAborted(signal, context);
      removeSnapshot(s, snapshotId);
      checkpoint.record.temporary = false;
      if (!parent && !faults.keepOldChainCheckpoints) {
        // A full backup starts a new chain: hvkit's checkpoints of older chains go, nobody else's.
        for (const cp of [...s.checkpoints]) {
          if (cp.record.managed && cp.record.chain !== chain && !cp.record.temporary) {
            removeCheckpoint(s, cp.record.id);
          }
        }
      }
      progress.done();
      return {
        id,
        guest: s.guest.id,
        kind,
        method: IN_MEMORY_BACKUP_METHOD,
        createdAt: internals.now(),
        files,
        checkpoint: cpId,
        ...(parent ? { parentCheckpoint: parent.record.id } : {}),
        consistency,
        path,
        chain,
      };
    } catch (error) {
      if (!faults.leaveSnapshotOnAbort) removeSnapshot(s, snapshotId);
      if (!faults.leaveCheckpointOnFailure || signal.aborted) removeCheckpoint(s, cpId);
      for (const name of written.reverse()) {
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
    } finally {
      await release();
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
    const startedAt = internals.now();
    const id = newArtifactId('host-config', startedAt, () => randomBytes(3).toString('hex'));
    const path = artifactPath(internals.host.name, id);
    const name = `${path}/host-config.json`;
    const progress = createProgressReporter(options.onProgress);
    progress.phase('transfer', { totalBytes: data.length, file: name });
    const written: string[] = [];
    try {
      const file = await raceAbort(
        sink.writeFile(
          name,
          bufferChunks(data, signal, (n) => progress.advance(n)),
          { signal, expectedBytes: data.length },
        ),
        signal,
        context,
      );
      written.push(name);
      throwIfAborted(signal, context);
      const manifestFile = await raceAbort(
        writeBackupManifest(
          sink,
          path,
          {
            format: 'hvkit-backup',
            version: 1,
            specificationVersion: 'v1',
            adapter: ADAPTER,
            id,
            kind: 'host-config',
            method: IN_MEMORY_BACKUP_METHOD,
            guest: { id: internals.host.id, name: internals.host.name },
            startedAt: startedAt.toISOString(),
            completedAt: internals.now().toISOString(),
            consistency: 'crash',
            files: [
              {
                name: 'host-config.json',
                role: 'host-config',
                bytes: file.bytes,
                sha256: file.sha256,
                format: 'hvkit-in-memory-host-config-json',
              },
            ],
          },
          { signal },
        ),
        signal,
        context,
      );
      written.push(manifestFile.name);
      throwIfAborted(signal, context);
      progress.done();
      return {
        id,
        guest: internals.host.id,
        kind: 'host-config',
        method: IN_MEMORY_BACKUP_METHOD,
        createdAt: internals.now(),
        files: [await misreport(file), manifestFile],
        consistency: 'crash',
        path,
      };
    } catch (error) {
      for (const n of written.reverse()) await sink.removeFile?.(n).catch(() => {});
      if (signal.aborted) throw abortError(signal, context);
      if (HvkitError.isInstance(error)) throw error;
      throw hvkitError('REMOTE', `${operation}: writing to the ${sink.kind} sink failed`, {
        ...context,
        cause: error,
      });
    }
  }

  function checkpointView(record: CheckpointState['record']): BackupCheckpoint {
    return {
      id: record.id,
      createdAt: new Date(record.createdAt),
      ...(record.parentId === undefined ? {} : { parentId: record.parentId }),
      ...(record.managed && record.chain !== undefined ? { chain: record.chain } : {}),
      managed: record.managed ?? false,
    };
  }

  /** A new, locally administered MAC (52:54:00 like libvirt's), not used by another guest. */
  function newMac(): string {
    const used = new Set(internals.guests.flatMap((g) => g.guest.nics.map((n) => n.mac?.toLowerCase())));
    for (;;) {
      const mac = `52:54:00:${[...randomBytes(3)].map((b) => b.toString(16).padStart(2, '0')).join(':')}`;
      if (!used.has(mac)) return mac;
    }
  }

  async function restoreGuest(
    source: BackupSource,
    options: RestoreOptions,
    signal: AbortSignal,
  ): Promise<RestoreResult> {
    const operation = 'backups.restore';
    const context = { adapter: ADAPTER, operation };
    const rs = bk === false ? false : bk.restore;
    if (rs === false) throw unsupported(operation, 'restore');
    if (typeof source !== 'object' || source === null || typeof source.readFile !== 'function') {
      throw new TypeError(`${operation}: source must be a BackupSource`);
    }
    checkProgress(options as BackupOptions, operation);
    const mode = options.mode ?? 'new';
    if (mode !== 'new' && mode !== 'in-place') {
      throw new TypeError(`${operation}: mode must be 'new' or 'in-place', got ${String(mode)}`);
    }
    if (mode === 'new' && !rs.asNew) throw unsupported(operation, 'restoring as a new guest');
    if (mode === 'in-place' && !rs.inPlace) throw unsupported(operation, 'restoring in place');
    for (const key of ['name', 'storage'] as const) {
      const v = options[key];
      if (v !== undefined && (typeof v !== 'string' || v.trim() === '' || v.includes('/'))) {
        throw hvkitError(
          'INVALID_ARGUMENT',
          `${operation}: ${key} must be a non-empty string without '/'`,
          context,
        );
      }
    }
    const pool =
      options.storage === undefined
        ? undefined
        : internals.pools.find((p) => p.id === options.storage || p.name === options.storage);
    if (options.storage !== undefined && !pool) {
      throw hvkitError(
        'NOT_FOUND',
        `${operation}: no storage pool ${quoteForMessage(options.storage)}`,
        context,
      );
    }
    const chain = await resolveRestoreChain(source, {
      ...(options.artifact === undefined ? {} : { artifact: options.artifact }),
      ...(options.guest === undefined ? {} : { guest: options.guest }),
      signal,
    });
    if (chain.links.length > 1 && !rs.incrementalChains) {
      throw unsupported(operation, 'restoring an incremental chain');
    }
    const target = chain.target.manifest;
    if (target.adapter !== ADAPTER) {
      throw hvkitError(
        'INVALID_ARGUMENT',
        `${operation}: artifact ${target.id} was written by ${target.adapter}, not by the in-memory adapter`,
        { ...context, details: { reason: 'artifact-invalid', adapter: target.adapter } },
      );
    }
    const name = options.name ?? `${target.guest.name}-restored-${target.id}`;
    const existing = (): GuestState | undefined =>
      internals.find({ id: target.guest.id }) ??
      (target.guest.uuid ? internals.find({ uuid: target.guest.uuid }) : undefined);
    const checkTarget = (): GuestState | undefined => {
      if (mode === 'new') {
        const taken = internals.guests.find((g) => g.guest.name === name);
        if (taken) {
          throw hvkitError(
            'CONFLICT',
            `${operation}: a guest named ${quoteForMessage(name)} exists`,
            context,
          );
        }
        return undefined;
      }
      const s = existing();
      if (!s) {
        throw hvkitError(
          'NOT_FOUND',
          `${operation}: guest ${target.guest.name} (${target.guest.id}) does not exist; restore it as a new guest`,
          context,
        );
      }
      if (s.guest.powerState !== 'stopped') {
        throw hvkitError(
          'CONFLICT',
          `${operation}: guest ${s.guest.name} is ${s.guest.powerState}; an in-place restore needs it stopped`,
          context,
        );
      }
      conflictIfLeased(s, operation);
      return s;
    };
    checkTarget();

    const readFile = (link: RestoreLink, file: BackupManifestFile, onBytes: (n: number) => void) =>
      faults.restoreWithoutVerify
        ? source.readFile(`${link.path}/${file.name}`, { signal })
        : readVerifiedFile(source, link.path, file, { signal, onBytes });
    const collect = async (link: RestoreLink, file: BackupManifestFile, onBytes: (n: number) => void) => {
      const out = new Uint8Array(file.bytes);
      let at = 0;
      for await (const chunk of readFile(link, file, onBytes)) {
        if (at + chunk.byteLength > out.length) throw new TypeError('file longer than its manifest');
        out.set(chunk, at);
        at += chunk.byteLength;
        if (chunkDelayMs > 0) await sleep(chunkDelayMs, { signal, ...context });
      }
      return out;
    };

    const defEntry = target.files.find((f) => f.role === 'definition') as BackupManifestFile;
    const diskFiles = chain.links.flatMap((link) =>
      link.manifest.files.filter((f) => f.role === 'disk').map((file) => ({ link, file })),
    );
    const totalBytes = defEntry.bytes + diskFiles.reduce((n, d) => n + d.file.bytes, 0);
    const progress = createProgressReporter(options.onProgress);
    progress.phase('read', { totalBytes });
    const read: BackupFile[] = [];
    const defBytes = await collect(chain.target, defEntry, (n) => progress.advance(n));
    read.push({
      name: `${chain.target.path}/${defEntry.name}`,
      bytes: defEntry.bytes,
      sha256: defEntry.sha256,
    });
    let def: { guest: Guest; limits: ResourceLimits; labels: SecurityLabel[]; guestAgent?: boolean };
    try {
      def = JSON.parse(new TextDecoder().decode(defBytes));
      if (typeof def?.guest?.name !== 'string' || !Array.isArray(def.guest.disks))
        throw new Error('no guest');
    } catch {
      throw hvkitError(
        'INVALID_ARGUMENT',
        `${operation}: ${defEntry.name} of ${target.id} is not a guest definition`,
        {
          ...context,
          details: { reason: 'artifact-invalid', file: `${chain.target.path}/${defEntry.name}` },
        },
      );
    }
    const images = new Map<string, Uint8Array>();
    for (const { link, file } of diskFiles) {
      const data = await collect(link, file, (n) => progress.advance(n));
      read.push({ name: `${link.path}/${file.name}`, bytes: file.bytes, sha256: file.sha256 });
      const device = file.disk?.device as string;
      const before = images.get(device);
      if (file.disk?.incremental === undefined) images.set(device, data);
      else if (before === undefined) {
        throw hvkitError(
          'INVALID_ARGUMENT',
          `${operation}: ${file.name} changes disk ${device}, which the chain's full backup lacks`,
          {
            ...context,
            details: { reason: 'artifact-invalid', file: `${link.path}/${file.name}` },
          },
        );
      } else {
        try {
          images.set(device, applyInMemoryDelta(before, data));
        } catch (error) {
          throw hvkitError(
            'INVALID_ARGUMENT',
            `${operation}: ${file.name} is not a valid delta: ${(error as Error).message}`,
            {
              ...context,
              details: { reason: 'artifact-invalid', file: `${link.path}/${file.name}` },
            },
          );
        }
      }
    }
    throwIfAborted(signal, context);

    // Everything was read and verified: make it visible, in one step (nothing awaits from here on).
    const s0 = checkTarget();
    const baseOf = (image: Uint8Array, gens: Uint32Array) => ({ data: image, gens });
    let state: GuestState;
    if (mode === 'new') {
      const seed = {
        ...def.guest,
        id: internals.nextId('vm'),
        uuid: randomUUID(),
        name,
        powerState: 'stopped' as const,
        hostId: internals.host.id,
        nics: def.guest.nics.map((n) => ({ ...n, mac: faults.restoreKeepsMacs ? n.mac : newMac() })),
        disks: def.guest.disks.map((d) => {
          const image = images.get(d.device);
          const original = internals.pools.find(
            (p) => d.source !== undefined && p.path !== undefined && d.source.startsWith(`${p.path}/`),
          );
          const into = pool ?? original;
          const source =
            d.source === undefined
              ? undefined
              : `${into?.path ?? d.source.slice(0, d.source.lastIndexOf('/'))}/${name}-${d.device}.${d.format ?? 'raw'}`;
          return { ...d, ...(source === undefined ? {} : { source }), dataBytes: image?.length ?? 0 };
        }),
        limits: def.limits ?? {},
        labels: (def.labels ?? []).map((l) =>
          l.type === 'static' ? { model: l.model, type: 'dynamic' as const, source: 'config' as const } : l,
        ),
        guestAgent: def.guestAgent ?? false,
      };
      backend.defineGuest(seed);
      state = internals.find({ id: seed.id }) as GuestState;
      for (const [device, image] of images) {
        const disk = state.disks.get(device);
        if (disk) disk.base = baseOf(image, new Uint32Array(disk.gens.length));
      }
      for (const d of state.guest.disks) {
        if (d.source === undefined) continue;
        const volPool =
          internals.pools.find((p) => p.path !== undefined && d.source?.startsWith(`${p.path}/`)) ?? pool;
        if (!volPool) continue;
        const volName = d.source.slice(d.source.lastIndexOf('/') + 1);
        internals.volumes.push({
          id: `${volPool.id}/${volName}`,
          name: volName,
          poolId: volPool.id,
          path: d.source,
          ...(d.capacityBytes === undefined ? {} : { capacityBytes: d.capacityBytes }),
          allocationBytes: images.get(d.device)?.length ?? 0,
          ...(d.format === undefined ? {} : { format: d.format }),
        });
      }
    } else {
      state = s0 as GuestState;
      for (const [device, image] of images) {
        const disk = state.disks.get(device);
        if (!disk) continue;
        const blocks = Math.ceil(image.length / IN_MEMORY_BLOCK_BYTES);
        const gens = new Uint32Array(blocks);
        for (let i = 0; i < blocks; i++) gens[i] = (disk.gens[i] ?? 0) + 1;
        disk.gens = gens;
        disk.dataBytes = image.length;
        disk.base = baseOf(image, gens.slice());
      }
      state.guest.vcpus = def.guest.vcpus;
      state.guest.memoryBytes = def.guest.memoryBytes;
      state.persistent = clone(def.limits ?? {});
      internals.emit(state, 'defined', 'updated');
    }
    progress.done();
    return {
      guest: guestView(state),
      mode,
      artifacts: chain.links.map((l) => l.manifest.id),
      files: read,
      warnings: [],
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
          ...(bk.restore !== false
            ? {
                restore: (source: BackupSource, options: RestoreOptions = {}) =>
                  run('backups.restore', options, (signal) => restoreGuest(source, options, signal), true),
              }
            : {}),
          ...(bk.checkpoints
            ? {
                listCheckpoints: (ref: GuestRef, options?: CallOptions) =>
                  run('backups.listCheckpoints', options, () =>
                    guestState(ref, 'backups.listCheckpoints').checkpoints.map((c) =>
                      checkpointView(c.record),
                    ),
                  ),
              }
            : {}),
          ...(bk.cleanup
            ? {
                cleanup: (ref: GuestRef, options: BackupCleanupOptions = {}) =>
                  run('backups.cleanup', options, async (signal) => {
                    const s = guestState(ref, 'backups.cleanup');
                    if (options.sink !== undefined) checkSink(options.sink, 'backups.cleanup');
                    return sweep(s, options.sink, signal, 'backups.cleanup');
                  }),
              }
            : {}),
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
    operationTimeoutsMs: {
      'backups.backup': backupTimeoutMs,
      'backups.backupHostConfig': backupTimeoutMs,
      'backups.restore': backupTimeoutMs,
    },
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
