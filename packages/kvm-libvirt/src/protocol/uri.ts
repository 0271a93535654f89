/**
 * libvirt connection URIs, read the way virsh's remote driver reads them:
 * `driver[+transport]://[user@][host][:port]/path[?params]`.
 *
 * - No transport and no host: a local unix socket (`qemu:///system`, `test:///default`).
 * - No transport but a host: TLS (`qemu://host/system`), whatever the driver (libvirt does the same for a
 *   driver it does not know; errors then name the driver and list {@link LIBVIRT_DRIVERS}).
 * - Transports: `unix`, `tcp`, `tls`, `ssh` (also `libssh`, `libssh2`); `ext` is not supported.
 * - The URI sent in CONNECT_OPEN is the driver URI: transport, user, host, port and the parameters the
 *   remote driver consumes are removed (`test+unix:///default?socket=/x` opens `test:///default`);
 *   unknown parameters are passed through, `?name=` replaces it entirely.
 */

import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { hvkitError } from '@hvkit/core';
import { quoteArg } from '@hvkit/ssh';
import { ADAPTER_ID } from '../errors';

/** Transports a libvirt URI can name. */
export type LibvirtTransportName = 'unix' | 'tcp' | 'tls' | 'ssh' | 'libssh' | 'libssh2' | 'ext';

/** How the local socket is chosen (`?mode=`). */
export type SocketMode = 'auto' | 'legacy' | 'direct';

/** How the SSH transport reaches the socket on the remote host (`?proxy=`). */
export type SshProxyMode = 'auto' | 'native' | 'netcat';

/** A parsed libvirt URI. */
export interface LibvirtUri {
  /** The URI as given. */
  uri: string;
  /** Hypervisor driver: `qemu`, `test`, `lxc`, `xen`, ... (`remote` for the generic remote driver). */
  driver: string;
  /** The transport in effect (explicit, or implied: `unix` without a host, `tls` with one). */
  transport: LibvirtTransportName;
  /** True when the URI named the transport. */
  explicitTransport: boolean;
  user?: string;
  host?: string;
  port?: number;
  /** The path, e.g. `/system`, `/session`, `/default` or a node XML file for the test driver. */
  path: string;
  /** All query parameters (names lowercased, values decoded). */
  params: Readonly<Record<string, string>>;
  /** The URI sent in CONNECT_OPEN (`null`: let the daemon choose, for the generic `remote` driver). */
  openUri: string | null;
  /** `?socket=`: the socket path to use (local, or on the remote host for SSH). */
  socket?: string;
  /** `?mode=` (default `auto`). */
  mode: SocketMode;
  /** `?proxy=` (default `auto`). */
  proxy: SshProxyMode;
  /** `?netcat=`: the netcat binary on the remote host. */
  netcat?: string;
  /** `?keyfile=`: SSH private key file. */
  keyfile?: string;
  /** `?known_hosts=`: SSH known_hosts file. */
  knownHosts?: string;
  /** `?pkipath=`: directory with `cacert.pem`, `clientcert.pem`, `clientkey.pem`. */
  pkipath?: string;
  /**
   * `?no_verify=1` as written in the URI. hvkit honours it only when the caller also sets the named
   * option `transport.insecureAllowUriNoVerify: true` (see `resolveLibvirtTransport`); a URI alone never
   * turns verification off.
   */
  noVerify: boolean;
}

/** Query parameters the remote driver consumes (never passed to the daemon in the open URI). */
const CONSUMED_PARAMS: ReadonlySet<string> = new Set([
  'name',
  'command',
  'socket',
  'auth',
  'netcat',
  'keyfile',
  'sshauth',
  'no_verify',
  'no_tty',
  'pkipath',
  'known_hosts',
  'known_hosts_verify',
  'tls_priority',
  'tls',
  'mode',
  'proxy',
]);

const TRANSPORTS: ReadonlySet<string> = new Set(['unix', 'tcp', 'tls', 'ssh', 'libssh', 'libssh2', 'ext']);

/**
 * URI schemes of the hypervisor drivers a libvirt daemon serves, plus `remote` (the generic remote driver).
 * A URI naming another driver is still tried, as libvirt does (a host without a transport means TLS); this
 * list only makes the resulting errors say that the driver is unknown.
 */
export const LIBVIRT_DRIVERS: readonly string[] = Object.freeze([
  'qemu',
  'test',
  'lxc',
  'xen',
  'libxl',
  'bhyve',
  'ch',
  'vbox',
  'vz',
  'parallels',
  'openvz',
  'remote',
]);

/** Default TCP port of `tcp` transports. */
export const LIBVIRT_TCP_PORT = 16509;
/** Default TCP port of `tls` transports. */
export const LIBVIRT_TLS_PORT = 16514;
/** Directory of the system daemons' sockets. */
export const SYSTEM_SOCKET_DIR = '/var/run/libvirt';

