/**
 * Internal helpers of @hvkit/ssh: deadlines (signal + timeout), error mapping, argument checks
 * (`checkSignal` comes from @hvkit/core).
 * Not exported from the package.
 */
import { HvkitError, type HvkitErrorCode, hvkitError } from '@hvkit/core';
import type { ClientChannel } from 'ssh2';

/** Default timeout of one short remote call (exec, SFTP request, channel open). */
export const DEFAULT_CALL_TIMEOUT_MS = 60_000;

/** Throws a TypeError unless `value` is a non-empty string. */
export function requireString(value: unknown, what: string): asserts value is string {
  if (typeof value !== 'string' || value.length === 0)
    throw new TypeError(`${what} must be a non-empty string`);
}

/** Validates an optional `timeoutMs`. */
export function checkTimeout(timeoutMs: unknown, what = 'timeoutMs'): void {
  if (timeoutMs === undefined) return;
  if (typeof timeoutMs !== 'number' || !Number.isFinite(timeoutMs) || timeoutMs <= 0) {
    throw new TypeError(`${what} must be a positive finite number of milliseconds`);
  }
}

/** The error a call rejects with when its signal aborts. */
export function abortedError(operation: string, signal: AbortSignal | undefined, target: string): HvkitError {
  const reason = signal?.reason;
  if (HvkitError.isInstance(reason)) return reason;
  return hvkitError('ABORTED', `${operation} on ${target} was aborted`, {
    operation,
    cause: reason,
    retryable: false,
  });
}

/** The error a call rejects with when its timeout expires. */
export function timeoutError(operation: string, timeoutMs: number, target: string): HvkitError {
  return hvkitError('TIMEOUT', `${operation} on ${target} timed out after ${timeoutMs} ms`, {
    operation,
    details: { timeoutMs },
  });
}

/**
 * A deadline: fires once, with the ABORTED or TIMEOUT error, when the signal aborts or the timeout
 * expires. `dispose()` removes the listener and the timer.
 */
export class Deadline {
  private timer: NodeJS.Timeout | undefined;
  private readonly listeners = new Set<(error: HvkitError) => void>();
  private readonly onAbort: () => void;
  /** The error once the deadline has fired. */
  error: HvkitError | undefined;

  constructor(
    readonly operation: string,
    readonly target: string,
    readonly signal: AbortSignal | undefined,
    readonly timeoutMs: number | undefined,
  ) {
    this.onAbort = () => this.fire(abortedError(operation, signal, target));
    if (signal?.aborted) {
      this.error = abortedError(operation, signal, target);
      return;
    }
    signal?.addEventListener('abort', this.onAbort, { once: true });
    if (timeoutMs !== undefined) {
      this.timer = setTimeout(() => this.fire(timeoutError(operation, timeoutMs, target)), timeoutMs);
      this.timer.unref?.();
    }
  }

  /** Calls `listener` when the deadline fires (at once if it already has). Returns an unsubscribe. */
  onFire(listener: (error: HvkitError) => void): () => void {
    if (this.error) {
      listener(this.error);
      return () => {};
    }
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Throws the deadline's error if it has fired. */
  throwIfFired(): void {
    if (this.error) throw this.error;
  }

  /** Fires now with `error` (used when the connection drops). */
  fire(error: HvkitError): void {
    if (this.error) return;
    this.error = error;
    this.dispose();
    for (const l of [...this.listeners]) l(error);
    this.listeners.clear();
  }

  /** Stops the timer and the abort listener. */
  dispose(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = undefined;
    this.signal?.removeEventListener('abort', this.onAbort);
  }

  /** Races `promise` against the deadline. */
  race<T>(promise: Promise<T>): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const off = this.onFire(reject);
      promise.then(
        (v) => {
          off();
          resolve(v);
        },
        (e) => {
          off();
          reject(e);
        },
      );
    });
  }
}

/** An SSH exit signal name (`TERM`) as Node names signals (`SIGTERM`); null when there is none. */
export function signalName(name: string | undefined | null): string | null {
  if (!name) return null;
  return name.startsWith('SIG') ? name : `SIG${name}`;
}

/** How a remote command ended, from its channel's `exit-status` or `exit-signal` request. */
export interface ExitStatus {
  code: number | null;
  /** Node-style name (`SIGTERM`) when the command was killed by a signal. */
  signal: string | null;
}

const exitStatuses = new WeakMap<ClientChannel, ExitStatus>();

/**
 * Starts recording the exit status of an exec channel. Call it synchronously in ssh2's exec callback:
 * ssh2 emits 'exit' while it parses the packet, and OpenSSH often sends CHANNEL_SUCCESS, the output,
 * exit-status, EOF and CLOSE of a short command in one burst that ssh2 parses in one go, so a listener
 * added later (even one microtask later, after a promise resolves) misses the status for good.
 */
