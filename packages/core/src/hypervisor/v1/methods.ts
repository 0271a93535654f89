/**
 * The spec v1 interface as data: its capabilities, their methods and where each method takes its options
 * argument. Stated once here and read by `wrapAdapter`, the conformance suite and the in-memory adapter.
 */

import type { HypervisorAdapterV1 } from './hypervisor-adapter-v1';
import type { SupportsManifest } from './supports';

/** Keys of `T` that are optional. */
type OptionalKeys<T> = { [K in keyof T]-?: {} extends Pick<T, K> ? K : never }[keyof T];

/**
 * The capability objects of spec v1: exactly the optional properties of {@link HypervisorAdapterV1} but
 * `connection` (a state report, not a capability).
 */
export type SpecV1CapabilityName = Exclude<Extract<OptionalKeys<HypervisorAdapterV1>, string>, 'connection'>;

/** The interface of capability `C`. */
export type SpecV1Capability<C extends SpecV1CapabilityName> = NonNullable<HypervisorAdapterV1[C]>;

/** The method names of capability `C`. */
export type SpecV1MethodName<C extends SpecV1CapabilityName> = Extract<keyof SpecV1Capability<C>, string>;

/** `'inventory.host'`, `'backups.backup'`, …: every method of spec v1 as `capability.method`. */
export type SpecV1Operation = {
  [C in SpecV1CapabilityName]: `${C}.${SpecV1MethodName<C>}`;
}[SpecV1CapabilityName];

/** Index of the last element of a tuple. */
type LastIndex<T extends readonly unknown[]> = T extends readonly [...infer Head, unknown]
  ? Head['length']
  : never;

/** `F` as a function type (the methods of a capability interface). */
type Fn<F> = F extends (...args: infer A) => infer R ? (...args: A) => R : never;

/** Boolean fields of capability `C`'s manifest entry. */
type ManifestFlag<C extends SpecV1CapabilityName> = {
  [K in keyof Exclude<SupportsManifest[C], false>]-?: Exclude<SupportsManifest[C], false>[K] extends boolean
    ? K
    : never;
}[keyof Exclude<SupportsManifest[C], false>];

/** What the spec says about one method; the table's types check it against the interface. */
export interface SpecV1Method {
  /** Index of the method's options argument (`{ signal, timeoutMs, … }`): the last parameter. */
  readonly optionsIndex: number;
  /** True when every adapter with the capability has the method; false for optional methods. */
  readonly required: boolean;
  /**
   * `call`: returns a promise and takes `{ signal, timeoutMs }`; `stream`: returns an async iterable and
   * takes `{ signal }` (no timeout: it runs until the signal aborts or the adapter closes).
   */
  readonly kind: 'call' | 'stream';
  /** Runs long by nature (a backup): `wrapAdapter` gives it no default timeout, only the caller's. */
  readonly longRunning: boolean;
  /**
   * Optional methods only: the boolean field of `supports.<capability>` that says whether the method is
   * there; the method exists exactly when it is `true`. Absent when no field decides it.
   */
  readonly presentWhen?: string;
}

/** The entry of method `M` of capability `C`, typed from the interface. */
type MethodEntry<C extends SpecV1CapabilityName, M extends SpecV1MethodName<C>> = SpecV1Method & {
  readonly optionsIndex: LastIndex<Required<Parameters<Fn<SpecV1Capability<C>[M]>>>>;
  readonly required: {} extends Pick<SpecV1Capability<C>, M> ? false : true;
  readonly kind: ReturnType<Fn<SpecV1Capability<C>[M]>> extends AsyncIterable<unknown> ? 'stream' : 'call';
  readonly presentWhen?: {} extends Pick<SpecV1Capability<C>, M> ? ManifestFlag<C> : never;
};

/** The shape of {@link SPEC_V1_METHODS}: every method of every capability, nothing else. */
export type SpecV1MethodTable = {
  readonly [C in SpecV1CapabilityName]: { readonly [M in SpecV1MethodName<C>]-?: MethodEntry<C, M> };
};

