import { hvkitError } from '../errors/hvkit-error';
import { MAX_ECHO_LENGTH, truncateText } from '../errors/message';
import type {
  Disk,
  Guest,
  GuestEvent,
  GuestRef,
  Host,
  Network,
  PowerState,
  ResourceLimits,
  SecurityLabel,
  Snapshot,
  StoragePool,
  StorageVolume,
} from '../hypervisor/v1/model';
import { createDefaultDataset, type InMemoryDataset, type InMemoryGuestSeed } from './dataset';
import { generateBlock, IN_MEMORY_BLOCK_BYTES, seedFromString } from './disk-data';

const MiB = 1024 * 1024;
const ADAPTER = 'in-memory';

/**
 * How backend read functions name a guest: a {@link GuestRef}, or an object carrying one as `ref` (the
 * conformance suite's probe target `{ ref, id?, uuid?, name? }`). An object's `id` wins over `uuid`, then
 * `name`, then `ref`.
 */
export type InMemoryRef = GuestRef | { ref: GuestRef; id?: string; uuid?: string; name?: string };

/** A snapshot as the backend stores it, including the temporary ones a backup takes. */
export interface InMemorySnapshotRecord extends Snapshot {
  guestId: string;
  /** True for a snapshot a running backup made for itself; it must be gone when the backup settles. */
  temporary: boolean;
  /** Power state when taken (a memory snapshot restores it on revert). */
  powerState: PowerState;
}

/** A checkpoint (dirty-block bitmap) as the backend stores it. */
export interface InMemoryCheckpointRecord {
  id: string;
  guestId: string;
  createdAt: Date;
  /** Checkpoint the backup that created this one was relative to. */
  parentId?: string;
  /** True while the backup that creates it is still running. */
  temporary: boolean;
}

/** Facts of a guest as the backend stores them (units: bytes). */
export interface InMemoryGuestFacts {
  id: string;
  uuid: string;
  name: string;
  powerState: PowerState;
  vcpus: number;
  memoryBytes: number;
}

/** @internal */
export interface DiskState {
  disk: Disk;
  seed: number;
  dataBytes: number;
  /** Write generation of every block. */
  gens: Uint32Array;
}

/** @internal */
export interface SnapshotState {
  record: InMemorySnapshotRecord;
  gens: Map<string, Uint32Array>;
}

/** @internal */
export interface CheckpointState {
  record: InMemoryCheckpointRecord;
  gens: Map<string, Uint32Array>;
}

/** @internal */
export interface GuestState {
  guest: Guest;
  disks: Map<string, DiskState>;
  persistent: ResourceLimits;
  live: ResourceLimits | undefined;
  configLabels: SecurityLabel[];
  liveLabels: SecurityLabel[] | undefined;
  guestAgent: boolean;
  snapshots: SnapshotState[];
  checkpoints: CheckpointState[];
  writeRound: number;
}

/** @internal State shared between the backend and the adapters on it. */
export interface BackendInternals {
  guests: GuestState[];
  host: Host;
  networks: Network[];
  pools: StoragePool[];
  volumes: StorageVolume[];
  now: () => Date;
  find(ref: InMemoryRef): GuestState | undefined;
  nextId(prefix: 'snap' | 'cp' | 'artifact' | 'host-config'): string;
  emit(state: GuestState, type: string, detail?: string): void;
  takeFailure(operation: string): unknown;
  snapshotGens(state: GuestState): Map<string, Uint32Array>;
  dirty(state: GuestState, blocksPerDisk: number): void;
}

/** @internal */
export const INTERNALS: unique symbol = Symbol('hvkit.in-memory.internals');

/** Options of {@link createInMemoryBackend}. */
export interface InMemoryBackendOptions {
  /** Initial state. Default {@link createDefaultDataset}(). The dataset is copied, never modified. */
  dataset?: InMemoryDataset;
  /** Clock for `createdAt` and event times. Default `() => new Date()`. */
  now?: () => Date;
}

/** Whether a power state has a running process (live limits and labels exist). */
export function isActivePowerState(state: PowerState): boolean {
  return state === 'running' || state === 'paused';
}

function clone<T>(value: T): T {
  return structuredClone(value);
}

