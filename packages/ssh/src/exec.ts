/**
 * ExecTransport over SSH exec channels. Every argument is POSIX single-quoted, so the remote shell
 * interprets nothing; environment variables travel as an `env -- K=V` prefix.
 */
import { PassThrough, Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ExecProcess, ExecRequest, ExecResult, ExecTransport } from '@hvkit/core';
import { checkSignal, HvkitError, hvkitError } from '@hvkit/core';
import type { ClientChannel } from 'ssh2';
import type { SshConnection } from './connection';
import { checkTimeout, Deadline, errnoCode, exitOf, messageOf, TailBuffer } from './internal';
import { buildRemoteCommand } from './quote';

const DEFAULT_MAX_BUFFER = 64 * 1024 * 1024;
const STDERR_TAIL = 64 * 1024;
/** How long a killed process gets between TERM and KILL + channel close. */
const KILL_GRACE_MS = 1000;
/**
 * Each command first writes its pid to stderr (this line is removed again). `exec` keeps the pid, and
 * sshd makes the session a process group of its own, so the whole group can be killed. That is needed
 * because OpenSSH refuses `signal` requests in root sessions ("session signalling requires privilege
 * separation").
 */
const PID_PREFIX = 'printf \'\\037hvkit-pid %s\\n\' "$$" >&2; ';
const PID_LINE = new RegExp(`^${String.fromCharCode(0x1f)}hvkit-pid (\\d+)\n`);

/**
 * The ExecTransport of an SSH connection (`client.exec`). `exec()` and `wait()` reject with PROTOCOL
 * when the server closes a channel without an exit status (neither exit-status nor exit-signal) and
 * the process was not killed through `kill()`: the outcome is then unknown, so no result is made up.
 *
 * As in core's local exec, a `stdin` AsyncIterable that throws kills the remote process: once it is
 * gone, the call rejects with the source's HvkitError as it is, or with `REMOTE` carrying another
 * error as `cause`. A process that exits early (closing its stdin) is not an error.
 */
export interface SshExecTransport extends ExecTransport {
  /** `ssh://user@host:port`. */
  readonly target: string;
  /** Starts a command whose output is consumed as streams; see {@link SshExecProcess}. */
  spawn(request: ExecRequest): SshExecProcess;
}

function checkRequest(request: ExecRequest): string {
  if (typeof request !== 'object' || request === null) throw new TypeError('request must be an object');
  checkSignal(request.signal);
  checkTimeout(request.timeoutMs);
  if (request.maxBuffer !== undefined && (!Number.isInteger(request.maxBuffer) || request.maxBuffer <= 0)) {
    throw new TypeError('maxBuffer must be a positive integer');
  }
  const opts: { env?: Readonly<Record<string, string>>; cwd?: string } = {};
  if (request.env !== undefined) opts.env = request.env;
  if (request.cwd !== undefined) opts.cwd = request.cwd;
  return buildRemoteCommand(request.argv, opts);
}

/**
 * Sends a `signal` channel request (RFC 4254 6.9). ssh2's `channel.signal()` stays silent once stdin is
 * closed (EOF sent), but the request is valid until the channel closes, so send it on the protocol.
 */
export function sendSignal(channel: ClientChannel, name: 'TERM' | 'KILL' | 'INT' | 'HUP'): void {
  const ch = channel as unknown as {
    outgoing?: { id?: number; state?: string };
    _client?: { _protocol?: { signal?: (id: number, name: string) => void } };
  };
  const state = ch.outgoing?.state;
  if ((state !== 'open' && state !== 'eof') || typeof ch.outgoing?.id !== 'number') return;
  try {
    ch._client?._protocol?.signal?.(ch.outgoing.id, name);
  } catch {
    // The connection is going away; closing the channel is all that is left.
  }
}

/**
 * Ends an output stream because the call failed (ABORTED, TIMEOUT, CONNECTION_LOST, ...), so that it
 * never looks complete: a reader at the time (pipeline, async iterator, 'error' handler) gets the error,
 * a later one finds it in `stream.errored`. The stream carries a no-op 'error' listener from the start,
 * so an unread stream does not crash the process.
 */
