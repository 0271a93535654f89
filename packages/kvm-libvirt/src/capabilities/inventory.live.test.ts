/**
 * listGuests against two real libvirt drivers (peer: libvirtd, scripts/peers/start libvirtd):
 *
 * - the test driver's node XML, where every domain and its state come from one
 *   CONNECT_GET_ALL_DOMAIN_STATS call;
 * - the LXC driver (`lxc:///system`, the peer's stopped container `hvkit-lxc1`), which has no
 *   CONNECT_GET_ALL_DOMAIN_STATS, so the adapter falls back to CONNECT_LIST_ALL_DOMAINS and a
 *   DOMAIN_GET_STATE per domain.
 */

import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connect } from '../connect';
import { powerStateFromLibvirt } from '../mapping/domain';
import { DOMAIN_STATS } from '../protocol/constants';
import { remoteProcedures as P } from '../protocol/remote-protocol';

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

    it('test driver: every guest carries the host id (the hostname: the test driver has no host UUID)', async () => {
      await using hv = await connect({ uri: env.HVKIT_LIBVIRT_TEST_NODE_URI as string });
      const host = await hv.inventory!.host();
      expect(host.id).toBe(await hv.rpc.call(P.CONNECT_GET_HOSTNAME));
      const guests = await hv.inventory!.listGuests();
      for (const g of guests) expect(g.hostId, g.name).toBe(host.id);
      expect((await hv.inventory!.getGuest(guests[0]?.id as string)).hostId).toBe(host.id);
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

    it('disk capacities come from the same stats call (block group), equal to virsh domblkinfo', async () => {
      await using hv = await connect({ uri: env.HVKIT_LIBVIRT_QEMU_URI as string });
      const info = execFileSync(
        'virsh',
        ['-c', env.HVKIT_LIBVIRT_QEMU_URI as string, 'domblkinfo', guest, 'vda'],
        {
          encoding: 'utf8',
          timeout: 15_000,
        },
      );
      const capacity = Number(/Capacity:\s+(\d+)/.exec(info)?.[1]);
      expect(capacity).toBeGreaterThan(0);
      const listed = (await hv.inventory!.listGuests()).find((g) => g.name === guest);
      expect(listed?.disks.find((d) => d.device === 'vda')).toMatchObject({
        capacityBytes: capacity,
        format: 'qcow2',
      });
      const got = await hv.inventory!.getGuest({ name: guest });
      expect(got.disks.find((d) => d.device === 'vda')?.capacityBytes).toBe(capacity);
      // The QEMU host has a UUID: guests carry it, as the host's id.
      expect(got.hostId).toBe((await hv.inventory!.host()).id);
    });

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

    it('a 100 kB guest reference gives a typed error with a short message that marks the cut', async () => {
      await using hv = await connect({ uri: env.HVKIT_LIBVIRT_QEMU_URI as string });
      const refs = [
        [{ name: 'n'.repeat(100_000) }, 'NOT_FOUND'],
        ['i'.repeat(100_000), 'NOT_FOUND'],
        [{ uuid: 'u'.repeat(100_000) }, 'INVALID_ARGUMENT'],
      ] as const;
      for (const [ref, code] of refs) {
        let caught: unknown;
        try {
          await hv.inventory!.getGuest(ref);
        } catch (error) {
          caught = error;
        }
        expect(HvkitError.isInstance(caught, code), String(caught)).toBe(true);
        const message = (caught as HvkitError).message;
        expect(message.length).toBeLessThan(400);
        expect(message).toMatch(/truncated, \d+ more characters/);
      }
    });
  },
);

const test = livePeer('libvirtd', ['HVKIT_LIBVIRT_TEST_URI']);

describe.skipIf(!test.available)(
  `disk capacity from storage volumes, test driver${test.available ? '' : ` (skipped: ${test.reason})`}`,
  () => {
    // A node of our own: a dir pool with two volumes, a stopped and a running domain using them by path and
    // as a volume disk, and a disk outside any pool. The test driver has no block stats, so capacities come
    // from STORAGE_VOL_LOOKUP_BY_PATH / _BY_NAME + STORAGE_VOL_GET_INFO.
    let dir = '';
    let node = '';
    afterAll(() => {
      if (dir) rmSync(dir, { recursive: true, force: true });
    });
    const domain = (n: number, runstate: number) => `
  <domain type='test' xmlns:test='http://libvirt.org/schemas/domain/test/1.0'>
    <name>hvkit-cap-${n}</name>
    <uuid>5a1e0000-0000-4000-8000-00000000000${n}</uuid>
    <memory unit='MiB'>64</memory>
    <vcpu>1</vcpu>
    <os><type arch='x86_64'>hvm</type></os>
    <devices>
      <disk type='file' device='disk'><source file='/hvkit-cap-pool/disk1.img'/><target dev='vda' bus='virtio'/></disk>
      <disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='/elsewhere/disk2.qcow2'/><target dev='vdb' bus='virtio'/></disk>
      <disk type='volume' device='disk'><source pool='hvkit-cap-pool' volume='disk3.img'/><target dev='vdc' bus='virtio'/></disk>
    </devices>
    <test:runstate>${runstate}</test:runstate>
  </domain>`;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'hvkit-kvm-node-'));
      node = join(dir, 'node.xml');
      writeFileSync(
        node,
        `<node>${domain(1, 5)}${domain(2, 1)}
  <pool type='dir'>
    <name>hvkit-cap-pool</name>
    <uuid>5a1e0000-0000-4000-8000-0000000000aa</uuid>
    <capacity unit='GiB'>10</capacity><allocation>0</allocation><available unit='GiB'>10</available>
    <target><path>/hvkit-cap-pool</path></target>
    <volume type='file'><name>disk1.img</name><capacity unit='MiB'>16</capacity><allocation>0</allocation></volume>
    <volume type='file'><name>disk3.img</name><capacity unit='MiB'>24</capacity><allocation>0</allocation></volume>
  </pool>
</node>
`,
      );
    });

    it('stopped and running guests: pool volumes get their capacity, other disks none; no driver type means raw', async () => {
      await using hv = await connect({ uri: `test+unix://${node}` });
      const expected = [
        {
          device: 'vda',
          source: '/hvkit-cap-pool/disk1.img',
          capacityBytes: 16 * 1024 * 1024,
          format: 'raw',
        },
        { device: 'vdb', source: '/elsewhere/disk2.qcow2', format: 'qcow2' },
        { device: 'vdc', source: 'hvkit-cap-pool/disk3.img', capacityBytes: 24 * 1024 * 1024 },
      ];
      const guests = await hv.inventory!.listGuests();
      expect(guests.map((g) => [g.name, g.powerState]).sort()).toEqual([
        ['hvkit-cap-1', 'stopped'],
        ['hvkit-cap-2', 'running'],
      ]);
      for (const g of [...guests, await hv.inventory!.getGuest({ name: 'hvkit-cap-1' })]) {
        expect(
          g.disks.map(({ device, source, capacityBytes, format }) => ({
            device,
            source,
            capacityBytes,
            format,
          })),
          g.name,
        ).toEqual(expected.map((d) => ({ capacityBytes: undefined, format: undefined, ...d })));
      }
    });
  },
);
