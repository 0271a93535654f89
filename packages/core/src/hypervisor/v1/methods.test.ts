import { describe, expect, expectTypeOf, it } from 'vitest';
import type { HypervisorAdapterV1 } from './hypervisor-adapter-v1';
import {
  SPEC_V1_CAPABILITIES,
  SPEC_V1_METHODS,
  type SpecV1CapabilityName,
  type SpecV1MethodTable,
  type SpecV1Operation,
  specV1Methods,
} from './methods';

describe('SPEC_V1_METHODS', () => {
  it('names every capability of the interface and every method of each', () => {
    expectTypeOf<SpecV1CapabilityName>().toEqualTypeOf<
      'inventory' | 'limits' | 'backups' | 'labels' | 'events'
    >();
    expect([...SPEC_V1_CAPABILITIES]).toEqual(['inventory', 'limits', 'labels', 'backups', 'events']);
    expect(specV1Methods().map((m) => m.operation)).toEqual([
      'inventory.host',
      'inventory.listGuests',
      'inventory.getGuest',
      'inventory.listNetworks',
      'inventory.listStoragePools',
      'inventory.listStorageVolumes',
      'limits.get',
      'limits.set',
      'labels.get',
      'labels.hostModels',
      'labels.set',
      'backups.listSnapshots',
      'backups.createSnapshot',
      'backups.deleteSnapshot',
      'backups.revertSnapshot',
      'backups.backup',
      'backups.backupHostConfig',
      'backups.restore',
      'backups.listCheckpoints',
      'backups.cleanup',
      'events.subscribe',
    ] satisfies SpecV1Operation[]);
  });

  it('is frozen all the way down', () => {
    expect(Object.isFrozen(SPEC_V1_METHODS)).toBe(true);
    expect(Object.isFrozen(SPEC_V1_METHODS.limits)).toBe(true);
    expect(Object.isFrozen(SPEC_V1_METHODS.limits.set)).toBe(true);
    expect(Object.isFrozen(SPEC_V1_CAPABILITIES)).toBe(true);
  });

  it('gives the options index, required flag, kind and manifest flag of each method', () => {
    expect(SPEC_V1_METHODS.limits.set).toEqual({
      kind: 'call',
      longRunning: false,
      optionsIndex: 2,
      required: true,
    });
    expect(SPEC_V1_METHODS.backups.backup.longRunning).toBe(true);
    expect(SPEC_V1_METHODS.labels.set).toMatchObject({ required: false, presentWhen: 'set' });
    expect(SPEC_V1_METHODS.events.subscribe).toMatchObject({ kind: 'stream', optionsIndex: 0 });
  });

  it('makes a missing method, an extra method or a wrong options index a type error', () => {
    type Inventory = SpecV1MethodTable['inventory'];
    const { listNetworks: _dropped, ...withoutOne } = SPEC_V1_METHODS.inventory;
    // @ts-expect-error listNetworks is missing
    const missing: Inventory = withoutOne;
    // @ts-expect-error inventory has no method `reboot`
    const extra: Inventory = { ...SPEC_V1_METHODS.inventory, reboot: SPEC_V1_METHODS.inventory.host };
    const wrongIndex: SpecV1MethodTable['limits'] = {
      ...SPEC_V1_METHODS.limits,
      // @ts-expect-error limits.set takes its options third (index 2)
      set: { ...SPEC_V1_METHODS.limits.set, optionsIndex: 1 },
    };
    const wrongRequired: SpecV1MethodTable['backups'] = {
      ...SPEC_V1_METHODS.backups,
      // @ts-expect-error revertSnapshot is optional in the interface
      revertSnapshot: { ...SPEC_V1_METHODS.backups.revertSnapshot, required: true },
    };
    const wrongFlag: SpecV1MethodTable['labels'] = {
      ...SPEC_V1_METHODS.labels,
      // @ts-expect-error supports.labels has no field `colour`
      set: { ...SPEC_V1_METHODS.labels.set, presentWhen: 'colour' },
    };
    expect([missing, extra, wrongIndex, wrongRequired, wrongFlag]).toHaveLength(5);
  });

  it('a capability added to the interface without a table entry is a type error', () => {
    type Extended = HypervisorAdapterV1 & { readonly power?: { reboot(options?: object): Promise<void> } };
    type Names = Extract<
      { [K in keyof Extended]-?: {} extends Pick<Extended, K> ? K : never }[keyof Extended],
      string
    >;
    expectTypeOf<Names>().not.toEqualTypeOf<SpecV1CapabilityName>();
  });
});
