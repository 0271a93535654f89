/**
 * The HTTP client for vSphere endpoints: undici `fetch` over a keep-alive Agent whose TLS follows govc.
 * Plain `http://` requests (the named `insecureHttp` opt-out: labs, simulators, recorded replays) carry no
 * TLS to decide, so unless transport settings are given they go through the platform's `fetch`
 * (`globalThis.fetch`, looked up per request): what the global dispatcher, msw and other interceptors see.
 *
 * - Default: the certificate must verify against the system CAs (or `ca`) and match the host name.
 * - `thumbprint` (SHA-1 of the leaf certificate, `AA:BB:...` as vCenter and govc show it), in one of two
 *   modes (`thumbprintMode`):
 *   - `'fallback'` (the default, as govc): a certificate that verifies normally is accepted as usual,
 *     whatever its thumbprint; one that fails only because its issuer is unknown (self-signed) or its
 *     names do not match the host is accepted when its SHA-1 thumbprint equals the pinned one, and refused
 *     otherwise. Other failures (an expired certificate) are refused either way.
 *   - `'exclusive'`: only the certificate with the pinned thumbprint is accepted, and every other one is
 *     refused, CA-signed ones included (like core's `pinnedSha256`). Neither the CA nor the host name is
 *     consulted then: the pin alone decides.
 *   TLS session resumption is off when pinning, so the peer certificate is present on every connection.
 * - `insecureSkipVerify: true`: the named opt-out; any certificate is accepted.
 *
 * A refused certificate is `AUTH_FAILED` naming the thumbprint the server offered, so it can be checked
 * out of band and pinned.
 */

import { X509Certificate } from 'node:crypto';
import type { TLSSocket } from 'node:tls';
import {
  createHttpFetch,
  fetchErrorToHvkitError,
  type HttpFetch,
  hvkitError,
  type TlsSettings,
} from '@hvkit/core';
import { ADAPTER_ID } from '../../errors';

/** TLS settings of a vSphere endpoint. */
export interface VimTlsOptions {
  /** Trusted CA certificates (PEM), replacing the system store. */
  ca?: string | Buffer | ReadonlyArray<string | Buffer>;
  /**
   * SHA-1 thumbprint of the server's certificate (40 hex digits, colons optional, any case), as shown by
   * vCenter and `govc about.cert -thumbprint`. When it is consulted depends on `thumbprintMode`.
   */
  thumbprint?: string;
  /**
   * How `thumbprint` is used: `'fallback'` (default, as govc) accepts a certificate that verifies against
   * the CAs whatever its thumbprint, and uses the pin only when verification fails for an unknown issuer
   * or a host name mismatch; `'exclusive'` accepts only the certificate with this thumbprint and refuses
   * every other one, CA-signed ones included. Needs `thumbprint`.
   */
  thumbprintMode?: VimThumbprintMode;
  /** The named opt-out: accept any certificate. Only for labs and tests. */
  insecureSkipVerify?: boolean;
  /** Server name for SNI and the host name check (default: the URL's host unless it is an IP address). */
  servername?: string;
}

/** How a pinned thumbprint is used; see {@link VimTlsOptions.thumbprintMode}. */
export type VimThumbprintMode = 'fallback' | 'exclusive';

/** Options of {@link createVimFetch}. */
export interface VimFetchOptions {
  tls?: VimTlsOptions;
  /** How long an idle keep-alive connection is kept (default 4000 ms). */
  keepAliveTimeoutMs?: number;
  /** Connect timeout including the TLS handshake (default 10 s). */
  connectTimeoutMs?: number;
  /** Time to wait for response headers (default 300 s; calls pass their own deadline as a signal). */
  headersTimeoutMs?: number;
  /** Time allowed between two body chunks (default 300 s). */
  bodyTimeoutMs?: number;
  /** Largest number of connections per origin (default unlimited). */
  connections?: number;
}

/**
 * Normalises a SHA-1 certificate thumbprint to upper-case colon hex (`AB:CD:...`).
 *
 * @throws HvkitError `INVALID_ARGUMENT` when it is not 40 hex digits (optionally `:`/space separated).
 */
export function normalizeThumbprint(thumbprint: string): string {
  if (typeof thumbprint !== 'string') throw new TypeError('A thumbprint must be a string.');
  const hex = thumbprint.trim().replace(/[:\s]/g, '');
  if (!/^[0-9a-fA-F]{40}$/.test(hex)) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      'thumbprint must be the SHA-1 thumbprint of the server certificate: 40 hex digits, optionally colon-separated.',
      { adapter: ADAPTER_ID },
    );
  }
  return (hex.toUpperCase().match(/../g) as string[]).join(':');
}

/** The SHA-1 thumbprint (`AB:CD:...`) of a certificate given as PEM or DER. */
export function thumbprintOf(certificate: string | Buffer): string {
  return new X509Certificate(certificate).fingerprint.toUpperCase();
}

/** Verification failures the pinned thumbprint may override (as govc: unknown authority, host name). */
const PINNABLE_ERRORS: ReadonlySet<string> = new Set([
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'CERT_UNTRUSTED',
  'ERR_TLS_CERT_ALTNAME_INVALID',
  'HOSTNAME_MISMATCH',
]);

