import type { Duplex, Readable, Writable } from 'node:stream';

/** Common options of transport calls. */
export interface TransportCallOptions {
  signal?: AbortSignal;
  /** Milliseconds before the call rejects with `TIMEOUT` (and any process is killed). */
  timeoutMs?: number;
}

/** A command to run. `argv[0]` is the program; no shell ever interprets it. */
export interface ExecRequest extends TransportCallOptions {
  argv: readonly string[];
  /** Bytes written to stdin, then stdin is closed. */
  stdin?: string | Uint8Array | AsyncIterable<Uint8Array>;
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Largest stdout/stderr kept in memory by `exec` (default 64 MiB); beyond it the call fails with PROTOCOL. */
  maxBuffer?: number;
}

/** The outcome of a finished command. A non-zero exit is not an error at this level. */
export interface ExecResult {
  exitCode: number | null;
  /** Signal name when the process was killed by one. */
  signal: string | null;
  stdout: Buffer;
  stderr: Buffer;
}

/** A running command whose output is consumed as a stream (big data). */
export interface ExecProcess {
  readonly stdout: Readable;
  readonly stderr: Readable;
  readonly stdin: Writable;
  /** Resolves when the process ends; stderr is collected (bounded). Rejects with TIMEOUT/ABORTED. */
  wait(): Promise<Omit<ExecResult, 'stdout'>>;
  /** Kills the process (and its remote channel). */
  kill(): void;
}

/** Runs commands: locally without a shell, or remotely with every argument quoted. */
export interface ExecTransport {
  /** Where commands run, for messages and fixtures (e.g. `local`, `ssh://root@host:22`). */
  readonly target: string;
  exec(request: ExecRequest): Promise<ExecResult>;
  spawn(request: ExecRequest): ExecProcess;
}

/** An entry of a directory listing. */
export interface FileEntry {
  name: string;
  type: 'file' | 'directory' | 'symlink' | 'other';
  size: number;
  mtime?: Date;
}

/** Reads and writes files: local fs, or SFTP. */
export interface FilesTransport {
  readonly target: string;
  readFile(path: string, options?: TransportCallOptions): Promise<Buffer>;
  writeFile(
    path: string,
    data: string | Uint8Array,
    options?: TransportCallOptions & { mode?: number },
  ): Promise<void>;
  list(path: string, options?: TransportCallOptions): Promise<FileEntry[]>;
  stat(path: string, options?: TransportCallOptions): Promise<FileEntry>;
  createReadStream?(path: string, options?: TransportCallOptions & { start?: number }): Promise<Readable>;
  remove?(path: string, options?: TransportCallOptions): Promise<void>;
}

/** Opens byte streams: unix socket, TCP, TLS, or a remote command's stdin/stdout. */
export interface Dialer {
  readonly target: string;
  dial(options?: TransportCallOptions): Promise<Duplex>;
}

/** An injectable `fetch` (undici's by default; tests pass the global one that msw intercepts). */
export type FetchLike = (input: string | URL | Request, init?: RequestInit) => Promise<Response>;

/** Console-shaped logger; debug and info are no-ops by default. */
export interface Logger {
  debug(message: string, meta?: Record<string, unknown>): void;
  info(message: string, meta?: Record<string, unknown>): void;
  warn(message: string, meta?: Record<string, unknown>): void;
  error(message: string, meta?: Record<string, unknown>): void;
}
