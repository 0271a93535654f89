import { HvkitError, hvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { ADAPTER_ID, fileErrorToHvkitError } from './errors';

describe('fileErrorToHvkitError', () => {
  it.each([
    ['NOT_FOUND', 'UNSUPPORTED'],
    ['INVALID_ARGUMENT', 'PROTOCOL'],
    ['PERMISSION_DENIED', 'PERMISSION_DENIED'],
    ['TIMEOUT', 'TIMEOUT'],
    ['ABORTED', 'ABORTED'],
    ['CONNECTION_LOST', 'CONNECTION_LOST'],
    ['REMOTE', 'REMOTE'],
  ] as const)('%s -> %s', (from, code) => {
    const cause = hvkitError(from, 'x', { backendCode: 'EXXX' });
    const error = fileErrorToHvkitError(cause, 'etc/thing', { operation: 'hello' });
    expect(HvkitError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      code,
      adapter: ADAPTER_ID,
      operation: 'hello',
      backendCode: 'EXXX',
      cause,
    });
    expect(error.details).toEqual({ path: 'etc/thing' });
  });

  it('treats anything that is not an HvkitError as REMOTE', () => {
    expect(fileErrorToHvkitError(new Error('boom'), 'a')).toMatchObject({ code: 'REMOTE' });
  });
});
