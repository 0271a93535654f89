/** serviceOnlyOnCallersConnection: the skip map of a service-only run on a connection the caller owns. */

import { createInMemoryAdapter } from '@hvkit/core/testing';
import { describe, expect, it } from 'vitest';
import { serviceOnlyOnCallersConnection } from './checks-service';
import { listConformanceChecks } from './run';

describe('serviceOnlyOnCallersConnection', () => {
  it('skips every check but the service group, except the two that need a reconnecting adapter, each with a reason', () => {
    const skip = serviceOnlyOnCallersConnection('covered by another run');
    const matches = (id: string) => Object.keys(skip).some((k) => id === k || id.startsWith(`${k}.`));
    const ids = listConformanceChecks(createInMemoryAdapter().supports).map((c) => c.id);
    const left = ids.filter((id) => !matches(id));
    expect(left.length).toBeGreaterThan(0);
    expect(left.every((id) => id.startsWith('service.'))).toBe(true);
    expect(left).toContain('service.no-reconnect');
    expect(left).not.toContain('service.restart');
    expect(left).not.toContain('service.close-while-reconnecting');
    // Every key names checks that exist (runAdapterConformance fails a run on a key that names none).
    for (const key of Object.keys(skip))
      expect(
        ids.some((id) => id === key || id.startsWith(`${key}.`)),
        key,
      ).toBe(true);
    expect(Object.values(skip).every((reason) => reason.trim() !== '')).toBe(true);
    expect(skip.adapter).toBe('covered by another run');
  });

  it('needs a reason', () => {
    expect(() => serviceOnlyOnCallersConnection(' ')).toThrow(TypeError);
  });
});
