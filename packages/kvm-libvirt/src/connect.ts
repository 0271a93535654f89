/**
 * `connect(options)`: the kvm-libvirt adapter factory.
 */

import {
  type AdapterConnection,
  type BackupsCapability,
  type CallOptions,
  checkOptionKeys,
  checkSignal,
  checkTimeoutMs,
  type DeepReadonly,
  type Dialer,
  type EventsCapability,
  type HypervisorAdapterV1,
  hvkitError,
  type InventoryCapability,
  type LabelsCapability,
  type Logger,
  type OptionKeysOf,
  type ReconnectOptions,
  redactError,
  resolveReconnect,
  type SupportsManifest,
  TLS_SETTINGS_OPTION_KEYS,
  wrapAdapter,
} from '@hvkit/core';
import { SSH_CONNECT_OPTION_KEYS, SSH_DIALER_OPTION_KEYS, sshAuthSecrets } from '@hvkit/ssh';
import { type BackupNaming, createBackups } from './capabilities/backups';
import { detectCgroupVersion, detectLocalCgroupVersion, sshHostFileReader } from './capabilities/cgroup';
import { createEvents } from './capabilities/events';
import { createInventory } from './capabilities/inventory';
import { createLabels } from './capabilities/labels';
import { createLimits } from './capabilities/limits';
import { withRestore } from './capabilities/restore';
import { type AdapterContext, closedError, reportLeftover, rpcOptions } from './context';
import { ADAPTER_ID } from './errors';
import { parseCapabilitiesXml } from './mapping/host';
import type { CgroupVersion } from './mapping/limits';
import {
  checkClientSettings,
  DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS,
  LibvirtRpcClient,
  type LibvirtRpcClientOptions,
  type RpcTraceEvent,
  withConnectDeadline,
} from './protocol/client';
import { type LibvirtTransportOptions, resolveLibvirtTransport } from './protocol/dialers';
import type { KeepaliveOptions } from './protocol/keepalive';
import { remoteProcedures } from './protocol/remote-protocol';
import { parseLibvirtUri, redactLibvirtUri } from './protocol/uri';
import { supportsForDriver, withoutCgroupDependentLimits } from './supports';

/**
 * Options of {@link connectRpc}: a libvirt URI (or a ready `dialer` and `openUri`) and the client's
 * settings.
 */
export interface LibvirtRpcConnectOptions
  extends Omit<LibvirtRpcClientOptions, 'dialer' | 'openUri' | 'target' | 'dispose' | 'ssh' | 'reopen'> {
  /**
   * A libvirt URI as virsh takes it: `qemu:///system`, `qemu:///session`, `test+unix:///default`,
   * `test+unix:///path/to/node.xml`, `qemu+tcp://host/system`, `qemu+tls://host/system?pkipath=...`,
   * `qemu+ssh://user@host/system?keyfile=...`. Give either `uri` or `dialer`.
   */
  uri?: string;
  /** A ready byte-stream dialer (then `openUri` says which driver to open). */
  dialer?: Dialer;
  /** The URI sent in CONNECT_OPEN; required with `dialer`, derived from `uri` otherwise. */
  openUri?: string;
  /** SSH and TLS settings for `uri`. */
  transport?: LibvirtTransportOptions;
}

/**
 * Opens a raw libvirt RPC connection: reads the libvirt URI, picks its dialer (unix socket, TCP, TLS,
 * SSH) and hands it to {@link LibvirtRpcClient.connect}, which authenticates and opens the driver. The
 * adapter's {@link connect} opens its connection the same way.
 *
 * @example
 * await using client = await connectRpc({ uri: 'qemu:///system' });
 * const name = await client.call(remoteProcedures.CONNECT_GET_HOSTNAME);
 *
 * @throws HvkitError INVALID_ARGUMENT (bad URI, unreadable key or certificate files), CONNECTION_LOST,
 *   AUTH_FAILED, PERMISSION_DENIED, UNSUPPORTED, TIMEOUT, ABORTED, NOT_FOUND / REMOTE (see
 *   {@link LibvirtRpcClient.connect}).
 * @throws TypeError for malformed options.
 */
