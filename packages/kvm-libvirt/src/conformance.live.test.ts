/**
 * Live conformance of the kvm-libvirt adapter against the libvirtd peer (scripts/peers/start libvirtd):
 *
 * - libvirt's test driver with the peer's node XML (`HVKIT_LIBVIRT_TEST_NODE_URI`). Each connection to a
 *   node-XML URI gets a private copy of the node, so the probe reads the backend through raw RPC calls on
 *   the adapter's own connection (`adapter.rpc`), decoding the replies itself, not through the adapter's
 *   capability methods. The target is the inactive domain `hvkit-test-0004` (the test driver stores a
 *   memory state with every snapshot of a running domain, so disk-only snapshots need a stopped one).
 * - QEMU (`qemu:///system`) with the peer's guest `hvkit-guest1`; the probe is `virsh`.
 * - LXC (`lxc:///system`, where the peer has the driver) with its stopped container `hvkit-lxc1`: the
 *   manifest of drivers other than QEMU and test; events are raised by redefining the container.
 *
 * The suite restores the limits it changes; afterwards any snapshot or checkpoint named `hvkit-*` left
 * on hvkit-guest1 is removed.
 */

import { rmSync, writeFileSync } from 'node:fs';
import type { ConformanceProbe, ProbeGuest } from '@hvkit/conformance';
import { livePeer, runAdapterConformance } from '@hvkit/conformance';
import type { HypervisorAdapterV1, ResourceLimits } from '@hvkit/core';
import { afterAll, describe, it } from 'vitest';
import { virsh, virshDomainArg, virshProbe } from '../test/probe';
import { QEMU_NIC_RULE, SWAP_RULE, TEST_DRIVER_TARGET } from '../test/replay-options';
import { detectLocalCgroupVersion } from './capabilities/cgroup';
import { connect, type KvmLibvirtAdapter } from './connect';
import { AFFECT } from './protocol/constants';
import { remoteProcedures } from './protocol/remote-protocol';
import type { RemoteDomain, TypedParam } from './protocol/types';

const peer = livePeer('libvirtd', [
  'HVKIT_LIBVIRT_QEMU_URI',
  'HVKIT_LIBVIRT_GUEST',
  'HVKIT_LIBVIRT_TEST_NODE_URI',
]);

const UNLIMITED_KIB = 9007199254740991n;

function num(params: readonly TypedParam[], field: string): bigint | undefined {
  const p = params.find((x) => x.field === field);
  if (p === undefined) return undefined;
  return typeof p.value === 'bigint' ? p.value : BigInt(p.value as number);
}

function kibLimit(v: bigint | undefined): number | null | undefined {
  if (v === undefined) return undefined;
  return v >= UNLIMITED_KIB ? null : Number(v) * 1024;
}

function zeroNull(v: bigint | undefined, scale = 1): number | null | undefined {
  if (v === undefined) return undefined;
  return v === 0n ? null : Number(v) * scale;
}

// ------------------------------------------------------------------ test driver probe (raw RPC)

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function rawDomain(adapter: KvmLibvirtAdapter, g: ProbeGuest): Promise<RemoteDomain> {
  const ref = g.ref as string | { id?: string; uuid?: string; name?: string };
  const uuid = g.uuid ?? (typeof ref === 'string' ? ref : (ref.uuid ?? ref.id));
  const name = g.name ?? (typeof ref === 'object' ? ref.name : undefined);
  if (uuid !== undefined && UUID_RE.test(uuid))
    return adapter.rpc.call(remoteProcedures.DOMAIN_LOOKUP_BY_UUID, { uuid });
  if (name !== undefined) return adapter.rpc.call(remoteProcedures.DOMAIN_LOOKUP_BY_NAME, { name });
  throw Object.assign(new Error('no such domain'), { code: 'NOT_FOUND' });
}

async function twoStep<A extends { nparams: number }>(
  call: (args: A) => Promise<{ params: TypedParam[]; nparams: number }>,
  args: A,
): Promise<TypedParam[]> {
  const first = await call(args);
  return first.nparams === 0 ? [] : (await call({ ...args, nparams: first.nparams })).params;
}

