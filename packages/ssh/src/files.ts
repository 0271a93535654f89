/**
 * FilesTransport over SFTP, on the connection's shared SFTP session. SFTP status codes map to hvkit
 * codes: NO_SUCH_FILE -> NOT_FOUND, PERMISSION_DENIED -> PERMISSION_DENIED, OP_UNSUPPORTED -> UNSUPPORTED,
 * FAILURE -> REMOTE, connection loss -> CONNECTION_LOST.
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import { PassThrough, type Readable } from 'node:stream';
import type { FileEntry, FilesTransport, HvkitError, TransportCallOptions } from '@hvkit/core';
import { checkSignal, hvkitError, truncateUtf8 } from '@hvkit/core';
import type { Attributes, SFTPWrapper } from 'ssh2';
import type { SshConnection } from './connection';
import { abortedError, checkTimeout, Deadline, sftpError } from './internal';

/** The FilesTransport of an SSH connection (`client.files`), with a few SFTP extras. */
export interface SshFilesTransport extends FilesTransport {
  /** `ssh://user@host:port`. */
  readonly target: string;
  /** Streams a remote file; the stream fails with an HvkitError. */
  createReadStream(path: string, options?: TransportCallOptions & { start?: number }): Promise<Readable>;
  /** Removes a file, a symlink or an empty directory. NOT_FOUND when it does not exist. */
  remove(path: string, options?: TransportCallOptions): Promise<void>;
  /** Creates a directory (with `recursive`, its missing parents too; an existing directory is then fine). */
  mkdir(path: string, options?: TransportCallOptions & { recursive?: boolean; mode?: number }): Promise<void>;
  /** Renames `from` to `to`, replacing `to` atomically when the server has `posix-rename@openssh.com`. */
  rename(from: string, to: string, options?: TransportCallOptions): Promise<void>;
}

const S_IFMT = 0o170000;

/** The type of a file from its SFTP mode bits. */
export function entryType(mode: number): FileEntry['type'] {
  switch (mode & S_IFMT) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'directory';
    case 0o120000:
      return 'symlink';
    default:
      return 'other';
  }
}

function toEntry(name: string, attrs: Attributes): FileEntry {
  const entry: FileEntry = { name, type: entryType(attrs.mode), size: attrs.size };
  if (typeof attrs.mtime === 'number') entry.mtime = new Date(attrs.mtime * 1000);
  return entry;
}

function checkPath(path: unknown, what = 'path'): asserts path is string {
  if (typeof path !== 'string' || path.length === 0)
    throw new TypeError(`${what} must be a non-empty string`);
  if (path.includes('\0')) {
    throw hvkitError('INVALID_ARGUMENT', `${what} contains a NUL byte`, { operation: 'ssh.files' });
  }
}

function checkOptions(options: TransportCallOptions | undefined): void {
  if (options === undefined) return;
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  checkSignal(options.signal);
  checkTimeout(options.timeoutMs);
}

/** Runs one SFTP request under a deadline; maps its error. */
export async function sftpCall<T>(
  conn: SshConnection,
  operation: string,
  path: string,
  options: TransportCallOptions | undefined,
  fn: (sftp: SFTPWrapper, cb: (err: Error | undefined | null, value?: T) => void) => void,
): Promise<T> {
  const deadline = new Deadline(
    operation,
    conn.target,
    options?.signal,
    options?.timeoutMs ?? conn.sftpTimeoutMs,
  );
  try {
    deadline.throwIfFired();
    const sftp = await conn.sftp(deadline, operation);
    return await deadline.race(
      new Promise<T>((resolve, reject) => {
        const untrack = conn.track(reject);
        try {
          fn(sftp, (err, value) => {
            untrack();
            if (err) reject(sftpError(err, operation, path, conn.target, conn.closed));
            else resolve(value as T);
          });
        } catch (e) {
          untrack();
          reject(sftpError(e, operation, path, conn.target, conn.closed));
        }
      }),
    );
  } finally {
    deadline.dispose();
  }
}

/**
 * A temporary name beside `path`: `.name.<random>.hvkit-tmp`, with `name` cut to 200 bytes so the
 * temporary name stays within the 255 bytes a file name may have.
 */
export function tempNameFor(path: string): string {
  return posix.join(
    posix.dirname(path),
    `.${truncateUtf8(posix.basename(path), 200)}.${randomBytes(6).toString('hex')}.hvkit-tmp`,
  );
}

