import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { objectsOf, sample, soapEnvelope } from '../../../test/soap-server';
import { decodeSoapResponse, decodeVimXml } from './decode';
import type { DataObject, MoRef } from './schema';

interface Content {
  obj: MoRef;
  propSet?: { name: string; val: unknown }[];
  missingSet?: { path: string; fault: { fault: DataObject } }[];
}

function returnval(text: string, method = 'RetrievePropertiesEx', options = {}): unknown {
  const result = decodeSoapResponse(text, method, options);
  expect(result.fault).toBeUndefined();
  return result.returnval;
}

function props(content: Content): Record<string, unknown> {
  return Object.fromEntries((content.propSet ?? []).map((p) => [p.name, p.val]));
}

function protocol(fn: () => unknown): HvkitError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(HvkitError.isInstance(thrown, 'PROTOCOL'), String(thrown)).toBe(true);
  return thrown as HvkitError;
}

/** A RetrievePropertiesEx response with one object holding these raw `<propSet>` elements. */
function oneObject(propSets: string, extraNs = ''): string {
  return soapEnvelope(
    `<RetrievePropertiesExResponse xmlns="urn:vim25"${extraNs}><returnval><objects><obj type="VirtualMachine">vm-1</obj>${propSets}</objects></returnval></RetrievePropertiesExResponse>`,
  );
}

