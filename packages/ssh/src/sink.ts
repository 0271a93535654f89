/**
 * A BackupSink that writes into a directory of a remote host over SSH, verifying every file on the
 * remote side before it gets its final name.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { BackupFile, BackupSink, HvkitError, SinkWriteOptions } from '@hvkit/core';
import {
  checkSignal,
  checkSinkFileName,
  checkSinkWriteOptions,
  HvkitError as HvkitErrorClass,
  hvkitError,
} from '@hvkit/core';
import type { SFTPWrapper } from 'ssh2';
import { connectionOf, type SshClient } from './client';
import { sftpCall, tempNameFor } from './files';
import { abortedError, messageOf } from './internal';

/** Options of {@link createSshSink}. */
export interface SshSinkOptions {
  /**
   * Check each file on the remote side before renaming it into place: its size (SFTP stat) and the
   * SHA-256 of the remote temporary file, computed on the remote host, must equal what was sent.
   * Default true. Without it only the size is checked.
   */
  verify?: boolean;
  /**
   * The remote SHA-256 tool. Default: the first present of `openssl` (`dgst -sha256`, uses the CPU's SHA
   * instructions, several times faster than coreutils), `sha256sum`, `shasum` (`-a 256`).
   */
  checksumCommand?: ChecksumTool;
  /**
   * How bytes travel: `exec` streams into `cat > temp` on an exec channel (default, fastest); `sftp`
   * writes through SFTP with pipelined requests (for accounts without a shell; `verify` still needs
   * `sha256sum` through exec).
   */
  method?: 'exec' | 'sftp';
  /** Create `remoteDir` and sub-directories as needed (default true). */
  mkdir?: boolean;
  /** Fail with TIMEOUT when the remote side accepts no data for this long (default 120000 ms). */
  idleTimeoutMs?: number;
  /** Milliseconds allowed for one short remote step: stat, rename, remove (default 60000). */
  stepTimeoutMs?: number;
  /** Remote checksum rate assumed to size the checksum timeout: 60 s + bytes / rate (default 20 MB/s). */
  verifyBytesPerSecond?: number;
}

/** A remote SHA-256 tool the sink can verify with. */
export type ChecksumTool = 'openssl' | 'sha256sum' | 'shasum';

const CHECKSUM_PREFERENCE: ChecksumTool[] = ['openssl', 'sha256sum', 'shasum'];

/** Each tool's argv before the path; all print `<hex> *<path>`. */
const CHECKSUM_ARGV: Record<ChecksumTool, string[]> = {
  openssl: ['openssl', 'dgst', '-sha256', '-r'],
  sha256sum: ['sha256sum', '-b'],
  shasum: ['shasum', '-a', '256', '-b'],
};

/** The sink returned by {@link createSshSink}. */
export interface SshSink extends BackupSink {
  readonly kind: 'ssh';
  /** `ssh://user@host:port/<remoteDir>`. */
  readonly location: string;
  /** The remote directory files are written into. */
  readonly remoteDir: string;
  /** Removes a file written earlier; a missing file is fine. */
  removeFile(name: string, options?: { signal?: AbortSignal }): Promise<void>;
}

/** Resolves when `stream` can take more data; rejects when it closes first. */
function drained(stream: NodeJS.WritableStream & { destroyed?: boolean }): Promise<void> {
  return new Promise((resolve, reject) => {
    if (stream.destroyed) {
      reject(new Error('remote side closed its input'));
      return;
    }
    const cleanup = () => {
      stream.removeListener('drain', onDrain);
      stream.removeListener('close', onClose);
      stream.removeListener('error', onClose);
    };
    const onDrain = () => {
      cleanup();
      resolve();
    };
    const onClose = () => {
      cleanup();
      reject(new Error('remote side closed its input'));
    };
    stream.on('drain', onDrain);
    stream.on('close', onClose);
    stream.on('error', onClose);
  });
}

