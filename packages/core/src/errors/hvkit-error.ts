/**
 * The one error class every hvkit package throws for failures of the backend, the network or the input.
 * Misuse of the API itself (a missing callback, a wrong argument type) is a plain `TypeError`.
 */

import { cleanErrorText, truncateText } from './message';

const BRAND = Symbol.for('hvkit.error');

/** Longest string value at the top level of an HvkitError's `details` (characters, marker included). */
export const MAX_DETAIL_LENGTH = 4096;

function cleanDetails(
  details: Readonly<Record<string, unknown>> | undefined,
): Readonly<Record<string, unknown>> | undefined {
  if (details === undefined || details === null || typeof details !== 'object') return details;
  let copy: Record<string, unknown> | undefined;
  for (const [key, value] of Object.entries(details)) {
    if (typeof value === 'string' && value.length > MAX_DETAIL_LENGTH) {
      copy ??= { ...details };
      copy[key] = truncateText(value, MAX_DETAIL_LENGTH);
    }
  }
  return copy ?? details;
}

/** Stable error codes. They never change meaning across major versions. */
export const ERROR_CODES = [
  'NOT_FOUND',
  'INVALID_ARGUMENT',
  'UNSUPPORTED',
  'AUTH_FAILED',
  'PERMISSION_DENIED',
  'CONFLICT',
  'TIMEOUT',
  'ABORTED',
  'CONNECTION_LOST',
  'PROTOCOL',
  'REMOTE',
] as const;

/** One of {@link ERROR_CODES}. */
export type HvkitErrorCode = (typeof ERROR_CODES)[number];

const RETRYABLE_BY_DEFAULT: ReadonlySet<HvkitErrorCode> = new Set(['TIMEOUT', 'CONNECTION_LOST']);

/** Options for constructing an {@link HvkitError}. */
export interface HvkitErrorOptions {
  /** Stable code; callers branch on this, never on the message. */
  code: HvkitErrorCode;
  /**
   * Human-readable message. Must never contain a secret. It is stored cleaned: terminal escapes and
   * control characters removed (line breaks become spaces), well-known secret patterns redacted, and
   * truncated to {@link MAX_MESSAGE_LENGTH} with a marker.
   */
  message: string;
  /** Adapter id such as `kvm-libvirt`, when the error comes from an adapter. */
  adapter?: string;
  /** Operation such as `limits.set` or `rpc.DOMAIN_LOOKUP_BY_NAME`. */
  operation?: string;
  /** The underlying error, if any. */
  cause?: unknown;
  /** The backend's own error code (libvirt `VIR_ERR_*` number, SOAP fault type, errno name...). */
  backendCode?: string | number;
  /** The backend's own message, secrets removed; cleaned and bounded like `message`. */
  backendMessage?: string;
  /** Whether retrying the same call may succeed. Defaults to true for TIMEOUT and CONNECTION_LOST. */
  retryable?: boolean;
  /** Extra structured facts (never secrets). Top-level strings longer than {@link MAX_DETAIL_LENGTH} are truncated. */
  details?: Readonly<Record<string, unknown>>;
}

/**
 * The hvkit error. Identify it with {@link HvkitError.isInstance} rather than `instanceof`, which fails
 * when two copies of `@hvkit/core` are installed.
 */
export class HvkitError extends Error {
  /** Stable code. */
  readonly code: HvkitErrorCode;
  /** Adapter id, when known. */
  readonly adapter: string | undefined;
  /** Operation, when known. */
  readonly operation: string | undefined;
  /** The backend's own code. */
  readonly backendCode: string | number | undefined;
  /** The backend's own message. */
  readonly backendMessage: string | undefined;
  /** Whether retrying may succeed. */
  readonly retryable: boolean;
  /** Extra structured facts. */
  readonly details: Readonly<Record<string, unknown>> | undefined;
  constructor(options: HvkitErrorOptions) {
    super(
      cleanErrorText(options.message),
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.name = options.code === 'ABORTED' ? 'AbortError' : 'HvkitError';
    this.code = options.code;
    this.adapter = options.adapter;
    this.operation = options.operation;
    this.backendCode = options.backendCode;
    this.backendMessage =
      options.backendMessage === undefined || options.backendMessage === null
        ? undefined
        : cleanErrorText(options.backendMessage);
    this.retryable = options.retryable ?? RETRYABLE_BY_DEFAULT.has(options.code);
    this.details = cleanDetails(options.details);
    Object.defineProperty(this, BRAND, { value: true, enumerable: false });
  }

  /** True for any hvkit error, from this or another copy of `@hvkit/core`; optionally of one code. */
  static isInstance(error: unknown, code?: HvkitErrorCode): error is HvkitError {
    if (typeof error !== 'object' || error === null) return false;
    if ((error as Record<symbol, unknown>)[BRAND] !== true) return false;
    return code === undefined || (error as HvkitError).code === code;
  }

  /** A JSON-friendly view (no stack, cause summarised). */
  toJSON(): Record<string, unknown> {
    return {
      name: this.name,
      code: this.code,
      message: this.message,
      adapter: this.adapter,
      operation: this.operation,
      backendCode: this.backendCode,
      backendMessage: this.backendMessage,
      retryable: this.retryable,
      details: this.details,
    };
  }
}

/** Shorthand for `new HvkitError(...)` with the code first. */
export function hvkitError(
  code: HvkitErrorCode,
  message: string,
  options: Omit<HvkitErrorOptions, 'code' | 'message'> = {},
): HvkitError {
  return new HvkitError({ code, message, ...options });
}
