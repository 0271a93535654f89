/**
 * Checking that an adapter implements a specification version this core understands.
 */

import { hvkitError } from '../errors/hvkit-error';
import type { HypervisorAdapterV1 } from '../hypervisor/v1/hypervisor-adapter-v1';

/** Specification versions this version of `@hvkit/core` supports. */
export const SUPPORTED_SPECIFICATION_VERSIONS = ['v1'] as const;

/**
 * Asserts that `adapter` implements hvkit spec v1.
 *
 * @throws TypeError when `adapter` is not an object.
 * @throws HvkitError `UNSUPPORTED` naming the adapter and its version when the version is not `v1` (e.g.
 *   an adapter built for a newer `@hvkit/core`).
 */
export function assertSpecificationVersion(adapter: unknown): asserts adapter is HypervisorAdapterV1 {
  if (typeof adapter !== 'object' || adapter === null) {
    throw new TypeError(
      `Expected an hvkit adapter object, got ${adapter === null ? 'null' : typeof adapter}.`,
    );
  }
  const { specificationVersion, adapter: id } = adapter as {
    specificationVersion?: unknown;
    adapter?: unknown;
  };
  if (specificationVersion === 'v1') return;
  const name = typeof id === 'string' && id !== '' ? id : '(unnamed)';
  const version =
    typeof specificationVersion === 'string' ? `"${specificationVersion}"` : String(specificationVersion);
  throw hvkitError(
    'UNSUPPORTED',
    `Adapter "${name}" implements hvkit specification version ${version}, but this @hvkit/core supports only ` +
      `${SUPPORTED_SPECIFICATION_VERSIONS.map((v) => `"${v}"`).join(', ')}. Install matching versions of the adapter and @hvkit/core.`,
    {
      adapter: typeof id === 'string' ? id : undefined,
      details: {
        specificationVersion: typeof specificationVersion === 'string' ? specificationVersion : undefined,
      },
    },
  );
}