const call = { kind: 'call', longRunning: false } as const;

const TABLE = {
  inventory: {
    host: { ...call, optionsIndex: 0, required: true },
    listGuests: { ...call, optionsIndex: 0, required: true },
    getGuest: { ...call, optionsIndex: 1, required: true },
    listNetworks: { ...call, optionsIndex: 0, required: false, presentWhen: 'networks' },
    listStoragePools: { ...call, optionsIndex: 0, required: false, presentWhen: 'storage' },
    listStorageVolumes: { ...call, optionsIndex: 1, required: false, presentWhen: 'storage' },
  },
  limits: {
    get: { ...call, optionsIndex: 1, required: true },
    set: { ...call, optionsIndex: 2, required: true },
  },
  labels: {
    get: { ...call, optionsIndex: 1, required: true },
    hostModels: { ...call, optionsIndex: 0, required: false, presentWhen: 'hostModels' },
    set: { ...call, optionsIndex: 2, required: false, presentWhen: 'set' },
  },
  backups: {
    listSnapshots: { ...call, optionsIndex: 1, required: true },
    createSnapshot: { ...call, optionsIndex: 1, required: true },
    deleteSnapshot: { ...call, optionsIndex: 2, required: true },
    revertSnapshot: { ...call, optionsIndex: 2, required: false },
    backup: { ...call, optionsIndex: 2, required: true, longRunning: true },
    backupHostConfig: {
      ...call,
      optionsIndex: 1,
      required: false,
      longRunning: true,
      presentWhen: 'hostConfig',
    },
    restore: { ...call, optionsIndex: 1, required: false, longRunning: true },
    listCheckpoints: { ...call, optionsIndex: 1, required: false, presentWhen: 'checkpoints' },
    cleanup: { ...call, optionsIndex: 1, required: false, presentWhen: 'cleanup' },
  },
  events: {
    subscribe: { kind: 'stream', longRunning: false, optionsIndex: 0, required: true },
  },
} as const satisfies SpecV1MethodTable;

/**
 * Every capability of spec v1 and every method of each, with the index of its options argument. A method
 * missing here, one the interface does not have, or a wrong index is a type error, so code that walks the
 * interface (`wrapAdapter` passing each call its signal and deadline, the conformance suite calling each
 * method with an aborted signal) cannot silently leave one out.
 *
 * @example
 * SPEC_V1_METHODS.limits.set.optionsIndex; // 2: limits.set(ref, limits, options)
 */
export const SPEC_V1_METHODS: SpecV1MethodTable = deepFreeze(TABLE);

/** The capability names of spec v1, in the order of {@link SPEC_V1_METHODS} (the conformance suite's). */
export const SPEC_V1_CAPABILITIES: readonly SpecV1CapabilityName[] = Object.freeze(
  Object.keys(SPEC_V1_METHODS) as SpecV1CapabilityName[],
);

/** One row of {@link specV1Methods}. */
export interface SpecV1MethodRow extends SpecV1Method {
  readonly capability: SpecV1CapabilityName;
  readonly method: string;
  /** `capability.method`, the operation name errors and logs use. */
  readonly operation: SpecV1Operation;
}

/** {@link SPEC_V1_METHODS} as a flat list, in table order. */
export function specV1Methods(): SpecV1MethodRow[] {
  return SPEC_V1_CAPABILITIES.flatMap((capability) =>
    Object.entries(SPEC_V1_METHODS[capability] as Record<string, SpecV1Method>).map(([method, info]) => ({
      ...info,
      capability,
      method,
      operation: `${capability}.${method}` as SpecV1Operation,
    })),
  );
}

function deepFreeze<T>(value: T): T {
  for (const v of Object.values(value as object)) if (typeof v === 'object' && v !== null) deepFreeze(v);
  return Object.freeze(value);
}
