/**
 * The vim25 SOAP transport: one POST per call to the SDK endpoint, the session cookie exactly as the
 * server sent it, a deadline on every call, bounded response reading, faults as typed errors. It knows
 * nothing about logins; {@link VimSession} (session.ts) adds those.
 */

import {
  abortError,
  checkSignal,
  deriveSignal,
  type FetchLike,
  fetchErrorToHvkitError,
  HvkitError,
  hvkitError,
  type Logger,
  parseXml,
  readResponseText,
  type XmlValue,
  xmlArray,
  xmlText,
} from '@hvkit/core';
import { ADAPTER_ID, soapFaultToError } from '../../errors';
import { commonStatusError } from '../http-status';
import { DEFAULT_MAX_RESPONSE_BYTES, decodeSoapResponse } from './decode';
import { buildSoapRequest, type SoapArgs } from './envelope';
import type { MoRef } from './schema';
import { createVimFetch, type VimTlsOptions } from './tls';

/** Default deadline of one SOAP call: 60 s. */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;
/** API version sent in `SOAPAction` until the server's versions are known. */
export const DEFAULT_VIM_VERSION = '6.5';
/** Name of the vSphere session cookie. */
export const SESSION_COOKIE = 'vmware_soap_session';

/** Largest `vimServiceVersions.xml` read (a few hundred bytes in practice). */
const SERVICE_VERSIONS_MAX_BYTES = 1024 * 1024;
const MAX_COOKIES = 32;
const MAX_COOKIE_LENGTH = 4096;
const COOKIE_NAME_RE = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** Options of {@link VimSoapClient}. */
export interface VimClientOptions {
  /** The SDK endpoint, `https://vcenter.example/sdk`; a URL without a path gets `/sdk`. */
  url: string | URL;
  /**
   * The HTTP client. Default: {@link createVimFetch} with `tls` (closed by {@link VimSoapClient.close}).
   * Tests pass the global `fetch`.
   */
  fetch?: FetchLike;
  /**
   * TLS settings for the default fetch (ignored when `fetch` is given). Verified by default. Refused
   * (`INVALID_ARGUMENT`) with an `http://` URL, where they could have no effect.
   */
  tls?: VimTlsOptions;
  /**
   * The named opt-out for plain `http://` URLs: the password, the session cookie and every response then
   * travel unencrypted and unauthenticated. Only for labs, simulators and recorded replays. Without it an
   * `http://` URL is `INVALID_ARGUMENT`; with an `https://` URL it changes nothing.
   */
  insecureHttp?: boolean;
  /** API version for `SOAPAction: urn:vim25/<version>` (default {@link DEFAULT_VIM_VERSION}). */
  version?: string;
  /** Default deadline of a call (default {@link DEFAULT_CALL_TIMEOUT_MS}). */
  timeoutMs?: number;
  /**
   * Largest response body accepted (default {@link DEFAULT_MAX_RESPONSE_BYTES}, 64 MiB); larger is
   * `PROTOCOL`, refused from its Content-Length or as soon as the streamed body passes it. Decoding needs
   * up to about 4.5× this in memory.
   */
  maxResponseBytes?: number;
  /** Sent as `User-Agent`. */
  userAgent?: string;
  /** Receives one debug line per call (method, status, bytes, time); never bodies or secrets. */
  logger?: Logger;
}

/** Options of one call. */
export interface CallOptions {
  signal?: AbortSignal;
  /** Deadline of this call in ms (default: the client's). */
  timeoutMs?: number;
  /** Declared type of the return value (default: known per method, else by `xsi:type`). */
  returns?: string;
  /** For RetrievePropertiesEx-like calls: the property paths to materialise (others are skipped). */
  properties?: ReadonlySet<string>;
}

/**
 * Checks the transport security settings of a vSphere URL: `http:` needs the named opt-out `insecureHttp`,
 * and TLS settings with an `http:` URL are refused (they would be silently ignored).
 *
 * @throws HvkitError `INVALID_ARGUMENT`; TypeError when `insecureHttp` is not a boolean.
 */
