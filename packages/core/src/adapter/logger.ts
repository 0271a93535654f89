/**
 * Loggers. hvkit never logs globally: a logger is injected, and debug and info are no-ops by default.
 */

import type { Logger } from '../transport/types';

/** A logger that discards everything. */
export const noopLogger: Logger = Object.freeze({
  debug() {},
  info() {},
  warn() {},
  error() {},
});

/** Log levels, quietest last. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error' | 'silent';

const RANK: Record<LogLevel, number> = { debug: 0, info: 1, warn: 2, error: 3, silent: 4 };

/** Options of {@link createConsoleLogger}. */
export interface ConsoleLoggerOptions {
  /** Lowest level written (default `warn`: debug and info are no-ops). */
  level?: LogLevel;
  /** Where to write (default the global `console`). */
  console?: Pick<Console, 'debug' | 'info' | 'warn' | 'error'>;
  /** Prefix of every message (default `[hvkit]`). */
  prefix?: string;
}

/**
 * A logger over `console`. By default only warnings and errors are written.
 *
 * @throws TypeError for an unknown level.
 */
export function createConsoleLogger(options: ConsoleLoggerOptions = {}): Logger {
  const level = options.level ?? 'warn';
  if (!(level in RANK)) throw new TypeError(`Unknown log level ${JSON.stringify(level)}.`);
  const out = options.console ?? console;
  const prefix = options.prefix ?? '[hvkit]';
  const make = (name: Exclude<LogLevel, 'silent'>) => {
    if (RANK[name] < RANK[level]) return () => {};
    return (message: string, meta?: Record<string, unknown>) => {
      const text = prefix ? `${prefix} ${message}` : message;
      if (meta === undefined) out[name](text);
      else out[name](text, meta);
    };
  };
  return { debug: make('debug'), info: make('info'), warn: make('warn'), error: make('error') };
}
