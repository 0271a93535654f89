/**
 * Dialers for libvirt URIs: local unix sockets, TCP, TLS (with libvirt's confirmation byte) and SSH
 * (through `@hvkit/ssh`, running virt-ssh-helper or netcat on the remote host).
 */

import { readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import type { Duplex } from 'node:stream';
import {
  abortError,
  checkSignal,
  type Dialer,
  HvkitError,
  hvkitError,
  type TlsSettings,
  type TransportCallOptions,
  tcpDialer,
  tlsDialer,
  unixSocketDialer,
} from '@hvkit/core';
import {
  connectSsh,
  defaultKnownHostsFiles,
  type SshClient,
  type SshConnectOptions,
  type SshDialerOptions,
} from '@hvkit/ssh';
import { ADAPTER_ID } from '../errors';
import {
  LIBVIRT_DRIVERS,
  LIBVIRT_TCP_PORT,
  LIBVIRT_TLS_PORT,
  type LibvirtUri,
  localSocketPath,
  parseLibvirtUri,
  redactLibvirtUri,
  sshRemoteArgv,
} from './uri';

/** SSH settings for `qemu+ssh://` URIs. */
export interface LibvirtSshOptions {
  /** An open SSH connection to reuse (it is not closed with the libvirt client). */
  client?: SshClient;
  /**
   * Settings for the SSH connection the client opens itself; they override what the URI says (`user@`,
   * `:port`, `?keyfile=`, `?known_hosts=`, and `?no_verify=1` where it is honoured).
   */
  connect?: Partial<SshConnectOptions>;
  /** Options of the remote command's channel. */
  dialer?: SshDialerOptions;
}

/** TLS settings for `qemu+tls://` URIs; files named by the URI or libvirt's defaults fill the gaps. */
export interface LibvirtTlsOptions extends TlsSettings {
  /** Directory with `cacert.pem`, `clientcert.pem` and `clientkey.pem` (like `?pkipath=`). */
  pkiPath?: string;
}

/** Transport settings of a libvirt connection. */
export interface LibvirtTransportOptions {
  ssh?: LibvirtSshOptions;
  tls?: LibvirtTlsOptions;
  /** Connect timeout of the socket (the overall connect deadline still applies). */
  connectTimeoutMs?: number;
  /** Use the read-only socket / `virt-ssh-helper -r` (matches a read-only CONNECT_OPEN). */
  readOnly?: boolean;
  /**
   * Honour `?no_verify=1` in the URI, with libvirt's meaning: over TLS the server certificate is not
   * verified; over SSH a host with no key in known_hosts is accepted, while a listed host must still
   * present its listed key (a changed or revoked key is always refused). Without this option a URI's
   * `no_verify=1` is not honoured: verification stays on and a failure says so. A string never turns
   * verification off by itself; the explicit `tls.insecureSkipVerify` and
   * `ssh.connect.hostKey: { insecureAcceptAnyHostKey: true }` stay available.
   */
  insecureAllowUriNoVerify?: boolean;
}

/** A URI turned into a dialer. */
export interface ResolvedTransport {
  /** Opens the byte stream. */
  dialer: Dialer;
  /** The URI to send in CONNECT_OPEN. */
  openUri: string | null;
  /** The parsed URI. */
  uri: LibvirtUri;
  /** Releases what the transport opened itself (an SSH connection). Idempotent. */
  dispose(): Promise<void>;
  /**
   * The SSH connection a `qemu+ssh` transport runs over (given or opened here): it can run commands and
   * read files on the daemon host. Undefined for other transports.
   */
  ssh?: SshClient;
}

/**
 * The same error with the notes given appended to its message, for errors a URI's reading explains
 * (ABORTED and non-hvkit errors are returned as they are).
 */
function withNote(error: unknown, ...notes: (string | undefined)[]): unknown {
  const note = notes.filter((n) => n !== undefined).join(' ');
  if (note === '' || !HvkitError.isInstance(error) || error.code === 'ABORTED') return error;
  return new HvkitError({
    code: error.code,
    message: `${error.message} ${note}`,
    adapter: error.adapter,
    operation: error.operation,
    cause: error,
    backendCode: error.backendCode,
    backendMessage: error.backendMessage,
    retryable: error.retryable,
    details: error.details,
  });
}

/** A dialer whose failures go through `annotate`. */
function annotatedDialer(dialer: Dialer, annotate: (error: unknown) => unknown): Dialer {
  return {
    target: dialer.target,
    async dial(call?: TransportCallOptions): Promise<Duplex> {
      try {
        return await dialer.dial(call);
      } catch (error) {
        throw annotate(error);
      }
    },
  };
}

/**
 * What the errors of a TLS URI add: that a URI with a host and no transport was read as remote TLS (as
 * libvirt reads it), and that its driver is unknown when it is not in {@link LIBVIRT_DRIVERS}.
 */
function tlsUriNote(u: LibvirtUri): string | undefined {
  const parts: string[] = [];
  if (!u.explicitTransport) {
    const host = (u.host ?? '').includes(':') ? `[${u.host}]` : (u.host ?? '');
    parts.push(
      `${redactLibvirtUri(u.uri)} names a host and no transport, so it was read as a remote TLS URI ` +
        `(${u.driver}+tls://${host}${u.port !== undefined ? `:${u.port}` : ''}${u.path}, port ` +
        `${u.port ?? LIBVIRT_TLS_PORT}), as libvirt reads it.`,
    );
  }
  if (!LIBVIRT_DRIVERS.includes(u.driver)) {
    parts.push(
      `${JSON.stringify(u.driver)} is not a libvirt driver hvkit knows (${LIBVIRT_DRIVERS.join(', ')}).`,
    );
  }
  return parts.length > 0 ? parts.join(' ') : undefined;
}

const NO_VERIFY_IGNORED =
  "The URI's no_verify=1 was not honoured: a URI alone never turns verification off; set " +
  'transport.insecureAllowUriNoVerify: true in code to honour it.';

function readPem(path: string, what: string): Buffer {
  try {
    return readFileSync(path);
  } catch (error) {
    const code = (error as { code?: string }).code;
    throw hvkitError('INVALID_ARGUMENT', `Cannot read the TLS ${what} ${path} (${code ?? 'error'}).`, {
      adapter: ADAPTER_ID,
      operation: 'dial.tls',
      cause: error,
      details: { path },
    });
  }
}

/** Where libvirt looks for the client's TLS files (`pkipath`, else `~/.pki/libvirt` for non-root, else /etc/pki). */
export function tlsFilePaths(pkiPath?: string): { ca: string; cert: string; key: string } {
  if (pkiPath) {
    return {
      ca: `${pkiPath}/cacert.pem`,
      cert: `${pkiPath}/clientcert.pem`,
      key: `${pkiPath}/clientkey.pem`,
    };
  }
  if (process.getuid?.() !== 0) {
    const dir = `${homedir()}/.pki/libvirt`;
    return { ca: `${dir}/cacert.pem`, cert: `${dir}/clientcert.pem`, key: `${dir}/clientkey.pem` };
  }
  return {
    ca: '/etc/pki/CA/cacert.pem',
    cert: '/etc/pki/libvirt/clientcert.pem',
    key: '/etc/pki/libvirt/private/clientkey.pem',
  };
}

/**
 * Waits for the byte a libvirt TLS server sends after the handshake: 1 when it accepted the client's
 * certificate and address. Anything else, or the socket closing first, is `AUTH_FAILED`.
 */
export function readTlsConfirmation(
  socket: Duplex,
  options: TransportCallOptions & { target?: string },
): Promise<void> {
  const signal = checkSignal(options.signal);
  const timeoutMs = options.timeoutMs ?? 10_000;
  const where = options.target ?? 'the libvirt TLS server';
  return new Promise<void>((resolve, reject) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const cleanup = () => {
      if (timer !== undefined) clearTimeout(timer);
      socket.removeListener('data', onData);
      socket.removeListener('close', onClose);
      socket.removeListener('error', onError);
      signal?.removeEventListener('abort', onAbort);
    };
    const fail = (error: HvkitError) => {
      cleanup();
      socket.destroy();
      reject(error);
    };
    const onData = (chunk: Buffer) => {
      socket.pause();
      cleanup();
      if (chunk.length > 1) socket.unshift(chunk.subarray(1));
      if (chunk[0] === 1) {
        resolve();
        return;
      }
      socket.destroy();
      reject(
        hvkitError(
          'AUTH_FAILED',
          `${where} refused the client certificate or address (confirmation byte ${chunk[0]}).`,
          {
            adapter: ADAPTER_ID,
            operation: 'dial.tls',
            retryable: false,
          },
        ),
      );
    };
    const onClose = () =>
      fail(
        hvkitError(
          'AUTH_FAILED',
          `${where} closed the connection after the TLS handshake: client certificate not accepted?`,
          {
            adapter: ADAPTER_ID,
            operation: 'dial.tls',
            retryable: false,
          },
        ),
      );
    const onError = (error: Error) =>
      fail(
        HvkitError.isInstance(error)
          ? error
          : hvkitError('CONNECTION_LOST', `${where}: ${error.message}`, {
              adapter: ADAPTER_ID,
              operation: 'dial.tls',
              cause: error,
            }),
      );
    const onAbort = () => fail(abortError(signal, { adapter: ADAPTER_ID, operation: 'dial.tls' }));
    if (signal?.aborted) {
      onAbort();
      return;
    }
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onError);
    signal?.addEventListener('abort', onAbort, { once: true });
    if (Number.isFinite(timeoutMs)) {
      timer = setTimeout(
        () =>
          fail(
            hvkitError('TIMEOUT', `${where} sent no TLS confirmation within ${timeoutMs} ms.`, {
              adapter: ADAPTER_ID,
              operation: 'dial.tls',
            }),
          ),
        timeoutMs,
      );
    }
    socket.resume();
  });
}

