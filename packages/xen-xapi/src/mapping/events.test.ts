import { describe, expect, it } from 'vitest';
import { type KnownVm, knownVm, vmEventToGuestEvents } from './events';

const at = new Date('2026-01-01T00:00:00Z');
const vm = (over: Record<string, unknown> = {}) => ({
  uuid: 'AAAAAAAA-0000-4000-8000-000000000001',
  name_label: 'web',
  power_state: 'Halted',
  is_a_template: false,
  is_a_snapshot: false,
  is_control_domain: false,
  tags: [],
  other_config: {},
  current_operations: {},
  domid: -1,
  ...over,
});
const types = (known: Map<string, KnownVm>, op: string, record?: Record<string, unknown>) =>
  vmEventToGuestEvents(op, 'OpaqueRef:v', record, known, at).map((e) => `${e.type}/${e.detail}`);

describe('XAPI vm events to guest events', () => {
  it('add and del of a guest are defined/added and undefined/removed, with the lower-case uuid as id', () => {
    const known = new Map<string, KnownVm>();
    const [added] = vmEventToGuestEvents('add', 'OpaqueRef:v', vm(), known, at);
    expect(added).toEqual({
      guest: {
        id: 'aaaaaaaa-0000-4000-8000-000000000001',
        name: 'web',
        uuid: 'aaaaaaaa-0000-4000-8000-000000000001',
      },
      type: 'defined',
      detail: 'added',
      at,
    });
    expect(types(known, 'del')).toEqual(['undefined/removed']);
    expect(known.size).toBe(0);
  });

  it('power state changes map to started, suspended, resumed and stopped', () => {
    const known = new Map([['OpaqueRef:v', knownVm(vm())]]);
    expect(types(known, 'mod', vm({ power_state: 'Running', domid: 3 }))).toEqual(['started/booted']);
    expect(types(known, 'mod', vm({ power_state: 'Paused' }))).toEqual(['suspended/paused']);
    expect(types(known, 'mod', vm({ power_state: 'Running' }))).toEqual(['resumed/unpaused']);
    expect(types(known, 'mod', vm({ power_state: 'Suspended' }))).toEqual(['suspended/suspended']);
    expect(types(known, 'mod', vm({ power_state: 'Running' }))).toEqual(['started/restored']);
    expect(types(known, 'mod', vm({ power_state: 'Halted' }))).toEqual(['stopped/halted']);
  });

  it('a configuration change is defined/updated; runtime fields alone are no event', () => {
    const known = new Map([['OpaqueRef:v', knownVm(vm())]]);
    expect(types(known, 'mod', vm({ current_operations: { x: 'start' }, domid: 7 }))).toEqual([]);
    expect(types(known, 'mod', vm({ tags: ['prod'] }))).toEqual(['defined/updated']);
    expect(types(known, 'mod', vm({ tags: ['prod'], other_config: { k: 'v' } }))).toEqual([
      'defined/updated',
    ]);
  });

  it('templates, snapshots and the control domain are not guests; a guest made a template is removed', () => {
    const known = new Map<string, KnownVm>();
    expect(types(known, 'add', vm({ is_a_template: true }))).toEqual([]);
    expect(types(known, 'add', vm({ is_control_domain: true }))).toEqual([]);
    expect(types(known, 'mod', vm())).toEqual(['defined/added']);
    expect(types(known, 'mod', vm({ is_a_template: true }))).toEqual(['undefined/removed']);
    expect(types(known, 'del')).toEqual([]);
  });
});
