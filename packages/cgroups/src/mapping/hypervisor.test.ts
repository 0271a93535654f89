import { describe, expect, it } from 'vitest';
import { toHypervisorInfo } from './hypervisor';

describe('toHypervisorInfo', () => {
  it('maps the mode product and the kernel release', () => {
    expect(toHypervisorInfo({ product: 'cgroup-hybrid', version: '6.18.0' })).toEqual({
      kind: 'cgroup-hybrid',
      version: '6.18.0',
    });
  });
});