function transitionEvent(from: PowerState, to: PowerState): { type: string; detail: string } {
  switch (to) {
    case 'running':
      if (from === 'paused') return { type: 'resumed', detail: 'unpaused' };
      if (from === 'suspended') return { type: 'started', detail: 'restored' };
      return { type: 'started', detail: 'booted' };
    case 'paused':
      return { type: 'suspended', detail: 'paused' };
    case 'suspended':
      return { type: 'stopped', detail: 'saved' };
    case 'stopped':
      return { type: 'stopped', detail: from === 'crashed' ? 'destroyed' : 'shutdown' };
    case 'crashed':
      return { type: 'crashed', detail: 'panicked' };
    default:
      return { type: 'unknown', detail: 'unknown' };
  }
}

/**
 * The state behind in-memory adapters: what a real hypervisor would hold. Its read functions do not go
 * through any adapter, so tests (and the conformance suite, as a probe) can check what an adapter call
 * really changed; its write functions play the part of things happening on the server (a guest boots, a
 * disk is written, a call fails).
 *
 * Its method names match the conformance suite's `ConformanceProbe`, so `adapter.backend` can be passed as
 * the probe. Guests are named by {@link InMemoryRef}; read functions throw `NOT_FOUND` for unknown guests,
 * except {@link InMemoryBackend.guestExists}.
 */
export class InMemoryBackend {
  /** @internal */
  readonly [INTERNALS]: BackendInternals;
  readonly #listeners = new Set<(event: GuestEvent) => void>();
  readonly #failures = new Map<string, { error: unknown; times: number }[]>();
  readonly #usedCategories = new Set<string>();
  #counter = 0;
  #categoryRound = 0;

