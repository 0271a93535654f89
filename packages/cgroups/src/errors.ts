/**
 * The adapter id, defined once, and the one place where the backend's errors become HvkitErrors. File
 * errors arrive typed from the transport (errno mapped by core: `ENOENT` is `NOT_FOUND`, `EACCES`
 * `PERMISSION_DENIED`, ...); here they get the backend's meaning.
 */

import { HvkitError, type HvkitErrorCode, hvkitError } from '@hvkit/core';

/** The adapter id: `adapter` of every adapter and of every error it throws. */
export const ADAPTER_ID = 'cgroups' as const;

/**
 * What a transport error means when reading a file the backend must have: a missing file says this host
 * does not run the backend (`UNSUPPORTED`); the others keep their code. Extend it with your backend's rules.
 */
export const FILE_ERROR_CODES: Readonly<Partial<Record<HvkitErrorCode, HvkitErrorCode>>> = Object.freeze({
  NOT_FOUND: 'UNSUPPORTED',
  INVALID_ARGUMENT: 'PROTOCOL',
});

/** The HvkitError for a failed read of one of the backend's files (`path` relative to the root). */
export function fileErrorToHvkitError(
  error: unknown,
  path: string,
  context: { operation?: string } = {},
): HvkitError {
  const from: HvkitErrorCode = HvkitError.isInstance(error) ? error.code : 'REMOTE';
  const code = FILE_ERROR_CODES[from] ?? from;
  const reason =
    code === 'UNSUPPORTED'
      ? `${path} is missing: this host does not run the backend`
      : `reading ${path} failed`;
  return hvkitError(code, `${context.operation ?? 'read'}: ${reason}.`, {
    adapter: ADAPTER_ID,
    operation: context.operation,
    cause: error,
    backendCode: HvkitError.isInstance(error) ? error.backendCode : undefined,
    details: { path },
  });
}
