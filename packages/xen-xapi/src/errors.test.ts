import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { ADAPTER_ID, backendErrorToHvkitError, XAPI_ERROR_CODES, xapiErrorToHvkitError } from './errors';

describe('backendErrorToHvkitError', () => {
  it.each([
    [400, 'INVALID_ARGUMENT', false],
    [401, 'AUTH_FAILED', false],
    [403, 'PERMISSION_DENIED', false],
    [404, 'NOT_FOUND', false],
    [405, 'UNSUPPORTED', false],
    [408, 'TIMEOUT', true],
    [409, 'CONFLICT', false],
    [412, 'CONFLICT', false],
    [418, 'REMOTE', false],
    [422, 'INVALID_ARGUMENT', false],
    [429, 'REMOTE', true],
    [500, 'REMOTE', true],
    [501, 'UNSUPPORTED', false],
    [503, 'REMOTE', true],
    [504, 'TIMEOUT', true],
  ] as const)('HTTP %i -> %s (retryable: %s)', (status, code, retryable) => {
    const error = backendErrorToHvkitError(status, '', { operation: 'hello' });
    expect(HvkitError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      code,
      retryable,
      adapter: ADAPTER_ID,
      operation: 'hello',
      backendCode: status,
    });
  });

  it.each([
    ['{"error":{"message":"no such object"}}', 'no such object'],
    ['{"message":"busy"}', 'busy'],
    ['{"error":"denied"}', 'denied'],
    ['plain text', 'plain text'],
    ['  ', undefined],
  ])('takes the backend message from %j', (body, message) => {
    expect(backendErrorToHvkitError(500, body).backendMessage).toBe(message);
  });
});

describe('xapiErrorToHvkitError', () => {
  it.each(Object.entries(XAPI_ERROR_CODES))('%s -> %s', (xapiCode, code) => {
    const error = xapiErrorToHvkitError([xapiCode, 'p1', 'p2'], { operation: 'VM.start' });
    expect(error).toMatchObject({
      code,
      adapter: ADAPTER_ID,
      operation: 'VM.start',
      backendCode: xapiCode,
      details: { params: ['p1', 'p2'] },
    });
  });

  it('an unknown code or an SR backend failure is REMOTE; SESSION_INVALID is retryable', () => {
    expect(xapiErrorToHvkitError(['SR_BACKEND_FAILURE_46', 'x']).code).toBe('REMOTE');
    expect(xapiErrorToHvkitError(['SOMETHING_NEW']).code).toBe('REMOTE');
    expect(xapiErrorToHvkitError(['SESSION_INVALID', 'OpaqueRef:s']).retryable).toBe(true);
    expect(xapiErrorToHvkitError(['HANDLE_INVALID', 'VM', 'OpaqueRef:x']).retryable).toBe(false);
    expect(xapiErrorToHvkitError(undefined).backendCode).toBe('UNKNOWN');
  });
});
