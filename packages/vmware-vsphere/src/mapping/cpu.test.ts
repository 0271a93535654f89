import { describe, expect, it } from 'vitest';
import {
  VSPHERE_SHARES_PER_VCPU,
  vsphereSharesInfoToWeight,
  vsphereSharesToWeight,
  weightToVsphereShares,
  weightToVsphereSharesInfo,
} from './cpu';

/** `fn` throws an INVALID_ARGUMENT HvkitError naming this adapter. */
function expectInvalid(fn: () => unknown): void {
  expect(fn).toThrow(expect.objectContaining({ code: 'INVALID_ARGUMENT', adapter: 'vmware-vsphere' }));
}

describe('vSphere shares per vCPU', () => {
  it('normal/low/high per vCPU map to 100/50/200', () => {
    for (const vcpus of [1, 2, 4, 16]) {
      expect(vsphereSharesToWeight(1000 * vcpus, vcpus)).toBe(100);
      expect(vsphereSharesToWeight(500 * vcpus, vcpus)).toBe(50);
      expect(vsphereSharesToWeight(2000 * vcpus, vcpus)).toBe(200);
      expect(weightToVsphereShares(100, vcpus)).toBe(1000 * vcpus);
      expect(weightToVsphereShares(50, vcpus)).toBe(500 * vcpus);
      expect(weightToVsphereShares(200, vcpus)).toBe(2000 * vcpus);
    }
  });

  it('custom shares are normalised per vCPU and clamped', () => {
    expect(vsphereSharesToWeight(3000, 2)).toBe(150);
    expect(vsphereSharesToWeight(1, 4)).toBe(1); // 0.025 → clamped
    expect(vsphereSharesToWeight(0, 1)).toBe(1);
    expect(vsphereSharesToWeight(10_000_000, 1)).toBe(10000); // 1,000,000 → clamped
    expect(vsphereSharesToWeight(1234, 3)).toBe(41); // 41.13
    expect(weightToVsphereShares(1, 1)).toBe(10);
    expect(weightToVsphereShares(0, 1)).toBe(1);
    expect(weightToVsphereShares(10000, 8)).toBe(800000);
  });

  it('round trips 1..10000 for several vCPU counts', () => {
    for (const vcpus of [1, 3, 8]) {
      for (let weight = 1; weight <= 10000; weight += 7) {
        expect(vsphereSharesToWeight(weightToVsphereShares(weight, vcpus), vcpus)).toBe(weight);
      }
    }
  });

  it('SharesInfo levels', () => {
    expect(vsphereSharesInfoToWeight({ level: 'normal', shares: 4000 }, 4)).toBe(100);
    expect(vsphereSharesInfoToWeight({ level: 'low', shares: 2000 }, 4)).toBe(50);
    expect(vsphereSharesInfoToWeight({ level: 'high', shares: 8000 }, 4)).toBe(200);
    // The level wins over a stale shares number.
    expect(vsphereSharesInfoToWeight({ level: 'normal', shares: 1 }, 4)).toBe(100);
    expect(vsphereSharesInfoToWeight({ level: 'custom', shares: 6000 }, 4)).toBe(150);
    expectInvalid(() => vsphereSharesInfoToWeight({ level: 'medium' as 'low', shares: 1 }, 1));
  });

  it('weight → SharesInfo picks predefined levels when they match', () => {
    expect(weightToVsphereSharesInfo(100, 2)).toEqual({ level: 'normal', shares: 2000 });
    expect(weightToVsphereSharesInfo(50, 2)).toEqual({ level: 'low', shares: 1000 });
    expect(weightToVsphereSharesInfo(200, 2)).toEqual({ level: 'high', shares: 4000 });
    expect(weightToVsphereSharesInfo(150, 2)).toEqual({ level: 'custom', shares: 3000 });
  });

  it('rejects bad vcpus and shares', () => {
    for (const vcpus of [0, -1, 1.5, Number.NaN]) {
      expectInvalid(() => vsphereSharesToWeight(1000, vcpus));
      expectInvalid(() => weightToVsphereShares(100, vcpus));
    }
    expectInvalid(() => vsphereSharesToWeight(-1, 1));
    expect(() => vsphereSharesInfoToWeight(null as unknown as { level: 'low'; shares: 1 }, 1)).toThrow(
      TypeError,
    );
  });

  it('keeps the level table frozen', () => {
    expect(Object.isFrozen(VSPHERE_SHARES_PER_VCPU)).toBe(true);
    expect(VSPHERE_SHARES_PER_VCPU).toEqual({ low: 500, normal: 1000, high: 2000 });
  });
});
