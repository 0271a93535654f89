/**
 * Dialers: byte streams to a unix socket, a TCP port or a TLS server, each with a connect timeout and abort.
 */

import { isIP, connect as netConnect, type Socket } from 'node:net';
import { type ConnectionOptions, type TLSSocket, connect as tlsConnect } from 'node:tls';
import { checkOptionKeys, type OptionKeysOf } from '../adapter/option-keys';
import { HvkitError, hvkitError } from '../errors/hvkit-error';
import { abortError, checkSignal, checkTimeoutMs, type ErrorContext } from '../signal/abort';
import type { Dialer, TransportCallOptions } from './types';

/** Default connect timeout of dialers and the HTTP fetch: 10 seconds. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Errno codes that mean the peer is (for now) unreachable: worth retrying. */
const CONNECTION_ERRNOS: ReadonlySet<string> = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ECONNABORTED',
  'EPIPE',
  'ENOENT',
  'EHOSTUNREACH',
  'EHOSTDOWN',
  'ENETUNREACH',
  'ENETDOWN',
  'ETIMEDOUT',
  'EAI_AGAIN',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

/** TLS error codes that mean the server's certificate was not accepted. */
const CERT_ERRORS: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_GET_CRL',
  'CERT_HAS_EXPIRED',
  'CERT_NOT_YET_VALID',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_SIGNATURE_FAILURE',
  'INVALID_CA',
  'PATH_LENGTH_EXCEEDED',
  'INVALID_PURPOSE',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'ERR_TLS_CERT_ALTNAME_FORMAT',
]);

/** Where a connection goes and what it was for, for error messages. */
export interface NetworkErrorContext extends ErrorContext {
  /** e.g. `tcp:127.0.0.1:16509`, `https://vcenter.example`. */
  target?: string;
}

/**
 * Maps a socket, DNS, TLS or undici error to an HvkitError:
 * refused/reset/unreachable/missing unix socket (`ECONNREFUSED`, `ENOENT`, ...) → `CONNECTION_LOST`
 * (retryable); an unknown host (`ENOTFOUND`) → `CONNECTION_LOST` (not retryable); `EACCES`/`EPERM` →
 * `PERMISSION_DENIED`; a certificate that is not trusted → `AUTH_FAILED`; connect/header/body timeouts →
 * `TIMEOUT`; other TLS failures → `PROTOCOL`; anything else → `CONNECTION_LOST`. The original code is the
 * `backendCode`. HvkitErrors (also as `cause`) pass through.
 */
export function networkErrorToHvkitError(error: unknown, context: NetworkErrorContext = {}): HvkitError {
  if (HvkitError.isInstance(error)) return error;
  const cause =
    typeof error === 'object' && error !== null ? (error as { cause?: unknown }).cause : undefined;
  if (HvkitError.isInstance(cause)) return cause;
  const code = codeOf(error) ?? codeOf(cause);
  const original = codeOf(error) !== undefined || cause === undefined ? error : cause;
  const message = original instanceof Error ? original.message : String(original);
  const where = context.target ? ` ${context.target}` : '';
  const options = {
    adapter: context.adapter,
    operation: context.operation,
    cause: error,
    backendCode: code,
    backendMessage: message,
    details: context.target ? { target: context.target } : undefined,
  };
  if (code === undefined) {
    return hvkitError('CONNECTION_LOST', `Connection to${where} failed: ${message}`, options);
  }
  if (code === 'ENOTFOUND') {
    return hvkitError('CONNECTION_LOST', `Host not found for${where}: ${message}`, {
      ...options,
      retryable: false,
    });
  }
  if (CONNECTION_ERRNOS.has(code)) {
    return hvkitError('CONNECTION_LOST', `Connection to${where} failed (${code}).`, options);
  }
  if (code === 'EACCES' || code === 'EPERM') {
    return hvkitError('PERMISSION_DENIED', `Permission denied connecting to${where} (${code}).`, options);
  }
  if (CERT_ERRORS.has(code)) {
    return hvkitError(
      'AUTH_FAILED',
      `The TLS certificate of${where} is not trusted (${code}). Pass its CA (\`ca\`), pin its SHA-256 ` +
        'fingerprint (`pinnedSha256`), or opt out with `insecureSkipVerify: true`.',
      { ...options, retryable: false },
    );
  }
  if (
    code === 'UND_ERR_CONNECT_TIMEOUT' ||
    code === 'UND_ERR_HEADERS_TIMEOUT' ||
    code === 'UND_ERR_BODY_TIMEOUT'
  ) {
    return hvkitError('TIMEOUT', `Timed out talking to${where} (${code}).`, options);
  }
  if (code.startsWith('ERR_SSL') || code.startsWith('ERR_TLS') || code.startsWith('EPROTO')) {
    return hvkitError('PROTOCOL', `TLS failure with${where} (${code}): ${message}`, {
      ...options,
      retryable: false,
    });
  }
  return hvkitError('CONNECTION_LOST', `Connection to${where} failed (${code}): ${message}`, {
    ...options,
    retryable: false,
  });
}

