/**
 * The adapter id, and libvirt errors (`remote_error`, `virErrorNumber`, `virErrorDomain`) mapped to HvkitError codes:
 * the one place where backend errors become codes.
 */

import { type HvkitError, type HvkitErrorCode, hvkitError } from '@hvkit/core';
import type { RemoteError } from './protocol/remote-error';

/** The adapter id, in every error and in `adapter.adapter`. */
export const ADAPTER_ID = 'kvm-libvirt';

/** `virErrorNumber` values (libvirt 9.x). */
export const VIR_ERR = {
  OK: 0,
  INTERNAL_ERROR: 1,
  NO_MEMORY: 2,
  NO_SUPPORT: 3,
  UNKNOWN_HOST: 4,
  NO_CONNECT: 5,
  INVALID_CONN: 6,
  INVALID_DOMAIN: 7,
  INVALID_ARG: 8,
  OPERATION_FAILED: 9,
  GET_FAILED: 10,
  POST_FAILED: 11,
  HTTP_ERROR: 12,
  SEXPR_SERIAL: 13,
  NO_XEN: 14,
  XEN_CALL: 15,
  OS_TYPE: 16,
  NO_KERNEL: 17,
  NO_ROOT: 18,
  NO_SOURCE: 19,
  NO_TARGET: 20,
  NO_NAME: 21,
  NO_OS: 22,
  NO_DEVICE: 23,
  NO_XENSTORE: 24,
  DRIVER_FULL: 25,
  CALL_FAILED: 26,
  XML_ERROR: 27,
  DOM_EXIST: 28,
  OPERATION_DENIED: 29,
  OPEN_FAILED: 30,
  READ_FAILED: 31,
  PARSE_FAILED: 32,
  CONF_SYNTAX: 33,
  WRITE_FAILED: 34,
  XML_DETAIL: 35,
  INVALID_NETWORK: 36,
  NETWORK_EXIST: 37,
  SYSTEM_ERROR: 38,
  RPC: 39,
  GNUTLS_ERROR: 40,
  WAR_NO_NETWORK: 41,
  NO_DOMAIN: 42,
  NO_NETWORK: 43,
  INVALID_MAC: 44,
  AUTH_FAILED: 45,
  INVALID_STORAGE_POOL: 46,
  INVALID_STORAGE_VOL: 47,
  WAR_NO_STORAGE: 48,
  NO_STORAGE_POOL: 49,
  NO_STORAGE_VOL: 50,
  WAR_NO_NODE: 51,
  INVALID_NODE_DEVICE: 52,
  NO_NODE_DEVICE: 53,
  NO_SECURITY_MODEL: 54,
  OPERATION_INVALID: 55,
  WAR_NO_INTERFACE: 56,
  NO_INTERFACE: 57,
  INVALID_INTERFACE: 58,
  MULTIPLE_INTERFACES: 59,
  WAR_NO_NWFILTER: 60,
  INVALID_NWFILTER: 61,
  NO_NWFILTER: 62,
  BUILD_FIREWALL: 63,
  WAR_NO_SECRET: 64,
  INVALID_SECRET: 65,
  NO_SECRET: 66,
  CONFIG_UNSUPPORTED: 67,
  OPERATION_TIMEOUT: 68,
  MIGRATE_PERSIST_FAILED: 69,
  HOOK_SCRIPT_FAILED: 70,
  INVALID_DOMAIN_SNAPSHOT: 71,
  NO_DOMAIN_SNAPSHOT: 72,
  INVALID_STREAM: 73,
  ARGUMENT_UNSUPPORTED: 74,
  STORAGE_PROBE_FAILED: 75,
  STORAGE_POOL_BUILT: 76,
  SNAPSHOT_REVERT_RISKY: 77,
  OPERATION_ABORTED: 78,
  AUTH_CANCELLED: 79,
  NO_DOMAIN_METADATA: 80,
  MIGRATE_UNSAFE: 81,
  OVERFLOW: 82,
  BLOCK_COPY_ACTIVE: 83,
  OPERATION_UNSUPPORTED: 84,
  SSH: 85,
  AGENT_UNRESPONSIVE: 86,
  RESOURCE_BUSY: 87,
  ACCESS_DENIED: 88,
  DBUS_SERVICE: 89,
  STORAGE_VOL_EXIST: 90,
  CPU_INCOMPATIBLE: 91,
  XML_INVALID_SCHEMA: 92,
  MIGRATE_FINISH_OK: 93,
  AUTH_UNAVAILABLE: 94,
  NO_SERVER: 95,
  NO_CLIENT: 96,
  AGENT_UNSYNCED: 97,
  LIBSSH: 98,
  DEVICE_MISSING: 99,
  INVALID_NWFILTER_BINDING: 100,
  NO_NWFILTER_BINDING: 101,
  INVALID_DOMAIN_CHECKPOINT: 102,
  NO_DOMAIN_CHECKPOINT: 103,
  NO_DOMAIN_BACKUP: 104,
  INVALID_NETWORK_PORT: 105,
  NETWORK_PORT_EXIST: 106,
  NO_NETWORK_PORT: 107,
  NO_HOSTNAME: 108,
  CHECKPOINT_INCONSISTENT: 109,
  MULTIPLE_DOMAINS: 110,
  NO_NETWORK_METADATA: 111,
} as const;