/** Options of {@link libvirtTlsDialer}. */
export interface LibvirtTlsDialerOptions extends TlsSettings {
  host: string;
  port?: number;
  connectTimeoutMs?: number;
}

/**
 * A TLS dialer for libvirtd (`listen_tls`, port 16514): verifies the server certificate, presents the
 * client certificate, then reads the server's confirmation byte before handing out the socket.
 */
export function libvirtTlsDialer(options: LibvirtTlsDialerOptions): Dialer {
  const inner = tlsDialer({ ...options, port: options.port ?? LIBVIRT_TLS_PORT });
  return {
    target: inner.target,
    async dial(call: TransportCallOptions = {}): Promise<Duplex> {
      const started = Date.now();
      const socket = await inner.dial(call);
      const left =
        call.timeoutMs !== undefined ? Math.max(1, call.timeoutMs - (Date.now() - started)) : undefined;
      await readTlsConfirmation(socket, { signal: call.signal, timeoutMs: left, target: inner.target });
      return socket;
    },
  };
}

function sshAuthFromUri(u: LibvirtUri): SshConnectOptions['auth'] {
  if (u.keyfile) return { privateKey: u.keyfile };
  if (process.env.SSH_AUTH_SOCK) return { agent: true };
  for (const name of ['id_ed25519', 'id_ecdsa', 'id_rsa']) {
    const path = `${homedir()}/.ssh/${name}`;
    try {
      readFileSync(path);
      return { privateKey: path };
    } catch {
      // try the next one
    }
  }
  throw hvkitError(
    'INVALID_ARGUMENT',
    'No SSH credentials: give ?keyfile= in the URI, transport.ssh.connect.auth, or run an ssh-agent.',
    { adapter: ADAPTER_ID, operation: 'dial.ssh' },
  );
}