function codeOf(error: unknown): string | undefined {
  if (typeof error !== 'object' || error === null) return undefined;
  const code = (error as { code?: unknown }).code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Normalises a SHA-256 certificate fingerprint to the `AB:CD:...` form Node.js reports
 * (`fingerprint256`). Accepts 64 hex digits with or without `:` or space separators, any case.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for anything else.
 */
export function normalizeSha256Fingerprint(fingerprint: string): string {
  if (typeof fingerprint !== 'string') throw new TypeError('A SHA-256 fingerprint must be a string.');
  const hex = fingerprint
    .trim()
    .replace(/^sha-?256[:=]\s*/i, '')
    .replace(/[:\s]/g, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      'pinnedSha256 must be a SHA-256 fingerprint: 64 hex digits, optionally colon-separated.',
    );
  }
  return hex.toUpperCase().match(/../g)?.join(':') as string;
}

/**
 * Checks a TLS socket's peer certificate against a pinned fingerprint.
 *
 * @returns an `AUTH_FAILED` HvkitError on mismatch (or no certificate), `undefined` when it matches.
 */
export function checkPinnedCertificate(
  socket: TLSSocket,
  pinned: string,
  context: NetworkErrorContext = {},
): HvkitError | undefined {
  const actual = socket.getPeerCertificate()?.fingerprint256;
  if (typeof actual === 'string' && actual.toUpperCase() === pinned) return undefined;
  const where = context.target ? ` of ${context.target}` : '';
  return hvkitError(
    'AUTH_FAILED',
    `The TLS certificate${where} does not match the pinned SHA-256 fingerprint.`,
    {
      adapter: context.adapter,
      operation: context.operation,
      retryable: false,
      details: { expected: pinned, actual: actual || undefined, target: context.target },
    },
  );
}

/** TLS settings shared by {@link tlsDialer} and the HTTP fetch. */
export interface TlsSettings {
  /** Trusted CA certificates (PEM), replacing the system store for this connection. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /** Client certificate (PEM), for mutual TLS. */
  cert?: string | Buffer;
  /** Client private key (PEM). */
  key?: string | Buffer;
  /** Server name for SNI and certificate checks (default: the host, unless it is an IP address). */
  servername?: string;
  /**
   * Accept a server certificate whose SHA-256 fingerprint is this one even if it is not otherwise trusted,
   * and refuse every other certificate (also CA-signed ones).
   */
  pinnedSha256?: string;
  /** The named opt-out: accept any certificate. Only for tests and labs. */
  insecureSkipVerify?: boolean;
}

/** The keys {@link TlsSettings} accepts, for {@link checkOptionKeys} (e.g. as the spec of a `tls` option). */
export const TLS_SETTINGS_OPTION_KEYS = {
  ca: true,
  cert: true,
  key: true,
  servername: true,
  pinnedSha256: true,
  insecureSkipVerify: true,
} as const satisfies OptionKeysOf<TlsSettings>;

/**
 * Node.js TLS options for {@link TlsSettings}: verification on unless `insecureSkipVerify` or a pin (which
 * is then checked by {@link checkPinnedCertificate}).
 */
export function tlsConnectionOptions(settings: TlsSettings, host?: string): ConnectionOptions {
  const pinned =
    settings.pinnedSha256 !== undefined ? normalizeSha256Fingerprint(settings.pinnedSha256) : undefined;
  const servername = settings.servername ?? (host !== undefined && isIP(host) === 0 ? host : undefined);
  return {
    ca: settings.ca as ConnectionOptions['ca'],
    cert: settings.cert,
    key: settings.key,
    servername,
    rejectUnauthorized: !(settings.insecureSkipVerify === true || pinned !== undefined),
  };
}

/** Options common to the dialers. */
export interface DialerOptions {
  /** Connect timeout (default 10 000 ms); a dial's own `timeoutMs` wins. */
  connectTimeoutMs?: number;
}

function checkPort(port: unknown): number {
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) {
    throw hvkitError('INVALID_ARGUMENT', `Invalid port ${String(port)}.`);
  }
  return port;
}

function checkHost(host: unknown): string {
  if (typeof host !== 'string') throw new TypeError('host must be a string.');
  if (host === '' || /[\s/\0]/.test(host))
    throw hvkitError('INVALID_ARGUMENT', `Invalid host ${JSON.stringify(host)}.`);
  return host;
}

function hostPort(host: string, port: number): string {
  return `${isIP(host) === 6 ? `[${host}]` : host}:${port}`;
}

/**
 * Connects a socket: resolves once `readyEvent` fires, rejects with a mapped error, `TIMEOUT` after the
 * connect timeout, or `ABORTED`, destroying the socket in every failure case.
 */
