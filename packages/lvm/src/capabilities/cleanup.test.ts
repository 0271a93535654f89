/** Reading a thin pool's held metadata root from `dmsetup status` (lines recorded in the lab VM). */

import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { heldMetadataRoot } from './backups';

describe('heldMetadataRoot', () => {
  it('reads the held root of a thin pool, and undefined when none is held', () => {
    expect(
      heldMetadataRoot('0 32768 thin-pool 6 112/1024 0/256 - rw discard_passdown queue_if_no_space - 256 \n'),
    ).toBeUndefined();
    expect(
      heldMetadataRoot('0 16384 thin-pool 4 63/512 17/128 48 rw discard_passdown queue_if_no_space - 128 \n'),
    ).toBe('48');
  });

  it('is PROTOCOL for output that is not a thin pool status', () => {
    for (const text of ['', '0 16384 linear', '0 16384 thin-pool 4 63/512']) {
      let error: unknown;
      try {
        heldMetadataRoot(text);
      } catch (e) {
        error = e;
      }
      expect(HvkitError.isInstance(error, 'PROTOCOL'), JSON.stringify(text)).toBe(true);
    }
  });
});