/**
 * Turns a libvirt URI into a dialer and the URI to open. For SSH this opens the SSH connection (unless
 * one is given), so it takes the caller's signal and timeout.
 *
 * @throws HvkitError `INVALID_ARGUMENT` (bad URI, unreadable key or certificate files), `UNSUPPORTED`
 *   (`ext` transport), and for SSH whatever `connectSsh()` throws.
 */
export async function resolveLibvirtTransport(
  uri: string | LibvirtUri,
  options: LibvirtTransportOptions = {},
  call: TransportCallOptions = {},
): Promise<ResolvedTransport> {
  const u = typeof uri === 'string' ? parseLibvirtUri(uri) : uri;
  const readOnly = options.readOnly === true;
  const allowNoVerify = options.insecureAllowUriNoVerify;
  if (allowNoVerify !== undefined && typeof allowNoVerify !== 'boolean') {
    throw new TypeError('transport.insecureAllowUriNoVerify must be a boolean.');
  }
  const noVerify = u.noVerify && allowNoVerify === true;
  const noVerifyIgnored = u.noVerify && !noVerify;
  const noop = async () => {};
  switch (u.transport) {
    case 'unix': {
      const path = localSocketPath(u, { readOnly });
      return {
        dialer: unixSocketDialer(path, { connectTimeoutMs: options.connectTimeoutMs }),
        openUri: u.openUri,
        uri: u,
        dispose: noop,
      };
    }
    case 'tcp':
      return {
        dialer: tcpDialer({
          host: u.host as string,
          port: u.port ?? LIBVIRT_TCP_PORT,
          connectTimeoutMs: options.connectTimeoutMs,
        }),
        openUri: u.openUri,
        uri: u,
        dispose: noop,
      };
    case 'tls': {
      const tls = options.tls ?? {};
      const note = tlsUriNote(u);
      const files = tlsFilePaths(tls.pkiPath ?? u.pkipath);
      let settings: TlsSettings;
      try {
        settings = {
          ca: tls.ca ?? readPem(files.ca, 'CA certificate'),
          cert: tls.cert ?? readPem(files.cert, 'client certificate'),
          key: tls.key ?? readPem(files.key, 'client key'),
          servername: tls.servername,
          pinnedSha256: tls.pinnedSha256,
          insecureSkipVerify: tls.insecureSkipVerify ?? noVerify,
        };
      } catch (error) {
        throw withNote(error, note);
      }
      const dialer = libvirtTlsDialer({
        ...settings,
        host: u.host as string,
        port: u.port,
        connectTimeoutMs: options.connectTimeoutMs,
      });
      return {
        dialer: annotatedDialer(dialer, (error) =>
          withNote(
            error,
            noVerifyIgnored && HvkitError.isInstance(error, 'AUTH_FAILED') ? NO_VERIFY_IGNORED : undefined,
            note,
          ),
        ),
        openUri: u.openUri,
        uri: u,
        dispose: noop,
      };
    }
    case 'ssh':
    case 'libssh':
    case 'libssh2': {
      const argv = sshRemoteArgv(u, { readOnly });
      const given = options.ssh?.client;
      if (given) {
        return {
          dialer: given.dialer(argv, options.ssh?.dialer),
          openUri: u.openUri,
          uri: u,
          dispose: noop,
          ssh: given,
        };
      }
      const overrides = options.ssh?.connect ?? {};
      const knownHostsFile = u.knownHosts ?? defaultKnownHostsFiles();
      const connectOptions: SshConnectOptions = {
        host: u.host as string,
        port: u.port ?? 22,
        username: u.user ?? process.env.USER ?? 'root',
        auth: overrides.auth ?? sshAuthFromUri(u),
        // libvirt's no_verify for SSH accepts unknown hosts and still checks the keys it knows.
        hostKey: noVerify ? { knownHostsFile, insecureAcceptUnknownHosts: true } : { knownHostsFile },
        ...overrides,
        signal: overrides.signal ?? call.signal,
        readyTimeout: overrides.readyTimeout ?? call.timeoutMs,
      };
      let client: SshClient;
      try {
        client = await connectSsh(connectOptions);
      } catch (error) {
        const hostKeyFailure =
          overrides.hostKey === undefined &&
          HvkitError.isInstance(error, 'AUTH_FAILED') &&
          String(error.backendCode).startsWith('HOST_KEY_');
        throw withNote(
          error,
          !hostKeyFailure
            ? undefined
            : noVerifyIgnored
              ? NO_VERIFY_IGNORED
              : noVerify
                ? "The URI's no_verify=1 accepts only hosts missing from known_hosts; a changed or revoked key is always refused."
                : undefined,
        );
      }
      let disposed = false;
      return {
        dialer: client.dialer(argv, options.ssh?.dialer),
        openUri: u.openUri,
        uri: u,
        dispose: async () => {
          if (disposed) return;
          disposed = true;
          await client.close({ timeoutMs: 5000 }).catch(() => {});
        },
        ssh: client,
      };
    }
    default:
      throw hvkitError(
        'UNSUPPORTED',
        `The ${u.transport} transport of ${redactLibvirtUri(u.uri)} is not supported.`,
        {
          adapter: ADAPTER_ID,
          operation: 'dial',
        },
      );
  }
}
