/**
 * The adapter id, defined once, and the one place where the backend's errors become HvkitErrors: XAPI's
 * error codes (the first element of an `ErrorDescription`) and the HTTP statuses of its endpoints.
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

/**
 * XAPI error codes and the HvkitError code each becomes (XAPI's `datamodel_errors.ml` names them). A code
 * not listed is `REMOTE`; `SR_BACKEND_FAILURE_*` codes are `REMOTE` too.
 */
export const XAPI_ERROR_CODES: Readonly<Record<string, HvkitErrorCode>> = Object.freeze({
  SESSION_AUTHENTICATION_FAILED: 'AUTH_FAILED',
  SESSION_INVALID: 'AUTH_FAILED',
  HOST_IS_SLAVE: 'CONFLICT',
  HANDLE_INVALID: 'NOT_FOUND',
  UUID_INVALID: 'NOT_FOUND',
  VM_BAD_POWER_STATE: 'CONFLICT',
  VM_IS_TEMPLATE: 'CONFLICT',
  OPERATION_NOT_ALLOWED: 'CONFLICT',
  OTHER_OPERATION_IN_PROGRESS: 'CONFLICT',
  MAP_DUPLICATE_KEY: 'CONFLICT',
  VDI_IN_USE: 'CONFLICT',
  MEMORY_CONSTRAINT_VIOLATION: 'INVALID_ARGUMENT',
  MEMORY_CONSTRAINT_VIOLATION_ORDER: 'INVALID_ARGUMENT',
  MEMORY_CONSTRAINT_VIOLATION_MAXPIN: 'INVALID_ARGUMENT',
  FIELD_TYPE_ERROR: 'INVALID_ARGUMENT',
  INVALID_VALUE: 'INVALID_ARGUMENT',
  VALUE_NOT_SUPPORTED: 'INVALID_ARGUMENT',
  RBAC_PERMISSION_DENIED: 'PERMISSION_DENIED',
  PERMISSION_DENIED: 'PERMISSION_DENIED',
  MESSAGE_METHOD_UNKNOWN: 'UNSUPPORTED',
  NOT_IMPLEMENTED: 'UNSUPPORTED',
  LICENCE_RESTRICTION: 'UNSUPPORTED',
  MESSAGE_PARAMETER_COUNT_MISMATCH: 'PROTOCOL',
  TASK_CANCELLED: 'ABORTED',
  EVENTS_LOST: 'REMOTE',
  TOO_MANY_PENDING_TASKS: 'REMOTE',
  INTERNAL_ERROR: 'REMOTE',
});

/** XAPI codes worth retrying (after a new session, a refetch, or a pause). */
const RETRYABLE_XAPI_CODES: ReadonlySet<string> = new Set([
  'SESSION_INVALID',
  'OTHER_OPERATION_IN_PROGRESS',
  'EVENTS_LOST',
  'TOO_MANY_PENDING_TASKS',
]);

/**
 * The HvkitError for an XAPI failure: `description` is the `ErrorDescription` (`[code, ...params]`); the
 * code is `backendCode`, the parameters are `details.params` and, joined, `backendMessage`.
 */
export function xapiErrorToHvkitError(
  description: unknown,
  context: { operation?: string } = {},
): HvkitError {
  const list = Array.isArray(description) ? description : [description];
  const xapiCode = typeof list[0] === 'string' && list[0] !== '' ? list[0] : 'UNKNOWN';
  const params = list.slice(1).map((p) => (typeof p === 'string' ? p : (JSON.stringify(p) ?? String(p))));
  const code = XAPI_ERROR_CODES[xapiCode] ?? 'REMOTE';
  return hvkitError(code, `${context.operation ?? 'call'} failed: XAPI error ${xapiCode}.`, {
    adapter: ADAPTER_ID,
    operation: context.operation,
    backendCode: xapiCode,
    backendMessage: params.length ? params.join(' ') : undefined,
    retryable: RETRYABLE_XAPI_CODES.has(xapiCode),
    details: { params },
  });
}
