/**
 * `connect(options)`: the vmware-vsphere adapter factory. Spec v1 over the vim25 SOAP client (inventory,
 * limits, snapshots and disk backups) plus the vAPI REST tagging endpoints (labels).
 */

import {
  type AdapterConnection,
  type BackupsCapability,
  checkOptionKeys,
  checkTimeoutMs,
  closeHttpFetch,
  type EventsCapability,
  type FetchLike,
  type HypervisorAdapterV1,
  hvkitError,
  type InventoryCapability,
  type LabelsCapability,
  type LimitsCapability,
  type Logger,
  type OptionKeySpec,
  type OptionKeysOf,
  type ReconnectOptions,
  redactError,
  resolveReconnect,
  wrapAdapter,
} from '@hvkit/core';
import { createBackups } from './capabilities/backups';
import { createEvents } from './capabilities/events';
import { createInventory } from './capabilities/inventory';
import { createLabels } from './capabilities/labels';
import { createLimits } from './capabilities/limits';
import { isVcenter, type VsphereContext } from './context';
import { ADAPTER_ID } from './errors';
import { DEFAULT_BACKUP_IDLE_TIMEOUT_MS } from './protocol/datastore';
import { checkVimUrlSecurity, DEFAULT_CALL_TIMEOUT_MS } from './protocol/soap/client';
import { connectVim, type VimSession } from './protocol/soap/session';
import { createVimFetch, type VimTlsOptions } from './protocol/soap/tls';
import { VapiTagging } from './protocol/vapi';
import { VMWARE_VSPHERE_SUPPORTS } from './supports';

/** Options of {@link connect}. */
export interface VmwareVsphereOptions {
  /**
   * vCenter or ESXi URL: `https://vc.example` or `https://vc.example/sdk`. A plain `http://` URL needs
   * `insecureHttp: true`.
   */
  url: string | URL;
  username: string;
  password: string;
  /**
   * TLS: CA certificates, a SHA-1 thumbprint (`thumbprintMode` `'fallback'` as govc, or `'exclusive'`), or
   * the named opt-out `insecureSkipVerify`. Refused (`INVALID_ARGUMENT`) with an `http://` URL.
   */
  tls?: VimTlsOptions;
  /**
   * The named opt-out for a plain `http://` URL (labs, simulators, recorded replays): the password, the
   * session cookie and all data then travel unencrypted. Without it an `http://` URL is `INVALID_ARGUMENT`.
   */
  insecureHttp?: boolean;
  /** A fetch to use instead of the adapter's own (recording, replay, a proxy). `tls` is then ignored. */
  fetch?: FetchLike;
  /**
   * Timeout, ms (default 60 000): the deadline of `connect()` itself, and the default timeout of every
   * adapter call (e.g. `inventory.listGuests()`, the whole call whatever SOAP requests it makes) and of each
   * SOAP request; a call's own `timeoutMs` overrides it. Backups (`backups.backup`) have no default
   * timeout (they are bounded by `backupIdleTimeoutMs`).
   */
  timeoutMs?: number;
  /**
   * Reconnect on its own when the server is lost (a call fails with `CONNECTION_LOST`, or times out and a
   * 5 s liveness check fails too): `adapter.connection.state` is `reconnecting`, the adapter checks the
   * server with bounded backoff (first after 200 ms, doubling up to 5 s between attempts, never giving up
   * by default) and logs in again when the server forgot the session; calls meanwhile wait within their
   * own deadline (then `CONNECTION_LOST`, retryable); event subscriptions resume and first yield a
   * `resync` event. `false`: a lost server closes the adapter (`closed`, errors not retryable) and event
   * subscriptions throw `CONNECTION_LOST`. Default `true`.
   */
  reconnect?: ReconnectOptions | boolean;
  /** Tagging: `auto` (vAPI REST when the server has it, else custom attributes), `rest`, `custom-attributes`. */
  labels?: 'auto' | 'rest' | 'custom-attributes';
  /** Session keep-alive interval, ms, or false (default 10 min). */
  keepAliveMs?: number | false;
  /**
   * Backup downloads (disks, the host configuration bundle) fail with `TIMEOUT` when the server sends no
   * response or no data for this long, after resuming a few times (default 60 000 ms; `Infinity` turns the
   * idle deadline off; a call's own `signal`/`timeoutMs` still apply).
   */
  backupIdleTimeoutMs?: number;
  logger?: Logger;
  signal?: AbortSignal;
}

/**
 * The adapter {@link connect} returns: spec v1 with every capability object present (vSphere has them all),
 * so `hv.inventory.listGuests()` needs no check, and `supports` typed as {@link VMWARE_VSPHERE_SUPPORTS}.
 */
export interface VmwareVsphereAdapter extends HypervisorAdapterV1<'vmware-vsphere'> {
  readonly supports: typeof VMWARE_VSPHERE_SUPPORTS;
  /** The connection state: `open`, `reconnecting` (see {@link VmwareVsphereOptions.reconnect}), `closed`. */
  readonly connection: AdapterConnection;
  readonly inventory: InventoryCapability;
  readonly limits: LimitsCapability;
  readonly labels: LabelsCapability;
  readonly backups: BackupsCapability;
  readonly events: EventsCapability;
}

/** How long `close()` waits for the server to end the sessions (SOAP and vAPI) before it lets go: 2 s. */
export const CLOSE_LOGOUT_MS = 2000;

/**
 * Every key {@link connect} reads (`tls` too); any other key is a TypeError.
 */