/** `virErrorDomain` values (libvirt 9.x). */
export const VIR_FROM = {
  NONE: 0,
  XEN: 1,
  XEND: 2,
  XENSTORE: 3,
  SEXPR: 4,
  XML: 5,
  DOM: 6,
  RPC: 7,
  PROXY: 8,
  CONF: 9,
  QEMU: 10,
  NET: 11,
  TEST: 12,
  REMOTE: 13,
  OPENVZ: 14,
  XENXM: 15,
  STATS_LINUX: 16,
  LXC: 17,
  STORAGE: 18,
  NETWORK: 19,
  DOMAIN: 20,
  UML: 21,
  NODEDEV: 22,
  XEN_INOTIFY: 23,
  SECURITY: 24,
  VBOX: 25,
  INTERFACE: 26,
  ONE: 27,
  ESX: 28,
  PHYP: 29,
  SECRET: 30,
  CPU: 31,
  XENAPI: 32,
  NWFILTER: 33,
  HOOK: 34,
  DOMAIN_SNAPSHOT: 35,
  AUDIT: 36,
  SYSINFO: 37,
  STREAMS: 38,
  VMWARE: 39,
  EVENT: 40,
  LIBXL: 41,
  LOCKING: 42,
  HYPERV: 43,
  CAPABILITIES: 44,
  URI: 45,
  AUTH: 46,
  DBUS: 47,
  PARALLELS: 48,
  DEVICE: 49,
  SSH: 50,
  LOCKSPACE: 51,
  INITCTL: 52,
  IDENTITY: 53,
  CGROUP: 54,
  ACCESS: 55,
  SYSTEMD: 56,
  BHYVE: 57,
  CRYPTO: 58,
  FIREWALL: 59,
  POLKIT: 60,
  THREAD: 61,
  ADMIN: 62,
  LOGGING: 63,
  XENXL: 64,
  PERF: 65,
  LIBSSH: 66,
  RESCTRL: 67,
  FIREWALLD: 68,
  DOMAIN_CHECKPOINT: 69,
  TPM: 70,
  BPF: 71,
  CH: 72,
} as const;

const ERR_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(VIR_ERR).map(([k, v]) => [v, k]));
const FROM_NAMES: ReadonlyMap<number, string> = new Map(Object.entries(VIR_FROM).map(([k, v]) => [v, k]));

/** `VIR_ERR_<NAME>` for a code, or `VIR_ERR_<n>` when unknown. */
export function virErrorName(code: number): string {
  return `VIR_ERR_${ERR_NAMES.get(code) ?? code}`;
}

/** `VIR_FROM_<NAME>` for a domain, or `VIR_FROM_<n>` when unknown. */
export function virFromName(domain: number): string {
  return `VIR_FROM_${FROM_NAMES.get(domain) ?? domain}`;
}

