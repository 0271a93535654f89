import {
  type DeepReadonly,
  type Guest,
  type GuestRef,
  type HypervisorAdapterV1,
  type LimitFieldPath,
  limitField,
  type SupportsManifest,
} from '@hvkit/core';
import { ConformanceSkip, fail, within } from './assert';
import type { ConformanceOptions, ConformanceProbe, ProbeGuest } from './types';

/** What the suite knows while registering checks (from the adapter made at collection time). */
export interface SuiteEnv {
  options: ConformanceOptions;
  supports: DeepReadonly<SupportsManifest>;
  adapterId: string;
  mutations: boolean;
}

/** One check: becomes one test. */
export interface CheckDef {
  /** Stable id, used in `skip` and in the test name. */
  id: string;
  /** What it checks, shown after the id. */
  title: string;
  /** True when the check changes the backend (skipped with `mutations: false`). */
  mutates?: boolean;
  /** Set when the check cannot run for this adapter; it is then registered as skipped with this reason. */
  unavailable?: string;
  run(ctx: CheckContext): Promise<void>;
}

/** A group of checks, one per capability. */
export interface GroupDef {
  name: string;
  /** Set when the whole group does not apply (capability absent); shown as the skip reason. */
  skipReason?: string;
  checks: CheckDef[];
}

/** The guest the suite works on. */
export interface Target {
  ref: GuestRef;
  /** The adapter's view of it, when the adapter has an inventory. */
  guest: Guest | undefined;
  probeGuest: ProbeGuest;
}

/** What a check receives at run time: a fresh adapter, the probe and helpers. */
export interface CheckContext {
  adapter: HypervisorAdapterV1;
  probe: ConformanceProbe | undefined;
  env: SuiteEnv;
  live: boolean;
  /** Awaits an adapter call, failing with a clear message when it does not settle in time. */
  call<T>(what: string, promise: Promise<T>): Promise<T>;
  /** The target guest (resolved once per test). */
  target(): Promise<Target>;
  /** Every guest the adapter lists (empty without inventory). */
  guests(): Promise<Guest[]>;
  /** Ends the test as skipped with a reason. */
  skip(reason: string): never;
}

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;

/**
 * Default test values per limit field: a primary value and an alternative used when the guest already has
 * the primary one (so a `set` that does nothing cannot pass). All are exactly representable by every
 * backend's units: weights map to whole cgroup shares, XAPI weights and vSphere shares; bytes are whole
 * MiB (vSphere MB, libvirt KiB); NIC rates are multiples of 16 000 000 (whole KiB/s for libvirt and whole
 * Mbit/s for vSphere); bursts are whole KiB and whole kB.
 */
export const DEFAULT_LIMIT_VALUES: Readonly<Record<LimitFieldPath, readonly [number, number]>> = {
  'cpu.weight': [200, 300],
  'cpu.maxCores': [0.5, 0.25],
  'cpu.reservationMHz': [500, 250],
  'memory.maxBytes': [4 * GiB, 3 * GiB],
  'memory.softBytes': [GiB, 768 * MiB],
  'memory.minBytes': [128 * MiB, 256 * MiB],
  'memory.swapMaxBytes': [GiB, 512 * MiB],
  'disks.readBytesPerSec': [10 * MiB, 20 * MiB],
  'disks.writeBytesPerSec': [5 * MiB, 15 * MiB],
  'disks.readIops': [500, 600],
  'disks.writeIops': [250, 350],
  'nics.inboundAverageBytesPerSec': [16_000_000, 32_000_000],
  'nics.inboundPeakBytesPerSec': [32_000_000, 48_000_000],
  'nics.inboundBurstBytes': [2_048_000, 3_072_000],
  'nics.outboundAverageBytesPerSec': [48_000_000, 64_000_000],
  'nics.outboundPeakBytesPerSec': [64_000_000, 80_000_000],
  'nics.outboundBurstBytes': [3_072_000, 4_096_000],
  'pids.max': [512, 1024],
};

/**
 * The value to set for a round trip: the caller's `limitValues` entry, else the default (for
 * `memory.maxBytes`: the guest's memory rounded up to MiB plus 512 MiB, so a hard limit never starves it),
 * switching to the alternative when the current value already equals it.
 */
export function limitTestValue(
  env: SuiteEnv,
  path: LimitFieldPath,
  current: number | null | undefined,
  guest: Guest | undefined,
): number {
  const given = env.options.limitValues?.[path];
  if (given !== undefined) return given;
  let [primary, alternative] = DEFAULT_LIMIT_VALUES[path];
  if (
    path === 'memory.maxBytes' &&
    guest &&
    Number.isSafeInteger(guest.memoryBytes) &&
    guest.memoryBytes > 0
  ) {
    primary = Math.ceil(guest.memoryBytes / MiB) * MiB + 512 * MiB;
    alternative = primary + 512 * MiB;
  }
  return current === primary ? alternative : primary;
}

