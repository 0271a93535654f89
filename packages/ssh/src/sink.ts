/**
 * A BackupSink that writes into a directory of a remote host over SSH, verifying every file on the
 * remote side before it gets its final name.
 */
import { createHash } from 'node:crypto';
import { posix } from 'node:path';
import type { BackupFile, BackupSink, HvkitError, SinkWriteOptions } from '@hvkit/core';
import {
  BACKUP_MANIFEST_FILE,
  checkRemoveIncompleteArgs,
  checkSignal,
  checkSinkFileName,
  checkSinkWriteOptions,
  HvkitError as HvkitErrorClass,
  hvkitError,
  sinkPathError,
} from '@hvkit/core';
import type { Attributes, SFTPWrapper } from 'ssh2';
import { connectionOf, type SshClient } from './client';
import { entryType, sftpCall, tempNameFor } from './files';
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

/** Longest remote path the sink hands to SFTP, in bytes (Linux `PATH_MAX` less its NUL). */
const MAX_REMOTE_PATH_BYTES = 4095;

/** Exit codes of {@link WALK_SCRIPT}; its stderr then holds `hvkit-walk:<index>` (-1: the sink's own directory). */
export const WALK_EXIT = {
  failed: 72,
  link: 73,
  notDirectory: 74,
  missing: 75,
  denied: 76,
  replaced: 77,
} as const;

/**
 * The remote half of every step that touches a file below the sink's directory when a shell is available:
 * `cd -P` into the directory, then into each sub-directory, one at a time, refusing any that is a symbolic
 * link or not a directory (creating missing ones in `create` mode). After each `cd` it compares
 * `pwd -P` with the path it expects, so a directory swapped for a link between the test and the `cd` is
 * caught; from then on the shell's working directory is the directory itself, whatever happens to its
 * name. The action runs on `./<entry>` there: `write` (umask 077, noclobber, `cat >`), `sum` (the
 * checksum argv given after the segments), `remove` (`rm -f`), `read` (a regular file, not a link, to stdout:
 * the SSH source) or `incomplete` (removes each sub-directory without a regular file named `entry`, except
 * the names given after the segments, and prints the removed names). Arguments: dir, create|check, action,
 * entry, segment count, segments..., checksum argv or kept names... Nothing from a name is interpolated into the script;
 * it runs with `LC_ALL=C` so that messages can be classified.
 */
export const WALK_SCRIPT = [
  'LC_ALL=C',
  'export LC_ALL',
  'dir=$1 mode=$2 action=$3 entry=$4 n=$5',
  'shift 5',
  'fail() { echo "hvkit-walk:$2" >&2; exit "$1"; }',
  'if [ ! -d "$dir" ]; then',
  '  [ "$mode" = create ] || fail 75 -1',
  '  mkdir -p -- "$dir" || exit 72',
  'fi',
  'cd -P -- "$dir" 2>/dev/null || fail 76 -1',
  'here=$(pwd -P) || exit 72',
  'i=0',
  'while [ "$i" -lt "$n" ]; do',
  '  seg=$1',
  '  shift',
  '  if [ ! -e "$seg" ] && [ ! -L "$seg" ]; then',
  '    [ "$mode" = create ] || fail 75 "$i"',
  '    err=$(mkdir -- "$seg" 2>&1) || case $err in *"File exists"*) ;; *) echo "$err" >&2; exit 72 ;; esac',
  '  fi',
  '  [ -L "$seg" ] && fail 73 "$i"',
  '  if [ ! -d "$seg" ]; then',
  '    [ -e "$seg" ] && fail 74 "$i"',
  '    fail 77 "$i"',
  '  fi',
  '  cd -P -- "$seg" 2>/dev/null || fail 76 "$i"',
  // biome-ignore lint/suspicious/noTemplateCurlyInString: shell parameter expansion, not a template.
  '  here=${here%/}/$seg',
  '  [ "$(pwd -P)" = "$here" ] || fail 73 "$i"',
  '  i=$((i + 1))',
  'done',
  'case $action in',
  '  write) umask 077; set -C; exec cat > "./$entry" ;;',
  '  sum) exec "$@" "./$entry" ;;',
  '  remove) exec rm -f -- "./$entry" ;;',
  // read: a regular file only, never through a link (GNU dd refuses one swapped in after the test too).
  '  read)',
  '    [ -L "./$entry" ] && fail 73 "$n"',
  '    [ -f "./$entry" ] || { [ -e "./$entry" ] && fail 74 "$n"; fail 75 "$n"; }',
  '    if dd --version >/dev/null 2>&1; then exec dd if="./$entry" iflag=nofollow bs=1048576 status=none; fi',
  '    exec cat -- "./$entry" ;;',
  // incomplete: in the guest folder, remove each artifact folder (not a link) without a manifest, except the
  // ids given after the segments; print the removed ones.
  '  incomplete)',
  '    for d in *; do',
  '      [ -d "$d" ] && [ ! -L "$d" ] || continue',
  '      case $d in .*) continue ;; esac',
  '      keep=',
  '      for k in "$@"; do [ "$k" = "$d" ] && keep=1; done',
  '      [ -n "$keep" ] && continue',
  '      [ -f "$d/$entry" ] && [ ! -L "$d/$entry" ] && continue',
  '      rm -rf -- "./$d" || exit 72',
  '      printf "%s\\n" "$d"',
  '    done',
  '    exit 0 ;;',
  'esac',
  'exit 72',
].join('\n');

