/**
 * `connectSsh()` and the `SshClient` it returns: one authenticated connection whose channels carry
 * exec calls, SFTP and dialed streams side by side.
 */

import { checkSignal, type HvkitError, redactError } from '@hvkit/core';
import {
  openConnection,
  type SshConnection,
  type SshConnectOptions,
  type SshHostKeyInfo,
  sshAuthSecrets,
} from './connection';
import { createDialer, type SshDialer, type SshDialerOptions } from './dialer';
import { createExecTransport, type SshExecTransport } from './exec';
import { createFilesTransport, type SshFilesTransport } from './files';
import { checkTimeout } from './internal';

/** An open SSH connection. Close it with `close()` or `await using`. */
export interface SshClient extends AsyncDisposable {
  /** `ssh://user@host:port` (never contains a secret). */
  readonly target: string;
  /** The server's verified host key. */
  readonly hostKey: SshHostKeyInfo;
  /** True once the connection is closed or lost. */
  readonly closed: boolean;
  /**
   * Calls `listener` once, with the CONNECTION_LOST error, when the connection is closed or lost (in a
   * microtask when it already is). Returns the function that unregisters it.
   */
  onClose(listener: (error: HvkitError) => void): () => void;
  /** Runs commands; every argument is POSIX single-quoted. */
  readonly exec: SshExecTransport;
  /** Reads and writes files over SFTP. */
  readonly files: SshFilesTransport;
  /**
   * A Dialer whose streams are `argv`'s stdin/stdout on the remote host, e.g.
   * `client.dialer(['virt-ssh-helper', 'qemu:///system'])`.
   */
  dialer(argv: readonly string[], options?: SshDialerOptions): SshDialer;
  /** Closes the connection; pending calls fail with CONNECTION_LOST. Idempotent. */
  close(options?: { signal?: AbortSignal; timeoutMs?: number }): Promise<void>;
}

const connections = new WeakMap<object, SshConnection>();

/** The connection behind a client (package-internal). */
export function connectionOf(client: SshClient): SshConnection {
  const conn = connections.get(client);
  if (!conn) throw new TypeError('not an SshClient returned by connectSsh()');
  return conn;
}

/**
 * Connects to an SSH server, verifies its host key and logs in.
 *
 * @example
 * await using ssh = await connectSsh({
 *   host: 'kvm1.example.net',
 *   username: 'root',
 *   auth: { privateKey: '/root/.ssh/id_ed25519' },
 *   hostKey: { knownHostsFile: '/root/.ssh/known_hosts' },
 * });
 * const { stdout } = await ssh.exec.exec({ argv: ['virsh', 'list', '--all'] });
 *
 * @throws HvkitError AUTH_FAILED (credentials refused; or the host key is changed, revoked or unknown,
 *   with backendCode `HOST_KEY_MISMATCH` / `HOST_KEY_REVOKED` / `HOST_KEY_UNKNOWN` and the offered
 *   fingerprint in the message), CONNECTION_LOST (unreachable), TIMEOUT (`readyTimeout`), ABORTED,
 *   PROTOCOL (no common algorithms), INVALID_ARGUMENT (unreadable key file, bad fingerprint).
 * @throws TypeError when options are malformed or hold a key this function does not know (also inside
 *   `auth` and `hostKey`). No error message holds the password or passphrase, even when the server's
 *   disconnect message echoes them.
 */
export async function connectSsh(options: SshConnectOptions): Promise<SshClient> {
  // A server's disconnect message reaches the error; one that echoes the password must not leak it.
  const conn = await openConnection(options).catch((error: unknown) => {
    throw redactError(error, sshAuthSecrets(options?.auth));
  });
  const exec = createExecTransport(conn);
  const files = createFilesTransport(conn);
  const client: SshClient = {
    target: conn.target,
    hostKey: conn.hostKey,
    get closed() {
      return conn.closed;
    },
    onClose(listener) {
      if (typeof listener !== 'function') throw new TypeError('listener must be a function');
      return conn.onClose(listener);
    },
    exec,
    files,
    dialer(argv, dialerOptions) {
      return createDialer(conn, argv, dialerOptions);
    },
    async close(closeOptions) {
      checkSignal(closeOptions?.signal);
      checkTimeout(closeOptions?.timeoutMs);
      await conn.close(closeOptions?.timeoutMs ?? 5000);
    },
    async [Symbol.asyncDispose]() {
      await conn.close();
    },
  };
  connections.set(client, conn);
  return client;
}
