import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { MAX_ECHO_LENGTH } from '../errors/message';
import type { GuestRef } from '../hypervisor/v1/model';
import { formatGuestRef, isUuid, resolveGuestRef } from './guest-ref';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return HvkitError.isInstance(error) ? error.code : (error as Error).name;
  }
  return undefined;
}

describe('resolveGuestRef', () => {
  it('normalises the four shapes', () => {
    expect(resolveGuestRef('vm-42')).toEqual({ by: 'id', value: 'vm-42' });
    expect(resolveGuestRef({ id: 'vm-42' })).toEqual({ by: 'id', value: 'vm-42' });
    expect(resolveGuestRef({ name: 'web 1' })).toEqual({ by: 'name', value: 'web 1' });
    expect(resolveGuestRef({ uuid: '6F2A5E3C-1B2D-4E5F-8A9B-0C1D2E3F4A5B' })).toEqual({
      by: 'uuid',
      value: '6f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b',
    });
  });

  it('keeps names and ids verbatim (hostile characters included)', () => {
    for (const name of ["a'b", '$(touch /tmp/x)', '; rm -rf x', 'line\nbreak', '-leading', ' padded ']) {
      expect(resolveGuestRef({ name })).toEqual({ by: 'name', value: name });
      expect(resolveGuestRef(name)).toEqual({ by: 'id', value: name });
    }
  });

  it('accepts a Guest object: id wins over uuid over name', () => {
    const guest = { id: 'dom-1', uuid: '6f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b', name: 'g1', vcpus: 2 };
    expect(resolveGuestRef(guest as GuestRef)).toEqual({ by: 'id', value: 'dom-1' });
    expect(resolveGuestRef({ uuid: guest.uuid, name: 'g1' } as GuestRef)).toEqual({
      by: 'uuid',
      value: guest.uuid,
    });
  });

  it('rejects wrong shapes with TypeError', () => {
    for (const ref of [
      undefined,
      null,
      42,
      true,
      [],
      ['a'],
      {},
      { ID: 'x' },
      { id: 5 },
      { name: null },
      { uuid: {} },
    ]) {
      expect(() => resolveGuestRef(ref as unknown as GuestRef)).toThrow(TypeError);
    }
  });

  it('rejects empty values and bad uuids with INVALID_ARGUMENT', () => {
    expect(codeOf(() => resolveGuestRef(''))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => resolveGuestRef('   '))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => resolveGuestRef({ id: '' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => resolveGuestRef({ name: '' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => resolveGuestRef({ uuid: '' }))).toBe('INVALID_ARGUMENT');
    expect(codeOf(() => resolveGuestRef({ uuid: 'not-a-uuid' }))).toBe('INVALID_ARGUMENT');
  });

  it('formats refs for messages', () => {
    expect(formatGuestRef({ name: 'web"1' })).toBe('name "web\\"1"');
    expect(formatGuestRef('x')).toBe('id "x"');
  });

  it('truncates a long value with a marker, so a 100 kB name gives a short message', () => {
    const text = formatGuestRef({ name: `web${'x'.repeat(100_000)}` });
    expect(text.length).toBeLessThan(MAX_ECHO_LENGTH + 60);
    expect(text).toMatch(/^name "webxxx[x]*"…\[truncated, \d+ more characters\]$/);
    expect(text).toContain(`${100_003 - MAX_ECHO_LENGTH} more characters`);
  });
});

describe('isUuid', () => {
  it.each([
    ['6f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b', true],
    ['6F2A5E3C-1B2D-4E5F-8A9B-0C1D2E3F4A5B', true],
    ['00000000-0000-0000-0000-000000000000', true],
    ['6f2a5e3c1b2d4e5f8a9b0c1d2e3f4a5b', false],
    ['6f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5', false],
    ['6f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5bb', false],
    ['g f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b', false],
    [' 6f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b', false],
    ['', false],
    [42, false],
  ])('%j → %s', (value, expected) => {
    expect(isUuid(value)).toBe(expected);
  });
});
