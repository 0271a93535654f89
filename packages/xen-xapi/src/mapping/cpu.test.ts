import { describe, expect, it } from 'vitest';
import { weightToXapiWeight, xapiWeightToWeight } from './cpu';

describe('XAPI weight conversion (256 = weight 100)', () => {
  it.each([
    [1, 1],
    [128, 50],
    [256, 100],
    [512, 200],
    [100, 39],
    [65535, 10000],
  ])('xapi %i -> weight %i', (xapi, weight) => {
    expect(xapiWeightToWeight(xapi)).toBe(weight);
  });

  it.each([
    [100, 256],
    [1, 3],
    [10000, 25600],
    [200, 512],
    [300, 768],
  ])('weight %i -> xapi %i', (weight, xapi) => {
    expect(weightToXapiWeight(weight)).toBe(xapi);
  });

  it('halves round up and both directions clamp', () => {
    expect(xapiWeightToWeight(2)).toBe(1); // 0.78
    expect(xapiWeightToWeight(128 + 1.28)).toBe(51); // exactly 50.5 -> 51
    expect(weightToXapiWeight(0)).toBe(1);
    expect(weightToXapiWeight(30000)).toBe(65535);
    expect(xapiWeightToWeight(0)).toBe(1);
  });

  it('every weight 1..10000 round-trips through XAPI exactly', () => {
    for (let w = 1; w <= 10000; w += 1) {
      expect(Math.abs(xapiWeightToWeight(weightToXapiWeight(w)) - w)).toBeLessThanOrEqual(0);
    }
  });
});
