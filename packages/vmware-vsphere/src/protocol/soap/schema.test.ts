import { describe, expect, it } from 'vitest';
import { isVimSubtypeOf, methodReturnType, vimArrayItem, vimType, vimValueKind } from './schema';

describe('schema table', () => {
  it('resolves inherited fields in schema order', () => {
    const disk = vimType('VirtualDisk');
    const names = [...(disk?.fields.keys() ?? [])];
    expect(names.slice(0, 7)).toEqual([
      'key',
      'deviceInfo',
      'backing',
      'connectable',
      'slotInfo',
      'controllerKey',
      'unitNumber',
    ]);
    expect(names).toContain('storageIOAllocation');
    expect(disk?.fields.get('capacityInKB')).toMatchObject({ type: 'xsd:long', kind: 'long', array: false });
    const backing = vimType('VirtualDiskFlatVer2BackingInfo');
    expect([...(backing?.fields.keys() ?? [])].slice(0, 3)).toEqual([
      'fileName',
      'datastore',
      'backingObjectId',
    ]);
  });

  it('marks arrays and polymorphic fields', () => {
    expect(vimType('VirtualController')?.fields.get('device')).toMatchObject({
      type: 'xsd:int',
      array: true,
    });
    expect(vimType('VirtualDevice')?.fields.get('backing')).toMatchObject({ polymorphic: true });
    expect(vimType('VirtualDevice')?.fields.get('connectable')).toMatchObject({ polymorphic: false });
    expect(vimType('ObjectSpec')?.fields.get('selectSet')).toMatchObject({
      type: 'SelectionSpec',
      array: true,
      polymorphic: true,
    });
    expect(vimType('VMwareDVSPortSetting')?.fields.get('vlan')).toMatchObject({ polymorphic: true });
    expect(vimType('DynamicProperty')?.fields.get('val')).toMatchObject({ kind: 'any', polymorphic: true });
    expect(vimType('VirtualMachineConfigSpec')?.fields.get('deviceChange')).toMatchObject({
      array: true,
      polymorphic: true,
    });
  });

  it('knows subtypes, kinds, arrays and method return types', () => {
    expect(isVimSubtypeOf('InvalidPowerState', 'InvalidState')).toBe(true);
    expect(isVimSubtypeOf('NotAuthenticated', 'NoPermission')).toBe(true);
    expect(isVimSubtypeOf('VirtualVmxnet3', 'VirtualEthernetCard')).toBe(true);
    expect(isVimSubtypeOf('VirtualDisk', 'VirtualEthernetCard')).toBe(false);
    expect(isVimSubtypeOf('Unknown', 'Unknown')).toBe(true);
    expect(vimValueKind('VirtualMachinePowerState')).toBe('enum');
    expect(vimValueKind('ManagedObjectReference')).toBe('moref');
    expect(vimArrayItem('ArrayOfInt')).toEqual(['int', 'xsd:int']);
    expect(vimArrayItem('ArrayOfVirtualDevice')).toEqual(['VirtualDevice', 'VirtualDevice']);
    expect(vimArrayItem('VirtualDevice')).toBeUndefined();
    expect(methodReturnType('PowerOnVM_Task')).toBe('ManagedObjectReference');
    expect(methodReturnType('RetrieveProperties')).toBe('ObjectContent[]');
    expect(methodReturnType('SomethingElse')).toBeUndefined();
  });
});
