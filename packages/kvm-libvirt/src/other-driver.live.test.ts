/**
 * A libvirt driver other than QEMU and test (peer: libvirtd with Debian's libvirt-daemon-driver-lxc; its
 * stopped container `hvkit-lxc1` on `lxc:///system`): the generic manifest, no `limits` object, and the
 * backup methods it leaves out refuse with UNSUPPORTED before touching anything.
 */

import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { createDirectorySink, HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { connect } from './connect';
import { KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS } from './supports';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_LXC_URI', 'HVKIT_LIBVIRT_LXC_GUEST']);

async function code(promise: Promise<unknown>): Promise<string | undefined> {
  try {
    await promise;
    return undefined;
  } catch (error) {
    return HvkitError.isInstance(error) ? error.code : String(error);
  }
}

describe.skipIf(!peer.available)(
  `kvm-libvirt on lxc:///system${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);

    it('has the generic manifest and no limits; snapshots and disk backups are UNSUPPORTED', async () => {
      await using hv = await connect({ uri: env.HVKIT_LIBVIRT_LXC_URI as string });
      expect(hv.driver).toBe('LXC');
      expect(hv.supports).toBe(KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS);
      expect(hv.limits).toBeUndefined();
      const ref = { name: env.HVKIT_LIBVIRT_LXC_GUEST as string };
      const backups = hv.backups!;
      expect(await code(backups.listSnapshots!(ref))).toBe('UNSUPPORTED');
      expect(await code(backups.createSnapshot!(ref))).toBe('UNSUPPORTED');
      const dir = await mkdtemp(join(tmpdir(), 'hvkit-lxc-'));
      try {
        expect(await code(backups.backup!(ref, createDirectorySink(dir)))).toBe('UNSUPPORTED');
        expect(await readdir(dir)).toEqual([]);
        // An unknown guest is still NOT_FOUND, as on every driver.
        expect(await code(backups.backup!({ name: 'hvkit-no-such-guest' }, createDirectorySink(dir)))).toBe(
          'NOT_FOUND',
        );
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    });
  },
);
