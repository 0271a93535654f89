import { HvkitError, hvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { ADAPTER_ID, cgroupFileError, ERRNO_CODES, fileErrorToHvkitError } from './errors';

describe('fileErrorToHvkitError (hello)', () => {
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
    const error = fileErrorToHvkitError(cause, '/proc/self/mountinfo', { operation: 'connect' });
    expect(HvkitError.isInstance(error)).toBe(true);
    expect(error).toMatchObject({
      code,
      adapter: ADAPTER_ID,
      operation: 'connect',
      backendCode: 'EXXX',
      cause,
    });
    expect(error.details).toEqual({ path: '/proc/self/mountinfo' });
  });

  it('treats anything that is not an HvkitError as REMOTE', () => {
    expect(fileErrorToHvkitError(new Error('boom'), 'a')).toMatchObject({ code: 'REMOTE' });
  });
});

describe('cgroupFileError (the kernel refused a write)', () => {
  it.each([
    ['EINVAL', 'INVALID_ARGUMENT'],
    ['ERANGE', 'INVALID_ARGUMENT'],
    ['EBUSY', 'CONFLICT'],
    ['ENODEV', 'NOT_FOUND'],
    ['ENOENT', 'NOT_FOUND'],
    ['EACCES', 'PERMISSION_DENIED'],
    ['EIO', 'REMOTE'],
  ])('%s -> %s, the errno kept', (errno, code) => {
    // core's local transport maps EINVAL etc. to REMOTE with the errno as backendCode.
    const cause = hvkitError(errno === 'ENOENT' ? 'NOT_FOUND' : 'REMOTE', 'write failed', {
      backendCode: errno,
    });
    const e = cgroupFileError(cause, '/sys/fs/cgroup/cpu/g/cpu.shares', {
      operation: 'limits.set',
      value: 'x',
    });
    expect(e).toMatchObject({
      code,
      backendCode: errno,
      adapter: ADAPTER_ID,
      operation: 'limits.set',
      cause,
    });
    expect(e.details).toEqual({ path: '/sys/fs/cgroup/cpu/g/cpu.shares', errno, value: 'x' });
    expect(e.message).toContain(errno);
  });

  it('keeps TIMEOUT, ABORTED and CONNECTION_LOST whatever the errno', () => {
    for (const code of ['TIMEOUT', 'ABORTED', 'CONNECTION_LOST'] as const) {
      expect(cgroupFileError(hvkitError(code, 'x'), '/p', { operation: 'limits.set' }).code).toBe(code);
    }
  });

  it('reads a Node errno too', () => {
    const node = Object.assign(new Error('EBUSY: resource busy'), { code: 'EBUSY' });
    expect(cgroupFileError(node, '/p', { operation: 'rmdir' })).toMatchObject({
      code: 'CONFLICT',
      backendCode: 'EBUSY',
    });
  });

  it('maps exactly the errnos of the notes', () => {
    expect(Object.keys(ERRNO_CODES).sort()).toEqual(
      [
        'EACCES',
        'EAGAIN',
        'EBUSY',
        'EINVAL',
        'ENODEV',
        'ENOENT',
        'ENOSPC',
        'ENOTDIR',
        'EPERM',
        'ERANGE',
        'EROFS',
      ].sort(),
    );
  });
});
