/**
 * listGuests against two real libvirt drivers (peer: libvirtd, scripts/peers/start libvirtd):
 *
 * - the test driver's node XML, where every domain and its state come from one
 *   CONNECT_GET_ALL_DOMAIN_STATS call;
 * - the LXC driver (`lxc:///system`, the peer's stopped container `hvkit-lxc1`), which has no
 *   CONNECT_GET_ALL_DOMAIN_STATS, so the adapter falls back to CONNECT_LIST_ALL_DOMAINS and a
 *   DOMAIN_GET_STATE per domain.
 */

import { livePeer } from '@hvkit/conformance';
import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { powerStateFromLibvirt } from '../mapping/domain';
import { DOMAIN_STATS } from '../rpc/constants';
import { remoteProcedures as P } from '../rpc/remote-protocol';
import { connect } from './connect';

const peer = livePeer('libvirtd', [
  'HVKIT_LIBVIRT_TEST_NODE_URI',
  'HVKIT_LIBVIRT_TEST_NODE_DOMAINS',
  'HVKIT_LIBVIRT_LXC_URI',
  'HVKIT_LIBVIRT_LXC_GUEST',
]);

describe.skipIf(!peer.available)(
  `listGuests on the libvirtd peer${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);

    it('test driver: every domain with the state DOMAIN_GET_STATE reports, from one stats call', async () => {
      await using hv = await connect({ uri: env.HVKIT_LIBVIRT_TEST_NODE_URI as string });
      const guests = await hv.inventory!.listGuests();
      expect(guests.length).toBe(Number(env.HVKIT_LIBVIRT_TEST_NODE_DOMAINS));
      for (const g of guests) {
        const dom = await hv.rpc.call(P.DOMAIN_LOOKUP_BY_UUID, { uuid: g.uuid });
        const { state } = await hv.rpc.call(P.DOMAIN_GET_STATE, { dom, flags: 0 });
        expect(g.powerState, g.name).toBe(powerStateFromLibvirt(state));
      }
      const states = new Set(guests.map((g) => g.powerState));
      expect(states.has('running') && states.has('stopped')).toBe(true);
    });

    it('LXC driver (no CONNECT_GET_ALL_DOMAIN_STATS): falls back to the list and one state call per domain', async () => {
      await using hv = await connect({ uri: env.HVKIT_LIBVIRT_LXC_URI as string });
      let refused: unknown;
      try {
        await hv.rpc.call(P.CONNECT_GET_ALL_DOMAIN_STATS, { doms: [], stats: DOMAIN_STATS.STATE, flags: 0 });
      } catch (error) {
        refused = error;
      }
      expect(HvkitError.isInstance(refused, 'UNSUPPORTED')).toBe(true);
      const guests = await hv.inventory!.listGuests();
      const container = guests.find((g) => g.name === env.HVKIT_LIBVIRT_LXC_GUEST);
      expect(container).toMatchObject({ powerState: 'stopped', memoryBytes: 64 * 1024 * 1024, vcpus: 1 });
      const { domains } = await hv.rpc.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 });
      expect(guests.map((g) => g.uuid).sort()).toEqual(domains.map((d) => d.uuid).sort());
    });
  },
);

const qemu = livePeer('libvirtd', ['HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_GUEST']);

describe.skipIf(!qemu.available)(
  `guest lookups on the QEMU driver${qemu.available ? '' : ` (skipped: ${qemu.reason})`}`,
  () => {
    const env = qemu.available ? qemu.env : ({} as Record<string, string>);
    const guest = env.HVKIT_LIBVIRT_GUEST as string;

    it('a name with a NUL byte is INVALID_ARGUMENT and never reaches the daemon (which would cut it at the NUL)', async () => {
      await using hv = await connect({ uri: env.HVKIT_LIBVIRT_QEMU_URI as string });
      const calls = [
        () => hv.inventory!.getGuest({ name: `${guest}\0evil` }),
        () => hv.limits!.get({ name: `${guest}\0` }),
        () => hv.labels!.get({ name: `${guest}\0x` }),
        () => hv.inventory!.listStorageVolumes!('default\0x'),
      ];
      for (const call of calls) {
        let caught: unknown;
        try {
          await call();
        } catch (error) {
          caught = error;
        }
        expect(HvkitError.isInstance(caught, 'INVALID_ARGUMENT'), String(caught)).toBe(true);
        expect((caught as HvkitError).message).toMatch(/NUL/);
      }
      // The plain name still finds the guest.
      expect((await hv.inventory!.getGuest({ name: guest })).name).toBe(guest);
    });
  },
);