const E = VIR_ERR;
const CODE_MAP: ReadonlyMap<number, HvkitErrorCode> = new Map<number, HvkitErrorCode>([
  // Not found.
  [E.NO_DOMAIN, 'NOT_FOUND'],
  [E.NO_NETWORK, 'NOT_FOUND'],
  [E.NO_STORAGE_POOL, 'NOT_FOUND'],
  [E.NO_STORAGE_VOL, 'NOT_FOUND'],
  [E.NO_NODE_DEVICE, 'NOT_FOUND'],
  [E.NO_INTERFACE, 'NOT_FOUND'],
  [E.NO_NWFILTER, 'NOT_FOUND'],
  [E.NO_SECRET, 'NOT_FOUND'],
  [E.NO_DOMAIN_SNAPSHOT, 'NOT_FOUND'],
  [E.NO_DOMAIN_METADATA, 'NOT_FOUND'],
  [E.NO_NWFILTER_BINDING, 'NOT_FOUND'],
  [E.NO_DOMAIN_CHECKPOINT, 'NOT_FOUND'],
  [E.NO_DOMAIN_BACKUP, 'NOT_FOUND'],
  [E.NO_NETWORK_PORT, 'NOT_FOUND'],
  [E.NO_NETWORK_METADATA, 'NOT_FOUND'],
  [E.NO_HOSTNAME, 'NOT_FOUND'],
  [E.DEVICE_MISSING, 'NOT_FOUND'],
  [E.NO_SERVER, 'NOT_FOUND'],
  [E.NO_CLIENT, 'NOT_FOUND'],
  // Invalid argument.
  [E.INVALID_ARG, 'INVALID_ARGUMENT'],
  [E.INVALID_DOMAIN, 'INVALID_ARGUMENT'],
  [E.INVALID_NETWORK, 'INVALID_ARGUMENT'],
  [E.INVALID_MAC, 'INVALID_ARGUMENT'],
  [E.INVALID_STORAGE_POOL, 'INVALID_ARGUMENT'],
  [E.INVALID_STORAGE_VOL, 'INVALID_ARGUMENT'],
  [E.INVALID_NODE_DEVICE, 'INVALID_ARGUMENT'],
  [E.INVALID_INTERFACE, 'INVALID_ARGUMENT'],
  [E.INVALID_NWFILTER, 'INVALID_ARGUMENT'],
  [E.INVALID_SECRET, 'INVALID_ARGUMENT'],
  [E.INVALID_DOMAIN_SNAPSHOT, 'INVALID_ARGUMENT'],
  [E.INVALID_STREAM, 'INVALID_ARGUMENT'],
  [E.INVALID_NWFILTER_BINDING, 'INVALID_ARGUMENT'],
  [E.INVALID_DOMAIN_CHECKPOINT, 'INVALID_ARGUMENT'],
  [E.INVALID_NETWORK_PORT, 'INVALID_ARGUMENT'],
  [E.XML_ERROR, 'INVALID_ARGUMENT'],
  [E.XML_DETAIL, 'INVALID_ARGUMENT'],
  [E.XML_INVALID_SCHEMA, 'INVALID_ARGUMENT'],
  [E.PARSE_FAILED, 'INVALID_ARGUMENT'],
  [E.CONF_SYNTAX, 'INVALID_ARGUMENT'],
  [E.OS_TYPE, 'INVALID_ARGUMENT'],
  [E.NO_KERNEL, 'INVALID_ARGUMENT'],
  [E.NO_ROOT, 'INVALID_ARGUMENT'],
  [E.NO_SOURCE, 'INVALID_ARGUMENT'],
  [E.NO_TARGET, 'INVALID_ARGUMENT'],
  [E.NO_NAME, 'INVALID_ARGUMENT'],
  [E.NO_OS, 'INVALID_ARGUMENT'],
  [E.NO_DEVICE, 'INVALID_ARGUMENT'],
  [E.OVERFLOW, 'INVALID_ARGUMENT'],
  // Unsupported.
  [E.NO_SUPPORT, 'UNSUPPORTED'],
  [E.NO_CONNECT, 'UNSUPPORTED'],
  [E.ARGUMENT_UNSUPPORTED, 'UNSUPPORTED'],
  [E.OPERATION_UNSUPPORTED, 'UNSUPPORTED'],
  [E.CONFIG_UNSUPPORTED, 'UNSUPPORTED'],
  [E.NO_SECURITY_MODEL, 'UNSUPPORTED'],
  [E.CPU_INCOMPATIBLE, 'UNSUPPORTED'],
  // Conflict with the current state.
  [E.OPERATION_INVALID, 'CONFLICT'],
  [E.DOM_EXIST, 'CONFLICT'],
  [E.NETWORK_EXIST, 'CONFLICT'],
  [E.STORAGE_VOL_EXIST, 'CONFLICT'],
  [E.NETWORK_PORT_EXIST, 'CONFLICT'],
  [E.STORAGE_POOL_BUILT, 'CONFLICT'],
  [E.BLOCK_COPY_ACTIVE, 'CONFLICT'],
  [E.RESOURCE_BUSY, 'CONFLICT'],
  [E.CHECKPOINT_INCONSISTENT, 'CONFLICT'],
  [E.SNAPSHOT_REVERT_RISKY, 'CONFLICT'],
  [E.MIGRATE_UNSAFE, 'CONFLICT'],
  [E.MULTIPLE_INTERFACES, 'CONFLICT'],
  [E.MULTIPLE_DOMAINS, 'CONFLICT'],
  // Authentication and authorisation.
  [E.AUTH_FAILED, 'AUTH_FAILED'],
  [E.AUTH_CANCELLED, 'AUTH_FAILED'],
  [E.AUTH_UNAVAILABLE, 'AUTH_FAILED'],
  [E.ACCESS_DENIED, 'PERMISSION_DENIED'],
  [E.OPERATION_DENIED, 'PERMISSION_DENIED'],
  // Time.
  [E.OPERATION_TIMEOUT, 'TIMEOUT'],
  [E.AGENT_UNRESPONSIVE, 'TIMEOUT'],
  [E.AGENT_UNSYNCED, 'TIMEOUT'],
  [E.OPERATION_ABORTED, 'ABORTED'],
  // Transport.
  [E.INVALID_CONN, 'CONNECTION_LOST'],
  [E.UNKNOWN_HOST, 'CONNECTION_LOST'],
  [E.RPC, 'PROTOCOL'],
  [E.GNUTLS_ERROR, 'PROTOCOL'],
]);

