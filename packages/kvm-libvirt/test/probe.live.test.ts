/**
 * The virsh probe itself, against the libvirtd peer's QEMU guest: it must find the guest by every form of
 * reference the conformance suite passes (a bare id, `{ id }`, `{ uuid }`, `{ name }`), say `false` only
 * when virsh reports no such domain, and fail loudly when virsh cannot answer at all, so that a check
 * such as `inventory.not-found` never passes vacuously.
 */

import { livePeer } from '@hvkit/conformance';
import { describe, expect, it } from 'vitest';
import { virsh, virshProbe } from './probe';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_GUEST']);

describe.skipIf(!peer.available)(`virsh probe${peer.available ? '' : ` (skipped: ${peer.reason})`}`, () => {
  const env = peer.available ? peer.env : ({} as Record<string, string>);
  const uri = env.HVKIT_LIBVIRT_QEMU_URI as string;
  const guest = env.HVKIT_LIBVIRT_GUEST as string;
  const uuid = peer.available ? virsh(uri, 'domuuid', guest).trim() : '';
  const missing = '00000000-0000-4000-8000-00000000dead';

  it('finds the guest from the reference alone, whatever its form', async () => {
    const probe = virshProbe(uri, 2);
    for (const ref of [uuid, { id: uuid }, { uuid }, { name: guest }]) {
      expect(await probe.guestExists?.({ ref }), JSON.stringify(ref)).toBe(true);
      expect((await probe.getGuestFacts?.({ ref }))?.name, JSON.stringify(ref)).toBe(guest);
    }
    for (const ref of [missing, { id: missing }, { uuid: missing }, { name: 'hvkit-no-such-guest' }]) {
      expect(await probe.guestExists?.({ ref }), JSON.stringify(ref)).toBe(false);
    }
  });

  it('throws instead of answering false when virsh cannot reach the daemon', async () => {
    const probe = virshProbe('qemu+unix:///system?socket=/nonexistent/hvkit-libvirt-sock', 2);
    expect(() => probe.guestExists?.({ ref: { id: uuid } })).toThrow(/virsh/);
  });
});