/** One bad value of a limit field, with what makes it bad (shown in failure messages). */
export interface BadLimitValue {
  value: number;
  why: string;
}

/** What the suite knows about the target's host, from `inventory.host()`. */
export interface HostLimitFacts {
  /**
   * More CPUs than the host has: `sockets × cores × threads` (an upper bound on its logical CPUs whether
   * `cores` and `threads` count per socket and per core or in total).
   */
  cpuUpperBound?: number;
  memoryBytes?: number;
}

/**
 * The table of bad values every adapter must reject with `INVALID_ARGUMENT` (nothing changed), per field:
 * NaN, infinity and negatives everywhere; 0 where it has no meaning (every cap, see
 * `LimitFieldInfo.allowsZero`); fractions where whole numbers are needed (MHz, bytes, counts, weights);
 * weights outside 1..10000; and, when the host is known, `cpu.maxCores` above its CPUs (and 1e9) and
 * memory above its memory.
 */
export function badLimitValues(path: LimitFieldPath, host: HostLimitFacts = {}): BadLimitValue[] {
  const info = limitField(path);
  const out: BadLimitValue[] = [
    { value: Number.NaN, why: 'not a number' },
    { value: Number.POSITIVE_INFINITY, why: 'not finite' },
    { value: -1, why: 'negative' },
  ];
  if (!info.allowsZero) out.push({ value: 0, why: 'zero, which means nothing for this field' });
  if (info.kind === 'weight') {
    out.push({ value: 10001, why: 'above 10000' }, { value: 150.5, why: 'not an integer' });
  }
  if (info.kind === 'mhz' || info.kind === 'count') out.push({ value: 1.5, why: 'not an integer' });
  if (info.kind === 'bytes') out.push({ value: 1024.5, why: 'not a whole number of bytes' });
  if (info.hostBound === 'logicalCpus' && host.cpuUpperBound !== undefined) {
    const why = `more CPUs than the host has: inventory.host() cpu sockets × cores × threads = ${host.cpuUpperBound}`;
    out.push({ value: host.cpuUpperBound + 1, why }, { value: 1e9, why });
  }
  if (info.hostBound === 'memoryBytes' && host.memoryBytes !== undefined) {
    out.push({
      value: Math.ceil(host.memoryBytes / MiB) * MiB + GiB,
      why: `more than the host's memory: inventory.host() memoryBytes = ${host.memoryBytes}`,
    });
  }
  return out;
}

/** Builds the run-time context of one test. */
export function makeContext(
  env: SuiteEnv,
  adapter: HypervisorAdapterV1,
  probe: ConformanceProbe | undefined,
  testContext: { skip?: (note?: string) => void },
): CheckContext {
  const callTimeoutMs = env.options.callTimeoutMs ?? 30_000;
  let targetPromise: Promise<Target> | undefined;
  let guestsPromise: Promise<Guest[]> | undefined;
  const call = <T>(what: string, promise: Promise<T>) =>
    within(Promise.resolve(promise), callTimeoutMs, what);
  const guests = () => {
    guestsPromise ??= (async () => {
      const inv = adapter.inventory;
      if (!inv || env.supports.inventory === false || !env.supports.inventory.guests) return [];
      const list = await call('inventory.listGuests()', inv.listGuests());
      if (!Array.isArray(list)) fail(`inventory.listGuests() returned ${typeof list}, not an array`);
      return list;
    })();
    return guestsPromise;
  };
  const target = () => {
    targetPromise ??= (async (): Promise<Target> => {
      const inv = adapter.inventory;
      const canRead = inv !== undefined && env.supports.inventory !== false && env.supports.inventory.guests;
      let ref = env.options.target;
      let guest: Guest | undefined;
      if (ref !== undefined) {
        if (canRead) guest = await call('inventory.getGuest(target)', inv.getGuest(ref));
      } else {
        if (!canRead) fail('options.target is required: the adapter cannot list guests to pick one');
        const list = await guests();
        guest = list.find((g) => !g.isTemplate) ?? list[0];
        if (!guest) fail('the adapter lists no guests; the suite needs one to work on (pass options.target)');
        ref = guest.id;
      }
      return {
        ref,
        guest,
        probeGuest: {
          ref,
          ...(guest ? { id: guest.id, uuid: guest.uuid, name: guest.name } : {}),
        },
      };
    })();
    return targetPromise;
  };
  return {
    adapter,
    probe,
    env,
    live: env.options.mode === 'live',
    call,
    target,
    guests,
    skip(reason: string): never {
      testContext.skip?.(reason);
      throw new ConformanceSkip(reason);
    },
  };
}
