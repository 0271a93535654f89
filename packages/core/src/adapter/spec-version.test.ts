import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { assertSpecificationVersion } from './spec-version';

describe('assertSpecificationVersion', () => {
  it('accepts v1', () => {
    expect(() =>
      assertSpecificationVersion({ specificationVersion: 'v1', adapter: 'kvm-libvirt' }),
    ).not.toThrow();
  });

  it('rejects other versions naming the adapter and version', () => {
    let thrown: unknown;
    try {
      assertSpecificationVersion({ specificationVersion: 'v2', adapter: 'xen-xapi' });
    } catch (error) {
      thrown = error;
    }
    expect(HvkitError.isInstance(thrown, 'UNSUPPORTED')).toBe(true);
    const error = thrown as HvkitError;
    expect(error.message).toContain('"xen-xapi"');
    expect(error.message).toContain('"v2"');
    expect(error.message).toContain('"v1"');
    expect(error.adapter).toBe('xen-xapi');
    expect(error.details).toEqual({ specificationVersion: 'v2' });
  });

  it('rejects a missing version and a missing adapter name', () => {
    let thrown: unknown;
    try {
      assertSpecificationVersion({});
    } catch (error) {
      thrown = error;
    }
    expect(HvkitError.isInstance(thrown, 'UNSUPPORTED')).toBe(true);
    expect((thrown as Error).message).toContain('(unnamed)');
    expect((thrown as Error).message).toContain('undefined');
  });

  it('throws TypeError for non-objects', () => {
    expect(() => assertSpecificationVersion(null)).toThrow(TypeError);
    expect(() => assertSpecificationVersion('v1')).toThrow(TypeError);
  });
});
