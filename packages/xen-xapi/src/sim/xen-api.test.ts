/**
 * An independent client agrees with the simulator's protocol: Xen Orchestra's `xen-api` (4.7.7) logs in,
 * introspects the classes (`system.listMethods`) and reads VM records, which match the database.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Xapi } from 'xen-api';
import { startXapiSimulator, type XapiSimulator } from '../simulator';

let sim: XapiSimulator;
beforeAll(async () => {
  sim = await startXapiSimulator();
});
afterAll(() => sim.close());

describe('xen-api (Xen Orchestra) against the simulator', () => {
  it('logs in and reads VM records', async () => {
    const xapi = new Xapi({
      url: sim.url,
      auth: { user: sim.username, password: sim.password },
      watchEvents: false,
      allowUnauthorized: true,
    });
    await xapi.connect();
    try {
      expect(xapi.status).toBe('connected');
      expect(sim.sessionCount).toBe(1);
      const vms = (await xapi.call('VM.get_all_records')) as Record<string, Record<string, unknown>>;
      const db = sim.db.table('VM');
      expect(Object.keys(vms).sort()).toEqual([...db.keys()].sort());
      const vm1 = Object.values(vms).find((v) => v.name_label === 'hvkit-xen-vm1');
      expect(vm1).toMatchObject({
        power_state: 'Running',
        VCPUs_max: 2,
        memory_static_max: 4294967296,
        VCPUs_params: { weight: '512', cap: '200' },
        is_a_template: false,
        tags: ['prod'],
      });
      const ref = await xapi.call('VM.get_by_uuid', vm1?.uuid);
      expect(await xapi.call('VM.get_power_state', ref)).toBe('Running');
      await expect(xapi.call('VM.get_record', 'OpaqueRef:nope')).rejects.toMatchObject({
        code: 'HANDLE_INVALID',
      });
    } finally {
      await xapi.disconnect();
    }
  });

  it('logs in and reads the same VM records over XML-RPC (it posts to /xmlrpc, which a host serves from /)', async () => {
    const read = async (transport: 'json-rpc' | 'xml-rpc') => {
      const xapi = new Xapi({
        url: sim.url,
        auth: { user: sim.username, password: sim.password },
        transport,
        watchEvents: false,
        allowUnauthorized: true,
      });
      await xapi.connect();
      try {
        return (await xapi.call('VM.get_all_records')) as Record<string, Record<string, unknown>>;
      } finally {
        await xapi.disconnect();
      }
    };
    const overXml = await read('xml-rpc');
    expect(Object.keys(overXml).sort()).toEqual([...sim.db.table('VM').keys()].sort());
    // XML-RPC carries 64-bit ints as untyped strings; the names, states and flags agree with JSON-RPC.
    const vm1 = Object.values(overXml).find((v) => v.name_label === 'hvkit-xen-vm1');
    expect(vm1).toMatchObject({
      power_state: 'Running',
      VCPUs_max: '2',
      is_a_template: false,
      tags: ['prod'],
    });
    const overJson = await read('json-rpc');
    for (const [ref, vm] of Object.entries(overJson))
      expect(overXml[ref]).toMatchObject({
        uuid: vm.uuid,
        name_label: vm.name_label,
        power_state: vm.power_state,
      });
  });

  it('is refused with SESSION_AUTHENTICATION_FAILED for a wrong password', async () => {
    const xapi = new Xapi({
      url: sim.url,
      auth: { user: sim.username, password: 'not-it' },
      watchEvents: false,
      allowUnauthorized: true,
    });
    await expect(xapi.connect()).rejects.toMatchObject({ code: 'SESSION_AUTHENTICATION_FAILED' });
  });
});
