import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import {
  sharesToWeight,
  vsphereSharesInfoToWeight,
  vsphereSharesToWeight,
  weightToShares,
  weightToVsphereShares,
  weightToVsphereSharesInfo,
} from './cpu';

function expectInvalid(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT')).toBe(true);
}

describe('cgroup v1 shares <-> v2 weight (kernel linear mapping)', () => {
  it.each([
    [100, 1024],
    [1, 10],
    [2, 20],
    [50, 512],
    [200, 2048],
    [10000, 102400],
    [39, 399], // 399.36
    [3, 31], // 30.72 rounds up
  ])('weight %d → shares %d', (weight, shares) => {
    expect(weightToShares(weight)).toBe(shares);
  });

  it('clamps shares to 2..262144', () => {
    expect(weightToShares(0)).toBe(2);
    expect(weightToShares(0.1)).toBe(2);
    expect(weightToShares(30000)).toBe(262144);
  });

  it.each([
    [1024, 100],
    [2, 1], // 0.195 → clamped up to 1
    [10, 1],
    [512, 50],
    [2048, 200],
    [102400, 10000],
    [262144, 10000], // 25600 → clamped down
    [1000, 98], // 97.66
    [5, 1], // 0.49 → 0 → clamped to 1
    [6, 1], // 0.586 → 1
    [16, 2], // 1.5625 → 2
  ])('shares %d → weight %d', (shares, weight) => {
    expect(sharesToWeight(shares)).toBe(weight);
  });

  it('rounds halves up, like DIV_ROUND_CLOSEST', () => {
    // 512 * 100 / 1024 = 50 exactly; 1536 * 100 / 1024 = 150; 5.12 → 5; 15.36 → 15
    expect(sharesToWeight(1536)).toBe(150);
    // 128 * 100 / 1024 = 12.5 → 13
    expect(sharesToWeight(128)).toBe(13);
    // weight 25 → 256 exactly; weight 0.5 * 1024/100 = 5.12
    expect(weightToShares(25)).toBe(256);
  });

  it('round trips every weight that survives the shares granularity', () => {
    for (let weight = 1; weight <= 10000; weight++) {
      expect(sharesToWeight(weightToShares(weight))).toBe(weight);
    }
  });

  it('rejects negatives and non-finite values', () => {
    for (const v of [-1, Number.NaN, Number.POSITIVE_INFINITY]) {
      expectInvalid(() => weightToShares(v));
      expectInvalid(() => sharesToWeight(v));
    }
    expect(() => weightToShares('100' as unknown as number)).toThrow(TypeError);
  });
});

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
});
