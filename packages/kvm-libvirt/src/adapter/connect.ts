/**
 * `connect(options)`: the kvm-libvirt adapter factory.
 */

import { readFile } from 'node:fs/promises';
import {
  type BackupsCapability,
  type CallOptions,
  checkOptionKeys,
  type DeepReadonly,
  type Dialer,
  type EventsCapability,
  type HypervisorAdapterV1,
  type InventoryCapability,
  type LabelsCapability,
  type Logger,
  type OptionKeysOf,
  redactError,
  type SupportsManifest,
  TLS_SETTINGS_OPTION_KEYS,
  wrapAdapter,
} from '@hvkit/core';
import { SSH_CONNECT_OPTION_KEYS, SSH_DIALER_OPTION_KEYS, sshAuthSecrets } from '@hvkit/ssh';
import { parseCapabilitiesXml } from '../mapping/host';
import type { CgroupVersion } from '../mapping/limits';
import { LibvirtRpcClient, type RpcTraceEvent } from '../rpc/client';
import type { KeepaliveOptions } from '../rpc/keepalive';
import { remoteProcedures } from '../rpc/remote-protocol';
import type { LibvirtTransportOptions } from '../transport/dialers';
import { parseLibvirtUri } from '../transport/uri';
import { createBackups } from './backups';
import { ADAPTER_ID, type AdapterContext, rpcOptions } from './context';
import { createEvents } from './events';
import { createInventory } from './inventory';
import { createLabels } from './labels';
import { createLimits } from './limits';
import { supportsForDriver } from './supports';

/** Options of {@link connect}. */
export interface KvmLibvirtConnectOptions {
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
  /** Deadline of connecting (dial, auth, open), ms. Default 30000. */
  timeoutMs?: number;
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
   * conversions. Default: detected from `/proc/self/mountinfo` for local URIs (no host), else 2 (current
   * distributions). libvirt writes `<shares>` raw into `cpu.weight` on v2 and as `cpu.shares` on v1.
   */
  cgroupVersion?: CgroupVersion;
  /** Storage pool (a directory pool on the daemon host) for temporary push-backup files. Default `default`. */
  backupPool?: string;
  /** Default timeout of adapter calls without `timeoutMs` (see wrapAdapter). */
  defaultTimeoutMs?: number;
  /**
   * After an abort or timeout, how long a call waits at most for the adapter to finish undoing its work
   * (cancel the backup job, delete the checkpoint) before it rejects. Default 5000 ms; 0 rejects at once.
   */
  abortSettleMs?: number;
  /** Deterministic names and clock for backups and snapshots (recordings, tests). */
  naming?: { uniqueId?: () => string; now?: () => Date };
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
  callTimeoutMs: true,
  keepalive: { intervalMs: true, countMax: true } satisfies OptionKeysOf<KeepaliveOptions>,
  maxInFlight: true,
  logger: true,
  trace: true,
  signal: true,
  cgroupVersion: true,
  backupPool: true,
  defaultTimeoutMs: true,
  abortSettleMs: true,
  naming: { uniqueId: true, now: true },
} as const satisfies OptionKeysOf<KvmLibvirtConnectOptions>;

/**
 * The kvm-libvirt adapter: spec v1 plus the underlying RPC client (an escape hatch for raw calls).
 * `inventory`, `labels`, `backups` and `events` are always present; `limits` only for drivers that have
 * them (QEMU, test): check with `hasCapability(hv, 'limits')` or `requireCapability(hv, 'limits')` from
 * `@hvkit/core`.
 */
export interface KvmLibvirtAdapter extends HypervisorAdapterV1<'kvm-libvirt'> {
  readonly inventory: InventoryCapability;
  readonly labels: LabelsCapability;
  readonly backups: BackupsCapability;
  readonly events: EventsCapability;
  /** The libvirt connection; calls on it bypass the adapter. */
  readonly rpc: LibvirtRpcClient;
  /** The libvirt driver type (`QEMU`, `TEST`, ...) found at connect. */
  readonly driver: string;
  /** The cgroup version used for conversions, and where it came from. */
  readonly cgroupVersion: CgroupVersion;
}

