/**
 * Every row of the vSphere power-state maps: `VirtualMachinePowerState` (vim25: poweredOn, poweredOff,
 * suspended) → the model's power state, and a change of it in the change feed → a lifecycle event.
 */

import type { GuestEvent } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import type { DataObject } from '../protocol/soap/schema';
import { objectUpdateEvents } from './events';
import { mapPowerState } from './vm';

const POWER_STATES = [
  ['poweredOn', 'running', 'started'],
  ['poweredOff', 'stopped', 'stopped'],
  ['suspended', 'suspended', 'suspended'],
] as const;

function update(kind: string, changes: Record<string, unknown>): DataObject {
  return {
    _type: 'ObjectUpdate',
    kind,
    obj: { type: 'VirtualMachine', value: 'vm-42' },
    changeSet: Object.entries(changes).map(([name, val]) => ({
      _type: 'PropertyChange',
      name,
      op: 'assign',
      val,
    })),
  } as DataObject;
}

describe('vSphere power states', () => {
  it.each(POWER_STATES)('%s → %s', (vim, state) => {
    expect(mapPowerState(vim)).toBe(state);
  });

  it('maps anything else to unknown (a state newer than this table, or a missing one)', () => {
    for (const vim of ['PoweredOn', 'paused', 'standBy', '', undefined, null, 1]) {
      expect(mapPowerState(vim), String(vim)).toBe('unknown');
    }
  });

  it.each(POWER_STATES)('a change to %s in the change feed is a %s guest, event %s', (vim, _state, event) => {
    const known = new Map<string, { name: string; state?: string }>();
    const at = new Date('2025-01-02T03:04:05Z');
    const first = vim === 'poweredOn' ? 'poweredOff' : 'poweredOn';
    expect(
      objectUpdateEvents(update('enter', { name: 'web-1', 'runtime.powerState': first }), known, at),
    ).toEqual([{ guest: { id: 'vm-42', name: 'web-1' }, type: 'defined', at }]);
    const events: GuestEvent[] = objectUpdateEvents(
      update('modify', { 'runtime.powerState': vim }),
      known,
      at,
    );
    expect(events).toEqual([{ guest: { id: 'vm-42', name: 'web-1' }, type: event, detail: vim, at }]);
    // The same state again is no event.
    expect(objectUpdateEvents(update('modify', { 'runtime.powerState': vim }), known, at)).toEqual([]);
    expect(known.get('vm-42')).toEqual({ name: 'web-1', state: vim });
  });

  it('a state without an event, a rename, and a removal', () => {
    const known = new Map<string, { name: string; state?: string }>([
      ['vm-42', { name: 'web-1', state: 'poweredOn' }],
    ]);
    const at = new Date(0);
    expect(objectUpdateEvents(update('modify', { 'runtime.powerState': 'standBy' }), known, at)).toEqual([]);
    expect(objectUpdateEvents(update('modify', { name: 'web-2' }), known, at)).toEqual([]);
    expect(known.get('vm-42')).toEqual({ name: 'web-2', state: 'standBy' });
    expect(objectUpdateEvents(update('leave', {}), known, at)).toEqual([
      { guest: { id: 'vm-42', name: 'web-2' }, type: 'undefined', at },
    ]);
    expect(known.has('vm-42')).toBe(false);
    expect(objectUpdateEvents({ _type: 'ObjectUpdate', kind: 'modify' } as DataObject, known, at)).toEqual(
      [],
    );
  });
});
