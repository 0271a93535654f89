/**
 * XAPI `vm` events (from `event.from`) → spec v1 guest lifecycle events. Only guests count (templates,
 * snapshots and the control domain are not guests):
 * - `add` → `defined` (`added`); `del` → `undefined` (`removed`);
 * - a `power_state` change → `started` (`booted` from Halted, `restored` from Suspended), `resumed`
 *   (`unpaused`), `suspended` (`paused` or `suspended`) or `stopped` (`halted`);
 * - any other change of the VM's configuration (name, tags, other_config, limits, …) → `defined`
 *   (`updated`), as libvirt reports a redefined domain. Changes of runtime fields only (allowed and current
 *   operations, metrics, domid, memory target, …) are not events.
 */

import type { GuestEvent } from '@hvkit/core';
import type { XapiRecord } from '../protocol/values';
import { isGuestRecord } from './inventory';

/** What the event stream remembers of one VM. */
export interface KnownVm {
  uuid: string;
  name: string;
  power: string;
  guest: boolean;
  /** The configuration fields, serialised, to tell a configuration change from a runtime one. */
  config: string;
}

/** VM fields that change while a VM runs or an operation is in progress: not configuration. */
const RUNTIME_FIELDS: ReadonlySet<string> = new Set([
  'power_state',
  'allowed_operations',
  'current_operations',
  'resident_on',
  'scheduled_to_be_resident_on',
  'domid',
  'domarch',
  'metrics',
  'guest_metrics',
  'memory_target',
  'memory_overhead',
  'last_boot_CPU_flags',
  'last_booted_record',
  'consoles',
  'crash_dumps',
  'attached_PCIs',
  'requires_reboot',
  'pending_guidances',
  'snapshots',
  'snapshot_time',
  'VBDs',
  'VIFs',
  'VTPMs',
  'VUSBs',
]);

function configOf(record: XapiRecord): string {
  const keys = Object.keys(record)
    .filter((k) => !RUNTIME_FIELDS.has(k))
    .sort();
  return JSON.stringify(
    keys.map((k) => [k, record[k]]),
    (_, v) => (typeof v === 'bigint' ? v.toString() : v),
  );
}

/** What the stream keeps of a VM record. */
export function knownVm(record: XapiRecord): KnownVm {
  return {
    uuid: typeof record.uuid === 'string' ? record.uuid.toLowerCase() : '',
    name: typeof record.name_label === 'string' ? record.name_label : '',
    power: typeof record.power_state === 'string' ? record.power_state : '',
    guest: isGuestRecord(record),
    config: configOf(record),
  };
}

function powerEvent(from: string, to: string): { type: string; detail: string } | undefined {
  if (from === to) return undefined;
  switch (to) {
    case 'Running':
      if (from === 'Paused') return { type: 'resumed', detail: 'unpaused' };
      return { type: 'started', detail: from === 'Suspended' ? 'restored' : 'booted' };
    case 'Paused':
      return { type: 'suspended', detail: 'paused' };
    case 'Suspended':
      return { type: 'suspended', detail: 'suspended' };
    case 'Halted':
      return { type: 'stopped', detail: 'halted' };
  }
  return undefined;
}

/**
 * The guest events of one XAPI `vm` event (`operation` add, mod or del; `record` its normalised snapshot,
 * absent for a `del` without one), updating `known` (VM ref → what is known of it).
 */
export function vmEventToGuestEvents(
  operation: string,
  ref: string,
  record: XapiRecord | undefined,
  known: Map<string, KnownVm>,
  at: Date,
): GuestEvent[] {
  const before = known.get(ref);
  if (operation === 'del' || record === undefined) {
    known.delete(ref);
    if (!before?.guest) return [];
    const guest = { id: before.uuid, name: before.name, uuid: before.uuid };
    return [{ guest, type: 'undefined', detail: 'removed', at }];
  }
  const now = knownVm(record);
  known.set(ref, now);
  const guest = { id: now.uuid, name: now.name, uuid: now.uuid };
  if (!now.guest) {
    // A guest turned into a template is gone as a guest.
    return before?.guest ? [{ guest, type: 'undefined', detail: 'removed', at }] : [];
  }
  if (before === undefined || !before.guest) return [{ guest, type: 'defined', detail: 'added', at }];
  const out: GuestEvent[] = [];
  const power = powerEvent(before.power, now.power);
  if (power) out.push({ guest, ...power, at });
  if (now.config !== before.config) out.push({ guest, type: 'defined', detail: 'updated', at });
  return out;
}
