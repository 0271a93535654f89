/**
 * vim25 property collector updates of VirtualMachines (`name`, `runtime.powerState`) → spec v1 guest
 * lifecycle events: `enter` → `defined`, `leave` → `undefined`, power state changes → `started`, `stopped`
 * or `suspended`.
 */

import type { GuestEvent } from '@hvkit/core';
import type { DataObject, MoRef } from '../protocol/soap/schema';

const POWER_EVENT: Record<string, string> = {
  poweredOn: 'started',
  poweredOff: 'stopped',
  suspended: 'suspended',
};

/** Maps one ObjectUpdate to events, updating the known names and states. */
export function objectUpdateEvents(
  update: DataObject,
  known: Map<string, { name: string; state?: string }>,
  at: Date,
): GuestEvent[] {
  const obj = update.obj as MoRef | undefined;
  if (!obj?.value) return [];
  const changes = (update.changeSet ?? []) as DataObject[];
  const value = (name: string) => changes.find((c) => c.name === name)?.val;
  const before = known.get(obj.value);
  const name = typeof value('name') === 'string' ? (value('name') as string) : (before?.name ?? obj.value);
  const state =
    typeof value('runtime.powerState') === 'string' ? (value('runtime.powerState') as string) : before?.state;
  const guest = { id: obj.value, name };
  if (update.kind === 'leave') {
    known.delete(obj.value);
    return [{ guest, type: 'undefined', at }];
  }
  known.set(obj.value, { name, ...(state !== undefined ? { state } : {}) });
  if (update.kind === 'enter') return [{ guest, type: 'defined', at }];
  if (state !== undefined && state !== before?.state && POWER_EVENT[state])
    return [{ guest, type: POWER_EVENT[state] as string, detail: state, at }];
  return [];
}
