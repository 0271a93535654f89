import { newLease } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import type { AdapterContext } from '../context';
import type { LvmLogicalVolume } from '../mapping/report';
import {
  LEASE_TAG_PREFIX,
  leaseConflict,
  leaseHoldersOf,
  leasesOf,
  leaseTag,
  liveLeaseOfOther,
} from './lease';

const volume = (tags: string[]) =>
  ({ fullName: 'vg0/data', vgName: 'vg0', name: 'data', tags }) as LvmLogicalVolume;
const at = new Date('2026-01-01T00:00:00Z');
const context = { naming: { now: () => at } } as unknown as AdapterContext;

describe('lease tags', () => {
  it('store a lease in characters LVM allows and read it back', () => {
    const lease = newLease('20260101T000000Z-full-abc123', 120_000, { now: at, owner: 'host.example:42' });
    const tag = leaseTag(lease);
    expect(tag.startsWith(LEASE_TAG_PREFIX)).toBe(true);
    expect(tag).toMatch(/^[A-Za-z0-9_+.-]+$/);
    expect(tag.length).toBeLessThan(1024);
    expect(leasesOf([volume(['hvkit', tag])])).toEqual([{ volume: volume(['hvkit', tag]), tag, lease }]);
  });

  it('read an unreadable lease tag as no lease (a leftover), never as a live one', () => {
    const found = leasesOf([
      volume(['hvkit-lease-@@', `${LEASE_TAG_PREFIX}${Buffer.from('{"run":1}').toString('base64url')}`]),
    ]);
    expect(found.map((f) => f.lease)).toEqual([undefined, undefined]);
    expect(liveLeaseOfOther(context, [volume(found.map((f) => f.tag))], 'mine')).toBeUndefined();
  });

  it('tell a live lease of another run from an expired one and from the own run', () => {
    const live = newLease('other', 60_000, { now: new Date(at.getTime() - 1000) });
    const expired = newLease('old', 60_000, { now: new Date(at.getTime() - 61_000) });
    const vol = volume([leaseTag(expired), leaseTag(live)]);
    expect(liveLeaseOfOther(context, [vol], 'mine')?.lease).toEqual(live);
    expect(liveLeaseOfOther(context, [vol], 'other')).toBeUndefined();
    // Of two runs that took their leases at the same moment, the later one gives way.
    const mine = newLease('zzz', 60_000, { now: new Date(at.getTime() - 2000) });
    expect(liveLeaseOfOther(context, [vol], 'zzz', mine)).toBeUndefined();
    const later = newLease('aaa', 60_000, { now: new Date(at.getTime() - 500) });
    expect(liveLeaseOfOther(context, [vol], 'aaa', later)?.lease).toEqual(live);
    const sameMoment = newLease('zzz', 60_000, { now: new Date(at.getTime() - 1000) });
    expect(liveLeaseOfOther(context, [vol], 'zzz', sameMoment)?.lease).toEqual(live);
  });

  it('are looked for on the volumes and their snapshots, and a conflict names the volume, not the snapshot', () => {
    const lv = (name: string, extra: Partial<LvmLogicalVolume> = {}) =>
      ({
        fullName: `vg0/${name}`,
        vgName: 'vg0',
        name,
        tags: [],
        kind: 'volume',
        ...extra,
      }) as LvmLogicalVolume;
    const data = lv('data');
    const snap = lv('data-hvkit-run1', { kind: 'snapshot', origin: 'data' });
    const thinSnap = lv('data-base', { kind: 'thin-snapshot', origin: 'data' });
    const otherGroup = lv('data-x', {
      vgName: 'vg1',
      fullName: 'vg1/data-x',
      kind: 'snapshot',
      origin: 'data',
    });
    const unrelated = [lv('other'), lv('other-snap', { kind: 'snapshot', origin: 'other' })];
    expect(leaseHoldersOf([data, snap, thinSnap, otherGroup, ...unrelated], [data])).toEqual([
      data,
      snap,
      thinSnap,
    ]);

    const live = newLease('run1', 60_000, { now: at, owner: 'host.example:42' });
    const found = liveLeaseOfOther(context, [{ ...snap, tags: [leaseTag(live)] }], 'mine');
    expect(found?.lease).toEqual(live);
    const error = leaseConflict(found as NonNullable<typeof found>, 'backups.backup');
    expect(error.code).toBe('CONFLICT');
    expect(error.message).toMatch(/^vg0\/data is being backed up by run run1 of host\.example:42/);
    expect(error.details).toMatchObject({ volume: 'vg0/data' });
  });
});