function rpcProbe(adapter: HypervisorAdapterV1): ConformanceProbe {
  const a = adapter as KvmLibvirtAdapter;
  const rpc = a.rpc;
  return {
    async guestExists(g) {
      try {
        await rawDomain(a, g);
        return true;
      } catch (error) {
        if ((error as { code?: string }).code === 'NOT_FOUND') return false;
        throw error;
      }
    },
    async getGuestFacts(g) {
      const dom = await rawDomain(a, g);
      const info = await rpc.call(remoteProcedures.DOMAIN_GET_INFO, { dom });
      return {
        memoryBytes: Number(info.maxMem) * 1024,
        vcpus: info.nrVirtCpu,
        name: dom.name,
        uuid: dom.uuid,
      };
    },
    async getLimits(g, from) {
      const dom = await rawDomain(a, g);
      const active = await rpc.call(remoteProcedures.DOMAIN_IS_ACTIVE, { dom });
      const live = from === 'live' && active;
      const flags = live ? AFFECT.LIVE : AFFECT.CONFIG;
      const xml = await rpc.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: live ? 0 : 2 });
      const disks = [...xml.matchAll(/<disk [^>]*device='disk'[\s\S]*?<target dev='([^']+)'/g)].map(
        (m) => m[1] as string,
      );
      const nics = [...xml.matchAll(/<interface [\s\S]*?<mac address='([^']+)'[\s\S]*?<\/interface>/g)].map(
        (m) => ({
          mac: m[1] as string,
          dev: /<target dev='([^']+)'/.exec(m[0])?.[1],
        }),
      );
      const mem = await twoStep((x) => rpc.call(remoteProcedures.DOMAIN_GET_MEMORY_PARAMETERS, x), {
        dom,
        nparams: 0,
        flags,
      });
      const out: ResourceLimits = {
        memory: {
          ...(num(mem, 'hard_limit') !== undefined ? { maxBytes: kibLimit(num(mem, 'hard_limit')) } : {}),
          ...(num(mem, 'soft_limit') !== undefined ? { softBytes: kibLimit(num(mem, 'soft_limit')) } : {}),
        },
        disks: [],
        nics: [],
      };
      for (const disk of disks) {
        const p = await twoStep((x) => rpc.call(remoteProcedures.DOMAIN_GET_BLOCK_IO_TUNE, x), {
          dom,
          disk,
          nparams: 0,
          flags,
        });
        out.disks?.push({
          device: disk,
          readBytesPerSec: zeroNull(num(p, 'read_bytes_sec')) ?? null,
          writeBytesPerSec: zeroNull(num(p, 'write_bytes_sec')) ?? null,
          readIops: zeroNull(num(p, 'read_iops_sec')) ?? null,
          writeIops: zeroNull(num(p, 'write_iops_sec')) ?? null,
        });
      }
      for (const [i, nic] of nics.entries()) {
        const p = await twoStep((x) => rpc.call(remoteProcedures.DOMAIN_GET_INTERFACE_PARAMETERS, x), {
          dom,
          device: nic.mac,
          nparams: 0,
          flags,
        });
        out.nics?.push({
          device: nic.dev ?? `net${i}`,
          inboundAverageBytesPerSec: zeroNull(num(p, 'inbound.average'), 1024) ?? null,
          inboundPeakBytesPerSec: zeroNull(num(p, 'inbound.peak'), 1024) ?? null,
          inboundBurstBytes: zeroNull(num(p, 'inbound.burst'), 1024) ?? null,
          outboundAverageBytesPerSec: zeroNull(num(p, 'outbound.average'), 1024) ?? null,
          outboundPeakBytesPerSec: zeroNull(num(p, 'outbound.peak'), 1024) ?? null,
          outboundBurstBytes: zeroNull(num(p, 'outbound.burst'), 1024) ?? null,
        });
      }
      return out;
    },
    async listSnapshotIds(g) {
      const dom = await rawDomain(a, g);
      const { snapshots } = await rpc.call(remoteProcedures.DOMAIN_LIST_ALL_SNAPSHOTS, {
        dom,
        needResults: 1,
        flags: 0,
      });
      return snapshots.map((s) => s.name);
    },
    async triggerEvent(g) {
      // Re-defining the domain with its own definition raises a "defined/updated" lifecycle event.
      const dom = await rawDomain(a, g);
      const xml = await rpc.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: 2 });
      await rpc.call(remoteProcedures.DOMAIN_DEFINE_XML, { xml });
    },
  };
}

