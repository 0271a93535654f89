/**
 * Capability objects are optional on the spec v1 interface (present only when `supports` says so), so
 * strict TypeScript rejects `hv.limits.set(...)` until the code has checked. These helpers do the check
 * once and narrow the type.
 */

import { hvkitError } from '../errors/hvkit-error';
import type { HypervisorAdapterV1 } from '../hypervisor/v1/hypervisor-adapter-v1';
import { SPEC_V1_CAPABILITIES, type SpecV1CapabilityName } from '../hypervisor/v1/methods';

/** The name of an optional capability object of a spec v1 adapter (one of `SPEC_V1_CAPABILITIES`). */
export type CapabilityName = SpecV1CapabilityName;

/** `A` with the capability `K` known to be present. */
export type WithCapability<A extends HypervisorAdapterV1, K extends CapabilityName> = A & {
  readonly [P in K]-?: NonNullable<A[P]>;
};

function checkArguments(adapter: unknown, name: unknown, caller: string): void {
  if (typeof adapter !== 'object' || adapter === null) {
    throw new TypeError(
      `${caller}: expected an hvkit adapter, got ${adapter === null ? 'null' : typeof adapter}.`,
    );
  }
  if (typeof name !== 'string' || !(SPEC_V1_CAPABILITIES as readonly string[]).includes(name)) {
    throw new TypeError(
      `${caller}: the capability must be one of ${SPEC_V1_CAPABILITIES.join(', ')}, got ${typeof name === 'string' ? JSON.stringify(name.slice(0, 40)) : typeof name}.`,
    );
  }
}

/**
 * True when `adapter` has the capability object `name`; narrows `adapter` so that `adapter[name]` is not
 * `undefined` afterwards.
 *
 * @example
 * if (hasCapability(hv, 'limits')) await hv.limits.set({ name: 'web-1' }, { cpu: { weight: 200 } });
 *
 * @throws TypeError when `adapter` is not an object or `name` is not a capability name.
 */
export function hasCapability<A extends HypervisorAdapterV1, K extends CapabilityName>(
  adapter: A,
  name: K,
): adapter is WithCapability<A, K> {
  checkArguments(adapter, name, 'hasCapability');
  const capability = (adapter as Record<string, unknown>)[name];
  return typeof capability === 'object' && capability !== null;
}

/**
 * The capability object `name` of `adapter`, typed as present.
 *
 * @example
 * const limits = requireCapability(hv, 'limits'); // HvkitError UNSUPPORTED when the adapter has none
 * await limits.set({ name: 'web-1' }, { cpu: { weight: 200 } });
 *
 * @throws HvkitError `UNSUPPORTED` naming the adapter when it does not have the capability (its
 *   `supports` manifest says `false` for it).
 * @throws TypeError when `adapter` is not an object or `name` is not a capability name.
 */
export function requireCapability<A extends HypervisorAdapterV1, K extends CapabilityName>(
  adapter: A,
  name: K,
): NonNullable<A[K]> {
  checkArguments(adapter, name, 'requireCapability');
  if (!hasCapability(adapter, name)) {
    const id = typeof adapter.adapter === 'string' ? adapter.adapter : 'this adapter';
    throw hvkitError('UNSUPPORTED', `${id} has no ${name} capability (see its supports.${name}).`, {
      adapter: typeof adapter.adapter === 'string' ? adapter.adapter : undefined,
      operation: name,
    });
  }
  return adapter[name] as NonNullable<A[K]>;
}