/** The decision for a finished TLS handshake: `undefined` to accept, else the error to fail with. */
function checkPeer(
  socket: TLSSocket,
  settings: { pinned: string | undefined; exclusive: boolean; insecure: boolean },
  target: string,
): Error | undefined {
  if (settings.insecure) return undefined;
  if (socket.authorized && !settings.exclusive) return undefined;
  const reason = socket.authorized ? 'THUMBPRINT_MISMATCH' : String(socket.authorizationError ?? 'UNKNOWN');
  const offered = socket.getPeerCertificate()?.fingerprint;
  const offeredText = typeof offered === 'string' && offered !== '' ? offered.toUpperCase() : undefined;
  const details = {
    target,
    verifyError: socket.authorized ? undefined : reason,
    offeredThumbprint: offeredText,
    pinnedThumbprint: settings.pinned,
    thumbprintMode: settings.pinned === undefined ? undefined : settings.exclusive ? 'exclusive' : 'fallback',
  };
  if (settings.pinned !== undefined && (settings.exclusive || PINNABLE_ERRORS.has(reason))) {
    if (offeredText === settings.pinned) return undefined;
    return hvkitError(
      'AUTH_FAILED',
      `The TLS certificate of ${target} has SHA-1 thumbprint ${offeredText ?? '(none)'}, which does not match ` +
        `the pinned thumbprint ${settings.pinned}${settings.exclusive ? ' (exclusive pin)' : ''}.`,
      { adapter: ADAPTER_ID, operation: 'connect', backendCode: reason, retryable: false, details },
    );
  }
  const hint =
    settings.pinned !== undefined
      ? " A pinned thumbprint only overrides an unknown issuer or a host name mismatch (use `thumbprintMode: 'exclusive'` to rely on the pin alone)."
      : ` Pass its CA (\`ca\`), or pin its SHA-1 thumbprint (\`thumbprint\`${offeredText ? `, offered: ${offeredText}` : ''}) after checking it out of band, or opt out with \`insecureSkipVerify: true\`.`;
  return hvkitError('AUTH_FAILED', `The TLS certificate of ${target} is not trusted (${reason}).${hint}`, {
    adapter: ADAPTER_ID,
    operation: 'connect',
    backendCode: reason,
    retryable: false,
    details,
  });
}

/**
 * Creates the fetch a vSphere session uses by default: undici over a keep-alive Agent with the TLS rules
 * of the module notes. Without transport settings (timeouts, `connections`), plain `http://` requests go
 * through the platform's `fetch` instead (the same defaults; msw and the global dispatcher apply). Network
 * and TLS failures reject with HvkitErrors; HTTP statuses are responses.
 *
 * @throws TypeError when both `thumbprint` and `insecureSkipVerify` are given, for a `thumbprintMode` without
 *   a thumbprint or an unknown one, or for bad timeouts.
 * @throws HvkitError `INVALID_ARGUMENT` for a malformed thumbprint.
 */
export function createVimFetch(options: VimFetchOptions = {}): HttpFetch {
  const tls = options.tls ?? {};
  const insecure = tls.insecureSkipVerify === true;
  const pinned = tls.thumbprint !== undefined ? normalizeThumbprint(tls.thumbprint) : undefined;
  if (insecure && pinned !== undefined) {
    throw new TypeError('Give either tls.thumbprint or tls.insecureSkipVerify, not both.');
  }
  const mode = tls.thumbprintMode;
  if (mode !== undefined) {
    if (mode !== 'fallback' && mode !== 'exclusive')
      throw new TypeError(
        `tls.thumbprintMode must be 'fallback' or 'exclusive', got ${String(mode).slice(0, 50)}.`,
      );
    if (pinned === undefined) throw new TypeError('tls.thumbprintMode needs tls.thumbprint.');
  }
  const settings = { pinned, exclusive: mode === 'exclusive', insecure };
  const own = createHttpFetch({
    // Verification is decided after the handshake (so a refusal can name the offered thumbprint); the
    // handshake itself accepts, and nothing is sent before the decision.
    tls: { ca: tls.ca as TlsSettings['ca'], servername: tls.servername },
    verifyPeer: (socket, target) => checkPeer(socket, settings, target),
    // Without resumption every handshake carries the certificate the pin is checked against.
    disableTlsSessionResumption: pinned !== undefined,
    keepAliveTimeoutMs: options.keepAliveTimeoutMs,
    connectTimeoutMs: options.connectTimeoutMs,
    headersTimeoutMs: options.headersTimeoutMs,
    bodyTimeoutMs: options.bodyTimeoutMs,
    connections: options.connections,
    adapter: ADAPTER_ID,
  });
  const transportSettings =
    options.keepAliveTimeoutMs !== undefined ||
    options.connectTimeoutMs !== undefined ||
    options.headersTimeoutMs !== undefined ||
    options.bodyTimeoutMs !== undefined ||
    options.connections !== undefined;
  if (transportSettings) return own;
  // Plain http has no TLS to decide and these are the platform's defaults (keep-alive 4 s, connect
  // timeout 10 s, headers and body 300 s), so it takes the platform's fetch, looked up per request.
  const vimFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    if (!isPlainHttp(input)) return own(input, init);
    try {
      return await globalThis.fetch(input, init);
    } catch (error) {
      throw fetchErrorToHvkitError(error, {
        signal: init?.signal,
        target: new URL(typeof input === 'string' || input instanceof URL ? input : input.url).origin,
        adapter: ADAPTER_ID,
        operation: 'fetch',
      });
    }
  }) as HttpFetch;
  Object.defineProperties(vimFetch, {
    dispatcher: { value: own.dispatcher },
    close: { value: own.close },
    [Symbol.asyncDispose]: { value: own.close },
  });
  return vimFetch;
}

function isPlainHttp(input: string | URL | Request): boolean {
  const href = typeof input === 'string' ? input : input instanceof URL ? input.href : input.url;
  return /^http:/i.test(href);
}