/** Races `promise` against an abort signal and an optional idle timer. */
function guard<T>(
  promise: Promise<T>,
  signal: AbortSignal | undefined,
  idleMs: number | undefined,
  onTimeout: () => HvkitError,
  onAbort: () => HvkitError,
): Promise<T> {
  if (!signal && idleMs === undefined) return promise;
  return new Promise<T>((resolve, reject) => {
    let timer: NodeJS.Timeout | undefined;
    const abort = () => {
      done();
      reject(onAbort());
    };
    const done = () => {
      if (timer) clearTimeout(timer);
      signal?.removeEventListener('abort', abort);
    };
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort, { once: true });
    if (idleMs !== undefined) {
      timer = setTimeout(() => {
        done();
        reject(onTimeout());
      }, idleMs);
    }
    promise.then(
      (v) => {
        done();
        resolve(v);
      },
      (e) => {
        done();
        reject(e);
      },
    );
  });
}

/** A destination for the bytes of one file. */
interface Upload {
  write(chunk: Buffer): Promise<void> | undefined;
  /** All bytes written: wait for the remote side to have them on disk. */
  finish(): Promise<void>;
  /** Stops the transfer (abort/failure); resolves once the remote writer is gone. */
  cancel(): Promise<void>;
}

/**
 * Creates a BackupSink writing to `remoteDir` on the host of `client`.
 *
 * Each file streams to a temporary name beside its final one (`.name.<random>.hvkit-tmp`, mode 0600),
 * pulling from the source only as fast as the remote side takes it. The sink hashes the bytes while
 * sending; then checks the remote temporary file's size and (with `verify`, the default) its SHA-256
 * computed on the remote host (`openssl dgst -sha256` or `sha256sum`), and only then renames it to its final name
 * (`posix-rename@openssh.com`, atomic). On a mismatch, an abort or any failure it removes the temporary
 * file and rejects, so no file that looks complete is ever left behind.
 *
 * @example
 * const sink = createSshSink(ssh, '/srv/backups/vm1', { verify: true });
 * const file = await sink.writeFile('disk0.qcow2', source, { signal });
 */