function failStream(stream: Readable, error: Error): void {
  if (!stream.destroyed) stream.destroy(error);
}

/** Pipe errors that mean the remote process closed its stdin (exited early): no error of the call. */
const STDIN_CLOSED = new Set(['EPIPE', 'ERR_STREAM_DESTROYED', 'ERR_STREAM_PREMATURE_CLOSE']);

/** A remote process of `client.exec.spawn()`. */
export interface SshExecProcess extends ExecProcess {
  /**
   * Resolves once the SSH channel is closed, which OpenSSH does only after the remote process has
   * exited (or when the connection is gone). Never rejects. After a timeout or an abort, `wait()`
   * rejects at once (and stdout and stderr fail with the same error) while this still waits for the
   * process to be gone.
   */
  readonly closed: Promise<void>;
}

/** A remote process on an exec channel. */
class RemoteProcess implements SshExecProcess {
  readonly stdout: Readable;
  readonly stdin = new PassThrough();
  readonly stderr: Readable;
  readonly closed: Promise<void>;
  private markClosed!: () => void;
  private stderrDropping = false;
  private readonly stderrTail = new TailBuffer(STDERR_TAIL);
  private channel: ClientChannel | undefined;
  /** Set once kill() was called or the call failed: the process must go. */
  private killRequested = false;
  private killTimer: NodeJS.Timeout | undefined;
  /** Remote pid, once its line has arrived; `null` when the first stderr line was not the pid line. */
  private pid: number | null | undefined;
  private pidBuffer = Buffer.alloc(0);
  private readonly done: Promise<Omit<ExecResult, 'stdout'>>;
  private settle!: {
    resolve: (r: Omit<ExecResult, 'stdout'>) => void;
    reject: (e: HvkitError) => void;
  };
  private settled = false;
  /** The error of a failed stdin source: the process was killed, wait() rejects with it once it is gone. */
  private stdinFailure: HvkitError | undefined;
  private readonly deadline: Deadline;
  private readonly untrack: () => void;

  constructor(
    private readonly conn: SshConnection,
    command: string,
    request: ExecRequest,
    private readonly operation: string,
    timeoutMs: number | undefined,
  ) {
    this.stdout = new Readable({
      highWaterMark: 256 * 1024,
      read: () => {
        this.channel?.resume();
      },
    });
    this.stderr = new Readable({
      highWaterMark: 1024 * 1024,
      read: () => {
        this.stderrDropping = false;
      },
    });
    // Failures reach readers through the streams and wait(); see failStream.
    this.stdout.on('error', () => {});
    this.stderr.on('error', () => {});
    this.closed = new Promise<void>((resolve) => {
      this.markClosed = resolve;
    });
    this.done = new Promise((resolve, reject) => {
      this.settle = { resolve, reject };
    });
    // wait() may be called late or never; failures are reported through it and the streams.
    this.done.catch(() => {});
    this.deadline = new Deadline(operation, conn.target, request.signal, timeoutMs);
    this.untrack = conn.track((e) => this.fail(e));
    this.deadline.onFire((e) => this.fail(e));
    if (request.stdin !== undefined) this.feedStdin(request.stdin);
    if (this.settled) {
      this.markClosed();
      return;
    }
    conn
      .openExec(PID_PREFIX + command, this.deadline, operation, (late) => this.attach(late))
      .then(
        (channel) => this.attach(channel),
        (e: HvkitError) => {
          this.fail(e);
          this.markClosed();
        },
      );
  }

  /** Fails the call: wait() rejects, output streams end, and the process is killed. */
  private fail(error: HvkitError): void {
    if (this.settled) return;
    this.rejectCall(error);
    this.kill();
  }

  /** Rejects wait() and ends the output streams (without killing anything). */
  private rejectCall(error: HvkitError): void {
    this.settled = true;
    this.untrack();
    this.deadline.dispose();
    failStream(this.stdout, error);
    failStream(this.stderr, error);
    if (!this.stdin.writableFinished) this.stdin.destroy();
    this.settle.reject(error);
  }

