import { describe, expect, it } from 'vitest';
import { ERROR_CODES, HvkitError, hvkitError } from './hvkit-error';

describe('HvkitError', () => {
  it('carries code, adapter, operation, backend facts and cause', () => {
    const cause = new Error('socket closed');
    const e = hvkitError('CONNECTION_LOST', 'libvirtd went away', {
      adapter: 'kvm-libvirt',
      operation: 'inventory.listGuests',
      backendCode: 38,
      backendMessage: 'End of file while reading data',
      cause,
    });
    expect(e.code).toBe('CONNECTION_LOST');
    expect(e.adapter).toBe('kvm-libvirt');
    expect(e.operation).toBe('inventory.listGuests');
    expect(e.backendCode).toBe(38);
    expect(e.cause).toBe(cause);
    expect(e.retryable).toBe(true);
    expect(e.name).toBe('HvkitError');
    expect(e).toBeInstanceOf(Error);
  });

  it('defaults retryable to true only for TIMEOUT and CONNECTION_LOST', () => {
    const retryable = ERROR_CODES.filter((code) => new HvkitError({ code, message: code }).retryable);
    expect(retryable).toEqual(['TIMEOUT', 'CONNECTION_LOST']);
    expect(new HvkitError({ code: 'REMOTE', message: 'busy', retryable: true }).retryable).toBe(true);
  });

  it('names aborts AbortError', () => {
    expect(hvkitError('ABORTED', 'cancelled').name).toBe('AbortError');
  });

  it('is recognised through the global symbol brand, as a second copy of the package would be', () => {
    const fromOtherCopy = Object.assign(new Error('x'), { code: 'NOT_FOUND' });
    Object.defineProperty(fromOtherCopy, Symbol.for('hvkit.error'), { value: true });
    expect(HvkitError.isInstance(fromOtherCopy)).toBe(true);
    expect(HvkitError.isInstance(fromOtherCopy, 'NOT_FOUND')).toBe(true);
    expect(HvkitError.isInstance(fromOtherCopy, 'TIMEOUT')).toBe(false);
    expect(HvkitError.isInstance(new Error('plain'))).toBe(false);
    expect(HvkitError.isInstance(null)).toBe(false);
    expect(HvkitError.isInstance({ code: 'NOT_FOUND' })).toBe(false);
  });

  it('serialises without the stack and keeps the brand out of enumerable keys', () => {
    const e = hvkitError('INVALID_ARGUMENT', 'weight must be 1..10000', { details: { field: 'cpu.weight' } });
    expect(Object.keys(e)).not.toContain(Symbol.for('hvkit.error').toString());
    expect(JSON.parse(JSON.stringify(e))).toMatchObject({
      code: 'INVALID_ARGUMENT',
      message: 'weight must be 1..10000',
      details: { field: 'cpu.weight' },
      retryable: false,
    });
  });
});
