/**
 * The lvm adapter's connection state (`adapter.connection`): core's `BorrowedConnection`, and the exec
 * transport every command goes through, which checks it. Locally (or on a given `exec`) the state is `open`
 * until `close()`. Over SSH (`connect({ ssh })`) it mirrors the caller's SSH client: once that is closed or
 * lost the adapter is `closed` for good, with a `CONNECTION_LOST` lastError, and every call fails
 * `CONNECTION_LOST` with `retryable: false` at once, without reaching the network. The adapter never
 * reconnects: the SSH connection is the caller's, who opens a new SSH client and a new adapter.
 */

import type { BorrowedConnection, ExecProcess, ExecRequest, ExecTransport } from '@hvkit/core';

/** The operation named in the errors of a command (its program, e.g. `lvs`). */
function operationOf(request: ExecRequest): string {
  return `lvm ${request.argv[0] ?? 'command'}`;
}

/**
 * `exec` behind `connection`: a command on a closed adapter fails `CONNECTION_LOST` (not retryable) before
 * it is sent; a command that fails because the connection went away fails with that error instead of the
 * transport's. A spawned process's `wait()` is mapped the same way.
 */
export function guardedExec(exec: ExecTransport, connection: BorrowedConnection): ExecTransport {
  const mapped = (operation: string) => (error: unknown) => {
    throw connection.closedErrorAfter(operation, error) ?? error;
  };
  return {
    get target() {
      return exec.target;
    },
    exec(request) {
      const operation = operationOf(request);
      try {
        connection.ensureOpen(operation);
      } catch (error) {
        return Promise.reject(error);
      }
      return exec.exec(request).then((result) => {
        // A command cut off with its connection has no exit status: the loss is the error, not the command.
        const lost = result.exitCode === null ? connection.closedErrorAfter(operation, undefined) : undefined;
        if (lost) throw lost;
        return result;
      }, mapped(operation));
    },
    spawn(request): ExecProcess {
      const operation = operationOf(request);
      connection.ensureOpen(operation);
      const proc = exec.spawn(request);
      return {
        get stdout() {
          return proc.stdout;
        },
        get stderr() {
          return proc.stderr;
        },
        get stdin() {
          return proc.stdin;
        },
        wait: () => proc.wait().catch(mapped(operation)),
        kill: () => proc.kill(),
      };
    },
  };
}
