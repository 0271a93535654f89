import type { GuestRef, HypervisorAdapterV1, LimitFieldPath, PowerState, ResourceLimits } from '@hvkit/core';

/** A value or a promise of it: probes may read the backend synchronously or not. */
export type MaybePromise<T> = T | Promise<T>;

/**
 * The guest a probe is asked about: the reference the suite uses with the adapter, plus the id, uuid and
 * name the adapter reported for it (when it has an inventory). A probe picks whichever its backend tool
 * understands (`virsh dumpxml <uuid>`, an XAPI record by uuid, `govc vm.info <name>`, a cgroup path id).
 */
export interface ProbeGuest {
  ref: GuestRef;
  id?: string;
  uuid?: string;
  name?: string;
}

/** What a probe reports about a guest (units: bytes). */
export interface ProbeGuestFacts {
  memoryBytes?: number;
  vcpus?: number;
  name?: string;
  uuid?: string;
  powerState?: PowerState;
}

/**
 * Reads the backend **without** going through the adapter (`virsh`, an XAPI call, `govc`, cgroupfs, `lvs`),
 * so the suite can tell what an adapter call really did. Every method is optional; a check that needs a
 * missing method skips that part (and says so). Values are in hvkit units, converted by the probe itself.
 *
 * Which checks use which method:
 * - `guestExists`: `inventory.backend-agrees` (every listed guest exists) and `inventory.not-found` (the
 *   made-up guests really do not exist, so a NOT_FOUND is deserved);
 * - `getGuestFacts`: `inventory.backend-agrees` (memory and vCPUs equal the backend's: catches unit slips
 *   such as KiB reported as bytes);
 * - `getLimits`: `limits.round-trip.*` and `limits.apply.*` (the backend stores the value set),
 *   `limits.invalid.*`, `limits.unsupported.*` and `cancellation.pre-aborted.limits.set` (nothing changed).
 *   `from` says which values: `live` (running guest) or `persistent` (definition); backends without that
 *   distinction ignore it;
 * - `listSnapshotIds`: `backups.snapshots.create-delete` (the snapshot exists, then is gone),
 *   `backups.full`, `backups.incremental`, `cancellation.abort-during-backup` and the pre-aborted backup
 *   checks (no snapshot left behind, including temporary ones). Ids are the ids the adapter uses in
 *   `Snapshot.id`;
 * - `listCheckpointIds`: `backups.full` and `backups.incremental` (the artifact's checkpoint exists) and
 *   `cancellation.abort-during-backup` (no new checkpoint after an abort);
 * - `triggerEvent`: `events.lifecycle` (cause one lifecycle event of the guest on the backend, e.g. a
 *   definition update or a pause/resume, so the suite can see it arrive);
 * - `diskSha256`: the restore checks (`backups.restore.as-new`, `backups.restore.incremental-chain`): the
 *   SHA-256 (hex) of a disk's content as the guest sees it (virtual size, raw bytes, whatever the image
 *   format), for the original and the restored guest;
 * - `removeGuest`: the restore checks remove the guests they restored (and a leftover of an earlier run with
 *   the suite's fixed name) with it, disks and volumes included; without it they skip;
 * - `listGuestNames` and `listVolumes`: `backups.restore.corrupt` and `backups.restore.abort` (a failed
 *   or aborted restore created no guest and no volume). Volumes are named however the backend names them
 *   (pool/name, datastore path); only the set is compared.
 *
 * `@hvkit/core/testing`'s `InMemoryBackend` implements all of them: pass `adapter.backend`.
 */
export interface ConformanceProbe {
  guestExists?(guest: ProbeGuest): MaybePromise<boolean>;
  getGuestFacts?(guest: ProbeGuest): MaybePromise<ProbeGuestFacts>;
  getLimits?(guest: ProbeGuest, from: 'live' | 'persistent'): MaybePromise<ResourceLimits>;
  listSnapshotIds?(guest: ProbeGuest): MaybePromise<string[]>;
  listCheckpointIds?(guest: ProbeGuest): MaybePromise<string[]>;
  triggerEvent?(guest: ProbeGuest): MaybePromise<void>;
  diskSha256?(guest: ProbeGuest, device: string): MaybePromise<string>;
  removeGuest?(guest: ProbeGuest): MaybePromise<void>;
  listGuestNames?(): MaybePromise<string[]>;
  listVolumes?(): MaybePromise<string[]>;
}

/** Controls of a private peer for the `service` group. */
export interface ConformancePeerControl {
  /** Kills the peer (SIGKILL) and resolves once it is gone. */
  kill(): Promise<void>;
  /** Starts the peer again at the same address (a no-op when it runs); resolves once it accepts connections. */
  restart(): Promise<void>;
}

