/**
 * The adapter id, defined once, and the one place where the backend's errors become HvkitErrors.
 */

import { type HvkitError, type HvkitErrorCode, hvkitError } from '@hvkit/core';

/** The adapter id: `adapter` of every adapter and of every error it throws. */
export const ADAPTER_ID = 'lvm' as const;

/** Exit statuses with a meaning of their own (the shell's conventions) and their HvkitError code. */
export const EXIT_STATUS_CODES: Readonly<Record<number, HvkitErrorCode>> = Object.freeze({
  126: 'PERMISSION_DENIED',
  127: 'NOT_FOUND',
});

/**
 * What the backend's tool writes to stderr, and the HvkitError code it becomes; the first match wins,
 * anything else is `REMOTE`. Replace them with your tool's own messages (or, better, its exit codes).
 */
export const STDERR_CODES: ReadonlyArray<readonly [RegExp, HvkitErrorCode]> = Object.freeze([
  [/\b(?:not found|no such)\b/i, 'NOT_FOUND'],
  [/\b(?:permission denied|not permitted)\b/i, 'PERMISSION_DENIED'],
  [/\b(?:already exists|busy|in use)\b/i, 'CONFLICT'],
  [/\b(?:not supported|unsupported)\b/i, 'UNSUPPORTED'],
  [/\b(?:invalid|usage)\b/i, 'INVALID_ARGUMENT'],
] as const);

/** A command that ran and failed: what it printed and how it ended. */
export interface FailedCommand {
  /** The program (argv[0]); the other arguments are left out of messages. */
  program: string;
  exitCode: number | null;
  signal: string | null;
  stderr: string;
}

/** The HvkitError for a command of the backend that exited non-zero or was killed. */
export function commandFailedToHvkitError(
  failed: FailedCommand,
  context: { operation?: string } = {},
): HvkitError {
  const stderr = failed.stderr.trim();
  const code =
    (failed.exitCode !== null ? EXIT_STATUS_CODES[failed.exitCode] : undefined) ??
    STDERR_CODES.find(([pattern]) => pattern.test(stderr))?.[1] ??
    'REMOTE';
  const how =
    failed.signal !== null ? `was killed by ${failed.signal}` : `exited with status ${failed.exitCode}`;
  return hvkitError(code, `${context.operation ?? failed.program}: ${failed.program} ${how}.`, {
    adapter: ADAPTER_ID,
    operation: context.operation,
    backendCode: failed.exitCode ?? failed.signal ?? undefined,
    backendMessage: stderr === '' ? undefined : stderr,
  });
}
