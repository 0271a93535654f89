/**
 * `connect(options)`: checks the options, chooses the HTTP client (core's undici client with verified TLS
 * unless a `fetch` is given), logs in (following `HOST_IS_SLAVE` once to a known pool member), reads the
 * pool master's record (so a wrong URL or credentials fail here, typed), builds the capabilities and wraps
 * the adapter.
 */

import {
  checkOptionKeys,
  checkTimeoutMs,
  createHttpFetch,
  type FetchLike,
  type HypervisorAdapterV1,
  hvkitError,
  type InventoryCapability,
  type LabelsCapability,
  type LimitsCapability,
  type Logger,
  noopLogger,
  type OptionKeysOf,
  redactError,
  TLS_SETTINGS_OPTION_KEYS,
  type TlsSettings,
  wrapAdapter,
} from '@hvkit/core';
import { createBackups, type XenXapiBackupsCapability } from './capabilities/backups';
import { createInventory } from './capabilities/inventory';
import { createLabels } from './capabilities/labels';
import { createLimits } from './capabilities/limits';
import type { AdapterContext, XenXapiBackupNaming } from './context';
import { ADAPTER_ID } from './errors';
import { DEFAULT_MAX_RESPONSE_BYTES, XapiClient, type XapiTransport } from './protocol/client';
import { normaliseRecord, normaliseRecords } from './protocol/values';
import { XEN_XAPI_SUPPORTS } from './supports';

/** Options of {@link connect}. */
export interface XenXapiOptions {
  /** The pool master's URL: `https://xcp-ng.example` (a path is ignored). `http://` needs `insecureHttp: true`. */
  url: string | URL;
  username: string;
  /** Never appears in an error or a log line. */
  password: string;
  /**
   * TLS settings of the default client: `ca`, `pinnedSha256` (XCP-ng and XenServer ship self-signed
   * certificates: pin it), `servername`, or the named opt-out `insecureSkipVerify`. Refused with `http://`.
   */
  tls?: TlsSettings;
  /**
   * The named opt-out for a plain `http://` URL (labs, the simulator, recorded replays): the password, the
   * session and all data then travel unencrypted. Without it an `http://` URL is `INVALID_ARGUMENT`.
   */
  insecureHttp?: boolean;
  /** A fetch to use instead of the adapter's own (recording, replay, a proxy); `tls` is then ignored. */
  fetch?: FetchLike;
  /** `auto` (default): JSON-RPC, falling back for good to XML-RPC when the host answers `text/xml`. */
  transport?: 'auto' | XapiTransport;
  /** The login's originator, so the host counts this client's sessions apart (default `hvkit`). */
  originator?: string;
  /**
   * Addresses of pool members a `HOST_IS_SLAVE` answer may redirect the login to (the password is sent
   * there). A master not listed is not contacted: connect fails with `CONFLICT` naming it.
   */
  poolHosts?: readonly string[];
  /** Default timeout of one call, in ms (default 60 000). Every method also takes `{ signal, timeoutMs }`. */
  timeoutMs?: number;
  /** Largest response body, in bytes (default 256 MiB). */
  maxResponseBytes?: number;
  /** Receives one debug line per call. */
  logger?: Logger;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /** Deterministic backup names, clock and lease owner (recordings, tests; internal). */
  naming?: XenXapiBackupNaming;
}

/** Every key {@link connect} reads, nested levels included; any other key is a TypeError. */
const OPTION_KEYS = {
  url: true,
  username: true,
  password: true,
  tls: TLS_SETTINGS_OPTION_KEYS,
  insecureHttp: true,
  fetch: true,
  transport: true,
  originator: true,
  poolHosts: true,
  timeoutMs: true,
  maxResponseBytes: true,
  logger: true,
  signal: true,
  naming: { uniqueId: true, now: true, leaseOwner: true },
} as const satisfies OptionKeysOf<XenXapiOptions>;

/** What the pool master said about itself at connect. */
export interface XenXapiServer {
  /** `XCP-ng` or `XenServer` (`software_version.product_brand`). */
  product: string;
  /** `software_version.product_version`, e.g. `8.2.1`. */
  version: string;
  build?: string;
  /** XAPI's API version, e.g. `2.16`. */
  apiVersion: string;
  /** The wire protocol in use: `json-rpc`, or `xml-rpc` on old hosts. */
  transport: XapiTransport;
}

/** The xen-xapi adapter: spec v1 with inventory, limits, labels and backups, plus what the server said about itself. */
export interface XenXapiAdapter extends HypervisorAdapterV1<typeof ADAPTER_ID> {
  readonly supports: typeof XEN_XAPI_SUPPORTS;
  readonly inventory: InventoryCapability;
  readonly limits: LimitsCapability;
  readonly labels: LabelsCapability;
  readonly backups: XenXapiBackupsCapability;
  readonly server: Readonly<XenXapiServer>;
}

