import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { sharesToWeight, weightToShares } from './cpu';

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
