import { describe, expect, it } from 'vitest';
import { REDACTED } from '../redact';
import { ERROR_CODES, HvkitError, hvkitError, MAX_DETAIL_LENGTH } from './hvkit-error';
import { MAX_MESSAGE_LENGTH } from './message';

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

  it('bounds a 4 MiB message and backendMessage, ending them with a truncation marker', () => {
    const huge = `start ${'x'.repeat(4 * 1024 * 1024)} end`;
    const e = hvkitError('REMOTE', huge, { backendMessage: huge });
    for (const text of [e.message, e.backendMessage as string]) {
      expect(text.length).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH);
      expect(text.startsWith('start xxx')).toBe(true);
      expect(text).toMatch(/…\[truncated, \d+ more characters\]$/);
    }
    expect((e.stack ?? '').length).toBeLessThan(MAX_MESSAGE_LENGTH + 5000);
    expect(JSON.stringify(e).length).toBeLessThan(3 * MAX_MESSAGE_LENGTH);
  });

  it('strips ANSI escapes and control characters from message and backendMessage', () => {
    const text =
      '\u001b[31mred\u001b[0m line1\r\nline2\tx\u0000y\u0007z\u001b]0;title\u0007 \u009bk \u202eevil';
    const e = hvkitError('REMOTE', text, { backendMessage: text });
    for (const out of [e.message, e.backendMessage as string]) {
      expect(out).toBe('red line1 line2 xyz k evil');
    }
  });

  it('removes secrets that follow known patterns from message and backendMessage', () => {
    const e = hvkitError('AUTH_FAILED', 'login with password=hunter2 refused', {
      backendMessage: '<password>hunter2</password> Cookie: vmware_soap_session="abc"',
    });
    expect(e.message).toBe(`login with password=${REDACTED} refused`);
    expect(e.backendMessage).not.toContain('hunter2');
    expect(e.backendMessage).not.toContain('abc');
    expect(e.stack).not.toContain('hunter2');
  });

  it('bounds long string details, which toJSON shows', () => {
    const e = hvkitError('REMOTE', 'x', { details: { str1: 'y'.repeat(1_000_000), n: 1, nested: { a: 1 } } });
    expect(String(e.details?.str1).length).toBeLessThanOrEqual(MAX_DETAIL_LENGTH);
    expect(e.details).toMatchObject({ n: 1, nested: { a: 1 } });
  });
});