export async function connectRpc(options: LibvirtRpcConnectOptions): Promise<LibvirtRpcClient> {
  if (typeof options !== 'object' || options === null) throw new TypeError('connect: options are required.');
  const { uri, dialer, openUri, transport, ...settings } = options;
  if ((uri === undefined) === (dialer === undefined)) {
    throw new TypeError('connect: give exactly one of `uri` and `dialer`.');
  }
  if (dialer !== undefined) {
    if (typeof openUri !== 'string') {
      throw new TypeError('connect: `openUri` is required with `dialer` (e.g. "qemu:///system").');
    }
    return LibvirtRpcClient.connect({ ...settings, dialer, openUri });
  }
  checkSignal(settings.signal);
  // Everything that can be checked without the network is checked before the transport opens anything.
  const { timeoutMs, readOnly } = checkClientSettings(settings);
  const started = Date.now();
  let dispose: () => Promise<void> = async () => {};
  return withConnectDeadline(
    { signal: settings.signal, timeoutMs },
    () => dispose(),
    async (signal) => {
      const parsed = parseLibvirtUri(uri as string);
      const resolved = await resolveLibvirtTransport(
        parsed,
        { ...transport, readOnly },
        { signal, timeoutMs },
      );
      dispose = resolved.dispose;
      // An SSH connection opened here can be opened again by a reconnect; a given one cannot.
      const reopen =
        resolved.ssh !== undefined && transport?.ssh?.client === undefined
          ? async (call: { signal: AbortSignal; timeoutMs: number }) => {
              const again = await resolveLibvirtTransport(parsed, { ...transport, readOnly }, call);
              return {
                dialer: again.dialer,
                dispose: again.dispose,
                ...(again.ssh !== undefined ? { ssh: again.ssh } : {}),
              };
            }
          : undefined;
      return LibvirtRpcClient.connect({
        ...settings,
        dialer: resolved.dialer,
        openUri: openUri ?? resolved.openUri,
        target: redactLibvirtUri(uri as string),
        dispose: resolved.dispose,
        ...(resolved.ssh !== undefined ? { ssh: resolved.ssh } : {}),
        ...(reopen !== undefined ? { reopen } : {}),
        signal,
        timeoutMs: Math.max(1, timeoutMs - (Date.now() - started)),
      });
    },
  );
}

