/**
 * `connect(options)`: checks the options, chooses the HTTP client (core's undici client with verified TLS
 * unless a `fetch` is given), logs in (following `HOST_IS_SLAVE` once to a known pool member), reads the
 * pool master's record (so a wrong URL or credentials fail here, typed; all of it within
 * `connectTimeoutMs`), builds the capabilities and wraps the adapter. The client reconnects on its own
 * after a lost host (`reconnect`); `close()` is bounded.
 */

import {
  type AdapterConnection,
  checkOptionKeys,
  checkTimeoutMs,
  closeHttpFetch,
  createHttpFetch,
  deriveSignal,
  type EventsCapability,
  type FetchLike,
  type HypervisorAdapterV1,
  hvkitError,
  type InventoryCapability,
  type LabelsCapability,
  type LimitsCapability,
  type Logger,
  noopLogger,
  type OptionKeysOf,
  type ReconnectOptions,
  redactError,
  resolveReconnect,
  TLS_SETTINGS_OPTION_KEYS,
  type TlsSettings,
  wrapAdapter,
} from '@hvkit/core';
import { createBackups, type XenXapiBackupsCapability } from './capabilities/backups';
import { createEvents } from './capabilities/events';
import { createInventory } from './capabilities/inventory';
import { createLabels } from './capabilities/labels';
import { createLimits } from './capabilities/limits';
import { type AdapterContext, reportLeftover, type XenXapiBackupNaming } from './context';
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
  /**
   * Deadline of the whole `connect()` (login, the pool and master records), in ms (default
   * {@link DEFAULT_CONNECT_TIMEOUT_MS}, 10 s): a hung host fails it with `TIMEOUT` then.
   */
  connectTimeoutMs?: number;
  /**
   * Reconnection after a lost host (a call failing with `CONNECTION_LOST`, or timing out and a 5 s
   * liveness check failing too). On by default (`ReconnectOptions` of `@hvkit/core`: 200 ms doubling up to
   * 5 s, unlimited attempts): `adapter.connection.state` is `reconnecting`, the adapter checks the host
   * with that backoff and logs in again when the host forgot the session (a toolstack restart), calls made
   * meanwhile wait within their own deadline, and event streams resume with a `resync` event. `false`: a
   * lost host closes the adapter (`closed`; errors `CONNECTION_LOST`, not retryable; event streams throw).
   * An authentication failure while reconnecting closes it too.
   */
  reconnect?: ReconnectOptions | boolean;
  /** Largest response body, in bytes (default 256 MiB). */
  maxResponseBytes?: number;
  /** Receives one debug line per call. */
  logger?: Logger;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /**
   * How long `close()` waits at most for the backups and restores it aborts to remove what they created
   * (the backup's snapshot and its VDIs, the lease, the restore's task and imported VM, the files written
   * to the sink), before it logs out. What is still there then is logged through `logger`, one warning
   * naming each, and the session is closed anyway (at most {@link CLOSE_LOGOUT_MS} more). Default
   * {@link DEFAULT_CLOSE_TIMEOUT_MS} (60 s); 0 does not wait.
   */
  closeTimeoutMs?: number;
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
  connectTimeoutMs: true,
  reconnect: true,
  maxResponseBytes: true,
  logger: true,
  signal: true,
  closeTimeoutMs: true,
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

/** Default deadline of the whole `connect()`: 10 s. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;

/** Default {@link XenXapiOptions.closeTimeoutMs}: 60 s. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 60_000;

/** How long `close()` gives `session.logout` before it lets go: 2 s (then the connections are destroyed). */
export const CLOSE_LOGOUT_MS = 2000;

/**
 * The xen-xapi adapter: spec v1 with inventory, limits, labels, backups and
 * events, its connection state, plus what
 * the server said about itself.
 */
export interface XenXapiAdapter extends HypervisorAdapterV1<typeof ADAPTER_ID> {
  readonly supports: typeof XEN_XAPI_SUPPORTS;
  readonly inventory: InventoryCapability;
  readonly limits: LimitsCapability;
  readonly labels: LabelsCapability;
  readonly events: EventsCapability;
  /** The connection state: `open`, `reconnecting` (see {@link XenXapiOptions.reconnect}), `closed`. */
  readonly connection: AdapterConnection;
  readonly backups: XenXapiBackupsCapability;
  readonly server: Readonly<XenXapiServer>;
}

/**
 * Waits for the running backups and restores (aborted by the close signal) to clean up, at most `ms`; then
 * logs each thing still not removed, by name, and answers their callers (`ABORTED`) at once.
 */
