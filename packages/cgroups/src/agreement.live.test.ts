/**
 * Two adapters agree on one guest: for the libvirt peer's running QEMU guest, `limits.get` through
 * @hvkit/cgroups (the cgroup files) equals `limits.get` through @hvkit/kvm-libvirt (libvirt's scheduler
 * and memory parameters) for cpu weight, maxCores and memory.maxBytes, after a `limits.set` through
 * either. The guest's own values are put back through libvirt in `finally`: other tests use it.
 */

import { livePeer } from '@hvkit/conformance';
import type { ResourceLimits } from '@hvkit/core';
import { connect as connectLibvirt } from '@hvkit/kvm-libvirt';
import { describe, expect, it } from 'vitest';
import { localTree } from '../test/local-tree';
import { connect } from './connect';

const libvirt = livePeer('libvirtd', ['HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_GUEST']);
const tree = localTree();
const MiB = 1024 * 1024;

/** The fields both adapters report. */
function shared(l: ResourceLimits) {
  return { weight: l.cpu?.weight, maxCores: l.cpu?.maxCores, maxBytes: l.memory?.maxBytes };
}

if (!libvirt.available || !tree.available) {
  describe('cgroups and kvm-libvirt agree', () => {
    it.skip(`skipped: ${libvirt.available ? (tree.available ? '' : tree.reason) : libvirt.reason}`, () => {});
  });
} else {
  describe('cgroups and kvm-libvirt agree on the running QEMU peer guest', () => {
    it('after a set through cgroups, and after a set through kvm-libvirt (restored afterwards)', async () => {
      const name = libvirt.env.HVKIT_LIBVIRT_GUEST;
      await using kvm = await connectLibvirt({ uri: libvirt.env.HVKIT_LIBVIRT_QEMU_URI });
      await using cg = await connect();
      const original = await kvm.limits!.get({ name });
      expect(shared(await cg.limits.get({ name }))).toEqual(shared(original));
      try {
        // Memory caps well above what the 128 MiB guest uses, in whole KiB for libvirt.
        await cg.limits.set(
          { name },
          { cpu: { weight: 300, maxCores: 1.5 }, memory: { maxBytes: 1024 * MiB } },
        );
        const viaLibvirt = await kvm.limits!.get({ name });
        expect(shared(viaLibvirt)).toEqual({ weight: 300, maxCores: 1.5, maxBytes: 1024 * MiB });
        expect(shared(await cg.limits.get({ name }))).toEqual(shared(viaLibvirt));

        await kvm.limits!.set(
          { name },
          { cpu: { weight: 150, maxCores: 0.75 }, memory: { maxBytes: 768 * MiB } },
          {
            apply: 'live',
          },
        );
        const viaCgroups = await cg.limits.get({ name });
        expect(shared(viaCgroups)).toEqual({ weight: 150, maxCores: 0.75, maxBytes: 768 * MiB });
        expect(shared(await kvm.limits!.get({ name }))).toEqual(shared(viaCgroups));
      } finally {
        await kvm.limits!.set(
          { name },
          {
            cpu: { weight: original.cpu?.weight ?? null, maxCores: original.cpu?.maxCores ?? null },
            memory: { maxBytes: original.memory?.maxBytes ?? null },
          },
          { apply: 'live' },
        );
      }
      expect(shared(await cg.limits.get({ name }))).toEqual(shared(original));
    });
  });
}