/** Options of {@link connect}. */
export interface KvmLibvirtOptions {
  /**
   * libvirt URI as virsh takes it: `qemu:///system`, `test+unix:///default`, `test+unix:///path/node.xml`,
   * `qemu+ssh://root@host/system?keyfile=...`, `qemu+tls://host/system`. Give `uri` or `dialer`.
   */
  uri?: string;
  /** A ready byte-stream dialer (record/replay, custom tunnels); `openUri` then names the driver. */
  dialer?: Dialer;
  /** URI sent in CONNECT_OPEN with `dialer` (e.g. `qemu:///system`). */
  openUri?: string;
  /** SSH (`qemu+ssh`) and TLS (`qemu+tls`) settings. */
  transport?: LibvirtTransportOptions;
  /** Open read-only. */
  readOnly?: boolean;
  /**
   * Deadline of the whole `connect()` (dial, authentication, CONNECT_OPEN, reading the driver type and
   * the host's cgroup version), ms, and of each reconnection attempt. Default 10000.
   */
  timeoutMs?: number;
  /**
   * Reconnect on its own after a lost connection (a restarted or hung daemon, a dropped SSH connection),
   * with bounded backoff (default: first attempt after 200 ms, doubling up to 5 s between attempts, never
   * giving up). `adapter.connection.state` is then `reconnecting`; new calls wait within their own
   * deadline (then `CONNECTION_LOST`, retryable); calls that were in flight fail with `CONNECTION_LOST`
   * (retryable); event subscriptions resume and first yield a `resync` event. Authentication and
   * permission failures while reconnecting, or `maxAttempts` failed attempts, close the adapter
   * (`closed`, errors not retryable). `false`: a lost connection closes the adapter at once, and event
   * subscriptions throw `CONNECTION_LOST`. Default `true`.
   */
  reconnect?: ReconnectOptions | boolean;
  /** Default timeout of each RPC call, ms. Default 30000. */
  callTimeoutMs?: number;
  /** Keepalive settings, or `false`. */
  keepalive?: KeepaliveOptions | false;
  /** Calls outstanding at the daemon at once (default 4; the daemon's `max_client_requests` is 5). */
  maxInFlight?: number;
  /** Debug logging. */
  logger?: Logger;
  /** Sees every packet (transcripts, debugging). */
  trace?: (event: RpcTraceEvent) => void;
  /** Aborts connecting. */
  signal?: AbortSignal;
  /**
   * cgroup version that holds the `cpu` controller on the daemon host, for the CPU weight and swap
   * conversions (libvirt writes `cpu_shares` as `cpu.shares` on v1 and raw into `cpu.weight` on v2;
   * `swap_hard_limit` is memory + swap on v1, swap only on v2). Default: detected from the host's
   * `/proc/self/mountinfo` and `cgroup.controllers`, read locally for local URIs and through the SSH
   * connection for `qemu+ssh`. Where it cannot be detected (`qemu+tcp`, `qemu+tls`, a `dialer`) it stays
   * unknown: `limits.get` leaves out `cpu.weight` and `memory.swapMaxBytes` (with a warning to `logger`)
   * and `limits.set` rejects them with `UNSUPPORTED`. Give it for such hosts.
   */
  cgroupVersion?: CgroupVersion;
  /** Storage pool (a directory pool on the daemon host) for temporary push-backup files. Default `default`. */
  backupPool?: string;
  /**
   * Backups fail with `TIMEOUT` when a volume download sends no data, or a push-backup job reports no
   * progress, for this long (default 60 000 ms; `Infinity` turns the idle deadline off; a call's own
   * `signal`/`timeoutMs` still apply).
   */
  backupIdleTimeoutMs?: number;
  /** Default timeout of adapter calls without `timeoutMs` (see wrapAdapter). */
  defaultTimeoutMs?: number;
  /**
   * After an abort or timeout, how long a call waits at most for the adapter to finish undoing its work
   * (cancel the backup job, delete the checkpoint) before it rejects. Default 5000 ms; 0 rejects at once.
   */
  abortSettleMs?: number;
  /**
   * How long `close()` waits at most for the backups it aborts to remove what they created (the libvirt
   * job, the checkpoint, the temporary volumes, the files written to the sink). What is still there then
   * is reported through `logger` (a warning naming each), and the connections are closed anyway (at most
   * ~3 s more). Default 60000 ms; 0 does not wait.
   */
  closeTimeoutMs?: number;
  /**
   * Deterministic names, clock and lease owner for backups and snapshots, and the lease timing (recordings,
   * tests; internal).
   */
  naming?: BackupNaming;
}

/** Every key {@link connect} reads, nested levels included; any other key is a TypeError. */
const CONNECT_OPTION_KEYS = {
  uri: true,
  dialer: true,
  openUri: true,
  transport: {
    ssh: { client: true, connect: SSH_CONNECT_OPTION_KEYS, dialer: SSH_DIALER_OPTION_KEYS },
    tls: { ...TLS_SETTINGS_OPTION_KEYS, pkiPath: true },
    connectTimeoutMs: true,
    readOnly: true,
    insecureAllowUriNoVerify: true,
  } satisfies OptionKeysOf<LibvirtTransportOptions>,
  readOnly: true,
  timeoutMs: true,
  reconnect: true,
  callTimeoutMs: true,
  keepalive: { intervalMs: true, countMax: true } satisfies OptionKeysOf<KeepaliveOptions>,
  maxInFlight: true,
  logger: true,
  trace: true,
  signal: true,
  cgroupVersion: true,
  backupPool: true,
  backupIdleTimeoutMs: true,
  defaultTimeoutMs: true,
  abortSettleMs: true,
  closeTimeoutMs: true,
  naming: { uniqueId: true, now: true, leaseOwner: true, leaseRenewMs: true, leaseTtlMs: true },
} as const satisfies OptionKeysOf<KvmLibvirtOptions>;

/**
 * The kvm-libvirt adapter: spec v1 plus the underlying RPC client (an escape hatch for raw calls).
 * `inventory`, `labels`, `backups` and `events` are always present; `limits` only for drivers that have
 * them (QEMU, test): check with `hasCapability(hv, 'limits')` or `requireCapability(hv, 'limits')` from
 * `@hvkit/core`.
 */