async function settleRunning(ctx: AdapterContext, ms: number): Promise<void> {
  const running = [...ctx.running];
  if (running.length === 0) return;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const cleaned = await Promise.race([
    Promise.all(running.map((r) => r.settled)).then(() => true),
    new Promise<boolean>((resolve) => {
      timer = setTimeout(resolve, ms, false);
    }),
  ]);
  clearTimeout(timer);
  if (cleaned) return;
  for (const leftover of ctx.leftovers)
    reportLeftover(ctx, leftover, `close() stopped waiting for the cleanup after ${ms} ms (closeTimeoutMs)`);
  ctx.leftovers.clear();
  for (const r of running) r.abandon();
}

/**
 * The capability, its methods rejecting with `CONNECTION_LOST` (not retryable) without running once
 * `close()` has started: the session stays open for the cleanup of running backups only.
 */
function refuseWhileClosing<C extends object>(capability: C, name: string, ctx: AdapterContext): C {
  return new Proxy(capability, {
    get(target, key, receiver) {
      const value = Reflect.get(target, key, receiver);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      return (...args: unknown[]) =>
        ctx.closeSignal.aborted
          ? Promise.reject(ctx.client.closedError(`${name}.${key}`))
          : Reflect.apply(value, target, args);
    },
  });
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
 *   `TIMEOUT` (also when `connectTimeoutMs` passes), `ABORTED`, `PROTOCOL`; none holds the password.
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
  const connectTimeoutMs = checkTimeoutMs(
    options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS,
    'connectTimeoutMs',
  );
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  if (typeof closeTimeoutMs !== 'number' || !Number.isFinite(closeTimeoutMs) || closeTimeoutMs < 0)
    throw new TypeError(
      `${ADAPTER_ID} connect: closeTimeoutMs must be a finite number of milliseconds >= 0.`,
    );
  const reconnect = resolveReconnect(options.reconnect, `${ADAPTER_ID} connect: reconnect`);
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
    reconnect,
    logger,
  });
  let server: XenXapiServer;
  // One deadline for the whole connect; each call is bounded by the per-call timeout as well.
  const deadline = deriveSignal(
    { signal: options.signal, timeoutMs: connectTimeoutMs },
    { adapter: ADAPTER_ID, operation: 'connect' },
  );
  const signal = deadline.signal;
  try {
    await client.login(options.username, options.password, { signal, timeoutMs });
    const pools = normaliseRecords(
      'pool',
      await client.call('pool.get_all_records', [], { signal, timeoutMs }),
    );
    const masterRef = [...pools.values()][0]?.master as string | undefined;
    if (!masterRef)
      throw hvkitError('PROTOCOL', 'The pool has no master.', { adapter: ADAPTER_ID, operation: 'connect' });
    const master = normaliseRecord(
      'host',
      await client.call('host.get_record', [masterRef], { signal, timeoutMs }),
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
    await client.close({ timeoutMs: CLOSE_LOGOUT_MS });
    if (ownFetch) await closeHttpFetch(ownFetch);
    throw redactError(error, secrets);
  } finally {
    deadline.dispose();
  }
  const closing = new AbortController();
  const context: AdapterContext = {
    client,
    logger,
    callTimeoutMs: timeoutMs,
    closeSignal: closing.signal,
    running: new Set(),
    leftovers: new Set(),
    ...(options.naming ? { naming: options.naming } : {}),
  };
  let closed: Promise<void> | undefined;
  // Bounded against a hung host: running backups and restores get closeTimeoutMs to clean up (with the
  // session still open), then session.logout gets CLOSE_LOGOUT_MS (none while the host is lost), the
  // connection pool 1 s more to finish what runs, then it is destroyed.
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing.abort(
        hvkitError('ABORTED', 'The adapter was closed.', {
          adapter: ADAPTER_ID,
          operation: 'close',
          retryable: false,
        }),
      );
      await settleRunning(context, closeTimeoutMs);
      await client.close({ timeoutMs: CLOSE_LOGOUT_MS });
      if (ownFetch) await closeHttpFetch(ownFetch);
    })();
    return closed;
  };
  const adapter: XenXapiAdapter = {
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    supports: XEN_XAPI_SUPPORTS,
    server: Object.freeze(server),
    inventory: refuseWhileClosing(createInventory(context), 'inventory', context),
    limits: refuseWhileClosing(createLimits(context), 'limits', context),
    labels: refuseWhileClosing(createLabels(context), 'labels', context),
    events: createEvents(context),
    connection: client.connection,
    backups: refuseWhileClosing(createBackups(context), 'backups', context),
    close,
    [Symbol.asyncDispose]: close,
  };
  // The documented per-call timeout (the wrapper's own default is shorter).
  return wrapAdapter(adapter, { logger, secrets, defaultTimeoutMs: timeoutMs });
}
