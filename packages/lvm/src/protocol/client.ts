/**
 * The wire client of the lvm adapter: commands run through a core `ExecTransport` as argv arrays,
 * never a shell string (locally without a shell; over `@hvkit/ssh` with every argument quoted). Every
 * command has a deadline and its output is bounded by {@link MAX_OUTPUT_BYTES}.
 */

import { type ExecTransport, hvkitError, type SignalOptions } from '@hvkit/core';
import { ADAPTER_ID, commandFailedToHvkitError } from '../errors';

/** Largest stdout or stderr kept of one command, in bytes (1 MiB); more is `PROTOCOL`. */
export const MAX_OUTPUT_BYTES = 1024 * 1024;

/** The command `hello` runs: the stub asks the host's kernel; replace it with your backend's version command. */
export const HELLO_ARGV: readonly string[] = Object.freeze(['uname', '-s', '-r']);

/** What the backend says about itself (`hello`). */
export interface BackendHello {
  product: string;
  version: string;
  build?: string;
}

/** Runs the backend's commands. */
export class LvmClient {
  readonly #exec: ExecTransport;
  readonly #timeoutMs: number;

  constructor(exec: ExecTransport, timeoutMs: number) {
    this.#exec = exec;
    this.#timeoutMs = timeoutMs;
  }

  /** Where commands run (`local`, `ssh://user@host:22`). */
  get target(): string {
    return this.#exec.target;
  }

  /**
   * Runs `argv` and returns its stdout as text.
   *
   * @throws HvkitError: the mapped error of a failed command (see `errors.ts`), `PROTOCOL` for output
   *   above {@link MAX_OUTPUT_BYTES}, `TIMEOUT`/`ABORTED`, or the transport's own errors.
   */
  async run(argv: readonly string[], options: SignalOptions = {}): Promise<string> {
    const result = await this.#exec.exec({
      argv,
      signal: options.signal,
      timeoutMs: options.timeoutMs ?? this.#timeoutMs,
      maxBuffer: MAX_OUTPUT_BYTES,
    });
    if (result.exitCode !== 0) {
      throw commandFailedToHvkitError(
        {
          program: argv[0] ?? '',
          exitCode: result.exitCode,
          signal: result.signal,
          stderr: result.stderr.toString('utf8'),
        },
        { operation: argv[0] },
      );
    }
    return result.stdout.toString('utf8');
  }

  /** What the backend says about itself; connect calls it first, so it fails fast. */
  async hello(options: SignalOptions = {}): Promise<BackendHello> {
    return parseHello(await this.run(HELLO_ARGV, options));
  }
}

/**
 * Reads the output of {@link HELLO_ARGV}: `<product> <version>`.
 *
 * @throws HvkitError `PROTOCOL` for anything else.
 */
export function parseHello(stdout: string): BackendHello {
  const [product, version, ...rest] = stdout.trim().split(/\s+/);
  if (!product || !version || rest.length > 0) {
    throw hvkitError('PROTOCOL', 'The hello command did not print "<product> <version>".', {
      adapter: ADAPTER_ID,
      operation: 'hello',
    });
  }
  return { product, version };
}