export interface KvmLibvirtAdapter extends HypervisorAdapterV1<typeof ADAPTER_ID> {
  readonly inventory: InventoryCapability;
  readonly labels: LabelsCapability;
  readonly backups: BackupsCapability;
  readonly events: EventsCapability;
  /** The connection state: `open`, `reconnecting` (see {@link KvmLibvirtOptions.reconnect}), `closed`. */
  readonly connection: AdapterConnection;
  /** The libvirt connection; calls on it bypass the adapter. It reconnects with the adapter. */
  readonly rpc: LibvirtRpcClient;
  /** The libvirt driver type (`QEMU`, `TEST`, ...) found at connect. */
  readonly driver: string;
  /**
   * The cgroup version used for the CPU weight and swap conversions (the option, or detected), or
   * `undefined` when it is unknown (those fields are then left out of `limits.get` and refused by
   * `limits.set`).
   */
  readonly cgroupVersion: CgroupVersion | undefined;
}

/** The cgroup version decided at connect, where it came from, and why it is unknown. */
interface CgroupDecision {
  version: CgroupVersion | undefined;
  source: AdapterContext['cgroupVersionSource'];
  unknownReason?: string;
}

/**
 * The option; the test driver's v1 semantics; else detected on the daemon host: locally for local URIs,
 * through the SSH connection for `qemu+ssh`. Unknown for other transports, and not looked for when the
 * driver has no limits.
 */
async function decideCgroupVersion(
  options: KvmLibvirtOptions,
  client: LibvirtRpcClient,
  driver: string,
  hasLimits: boolean,
  timeoutMs: number,
): Promise<CgroupDecision> {
  if (options.cgroupVersion !== undefined) return { version: options.cgroupVersion, source: 'option' };
  // The test driver checks memory limits like cgroup v1 (swap_hard_limit ≥ hard_limit: memory + swap).
  if (driver === 'TEST') return { version: 1, source: 'test-driver' };
  if (!hasLimits) return { version: undefined, source: 'unknown', unknownReason: 'the driver has no limits' };
  let version: CgroupVersion | undefined;
  let where: string;
  if (options.dialer === undefined && isLocalUri(options.uri)) {
    version = await detectLocalCgroupVersion();
    where = "this machine's /proc/self/mountinfo and cgroup.controllers";
  } else if (client.sshClient !== undefined) {
    const reader = sshHostFileReader(client.sshClient, {
      ...(options.signal !== undefined ? { signal: options.signal } : {}),
      timeoutMs,
    });
    version = await detectCgroupVersion(reader);
    where = `/proc/self/mountinfo and cgroup.controllers of ${client.sshClient.target}`;
  } else {
    return {
      version: undefined,
      source: 'unknown',
      unknownReason:
        options.dialer !== undefined
          ? 'a custom dialer cannot read files on the daemon host'
          : 'the daemon host cannot be read over this transport (only qemu+ssh and local URIs can)',
    };
  }
  return version !== undefined
    ? { version, source: 'detected' }
    : {
        version: undefined,
        source: 'unknown',
        unknownReason: `no cgroup hierarchy holding the cpu controller found in ${where}`,
      };
}

/** Default {@link KvmLibvirtOptions.backupIdleTimeoutMs}: 60 seconds. */
export const DEFAULT_BACKUP_IDLE_TIMEOUT_MS = 60_000;

/** Default {@link KvmLibvirtOptions.closeTimeoutMs}: 60 seconds. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 60_000;

/**
 * The capability object with each method rejecting (`CONNECTION_LOST`, not retryable) once `close()` has
 * started, without running: nothing succeeds on a closing or closed adapter.
 */
function rejectWhenClosed<C extends object>(capability: C, name: string, isClosed: () => boolean): C {
  const guarded = Object.create(capability) as Record<string, unknown>;
  for (const [key, value] of Object.entries(capability)) {
    if (typeof value !== 'function') continue;
    const method = value as (...args: unknown[]) => unknown;
    guarded[key] = (...args: unknown[]) =>
      isClosed() ? Promise.reject(closedError(`${name}.${key}`)) : method.apply(capability, args);
  }
  return guarded as C;
}

