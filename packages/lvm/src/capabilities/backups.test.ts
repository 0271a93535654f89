/** Reading a COW snapshot's state from `dmsetup status` (lines printed by the lab VM's kernel, 6.1). */

import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { cowSnapshotState } from './backups';

describe('cowSnapshotState', () => {
  it('is valid while the kernel reports the COW usage, else the word it prints', () => {
    expect(cowSnapshotState('0 131072 snapshot 16/16384 16\n')).toBe('valid');
    expect(cowSnapshotState('0 131072 snapshot 16384/16384 16\n')).toBe('valid');
    expect(cowSnapshotState('0 131072 snapshot Invalid\n')).toBe('Invalid');
    expect(cowSnapshotState('0 131072 snapshot Overflow\n')).toBe('Overflow');
    expect(cowSnapshotState('0 131072 snapshot Merge failed\n')).toBe('Merge failed');
  });

  it('is PROTOCOL for output that is not a snapshot status', () => {
    for (const text of ['', '0 16384 linear', '0 16384 snapshot-origin', 'Device does not exist.']) {
      let error: unknown;
      try {
        cowSnapshotState(text);
      } catch (e) {
        error = e;
      }
      expect(HvkitError.isInstance(error, 'PROTOCOL'), JSON.stringify(text)).toBe(true);
    }
  });
});