  constructor(options: InMemoryBackendOptions = {}) {
    const dataset = clone(options.dataset ?? createDefaultDataset());
    const now = options.now ?? (() => new Date());
    const guests: GuestState[] = [];
    const internals: BackendInternals = {
      guests,
      host: dataset.host,
      networks: dataset.networks,
      pools: dataset.pools,
      volumes: dataset.volumes,
      now,
      find: (ref) => this.#find(ref),
      nextId: (prefix) => `${prefix}-${++this.#counter}`,
      emit: (state, type, detail) => this.#emit(state, type, detail),
      takeFailure: (operation) => this.#takeFailure(operation),
      snapshotGens: (state) => new Map([...state.disks].map(([d, s]) => [d, s.gens.slice()])),
      dirty: (state, blocksPerDisk) => this.#dirty(state, blocksPerDisk),
    };
    this[INTERNALS] = internals;
    for (const seed of dataset.guests) guests.push(this.#makeState(seed));
  }

  // ---------------------------------------------------------------- reads

  /** The host. */
  get host(): Host {
    return clone(this[INTERNALS].host);
  }

  /** Every guest with its stored values. */
  listGuests(): Guest[] {
    return this[INTERNALS].guests.map((s) => clone(s.guest));
  }

  /** Whether a guest exists. */
  guestExists(ref: InMemoryRef): boolean {
    return this.#find(ref) !== undefined;
  }

  /** A guest with its stored values. */
  getGuest(ref: InMemoryRef): Guest {
    return clone(this.#get(ref).guest);
  }

  /** Identity, power state, vCPUs and memory (bytes) of a guest as stored. */
  getGuestFacts(ref: InMemoryRef): InMemoryGuestFacts {
    const { id, uuid, name, powerState, vcpus, memoryBytes } = this.#get(ref).guest;
    return { id, uuid, name, powerState, vcpus, memoryBytes };
  }

  /**
   * The limits stored for a guest, exactly as stored (no conversion). `from` defaults to `live` for active
   * (running or paused) guests and `persistent` otherwise; an inactive guest has no live values, so `live`
   * then returns the definition's.
   */
  getLimits(ref: InMemoryRef, from?: 'live' | 'persistent'): ResourceLimits {
    const s = this.#get(ref);
    const live = from !== 'persistent' && s.live !== undefined;
    return clone(live ? (s.live as ResourceLimits) : s.persistent);
  }

  /** The stored labels of a guest: live ones (active guests only) and the definition's. */
  getLabels(ref: InMemoryRef): { live: SecurityLabel[]; config: SecurityLabel[] } {
    const s = this.#get(ref);
    return { live: clone(s.liveLabels ?? []), config: clone(s.configLabels) };
  }

  /** Every snapshot of a guest, including temporary ones made by a backup in progress (or leaked by one). */
  listSnapshots(ref: InMemoryRef): InMemorySnapshotRecord[] {
    return this.#get(ref).snapshots.map((s) => clone(s.record));
  }

  /** Ids of every snapshot of a guest, temporary ones included. */
  listSnapshotIds(ref: InMemoryRef): string[] {
    return this.#get(ref).snapshots.map((s) => s.record.id);
  }

  /** Every checkpoint of a guest, temporary ones included. */
  listCheckpoints(ref: InMemoryRef): InMemoryCheckpointRecord[] {
    return this.#get(ref).checkpoints.map((c) => clone(c.record));
  }

  /** Ids of every checkpoint of a guest, temporary ones included. */
  listCheckpointIds(ref: InMemoryRef): string[] {
    return this.#get(ref).checkpoints.map((c) => c.record.id);
  }

  /**
   * The current allocated data of a disk: what a full backup taken now copies. With `snapshotId`, the data
   * as of that snapshot.
   */
  readDisk(ref: InMemoryRef, device: string, snapshotId?: string): Uint8Array {
    const s = this.#get(ref);
    const disk = this.#disk(s, device);
    let gens = disk.gens;
    if (snapshotId !== undefined) {
      const snap = s.snapshots.find((x) => x.record.id === snapshotId);
      if (!snap)
        throw hvkitError('NOT_FOUND', `snapshot ${JSON.stringify(snapshotId)} not found`, {
          adapter: ADAPTER,
        });
      gens = snap.gens.get(device) ?? gens;
    }
    const out = new Uint8Array(disk.dataBytes);
    for (let i = 0; i < gens.length; i++) {
      const offset = i * IN_MEMORY_BLOCK_BYTES;
      const length = Math.min(IN_MEMORY_BLOCK_BYTES, disk.dataBytes - offset);
      out.set(generateBlock(disk.seed, i, gens[i] as number, length), offset);
    }
    return out;
  }

  /** Networks. */
  listNetworks(): Network[] {
    return clone(this[INTERNALS].networks);
  }

  /** Storage pools. */
  listStoragePools(): StoragePool[] {
    return clone(this[INTERNALS].pools);
  }

  /** Volumes of a pool (all volumes without `poolId`). */
  listStorageVolumes(poolId?: string): StorageVolume[] {
    return clone(this[INTERNALS].volumes.filter((v) => poolId === undefined || v.poolId === poolId));
  }

  // ---------------------------------------------------------------- things happening on the server

  /**
   * Writes to a disk: bumps the generation of the given blocks (default: block 0), so their bytes change
   * and the next incremental backup copies them.
   *
   * @throws TypeError for a block index outside the disk's data.
   */
  writeDisk(ref: InMemoryRef, device: string, blocks: readonly number[] = [0]): void {
    const disk = this.#disk(this.#get(ref), device);
    for (const b of blocks) {
      if (!Number.isInteger(b) || b < 0 || b >= disk.gens.length) {
        throw new TypeError(`block ${b} is outside ${device} (0..${disk.gens.length - 1})`);
      }
      disk.gens[b] = (disk.gens[b] as number) + 1;
    }
  }

  /**
   * Changes a guest's power state, as if it was started, paused, shut down... on the server. Emits the
   * lifecycle event. Booting applies the persistent limits and generates live labels; stopping drops them.
   *
   * @throws HvkitError `CONFLICT` when starting a template.
   */
  setPowerState(ref: InMemoryRef, state: PowerState): void {
    const s = this.#get(ref);
    const from = s.guest.powerState;
    if (from === state) return;
    if (s.guest.isTemplate && isActivePowerState(state)) {
      throw hvkitError('CONFLICT', `guest ${s.guest.name} is a template and cannot run`, {
        adapter: ADAPTER,
      });
    }
    const wasActive = isActivePowerState(from);
    const isActive = isActivePowerState(state);
    s.guest.powerState = state;
    if (!wasActive && isActive) this.#activate(s);
    if (wasActive && !isActive) this.#deactivate(s);
    const ev = transitionEvent(from, state);
    this.#emit(s, ev.type, ev.detail);
  }

  /**
   * Emits a lifecycle event for a guest without changing its state: `defined` with detail `updated`, as a
   * hypervisor does when a definition is rewritten. The conformance suite's probe uses it.
   */
  triggerEvent(ref: InMemoryRef): void {
    this.#emit(this.#get(ref), 'defined', 'updated');
  }

  /**
   * Adds a guest (emits `defined`/`added`). An active guest gets live limits and labels at once.
   *
   * @throws HvkitError `CONFLICT` when the id, uuid or name is taken.
   */
  defineGuest(seed: InMemoryGuestSeed): Guest {
    const internals = this[INTERNALS];
    const taken = internals.guests.find(
      (g) => g.guest.id === seed.id || g.guest.uuid === seed.uuid.toLowerCase() || g.guest.name === seed.name,
    );
    if (taken)
      throw hvkitError('CONFLICT', `a guest with that id, uuid or name exists: ${taken.guest.name}`, {
        adapter: ADAPTER,
      });
    const state = this.#makeState(clone(seed));
    internals.guests.push(state);
    this.#emit(state, 'defined', 'added');
    return clone(state.guest);
  }

  /** Removes a guest with its snapshots and checkpoints (emits `undefined`/`removed`). */
  undefineGuest(ref: InMemoryRef): void {
    const internals = this[INTERNALS];
    const state = this.#get(ref);
    this.#deactivate(state);
    internals.guests.splice(internals.guests.indexOf(state), 1);
    this.#emit(state, 'undefined', 'removed');
  }

  /**
   * Makes the next `times` calls of an adapter operation (e.g. `limits.set`, `backups.backup`,
   * `inventory.listGuests`) on this backend fail with `error` before they change anything. The error
   * is thrown as given; pass an `HvkitError` to test code that branches on codes.
   */
  failNext(operation: string, error: unknown, times = 1): void {
    const list = this.#failures.get(operation) ?? [];
    list.push({ error, times });
    this.#failures.set(operation, list);
  }

  /** Listens to lifecycle events; returns the function that stops listening. */
  listen(listener: (event: GuestEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => {
      this.#listeners.delete(listener);
    };
  }

  // ---------------------------------------------------------------- internals

  #makeState(seed: InMemoryGuestSeed): GuestState {
    const { limits, labels, guestAgent, disks: diskSeeds, ...rest } = seed;
    const disks = new Map<string, DiskState>();
    const guestDisks: Disk[] = [];
    for (const d of diskSeeds) {
      const { dataBytes = 4 * MiB, ...disk } = d;
      if (!Number.isSafeInteger(dataBytes) || dataBytes < 0)
        throw new TypeError(`disk ${disk.device}: bad dataBytes`);
      guestDisks.push(disk);
      disks.set(disk.device, {
        disk,
        seed: seedFromString(`${seed.id}/${disk.device}`),
        dataBytes,
        gens: new Uint32Array(Math.ceil(dataBytes / IN_MEMORY_BLOCK_BYTES)),
      });
    }
    const state: GuestState = {
      guest: { ...rest, uuid: rest.uuid.toLowerCase(), disks: guestDisks },
      disks,
      persistent: clone(limits ?? {}),
      live: undefined,
      configLabels: (labels ?? []).map((l) => ({ ...l, source: 'config' as const })),
      liveLabels: undefined,
      guestAgent: guestAgent ?? false,
      snapshots: [],
      checkpoints: [],
      writeRound: 0,
    };
    if (isActivePowerState(state.guest.powerState)) this.#activate(state);
    return state;
  }

  #activate(s: GuestState): void {
    s.live = clone(s.persistent);
    s.liveLabels = s.configLabels.map((l) => this.#liveLabel(l));
  }

  #deactivate(s: GuestState): void {
    for (const l of s.liveLabels ?? []) {
      const m = l.model === 'selinux' ? /:(c\d+,c\d+)$/.exec(l.label ?? '') : null;
      if (m && l.type === 'dynamic') this.#usedCategories.delete(m[1] as string);
    }
    s.live = undefined;
    s.liveLabels = undefined;
  }

  #liveLabel(config: SecurityLabel): SecurityLabel {
    const base: SecurityLabel = { model: config.model, type: config.type, source: 'live' };
    if (config.type === 'none') return base;
    if (config.type === 'static') {
      return {
        ...base,
        label: config.label,
        imageLabel: config.imageLabel ?? config.label,
        relabel: config.relabel ?? false,
        ...(config.model === 'selinux' ? { enforcing: this.#selinuxEnforcing() } : {}),
      };
    }
    if (config.model === 'selinux') {
      const cats = this.#categories();
      const type = (config.baseLabel ?? 'system_u:system_r:svirt_t:s0').split(':').slice(0, 3).join(':');
      return {
        ...base,
        label: `${type}:s0:${cats}`,
        imageLabel: `system_u:object_r:svirt_image_t:s0:${cats}`,
        baseLabel: config.baseLabel,
        relabel: true,
        enforcing: this.#selinuxEnforcing(),
      };
    }
    if (config.model === 'dac')
      return { ...base, label: '+107:+107', imageLabel: '+107:+107', relabel: true };
    return { ...base, label: config.label, relabel: config.relabel ?? true };
  }

  #selinuxEnforcing(): boolean {
    return this[INTERNALS].host.securityModels.find((m) => m.model === 'selinux')?.enforcing ?? false;
  }

  /** Two distinct, ordered MCS categories not in use on this host (deterministic). */
  #categories(): string {
    for (;;) {
      const r = ++this.#categoryRound;
      const a = (r * 389) % 1024;
      const b = (r * 677 + 131) % 1024;
      if (a === b) continue;
      const pair = a < b ? `c${a},c${b}` : `c${b},c${a}`;
      if (this.#usedCategories.has(pair)) continue;
      this.#usedCategories.add(pair);
      return pair;
    }
  }

  #dirty(s: GuestState, blocksPerDisk: number): void {
    s.writeRound++;
    for (const disk of s.disks.values()) {
      const n = disk.gens.length;
      if (n === 0) continue;
      for (let k = 0; k < Math.min(blocksPerDisk, n); k++) {
        const b = (s.writeRound * 7 + k * 13) % n;
        disk.gens[b] = (disk.gens[b] as number) + 1;
      }
    }
  }