function isLocalUri(uri: string | undefined): boolean {
  if (uri === undefined) return false;
  try {
    const parsed = parseLibvirtUri(uri);
    return parsed.host === undefined || parsed.host === '' || parsed.host === 'localhost';
  } catch {
    return false;
  }
}

/**
 * Connects to libvirtd and returns the kvm-libvirt adapter (spec v1, wrapped by `wrapAdapter`).
 *
 * At connect it reads the driver type (CONNECT_GET_TYPE): `supports` is the QEMU manifest, for the test
 * driver {@link KVM_LIBVIRT_TEST_DRIVER_SUPPORTS}, for any other driver (LXC, Xen, ...)
 * {@link KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS} (and then no `limits` object).
 *
 * @example
 * const hv = await connect({ uri: 'test+unix:///path/to/node.xml' });
 * const guests = await hv.inventory.listGuests();
 * await hv.close();
 *
 * @throws HvkitError from the RPC client (AUTH_FAILED, CONNECTION_LOST, TIMEOUT, ...); TypeError for bad options
 *   and for unknown option keys, at every level (`transport.tls`, `transport.ssh.connect`, `keepalive`, ...).
 */
export async function connect(options: KvmLibvirtOptions): Promise<KvmLibvirtAdapter> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('connect: options must be an object.');
  checkOptionKeys(options, CONNECT_OPTION_KEYS, 'kvm-libvirt connect');
  const secrets = sshAuthSecrets(options.transport?.ssh?.connect?.auth);
  if (options.cgroupVersion !== undefined && options.cgroupVersion !== 1 && options.cgroupVersion !== 2) {
    throw new TypeError('connect: cgroupVersion must be 1 or 2.');
  }
  const backupIdleTimeoutMs = checkTimeoutMs(
    options.backupIdleTimeoutMs ?? DEFAULT_BACKUP_IDLE_TIMEOUT_MS,
    'backupIdleTimeoutMs',
  );
  const closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
  if (typeof closeTimeoutMs !== 'number' || !Number.isFinite(closeTimeoutMs) || closeTimeoutMs < 0) {
    throw new TypeError('connect: closeTimeoutMs must be a finite number of milliseconds >= 0.');
  }
  if (
    options.backupPool !== undefined &&
    (typeof options.backupPool !== 'string' || options.backupPool === '')
  ) {
    throw new TypeError('connect: backupPool must be a non-empty string.');
  }
  const reconnect = resolveReconnect(options.reconnect ?? true);
  // One deadline for the whole connect(): what connectRpc leaves is what the driver and cgroup reads get.
  const connectTimeoutMs = checkTimeoutMs(options.timeoutMs ?? DEFAULT_LIBVIRT_CONNECT_TIMEOUT_MS);
  const started = Date.now();
  const left = () => Math.max(1, connectTimeoutMs - (Date.now() - started));
  const client = await connectRpc({
    ...(options.uri !== undefined ? { uri: options.uri } : {}),
    ...(options.dialer !== undefined ? { dialer: options.dialer } : {}),
    ...(options.openUri !== undefined ? { openUri: options.openUri } : {}),
    ...(options.transport !== undefined ? { transport: options.transport } : {}),
    ...(options.readOnly !== undefined ? { readOnly: options.readOnly } : {}),
    timeoutMs: connectTimeoutMs,
    reconnect,
    ...(options.callTimeoutMs !== undefined ? { callTimeoutMs: options.callTimeoutMs } : {}),
    ...(options.keepalive !== undefined ? { keepalive: options.keepalive } : {}),
    ...(options.maxInFlight !== undefined ? { maxInFlight: options.maxInFlight } : {}),
    ...(options.logger !== undefined ? { logger: options.logger } : {}),
    ...(options.trace !== undefined ? { trace: options.trace } : {}),
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
  }).catch((error: unknown) => {
    throw redactError(error, secrets);
  });
  try {
    const driver = (
      await client.call(remoteProcedures.CONNECT_GET_TYPE, undefined, {
        ...rpcOptions({ signal: options.signal }),
        timeoutMs: left(),
      })
    ).toUpperCase();
    const driverSupports = supportsForDriver(driver);
    const cgroup = await decideCgroupVersion(
      options,
      client,
      driver,
      driverSupports.limits !== false,
      Math.min(left(), 10_000),
    );
    let caps: ReturnType<AdapterContext['capabilities']> | undefined;
    const closing = new AbortController();
    const ctx: AdapterContext = {
      client,
      driver,
      cgroupVersion: cgroup.version,
      cgroupVersionSource: cgroup.source,
      ...(cgroup.unknownReason !== undefined ? { cgroupUnknownReason: cgroup.unknownReason } : {}),
      backupPool: options.backupPool ?? 'default',
      backupIdleTimeoutMs,
      localDaemon: options.dialer === undefined && isLocalUri(options.uri),
      logger: options.logger,
      siblings: new Set(),
      pending: new Set(),
      closeSignal: closing.signal,
      leftovers: new Set(),
      capabilities(callOptions?: CallOptions) {
        if (!caps) {
          caps = client
            .call(remoteProcedures.CONNECT_GET_CAPABILITIES, undefined, rpcOptions(callOptions))
            .then((xml) => ({ xml, parsed: parseCapabilitiesXml(xml) }));
          caps.catch(() => {
            caps = undefined;
          });
        }
        return caps;
      },
    };
    // Without the cgroup version, the CPU weight and swap limits cannot be converted: not supported.
    const supports: DeepReadonly<SupportsManifest> =
      cgroup.version === undefined ? withoutCgroupDependentLimits(driverSupports) : driverSupports;
    let closed: Promise<void> | undefined;
    const close = () => {
      closed ??= (async () => {
        // Running backups abort and remove what they created; new calls reject from here on.
        closing.abort(
          hvkitError('ABORTED', 'The adapter was closed.', { adapter: ADAPTER_ID, operation: 'close' }),
        );
        client.reportClosed();
        const pending = [...ctx.pending];
        if (pending.length > 0) {
          let timer: ReturnType<typeof setTimeout> | undefined;
          const done = await Promise.race([
            Promise.all(pending.map((p) => p.settled)).then(() => true),
            new Promise<false>((resolve) => {
              timer = setTimeout(() => resolve(false), closeTimeoutMs);
            }),
          ]);
          clearTimeout(timer);
          if (!done) {
            const why = `close() stopped waiting for the cleanup after ${closeTimeoutMs} ms (closeTimeoutMs)`;
            for (const leftover of ctx.leftovers) reportLeftover(ctx, leftover, why);
            ctx.leftovers.clear();
            for (const p of pending) p.abandon();
          }
        }
        // Each close is bounded (CONNECT_CLOSE 2 s, then the socket 1 s); all at once.
        const connections = [...ctx.siblings, client];
        ctx.siblings.clear();
        await Promise.all(connections.map((c) => c.close().catch(() => {})));
      })();
      return closed;
    };
    const isClosed = () => closing.signal.aborted;
    const adapter: KvmLibvirtAdapter = {
      specificationVersion: 'v1',
      adapter: ADAPTER_ID,
      supports,
      connection: client.connection,
      rpc: client,
      driver,
      cgroupVersion: cgroup.version,
      inventory: rejectWhenClosed(createInventory(ctx), 'inventory', isClosed),
      ...(supports.limits !== false
        ? { limits: rejectWhenClosed(createLimits(ctx, supports.limits), 'limits', isClosed) }
        : {}),
      labels: rejectWhenClosed(createLabels(ctx), 'labels', isClosed),
      backups: rejectWhenClosed(
        withRestore(createBackups(ctx, options.naming ?? {}), ctx, supports, options.naming ?? {}),
        'backups',
        isClosed,
      ),
      events: createEvents(ctx),
      close,
      [Symbol.asyncDispose]: close,
    };
    return wrapAdapter(adapter, {
      secrets,
      ...(options.logger !== undefined ? { logger: options.logger } : {}),
      ...(options.defaultTimeoutMs !== undefined ? { defaultTimeoutMs: options.defaultTimeoutMs } : {}),
      ...(options.abortSettleMs !== undefined ? { abortSettleMs: options.abortSettleMs } : {}),
    });
  } catch (error) {
    await client.close().catch(() => {});
    throw error;
  }
}