  /** Wires an open channel (also one that opened after the call had already failed). */
  private attach(channel: ClientChannel): void {
    this.channel = channel;
    channel.stderr.on('data', (data: Buffer) => {
      const chunk = this.stripPidLine(data);
      if (chunk.length === 0) return;
      this.stderrTail.push(chunk);
      if (!this.stderrDropping && !this.stderr.destroyed) {
        if (!this.stderr.push(chunk)) this.stderrDropping = true;
      }
    });
    channel.on('error', (e: Error) =>
      this.fail(
        hvkitError('REMOTE', `${this.operation} on ${this.conn.target}: ${e.message}`, {
          operation: this.operation,
          cause: e,
        }),
      ),
    );
    channel.once('close', () => this.onClose(channel));
    if (this.settled) {
      // Nobody waits for this process any more: drain, send EOF and make it go.
      channel.resume();
      channel.end();
      this.sendKill();
      return;
    }
    // stdout flows with backpressure: a full stdout pauses the channel, which stops the SSH window.
    channel.on('data', (chunk: Buffer) => {
      if (this.stdout.destroyed) return;
      if (!this.stdout.push(chunk)) channel.pause();
    });
    channel.once('end', () => {
      if (!this.stdout.destroyed) this.stdout.push(null);
    });
    // A consumer that destroys stdout gives up on the output: keep draining so the channel can close.
    this.stdout.once('close', () => channel.resume());
    this.stdin.pipe(channel);
    if (this.killRequested) this.sendKill();
  }

  private onClose(channel: ClientChannel): void {
    if (this.killTimer) clearTimeout(this.killTimer);
    this.stdin.unpipe(channel);
    if (!this.stdin.writableFinished) this.stdin.destroy();
    const exit = exitOf(channel);
    if (!this.settled) {
      if (!exit && this.conn.closed) {
        this.fail(
          hvkitError('CONNECTION_LOST', `${this.operation} on ${this.conn.target}: connection lost`, {
            operation: this.operation,
            cause: this.conn.closedError,
          }),
        );
      } else if (this.stdinFailure) {
        this.rejectCall(this.stdinFailure);
      } else if (!exit && !this.killRequested) {
        // The process may have succeeded or failed: guessing either would be a wrong answer.
        this.rejectCall(
          hvkitError(
            'PROTOCOL',
            `${this.operation} on ${this.conn.target}: the server closed the channel without an exit status`,
            { operation: this.operation, retryable: false },
          ),
        );
      } else {
        this.settled = true;
        this.untrack();
        this.deadline.dispose();
        if (!this.stderr.destroyed) this.stderr.push(null);
        this.settle.resolve({
          exitCode: exit?.code ?? null,
          signal: exit?.signal ?? null,
          stderr: this.stderrTail.toBuffer(),
        });
      }
    }
    this.markClosed();
  }

  private feedStdin(stdin: NonNullable<ExecRequest['stdin']>): void {
    if (typeof stdin === 'string' || stdin instanceof Uint8Array) {
      this.stdin.end(typeof stdin === 'string' ? Buffer.from(stdin) : stdin);
      return;
    }
    // An early exit of the remote process destroys stdin; that is not an error of the call. A failing
    // source is: the process would wait for the rest of its input forever, so it is killed.
    pipeline(Readable.from(stdin, { objectMode: false }), this.stdin).catch((error: unknown) => {
      if (STDIN_CLOSED.has(errnoCode(error) ?? '') || this.settled) return;
      // As local exec: kill, and fail the call once the process is gone (see onClose).
      this.stdinFailure ??= HvkitError.isInstance(error)
        ? error
        : hvkitError(
            'REMOTE',
            `${this.operation} on ${this.conn.target}: the stdin source failed: ${messageOf(error)}`,
            {
              operation: this.operation,
              cause: error,
            },
          );
      this.kill();
    });
  }