function connectSocket<S extends Socket>(
  create: () => S,
  readyEvent: 'connect' | 'secureConnect',
  call: TransportCallOptions,
  defaultTimeoutMs: number,
  target: string,
  verify?: (socket: S) => HvkitError | undefined,
): Promise<S> {
  const signal = checkSignal(call.signal);
  const timeoutMs = checkTimeoutMs(call.timeoutMs ?? defaultTimeoutMs);
  const context = { operation: 'dial' };
  if (signal?.aborted) return Promise.reject(abortError(signal, context));
  return new Promise<S>((resolve, reject) => {
    let socket: S;
    try {
      socket = create();
    } catch (error) {
      reject(networkErrorToHvkitError(error, { ...context, target }));
      return;
    }
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cleanup = () => {
      if (timer !== undefined) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.removeListener('error', onError);
      socket.removeListener(readyEvent, onReady);
    };
    const fail = (error: HvkitError) => {
      cleanup();
      // A late error event after destroy must not crash the process.
      socket.on('error', () => {});
      socket.destroy();
      reject(error);
    };
    const onError = (error: Error) => fail(networkErrorToHvkitError(error, { ...context, target }));
    const onAbort = () => fail(abortError(signal, context));
    const onReady = () => {
      const problem = verify?.(socket);
      if (problem) {
        fail(problem);
        return;
      }
      cleanup();
      resolve(socket);
    };
    socket.once('error', onError);
    socket.once(readyEvent, onReady);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(
        () =>
          fail(
            hvkitError('TIMEOUT', `Connecting to ${target} timed out after ${timeoutMs} ms.`, {
              ...context,
              details: { target, timeoutMs },
            }),
          ),
        timeoutMs,
      );
    }
  });
}

/** A dialer for a unix domain socket (e.g. `/var/run/libvirt/libvirt-sock`). A missing socket is `CONNECTION_LOST`. */
export function unixSocketDialer(path: string, options: DialerOptions = {}): Dialer {
  if (typeof path !== 'string') throw new TypeError('unixSocketDialer: path must be a string.');
  if (path === '' || path.includes('\0'))
    throw hvkitError('INVALID_ARGUMENT', 'unixSocketDialer: invalid socket path.');
  const connectTimeoutMs = checkTimeoutMs(
    options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    'connectTimeoutMs',
  );
  const target = `unix:${path}`;
  return {
    target,
    dial: (call = {}) => connectSocket(() => netConnect({ path }), 'connect', call, connectTimeoutMs, target),
  };
}

/** Options of {@link tcpDialer}. */
export interface TcpDialerOptions extends DialerOptions {
  host: string;
  port: number;
  /** TCP keep-alive (default true). */
  keepAlive?: boolean;
  /** Disable Nagle's algorithm (default true). */
  noDelay?: boolean;
}

/** A dialer for a plain TCP connection. */
export function tcpDialer(options: TcpDialerOptions): Dialer {
  const host = checkHost(options.host);
  const port = checkPort(options.port);
  const connectTimeoutMs = checkTimeoutMs(
    options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    'connectTimeoutMs',
  );
  const target = `tcp:${hostPort(host, port)}`;
  return {
    target,
    dial: (call = {}) =>
      connectSocket(
        () =>
          netConnect({ host, port, keepAlive: options.keepAlive ?? true, noDelay: options.noDelay ?? true }),
        'connect',
        call,
        connectTimeoutMs,
        target,
      ),
  };
}

/** Options of {@link tlsDialer}. */
export interface TlsDialerOptions extends DialerOptions, TlsSettings {
  host: string;
  port: number;
  /**
   * Node.js's switch, kept for familiarity; `false` is the same as `insecureSkipVerify: true`. Prefer the
   * named opt-out. Default true.
   */
  rejectUnauthorized?: boolean;
}

const TLS_DIALER_OPTION_KEYS = {
  host: true,
  port: true,
  connectTimeoutMs: true,
  rejectUnauthorized: true,
  ...TLS_SETTINGS_OPTION_KEYS,
} as const satisfies OptionKeysOf<TlsDialerOptions>;

/**
 * A dialer for TLS over TCP. The server certificate is verified (system CAs, or `ca`) unless a
 * `pinnedSha256` is given (then exactly that certificate is accepted) or the caller opts out with
 * `insecureSkipVerify: true`. An untrusted certificate fails with `AUTH_FAILED`.
 *
 * @throws TypeError for unknown option keys (a misspelt pin is never ignored) and bad timeouts.
 */
export function tlsDialer(options: TlsDialerOptions): Dialer {
  checkOptionKeys(options, TLS_DIALER_OPTION_KEYS, 'tlsDialer');
  const host = checkHost(options.host);
  const port = checkPort(options.port);
  const connectTimeoutMs = checkTimeoutMs(
    options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    'connectTimeoutMs',
  );
  const settings: TlsSettings = {
    ...options,
    insecureSkipVerify: options.insecureSkipVerify === true || options.rejectUnauthorized === false,
  };
  const tlsOptions = tlsConnectionOptions(settings, host);
  const pinned =
    settings.pinnedSha256 !== undefined ? normalizeSha256Fingerprint(settings.pinnedSha256) : undefined;
  const target = `tls:${hostPort(host, port)}`;
  return {
    target,
    dial: (call = {}) =>
      connectSocket(
        () => tlsConnect({ ...tlsOptions, host, port }),
        'secureConnect',
        call,
        connectTimeoutMs,
        target,
        pinned !== undefined
          ? (socket) => checkPinnedCertificate(socket, pinned, { operation: 'dial', target })
          : undefined,
      ),
  };
}