/** The HvkitError code for a libvirt error code (`REMOTE` for anything not listed). */
export function hvkitCodeForLibvirtError(code: number, message?: string | null): HvkitErrorCode {
  if (code === E.RPC && typeof message === 'string') {
    // VIR_ERR_RPC covers several situations the daemon reports with fixed texts.
    if (/unknown procedure/i.test(message)) return 'UNSUPPORTED';
    if (/authentication required/i.test(message)) return 'AUTH_FAILED';
  }
  return CODE_MAP.get(code) ?? 'REMOTE';
}

/** Where an error happened, for the HvkitError. */
export interface LibvirtErrorContext {
  /** e.g. `rpc.DOMAIN_LOOKUP_BY_NAME`. */
  operation?: string;
}

/**
 * Maps a libvirt `remote_error` to an HvkitError: `code` per {@link hvkitCodeForLibvirtError},
 * `backendCode` the VIR_ERR number, `backendMessage` libvirt's message, and `details` holding the
 * symbolic names, the error domain and the extra fields.
 */
export function libvirtErrorToHvkitError(error: RemoteError, context: LibvirtErrorContext = {}): HvkitError {
  const code = hvkitCodeForLibvirtError(error.code, error.message);
  const message = error.message ?? `${virErrorName(error.code)} (no message)`;
  const retryable = code === 'TIMEOUT' || (code === 'CONFLICT' && error.code === E.RESOURCE_BUSY);
  const details: Record<string, unknown> = {
    libvirtCode: virErrorName(error.code),
    domain: error.domain,
    domainName: virFromName(error.domain),
    level: error.level,
  };
  if (error.str1 !== null) details.str1 = error.str1;
  if (error.str2 !== null) details.str2 = error.str2;
  if (error.str3 !== null) details.str3 = error.str3;
  if (error.int1 !== -1) details.int1 = error.int1;
  if (error.int2 !== -1) details.int2 = error.int2;
  if (error.dom) details.dom = error.dom.name;
  if (error.net) details.net = error.net.name;
  return hvkitError(code, message, {
    adapter: ADAPTER_ID,
    operation: context.operation,
    backendCode: error.code,
    backendMessage: error.message ?? undefined,
    retryable,
    details,
  });
}