const CONNECT_OPTION_KEYS = {
  url: true,
  username: true,
  password: true,
  tls: {
    ca: true,
    thumbprint: true,
    insecureSkipVerify: true,
    servername: true,
    thumbprintMode: true,
  } satisfies OptionKeysOf<VimTlsOptions>,
  fetch: true,
  timeoutMs: true,
  reconnect: true,
  labels: true,
  keepAliveMs: true,
  logger: true,
  signal: true,
  insecureHttp: true,
  backupIdleTimeoutMs: true,
} as const satisfies { readonly [K in keyof VmwareVsphereOptions]-?: true | OptionKeySpec };

/**
 * Connects to vCenter or ESXi and returns a spec v1 adapter (wrapped by core's `wrapAdapter`).
 *
 * Guests: `id` = the VM's managed object id (`vm-42`), `uuid` = `config.instanceUuid` lower-cased (falls
 * back to the BIOS `config.uuid`), `name` = the VM name.
 *
 * @example
 * const adapter = await connect({ url: 'https://vc.example', username, password, tls: { ca } });
 * for (const g of await adapter.inventory.listGuests()) console.log(g.name);
 * await adapter.close();
 *
 * @throws HvkitError `AUTH_FAILED`, `CONNECTION_LOST`, `TIMEOUT`, `PROTOCOL`, `INVALID_ARGUMENT` (also for an
 *   `http://` URL without `insecureHttp: true`, and for `tls` settings with an `http://` URL); none holds the
 *   password, even when the server's fault echoes it.
 * @throws TypeError for options of the wrong type (a bad `backupIdleTimeoutMs`, `insecureHttp`, ...), and for
 *   unknown option keys (also inside `tls`).
 */
export async function connect(options: VmwareVsphereOptions): Promise<VmwareVsphereAdapter> {
  if (typeof options !== 'object' || options === null) throw new TypeError('connect needs options.');
  checkOptionKeys(options, CONNECT_OPTION_KEYS, 'vmware-vsphere connect');
  if (typeof options.username !== 'string' || typeof options.password !== 'string')
    throw new TypeError('connect needs a username and a password (strings).');
  let url: URL;
  try {
    url = new URL(String(options.url));
  } catch {
    throw hvkitError('INVALID_ARGUMENT', `Not a URL: ${String(options.url).slice(0, 200)}`, {
      adapter: ADAPTER_ID,
      operation: 'connect',
    });
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = '/sdk';
  checkVimUrlSecurity(url, options, { operation: 'connect' });
  if (options.backupIdleTimeoutMs !== undefined)
    checkTimeoutMs(options.backupIdleTimeoutMs, 'backupIdleTimeoutMs');
  if (options.timeoutMs !== undefined) checkTimeoutMs(options.timeoutMs);
  const reconnect = resolveReconnect(options.reconnect ?? true);
  const ownFetch = options.fetch === undefined ? createVimFetch({ tls: options.tls }) : undefined;
  const fetch: FetchLike = options.fetch ?? (ownFetch as FetchLike);
  let session: VimSession;
  try {
    session = await connectVim(
      {
        url,
        fetch,
        insecureHttp: options.insecureHttp,
        tls: options.tls,
        username: options.username,
        password: options.password,
        timeoutMs: options.timeoutMs,
        keepAliveMs: options.keepAliveMs,
        logger: options.logger,
        reconnect,
      },
      { signal: options.signal, timeoutMs: options.timeoutMs },
    );
  } catch (error) {
    await ownFetch?.close().catch(() => {});
    // A login fault may echo the password (plain or XML-escaped); connect() errors are not wrapped.
    throw redactError(error, [options.password]);
  }
  const closing = new AbortController();
  const ctx: VsphereContext = {
    session,
    fetch,
    url,
    tagging: undefined,
    backupIdleTimeoutMs: options.backupIdleTimeoutMs ?? DEFAULT_BACKUP_IDLE_TIMEOUT_MS,
    closeSignal: closing.signal,
    logger: options.logger,
  };
  const labelsMode = options.labels ?? 'auto';
  if (labelsMode !== 'custom-attributes' && isVcenter(ctx)) {
    ctx.tagging = new VapiTagging({
      origin: url.origin,
      fetch,
      username: options.username,
      password: options.password,
      timeoutMs: options.timeoutMs,
    });
  }
  let closed: Promise<void> | undefined;
  // Bounded against a hung server: the logouts get CLOSE_LOGOUT_MS together, the pool 1 s more to finish
  // (then it is destroyed with what still runs).
  const close = (): Promise<void> => {
    closed ??= (async () => {
      closing.abort();
      session.reportClosed();
      await Promise.all([
        ctx.tagging?.logout({ timeoutMs: CLOSE_LOGOUT_MS }),
        session.close({ timeoutMs: CLOSE_LOGOUT_MS }),
      ]);
      if (ownFetch) await closeHttpFetch(ownFetch, 1000);
    })();
    return closed;
  };
  const adapter: VmwareVsphereAdapter = {
    specificationVersion: 'v1',
    adapter: ADAPTER_ID,
    supports: VMWARE_VSPHERE_SUPPORTS,
    connection: session.connection,
    inventory: createInventory(ctx),
    limits: createLimits(ctx),
    labels: createLabels(ctx),
    backups: createBackups(ctx),
    events: createEvents(ctx),
    close,
    [Symbol.asyncDispose]: close,
  };
  return wrapAdapter(adapter, {
    logger: options.logger,
    secrets: [options.password],
    // The documented per-call timeout (the wrapper's own default is shorter).
    defaultTimeoutMs: options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS,
  });
}
