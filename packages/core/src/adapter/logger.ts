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
