import { describe, expect, it } from 'vitest';
import {
  parseRestoreLease,
  RESTORE_LEASE_BYTES,
  type RestoreLeaseRecord,
  restoreLeaseBytes,
} from './backup-lease';

const record: RestoreLeaseRecord = {
  owner: 'host.example:42',
  run: 'hvkit-restore-abc',
  startedAt: '2026-01-01T00:00:00.000Z',
  expiresAt: '2026-01-01T00:02:00.000Z',
  operation: 'restore',
  guest: 'web-restored',
  mode: 'new',
  source: { name: 'web', uuid: 'a4b5c6d7-0000-4000-8000-000000000001' },
};

describe('restore lease volumes', () => {
  it('round-trips a record through the padded 1 KiB content', () => {
    const bytes = restoreLeaseBytes(record);
    expect(bytes.byteLength).toBe(RESTORE_LEASE_BYTES);
    expect(parseRestoreLease(bytes)).toEqual(record);
    const inPlace = { ...record, mode: 'in-place' as const, uuid: 'a4b5c6d7-0000-4000-8000-000000000001' };
    expect(parseRestoreLease(restoreLeaseBytes(inPlace))).toEqual(inPlace);
  });

  it('reads no lease from an empty, half-written or foreign volume', () => {
    const enc = (s: string) => new TextEncoder().encode(s);
    expect(parseRestoreLease(new Uint8Array(RESTORE_LEASE_BYTES))).toBeUndefined();
    expect(parseRestoreLease(restoreLeaseBytes(record).subarray(0, 40))).toBeUndefined();
    expect(parseRestoreLease(enc('{"owner":1}'))).toBeUndefined();
    expect(parseRestoreLease(enc(JSON.stringify({ ...record, mode: 'other' })))).toBeUndefined();
    expect(parseRestoreLease(new Uint8Array([0xff, 0xfe]))).toBeUndefined();
    // Unknown fields are dropped, a source without a name is ignored.
    const extra = parseRestoreLease(enc(JSON.stringify({ ...record, source: { uuid: 'x' }, x: 1 })));
    expect(extra).toEqual({ ...record, source: undefined });
  });

  it('refuses a record that does not fit', () => {
    expect(() => restoreLeaseBytes({ ...record, guest: 'g'.repeat(RESTORE_LEASE_BYTES) })).toThrow(TypeError);
  });
});