export function createSshSink(client: SshClient, remoteDir: string, options: SshSinkOptions = {}): SshSink {
  const conn = connectionOf(client);
  if (typeof remoteDir !== 'string' || remoteDir.length === 0)
    throw new TypeError('remoteDir must be a non-empty string');
  if (remoteDir.includes('\0')) {
    throw hvkitError('INVALID_ARGUMENT', 'remoteDir contains a NUL byte', { operation: 'sink.create' });
  }
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  const verify = options.verify ?? true;
  const method = options.method ?? 'exec';
  if (method !== 'exec' && method !== 'sftp') throw new TypeError("method must be 'exec' or 'sftp'");
  if (options.checksumCommand !== undefined && !CHECKSUM_PREFERENCE.includes(options.checksumCommand)) {
    throw new TypeError(`checksumCommand must be one of ${CHECKSUM_PREFERENCE.join(', ')}`);
  }
  const mkdir = options.mkdir ?? true;
  const idleTimeoutMs = options.idleTimeoutMs ?? 120_000;
  const stepTimeoutMs = options.stepTimeoutMs ?? 60_000;
  const verifyRate = options.verifyBytesPerSecond ?? 20_000_000;
  const location = `${conn.target}${remoteDir.startsWith('/') ? '' : '/'}${remoteDir}`;
  const madeDirs = new Map<string, Promise<void>>();
  let checksumTool: Promise<ChecksumTool> | undefined;
  const ensureDir = (dir: string, signal: AbortSignal | undefined) => {
    let p = madeDirs.get(dir);
    if (!p) {
      p = client.files.mkdir(dir, { recursive: true, timeoutMs: stepTimeoutMs, signal });
      madeDirs.set(dir, p);
      p.catch(() => madeDirs.delete(dir));
    }
    return p;
  };

  /** Picks the remote SHA-256 tool once per sink. */
  const remoteChecksumTool = (signal: AbortSignal | undefined): Promise<ChecksumTool> => {
    if (!checksumTool) {
      const candidates = options.checksumCommand ? [options.checksumCommand] : CHECKSUM_PREFERENCE;
      const script = `for t in "$@"; do if command -v "$t" >/dev/null 2>&1; then echo "$t"; exit 0; fi; done; exit 127`;
      checksumTool = client.exec
        .exec({ argv: ['sh', '-c', script, 'hvkit-probe', ...candidates], timeoutMs: stepTimeoutMs, signal })
        .then((r) => {
          const tool = r.stdout.toString().trim() as ChecksumTool;
          if (r.exitCode !== 0 || !candidates.includes(tool)) {
            throw hvkitError(
              'UNSUPPORTED',
              `sink ${location}: verify needs ${candidates.join(', ')} on the remote host, none found; pass verify: false to check sizes only`,
              { operation: 'sink.writeFile', backendCode: r.exitCode ?? undefined },
            );
          }
          return tool;
        });
      checksumTool.catch(() => {
        checksumTool = undefined;
      });
    }
    return checksumTool;
  };

  const execUpload = (tmp: string, signal: AbortSignal | undefined): Upload => {
    // The path travels as a positional parameter: the script text is constant, nothing is interpolated.
    const proc = client.exec.spawn({
      argv: ['sh', '-c', 'umask 077 && exec cat > "$1"', 'hvkit-sink', tmp],
      signal,
    });
    proc.stdout.resume();
    // wait() resolves with the tail of stderr; the stream itself is not needed.
    proc.stderr.resume();
    const waited = proc.wait();
    waited.catch(() => {});
    const failure = async (): Promise<HvkitError> => {
      const r = await waited.catch((e: unknown) => e);
      if (HvkitErrorClass.isInstance(r)) return r;
      const res = r as Awaited<typeof waited>;
      const text = res.stderr.subarray(-4096).toString('utf8').trim();
      const code = /permission denied|read-only file system|operation not permitted/i.test(text)
        ? 'PERMISSION_DENIED'
        : /no such file or directory/i.test(text)
          ? 'NOT_FOUND'
          : 'REMOTE';
      return hvkitError(
        code,
        `sink ${location}: writing ${tmp} failed (exit ${res.exitCode ?? res.signal})${text ? `: ${text}` : ''}`,
        {
          operation: 'sink.writeFile',
          backendCode: res.exitCode ?? res.signal ?? undefined,
          backendMessage: text,
        },
      );
    };
    return {
      write(chunk) {
        if (proc.stdin.destroyed) {
          return failure().then((e) => {
            throw e;
          });
        }
        if (proc.stdin.write(chunk)) return undefined;
        return drained(proc.stdin).catch(async () => {
          throw await failure();
        });
      },
      async finish() {
        await new Promise<void>((resolve) => proc.stdin.end(resolve));
        const r = await waited;
        if (r.exitCode !== 0) throw await failure();
      },
      async cancel() {
        proc.kill();
        // Wait until the remote writer is gone, so it cannot create the temporary file after its removal.
        await Promise.race([proc.closed, new Promise((r) => setTimeout(r, 15_000).unref())]);
      },
    };
  };

  const sftpUpload = async (tmp: string, signal: AbortSignal | undefined): Promise<Upload> => {
    let session: SFTPWrapper | undefined;
    const handle = await sftpCall<Buffer>(
      conn,
      'sink.writeFile',
      tmp,
      { signal, timeoutMs: stepTimeoutMs },
      (s, cb) => {
        session = s;
        s.open(tmp, 'w', { mode: 0o600 }, (err, h) => cb(err, h));
      },
    );
    const sftp = session as SFTPWrapper;
    const maxInflight = 8 * 1024 * 1024;
    let inflight = 0;
    let offset = 0;
    let error: HvkitError | undefined;
    let waiter: (() => void) | undefined;
    const wake = () => {
      const w = waiter;
      waiter = undefined;
      w?.();
    };
    const untrack = conn.track((e) => {
      error ??= e;
      wake();
    });
    const waitBelow = (limit: number) =>
      new Promise<void>((resolve, reject) => {
        const check = () => {
          if (error) reject(error);
          else if (inflight <= limit) resolve();
          else waiter = check;
        };
        check();
      });
    const close = () =>
      new Promise<void>((resolve) => {
        try {
          sftp.close(handle, () => resolve());
        } catch {
          resolve();
        }
      });
    return {
      write(chunk) {
        if (error) return Promise.reject(error);
        const len = chunk.length;
        inflight += len;
        sftp.write(handle, chunk, 0, len, offset, (err) => {
          inflight -= len;
          if (err && !error)
            error = hvkitError('REMOTE', `sink ${location}: SFTP write of ${tmp} failed: ${messageOf(err)}`, {
              operation: 'sink.writeFile',
              cause: err,
              backendCode: (err as { code?: number }).code,
            });
          wake();
        });
        offset += len;
        return inflight > maxInflight ? waitBelow(maxInflight) : undefined;
      },
      async finish() {
        try {
          await waitBelow(0);
        } finally {
          untrack();
        }
        await sftpCall<void>(conn, 'sink.writeFile', tmp, { signal, timeoutMs: stepTimeoutMs }, (s, cb) =>
          s.close(handle, (err) => cb(err)),
        );
      },
      async cancel() {
        error ??= hvkitError('ABORTED', 'cancelled', { operation: 'sink.writeFile' });
        untrack();
        wake();
        await close();
      },
    };
  };

  const removeQuietly = async (path: string) => {
    try {
      await client.files.remove(path, { timeoutMs: stepTimeoutMs });
    } catch {
      // Best effort: the connection may be gone. The temporary name never looks like a finished file.
    }
  };

  return {
    kind: 'ssh',
    location,
    remoteDir,

    async writeFile(
      name: string,
      source: AsyncIterable<Uint8Array>,
      writeOptions: SinkWriteOptions = {},
    ): Promise<BackupFile> {
      checkSinkFileName(name);
      if (
        source === null ||
        typeof (source as AsyncIterable<Uint8Array>)?.[Symbol.asyncIterator] !== 'function'
      ) {
        throw new TypeError('source must be an AsyncIterable<Uint8Array>');
      }
      checkSinkWriteOptions(writeOptions);
      const { signal, expectedBytes, onProgress } = writeOptions;
      const op = 'sink.writeFile';
      const aborted = () => abortedError(op, signal, location);
      if (signal?.aborted) throw aborted();
      conn.ensureOpen(op);

      const finalPath = posix.join(remoteDir, name);
      const dir = posix.dirname(finalPath);
      if (mkdir) await ensureDir(dir, signal);
      const tool = verify ? await remoteChecksumTool(signal) : undefined;
      const tmp = tempNameFor(finalPath);
      const hash = createHash('sha256');
      let bytes = 0;
      let upload: Upload | undefined;
      const iterator = source[Symbol.asyncIterator]();
      let sourceDone = false;
      let sourceError = false;
      try {
        upload = method === 'exec' ? execUpload(tmp, signal) : await sftpUpload(tmp, signal);
        const idleError = () =>
          hvkitError('TIMEOUT', `sink ${location}: the remote side took no data for ${idleTimeoutMs} ms`, {
            operation: op,
            details: { idleTimeoutMs },
          });
        for (;;) {
          let next: IteratorResult<Uint8Array>;
          try {
            next = await guard(iterator.next(), signal, undefined, idleError, aborted);
          } catch (e) {
            if (!HvkitErrorClass.isInstance(e, 'ABORTED')) sourceError = true;
            throw e;
          }
          if (next.done) {
            sourceDone = true;
            break;
          }
          const value = next.value as unknown;
          if (!(value instanceof Uint8Array)) throw new TypeError('source must yield Uint8Array chunks');
          if (value.length === 0) continue;
          const chunk = Buffer.isBuffer(value)
            ? value
            : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
          bytes += chunk.length;
          if (expectedBytes !== undefined && bytes > expectedBytes) {
            throw hvkitError(
              'PROTOCOL',
              `sink ${location}: ${name} is longer than the expected ${expectedBytes} bytes`,
              {
                operation: op,
                details: { expectedBytes },
              },
            );
          }
          hash.update(chunk);
          const pending = upload.write(chunk);
          if (pending) await guard(pending, signal, idleTimeoutMs, idleError, aborted);
          onProgress?.({ phase: 'write', processedBytes: bytes, totalBytes: expectedBytes, file: name });
        }
        if (expectedBytes !== undefined && bytes !== expectedBytes) {
          throw hvkitError(
            'PROTOCOL',
            `sink ${location}: ${name} has ${bytes} bytes, expected ${expectedBytes}`,
            {
              operation: op,
              details: { expectedBytes, bytes },
            },
          );
        }
        await guard(upload.finish(), signal, idleTimeoutMs, idleError, aborted);
        const sha256 = hash.digest('hex');

        // Verify on the remote side.
        onProgress?.({ phase: 'verify', processedBytes: bytes, totalBytes: bytes, file: name });
        const st = await client.files.stat(tmp, { signal, timeoutMs: stepTimeoutMs });
        if (st.size !== bytes) {
          throw hvkitError(
            'PROTOCOL',
            `sink ${location}: ${name} arrived with ${st.size} bytes, ${bytes} were sent`,
            {
              operation: op,
              backendCode: 'SIZE_MISMATCH',
              details: { sent: bytes, received: st.size },
            },
          );
        }
        if (tool) {
          // A relative path gets './' so that no tool reads it as an option.
          const path = tmp.startsWith('/') ? tmp : `./${tmp}`;
          const r = await client.exec.exec({
            argv: [...CHECKSUM_ARGV[tool], path],
            signal,
            timeoutMs: 60_000 + Math.ceil((bytes / verifyRate) * 1000),
          });
          const m = /^\\?([0-9a-f]{64})\s/.exec(r.stdout.toString('latin1'));
          if (r.exitCode !== 0 || !m) {
            throw hvkitError(
              'REMOTE',
              `sink ${location}: ${tool} of ${tmp} failed (exit ${r.exitCode}): ${r.stderr.toString().trim()}`,
              {
                operation: op,
                backendCode: r.exitCode ?? r.signal ?? undefined,
              },
            );
          }
          if (m[1] !== sha256) {
            throw hvkitError(
              'PROTOCOL',
              `sink ${location}: ${name} arrived corrupted: sha256 ${m[1]} on the remote side, ${sha256} sent`,
              {
                operation: op,
                backendCode: 'SHA256_MISMATCH',
                details: { sent: sha256, received: m[1] },
              },
            );
          }
        }
        if (signal?.aborted) throw aborted();
        await client.files.rename(tmp, finalPath, { signal, timeoutMs: stepTimeoutMs });
        return { name, bytes, sha256 };
      } catch (e) {
        if (upload) await upload.cancel().catch(() => {});
        await removeQuietly(tmp);
        if (!sourceDone && !sourceError) {
          // Let the source clean up (e.g. close its file); do not wait on a source that hangs.
          Promise.resolve()
            .then(() => iterator.return?.())
            .catch(() => {});
        }
        // The source's own errors reach the caller unchanged.
        if (sourceError || HvkitErrorClass.isInstance(e) || e instanceof TypeError) throw e;
        throw hvkitError('REMOTE', `sink ${location}: writing ${name} failed: ${messageOf(e)}`, {
          operation: op,
          cause: e,
        });
      }
    },

    async removeFile(name: string, removeOptions: { signal?: AbortSignal } = {}): Promise<void> {
      checkSinkFileName(name);
      checkSignal(removeOptions.signal);
      try {
        await client.files.remove(posix.join(remoteDir, name), {
          signal: removeOptions.signal,
          timeoutMs: stepTimeoutMs,
        });
      } catch (e) {
        if (HvkitErrorClass.isInstance(e, 'NOT_FOUND')) return;
        throw e;
      }
    },
  };
}