/** Builds `client.files` for a connection. */
export function createFilesTransport(conn: SshConnection): SshFilesTransport {
  const files: SshFilesTransport = {
    target: conn.target,

    async readFile(path, options) {
      checkPath(path);
      checkOptions(options);
      return sftpCall<Buffer>(conn, 'ssh.files.readFile', path, options, (sftp, cb) =>
        sftp.readFile(path, (err, data) => cb(err, data)),
      );
    },

    async writeFile(path, data, options) {
      checkPath(path);
      checkOptions(options);
      if (typeof data !== 'string' && !(data instanceof Uint8Array)) {
        throw new TypeError('data must be a string or a Uint8Array');
      }
      const mode = options?.mode;
      if (mode !== undefined && (!Number.isInteger(mode) || mode < 0 || mode > 0o7777)) {
        throw new TypeError('mode must be an integer between 0 and 0o7777');
      }
      const buffer =
        typeof data === 'string'
          ? Buffer.from(data)
          : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
      const tmp = tempNameFor(path);
      const op = 'ssh.files.writeFile';
      try {
        await sftpCall<void>(conn, op, tmp, options, (sftp, cb) =>
          sftp.writeFile(tmp, buffer, { mode: mode ?? 0o644 }, (err) => cb(err)),
        );
        // The server's umask applied at open; set the mode asked for exactly.
        if (mode !== undefined) {
          await sftpCall<void>(conn, op, tmp, options, (sftp, cb) => sftp.chmod(tmp, mode, (err) => cb(err)));
        }
        await files.rename(tmp, path, options);
      } catch (e) {
        await files.remove(tmp, { timeoutMs: 10_000 }).catch(() => {});
        throw e;
      }
    },

    async list(path, options) {
      checkPath(path);
      checkOptions(options);
      const list = await sftpCall<{ filename: string; attrs: Attributes }[]>(
        conn,
        'ssh.files.list',
        path,
        options,
        (sftp, cb) => sftp.readdir(path, (err, l) => cb(err, l)),
      );
      return list
        .filter((e) => e.filename !== '.' && e.filename !== '..')
        .map((e) => toEntry(e.filename, e.attrs))
        .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
    },

    async stat(path, options) {
      checkPath(path);
      checkOptions(options);
      const attrs = await sftpCall<Attributes>(conn, 'ssh.files.stat', path, options, (sftp, cb) =>
        sftp.stat(path, (err, s) => cb(err, s)),
      );
      return toEntry(posix.basename(path) || path, attrs);
    },

    async createReadStream(path, options) {
      checkPath(path);
      checkOptions(options);
      const start = options?.start;
      if (start !== undefined && (!Number.isInteger(start) || start < 0)) {
        throw new TypeError('start must be a non-negative integer');
      }
      const op = 'ssh.files.createReadStream';
      let session: SFTPWrapper | undefined;
      const handle = await sftpCall<Buffer>(conn, op, path, options, (sftp, cb) => {
        session = sftp;
        sftp.open(path, 'r', (err, h) => cb(err, h));
      });
      const sftp = session as SFTPWrapper;
      const source = sftp.createReadStream(path, { handle, start: start ?? 0, autoClose: true });
      const out = new PassThrough();
      let failed = false;
      const fail = (error: HvkitError) => {
        if (failed) return;
        failed = true;
        untrack();
        source.destroy();
        out.destroy(error);
      };
      const untrack = conn.track(fail);
      source.on('error', (e: Error) => fail(sftpError(e, op, path, conn.target, conn.closed)));
      source.on('end', () => untrack());
      out.on('close', () => {
        untrack();
        if (!source.destroyed) source.destroy();
      });
      const signal = options?.signal;
      if (signal) {
        const onAbort = () => fail(abortedError(op, signal, conn.target));
        signal.addEventListener('abort', onAbort, { once: true });
        out.once('close', () => signal.removeEventListener('abort', onAbort));
      }
      source.pipe(out);
      return out;
    },

    async remove(path, options) {
      checkPath(path);
      checkOptions(options);
      const op = 'ssh.files.remove';
      const attrs = await sftpCall<Attributes>(conn, op, path, options, (sftp, cb) =>
        sftp.lstat(path, (err, s) => cb(err, s)),
      );
      if (entryType(attrs.mode) === 'directory') {
        await sftpCall<void>(conn, op, path, options, (sftp, cb) => sftp.rmdir(path, (err) => cb(err)));
      } else {
        await sftpCall<void>(conn, op, path, options, (sftp, cb) => sftp.unlink(path, (err) => cb(err)));
      }
    },

    async mkdir(path, options) {
      checkPath(path);
      checkOptions(options);
      const op = 'ssh.files.mkdir';
      const mode = options?.mode ?? 0o755;
      const make = (dir: string) =>
        sftpCall<void>(conn, op, dir, options, (sftp, cb) => sftp.mkdir(dir, { mode }, (err) => cb(err)));
      const isDir = async (dir: string) => {
        try {
          return (await files.stat(dir, options)).type === 'directory';
        } catch {
          return false;
        }
      };
      if (!options?.recursive) return make(path);
      if (await isDir(path)) return;
      const parent = posix.dirname(path);
      if (parent !== path && parent !== '.' && parent !== '/') await files.mkdir(parent, options);
      try {
        await make(path);
      } catch (e) {
        // Created meanwhile by someone else is fine.
        if (!(await isDir(path))) throw e;
      }
    },

    async rename(from, to, options) {
      checkPath(from, 'from');
      checkPath(to, 'to');
      checkOptions(options);
      const op = 'ssh.files.rename';
      const deadline = new Deadline(
        op,
        conn.target,
        options?.signal,
        options?.timeoutMs ?? conn.sftpTimeoutMs,
      );
      let sftp: SFTPWrapper;
      try {
        sftp = await conn.sftp(deadline, op);
      } finally {
        deadline.dispose();
      }
      const extensions = (sftp as unknown as { _extensions?: Record<string, string> })._extensions ?? {};
      if (extensions['posix-rename@openssh.com'] !== undefined) {
        await sftpCall<void>(conn, op, to, options, (s, cb) =>
          s.ext_openssh_rename(from, to, (err) => cb(err)),
        );
        return;
      }
      // Plain SFTP rename refuses to replace: remove the target first (not atomic).
      try {
        await sftpCall<void>(conn, op, to, options, (s, cb) => s.rename(from, to, (err) => cb(err)));
      } catch (e) {
        const exists = await files.stat(to, options).then(
          () => true,
          () => false,
        );
        if (!exists) throw e;
        await sftpCall<void>(conn, op, to, options, (s, cb) => s.unlink(to, (err) => cb(err)));
        await sftpCall<void>(conn, op, to, options, (s, cb) => s.rename(from, to, (err) => cb(err)));
      }
    },
  };
  return files;
}
