/**
 * Limits against the libvirtd peer's running QEMU guest (scripts/peers/start libvirtd): what the kernel
 * refuses. On this host the memory controller is cgroup v1, where a hard limit below what the guest uses
 * (and the host cannot reclaim: there is no swap) fails with EBUSY. The guest's limits are put back in a
 * finally block whatever happens.
 */

import { execFileSync } from 'node:child_process';
import { livePeer } from '@hvkit/conformance';
import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { connect } from '../connect';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_GUEST']);

const MiB = 1024 * 1024;

describe.skipIf(!peer.available)(
  `limits on the libvirtd peer's QEMU guest${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const uri = env.HVKIT_LIBVIRT_QEMU_URI as string;
    const guest = env.HVKIT_LIBVIRT_GUEST as string;
    const memtune = () =>
      execFileSync('virsh', ['-q', '-c', uri, 'memtune', guest, '--live'], { encoding: 'utf8' });

    it("a memory hard limit below the guest's usage is CONFLICT with a hint (EBUSY), and nothing changes", async () => {
      await using hv = await connect({ uri });
      const before = await hv.limits!.get({ name: guest }, { from: 'live' });
      const virshBefore = memtune();
      let error: unknown;
      try {
        await hv.limits!.set({ name: guest }, { memory: { maxBytes: MiB } }, { apply: 'live' });
      } catch (e) {
        error = e;
      } finally {
        // Whatever happened, the guest gets its own limit back.
        await hv.limits!.set(
          { name: guest },
          { memory: { maxBytes: before.memory?.maxBytes ?? null } },
          { apply: 'live' },
        );
      }
      expect(HvkitError.isInstance(error)).toBe(true);
      const e = error as HvkitError;
      expect(e.code).toBe('CONFLICT');
      expect(e.message).toMatch(/below the guest's current memory usage/);
      expect(e.message).toContain('Device or resource busy');
      expect(e.operation).toBe('limits.set');
      expect(e.retryable).toBe(false);
      expect(e.details).toMatchObject({ errno: 'EBUSY' });
      expect(await hv.limits!.get({ name: guest }, { from: 'live' })).toEqual(before);
      expect(memtune()).toBe(virshBefore);
    });
  },
);