/** What a test body receives from the runner: vitest's test context has `skip(note)`. */
export interface ConformanceTestContext {
  /** Marks the running test skipped with a note (vitest ≥ 3.1). */
  skip?: (note?: string) => void;
}

/** A test body. */
export type ConformanceTestFn = (context: ConformanceTestContext) => Promise<void>;

/**
 * The test functions the suite registers its checks with: vitest's by default, or anything shaped like
 * them (another runner, or a collector that runs the checks itself, see `createConformanceCollector`).
 * `describe` may receive an async callback (vitest awaits it while collecting).
 */
export interface ConformanceTestApi {
  describe: (name: string, fn: () => void | Promise<void>) => void;
  it: ((name: string, fn: ConformanceTestFn, timeout?: number) => void) & {
    skip: (name: string, fn?: () => void) => void;
  };
  /** Not used by the suite; accepted so a runner's whole module can be passed. */
  beforeAll?: unknown;
  /** Not used by the suite; accepted so a runner's whole module can be passed. */
  afterAll?: unknown;
  /** Not used by the suite (it throws its own failures with clear messages). */
  expect?: unknown;
}

/** Test values for `limits.round-trip.*`; each must be valid and exactly representable by the backend. */
export type LimitTestValues = Partial<Record<LimitFieldPath, number>>;

/** Options of {@link runAdapterConformance}. */
export interface ConformanceOptions {
  /** Shown in the suite's name, e.g. `kvm-libvirt (test driver)`. */
  name: string;
  /**
   * Returns a fresh, connected adapter. Called once while collecting (to read `supports`) and once per
   * test; the suite closes every adapter it gets.
   */
  factory: () => Promise<HypervisorAdapterV1>;
  /**
   * `replay`: against recorded fixtures. The probe is optional, and checks do not compare times with the
   * wall clock. The suite's calls and their order are deterministic (fixed names, values and made-up ids),
   * so fixtures recorded by running this suite live replay cleanly; whether a mutation "persists" is up to
   * what the fixtures recorded. Set `mutations: false` for fixtures that recorded no mutating calls.
   *
   * `live`: against a real server. A probe is required (a `TypeError` otherwise).
   */
  mode: 'replay' | 'live';
  /** Reads the backend without the adapter; or a function of the test's adapter that returns one. */
  probe?: ConformanceProbe | ((adapter: HypervisorAdapterV1) => MaybePromise<ConformanceProbe>);
  /**
   * The guest the suite may modify (limits set and restored, snapshots created and deleted, backups taken).
   * Default: the first non-template guest `listGuests` returns (required when the adapter has no inventory).
   */
  target?: GuestRef;
  /**
   * A guest without disks, for `backups.diskless` (its backup must be a valid artifact holding the
   * definition). Without it the check is skipped with that reason.
   */
  disklessGuest?: GuestRef;
  /** `RestoreOptions.storage` for the restore checks (a pool, a datastore). Default: the original's. */
  restoreStorage?: string;
  /**
   * How the restore checks pair a restored guest's disks with the original's: `'device'` (the default: the
   * restored guest has the same devices, `vda`, `scsi0:0`) or `'order'`, for a backend whose disk device
   * names the volume itself (LVM's `vg/lv`): a restore as new makes new volumes, so disks are paired in the
   * order they are listed, and each pair must have the same capacity and content (probe.diskSha256 is asked
   * about the restored guest's own device).
   */
  restoredDisks?: 'device' | 'order';
  /** Values for limit round trips, per field. Defaults are valid and exactly representable everywhere. */
  limitValues?: LimitTestValues;
  /**
   * Run checks that change the backend (limit round trips, label set, snapshots, backups). Default true.
   * When false they are reported as skipped with the reason.
   */
  mutations?: boolean;
  /**
   * Checks to skip, by id (`limits.round-trip.cpu.weight`) or id prefix (`limits.round-trip`, `backups`),
   * each with a non-empty reason shown in the output. A key that matches no check fails the run.
   */
  skip?: Record<string, string>;
  /** Test functions. Default: vitest's `describe` and `it`. */
  test?: ConformanceTestApi;
  /**
   * Live tier: a peer the test started itself (a private daemon or simulator, never a shared one), for
   * the `service` group: it is killed and restarted with a subscription open and calls in flight. Without
   * it those checks are skipped with that reason.
   */
  peer?: ConformancePeerControl;
  /**
   * Live tier, with `peer`: returns a fresh adapter connected to it with reconnection turned off, for
   * `service.no-reconnect` (the suite closes it).
   */
  factoryWithoutReconnect?: () => Promise<HypervisorAdapterV1>;
  /** Timeout of one suite call to the adapter, in ms: a call that takes longer fails its check. Default 30 000. */
  callTimeoutMs?: number;
  /** Timeout of one test, passed to `it`. Default 120 000. */
  testTimeoutMs?: number;
}
