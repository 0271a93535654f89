/**
 * A Dialer whose byte stream is a remote command's stdin/stdout, e.g. `virt-ssh-helper qemu:///system`
 * or `nc -U /var/run/libvirt/libvirt-sock` for libvirt over SSH.
 */
import { Duplex } from 'node:stream';
import type { Dialer, HvkitError, OptionKeysOf, TransportCallOptions } from '@hvkit/core';
import { checkOptionKeys, checkSignal, hvkitError } from '@hvkit/core';
import type { ClientChannel } from 'ssh2';
import type { SshConnection } from './connection';
import { checkTimeout, Deadline, type ExitStatus, exitOf, TailBuffer } from './internal';
import { buildRemoteCommand } from './quote';

/** Options of `client.dialer()`. */
export interface SshDialerOptions {
  /** Environment of the remote command (`env -- K=V` prefix). */
  env?: Readonly<Record<string, string>>;
  /** Working directory of the remote command. */
  cwd?: string;
  /** Bytes of the command's stderr kept for error messages (default 16 KiB). */
  stderrLimit?: number;
}

/** The keys {@link SshDialerOptions} accepts; `client.dialer()` refuses any other key. */
export const SSH_DIALER_OPTION_KEYS = {
  env: true,
  cwd: true,
  stderrLimit: true,
} as const satisfies OptionKeysOf<SshDialerOptions>;

/** A Dialer over an SSH exec channel. */
export interface SshDialer extends Dialer {
  /** `ssh://user@host:port <command>`. */
  readonly target: string;
}

/**
 * The stream a dial returns: writes go to the command's stdin, reads come from its stdout. `end()`
 * sends EOF. When the command exits with a non-zero status or a signal, the stream is destroyed with a
 * REMOTE error that quotes the tail of its stderr; when the connection drops, with CONNECTION_LOST.
 */
class ChannelStream extends Duplex {
  private pendingWrite: ((error?: Error | null) => void) | undefined;
  private channelClosed = false;

  constructor(
    private readonly channel: ClientChannel,
    private readonly conn: SshConnection,
    private readonly stderrTail: TailBuffer,
    private readonly command: string,
  ) {
    super({ allowHalfOpen: true });
    const untrack = conn.track((error) => this.destroy(error));
    channel.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) channel.pause();
    });
    channel.stderr.on('data', (chunk: Buffer) => stderrTail.push(chunk));
    channel.on('drain', () => this.flushPendingWrite());
    channel.once('close', () => {
      untrack();
      this.channelClosed = true;
      this.flushPendingWrite(this.streamError() ?? new Error('channel closed'));
      const error = this.streamError();
      if (error) this.destroy(error);
      else this.push(null);
    });
  }

  private get exit(): ExitStatus | undefined {
    return exitOf(this.channel);
  }

  private streamError(): HvkitError | undefined {
    const op = 'ssh.dial';
    if (!this.exit && this.conn.closed) {
      return hvkitError('CONNECTION_LOST', `${op} ${this.command} on ${this.conn.target}: connection lost`, {
        operation: op,
        cause: this.conn.closedError,
      });
    }
    if (this.exit && (this.exit.signal !== null || (this.exit.code !== null && this.exit.code !== 0))) {
      const how = this.exit.signal
        ? `was killed by ${this.exit.signal}`
        : `exited with status ${this.exit.code}`;
      const stderr = this.stderrTail.text();
      return hvkitError(
        'REMOTE',
        `${op}: remote command ${this.command} on ${this.conn.target} ${how}${stderr ? `: ${stderr}` : ''}`,
        {
          operation: op,
          backendCode: this.exit.code ?? this.exit.signal ?? undefined,
          backendMessage: stderr || undefined,
        },
      );
    }
    return undefined;
  }

  private flushPendingWrite(error?: Error): void {
    const cb = this.pendingWrite;
    this.pendingWrite = undefined;
    cb?.(error);
  }

  override _read(): void {
    this.channel.resume();
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    if (this.channelClosed) {
      callback(this.streamError() ?? new Error('write after the remote command closed its channel'));
      return;
    }
    if (this.channel.write(chunk)) callback();
    else this.pendingWrite = callback;
  }

  override _final(callback: (error?: Error | null) => void): void {
    if (!this.channelClosed) this.channel.end();
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.channelClosed) this.channel.close();
    this.flushPendingWrite(error ?? new Error('stream destroyed'));
    callback(error);
  }
}

/** Builds `client.dialer(argv)`. */
export function createDialer(
  conn: SshConnection,
  argv: readonly string[],
  options: SshDialerOptions = {},
): SshDialer {
  if (typeof options !== 'object' || options === null) throw new TypeError('options must be an object');
  checkOptionKeys(options, SSH_DIALER_OPTION_KEYS, 'ssh dialer');
  const stderrLimit = options.stderrLimit ?? 16 * 1024;
  if (!Number.isInteger(stderrLimit) || stderrLimit < 0)
    throw new TypeError('stderrLimit must be a non-negative integer');
  const cmdOpts: { env?: Readonly<Record<string, string>>; cwd?: string } = {};
  if (options.env !== undefined) cmdOpts.env = options.env;
  if (options.cwd !== undefined) cmdOpts.cwd = options.cwd;
  const command = buildRemoteCommand(argv, cmdOpts);
  const shown = argv.join(' ');
  return {
    target: `${conn.target} ${shown}`,
    async dial(dialOptions?: TransportCallOptions): Promise<Duplex> {
      checkSignal(dialOptions?.signal);
      checkTimeout(dialOptions?.timeoutMs);
      const deadline = new Deadline(
        'ssh.dial',
        conn.target,
        dialOptions?.signal,
        dialOptions?.timeoutMs ?? conn.sftpTimeoutMs,
      );
      try {
        deadline.throwIfFired();
        const channel = await conn.openExec(command, deadline, 'ssh.dial');
        return new ChannelStream(
          channel,
          conn,
          new TailBuffer(Math.max(1, stderrLimit)),
          JSON.stringify(shown),
        );
      } finally {
        deadline.dispose();
      }
    },
  };
}
