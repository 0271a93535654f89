/**
 * Every row of the lifecycle event map: libvirt's `virDomainEventType` and its detail enums (numbers as in
 * libvirt's `libvirt-domain.h`, checked against python3-libvirt 9.0; STARTED_RECREATED, 5, is newer) and
 * the event type and detail an event becomes.
 */

import { describe, expect, it } from 'vitest';
import type { DomainLifecycleEvent } from '../protocol/remote-protocol';
import { LIFECYCLE_EVENT_TYPES, toGuestEvent } from './events';

const TABLE: readonly (readonly [event: number, type: string, details: readonly string[]])[] = [
  [0, 'defined', ['added', 'updated', 'renamed', 'from-snapshot']],
  [1, 'undefined', ['removed', 'renamed']],
  [2, 'started', ['booted', 'migrated', 'restored', 'from-snapshot', 'wakeup', 'recreated']],
  [
    3,
    'suspended',
    [
      'paused',
      'migrated',
      'ioerror',
      'watchdog',
      'restored',
      'from-snapshot',
      'api-error',
      'postcopy',
      'postcopy-failed',
    ],
  ],
  [4, 'resumed', ['unpaused', 'migrated', 'from-snapshot', 'postcopy', 'postcopy-failed']],
  [5, 'stopped', ['shutdown', 'destroyed', 'crashed', 'migrated', 'saved', 'failed', 'from-snapshot']],
  [6, 'shutdown', ['finished', 'guest', 'host']],
  [7, 'pmsuspended', ['memory', 'disk']],
  [8, 'crashed', ['panicked', 'crashloaded']],
];

const UUID = '68766B69-7431-4000-8000-000000000001';

function lifecycle(event: number, detail: number): DomainLifecycleEvent {
  return { callbackId: 1, dom: { name: 'web-1', uuid: UUID, id: 3 }, event, detail };
}

const ROWS = TABLE.flatMap(([event, type, details]) =>
  details.map((detail, n) => [event, n, type, detail] as const),
);

describe('lifecycle event map', () => {
  it('lists the nine event types in libvirt order', () => {
    expect(LIFECYCLE_EVENT_TYPES).toEqual(TABLE.map(([, type]) => type));
  });

  it.each(ROWS)('event %i detail %i → %s/%s', (event, n, type, detail) => {
    const at = new Date('2025-01-02T03:04:05Z');
    expect(toGuestEvent(lifecycle(event, n), at)).toEqual({
      guest: { id: UUID.toLowerCase(), name: 'web-1', uuid: UUID.toLowerCase() },
      type,
      detail,
      at,
    });
  });

  it('names events and details newer than this table by number', () => {
    expect(toGuestEvent(lifecycle(9, 0))).toMatchObject({ type: 'event-9', detail: '0' });
    expect(toGuestEvent(lifecycle(5, 7))).toMatchObject({ type: 'stopped', detail: '7' });
    expect(toGuestEvent(lifecycle(2, 6)).detail).toBe('6');
  });
});