export function checkVimUrlSecurity(
  url: URL,
  settings: { insecureHttp?: boolean; tls?: VimTlsOptions },
  context: { adapter?: string; operation?: string } = {},
): void {
  const { insecureHttp, tls } = settings;
  if (insecureHttp !== undefined && typeof insecureHttp !== 'boolean') {
    throw new TypeError('insecureHttp must be a boolean.');
  }
  if (url.protocol !== 'http:') return;
  const errorContext = { adapter: ADAPTER_ID, ...context };
  const tlsKeys =
    typeof tls === 'object' && tls !== null
      ? Object.entries(tls)
          .filter(([, value]) => value !== undefined)
          .map(([key]) => `tls.${key}`)
      : [];
  if (tlsKeys.length > 0) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `${tlsKeys.join(', ')} cannot apply to a plain http URL (${url.origin}): nothing would be verified. ` +
        'Use an https URL.',
      errorContext,
    );
  }
  if (insecureHttp !== true) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `The vSphere URL ${url.origin} is plain http: the password and the session cookie would travel ` +
        'unencrypted. Use https, or opt out by name with `insecureHttp: true` (labs and simulators only).',
      errorContext,
    );
  }
}

function normaliseUrl(input: string | URL): URL {
  let url: URL;
  try {
    url = new URL(String(input));
  } catch {
    throw hvkitError('INVALID_ARGUMENT', 'The vSphere URL is not a valid URL.', { adapter: ADAPTER_ID });
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw hvkitError('INVALID_ARGUMENT', `The vSphere URL must be http(s), got ${url.protocol}`, {
      adapter: ADAPTER_ID,
    });
  }
  if (url.username || url.password) {
    // Never keep credentials in a URL that may be logged.
    throw hvkitError('INVALID_ARGUMENT', 'Put the user name and password in the options, not in the URL.', {
      adapter: ADAPTER_ID,
    });
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/sdk';
  url.hash = '';
  return url;
}

/** The `name=value` pair of a Set-Cookie header, or `undefined` when it deletes the cookie or is bad. */
function parseSetCookie(header: string): { name: string; pair: string | undefined } | undefined {
  const semi = header.indexOf(';');
  const pair = (semi === -1 ? header : header.slice(0, semi)).trim();
  const eq = pair.indexOf('=');
  if (eq <= 0 || pair.length > MAX_COOKIE_LENGTH) return undefined;
  const name = pair.slice(0, eq).trim();
  if (!COOKIE_NAME_RE.test(name)) return undefined;
  const attributes = semi === -1 ? '' : header.slice(semi + 1);
  const maxAge = /(?:^|;)\s*max-age\s*=\s*(-?\d+)/i.exec(attributes)?.[1];
  const expires = /(?:^|;)\s*expires\s*=\s*([^;]+)/i.exec(attributes)?.[1];
  const expired =
    (maxAge !== undefined && Number(maxAge) <= 0) ||
    (maxAge === undefined && expires !== undefined && Date.parse(expires) <= Date.now());
  return { name, pair: expired ? undefined : `${name}=${pair.slice(eq + 1).trim()}` };
}

function setCookieHeaders(headers: Headers): string[] {
  const getSetCookie = (headers as Headers & { getSetCookie?: () => string[] }).getSetCookie;
  if (typeof getSetCookie === 'function') return getSetCookie.call(headers);
  const joined = headers.get('set-cookie');
  return joined ? joined.split(/,(?=\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+=)/) : [];
}

/**
 * The low-level vim25 SOAP client. Calls are independent POSTs; cookies the server sets (the session cookie
 * `vmware_soap_session` among them) are kept verbatim and sent back on every later call.
 */
export class VimSoapClient {
  /** The SDK endpoint URL. */
  readonly url: URL;
  /** The version sent in `SOAPAction`. */
  version: string;
  readonly #fetch: FetchLike;
  readonly #ownsFetch: boolean;
  readonly #timeoutMs: number;
  readonly #maxResponseBytes: number;
  readonly #userAgent: string | undefined;
  readonly #logger: Logger | undefined;
  readonly #cookies = new Map<string, string>();

  /**
   * @throws HvkitError `INVALID_ARGUMENT` for a bad URL (or one with credentials in it), an `http://` URL
   *   without `insecureHttp: true`, or TLS settings (also with an `http://` URL).
   * @throws TypeError for options of the wrong type.
   */
  constructor(options: VimClientOptions) {
    if (typeof options !== 'object' || options === null) throw new TypeError('VimSoapClient needs options.');
    this.url = normaliseUrl(options.url);
    checkVimUrlSecurity(this.url, options);
    if (options.fetch !== undefined && typeof options.fetch !== 'function') {
      throw new TypeError('options.fetch must be a function.');
    }
    this.#ownsFetch = options.fetch === undefined;
    this.#fetch = options.fetch ?? createVimFetch({ tls: options.tls });
    this.version = options.version ?? DEFAULT_VIM_VERSION;
    if (typeof this.version !== 'string' || !/^\d+(\.\d+)*$/.test(this.version)) {
      throw new TypeError('options.version must look like "7.0".');
    }
    this.#timeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    if (!(Number.isSafeInteger(this.#maxResponseBytes) && this.#maxResponseBytes > 0))
      throw new TypeError('options.maxResponseBytes must be a positive integer.');
    this.#userAgent = options.userAgent;
    this.#logger = options.logger;
  }

  /** The value of the `vmware_soap_session` cookie exactly as the server sent it (quotes kept). */
  get sessionCookie(): string | undefined {
    const pair = this.#cookies.get(SESSION_COOKIE);
    return pair === undefined ? undefined : pair.slice(SESSION_COOKIE.length + 1);
  }

  /** The `Cookie` header sent with each call, or `undefined` when no cookie is held. */
  cookieHeader(): string | undefined {
    return this.#cookies.size === 0 ? undefined : [...this.#cookies.values()].join('; ');
  }

  /** Forgets all cookies (the server-side session is not ended; see `VimSession.logout`). */
  clearCookies(): void {
    this.#cookies.clear();
  }

  #storeCookies(headers: Headers): void {
    for (const header of setCookieHeaders(headers)) {
      const parsed = parseSetCookie(header);
      if (!parsed) continue;
      if (parsed.pair === undefined) this.#cookies.delete(parsed.name);
      else if (this.#cookies.has(parsed.name) || this.#cookies.size < MAX_COOKIES)
        this.#cookies.set(parsed.name, parsed.pair);
    }
  }

  /**
   * Calls `method` on `thisRef` and returns its decoded return value (`undefined` for void methods).
   *
   * @throws HvkitError from the SOAP fault (code by fault type, `backendCode` = fault type,
   *   `details.faultSource` = `soap`); `PROTOCOL` for a response that is not valid SOAP or too large;
   *   `TIMEOUT`/`ABORTED`; `CONNECTION_LOST` for network failures and 502/503/504; `AUTH_FAILED` for
   *   untrusted certificates.
   * @throws TypeError / HvkitError `INVALID_ARGUMENT` from request building (nothing is sent then).
   */
  async invoke(method: string, thisRef: MoRef, args?: SoapArgs, options: CallOptions = {}): Promise<unknown> {
    const body = buildSoapRequest(method, thisRef, args);
    const operation = `soap.${method}`;
    const context = { adapter: ADAPTER_ID, operation };
    checkSignal(options.signal);
    const derived = deriveSignal(
      { signal: options.signal, timeoutMs: options.timeoutMs },
      { ...context, defaultTimeoutMs: this.#timeoutMs },
    );
    const started = Date.now();
    try {
      const { signal } = derived;
      if (signal.aborted) throw abortError(signal, context);
      const headers: Record<string, string> = {
        'content-type': 'text/xml; charset="utf-8"',
        soapaction: `urn:vim25/${this.version}`,
        accept: 'text/xml',
      };
      const cookie = this.cookieHeader();
      if (cookie !== undefined) headers.cookie = cookie;
      if (this.#userAgent !== undefined) headers['user-agent'] = this.#userAgent;
      let response: Response;
      try {
        response = await this.#fetch(this.url, { method: 'POST', headers, body, signal, redirect: 'manual' });
      } catch (error) {
        throw fetchErrorToHvkitError(error, { signal, target: this.url.origin, ...context });
      }
      this.#storeCookies(response.headers);
      const text = await this.#readBody(response, signal, context);
      this.#logger?.debug(`soap ${method}`, {
        status: response.status,
        bytes: text.length,
        ms: Date.now() - started,
      });
      return this.#decode(method, response, text, options);
    } finally {
      derived.dispose();
    }
  }

  #decode(method: string, response: Response, text: string, options: CallOptions): unknown {
    const status = response.status;
    const operation = `soap.${method}`;
    const decodeOptions = {
      maxBytes: this.#maxResponseBytes,
      returns: options.returns,
      properties: options.properties,
    };
    if (status === 200 || status === 500) {
      let decoded: ReturnType<typeof decodeSoapResponse>;
      try {
        decoded = decodeSoapResponse(text, method, decodeOptions);
      } catch (error) {
        if (status === 500 && HvkitError.isInstance(error, 'PROTOCOL')) {
          throw hvkitError('PROTOCOL', `${method}: HTTP 500 without a SOAP fault (${error.message})`, {
            adapter: ADAPTER_ID,
            operation,
            cause: error,
            retryable: false,
            details: { status },
          });
        }
        throw error;
      }
      if (decoded.fault !== undefined) throw soapFaultToError(decoded.fault, { method });
      if (status === 500) {
        throw hvkitError('PROTOCOL', `${method}: HTTP 500 with a non-fault SOAP body.`, {
          adapter: ADAPTER_ID,
          operation,
          retryable: false,
          details: { status },
        });
      }
      return decoded.returnval;
    }
    const where = `${method}: HTTP ${status} from ${this.url.origin}${this.url.pathname}`;
    throw (
      commonStatusError(response, where, { adapter: ADAPTER_ID, operation }) ??
      hvkitError('PROTOCOL', `${where}: not a vSphere SDK response.`, {
        adapter: ADAPTER_ID,
        operation,
        backendCode: status,
        details: { status },
        retryable: false,
      })
    );
  }

  /** Reads the body (at most `max` bytes, default `maxResponseBytes`) under the call's deadline, as UTF-8. */
  #readBody(
    response: Response,
    signal: AbortSignal,
    context: { adapter: string; operation: string },
    max = this.#maxResponseBytes,
  ): Promise<string> {
    return readResponseText(response, { maxBytes: max, signal, target: this.url.origin, ...context });
  }

  /**
   * The vim25 API versions the server supports, newest first, from `/sdk/vimServiceVersions.xml` (no login
   * needed).
   *
   * @throws HvkitError `PROTOCOL` when the document is missing or unreadable; network errors as for calls.
   */
  async serviceVersions(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<string[]> {
    const context = { adapter: ADAPTER_ID, operation: 'soap.serviceVersions' };
    const derived = deriveSignal(options, { ...context, defaultTimeoutMs: this.#timeoutMs });
    try {
      const { signal } = derived;
      const url = new URL(this.url);
      url.pathname = `${url.pathname.replace(/\/+$/, '')}/vimServiceVersions.xml`;
      let response: Response;
      try {
        response = await this.#fetch(url, { method: 'GET', signal, redirect: 'manual' });
      } catch (error) {
        throw fetchErrorToHvkitError(error, { signal, target: url.origin, ...context });
      }
      const text = await this.#readBody(response, signal, context, SERVICE_VERSIONS_MAX_BYTES);
      if (response.status !== 200) {
        throw hvkitError('PROTOCOL', `GET ${url.pathname}: HTTP ${response.status}.`, {
          ...context,
          backendCode: response.status,
        });
      }
      const doc = parseXml(text, { maxBytes: SERVICE_VERSIONS_MAX_BYTES, ...context });
      const namespaces = xmlArray((doc.namespaces as Record<string, XmlValue> | undefined)?.namespace);
      for (const ns of namespaces) {
        if (typeof ns !== 'object' || Array.isArray(ns) || xmlText(ns.name) !== 'urn:vim25') continue;
        const prior = ns.priorVersions as Record<string, XmlValue> | undefined;
        const versions = [xmlText(ns.version), ...xmlArray(prior?.version).map((v) => xmlText(v))];
        return versions.filter((v): v is string => typeof v === 'string' && /^\d+(\.\d+)*$/.test(v));
      }
      throw hvkitError('PROTOCOL', 'vimServiceVersions.xml lists no urn:vim25 namespace.', context);
    } finally {
      derived.dispose();
    }
  }

  /** Closes the connection pool when the client created it (not an injected fetch). */
  async close(): Promise<void> {
    if (!this.#ownsFetch) return;
    const closable = this.#fetch as FetchLike & { close?: () => Promise<void> };
    await closable.close?.();
  }
}