function parseUrl(url: unknown, options: XenXapiOptions): URL {
  if (typeof url !== 'string' && !(url instanceof URL))
    throw new TypeError(`${ADAPTER_ID} connect: url must be a string or URL.`);
  const fail = (message: string) =>
    hvkitError('INVALID_ARGUMENT', `${ADAPTER_ID} connect: ${message}`, {
      adapter: ADAPTER_ID,
      operation: 'connect',
    });
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    throw fail('url is not a valid URL.');
  }
  if (parsed.username !== '' || parsed.password !== '')
    throw fail('put credentials in username and password, not in the url.');
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw fail('url must be https:// (or http:// with insecureHttp).');
  if (parsed.protocol === 'http:' && options.insecureHttp !== true)
    throw fail('an http:// url sends the password unencrypted; use https:// or set insecureHttp: true.');
  if (parsed.protocol === 'http:' && options.tls !== undefined)
    throw fail('tls settings need an https:// url.');
  return parsed;
}

/**
 * Connects to a XenServer or XCP-ng pool master and returns the adapter.
 *
 * Guests: `id` = `uuid` = the VM's UUID (XAPI refs change across restarts), `name` = its name label.
 *
 * @throws TypeError for options of the wrong type or an unknown option key (also inside `tls`).
 * @throws HvkitError `INVALID_ARGUMENT` for a bad url (or `http://` without `insecureHttp`), `AUTH_FAILED`,
 *   `CONFLICT` (a pool member that is not the master, its master not in `poolHosts`), `CONNECTION_LOST`,
 *   `TIMEOUT`, `ABORTED`, `PROTOCOL`; none holds the password.
 *
 * @example
 * await using hv = await connect({ url: 'https://xcp.example', username: 'root', password, tls: { pinnedSha256 } });
 * console.log(hv.server.product, await hv.inventory.listGuests());
 */
export async function connect(options: XenXapiOptions): Promise<XenXapiAdapter> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError(`${ADAPTER_ID} connect: options must be an object.`);
  checkOptionKeys(options, OPTION_KEYS, `${ADAPTER_ID} connect`);
  if (typeof options.username !== 'string' || typeof options.password !== 'string')
    throw new TypeError(`${ADAPTER_ID} connect: username and password must be strings.`);
  if (options.transport !== undefined && !['auto', 'json-rpc', 'xml-rpc'].includes(options.transport))
    throw new TypeError(`${ADAPTER_ID} connect: transport must be 'auto', 'json-rpc' or 'xml-rpc'.`);
  if (options.originator !== undefined && typeof options.originator !== 'string')
    throw new TypeError(`${ADAPTER_ID} connect: originator must be a string.`);
  if (
    options.poolHosts !== undefined &&
    (!Array.isArray(options.poolHosts) || options.poolHosts.some((h) => typeof h !== 'string'))
  )
    throw new TypeError(`${ADAPTER_ID} connect: poolHosts must be an array of strings.`);
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  if (!Number.isSafeInteger(maxResponseBytes) || maxResponseBytes <= 0)
    throw new TypeError(`${ADAPTER_ID} connect: maxResponseBytes must be a positive integer.`);
  const secrets = options.password ? [options.password] : [];
  const url = parseUrl(options.url, options);
  const timeoutMs = checkTimeoutMs(options.timeoutMs ?? 60_000, 'timeoutMs');
  const logger = options.logger ?? noopLogger;
  const ownFetch =
    options.fetch === undefined ? createHttpFetch({ tls: options.tls, adapter: ADAPTER_ID }) : undefined;
  const fetch = options.fetch ?? (ownFetch as FetchLike);
  const client = new XapiClient({
    url,
    fetch,
    timeoutMs,
    transport: options.transport,
    originator: options.originator,
    poolHosts: options.poolHosts,
    maxResponseBytes,
  });
  let server: XenXapiServer;
  try {
    await client.login(options.username, options.password, { signal: options.signal, timeoutMs });
    const pools = normaliseRecords(
      'pool',
      await client.call('pool.get_all_records', [], { signal: options.signal, timeoutMs }),
    );
    const masterRef = [...pools.values()][0]?.master as string | undefined;
    if (!masterRef)
      throw hvkitError('PROTOCOL', 'The pool has no master.', { adapter: ADAPTER_ID, operation: 'connect' });
    const master = normaliseRecord(
      'host',
      await client.call('host.get_record', [masterRef], { signal: options.signal, timeoutMs }),
    );
    const sw = (master.software_version ?? {}) as Record<string, string>;
    server = {
      product: sw.product_brand ?? 'XAPI',
      version: sw.product_version ?? sw.platform_version ?? '',
      ...(sw.build_number ? { build: sw.build_number } : {}),
      apiVersion: `${master.API_version_major}.${master.API_version_minor}`,
      transport: client.transport,
    };
  } catch (error) {
    await client.logout();
    await ownFetch?.close().catch(() => {});
    throw redactError(error, secrets);
  }
  const context: AdapterContext = {
    client,
    logger,
    callTimeoutMs: timeoutMs,
    ...(options.naming ? { naming: options.naming } : {}),
  };
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    await client.logout();
    await ownFetch?.close().catch(() => {});
  };
  const adapter: XenXapiAdapter = {
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    supports: XEN_XAPI_SUPPORTS,
    server: Object.freeze(server),
    inventory: createInventory(context),
    limits: createLimits(context),
    labels: createLabels(context),
    backups: createBackups(context),
    close,
    [Symbol.asyncDispose]: close,
  };
  return wrapAdapter(adapter, { logger, secrets });
}