// ------------------------------------------------------------------ suites

if (!peer.available) {
  describe.skip(`kvm-libvirt live conformance (skipped: ${peer.reason})`, () => {
    it('needs the libvirtd peer', () => {});
  });
} else {
  const {
    HVKIT_LIBVIRT_QEMU_URI: qemuUri,
    HVKIT_LIBVIRT_GUEST: guest,
    HVKIT_LIBVIRT_TEST_NODE_URI: nodeUri,
  } = peer.env;

  runAdapterConformance({
    name: 'kvm-libvirt (test driver, node XML)',
    mode: 'live',
    factory: () => connect({ uri: nodeUri }),
    probe: rpcProbe,
    target: TEST_DRIVER_TARGET.target,
    skip: TEST_DRIVER_TARGET.skip,
  });

  const cgroupVersion = (await detectLocalCgroupVersion()) ?? 2;
  runAdapterConformance({
    name: `kvm-libvirt (QEMU guest ${guest})`,
    mode: 'live',
    factory: () => connect({ uri: qemuUri }),
    probe: virshProbe(qemuUri, cgroupVersion),
    target: { name: guest },
    // The peer's stopped guest has no disks: its backup is the definition alone.
    ...(process.env.HVKIT_LIBVIRT_STOPPED_GUEST
      ? { disklessGuest: { name: process.env.HVKIT_LIBVIRT_STOPPED_GUEST } }
      : {}),
    skip: {
      'limits.round-trip.nics': QEMU_NIC_RULE,
      'limits.null.nics': QEMU_NIC_RULE,
      ...(cgroupVersion === 1
        ? { 'limits.round-trip.memory.swapMaxBytes': SWAP_RULE, 'limits.null.memory.swapMaxBytes': SWAP_RULE }
        : {}),
    },
    testTimeoutMs: 180_000,
  });

  // A driver other than QEMU and test: the generic manifest, on the peer's stopped LXC container.
  const lxc = livePeer('libvirtd', ['HVKIT_LIBVIRT_LXC_URI', 'HVKIT_LIBVIRT_LXC_GUEST']);
  if (lxc.available) {
    runAdapterConformance({
      name: `kvm-libvirt (LXC container ${lxc.env.HVKIT_LIBVIRT_LXC_GUEST})`,
      mode: 'live',
      factory: () => connect({ uri: lxc.env.HVKIT_LIBVIRT_LXC_URI }),
      probe: {
        ...virshProbe(lxc.env.HVKIT_LIBVIRT_LXC_URI, cgroupVersion),
        // The container never runs: redefining it unchanged raises a `defined` (updated) event.
        triggerEvent(g) {
          const uri = lxc.env.HVKIT_LIBVIRT_LXC_URI;
          const id = virshDomainArg(g);
          const file = `/tmp/hvkit-lxc-event-${process.pid}.xml`;
          writeFileSync(file, virsh(uri, 'dumpxml', '--inactive', '--security-info', id));
          try {
            virsh(uri, 'define', file);
          } finally {
            rmSync(file, { force: true });
          }
        },
      },
      target: { name: lxc.env.HVKIT_LIBVIRT_LXC_GUEST },
    });
  } else {
    describe.skip(`kvm-libvirt (LXC) live conformance (skipped: ${lxc.reason})`, () => {
      it('needs the LXC driver in the libvirtd peer', () => {});
    });
  }

  afterAll(() => {
    // Remove anything named hvkit-* the suite may have left on the guest (e.g. backup checkpoints).
    for (const kind of ['checkpoint', 'snapshot'] as const) {
      let names: string[] = [];
      try {
        names = virsh(qemuUri, `${kind}-list`, guest, '--name')
          .split('\n')
          .map((s) => s.trim())
          .filter((s) => s.startsWith('hvkit-'));
      } catch {
        continue;
      }
      for (const name of names.reverse()) {
        try {
          virsh(qemuUri, `${kind}-delete`, guest, name);
        } catch {
          // best effort
        }
      }
    }
  });
}