/** The sink returned by {@link createSshSink}. */
export interface SshSink extends BackupSink {
  readonly kind: 'ssh';
  /** `ssh://user@host:port/<remoteDir>`. */
  readonly location: string;
  /** The remote directory files are written into. */
  readonly remoteDir: string;
  /** Removes a file written earlier; a missing file is fine. */
  removeFile(name: string, options?: { signal?: AbortSignal }): Promise<void>;
  /**
   * Removes the guest's incomplete artifact folders (no `hvkit-backup.json`), except those of `keepRuns`, in
   * a remote shell anchored in the guest folder (links are never followed). Needs a shell (`method: 'exec'` or
   * `verify`): `UNSUPPORTED` otherwise. See `BackupSink.removeIncomplete`.
   */
  removeIncomplete(
    guestFolder: string,
    keepRuns: readonly string[],
    options?: { signal?: AbortSignal },
  ): Promise<string[]>;
}

/**
 * The remote walk of a directory below `remoteDir` (see {@link WALK_SCRIPT}), shared by the SSH sink and
 * the SSH source: the argv that runs an action anchored, and the error a failed walk stands for.
 */
export function remoteWalker(remoteDir: string, where: string) {
  /** The remote path of `segments` below remoteDir (for messages and SFTP). */
  const below = (segments: readonly string[]) => posix.join(remoteDir, ...segments);

  /** The argv that runs `action` on `entry` in the directory `segments` below remoteDir, anchored. */
  const walkArgv = (
    mode: 'create' | 'check',
    action: 'write' | 'sum' | 'remove' | 'read' | 'incomplete',
    entry: string,
    segments: readonly string[],
    extra: readonly string[] = [],
  ) => [
    'sh',
    '-c',
    WALK_SCRIPT,
    'hvkit-sink',
    remoteDir,
    mode,
    action,
    entry,
    String(segments.length),
    ...segments,
    ...extra,
  ];

  /** The error a failed remote step stands for: a refused walk, or what its stderr says. */
  const remoteFailure = (
    res: { exitCode: number | null; signal: string | null; stderr: Buffer },
    segments: readonly string[],
    what: string,
    op: string,
  ): HvkitError => {
    const text = res.stderr.subarray(-4096).toString('utf8').trim();
    const step = /hvkit-walk:(-?\d+)/.exec(text);
    if (step) {
      const path = below(segments.slice(0, Number(step[1]) + 1));
      switch (res.exitCode) {
        case WALK_EXIT.link:
          return sinkPathError(path, 'symlink', { operation: op, where });
        case WALK_EXIT.notDirectory:
          return sinkPathError(path, 'not-directory', { operation: op, where });
        case WALK_EXIT.replaced:
          return sinkPathError(path, 'replaced', { operation: op, where });
        case WALK_EXIT.missing:
          return hvkitError('NOT_FOUND', `${where}: no such directory ${JSON.stringify(path)}`, {
            operation: op,
            details: { path },
          });
        case WALK_EXIT.denied:
          return hvkitError(
            'PERMISSION_DENIED',
            `${where}: permission denied entering ${JSON.stringify(path)}`,
            {
              operation: op,
              details: { path },
            },
          );
      }
    }
    const code = /permission denied|read-only file system|operation not permitted/i.test(text)
      ? 'PERMISSION_DENIED'
      : /file name too long/i.test(text)
        ? 'INVALID_ARGUMENT'
        : /no such file or directory|directory nonexistent/i.test(text)
          ? 'NOT_FOUND'
          : 'REMOTE';
    return hvkitError(
      code,
      `${where}: ${what} failed (exit ${res.exitCode ?? res.signal})${text ? `: ${text}` : ''}`,
      { operation: op, backendCode: res.exitCode ?? res.signal ?? undefined, backendMessage: text },
    );
  };
  return { below, walkArgv, remoteFailure };
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

/**
 * Races `promise` against an abort signal and an optional idle timer. `promise` is always handled: when
 * the race is lost (also to a signal that had already aborted), its later rejection is not left unhandled.
 */
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
    if (signal?.aborted) return abort();
    signal?.addEventListener('abort', abort, { once: true });
    if (idleMs !== undefined) {
      timer = setTimeout(() => {
        done();
        reject(onTimeout());
      }, idleMs);
    }
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
 * Nothing below `remoteDir` is followed if it is a symbolic link (`remoteDir` itself may be one): a
 * sub-directory that is a link, or a file where a directory is needed, fails `writeFile` and `removeFile`
 * with `CONFLICT` (core's `sinkPathError`), so a link planted in the backup directory can neither send data
 * elsewhere nor make a removal delete through it. Where the sink has a shell (`method: 'exec'` or
 * `verify`), the steps that create, checksum and remove files in a sub-directory run in a remote shell
 * that enters each directory with `cd -P` and checks `pwd -P` after each step, so the file is created and
 * removed relative to the directory that was checked, even if a name is swapped for a link meanwhile.
 * Over SFTP alone (no openat()), each directory is checked with lstat before the file is created, and the
 * new file must then be found at its real path (SFTP realpath) and match the open handle before any data is
 * written. Directories are checked again before the final rename.
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
  let checksumTool: Promise<ChecksumTool> | undefined;
  // A shell is there when bytes travel through exec or the remote checksum is used; then every step that
  // touches a path below remoteDir runs anchored (WALK_SCRIPT). Without one, SFTP lstat walks stand in.
  const shell = method === 'exec' || verify;
  const where = `sink ${location}`;

  const { below, walkArgv, remoteFailure } = remoteWalker(remoteDir, where);

  /** lstat over SFTP (never follows the last component). */
  const lstat = (path: string, op: string, signal: AbortSignal | undefined) =>
    sftpCall<Attributes>(conn, op, path, { signal, timeoutMs: stepTimeoutMs }, (sftp, cb) =>
      sftp.lstat(path, (err, attrs) => cb(err, attrs)),
    );

  /**
   * Checks over SFTP that each of `segments` below remoteDir is a directory and not a symbolic link,
   * creating missing ones with `create` (remoteDir itself too). For sinks without a shell, and again
   * before the final rename.
   */
  const sftpWalk = async (
    segments: readonly string[],
    create: boolean,
    op: string,
    signal: AbortSignal | undefined,
  ) => {
    if (create) await client.files.mkdir(remoteDir, { recursive: true, timeoutMs: stepTimeoutMs, signal });
    for (let i = 0; i < segments.length; i++) {
      const path = below(segments.slice(0, i + 1));
      let attrs: Attributes;
      try {
        attrs = await lstat(path, op, signal);
      } catch (e) {
        if (!(create && HvkitErrorClass.isInstance(e, 'NOT_FOUND'))) throw e;
        // A failed mkdir may mean someone else created it meanwhile; the lstat tells, else its error counts.
        const failed = await client.files.mkdir(path, { timeoutMs: stepTimeoutMs, signal }).then(
          () => undefined,
          (error: unknown) => error,
        );
        try {
          attrs = await lstat(path, op, signal);
        } catch (again) {
          throw failed ?? again;
        }
      }
      const type = entryType(attrs.mode);
      if (type === 'symlink') throw sinkPathError(path, 'symlink', { operation: op, where });
      if (type !== 'directory') throw sinkPathError(path, 'not-directory', { operation: op, where });
    }
  };

  /** Picks the remote SHA-256 tool once per sink. */
  const remoteChecksumTool = (signal: AbortSignal | undefined): Promise<ChecksumTool> => {
    if (!checksumTool) {
      const candidates = options.checksumCommand ? [options.checksumCommand] : CHECKSUM_PREFERENCE;
      const script = `for t in "$@"; do if command -v "$t" >/dev/null 2>&1; then echo "$t"; exit 0; fi; done; exit 127`;
      checksumTool = client.exec
        .exec({ argv: ['sh', '-c', script, 'hvkit-probe', ...candidates], timeoutMs: stepTimeoutMs, signal })
        .then((r) => {
          const out = r.stdout.toString().trim();
          const tool = out as ChecksumTool;
          if (r.exitCode === 0 && candidates.includes(tool)) return tool;
          // Only the probe's own "none of them" (exit 127, no output) means the tools are missing.
          if (r.exitCode === 127 && out === '') {
            throw hvkitError(
              'UNSUPPORTED',
              `sink ${location}: verify needs ${candidates.join(', ')} on the remote host, none found; pass verify: false to check sizes only`,
              { operation: 'sink.writeFile', backendCode: r.exitCode },
            );
          }
          const text = r.stderr.subarray(-4096).toString('utf8').trim();
          const how = r.signal
            ? `was killed by ${r.signal}`
            : r.exitCode === 0
              ? `gave unexpected output ${JSON.stringify(out.slice(0, 200))}`
              : `failed with exit status ${r.exitCode}`;
          throw hvkitError(
            'REMOTE',
            `sink ${location}: looking for ${candidates.join(', ')} on the remote host ${how}${text ? `: ${text}` : ''}`,
            {
              operation: 'sink.writeFile',
              backendCode: r.exitCode ?? r.signal ?? undefined,
              backendMessage: text || undefined,
            },
          );
        });
      checksumTool.catch(() => {
        checksumTool = undefined;
      });
    }
    return checksumTool;
  };

  const execUpload = (
    tmpEntry: string,
    segments: readonly string[],
    signal: AbortSignal | undefined,
  ): Upload => {
    // Names travel as positional parameters: the script text is constant, nothing is interpolated.
    const proc = client.exec.spawn({
      argv: walkArgv(mkdir ? 'create' : 'check', 'write', tmpEntry, segments),
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
      return remoteFailure(
        r as Awaited<typeof waited>,
        segments,
        `writing ${posix.join(below(segments), tmpEntry)}`,
        'sink.writeFile',
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

  const sftpUpload = async (
    tmp: string,
    segments: readonly string[],
    signal: AbortSignal | undefined,
  ): Promise<Upload> => {
    const op = 'sink.writeFile';
    const call = { signal, timeoutMs: stepTimeoutMs };
    const realDir = await sftpCall<string>(conn, op, remoteDir, call, (s, cb) =>
      s.realpath(remoteDir, (err, path) => cb(err, path)),
    );
    let session: SFTPWrapper | undefined;
    // Exclusive: created now, never through a link at its name.
    const handle = await sftpCall<Buffer>(conn, op, tmp, call, (s, cb) => {
      session = s;
      s.open(tmp, 'wx', { mode: 0o600 }, (err, h) => cb(err, h));
    });
    const sftp = session as SFTPWrapper;
    // SFTP has no openat(): a directory swapped for a link between the walk and the open would have
    // sent the file elsewhere. Before any data is written, the file must be found where it belongs, and
    // be the one open (owner, mode, size and time as fstat reports them).
    try {
      const expected = posix.join(realDir, ...segments, posix.basename(tmp));
      const [real, opened, there] = await Promise.all([
        sftpCall<string>(conn, op, tmp, call, (s, cb) => s.realpath(tmp, (err, path) => cb(err, path))).catch(
          () => undefined,
        ),
        sftpCall<Attributes>(conn, op, tmp, call, (s, cb) => s.fstat(handle, (err, a) => cb(err, a))),
        lstat(tmp, op, signal).catch(() => undefined),
      ]);
      const same =
        there !== undefined &&
        ['uid', 'gid', 'mode', 'size', 'mtime'].every(
          (k) => there[k as keyof Attributes] === opened[k as keyof Attributes],
        );
      if (real !== expected || !same) {
        // Remove the stray file where it really is (its random name is ours), never anything else.
        if (real !== undefined && posix.basename(real) === posix.basename(tmp)) {
          await client.files.remove(real, { timeoutMs: stepTimeoutMs }).catch(() => {});
        }
        throw sinkPathError(below(segments), 'replaced', { operation: op, where });
      }
    } catch (e) {
      await new Promise<void>((resolve) => {
        try {
          sftp.close(handle, () => resolve());
        } catch {
          resolve();
        }
      });
      throw e;
    }
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

  /** Removes `entry` of the directory `segments` below remoteDir, anchored (needs the shell). */
  const anchoredRemove = async (
    entry: string,
    segments: readonly string[],
    op: string,
    call: { signal?: AbortSignal; timeoutMs: number },
  ) => {
    const r = await client.exec.exec({ argv: walkArgv('check', 'remove', entry, segments), ...call });
    if (r.exitCode !== 0)
      throw remoteFailure(r, segments, `removing ${posix.join(below(segments), entry)}`, op);
  };

  /** Removes a temporary file after a failure; best effort (the connection may be gone). */
  const removeQuietly = async (tmp: string, segments: readonly string[]) => {
    try {
      if (shell && segments.length > 0)
        await anchoredRemove(posix.basename(tmp), segments, 'sink.writeFile', { timeoutMs: stepTimeoutMs });
      else await client.files.remove(tmp, { timeoutMs: stepTimeoutMs });
    } catch {
      // The temporary name never looks like a finished file.
    }
  };

  /** Refuses a name whose remote path would be too long for the host, before anything is created. */
  const checkPathLength = (path: string, name: string, op: string) => {
    if (Buffer.byteLength(path) > MAX_REMOTE_PATH_BYTES) {
      throw hvkitError(
        'INVALID_ARGUMENT',
        `${where}: the remote path of ${JSON.stringify(name.slice(0, 200))} would be longer than ${MAX_REMOTE_PATH_BYTES} bytes`,
        { operation: op, details: { bytes: Buffer.byteLength(path) } },
      );
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
      const segments = name.split('/').slice(0, -1);
      const tmp = tempNameFor(finalPath);
      checkPathLength(tmp, name, op);
      // Refuse a planted link before reading any data. Over SFTP this walk also creates directories; with
      // exec the remote walk does (anchored), so a missing one is fine here.
      try {
        await sftpWalk(segments, method === 'sftp' && mkdir, op, signal);
      } catch (e) {
        if (!(method === 'exec' && HvkitErrorClass.isInstance(e, 'NOT_FOUND'))) throw e;
      }
      const tool = verify ? await remoteChecksumTool(signal) : undefined;
      const hash = createHash('sha256');
      let bytes = 0;
      let upload: Upload | undefined;
      const iterator = source[Symbol.asyncIterator]();
      let sourceDone = false;
      let sourceError = false;
      try {
        upload =
          method === 'exec'
            ? execUpload(posix.basename(tmp), segments, signal)
            : await sftpUpload(tmp, segments, signal);
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
          // Run in the directory itself (anchored), on `./<temporary name>`, so no tool reads it as an option.
          const r = await client.exec.exec({
            argv: walkArgv('check', 'sum', posix.basename(tmp), segments, CHECKSUM_ARGV[tool]),
            signal,
            timeoutMs: 60_000 + Math.ceil((bytes / verifyRate) * 1000),
          });
          const m = /^\\?([0-9a-f]{64})\s/.exec(r.stdout.toString('latin1'));
          if (r.exitCode !== 0 || !m) throw remoteFailure(r, segments, `${tool} of ${tmp}`, op);
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
        // The rename goes by path: check the directories once more. (Swapped after this check, the rename
        // finds no temporary file behind the link and fails; it cannot move the data out.)
        await sftpWalk(segments, false, op, signal);
        await client.files.rename(tmp, finalPath, { signal, timeoutMs: stepTimeoutMs });
        return { name, bytes, sha256 };
      } catch (e) {
        if (upload) await upload.cancel().catch(() => {});
        if (upload || method === 'exec') await removeQuietly(tmp, segments);
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
      const signal = checkSignal(removeOptions.signal);
      const op = 'sink.removeFile';
      const path = posix.join(remoteDir, name);
      checkPathLength(path, name, op);
      const segments = name.split('/').slice(0, -1);
      const entry = posix.basename(path);
      try {
        if (shell && segments.length > 0) {
          // rm runs in the directory reached without following links: nothing is deleted through one.
          // (Directly in remoteDir there is no directory to follow; SFTP's remove does not follow the
          // file's own name, and is faster than a remote shell.)
          await anchoredRemove(entry, segments, op, { signal, timeoutMs: stepTimeoutMs });
        } else {
          await sftpWalk(segments, false, op, signal);
          await client.files.remove(path, { signal, timeoutMs: stepTimeoutMs });
        }
      } catch (e) {
        // A missing directory, or a file where one would be, holds no such file.
        if (HvkitErrorClass.isInstance(e, 'NOT_FOUND')) return;
        if (HvkitErrorClass.isInstance(e, 'CONFLICT') && e.backendCode === 'ENOTDIR') return;
        throw e;
      }
    },

    async removeIncomplete(
      guestFolder: string,
      keepRuns: readonly string[],
      removeOptions: { signal?: AbortSignal } = {},
    ): Promise<string[]> {
      const folder = checkRemoveIncompleteArgs(guestFolder, keepRuns);
      const signal = checkSignal(removeOptions.signal);
      const op = 'sink.removeIncomplete';
      if (signal?.aborted) throw abortedError(op, signal, location);
      if (!shell) {
        throw hvkitError(
          'UNSUPPORTED',
          `${where}: removing incomplete artifacts needs a remote shell (method 'exec' or verify)`,
          { operation: op },
        );
      }
      const r = await client.exec.exec({
        argv: walkArgv('check', 'incomplete', BACKUP_MANIFEST_FILE, [folder], keepRuns),
        signal,
        timeoutMs: stepTimeoutMs,
      });
      if (r.exitCode !== 0) {
        const error = remoteFailure(r, [folder], `removing incomplete artifacts of ${below([folder])}`, op);
        if (HvkitErrorClass.isInstance(error, 'NOT_FOUND')) return [];
        throw error;
      }
      return r.stdout
        .toString('utf8')
        .split('\n')
        .filter((line) => line !== '')
        .map((id) => `${folder}/${id}`)
        .sort();
    },
  };
}