/**
 * Which cgroup version the `cpu` controller of this machine is on: a `cgroup` (v1) mount listing `cpu`
 * among its super options means 1; otherwise a `cgroup2` mount means 2. Undefined when unreadable.
 */
export async function detectLocalCgroupVersion(mountinfo?: string): Promise<CgroupVersion | undefined> {
  let text = mountinfo;
  if (text === undefined) {
    try {
      text = await readFile('/proc/self/mountinfo', 'utf8');
    } catch {
      return undefined;
    }
  }
  let v2 = false;
  for (const line of text.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup' && superOptions.split(',').includes('cpu')) return 1;
    if (fstype === 'cgroup2') v2 = true;
  }
  return v2 ? 2 : undefined;
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
export async function connect(options: KvmLibvirtConnectOptions): Promise<KvmLibvirtAdapter> {
  if (typeof options !== 'object' || options === null)
    throw new TypeError('connect: options must be an object.');
  checkOptionKeys(options, CONNECT_OPTION_KEYS, 'kvm-libvirt connect');
  const secrets = sshAuthSecrets(options.transport?.ssh?.connect?.auth);
  if (options.cgroupVersion !== undefined && options.cgroupVersion !== 1 && options.cgroupVersion !== 2) {
    throw new TypeError('connect: cgroupVersion must be 1 or 2.');
  }
  if (
    options.backupPool !== undefined &&
    (typeof options.backupPool !== 'string' || options.backupPool === '')
  ) {
    throw new TypeError('connect: backupPool must be a non-empty string.');
  }
  const client = await LibvirtRpcClient.connect({
    ...(options.uri !== undefined ? { uri: options.uri } : {}),
    ...(options.dialer !== undefined ? { dialer: options.dialer } : {}),
    ...(options.openUri !== undefined ? { openUri: options.openUri } : {}),
    ...(options.transport !== undefined ? { transport: options.transport } : {}),
    ...(options.readOnly !== undefined ? { readOnly: options.readOnly } : {}),
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
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
      await client.call(remoteProcedures.CONNECT_GET_TYPE, undefined, rpcOptions(options))
    ).toUpperCase();
    let cgroupVersion: CgroupVersion = 2;
    let cgroupVersionSource: AdapterContext['cgroupVersionSource'] = 'default';
    if (options.cgroupVersion !== undefined) {
      cgroupVersion = options.cgroupVersion;
      cgroupVersionSource = 'option';
    } else if (driver === 'TEST') {
      // The test driver checks memory limits like cgroup v1 (swap_hard_limit ≥ hard_limit: memory + swap).
      cgroupVersion = 1;
    } else if (options.dialer === undefined && isLocalUri(options.uri)) {
      const detected = await detectLocalCgroupVersion();
      if (detected !== undefined) {
        cgroupVersion = detected;
        cgroupVersionSource = 'detected';
      }
    }
    let caps: ReturnType<AdapterContext['capabilities']> | undefined;
    const ctx: AdapterContext = {
      client,
      driver,
      cgroupVersion,
      cgroupVersionSource,
      backupPool: options.backupPool ?? 'default',
      localDaemon: options.dialer === undefined && isLocalUri(options.uri),
      logger: options.logger,
      siblings: new Set(),
      pending: new Set(),
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
    const supports: DeepReadonly<SupportsManifest> = supportsForDriver(driver);
    let closed: Promise<void> | undefined;
    const close = () => {
      closed ??= (async () => {
        // Let aborted backups finish removing their checkpoints and temporary files (bounded).
        if (ctx.pending.size > 0) {
          await Promise.race([
            Promise.allSettled([...ctx.pending]),
            new Promise((resolve) => setTimeout(resolve, 60_000).unref()),
          ]);
        }
        await client.close().catch(() => {});
      })();
      return closed;
    };
    const adapter: KvmLibvirtAdapter = {
      specificationVersion: 'v1',
      adapter: ADAPTER_ID,
      supports,
      rpc: client,
      driver,
      cgroupVersion,
      inventory: createInventory(ctx),
      ...(supports.limits !== false ? { limits: createLimits(ctx, supports.limits) } : {}),
      labels: createLabels(ctx),
      backups: createBackups(ctx, options.naming ?? {}),
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
