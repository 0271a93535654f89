/**
 * HTTP statuses that every vSphere endpoint (SOAP, file downloads) answers with the same meaning.
 */

import { type HvkitError, hvkitError, parseRetryAfter } from '@hvkit/core';

/**
 * The typed error for 401 (`AUTH_FAILED`), 403 (`PERMISSION_DENIED`) and the temporary statuses 408, 429,
 * 502, 503, 504 (`CONNECTION_LOST`, retryable, with `details.retryAfterMs` from `Retry-After`);
 * `undefined` for any other status, which the caller maps itself.
 */
export function commonStatusError(
  response: Response,
  where: string,
  context: { adapter: string; operation?: string },
): HvkitError | undefined {
  const status = response.status;
  const options = { ...context, backendCode: status, details: { status } };
  if (status === 401) return hvkitError('AUTH_FAILED', `${where}.`, { ...options, retryable: false });
  if (status === 403) return hvkitError('PERMISSION_DENIED', `${where}.`, { ...options, retryable: false });
  if (status === 408 || status === 429 || status === 502 || status === 503 || status === 504) {
    const retryAfterMs = parseRetryAfter(response.headers.get('retry-after'));
    return hvkitError('CONNECTION_LOST', `${where} (temporarily unavailable).`, {
      ...options,
      retryable: true,
      details: { status, ...(retryAfterMs !== undefined ? { retryAfterMs } : {}) },
    });
  }
  return undefined;
}
