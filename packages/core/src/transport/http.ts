/**
 * The default HTTP client of hvkit: undici's `fetch` over a keep-alive Agent with verified TLS.
 */

import type { TLSSocket } from 'node:tls';
import { Agent, buildConnector, type Dispatcher, fetch as undiciFetch } from 'undici';
import { checkOptionKeys, type OptionKeysOf } from '../adapter/option-keys';
import { HvkitError } from '../errors/hvkit-error';
import { abortError, checkTimeoutMs } from '../signal/abort';
import {
  checkPinnedCertificate,
  DEFAULT_CONNECT_TIMEOUT_MS,
  networkErrorToHvkitError,
  normalizeSha256Fingerprint,
  TLS_SETTINGS_OPTION_KEYS,
  type TlsSettings,
  tlsConnectionOptions,
} from './dialers';
import type { FetchLike } from './types';

/** Options of {@link createHttpFetch}. */
export interface HttpFetchOptions {
  /**
   * TLS: certificates are verified against the system CAs (or `ca`) by default. `pinnedSha256` accepts
   * exactly the certificate with that SHA-256 fingerprint (even self-signed) and refuses any other;
   * `insecureSkipVerify: true` is the named opt-out that accepts anything. A pin turns TLS session
   * resumption off (a resumed session carries no certificate to check), so each new connection makes a
   * full handshake whose certificate is checked against the pin.
   */
  tls?: TlsSettings;
  /** How long an idle keep-alive connection is kept (default 4000 ms). */
  keepAliveTimeoutMs?: number;
  /** Connect timeout, TLS handshake included (default 10 000 ms). */
  connectTimeoutMs?: number;
  /** Time to wait for response headers (default 300 s, undici's). Callers pass a signal for tighter limits. */
  headersTimeoutMs?: number;
  /** Time allowed between two body chunks (default 300 s, undici's). */
  bodyTimeoutMs?: number;
  /** Largest number of connections per origin (default unlimited). */
  connections?: number;
  /**
   * Advanced: decides after each TLS handshake whether to accept the server, for verification rules of
   * an adapter's own (vSphere's SHA-1 thumbprints). When set, the handshake itself does not reject
   * (`tls.pinnedSha256` and `tls.insecureSkipVerify` must not be set) and the request proceeds only if
   * this returns `undefined`; a returned error fails the request before anything is sent.
   */
  verifyPeer?: (socket: TLSSocket, target: string) => Error | undefined;
  /**
   * Turn TLS session resumption off, so every handshake carries the certificate `verifyPeer` checks.
   * Always off when `tls.pinnedSha256` is set.
   */
  disableTlsSessionResumption?: boolean;
  /** Adapter id put on converted errors. */
  adapter?: string;
}

const HTTP_FETCH_OPTION_KEYS = {
  tls: TLS_SETTINGS_OPTION_KEYS,
  keepAliveTimeoutMs: true,
  connectTimeoutMs: true,
  headersTimeoutMs: true,
  bodyTimeoutMs: true,
  connections: true,
  verifyPeer: true,
  disableTlsSessionResumption: true,
  adapter: true,
} as const satisfies OptionKeysOf<HttpFetchOptions>;

/** A {@link FetchLike} that owns a connection pool; close it when done. */
export interface HttpFetch extends FetchLike {
  /** The undici dispatcher behind it. */
  readonly dispatcher: Dispatcher;
  /** Closes idle connections and waits for running requests. */
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Closes an {@link HttpFetch} within a bound: what still runs gets `graceMs` (default 1000) to finish, then
 * the pool is destroyed with it (against a hung server `close()` alone would wait for it). Never rejects.
 */
export async function closeHttpFetch(fetch: HttpFetch, graceMs = 1000): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const finished = await Promise.race([
    fetch.close().then(
      () => true,
      () => true,
    ),
    new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), graceMs);
    }),
  ]);
  clearTimeout(timer);
  if (!finished) await fetch.dispatcher.destroy().catch(() => {});
}

/**
 * Maps what a `fetch` call threw to an HvkitError: the abort reason when `signal` aborted (`ABORTED`, or the
 * `TIMEOUT` of a derived signal); network, DNS and TLS failures (undici's `TypeError: fetch failed` with a
 * `cause`) via {@link networkErrorToHvkitError}. Other `TypeError`s (a bad URL, a bad init) pass through as
 * API misuse. Works with any FetchLike, also the global `fetch`.
 */