describe('decodeSoapResponse on recorded vcsim responses', () => {
  it('decodes the service content with typed morefs', () => {
    const sc = returnval(sample('service-content-vpx.xml'), 'RetrieveServiceContent') as DataObject;
    expect(sc._type).toBe('ServiceContent');
    expect(sc.rootFolder).toEqual({ type: 'Folder', value: 'group-d1' });
    expect(sc.propertyCollector).toEqual({ type: 'PropertyCollector', value: 'propertyCollector' });
    expect(sc.sessionManager).toEqual({ type: 'SessionManager', value: 'SessionManager' });
    expect(sc.about).toMatchObject({ _type: 'AboutInfo', apiType: 'VirtualCenter', apiVersion: '6.5' });
    const esx = returnval(sample('service-content-esx.xml'), 'RetrieveServiceContent') as DataObject;
    expect(esx.about).toMatchObject({ apiType: 'HostAgent' });
    expect(esx.sessionManager).toEqual({ type: 'SessionManager', value: 'ha-sessionmgr' });
  });

  it('decodes Login into a UserSession with dates and numbers', () => {
    const session = returnval(sample('login.xml'), 'Login') as DataObject;
    expect(session).toMatchObject({
      _type: 'UserSession',
      userName: 'user',
      callCount: 1,
      extensionSession: false,
    });
    expect(session.loginTime).toBeInstanceOf(Date);
    expect((session.loginTime as Date).getUTCFullYear()).toBeGreaterThan(2000);
  });

  it('decodes CurrentTime, CreateContainerView and void responses', () => {
    expect(returnval(sample('current-time.xml'), 'CurrentTime')).toBeInstanceOf(Date);
    expect(returnval(sample('create-container-view.xml'), 'CreateContainerView')).toEqual({
      type: 'ContainerView',
      value: expect.stringMatching(/^session\[/),
    });
    expect(decodeSoapResponse(sample('logout.xml'), 'Logout')).toEqual({
      fault: undefined,
      returnval: undefined,
    });
    expect(returnval(sample('create-snapshot-task.xml'), 'CreateSnapshot_Task')).toEqual({
      type: 'Task',
      value: expect.stringMatching(/^task-/),
    });
  });

  it('decodes the 12 VM properties of every VM, devices polymorphic (vCenter model, DVS ports)', () => {
    const result = returnval(sample('retrieve-vms-vpx.xml')) as { _type: string; objects: Content[] };
    expect(result._type).toBe('RetrieveResult');
    expect(result.objects).toHaveLength(9);
    for (const content of result.objects) {
      expect(content.obj.type).toBe('VirtualMachine');
      const p = props(content);
      expect(typeof p.name).toBe('string');
      expect(p['config.uuid']).toMatch(/^[0-9a-f-]{36}$/);
      expect(p['config.instanceUuid']).toMatch(/^[0-9a-f-]{36}$/);
      expect(['poweredOn', 'poweredOff', 'suspended']).toContain(p['runtime.powerState']);
      expect(p['config.hardware.numCPU']).toBeTypeOf('number');
      expect(p['config.hardware.memoryMB']).toBeTypeOf('number');
      expect(p['runtime.host']).toEqual({ type: 'HostSystem', value: expect.stringMatching(/^host-/) });
      expect(p['config.cpuAllocation']).toEqual({
        _type: 'ResourceAllocationInfo',
        reservation: 0,
        expandableReservation: true,
        limit: -1,
        shares: { _type: 'SharesInfo', shares: 0, level: 'normal' },
      });
      // Unset in vcsim: absent, not undefined-valued.
      expect('guest.guestId' in p).toBe(false);
      expect('resourceConfig' in p).toBe(false);
      const devices = p['config.hardware.device'] as DataObject[];
      expect(Array.isArray(devices)).toBe(true);
      const disk = devices.find((d) => d._type === 'VirtualDisk') as DataObject;
      expect(disk).toMatchObject({
        key: expect.any(Number),
        controllerKey: expect.any(Number),
        capacityInKB: 1024,
      });
      expect(disk.backing).toMatchObject({
        _type: 'VirtualDiskFlatVer2BackingInfo',
        fileName: expect.stringMatching(/^\[LocalDS_0\] .+\.vmdk$/),
        datastore: { type: 'Datastore', value: expect.any(String) },
        thinProvisioned: true,
        diskMode: 'persistent',
      });
      const nic = devices.find((d) => d._type === 'VirtualE1000') as DataObject;
      expect(nic.macAddress).toMatch(/^00:0c:29:/);
      expect(nic.backing).toEqual({
        _type: 'VirtualEthernetCardDistributedVirtualPortBackingInfo',
        port: {
          _type: 'DistributedVirtualSwitchPortConnection',
          switchUuid: expect.any(String),
          portgroupKey: expect.stringMatching(/^dvportgroup-/),
        },
      });
      expect(nic.slotInfo).toEqual({ _type: 'VirtualDevicePciBusSlotInfo', pciSlotNumber: 32 });
      // `device` of a controller is an int[] field: an array even with one element.
      const pci = devices.find((d) => d._type === 'VirtualPCIController') as DataObject;
      expect(Array.isArray(pci.device)).toBe(true);
      expect((pci.device as unknown[]).every((k) => typeof k === 'number')).toBe(true);
    }
  });

  it('decodes standard network backings (ESX model)', () => {
    const result = returnval(sample('retrieve-vms-esx.xml')) as { objects: Content[] };
    expect(result.objects).toHaveLength(2);
    const devices = props(result.objects[0] as Content)['config.hardware.device'] as DataObject[];
    const nic = devices.find((d) => d._type === 'VirtualE1000') as DataObject;
    expect(nic.backing).toEqual({
      _type: 'VirtualEthernetCardNetworkBackingInfo',
      deviceName: 'VM Network',
      useAutoDetect: false,
      network: { type: 'Network', value: 'HaNetwork-VM Network' },
      inPassthroughMode: false,
    });
  });

  it('materialises only the requested properties', () => {
    const wanted = new Set(['name', 'runtime.powerState']);
    const result = returnval(sample('retrieve-vms-vpx.xml'), 'RetrievePropertiesEx', {
      properties: wanted,
    }) as {
      objects: Content[];
    };
    expect(result.objects).toHaveLength(9);
    for (const content of result.objects) {
      expect(Object.keys(props(content)).sort()).toEqual(['name', 'runtime.powerState']);
    }
  });

  it('decodes missingSet faults and task info', () => {
    const missing = returnval(sample('retrieve-missing-invalid-property.xml')) as { objects: Content[] };
    const content = missing.objects[0] as Content;
    expect(props(content)).toEqual({ name: expect.any(String) });
    expect(content.missingSet?.[0]).toMatchObject({
      path: 'config.bogus',
      fault: { _type: 'LocalizedMethodFault', fault: { _type: 'InvalidProperty', name: 'config.bogus' } },
    });
    const info = props(
      (returnval(sample('task-info-error.xml')) as { objects: Content[] }).objects[0] as Content,
    ).info as DataObject;
    expect(info).toMatchObject({
      _type: 'TaskInfo',
      state: 'error',
      cancelable: false,
      entity: { type: 'VirtualMachine', value: 'vm-51' },
      error: {
        _type: 'LocalizedMethodFault',
        fault: { _type: 'InvalidPowerState', requestedState: 'poweredOn', existingState: 'poweredOn' },
      },
      reason: { _type: 'TaskReasonUser', userName: 'vcsim' },
    });
    const state = props(
      (returnval(sample('task-state-success.xml')) as { objects: Content[] }).objects[0] as Content,
    );
    expect(state).toEqual({
      'info.state': 'success',
      'info.progress': 0,
      'info.cancelable': false,
      'info.result': { type: 'VirtualMachineSnapshot', value: expect.stringMatching(/^snapshot-/) },
    });
  });

  it('decodes SOAP faults with the vim fault type and fields', () => {
    const fault = decodeSoapResponse(
      sample('fault-managed-object-not-found.xml'),
      'RetrievePropertiesEx',
    ).fault;
    expect(fault).toEqual({
      faultcode: 'ServerFaultCode',
      faultstring: 'The object has already been deleted or has not been completely created',
      faultType: 'ManagedObjectNotFound',
      detail: { _type: 'ManagedObjectNotFound', obj: { type: 'VirtualMachine', value: 'vm-nope' } },
    });
    // The fault is decoded whatever method was called.
    expect(decodeSoapResponse(sample('fault-invalid-login.xml'), 'Login').fault?.faultType).toBe(
      'InvalidLogin',
    );
  });
});

describe('decodeSoapResponse typing rules', () => {
  const XSI = 'xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance"';

  it('keeps strings that look like numbers or booleans as strings', () => {
    const text = oneObject(
      `<propSet><name>name</name><val ${XSI} XMLSchema-instance:type="xsd:string">1e5</val></propSet>` +
        `<propSet><name>config.annotation</name><val ${XSI} XMLSchema-instance:type="xsd:string">true</val></propSet>` +
        `<propSet><name>config.guestId</name><val ${XSI} XMLSchema-instance:type="xsd:string"> 007 </val></propSet>`,
    );
    const p = props((returnval(text) as { objects: Content[] }).objects[0] as Content);
    expect(p).toEqual({ name: '1e5', 'config.annotation': 'true', 'config.guestId': ' 007 ' });
  });

  it('accepts the xsi: prefix of vCenter and primitive arrays', () => {
    const text = oneObject(
      '<propSet><name>a</name><val xsi:type="ArrayOfInt"><int xsi:type="xsd:int">-1</int><int>7</int></val></propSet>' +
        '<propSet><name>b</name><val xsi:type="ArrayOfString"><string>x</string></val></propSet>' +
        '<propSet><name>c</name><val xsi:type="xsd:long">9007199254740993</val></propSet>' +
        '<propSet><name>d</name><val xsi:type="xsd:boolean">1</val></propSet>' +
        '<propSet><name>e</name><val xsi:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="Datastore">ds-1</ManagedObjectReference></val></propSet>',
    );
    const p = props((returnval(text) as { objects: Content[] }).objects[0] as Content);
    expect(p).toEqual({
      a: [-1, 7],
      b: ['x'],
      c: 9007199254740993n,
      d: true,
      e: [{ type: 'Datastore', value: 'ds-1' }],
    });
  });

  it('resolves xsi:type through any prefix bound to XMLSchema-instance, not by its spelling', () => {
    // `xsi` bound to something else here: its `type` attribute is not an xsi:type.
    const text = oneObject(
      '<propSet><name>n</name><val xmlns:q="http://www.w3.org/2001/XMLSchema-instance" xmlns:xsi="urn:other" xsi:type="xsd:int" q:type="xsd:string">5</val></propSet>',
    );
    expect(props((returnval(text) as { objects: Content[] }).objects[0] as Content)).toEqual({ n: '5' });
    protocol(() => returnval(oneObject('<propSet><name>n</name><val nope:type="xsd:int">5</val></propSet>')));
  });

  it('keeps unknown types and fields from newer servers as raw values with their type name', () => {
    const text = oneObject(
      `<propSet><name>config.hardware.device</name><val ${XSI} XMLSchema-instance:type="ArrayOfVirtualDevice">` +
        '<VirtualDevice XMLSchema-instance:type="VirtualFutureDevice"><key>9</key><deviceInfo XMLSchema-instance:type="Description"><label>L</label><summary>S</summary></deviceInfo>' +
        '<futureField>x</futureField><futureList>a</futureList><futureList>b</futureList><futureRef type="Datastore">ds-2</futureRef>' +
        '<futureObject><depth>1</depth></futureObject></VirtualDevice></val></propSet>' +
        `<propSet><name>x.y</name><val ${XSI} XMLSchema-instance:type="SomethingNew"><a>1</a></val></propSet>` +
        `<propSet><name>x.z</name><val ${XSI} XMLSchema-instance:type="SomeNewEnum">valueA</val></propSet>`,
    );
    const p = props((returnval(text) as { objects: Content[] }).objects[0] as Content);
    expect(p['config.hardware.device']).toEqual([
      {
        _type: 'VirtualFutureDevice',
        key: 9,
        deviceInfo: { _type: 'Description', label: 'L', summary: 'S' },
        futureField: 'x',
        futureList: ['a', 'b'],
        futureRef: { type: 'Datastore', value: 'ds-2' },
        futureObject: { depth: '1' },
      },
    ]);
    expect(p['x.y']).toEqual({ _type: 'SomethingNew', a: '1' });
    expect(p['x.z']).toBe('valueA');
  });

  it('decodes entities and character references once, and CDATA as text', () => {
    const text = oneObject(
      '<propSet><name>name</name><val xsi:type="xsd:string">a&lt;b&gt;&amp;c&quot;&apos;&#65;&#x1F600;&amp;lt;<![CDATA[<raw>&amp;]]></val></propSet>',
    );
    expect(props((returnval(text) as { objects: Content[] }).objects[0] as Content)).toEqual({
      name: 'a<b>&c"\'A😀&lt;<raw>&amp;',
    });
  });

  it('keeps hostile element names as data, never as prototypes', () => {
    const text = oneObject(
      '<propSet><name>__proto__</name><val xsi:type="Unknown"><__proto__><polluted>yes</polluted></__proto__><constructor>c</constructor></val></propSet>',
    );
    const content = (returnval(text) as { objects: Content[] }).objects[0] as Content;
    const val = content.propSet?.[0]?.val as Record<string, unknown>;
    expect(Object.getPrototypeOf(val)).toBe(Object.prototype);
    expect(Object.getOwnPropertyDescriptor(val, '__proto__')?.value).toEqual({ polluted: 'yes' });
    expect(val.constructor).toBe('c');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('decodes a standalone element', () => {
    expect(
      decodeVimXml(
        '<device xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="VirtualDisk"><key>2000</key><capacityInKB>10</capacityInKB></device>',
        'VirtualDevice',
      ),
    ).toEqual({ _type: 'VirtualDisk', key: 2000, capacityInKB: 10 });
  });
});

describe('decodeSoapResponse hardening', () => {
  const good = sample('retrieve-vms-esx.xml');

  it('rejects DOCTYPEs, entity declarations and undefined entities', () => {
    const doctype = good.replace('<soapenv:Envelope', '<!DOCTYPE x [<!ENTITY e "boom">]><soapenv:Envelope');
    expect(protocol(() => returnval(doctype)).message).toMatch(/declarations/);
    protocol(() => returnval(good.replace('DC0_H0_VM0', '&e;').replace('ha-host', '&e;')));
    protocol(() =>
      returnval(oneObject('<propSet><name>n</name><val xsi:type="xsd:string">&nbsp;</val></propSet>')),
    );
    protocol(() =>
      returnval(oneObject('<propSet><name>n</name><val xsi:type="xsd:string">&#0;</val></propSet>')),
    );
    protocol(() =>
      returnval(oneObject('<propSet><name>n</name><val xsi:type="xsd:string">a & b</val></propSet>')),
    );
  });

  it('rejects truncated documents at every length', () => {
    const small = sample('fault-not-authenticated.xml').trimEnd();
    for (let n = 0; n < small.length; n++) protocol(() => decodeSoapResponse(small.slice(0, n), 'X'));
  });

  it('enforces the size and depth limits', () => {
    expect(protocol(() => returnval(good, 'RetrievePropertiesEx', { maxBytes: 1000 })).message).toMatch(
      /larger/,
    );
    const deep = oneObject(
      `<propSet><name>n</name><val xsi:type="Unknown">${'<a>'.repeat(200)}x${'</a>'.repeat(200)}</val></propSet>`,
    );
    expect(protocol(() => returnval(deep)).message).toMatch(/deep/);
    expect(returnval(deep, 'RetrievePropertiesEx', { maxDepth: 300 })).toBeDefined();
  });

  it('rejects wrong responses, text after the document, bad values and mismatched tags', () => {
    protocol(() => returnval(good, 'Login'));
    protocol(() => returnval(`${good}<extra/>`));
    protocol(() => returnval(good.replace('<key>', '<key>x')));
    protocol(() => returnval(good.replace('</deviceInfo>', '</deviceinfo>')));
    protocol(() =>
      returnval(oneObject('<propSet><name>n</name><val xsi:type="xsd:int">12a</val></propSet>')),
    );
    protocol(() =>
      returnval(
        oneObject('<propSet><name>n</name><val xsi:type="xsd:int">99999999999999999999</val></propSet>'),
      ),
    );
    protocol(() =>
      returnval(oneObject('<propSet><name>n</name><val xsi:type="xsd:boolean">yes</val></propSet>')),
    );
    protocol(() =>
      returnval(oneObject('<propSet><name>n</name><val xsi:type="xsd:dateTime">yesterday</val></propSet>')),
    );
    protocol(() =>
      returnval(oneObject('<propSet><name>n</name><val xsi:type="ManagedObjectReference">x</val></propSet>')),
    );
    protocol(() => returnval(good.replace('<soapenv:Body>', '<soapenv:Body>\u0001')));
    protocol(() => returnval('<notsoap/>'));
    protocol(() => returnval(''));
  });
});

describe('objectsOf (test helper)', () => {
  it('splits a recorded response into its objects', () => {
    expect(objectsOf(sample('retrieve-vms-vpx.xml'))).toHaveLength(9);
  });
});
