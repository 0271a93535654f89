/**
 * The adapter id, defined once, and the one place where the backend's errors become HvkitErrors.
 */

import { type HvkitError, type HvkitErrorCode, hvkitError } from '@hvkit/core';

/** The adapter id: `adapter` of every adapter and of every error it throws. */
export const ADAPTER_ID = 'xen-xapi' as const;

/**
 * HTTP statuses of the backend and the HvkitError code each one becomes. A status not listed is
 * `REMOTE` (and retryable for 5xx). Extend it with the backend's own error codes when its error bodies
 * carry them (then map the code first and the status as the fallback).
 */
export const HTTP_STATUS_CODES: Readonly<Record<number, HvkitErrorCode>> = Object.freeze({
  400: 'INVALID_ARGUMENT',
  401: 'AUTH_FAILED',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  405: 'UNSUPPORTED',
  408: 'TIMEOUT',
  409: 'CONFLICT',
  412: 'CONFLICT',
  422: 'INVALID_ARGUMENT',
  501: 'UNSUPPORTED',
  504: 'TIMEOUT',
});

/** Statuses worth retrying: the server is busy or restarting. */
const RETRYABLE_STATUSES: ReadonlySet<number> = new Set([408, 429, 502, 503, 504]);

/** The backend's own message in an error body: `{ "error": { "message" } }`, `{ "message" }` or text. */
function backendMessageOf(body: string): string | undefined {
  const text = body.trim();
  if (text === '') return undefined;
  try {
    const parsed = JSON.parse(text) as { error?: { message?: unknown } | string; message?: unknown };
    const candidate =
      typeof parsed.error === 'object' && parsed.error !== null ? parsed.error.message : parsed.message;
    if (typeof candidate === 'string') return candidate;
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: the text itself
  }
  return text;
}

/**
 * The HvkitError for an HTTP error response of the backend (status >= 400). The backend's message goes to
 * `backendMessage` (cleaned and bounded by HvkitError); the status is the `backendCode`.
 */
export function backendErrorToHvkitError(
  status: number,
  body: string,
  context: { operation?: string } = {},
): HvkitError {
  const code = HTTP_STATUS_CODES[status] ?? 'REMOTE';
  const backendMessage = backendMessageOf(body);
  return hvkitError(code, `${context.operation ?? 'request'} failed: the server answered HTTP ${status}.`, {
    adapter: ADAPTER_ID,
    operation: context.operation,
    backendCode: status,
    backendMessage,
    retryable: RETRYABLE_STATUSES.has(status) || (status >= 500 && code === 'REMOTE'),
  });
}