  #emit(s: GuestState, type: string, detail?: string): void {
    const event: GuestEvent = {
      guest: { id: s.guest.id, name: s.guest.name, uuid: s.guest.uuid },
      type,
      ...(detail === undefined ? {} : { detail }),
      at: this[INTERNALS].now(),
    };
    for (const l of [...this.#listeners]) l(clone(event));
  }

  #takeFailure(operation: string): unknown {
    const list = this.#failures.get(operation);
    const first = list?.[0];
    if (!list || !first) return undefined;
    first.times--;
    if (first.times <= 0) list.shift();
    return first.error ?? new Error(`injected failure of ${operation}`);
  }

  #find(ref: InMemoryRef): GuestState | undefined {
    if (typeof ref === 'string') return this[INTERNALS].guests.find((g) => g.guest.id === ref);
    if (typeof ref !== 'object' || ref === null) return undefined;
    const r = ref as { id?: unknown; uuid?: unknown; name?: unknown; ref?: unknown };
    const guests = this[INTERNALS].guests;
    if (typeof r.id === 'string') return guests.find((g) => g.guest.id === r.id);
    if (typeof r.uuid === 'string')
      return guests.find((g) => g.guest.uuid === (r.uuid as string).toLowerCase());
    if (typeof r.name === 'string') return guests.find((g) => g.guest.name === r.name);
    if (r.ref !== undefined) return this.#find(r.ref as GuestRef);
    return undefined;
  }

  #get(ref: InMemoryRef): GuestState {
    const s = this.#find(ref);
    if (!s) {
      throw hvkitError(
        'NOT_FOUND',
        `no guest matches ${truncateText(JSON.stringify(ref) ?? String(ref), MAX_ECHO_LENGTH)}`,
        {
          adapter: ADAPTER,
        },
      );
    }
    return s;
  }

  #disk(s: GuestState, device: string): DiskState {
    const disk = s.disks.get(device);
    if (!disk)
      throw hvkitError('NOT_FOUND', `guest ${s.guest.name} has no disk ${JSON.stringify(device)}`, {
        adapter: ADAPTER,
      });
    return disk;
  }
}

/** Creates the state behind one or more in-memory adapters (pass it as `createInMemoryAdapter({ backend })`). */
export function createInMemoryBackend(options: InMemoryBackendOptions = {}): InMemoryBackend {
  return new InMemoryBackend(options);
}
