import { describe, expect, it } from 'vitest';
import { toHypervisorInfo } from './hypervisor';

describe('toHypervisorInfo', () => {
  it('maps product and version, and the build when there is one', () => {
    expect(toHypervisorInfo({ product: 'lvm-stub', version: '1.2.3', build: '42' })).toEqual({
      kind: 'lvm-stub',
      version: '1.2.3',
      build: '42',
    });
  });

  it('leaves out an empty or missing build', () => {
    expect(toHypervisorInfo({ product: 'p', version: '1', build: '' })).toEqual({ kind: 'p', version: '1' });
    expect(toHypervisorInfo({ product: 'p', version: '1' })).toEqual({ kind: 'p', version: '1' });
  });
});