export function fetchErrorToHvkitError(
  error: unknown,
  context: { signal?: AbortSignal | null; target?: string; adapter?: string; operation?: string } = {},
): unknown {
  if (HvkitError.isInstance(error)) return error;
  const errorContext = { adapter: context.adapter, operation: context.operation };
  if (context.signal?.aborted) return abortError(context.signal, errorContext);
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  if (name === 'AbortError') return abortError(undefined, errorContext);
  // undici (and Node's global fetch) report network failures as `TypeError: fetch failed` with a cause;
  // every other TypeError is misuse (a bad URL, a bad init). Checked by name: the error may come from
  // another realm.
  if (name === 'TypeError' && (error as Error).message !== 'fetch failed') return error;
  return networkErrorToHvkitError(error, { ...errorContext, target: context.target });
}

function targetOf(input: string | URL | Request): string | undefined {
  try {
    const url = new URL(typeof input === 'string' || input instanceof URL ? input : input.url);
    return url.origin;
  } catch {
    return undefined;
  }
}

/**
 * Creates the default HTTP client: undici `fetch` over a keep-alive `Agent`. TLS is verified by default;
 * see {@link HttpFetchOptions.tls} for the CA, pinning and the named opt-out. Failures reject with
 * HvkitErrors (see {@link fetchErrorToHvkitError}); HTTP error statuses are responses, not errors.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a malformed `pinnedSha256`; TypeError for bad timeouts and for
 *   unknown option keys (also inside `tls`).
 */
export function createHttpFetch(options: HttpFetchOptions = {}): HttpFetch {
  checkOptionKeys(options, HTTP_FETCH_OPTION_KEYS, 'createHttpFetch');
  const tls = options.tls ?? {};
  const pinned = tls.pinnedSha256 !== undefined ? normalizeSha256Fingerprint(tls.pinnedSha256) : undefined;
  const connectTimeoutMs = checkTimeoutMs(
    options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    'connectTimeoutMs',
  );
  const keepAliveTimeoutMs = checkTimeoutMs(options.keepAliveTimeoutMs ?? 4000, 'keepAliveTimeoutMs');
  const verifyPeer = options.verifyPeer;
  if (verifyPeer !== undefined && (pinned !== undefined || tls.insecureSkipVerify === true)) {
    throw new TypeError('verifyPeer cannot be combined with tls.pinnedSha256 or tls.insecureSkipVerify.');
  }
  const tlsOptions = tlsConnectionOptions(tls);
  if (verifyPeer !== undefined) tlsOptions.rejectUnauthorized = false;
  const baseConnector = buildConnector({
    ...tlsOptions,
    // A resumed TLS session carries no peer certificate, so a pin could not be checked on it: with a pin
    // (or when asked) every handshake is a full one.
    ...(pinned !== undefined || options.disableTlsSessionResumption ? { maxCachedSessions: 0 } : {}),
    // SNI follows each request's host; an explicit servername applies to all.
    servername: tls.servername,
    timeout: Number.isFinite(connectTimeoutMs) ? connectTimeoutMs : null,
  } as buildConnector.BuildOptions);
  const connect: buildConnector.connector = (connectOptions, callback) => {
    baseConnector(connectOptions, (error, socket) => {
      if (error || !socket) {
        callback(error ?? new Error('connect failed'), null);
        return;
      }
      if (pinned !== undefined && connectOptions.protocol === 'https:') {
        const problem = checkPinnedCertificate(socket as TLSSocket, pinned, {
          target: `https://${connectOptions.hostname}:${connectOptions.port || 443}`,
        });
        if (problem) {
          socket.destroy();
          callback(problem, null);
          return;
        }
      }
      if (verifyPeer !== undefined && connectOptions.protocol === 'https:') {
        const problem = verifyPeer(
          socket as TLSSocket,
          `https://${connectOptions.hostname}:${connectOptions.port || 443}`,
        );
        if (problem) {
          socket.destroy();
          callback(problem, null);
          return;
        }
      }
      callback(null, socket);
    });
  };
  const agent = new Agent({
    connect,
    keepAliveTimeout: keepAliveTimeoutMs,
    headersTimeout: options.headersTimeoutMs,
    bodyTimeout: options.bodyTimeoutMs,
    connections: options.connections,
  });

  const httpFetch = (async (input: string | URL | Request, init?: RequestInit) => {
    try {
      return (await undiciFetch(input as Parameters<typeof undiciFetch>[0], {
        ...(init as Parameters<typeof undiciFetch>[1]),
        dispatcher: agent,
      })) as unknown as Response;
    } catch (error) {
      throw fetchErrorToHvkitError(error, {
        signal: init?.signal,
        target: targetOf(input),
        adapter: options.adapter,
        operation: 'fetch',
      });
    }
  }) as HttpFetch;
  const close = () => agent.close();
  Object.defineProperties(httpFetch, {
    dispatcher: { value: agent },
    close: { value: close },
    [Symbol.asyncDispose]: { value: close },
  });
  return httpFetch;
}
