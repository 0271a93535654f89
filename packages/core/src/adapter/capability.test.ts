import { describe, expect, expectTypeOf, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import type { LimitsCapability } from '../hypervisor/v1/hypervisor-adapter-v1';
import { createInMemoryAdapter } from '../testing/in-memory-adapter';
import { hasCapability, requireCapability } from './capability';

describe('hasCapability and requireCapability', () => {
  it('narrow a present capability and hand it out', async () => {
    const hv = createInMemoryAdapter();
    const generic: import('../hypervisor/v1/hypervisor-adapter-v1').HypervisorAdapterV1 = hv;
    expect(hasCapability(generic, 'limits')).toBe(true);
    if (hasCapability(generic, 'limits')) {
      expectTypeOf(generic.limits).toEqualTypeOf<LimitsCapability>();
      expect((await generic.limits.get('vm-101')).cpu).toBeDefined();
    }
    const limits = requireCapability(generic, 'limits');
    expectTypeOf(limits).toEqualTypeOf<LimitsCapability>();
    expect(limits).toBe(generic.limits);
    await hv.close();
  });

  it('report a missing capability: false, and UNSUPPORTED naming the adapter', async () => {
    const hv = createInMemoryAdapter({ without: ['limits'] });
    expect(hasCapability(hv, 'limits')).toBe(false);
    let error: unknown;
    try {
      requireCapability(hv, 'limits');
    } catch (e) {
      error = e;
    }
    expect(HvkitError.isInstance(error, 'UNSUPPORTED')).toBe(true);
    expect((error as HvkitError).message).toBe(
      'in-memory has no limits capability (see its supports.limits).',
    );
    await hv.close();
  });

  it('treat bad arguments as misuse', () => {
    const hv = createInMemoryAdapter();
    expect(() => requireCapability(hv, 'limitz' as 'limits')).toThrow(TypeError);
    expect(() => hasCapability(null as never, 'limits')).toThrow(TypeError);
  });
});
