import { describe, expect, it } from 'vitest';
import { checkOptionKeys, type OptionKeySpec } from './option-keys';

const spec = {
  url: true,
  tls: ['ca', 'thumbprint', 'insecureSkipVerify'],
  transport: { ssh: { client: true, connect: ['host', 'auth'] }, readOnly: true },
  keepalive: ['intervalMs'],
} as const satisfies OptionKeySpec;

function misuse(fn: () => void): string {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TypeError);
    return (error as Error).message;
  }
  throw new Error('expected a TypeError');
}

describe('checkOptionKeys', () => {
  it('accepts known keys at every level, undefined options, and non-object nested values', () => {
    expect(() => checkOptionKeys(undefined, spec, 'test')).not.toThrow();
    expect(() =>
      checkOptionKeys(
        { url: 'x', tls: { ca: 'pem' }, transport: { ssh: { connect: { host: 'h' } } }, keepalive: false },
        spec,
        'test',
      ),
    ).not.toThrow();
    // A class instance where a nested spec is given is not looked into.
    expect(() =>
      checkOptionKeys(
        {
          transport: {
            ssh: new (class {
              other = 1;
            })(),
          },
        },
        spec,
        'test',
      ),
    ).not.toThrow();
    expect(() => checkOptionKeys({ [Symbol('x')]: 1 }, spec, 'test')).not.toThrow();
  });

  it('names an unknown top-level key and lists the accepted ones', () => {
    expect(misuse(() => checkOptionKeys({ url: 'x', timeout: 5 }, spec, 'vmware-vsphere connect'))).toBe(
      'vmware-vsphere connect: unknown option timeout; accepted options: url, tls, transport, keepalive.',
    );
  });

  it('names a nested unknown key with its path, even when its value is undefined', () => {
    expect(misuse(() => checkOptionKeys({ tls: { pinnedSha256: 'AB:CD' } }, spec, 'connect'))).toBe(
      'connect: unknown option tls.pinnedSha256; tls accepts: ca, thumbprint, insecureSkipVerify.',
    );
    expect(
      misuse(() => checkOptionKeys({ transport: { ssh: { connect: { hots: 'h' } } } }, spec, 'connect')),
    ).toBe('connect: unknown option transport.ssh.connect.hots; transport.ssh.connect accepts: host, auth.');
    expect(misuse(() => checkOptionKeys({ tls: { pinned: undefined } }, spec, 'c'))).toContain('tls.pinned');
  });

  it('lists several unknown keys, bounded, and quotes odd or huge ones', () => {
    const many = Object.fromEntries(Array.from({ length: 8 }, (_, i) => [`k${i}`, i]));
    expect(misuse(() => checkOptionKeys(many, ['a'], 'c'))).toBe(
      'c: unknown options k0, k1, k2, k3, k4 (and 3 more); accepted options: a.',
    );
    const message = misuse(() => checkOptionKeys({ [`bad key${'x'.repeat(100_000)}`]: 1 }, ['a'], 'c'));
    expect(message.length).toBeLessThan(200);
    expect(message).toContain('"bad keyxxx');
  });

  it('rejects options that are not an object', () => {
    expect(misuse(() => checkOptionKeys(null, spec, 'c'))).toBe('c: options must be an object, got null.');
    expect(misuse(() => checkOptionKeys('x', spec, 'c'))).toBe('c: options must be an object, got string.');
    expect(misuse(() => checkOptionKeys([], spec, 'c'))).toBe('c: options must be an object, got an array.');
  });
});