  /** Removes the pid line from the start of stderr. */
  private stripPidLine(data: Buffer): Buffer {
    if (this.pid !== undefined) return data;
    this.pidBuffer = Buffer.concat([this.pidBuffer, data]);
    const m = PID_LINE.exec(this.pidBuffer.toString('latin1'));
    if (m) {
      this.pid = Number(m[1]);
      const rest = this.pidBuffer.subarray(m[0].length);
      this.pidBuffer = Buffer.alloc(0);
      // A kill asked for before the pid was known.
      if (this.killRequested) this.killRemote('TERM');
      return rest;
    }
    const newline = this.pidBuffer.indexOf(10);
    if (newline >= 0 || this.pidBuffer.length > 64 || this.pidBuffer[0] !== 0x1f) {
      this.pid = null;
      const all = this.pidBuffer;
      this.pidBuffer = Buffer.alloc(0);
      return all;
    }
    return Buffer.alloc(0);
  }

  /** Kills the remote process group by pid over a second channel (works in root sessions too). */
  private killRemote(signal: 'TERM' | 'KILL'): void {
    const pid = this.pid;
    if (typeof pid !== 'number' || exitOf(this.channel) || this.conn.closed) return;
    const command = buildRemoteCommand([
      'sh',
      '-c',
      'kill -s "$1" -- "-$2" 2>/dev/null || kill -s "$1" "$2" 2>/dev/null; exit 0',
      'hvkit-kill',
      signal,
      String(pid),
    ]);
    const deadline = new Deadline('ssh.kill', this.conn.target, undefined, 10_000);
    this.conn
      .openExec(command, deadline, 'ssh.kill')
      .then((ch) => {
        ch.resume();
        ch.stderr.resume();
        ch.end();
      })
      .catch(() => {})
      .finally(() => deadline.dispose());
  }

  /** TERM now (signal request and kill by pid), KILL and channel close after a grace period. */
  private sendKill(): void {
    const channel = this.channel;
    if (!channel || this.killTimer) return;
    // Output nobody reads must not hold the channel open.
    if (this.settled) channel.resume();
    sendSignal(channel, 'TERM');
    this.killRemote('TERM');
    this.killTimer = setTimeout(() => {
      sendSignal(channel, 'KILL');
      this.killRemote('KILL');
      channel.close();
    }, KILL_GRACE_MS);
    this.killTimer.unref?.();
  }

  wait(): Promise<Omit<ExecResult, 'stdout'>> {
    return this.done;
  }

  kill(): void {
    this.killRequested = true;
    if (this.channel) this.sendKill();
  }
}

/** Builds `client.exec` for a connection. */
export function createExecTransport(conn: SshConnection): SshExecTransport {
  return {
    target: conn.target,

    spawn(request: ExecRequest): SshExecProcess {
      const command = checkRequest(request);
      conn.ensureOpen('ssh.spawn');
      return new RemoteProcess(conn, command, request, 'ssh.spawn', request.timeoutMs);
    },

    async exec(request: ExecRequest): Promise<ExecResult> {
      const command = checkRequest(request);
      conn.ensureOpen('ssh.exec');
      const maxBuffer = request.maxBuffer ?? DEFAULT_MAX_BUFFER;
      const proc = new RemoteProcess(
        conn,
        command,
        request,
        'ssh.exec',
        request.timeoutMs ?? conn.execTimeoutMs,
      );
      if (request.stdin === undefined) proc.stdin.end();
      const collect = (stream: Readable, which: string) =>
        new Promise<Buffer>((resolve, reject) => {
          const chunks: Buffer[] = [];
          let size = 0;
          stream.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBuffer) {
              const error = hvkitError(
                'PROTOCOL',
                `ssh.exec ${JSON.stringify(request.argv[0])} on ${conn.target}: ${which} exceeded maxBuffer (${maxBuffer} bytes)`,
                { operation: 'ssh.exec', retryable: false, details: { maxBuffer } },
              );
              proc.kill();
              stream.destroy();
              reject(error);
              return;
            }
            chunks.push(chunk);
          });
          stream.once('end', () => resolve(Buffer.concat(chunks)));
          stream.once('error', reject);
        });
      const [stdout, stderr, result] = await Promise.all([
        collect(proc.stdout, 'stdout'),
        collect(proc.stderr, 'stderr'),
        proc.wait(),
      ]);
      return { exitCode: result.exitCode, signal: result.signal, stdout, stderr };
    },
  };
}
