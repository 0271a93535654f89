import { describe, expect, it } from 'vitest';
import { VMWARE_VSPHERE_SUPPORTS } from './index';

/** Every object and array in `value`, itself included. */
function objectsIn(value: unknown): object[] {
  if (typeof value !== 'object' || value === null) return [];
  return [value, ...Object.values(value).flatMap(objectsIn)];
}

describe('VMWARE_VSPHERE_SUPPORTS', () => {
  it('is frozen at every level, so no caller can change what the adapter claims', () => {
    const all = objectsIn(VMWARE_VSPHERE_SUPPORTS);
    expect(all.length).toBeGreaterThan(10);
    for (const o of all) expect(Object.isFrozen(o)).toBe(true);
    expect(() => {
      (VMWARE_VSPHERE_SUPPORTS.limits.modes as unknown as string[]).push('live');
    }).toThrow(TypeError);
    expect(VMWARE_VSPHERE_SUPPORTS.limits.modes).toEqual(['both']);
  });
});
