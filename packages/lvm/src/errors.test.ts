import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { ADAPTER_ID, commandFailedToHvkitError } from './errors';

describe('commandFailedToHvkitError', () => {
  it.each([
    [127, '', 'NOT_FOUND'],
    [126, '', 'PERMISSION_DENIED'],
    [1, 'error: no such guest', 'NOT_FOUND'],
    [1, 'Permission denied', 'PERMISSION_DENIED'],
    [1, 'operation not permitted', 'PERMISSION_DENIED'],
    [1, 'volume already exists', 'CONFLICT'],
    [1, 'device busy', 'CONFLICT'],
    [1, 'feature not supported', 'UNSUPPORTED'],
    [2, 'usage: tool [options]', 'INVALID_ARGUMENT'],
    [1, 'something else happened', 'REMOTE'],
    [1, '', 'REMOTE'],
  ] as const)('exit %i with stderr %j -> %s', (exitCode, stderr, code) => {
    const error = commandFailedToHvkitError(
      { program: 'tool', exitCode, signal: null, stderr },
      { operation: 'hello' },
    );
    expect(HvkitError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({ code, adapter: ADAPTER_ID, operation: 'hello', backendCode: exitCode });
    expect(error.backendMessage).toBe(stderr === '' ? undefined : stderr);
  });

  it('says when the command was killed by a signal', () => {
    const error = commandFailedToHvkitError({
      program: 'tool',
      exitCode: null,
      signal: 'SIGKILL',
      stderr: '',
    });
    expect(error).toMatchObject({ code: 'REMOTE', backendCode: 'SIGKILL' });
    expect(error.message).toMatch(/killed by SIGKILL/);
  });
});
