import { HvkitError, parseXml } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { sample } from '../../../test/soap-server';
import { decodeSoapResponse, decodeVimXml } from './decode';
import { buildSoapRequest, isMoRef, moRef, typedValue } from './envelope';
import type { DataObject } from './schema';

const PC = moRef('PropertyCollector', 'propertyCollector');

/** The method element's inner XML. */
function inner(xml: string, method: string): string {
  const start = xml.indexOf('>', xml.indexOf(`<${method} `)) + 1;
  return xml.slice(start, xml.lastIndexOf(`</${method}>`));
}

describe('buildSoapRequest', () => {
  it('writes the envelope, _this and parameters in order', () => {
    const xml = buildSoapRequest('CreateContainerView', moRef('ViewManager', 'ViewManager'), {
      container: moRef('Folder', 'group-d1'),
      type: ['VirtualMachine', 'HostSystem'],
      recursive: true,
    });
    expect(xml).toContain(
      '<soapenv:Body><CreateContainerView xmlns="urn:vim25"><_this type="ViewManager">ViewManager</_this>' +
        '<container type="Folder">group-d1</container><type>VirtualMachine</type><type>HostSystem</type>' +
        '<recursive>true</recursive></CreateContainerView></soapenv:Body>',
    );
    // Well-formed XML.
    expect(() => parseXml(xml)).not.toThrow();
  });

  it('writes xsi:type on polymorphic fields and orders fields by the schema', () => {
    const xml = buildSoapRequest('RetrievePropertiesEx', PC, {
      specSet: [
        {
          // Deliberately out of order: objectSet before propSet.
          objectSet: [
            {
              skip: true,
              obj: moRef('ContainerView', 'session[x]y'),
              selectSet: [{ _type: 'TraversalSpec', path: 'view', type: 'ContainerView' }],
            },
          ],
          propSet: [{ pathSet: ['name', 'runtime.host'], type: 'VirtualMachine' }],
        },
      ],
      options: { maxObjects: 100 },
    });
    expect(inner(xml, 'RetrievePropertiesEx')).toBe(
      '<_this type="PropertyCollector">propertyCollector</_this><specSet>' +
        '<propSet><type>VirtualMachine</type><pathSet>name</pathSet><pathSet>runtime.host</pathSet></propSet>' +
        '<objectSet><obj type="ContainerView">session[x]y</obj><skip>true</skip>' +
        '<selectSet xsi:type="TraversalSpec"><type>ContainerView</type><path>view</path></selectSet></objectSet>' +
        '</specSet><options><maxObjects>100</maxObjects></options>',
    );
  });

  it('refuses a polymorphic field without _type', () => {
    expect(() =>
      buildSoapRequest('RetrievePropertiesEx', PC, {
        specSet: [
          {
            propSet: [],
            objectSet: [{ obj: moRef('Folder', 'f'), selectSet: [{ type: 'Folder', path: 'childEntity' }] }],
          },
        ],
      }),
    ).toThrow(/polymorphic \(SelectionSpec\)/);
    expect(() =>
      buildSoapRequest('ReconfigVM_Task', moRef('VirtualMachine', 'vm-1'), {
        spec: { deviceChange: [{ _type: 'VirtualDeviceConfigSpec', operation: 'edit', device: { key: 1 } }] },
      }),
    ).toThrow(/device is polymorphic \(VirtualDevice\)/);
  });

  it('round-trips a decoded device with xsi:type on every polymorphic field', () => {
    const response = decodeSoapResponse(sample('retrieve-vms-esx.xml'), 'RetrievePropertiesEx').returnval as {
      objects: { propSet: { name: string; val: unknown }[] }[];
    };
    const devices = response.objects[0]?.propSet.find((p) => p.name === 'config.hardware.device')
      ?.val as DataObject[];
    const disk = devices.find((d) => d._type === 'VirtualDisk') as DataObject;
    const nic = devices.find((d) => d._type === 'VirtualE1000') as DataObject;
    const xml = buildSoapRequest('ReconfigVM_Task', moRef('VirtualMachine', 'vm-9'), {
      spec: {
        _type: 'VirtualMachineConfigSpec',
        deviceChange: [
          {
            _type: 'VirtualDeviceConfigSpec',
            operation: 'edit',
            device: { ...disk, storageIOAllocation: { _type: 'StorageIOAllocationInfo', limit: 500 } },
          },
          { _type: 'VirtualDeviceConfigSpec', operation: 'edit', device: nic },
        ],
      },
    });
    expect(xml).toContain('<device xsi:type="VirtualDisk"><key>');
    expect(xml).toContain('<deviceInfo xsi:type="Description">');
    expect(xml).toContain('<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[LocalDS_0] ');
    expect(xml).toContain('<datastore type="Datastore">');
    expect(xml).toContain(
      '<backing xsi:type="VirtualEthernetCardNetworkBackingInfo"><deviceName>VM Network</deviceName>',
    );
    // storageIOAllocation comes after capacityInKB in VirtualDisk's schema order.
    expect(xml).toMatch(/<capacityInKB>\d+<\/capacityInKB><storageIOAllocation><limit>500<\/limit>/);
    // Non-polymorphic fields of their declared type need no xsi:type; polymorphic ones always get it.
    expect(xml).toContain('<connectable><startConnected>');
    expect(xml).toContain('<slotInfo xsi:type="VirtualDevicePciBusSlotInfo">');
    expect(xml).toContain('<deviceChange xsi:type="VirtualDeviceConfigSpec"><operation>edit</operation>');
    // What we write decodes back to the same device.
    const written = /<device xsi:type="VirtualDisk">.*?<\/device>/s.exec(xml)?.[0] as string;
    const decoded = decodeVimXml(
      written.replace('<device ', '<device xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" '),
      'VirtualDevice',
    );
    expect(decoded).toEqual({
      ...disk,
      storageIOAllocation: { _type: 'StorageIOAllocationInfo', limit: 500 },
    });
  });

  it('types values of xsd:anyType fields', () => {
    const xml = buildSoapRequest('ReconfigVM_Task', moRef('VirtualMachine', 'vm-1'), {
      spec: {
        _type: 'VirtualMachineConfigSpec',
        extraConfig: [
          { _type: 'OptionValue', key: 'a', value: 'text' },
          { _type: 'OptionValue', key: 'b', value: 7 },
          { _type: 'OptionValue', key: 'c', value: true },
          { _type: 'OptionValue', key: 'd', value: typedValue('xsd:long', 5n) },
          { _type: 'OptionValue', key: 'e', value: moRef('Datastore', 'ds-1') },
          { _type: 'OptionValue', key: 'f', value: typedValue('ArrayOfString', ['x', 'y']) },
        ],
      },
    });
    expect(xml).toContain('<key>a</key><value xsi:type="xsd:string">text</value>');
    expect(xml).toContain('<key>b</key><value xsi:type="xsd:int">7</value>');
    expect(xml).toContain('<key>c</key><value xsi:type="xsd:boolean">true</value>');
    expect(xml).toContain('<key>d</key><value xsi:type="xsd:long">5</value>');
    expect(xml).toContain(
      '<key>e</key><value xsi:type="ManagedObjectReference" type="Datastore">ds-1</value>',
    );
    expect(xml).toContain(
      '<key>f</key><value xsi:type="ArrayOfString"><string>x</string><string>y</string></value>',
    );
  });

  it('escapes text and attributes', () => {
    const xml = buildSoapRequest('Login', moRef('SessionManager', 'Session"Manager'), {
      userName: 'a<b>&"\'',
      password: ']]>&amp;',
    });
    expect(xml).toContain('<_this type="SessionManager">Session"Manager</_this>');
    expect(xml).toContain('<userName>a&lt;b&gt;&amp;"\'</userName><password>]]&gt;&amp;amp;</password>');
    const parsed = parseXml(xml) as Record<string, Record<string, Record<string, Record<string, unknown>>>>;
    const login = parsed['soapenv:Envelope']?.['soapenv:Body']?.Login as Record<string, unknown>;
    expect(login.userName).toBe('a<b>&"\'');
    expect(login.password).toBe(']]>&amp;');
  });

  it('rejects values XML cannot carry and misuse', () => {
    const vm = moRef('VirtualMachine', 'vm-1');
    const invalid = (fn: () => unknown) => {
      let thrown: unknown;
      try {
        fn();
      } catch (error) {
        thrown = error;
      }
      expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT'), String(thrown)).toBe(true);
    };
    invalid(() => buildSoapRequest('Rename_Task', vm, { newName: 'nul\u0000' }));
    invalid(() => buildSoapRequest('X', vm, { n: Number.NaN }));
    invalid(() => buildSoapRequest('ReconfigVM_Task', vm, { spec: { cpuAllocation: { reservation: 1.5 } } }));
    invalid(() => buildSoapRequest('X', vm, { d: new Date(Number.NaN) }));
    expect(() => buildSoapRequest('bad name', vm)).toThrow(TypeError);
    expect(() => buildSoapRequest('X', { type: 'A' } as never)).toThrow(TypeError);
    expect(() => buildSoapRequest('X', vm, { 'a b': 1 })).toThrow(TypeError);
    expect(() => buildSoapRequest('X', vm, { f: () => 1 })).toThrow(TypeError);
    expect(() => buildSoapRequest('X', vm, { m: new Map() })).toThrow(TypeError);
    const cyclic: Record<string, unknown> = { _type: 'X' };
    cyclic.self = cyclic;
    expect(() => buildSoapRequest('X', vm, { c: cyclic })).toThrow(/nested too deeply/);
  });

  it('writes dates, bigints and bytes', () => {
    const xml = buildSoapRequest('X', moRef('T', 'v'), {
      when: new Date('2020-01-02T03:04:05.678Z'),
      big: 12345678901234567890n,
      bytes: new Uint8Array([1, 2, 3]),
      skipped: undefined,
      alsoSkipped: null,
    });
    expect(inner(xml, 'X')).toBe(
      '<_this type="T">v</_this><when>2020-01-02T03:04:05.678Z</when><big>12345678901234567890</big><bytes>AQID</bytes>',
    );
  });
});

describe('isMoRef', () => {
  it('recognises { type, value } and nothing else', () => {
    expect(isMoRef({ type: 'A', value: 'b' })).toBe(true);
    expect(isMoRef({ _type: 'ManagedObjectReference', type: 'A', value: 'b' })).toBe(true);
    expect(isMoRef({ type: 'A', value: 'b', extra: 1 })).toBe(false);
    expect(isMoRef({ type: 'A' })).toBe(false);
    expect(isMoRef(null)).toBe(false);
  });
});