function invalid(uri: string, message: string) {
  return hvkitError('INVALID_ARGUMENT', `Invalid libvirt URI ${JSON.stringify(uri)}: ${message}`, {
    adapter: ADAPTER_ID,
    operation: 'uri.parse',
  });
}

function decode(uri: string, s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    throw invalid(uri, `bad percent-encoding in ${JSON.stringify(s)}`);
  }
}

/**
 * Parses a libvirt URI.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a malformed URI, an unknown transport or bad parameter values.
 * @throws TypeError when `uri` is not a string.
 */
export function parseLibvirtUri(uri: string): LibvirtUri {
  if (typeof uri !== 'string') throw new TypeError('A libvirt URI must be a string.');
  const m = /^([A-Za-z][A-Za-z0-9.-]*)(?:\+([A-Za-z0-9]+))?:\/\/([^/?#]*)([^?#]*)(?:\?([^#]*))?$/.exec(uri);
  if (!m) throw invalid(uri, 'expected driver[+transport]://[user@][host][:port]/path[?params]');
  const driver = (m[1] as string).toLowerCase();
  const transportName = m[2]?.toLowerCase();
  const authority = m[3] ?? '';
  const path = decode(uri, m[4] ?? '');
  const query = m[5] ?? '';
  if (transportName !== undefined && !TRANSPORTS.has(transportName)) {
    throw invalid(uri, `unknown transport ${JSON.stringify(transportName)}`);
  }

  let user: string | undefined;
  let hostPort = authority;
  const at = authority.lastIndexOf('@');
  if (at >= 0) {
    user = decode(uri, authority.slice(0, at));
    hostPort = authority.slice(at + 1);
    if (user === '') user = undefined;
  }
  let port: number | undefined;
  const bracket = /^\[([^\]]+)\](?::(\d*))?$/.exec(hostPort);
  const plain = /^([^:[\]]*)(?::(\d*))?$/.exec(hostPort);
  const hp = bracket ?? plain;
  if (!hp) throw invalid(uri, `bad host ${JSON.stringify(hostPort)}`);
  const host = hp[1] ? decode(uri, hp[1]) : undefined;
  if (hp[2] !== undefined && hp[2] !== '') {
    port = Number(hp[2]);
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw invalid(uri, `bad port ${hp[2]}`);
  }
  if (host === undefined && (user !== undefined || port !== undefined)) {
    throw invalid(uri, 'a user or port needs a host');
  }

  const params: Record<string, string> = {};
  const passthrough: string[] = [];
  if (query !== '') {
    for (const part of query.split('&')) {
      if (part === '') continue;
      const eq = part.indexOf('=');
      const rawName = eq >= 0 ? part.slice(0, eq) : part;
      const rawValue = eq >= 0 ? part.slice(eq + 1) : '';
      const name = decode(uri, rawName.replace(/\+/g, ' ')).toLowerCase();
      const value = decode(uri, rawValue.replace(/\+/g, ' '));
      params[name] = value;
      if (!CONSUMED_PARAMS.has(name)) passthrough.push(part);
    }
  }

  let transport: LibvirtTransportName;
  if (transportName !== undefined) transport = transportName as LibvirtTransportName;
  else transport = host !== undefined ? 'tls' : 'unix';
  if (transport === 'unix' && host !== undefined) throw invalid(uri, 'the unix transport takes no host');
  if (
    (transport === 'ssh' || transport === 'libssh' || transport === 'libssh2' || transport === 'tcp') &&
    !host
  ) {
    throw invalid(uri, `the ${transport} transport needs a host`);
  }

  const mode = (params.mode ?? 'auto').toLowerCase();
  if (mode !== 'auto' && mode !== 'legacy' && mode !== 'direct') {
    throw invalid(uri, `mode must be auto, legacy or direct, got ${JSON.stringify(params.mode)}`);
  }
  const proxy = (params.proxy ?? 'auto').toLowerCase();
  if (proxy !== 'auto' && proxy !== 'native' && proxy !== 'netcat') {
    throw invalid(uri, `proxy must be auto, native or netcat, got ${JSON.stringify(params.proxy)}`);
  }
  const noVerifyRaw = params.no_verify;
  if (noVerifyRaw !== undefined && !/^(0|1)$/.test(noVerifyRaw)) {
    throw invalid(uri, 'no_verify must be 0 or 1');
  }

  let openUri: string | null;
  if (params.name !== undefined) openUri = params.name === '' ? null : params.name;
  else if (driver === 'remote' && (path === '' || path === '/')) openUri = null;
  else openUri = `${driver}://${encodeURI(path)}${passthrough.length ? `?${passthrough.join('&')}` : ''}`;

  const out: LibvirtUri = {
    uri,
    driver,
    transport,
    explicitTransport: transportName !== undefined,
    path,
    params,
    openUri,
    mode: mode as SocketMode,
    proxy: proxy as SshProxyMode,
    noVerify: noVerifyRaw === '1',
  };
  if (user !== undefined) out.user = user;
  if (host !== undefined) out.host = host;
  if (port !== undefined) out.port = port;
  if (params.socket !== undefined && params.socket !== '') out.socket = params.socket;
  if (params.netcat !== undefined && params.netcat !== '') out.netcat = params.netcat;
  if (params.keyfile !== undefined && params.keyfile !== '') out.keyfile = params.keyfile;
  if (params.known_hosts !== undefined && params.known_hosts !== '') out.knownHosts = params.known_hosts;
  if (params.pkipath !== undefined && params.pkipath !== '') out.pkipath = params.pkipath;
  return out;
}

/** The modular daemon serving a driver (`qemu` → `virtqemud`). */
export function modularDaemonName(driver: string): string {
  const d = driver === 'libxl' ? 'xen' : driver === 'parallels' ? 'vz' : driver;
  return `virt${d}d`;
}

/** Whether the URI asks for the per-user (session) daemon. */
export function isSessionUri(u: LibvirtUri): boolean {
  return u.path === '/session';
}

/** Environment needed to locate sockets (defaults to the process's). */
export interface SocketLookup {
  /** `XDG_RUNTIME_DIR`. */
  runtimeDir?: string;
  /** The home directory (for `~/.cache/libvirt` when there is no runtime dir). */
  home?: string;
  /** Tells whether a path exists (default `fs.existsSync`). */
  exists?: (path: string) => boolean;
}

/**
 * The local socket a `unix` URI connects to, like virsh: `?socket=` wins; otherwise the session
 * directory (`$XDG_RUNTIME_DIR/libvirt` or `~/.cache/libvirt`) for `/session`, else `/var/run/libvirt`;
 * `mode=legacy` uses `libvirt-sock`, `mode=direct` the driver's own `virt<drv>d-sock`, `mode=auto` the
 * latter when it exists. Read-only connections use the `-ro` socket of the system daemons.
 */
export function localSocketPath(u: LibvirtUri, options: { readOnly?: boolean } & SocketLookup = {}): string {
  if (u.socket) return u.socket;
  const exists = options.exists ?? existsSync;
  const session = isSessionUri(u);
  const dir = session
    ? `${options.runtimeDir ?? process.env.XDG_RUNTIME_DIR ?? `${options.home ?? homedir()}/.cache`}/libvirt`
    : SYSTEM_SOCKET_DIR;
  const suffix = options.readOnly && !session ? '-sock-ro' : '-sock';
  const direct = `${dir}/${modularDaemonName(u.driver)}${suffix}`;
  const legacy = `${dir}/libvirt${suffix}`;
  if (u.mode === 'legacy' || u.driver === 'remote') return legacy;
  if (u.mode === 'direct') return direct;
  return exists(direct) ? direct : legacy;
}

/**
 * The remote command for the SSH transport, as argv for `SshClient.dialer()`: `sh -c '<script>'` where
 * the script runs `virt-ssh-helper <driver URI>` when the remote host has it and falls back to netcat on
 * the daemon socket (`proxy=auto`, virsh's default); `proxy=native` runs only the helper;
 * `proxy=netcat`, `?netcat=` or `?socket=` run only netcat.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for `mode=direct` (virsh refuses it over SSH too).
 */
export function sshRemoteArgv(u: LibvirtUri, options: { readOnly?: boolean } = {}): string[] {
  if (u.mode === 'direct') {
    throw hvkitError('INVALID_ARGUMENT', 'Cannot use direct socket mode for the ssh transport.', {
      adapter: ADAPTER_ID,
      operation: 'uri.ssh',
    });
  }
  const ro = options.readOnly === true;
  const session = isSessionUri(u);
  const socket = u.socket
    ? quoteArg(u.socket)
    : session
      ? `"\${XDG_RUNTIME_DIR:-$HOME/.cache}"/libvirt/libvirt-sock`
      : quoteArg(`${SYSTEM_SOCKET_DIR}/libvirt-sock${ro ? '-ro' : ''}`);
  const nc = quoteArg(u.netcat ?? 'nc');
  const netcat =
    `if ${nc} -q 2>&1 | grep "requires an argument" >/dev/null 2>&1; then ARG=-q0; else ARG=; fi; ` +
    `exec ${nc} $ARG -U ${socket}`;
  const helper = `exec virt-ssh-helper${ro ? ' -r' : ''} ${quoteArg(u.openUri ?? `${u.driver}://${u.path}`)}`;
  const useNetcat = u.proxy === 'netcat' || u.netcat !== undefined || u.socket !== undefined;
  let script: string;
  if (useNetcat) script = netcat;
  else if (u.proxy === 'native') script = helper;
  else script = `if command -v virt-ssh-helper >/dev/null 2>&1; then ${helper}; else ${netcat}; fi`;
  return ['sh', '-c', script];
}

/** A display form of a URI without any secret-looking parameter values. */
export function redactLibvirtUri(uri: string): string {
  return uri.replace(/([?&](?:password|passwd|secret|token)=)[^&]*/gi, '$1***');
}
