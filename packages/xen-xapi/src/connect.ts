/**
 * `connect(options)`: checks the options, chooses the HTTP client, asks the server who it is (so a wrong
 * URL fails here, typed), builds the shared context and the capability objects, and wraps the adapter.
 */

import {
  checkOptionKeys,
  checkTimeoutMs,
  createHttpFetch,
  type FetchLike,
  type HypervisorAdapterV1,
  hvkitError,
  type Logger,
  noopLogger,
  type OptionKeysOf,
  redactError,
  TLS_SETTINGS_OPTION_KEYS,
  type TlsSettings,
  wrapAdapter,
} from '@hvkit/core';
import { createBackups } from './capabilities/backups';
import { createEvents } from './capabilities/events';
import { createInventory } from './capabilities/inventory';
import { createLabels } from './capabilities/labels';
import { createLimits } from './capabilities/limits';
import type { AdapterContext } from './context';
import { ADAPTER_ID } from './errors';
import { type BackendHello, XenXapiClient } from './protocol/client';
import { XEN_XAPI_SUPPORTS } from './supports';

/** Options of {@link connect}. */
export interface XenXapiOptions {
  /** Base URL of the API, e.g. `https://xen-xapi.example.net:8443/api/`. */
  url: string;
  /** API token, sent as `Authorization: Bearer <token>`; never appears in an error. */
  token?: string;
  /**
   * The named opt-out for a plain `http://` URL (labs, simulators, replays): the token and the data then
   * travel unencrypted. Without it an `http://` URL is `INVALID_ARGUMENT`.
   */
  insecureHttp?: boolean;
  /** TLS settings of the default client: `ca`, `pinnedSha256`, `servername`, or `insecureSkipVerify`. */
  tls?: TlsSettings;
  /** A fetch to use instead of the adapter's own undici client (recording, replay, proxies); `tls` is then ignored. */
  fetch?: FetchLike;
  /** Default timeout of one request, in ms (default 30 000). Every method also takes `{ signal, timeoutMs }`. */
  timeoutMs?: number;
  /** Receives one debug line per call. */
  logger?: Logger;
  /** Aborts connecting. */
  signal?: AbortSignal;
}

/** Every key {@link connect} reads, nested levels included; any other key is a TypeError. */
const OPTION_KEYS = {
  url: true,
  token: true,
  insecureHttp: true,
  tls: TLS_SETTINGS_OPTION_KEYS,
  fetch: true,
  timeoutMs: true,
  logger: true,
  signal: true,
} as const satisfies OptionKeysOf<XenXapiOptions>;

/** The xen-xapi adapter: spec v1, plus what the server said about itself at connect. */
export interface XenXapiAdapter extends HypervisorAdapterV1<typeof ADAPTER_ID> {
  /** The server's product, version and build, read at connect. */
  readonly server: Readonly<BackendHello>;
}

function parseUrl(url: unknown, insecureHttp: boolean): URL {
  if (typeof url !== 'string') throw new TypeError(`${ADAPTER_ID} connect: url must be a string.`);
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw hvkitError('INVALID_ARGUMENT', `${ADAPTER_ID} connect: url is not a valid URL.`, {
      adapter: ADAPTER_ID,
      operation: 'connect',
    });
  }
  if (parsed.username !== '' || parsed.password !== '') {
    throw hvkitError('INVALID_ARGUMENT', `${ADAPTER_ID} connect: put credentials in token, not in the url.`, {
      adapter: ADAPTER_ID,
      operation: 'connect',
    });
  }
  if (parsed.protocol === 'http:' && !insecureHttp) {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `${ADAPTER_ID} connect: an http:// url sends the token unencrypted; use https:// or set insecureHttp: true.`,
      { adapter: ADAPTER_ID, operation: 'connect' },
    );
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw hvkitError(
      'INVALID_ARGUMENT',
      `${ADAPTER_ID} connect: url must be https:// (or http:// with insecureHttp).`,
      { adapter: ADAPTER_ID, operation: 'connect' },
    );
  }
  return parsed;
}

/**
 * Connects to a Xen (XAPI) server and returns the adapter. It asks the server who it is first, so a wrong
 * URL, a dead server or a refused token fails here.
 *
 * @throws TypeError for options of the wrong type or an unknown option key (also inside `tls`).
 * @throws HvkitError `INVALID_ARGUMENT` for a bad url (or `http://` without `insecureHttp`),
 *   `AUTH_FAILED`, `CONNECTION_LOST`, `TIMEOUT`, `ABORTED`, `PROTOCOL` when the server cannot be used.
 *
 * @example
 * await using hv = await connect({ url: 'https://xen-xapi.example.net/api/', token: process.env.TOKEN });
 * console.log(hv.server.version, hv.supports);
 */
export async function connect(options: XenXapiOptions): Promise<XenXapiAdapter> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${ADAPTER_ID} connect: options must be an object.`);
  checkOptionKeys(options, OPTION_KEYS, `${ADAPTER_ID} connect`);
  if (options.token !== undefined && typeof options.token !== 'string')
    throw new TypeError(`${ADAPTER_ID} connect: token must be a string.`);
  const secrets = options.token ? [options.token] : [];
  const baseUrl = parseUrl(options.url, options.insecureHttp === true);
  const timeoutMs = checkTimeoutMs(options.timeoutMs ?? 30_000, 'timeoutMs');
  const logger = options.logger ?? noopLogger;
  const ownFetch =
    options.fetch === undefined ? createHttpFetch({ tls: options.tls, adapter: ADAPTER_ID }) : undefined;
  const fetch = options.fetch ?? (ownFetch as FetchLike);
  const client = new XenXapiClient({ baseUrl, fetch, token: options.token, timeoutMs });
  let server: BackendHello;
  try {
    server = await client.hello({ signal: options.signal, timeoutMs });
  } catch (error) {
    await ownFetch?.close();
    throw redactError(error, secrets);
  }
  const context: AdapterContext = { client, logger, callTimeoutMs: timeoutMs };
  const capabilities = {
    inventory: createInventory(context),
    limits: createLimits(context),
    labels: createLabels(context),
    backups: createBackups(context),
    events: createEvents(context),
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await ownFetch?.close();
  };
  const adapter: XenXapiAdapter = {
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    supports: XEN_XAPI_SUPPORTS,
    server: Object.freeze({ ...server }),
    ...Object.fromEntries(Object.entries(capabilities).filter(([, value]) => value !== undefined)),
    close,
    [Symbol.asyncDispose]: close,
  };
  return wrapAdapter(adapter, { logger, secrets });
}