export function recordExit(channel: ClientChannel): void {
  channel.once('exit', (code: number | null, signal?: string) => {
    exitStatuses.set(channel, { code: typeof code === 'number' ? code : null, signal: signalName(signal) });
  });
}

/** The exit status {@link recordExit} saw on `channel`, if any arrived yet. */
export function exitOf(channel: ClientChannel | undefined): ExitStatus | undefined {
  return channel ? exitStatuses.get(channel) : undefined;
}

/** An errno-style code of a Node error, when present. */
export function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** The message of an unknown thrown value. */
export function messageOf(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** SFTP status codes (draft-ietf-secsh-filexfer-02 and later) and the hvkit code each maps to. */
const SFTP_STATUS: Record<number, [string, HvkitErrorCode]> = {
  1: ['EOF', 'PROTOCOL'],
  2: ['NO_SUCH_FILE', 'NOT_FOUND'],
  3: ['PERMISSION_DENIED', 'PERMISSION_DENIED'],
  4: ['FAILURE', 'REMOTE'],
  5: ['BAD_MESSAGE', 'PROTOCOL'],
  6: ['NO_CONNECTION', 'CONNECTION_LOST'],
  7: ['CONNECTION_LOST', 'CONNECTION_LOST'],
  8: ['OP_UNSUPPORTED', 'UNSUPPORTED'],
  9: ['INVALID_HANDLE', 'PROTOCOL'],
  10: ['NO_SUCH_PATH', 'NOT_FOUND'],
  11: ['FILE_ALREADY_EXISTS', 'CONFLICT'],
  12: ['WRITE_PROTECT', 'PERMISSION_DENIED'],
  13: ['NO_MEDIA', 'REMOTE'],
  14: ['NO_SPACE_ON_FILESYSTEM', 'REMOTE'],
  15: ['QUOTA_EXCEEDED', 'REMOTE'],
  16: ['UNKNOWN_PRINCIPAL', 'INVALID_ARGUMENT'],
  17: ['LOCK_CONFLICT', 'CONFLICT'],
  18: ['DIR_NOT_EMPTY', 'CONFLICT'],
  19: ['NOT_A_DIRECTORY', 'INVALID_ARGUMENT'],
  20: ['INVALID_FILENAME', 'INVALID_ARGUMENT'],
  21: ['LINK_LOOP', 'REMOTE'],
};

/** Maps an ssh2 SFTP error (numeric `code` = SFTP status) to an HvkitError. */
export function sftpError(
  error: unknown,
  operation: string,
  path: string,
  target: string,
  connectionClosed: boolean,
): HvkitError {
  if (HvkitError.isInstance(error)) return error;
  const status = (error as { code?: unknown } | null)?.code;
  const backendMessage = messageOf(error);
  if (connectionClosed || backendMessage === 'No response from server') {
    return hvkitError('CONNECTION_LOST', `${operation} ${path} on ${target}: connection lost`, {
      operation,
      cause: error,
      backendMessage,
    });
  }
  const mapped = typeof status === 'number' ? SFTP_STATUS[status] : undefined;
  if (mapped) {
    const [name, code] = mapped;
    return hvkitError(code, `${operation} ${path} on ${target}: ${name} (${backendMessage})`, {
      operation,
      cause: error,
      backendCode: name,
      backendMessage,
      details: { path },
    });
  }
  return hvkitError('REMOTE', `${operation} ${path} on ${target}: ${backendMessage}`, {
    operation,
    cause: error,
    backendCode: typeof status === 'number' || typeof status === 'string' ? status : undefined,
    backendMessage,
    details: { path },
  });
}

/** Keeps the last `limit` bytes written to it. */
export class TailBuffer {
  private chunks: Buffer[] = [];
  private size = 0;
  /** Total bytes seen (including dropped ones). */
  total = 0;
  constructor(private readonly limit: number) {}
  push(chunk: Buffer): void {
    this.total += chunk.length;
    this.chunks.push(chunk);
    this.size += chunk.length;
    while (this.size > this.limit && this.chunks.length > 1) {
      const first = this.chunks.shift() as Buffer;
      this.size -= first.length;
    }
    if (this.size > this.limit) {
      const only = this.chunks[0] as Buffer;
      this.chunks = [only.subarray(only.length - this.limit)];
      this.size = this.limit;
    }
  }
  toBuffer(): Buffer {
    return Buffer.concat(this.chunks);
  }
  /** The tail as trimmed text for messages. */
  text(): string {
    return this.toBuffer().toString('utf8').trim();
  }
}
