/**
 * The adapter id, defined once, and the one place where file errors become the adapter's HvkitErrors.
 * Transport errors arrive typed (errno mapped by core or by the SSH writer, the errno name kept as
 * `backendCode`); here they get the cgroup meaning of the notes' §1.4: a value the kernel refuses
 * (`EINVAL`, `ERANGE`) is `INVALID_ARGUMENT`, a busy group (`EBUSY`: a limit below usage, `rmdir` of a
 * populated group) is `CONFLICT`, an unknown block device (`ENODEV`) or a missing file is `NOT_FOUND`.
 */

import { HvkitError, type HvkitErrorCode, hvkitError } from '@hvkit/core';

/** The adapter id: `adapter` of every adapter and of every error it throws. */
export const ADAPTER_ID = 'cgroups' as const;

/** What an errno of a refused cgroup file write means. Others keep the transport's code (or `REMOTE`). */
export const ERRNO_CODES: Readonly<Record<string, HvkitErrorCode>> = Object.freeze({
  EINVAL: 'INVALID_ARGUMENT',
  ERANGE: 'INVALID_ARGUMENT',
  EBUSY: 'CONFLICT',
  ENODEV: 'NOT_FOUND',
  ENOENT: 'NOT_FOUND',
  ENOTDIR: 'NOT_FOUND',
  EACCES: 'PERMISSION_DENIED',
  EPERM: 'PERMISSION_DENIED',
  EROFS: 'PERMISSION_DENIED',
  EAGAIN: 'CONFLICT',
  ENOSPC: 'CONFLICT',
});

/**
 * What a transport error means when reading a file the adapter must have (`hello`): a missing file says
 * this host has no cgroup files (`UNSUPPORTED`); the others keep their code.
 */
export const FILE_ERROR_CODES: Readonly<Partial<Record<HvkitErrorCode, HvkitErrorCode>>> = Object.freeze({
  NOT_FOUND: 'UNSUPPORTED',
  INVALID_ARGUMENT: 'PROTOCOL',
});

/** The errno name a transport error carries (`EINVAL`), when it carries one. */
export function errnoOf(error: unknown): string | undefined {
  const code = HvkitError.isInstance(error)
    ? error.backendCode
    : typeof error === 'object' && error !== null
      ? (error as NodeJS.ErrnoException).code
      : undefined;
  return typeof code === 'string' && /^E[A-Z0-9]+$/.test(code) ? code : undefined;
}

/** The HvkitError for a failed read of a file `hello` needs (`path` as on the host). */
export function fileErrorToHvkitError(
  error: unknown,
  path: string,
  context: { operation?: string } = {},
): HvkitError {
  const from: HvkitErrorCode = HvkitError.isInstance(error) ? error.code : 'REMOTE';
  const code = FILE_ERROR_CODES[from] ?? from;
  const reason =
    code === 'UNSUPPORTED' ? `${path} is missing: this host has no cgroup files` : `reading ${path} failed`;
  return hvkitError(code, `${context.operation ?? 'read'}: ${reason}.`, {
    adapter: ADAPTER_ID,
    operation: context.operation,
    cause: error,
    backendCode: HvkitError.isInstance(error) ? error.backendCode : undefined,
    details: { path },
  });
}

/**
 * The HvkitError for a cgroup file access that failed: the errno decides the code through
 * {@link ERRNO_CODES} (timeouts, aborts and lost connections keep theirs), the errno travels as
 * `backendCode` and `details.errno`, the path and written value (never a secret: cgroup values) as details.
 */
export function cgroupFileError(
  error: unknown,
  path: string,
  context: { operation: string; value?: string },
): HvkitError {
  const errno = errnoOf(error);
  const transportCode: HvkitErrorCode = HvkitError.isInstance(error) ? error.code : 'REMOTE';
  const keep = ['TIMEOUT', 'ABORTED', 'CONNECTION_LOST'].includes(transportCode);
  const code: HvkitErrorCode = keep
    ? transportCode
    : ((errno ? ERRNO_CODES[errno] : undefined) ?? transportCode);
  const what =
    context.value !== undefined ? `writing ${JSON.stringify(context.value)} to ${path}` : `reading ${path}`;
  const why = errno ? `the kernel refused it (${errno})` : 'it failed';
  const details: Record<string, unknown> = { path };
  if (errno) details.errno = errno;
  if (context.value !== undefined) details.value = context.value;
  return hvkitError(code, `${context.operation}: ${what}: ${why}.`, {
    adapter: ADAPTER_ID,
    operation: context.operation,
    cause: error,
    backendCode: errno ?? (HvkitError.isInstance(error) ? error.backendCode : undefined),
    backendMessage: error instanceof Error ? error.message : undefined,
    details,
  });
}
