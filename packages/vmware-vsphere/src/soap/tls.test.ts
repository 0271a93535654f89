import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { createVimFetch, normalizeThumbprint, thumbprintOf } from './tls';

describe('normalizeThumbprint', () => {
  it('accepts govc and vCenter spellings', () => {
    const canonical = 'E6:16:A7:C4:09:38:CB:17:FB:73:3A:BC:1B:15:F1:AC:81:13:EF:28';
    expect(normalizeThumbprint(canonical)).toBe(canonical);
    expect(normalizeThumbprint(canonical.toLowerCase())).toBe(canonical);
    expect(normalizeThumbprint(canonical.replaceAll(':', ''))).toBe(canonical);
    expect(normalizeThumbprint(` ${canonical.replaceAll(':', ' ')} `)).toBe(canonical);
  });

  it('rejects anything but a SHA-1 thumbprint', () => {
    for (const bad of ['', 'zz'.repeat(20), 'AB'.repeat(32), 'AB'.repeat(19)]) {
      let thrown: unknown;
      try {
        normalizeThumbprint(bad);
      } catch (error) {
        thrown = error;
      }
      expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT'), bad).toBe(true);
    }
    expect(() => normalizeThumbprint(5 as never)).toThrow(TypeError);
  });
});

describe('createVimFetch', () => {
  it('refuses a thumbprint together with the opt-out, and a malformed thumbprint', () => {
    expect(() => createVimFetch({ tls: { insecureSkipVerify: true, thumbprint: 'AB'.repeat(20) } })).toThrow(
      TypeError,
    );
    expect(() => createVimFetch({ tls: { thumbprint: 'nope' } })).toThrow(HvkitError);
  });

  it('thumbprintOf needs a certificate (the live tests check it against the peer certificate)', () => {
    expect(() =>
      thumbprintOf('-----BEGIN CERTIFICATE-----\nnot a certificate\n-----END CERTIFICATE-----'),
    ).toThrow();
  });
});
