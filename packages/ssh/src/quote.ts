/**
 * POSIX shell quoting for SSH exec. An SSH server hands the command string to the user's login shell,
 * so every argument is wrapped in single quotes: inside them a POSIX shell interprets nothing, and a
 * single quote itself is written as `'\''` (close, escaped quote, reopen).
 */
import { hvkitError } from '@hvkit/core';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Quotes one argument for a POSIX shell: `a'b` becomes `'a'\''b'`. Every argument is quoted, even a
 * "safe" one, so nothing in it (`$`, backticks, `;`, `*`, `~`, newlines, backslashes) is interpreted.
 *
 * @throws HvkitError INVALID_ARGUMENT when the argument contains a NUL byte (no shell can pass it).
 * @throws TypeError when `arg` is not a string.
 */
export function quoteArg(arg: string): string {
  if (typeof arg !== 'string') throw new TypeError('quoteArg: argument must be a string');
  if (arg.includes('\0')) {
    throw hvkitError('INVALID_ARGUMENT', 'command arguments cannot contain NUL bytes', {
      operation: 'ssh.quote',
    });
  }
  return `'${arg.replaceAll("'", "'\\''")}'`;
}

/** Quotes every element of `argv` with {@link quoteArg} and joins them with spaces. */
export function quoteArgv(argv: readonly string[]): string {
  if (!Array.isArray(argv)) throw new TypeError('quoteArgv: argv must be an array of strings');
  return argv.map(quoteArg).join(' ');
}

/** Options of {@link buildRemoteCommand}. */
export interface RemoteCommandOptions {
  /** Variables set for the command, passed as an `env -- K=V ...` prefix (not SSH env requests). */
  env?: Readonly<Record<string, string>>;
  /** Directory to run in (`cd` before the command). */
  cwd?: string;
}

/**
 * Builds the command string an SSH exec request carries for `argv`: `exec 'prog' 'arg1' ...`, with
 * `env -- 'K=V'` when `env` is given and `cd 'dir' &&` when `cwd` is. `exec` replaces the login shell,
 * so signals and exit statuses belong to the program itself.
 *
 * @throws HvkitError INVALID_ARGUMENT for an empty program name, a program name starting with `-` or
 *   (with `env`) containing `=`, a bad variable name, or a NUL byte anywhere.
 * @throws TypeError when `argv` is not a non-empty array of strings.
 */
export function buildRemoteCommand(argv: readonly string[], options: RemoteCommandOptions = {}): string {
  if (!Array.isArray(argv) || argv.length === 0 || argv.some((a) => typeof a !== 'string')) {
    throw new TypeError('argv must be a non-empty array of strings');
  }
  const program = argv[0] as string;
  const invalid = (message: string) =>
    hvkitError('INVALID_ARGUMENT', message, { operation: 'ssh.exec', details: { program } });
  if (program.length === 0) throw invalid('argv[0] (the program) must not be empty');
  if (program.startsWith('-')) throw invalid('argv[0] (the program) must not start with "-"');
  let prefix = '';
  if (options.cwd !== undefined) {
    if (typeof options.cwd !== 'string' || options.cwd.length === 0) {
      throw new TypeError('cwd must be a non-empty string');
    }
    // `cd` would read a leading '-' as an option.
    const dir = options.cwd.startsWith('-') ? `./${options.cwd}` : options.cwd;
    prefix = `cd ${quoteArg(dir)} && `;
  }
  let envPart = '';
  if (options.env !== undefined) {
    if (typeof options.env !== 'object' || options.env === null) throw new TypeError('env must be an object');
    const entries = Object.entries(options.env);
    for (const [name, value] of entries) {
      if (!ENV_NAME.test(name)) throw invalid(`invalid environment variable name ${JSON.stringify(name)}`);
      if (typeof value !== 'string') throw new TypeError(`env.${name} must be a string`);
    }
    if (entries.length > 0) {
      // `env` would read a program name containing '=' as one more assignment.
      if (program.includes('=')) throw invalid('argv[0] (the program) must not contain "=" when env is set');
      envPart = `env -- ${entries.map(([k, v]) => quoteArg(`${k}=${v}`)).join(' ')} `;
    }
  }
  return `${prefix}exec ${envPart}${quoteArgv(argv)}`;
}
