/**
 * cgroupfs over SSH: reads through the connection's SFTP `files`, writes through its `exec` with `dd`.
 * SFTP cannot write a cgroup file (its writer creates a temporary file and renames it, and an SFTP
 * failure carries no errno), so a value is written in place by `dd of=PATH conv=notrunc,nocreat` with
 * the value on stdin in one block, and the kernel's errno is read back from dd's message
 * (`dd: error writing '…': Invalid argument` → `EINVAL`). One SSH connection carries everything.
 */

import {
  type ExecTransport,
  type FileEntry,
  type FilesTransport,
  hvkitError,
  type TransportCallOptions,
} from '@hvkit/core';
import { ADAPTER_ID, ERRNO_CODES } from '../errors';

/** What {@link sshCgroupFiles} needs of an SSH connection: `connectSsh()`'s `files` and `exec`. */
export interface SshCgroupConnection {
  readonly files: FilesTransport;
  readonly exec: ExecTransport;
  /** True once the connection is closed or lost (`SshClient.closed`); the adapter then closes too. */
  readonly closed?: boolean;
}

/** glibc's `strerror` texts of the errnos a cgroup write can end with, as dd prints them. */
export const STRERROR_ERRNO: Readonly<Record<string, string>> = Object.freeze({
  'Invalid argument': 'EINVAL',
  'Numerical result out of range': 'ERANGE',
  'Device or resource busy': 'EBUSY',
  'No such device': 'ENODEV',
  'No such file or directory': 'ENOENT',
  'Permission denied': 'EACCES',
  'Operation not permitted': 'EPERM',
  'Resource temporarily unavailable': 'EAGAIN',
  'No space left on device': 'ENOSPC',
  'Read-only file system': 'EROFS',
  'Not a directory': 'ENOTDIR',
  'Is a directory': 'EISDIR',
  'Input/output error': 'EIO',
});

/** The errno named at the end of a dd error message (`…: Invalid argument`), when it is a known one. */
export function errnoFromMessage(stderr: string): string | undefined {
  for (const line of stderr.split('\n')) {
    const at = line.lastIndexOf(': ');
    if (at < 0) continue;
    const errno = STRERROR_ERRNO[line.slice(at + 2).trim()];
    if (errno) return errno;
  }
  return undefined;
}

/**
 * A FilesTransport for cgroup trees on an SSH host: `readFile`, `list` and `stat` over SFTP, `writeFile`
 * in place with `dd` (errno kept as `backendCode`), `remove` (`rmdir`/`rm -f`). The connection stays the
 * caller's to close.
 *
 * @example
 * await using ssh = await connectSsh({ host, username: 'root', auth, hostKey });
 * await using cg = await connect({ ssh });
 */
export function sshCgroupFiles(ssh: SshCgroupConnection): FilesTransport {
  if (typeof ssh !== 'object' || ssh === null || typeof ssh.files?.readFile !== 'function') {
    throw new TypeError(`${ADAPTER_ID}: ssh must be an SSH client with files and exec (connectSsh()).`);
  }
  if (typeof ssh.exec?.exec !== 'function') {
    throw new TypeError(`${ADAPTER_ID}: ssh must be an SSH client with files and exec (connectSsh()).`);
  }
  const { files, exec } = ssh;
  const run = async (argv: string[], call: TransportCallOptions | undefined, stdin?: Buffer) => {
    const result = await exec.exec({
      argv,
      ...(stdin ? { stdin } : {}),
      signal: call?.signal,
      timeoutMs: call?.timeoutMs,
      maxBuffer: 64 * 1024,
    });
    if (result.exitCode === 0) return;
    const stderr = result.stderr.toString('utf8').slice(0, 2000);
    const errno = errnoFromMessage(stderr);
    const code = (errno ? ERRNO_CODES[errno] : undefined) ?? 'REMOTE';
    throw hvkitError(code, `${argv[0]} on ${exec.target} failed${errno ? ` (${errno})` : ''}.`, {
      adapter: ADAPTER_ID,
      operation: `ssh.${argv[0]}`,
      backendCode: errno,
      backendMessage: stderr.trim(),
    });
  };
  return {
    target: files.target,
    readFile: (path, call) => files.readFile(path, call),
    list: (path, call): Promise<FileEntry[]> => files.list(path, call),
    stat: (path, call) => files.stat(path, call),
    async writeFile(path, data, call) {
      if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
        throw new TypeError('writeFile: data must be a string or a Uint8Array.');
      }
      const bytes = typeof data === 'string' ? Buffer.from(data) : Buffer.from(data);
      if (bytes.length === 0) throw new TypeError('writeFile: a cgroup value cannot be empty.');
      await run(
        [
          'dd',
          `of=${path}`,
          `bs=${bytes.length}`,
          'count=1',
          'iflag=fullblock',
          'conv=notrunc,nocreat',
          'status=none',
        ],
        call,
        bytes,
      );
    },
    async remove(path, call) {
      await run(['sh', '-c', 'if [ -d "$1" ]; then rmdir -- "$1"; else rm -f -- "$1"; fi', 'sh', path], call);
    },
  };
}
