/**
 * Live tests of the RPC client against the libvirtd peer (scripts/peers/start libvirtd): the test
 * driver (test+unix:///default and a node XML file) and the real QEMU guest on qemu:///system.
 * The QEMU guest is only read, except the scheduler test, which restores what it changed. Domains
 * started here are throwaway transient domains of this test.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, existsSync, ftruncateSync, openSync, readFileSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import { HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { connectRpc } from '../connect';
import type { LibvirtRpcClient, RpcTraceEvent } from './client';
import { DOMAIN_EVENT, DOMAIN_STATE, MESSAGE_TYPE, PROGRAM, TYPED_PARAM_STRING_OKAY } from './constants';
import { isDomainEventResync } from './events';
import { remoteProcedures as P } from './remote-protocol';
import { isStreamHole, type StreamChunk } from './stream';
import { type RemoteDomain, TYPED_PARAM, type TypedParam } from './types';

const peer = livePeer('libvirtd', [
  'HVKIT_LIBVIRT_SOCKET',
  'HVKIT_LIBVIRT_QEMU_URI',
  'HVKIT_LIBVIRT_GUEST',
  'HVKIT_LIBVIRT_ACCEL',
  'HVKIT_LIBVIRT_POOL',
  'HVKIT_LIBVIRT_TEST_URI',
  'HVKIT_LIBVIRT_TEST_NODE_URI',
  'HVKIT_LIBVIRT_TEST_NODE_DOMAINS',
]);

async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  try {
    await promise;
  } catch (error) {
    expect(HvkitError.isInstance(error), `expected an HvkitError, got ${String(error)}`).toBe(true);
    return error as HvkitError;
  }
  throw new Error('expected a rejection');
}

const sha256 = (data: Uint8Array | Buffer) => createHash('sha256').update(data).digest('hex');

/**
 * Whether the running guest's block I/O cgroup has a weight file. libvirt reads `blkio.bfq.weight` or
 * `blkio.weight` (cgroup v1), `io.bfq.weight` or `io.weight` (v2); kernels whose disks run neither BFQ nor
 * CFQ have none, and libvirt then refuses live blkio parameters ("valid only for bfq or cfq scheduler").
 * The test cannot choose the host's scheduler, so it reads what the guest's cgroup offers.
 */
function guestBlkioWeight(guest: string): { group: string; hasWeight: boolean } {
  const pid = readFileSync(`/var/run/libvirt/qemu/${guest}.pid`, 'utf8').trim();
  const lines = readFileSync(`/proc/${pid}/cgroup`, 'utf8').trim().split('\n');
  const v1 = lines
    .map((l) => l.split(':'))
    .find(([, controllers]) => controllers?.split(',').includes('blkio'));
  if (v1) {
    const group = join('/sys/fs/cgroup/blkio', v1[2] as string);
    return {
      group,
      hasWeight: ['blkio.bfq.weight', 'blkio.weight'].some((f) => existsSync(join(group, f))),
    };
  }
  const unified = lines.map((l) => l.split(':')).find(([id]) => id === '0');
  const mount = existsSync('/sys/fs/cgroup/unified/cgroup.controllers')
    ? '/sys/fs/cgroup/unified'
    : '/sys/fs/cgroup';
  const group = join(mount, (unified?.[2] as string) ?? '/');
  return { group, hasWeight: ['io.bfq.weight', 'io.weight'].some((f) => existsSync(join(group, f))) };
}

describe.skipIf(!peer.available)(
  `libvirt RPC client, live (peer libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const accel = () => (env.HVKIT_LIBVIRT_ACCEL === 'kvm' ? 'kvm' : 'qemu');
    let qemu: LibvirtRpcClient;
    let test: LibvirtRpcClient;

    beforeAll(async () => {
      qemu = await connectRpc({ uri: env.HVKIT_LIBVIRT_QEMU_URI as string });
      test = await connectRpc({ uri: env.HVKIT_LIBVIRT_TEST_URI as string });
    });
    afterAll(async () => {
      await qemu?.close();
      await test?.close();
    });

    describe('test driver', () => {
      it('connects to test+unix:///default, lists domains and reads XML, node info and security model', async () => {
        expect(test.openUri).toBe('test:///default');
        expect(test.keepaliveActive).toBe(true);
        expect(await test.call(P.CONNECT_GET_URI)).toBe('test:///default');
        const { domains, ret } = await test.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 });
        expect(ret).toBe(domains.length);
        const dom = domains.find((d) => d.name === 'test');
        expect(dom).toBeDefined();
        const xml = await test.call(P.DOMAIN_GET_XML_DESC, { dom: dom!, flags: 0 });
        expect(xml).toContain('<name>test</name>');
        expect(xml).toContain(dom!.uuid);
        const node = await test.call(P.NODE_GET_INFO);
        expect(typeof node.memory).toBe('bigint');
        expect(node.memory).toBe(3_145_728n);
        expect(node.model).toBe('i686');
        expect(await test.call(P.NODE_GET_SECURITY_MODEL)).toEqual({ model: 'testSecurity', doi: '' });
        const info = await test.call(P.DOMAIN_GET_INFO, { dom: dom! });
        expect(info.cpuTime > 2n ** 53n).toBe(true);
      });

      it('opens a node XML file through test+unix:///<path>', async () => {
        const uri = env.HVKIT_LIBVIRT_TEST_NODE_URI as string;
        await using node = await connectRpc({ uri });
        expect(node.openUri).toBe(uri.replace('test+unix://', 'test://'));
        const { domains } = await node.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 });
        expect(domains.length).toBe(Number(env.HVKIT_LIBVIRT_TEST_NODE_DOMAINS));
        expect(domains.some((d) => d.id === -1)).toBe(true);
      });

      it('pipelines 600 calls (XML and state of each domain, repeated) and matches every reply to its call', async () => {
        const uri = env.HVKIT_LIBVIRT_TEST_NODE_URI as string;
        await using node = await connectRpc({ uri });
        const stats = await node.call(P.CONNECT_GET_ALL_DOMAIN_STATS, { doms: [], stats: 1, flags: 0 });
        expect(stats.length).toBe(Number(env.HVKIT_LIBVIRT_TEST_NODE_DOMAINS));
        const rounds = Math.ceil(300 / stats.length);
        const calls = Array.from({ length: rounds }, () =>
          stats.map(async ({ dom, params }) => {
            const [xml, state] = await Promise.all([
              node.call(P.DOMAIN_GET_XML_DESC, { dom, flags: 0 }),
              node.call(P.DOMAIN_GET_STATE, { dom, flags: 0 }),
            ]);
            expect(xml).toContain(`<uuid>${dom.uuid}</uuid>`);
            expect(state.state).toBe(params.find((p) => p.field === 'state.state')?.value);
          }),
        ).flat();
        expect(node.stats().inFlight).toBe(4);
        await Promise.all(calls);
        expect(node.stats()).toMatchObject({ inFlight: 0, queued: 0, lateReplies: 0 });
      });

      it('creates, reads and deletes a snapshot', async () => {
        const dom = await test.call(P.DOMAIN_LOOKUP_BY_NAME, { name: 'test' });
        const name = `hvkit-rpc-snap-${process.pid}`;
        const snap = await test.call(P.DOMAIN_SNAPSHOT_CREATE_XML, {
          dom,
          xml: `<domainsnapshot><name>${name}</name><description>rpc live test</description></domainsnapshot>`,
          flags: 0,
        });
        try {
          expect(snap.name).toBe(name);
          expect(snap.dom.name).toBe('test');
          const { snapshots } = await test.call(P.DOMAIN_LIST_ALL_SNAPSHOTS, {
            dom,
            needResults: 1,
            flags: 0,
          });
          expect(snapshots.map((s) => s.name)).toContain(name);
          expect(await test.call(P.DOMAIN_SNAPSHOT_GET_XML_DESC, { snap, flags: 0 })).toContain(
            'rpc live test',
          );
          expect((await test.call(P.DOMAIN_SNAPSHOT_LOOKUP_BY_NAME, { dom, name, flags: 0 })).name).toBe(
            name,
          );
          expect((await test.call(P.DOMAIN_SNAPSHOT_CURRENT, { dom, flags: 0 })).name).toBe(name);
        } finally {
          await test.call(P.DOMAIN_SNAPSHOT_DELETE, { snap, flags: 0 });
        }
        const gone = await rejection(test.call(P.DOMAIN_SNAPSHOT_LOOKUP_BY_NAME, { dom, name, flags: 0 }));
        expect(gone.code).toBe('NOT_FOUND');
        expect(gone.backendCode).toBe(72);
      });

      it('defines, starts, tunes, suspends, snapshots and removes a persistent domain', async () => {
        const name = `hvkit-rpc-life-${process.pid}`;
        const dom = await test.call(P.DOMAIN_DEFINE_XML, {
          xml: `<domain type='test'><name>${name}</name><memory>65536</memory><vcpu>2</vcpu><os><type>hvm</type></os></domain>`,
        });
        try {
          expect(dom.id).toBe(-1);
          expect(await test.call(P.DOMAIN_IS_PERSISTENT, { dom })).toBe(true);
          expect(await test.call(P.DOMAIN_IS_ACTIVE, { dom })).toBe(false);
          const running = await test.call(P.DOMAIN_CREATE_WITH_FLAGS, { dom, flags: 0 });
          expect(running.id).toBeGreaterThan(0);
          await test.call(P.DOMAIN_SET_VCPUS_FLAGS, { dom: running, nvcpus: 1, flags: 1 });
          expect(await test.call(P.DOMAIN_GET_VCPUS_FLAGS, { dom: running, flags: 1 })).toBe(1);
          await test.call(P.DOMAIN_SET_MEMORY_FLAGS, { dom: running, memory: 32_768n, flags: 1 });
          expect((await test.call(P.DOMAIN_GET_INFO, { dom: running })).memory).toBe(32_768n);
          expect(await test.call(P.DOMAIN_GET_MAX_MEMORY, { dom: running })).toBe(65_536n);
          await test.call(P.DOMAIN_SUSPEND, { dom: running });
          expect((await test.call(P.DOMAIN_GET_STATE, { dom: running, flags: 0 })).state).toBe(
            DOMAIN_STATE.PAUSED,
          );
          await test.call(P.DOMAIN_RESUME, { dom: running });
          const snap = await test.call(P.DOMAIN_SNAPSHOT_CREATE_XML, {
            dom: running,
            xml: '<domainsnapshot><name>s1</name></domainsnapshot>',
            flags: 0,
          });
          await test.call(P.DOMAIN_REVERT_TO_SNAPSHOT, { snap, flags: 0 });
          await test.call(P.DOMAIN_DESTROY_FLAGS, { dom: running, flags: 0 });
          expect((await test.call(P.DOMAIN_GET_STATE, { dom, flags: 0 })).state).toBe(DOMAIN_STATE.SHUTOFF);
          await test.call(P.DOMAIN_CREATE, { dom });
          await test.call(P.DOMAIN_DESTROY, { dom });
        } finally {
          // 2 = VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA
          await test.call(P.DOMAIN_UNDEFINE_FLAGS, { dom, flags: 2 });
        }
        expect((await rejection(test.call(P.DOMAIN_LOOKUP_BY_NAME, { name }))).code).toBe('NOT_FOUND');
        const plain = await test.call(P.DOMAIN_DEFINE_XML, {
          xml: `<domain type='test'><name>${name}-2</name><memory>8192</memory><os><type>hvm</type></os></domain>`,
        });
        await test.call(P.DOMAIN_UNDEFINE, { dom: plain });
      });

      it('reads networks, pools and volumes of the test driver', async () => {
        const { networks } = await test.call(P.CONNECT_LIST_ALL_NETWORKS, { needResults: 1, flags: 0 });
        const net = await test.call(P.NETWORK_LOOKUP_BY_NAME, { name: networks[0]?.name as string });
        expect(await test.call(P.NETWORK_GET_XML_DESC, { net, flags: 0 })).toContain(
          `<name>${net.name}</name>`,
        );
        const { pools } = await test.call(P.CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 0 });
        const pool = await test.call(P.STORAGE_POOL_LOOKUP_BY_NAME, { name: pools[0]?.name as string });
        expect(await test.call(P.STORAGE_POOL_GET_XML_DESC, { pool, flags: 0 })).toContain('<pool');
        const { vols } = await test.call(P.STORAGE_POOL_LIST_ALL_VOLUMES, { pool, needResults: 1, flags: 0 });
        for (const vol of vols) {
          expect(await test.call(P.STORAGE_VOL_LOOKUP_BY_NAME, { pool, name: vol.name })).toEqual(vol);
          expect(await test.call(P.STORAGE_VOL_GET_XML_DESC, { vol, flags: 0 })).toContain('<volume');
          expect(typeof (await test.call(P.STORAGE_VOL_GET_INFO, { vol })).capacity).toBe('bigint');
        }
        expect(await test.call(P.CONNECT_GET_TYPE)).toBe('TEST');
        expect(await test.call(P.CONNECT_SUPPORTS_FEATURE, { feature: 10 })).toBe(true);
      });

      it('reports lifecycle events of the test driver', async () => {
        await using own = await connectRpc({ uri: env.HVKIT_LIBVIRT_TEST_URI as string });
        const name = `hvkit-rpc-ev-${process.pid}`;
        const sub = await own.subscribeDomainLifecycle({ signal: AbortSignal.timeout(10_000) });
        const dom = await own.call(P.DOMAIN_CREATE_XML, {
          xml: `<domain type='test'><name>${name}</name><memory>8192</memory><os><type>hvm</type></os></domain>`,
          flags: 0,
        });
        await own.call(P.DOMAIN_DESTROY, { dom });
        const seen: number[] = [];
        for await (const e of sub) {
          if (isDomainEventResync(e) || e.dom.name !== name) continue;
          seen.push(e.event);
          if (e.event === DOMAIN_EVENT.STOPPED) break;
        }
        expect(seen).toEqual([DOMAIN_EVENT.STARTED, DOMAIN_EVENT.STOPPED]);
        expect(sub.closed).toBe(true);
      });
    });

    describe('qemu:///system', () => {
      it('lists the guest and reads its XML, info, state and security labels', async () => {
        const { domains } = await qemu.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 1 });
        const dom = domains.find((d) => d.name === env.HVKIT_LIBVIRT_GUEST);
        expect(dom).toBeDefined();
        expect(dom!.id).toBeGreaterThan(0);
        expect(await qemu.call(P.DOMAIN_LOOKUP_BY_UUID, { uuid: dom!.uuid })).toEqual(dom);
        expect(await qemu.call(P.DOMAIN_LOOKUP_BY_ID, { id: dom!.id })).toEqual(dom);
        const xml = await qemu.call(P.DOMAIN_GET_XML_DESC, { dom: dom!, flags: 0 });
        expect(xml).toContain(`<name>${env.HVKIT_LIBVIRT_GUEST}</name>`);
        const info = await qemu.call(P.DOMAIN_GET_INFO, { dom: dom! });
        expect(info.state).toBe(DOMAIN_STATE.RUNNING);
        expect(info.maxMem).toBe(131_072n);
        expect((await qemu.call(P.DOMAIN_GET_STATE, { dom: dom!, flags: 0 })).state).toBe(
          DOMAIN_STATE.RUNNING,
        );
        const model = await qemu.call(P.NODE_GET_SECURITY_MODEL);
        expect(typeof model.model).toBe('string');
        const labels = await qemu.call(P.DOMAIN_GET_SECURITY_LABEL_LIST, { dom: dom! });
        expect(labels.ret).toBe(labels.labels.length);
        const node = await qemu.call(P.NODE_GET_INFO);
        expect(node.model).toBe('x86_64');
        expect(node.memory > 0n).toBe(true);
        expect(await qemu.call(P.CONNECT_GET_LIB_VERSION)).toBeGreaterThanOrEqual(9_000_000n);
      });

      it('reads tuning parameters with the two-step pattern', async () => {
        const dom = await qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: env.HVKIT_LIBVIRT_GUEST as string });
        const count = await qemu.call(P.DOMAIN_GET_MEMORY_PARAMETERS, {
          dom,
          nparams: 0,
          flags: TYPED_PARAM_STRING_OKAY,
        });
        expect(count.params).toEqual([]);
        const memory = await qemu.call(P.DOMAIN_GET_MEMORY_PARAMETERS, {
          dom,
          nparams: count.nparams,
          flags: TYPED_PARAM_STRING_OKAY,
        });
        const hard = memory.params.find((p) => p.field === 'hard_limit');
        expect(hard?.type).toBe(TYPED_PARAM.ULLONG);
        expect(hard?.value).toBe(9_007_199_254_740_991n);
        const readBlkio = (flags: number) =>
          qemu.call(P.DOMAIN_GET_BLKIO_PARAMETERS, {
            dom,
            nparams: 16,
            flags: TYPED_PARAM_STRING_OKAY | flags,
          });
        // The stored definition always has a weight (0: unset); the live one only where the cgroup has one.
        const config = await readBlkio(2);
        expect(config.params.find((p) => p.field === 'weight')?.type).toBe(TYPED_PARAM.UINT);
        const cgroup = guestBlkioWeight(env.HVKIT_LIBVIRT_GUEST as string);
        if (cgroup.hasWeight) {
          const live = await readBlkio(0);
          expect(live.params.find((p) => p.field === 'weight')?.type).toBe(TYPED_PARAM.UINT);
        } else {
          const refused = await rejection(readBlkio(0));
          expect(refused.code, `${cgroup.group} has no weight file`).toBe('CONFLICT');
          expect(refused.message).toMatch(/bfq or cfq/);
        }
        const ioCount = await qemu.call(P.DOMAIN_GET_BLOCK_IO_TUNE, {
          dom,
          disk: null,
          nparams: 0,
          flags: 4,
        });
        const io = await qemu.call(P.DOMAIN_GET_BLOCK_IO_TUNE, {
          dom,
          disk: 'vda',
          nparams: ioCount.nparams,
          flags: 4,
        });
        expect(io.params.map((p) => p.field)).toContain('total_bytes_sec');
        const stats = await qemu.call(P.CONNECT_GET_ALL_DOMAIN_STATS, {
          doms: [dom],
          stats: 1 | 2,
          flags: 0,
        });
        expect(stats[0]?.params.find((p) => p.field === 'state.state')?.value).toBe(DOMAIN_STATE.RUNNING);
        const job = await qemu.call(P.DOMAIN_GET_JOB_INFO, { dom });
        expect(job.type).toBe(0);
      });

      it('gets and sets scheduler parameters on the guest, keeping the driver types, and restores them', async () => {
        const dom = await qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: env.HVKIT_LIBVIRT_GUEST as string });
        const { nparams } = await qemu.call(P.DOMAIN_GET_SCHEDULER_TYPE, { dom });
        const before = await qemu.call(P.DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS, { dom, nparams, flags: 0 });
        const shares = before.find((p) => p.field === 'cpu_shares') as TypedParam;
        expect(shares.type).toBe(TYPED_PARAM.ULLONG);
        const original = shares.value as bigint;
        const changed = original === 2048n ? 1536n : 2048n;
        try {
          await qemu.call(P.DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS, {
            dom,
            params: [{ ...shares, value: changed }],
            flags: 1,
          });
          const after = await qemu.call(P.DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS, { dom, nparams, flags: 0 });
          expect(after.find((p) => p.field === 'cpu_shares')?.value).toBe(changed);
          // A wrong type is refused by the driver (INVALID_ARGUMENT), nothing changes.
          const wrong = await rejection(
            qemu.call(P.DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS, {
              dom,
              params: [{ field: 'cpu_shares', type: TYPED_PARAM.UINT, value: 5 }],
              flags: 1,
            }),
          );
          expect(wrong.code).toBe('INVALID_ARGUMENT');
        } finally {
          await qemu.call(P.DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS, {
            dom,
            params: [{ ...shares, value: original }],
            flags: 1,
          });
        }
        const restored = await qemu.call(P.DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS, { dom, nparams, flags: 0 });
        expect(restored.find((p) => p.field === 'cpu_shares')?.value).toBe(original);
      });

      it('writes memory, blkio, block I/O and interface parameters back unchanged (setter layouts)', async () => {
        const dom = await qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: env.HVKIT_LIBVIRT_GUEST as string });
        const memory = await qemu.call(P.DOMAIN_GET_MEMORY_PARAMETERS, { dom, nparams: 16, flags: 4 });
        const hard = memory.params.filter((p) => p.field === 'hard_limit');
        await qemu.call(P.DOMAIN_SET_MEMORY_PARAMETERS, { dom, params: hard, flags: 1 });
        if (guestBlkioWeight(env.HVKIT_LIBVIRT_GUEST as string).hasWeight) {
          const blkio = await qemu.call(P.DOMAIN_GET_BLKIO_PARAMETERS, { dom, nparams: 16, flags: 4 });
          const weight = blkio.params.filter((p) => p.field === 'weight');
          await qemu.call(P.DOMAIN_SET_BLKIO_PARAMETERS, { dom, params: weight, flags: 1 });
        } else {
          // No weight file in the guest's cgroup: a live weight is refused with a typed error, nothing set.
          const refused = await rejection(
            qemu.call(P.DOMAIN_SET_BLKIO_PARAMETERS, {
              dom,
              params: [{ field: 'weight', type: TYPED_PARAM.UINT, value: 500 }],
              flags: 1,
            }),
          );
          expect(refused.code).toBe('CONFLICT');
          expect(refused.message).toMatch(/bfq or cfq/);
        }
        const io = await qemu.call(P.DOMAIN_GET_BLOCK_IO_TUNE, { dom, disk: 'vda', nparams: 32, flags: 4 });
        const total = io.params.filter((p) => p.field === 'total_bytes_sec');
        await qemu.call(P.DOMAIN_SET_BLOCK_IO_TUNE, { dom, disk: 'vda', params: total, flags: 1 });
        const xml = await qemu.call(P.DOMAIN_GET_XML_DESC, { dom, flags: 0 });
        const mac = /<mac address='([^']+)'/.exec(xml)?.[1] as string;
        const nic = await qemu.call(P.DOMAIN_GET_INTERFACE_PARAMETERS, {
          dom,
          device: mac,
          nparams: 16,
          flags: 4,
        });
        const inbound = nic.params.filter((p) => p.field === 'inbound.average');
        expect(inbound.length).toBe(1);
        await qemu.call(P.DOMAIN_SET_INTERFACE_PARAMETERS, { dom, device: mac, params: inbound, flags: 1 });
        const after = await qemu.call(P.DOMAIN_GET_MEMORY_PARAMETERS, { dom, nparams: 16, flags: 4 });
        expect(after.params).toEqual(memory.params);
        expect((await rejection(qemu.call(P.DOMAIN_ABORT_JOB_FLAGS, { dom, flags: 0 }))).code).toBe(
          'CONFLICT',
        );
      });

      it('maps libvirt errors to hvkit codes with the libvirt code and domain', async () => {
        const missing = await rejection(qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: 'hvkit-no-such-guest' }));
        expect(missing).toMatchObject({
          code: 'NOT_FOUND',
          backendCode: 42,
          operation: 'rpc.DOMAIN_LOOKUP_BY_NAME',
        });
        expect(missing.details).toMatchObject({ domain: 10, domainName: 'VIR_FROM_QEMU' });
        const dom = await qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: env.HVKIT_LIBVIRT_GUEST as string });
        const noJob = await rejection(qemu.call(P.DOMAIN_ABORT_JOB, { dom }));
        expect(noJob).toMatchObject({ code: 'CONFLICT', backendCode: 55 });
        const unknown = await rejection(qemu.callRaw(PROGRAM.REMOTE, 9999));
        expect(unknown.code).toBe('UNSUPPORTED');
        const badXml = await rejection(qemu.call(P.DOMAIN_CREATE_XML, { xml: '<domain', flags: 0 }));
        expect(badXml.code).toBe('INVALID_ARGUMENT');
        // Client-side limits: nothing is sent and the connection stays usable.
        const huge = await rejection(
          qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: 'x'.repeat(4 * 1024 * 1024 + 1) }),
        );
        expect(huge.code).toBe('INVALID_ARGUMENT');
        const oversized = await rejection(qemu.callRaw(PROGRAM.REMOTE, 23, new Uint8Array(33_554_432)));
        expect(oversized.code).toBe('INVALID_ARGUMENT');
        expect(await qemu.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
      });

      it('runs 20 overlapped calls on one connection, at most 4 at the daemon, replies matched by serial', async () => {
        const dom = await qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: env.HVKIT_LIBVIRT_GUEST as string });
        const order: number[] = [];
        const calls = Array.from({ length: 20 }, (_, i) => {
          const p =
            i % 4 === 0
              ? qemu.call(P.DOMAIN_GET_XML_DESC, { dom, flags: 0 }).then((x) => x.includes(dom.name))
              : i % 4 === 1
                ? qemu.call(P.CONNECT_GET_CAPABILITIES).then((x) => x.includes('<capabilities>'))
                : i % 4 === 2
                  ? qemu.call(P.DOMAIN_GET_INFO, { dom }).then((x) => x.maxMem === 131_072n)
                  : qemu.call(P.CONNECT_GET_HOSTNAME).then((x) => x.length > 0);
          return p.then((ok) => {
            order.push(i);
            return ok;
          });
        });
        const stats = qemu.stats();
        expect(stats.inFlight).toBe(4);
        expect(stats.queued).toBe(16);
        expect(await Promise.all(calls)).toEqual(new Array(20).fill(true));
        expect(order.length).toBe(20);
        expect(qemu.stats()).toMatchObject({ inFlight: 0, queued: 0 });
      });

      it('wraps serial numbers at 2^32 (serial 0 is valid)', async () => {
        await using c = await connectRpc({ uri: 'qemu:///system' });
        const serials: number[] = [];
        const traced = await connectRpc({
          uri: 'qemu:///system',
          trace: (e) => {
            if (e.direction === 'receive' && e.header.type === MESSAGE_TYPE.REPLY)
              serials.push(e.header.serial);
          },
        });
        try {
          // Test-only: jump close to the end of the serial space.
          (traced as unknown as { link: { calls: { nextSerial: number } } }).link.calls.nextSerial =
            0xffff_fffe;
          const results = await Promise.all(Array.from({ length: 4 }, () => traced.call(P.CONNECT_GET_URI)));
          expect(results).toEqual(new Array(4).fill('qemu:///system'));
          expect([...serials.slice(-4)].sort((a, b) => a - b)).toEqual([0, 1, 0xffff_fffe, 0xffff_ffff]);
        } finally {
          await traced.close();
        }
        expect(await c.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
      });

      it('aborts and times out calls without disturbing the connection', async () => {
        const controller = new AbortController();
        controller.abort();
        expect(
          (await rejection(qemu.call(P.CONNECT_GET_CAPABILITIES, undefined, { signal: controller.signal })))
            .code,
        ).toBe('ABORTED');
        // An abort after sending: the late reply is dropped, the slot freed.
        const late = new AbortController();
        const pending = qemu.call(P.CONNECT_GET_CAPABILITIES, undefined, { signal: late.signal });
        late.abort();
        expect((await rejection(pending)).code).toBe('ABORTED');
        expect(await qemu.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
        // The abandoned call holds its daemon slot until its (dropped) reply arrives.
        const lateBefore = qemu.stats().lateReplies;
        await vi.waitFor(() => expect(qemu.stats().inFlight).toBe(0), { timeout: 5000 });
        expect(qemu.stats().lateReplies).toBeGreaterThanOrEqual(lateBefore);
      });

      it('refuses writes on a read-only connection', async () => {
        await using ro = await connectRpc({ uri: 'qemu:///system', readOnly: true });
        const dom = await ro.call(P.DOMAIN_LOOKUP_BY_NAME, { name: env.HVKIT_LIBVIRT_GUEST as string });
        const denied = await rejection(ro.call(P.DOMAIN_SUSPEND, { dom }));
        expect(denied.code).toBe('PERMISSION_DENIED');
        expect((await ro.call(P.DOMAIN_GET_STATE, { dom, flags: 0 })).state).toBe(DOMAIN_STATE.RUNNING);
      });

      it('refuses replies over maxMessageBytes with PROTOCOL and closes the connection', async () => {
        const small = await connectRpc({ uri: 'qemu:///system', maxMessageBytes: 1024 });
        const error = await rejection(small.call(P.CONNECT_GET_CAPABILITIES));
        expect(error.code).toBe('PROTOCOL');
        expect(small.closed).toBe(true);
        const after = await rejection(small.call(P.CONNECT_GET_URI));
        expect(after.code).toBe('CONNECTION_LOST');
        await small.close();
      });

      it('observes keepalive PING/PONG with a short interval', async () => {
        const packets: RpcTraceEvent[] = [];
        await using c = await connectRpc({
          uri: 'qemu:///system',
          keepalive: { intervalMs: 100, countMax: 5 },
          trace: (e) => packets.push(e),
        });
        await new Promise((r) => setTimeout(r, 450));
        const ka = packets.filter((p) => p.header.program === PROGRAM.KEEPALIVE);
        expect(ka.some((p) => p.direction === 'send' && p.header.procedure === 1)).toBe(true);
        expect(ka.some((p) => p.direction === 'receive' && p.header.procedure === 2)).toBe(true);
        expect(ka.every((p) => p.header.type === MESSAGE_TYPE.MESSAGE && p.header.serial === 0)).toBe(true);
        const s = c.stats();
        expect(s.pingsSent).toBeGreaterThanOrEqual(2);
        expect(s.pongsReceived).toBeGreaterThanOrEqual(1);
        expect(c.closed).toBe(false);
      });

      it('closes cleanly: pending calls fail with CONNECTION_LOST, close is idempotent', async () => {
        const c = await connectRpc({ uri: 'qemu:///system' });
        const lost = c.onClose(() => {});
        // Several calls in flight when close() starts: each either completes or fails CONNECTION_LOST.
        const pending = Array.from({ length: 6 }, () =>
          c.call(P.CONNECT_GET_CAPABILITIES).then(
            () => 'resolved',
            (e: HvkitError) => e.code,
          ),
        );
        await c.close();
        const outcomes = await Promise.all(pending);
        for (const outcome of outcomes) expect(['resolved', 'CONNECTION_LOST']).toContain(outcome);
        expect(c.closed).toBe(true);
        await c.close();
        const after = await rejection(c.call(P.CONNECT_GET_URI));
        expect(after).toMatchObject({ code: 'CONNECTION_LOST', retryable: false });
        lost();
      });
    });

    describe('streams and events on qemu:///system', () => {
      const image = `/var/lib/libvirt/images/hvkit-rpc-vol-${process.pid}.raw`;
      const size = 6 * 1024 * 1024;
      let content: Buffer;

      beforeAll(() => {
        // A sparse file with known content: data, a 2 MiB hole, data, a hole up to the end.
        content = Buffer.alloc(size);
        const fd = openSync(image, 'w');
        try {
          const a = Buffer.alloc(1024 * 1024 + 4096);
          for (let i = 0; i < a.length; i++) a[i] = (i * 7 + 3) & 0xff;
          writeSync(fd, a, 0, a.length, 0);
          a.copy(content, 0);
          const b = Buffer.alloc(512 * 1024, 0x5a);
          writeSync(fd, b, 0, b.length, 3 * 1024 * 1024 + 4096);
          b.copy(content, 3 * 1024 * 1024 + 4096);
          ftruncateSync(fd, size);
        } finally {
          closeSync(fd);
        }
        expect(sha256(readFileSync(image))).toBe(sha256(content));
      });
      afterAll(async () => {
        rmSync(image, { force: true });
        if (qemu && !qemu.closed) {
          const pool = await qemu.call(P.STORAGE_POOL_LOOKUP_BY_NAME, {
            name: env.HVKIT_LIBVIRT_POOL as string,
          });
          await qemu.call(P.STORAGE_POOL_REFRESH, { pool, flags: 0 }).catch(() => {});
        }
      });

      async function volume(client: LibvirtRpcClient) {
        const pool = await client.call(P.STORAGE_POOL_LOOKUP_BY_NAME, {
          name: env.HVKIT_LIBVIRT_POOL as string,
        });
        await client.call(P.STORAGE_POOL_REFRESH, { pool, flags: 0 });
        const { vols } = await client.call(P.STORAGE_POOL_LIST_ALL_VOLUMES, {
          pool,
          needResults: 1,
          flags: 0,
        });
        const vol = vols.find((v) => v.key === image);
        expect(vol).toBeDefined();
        expect((await client.call(P.STORAGE_VOL_GET_INFO, { vol: vol! })).capacity).toBe(BigInt(size));
        return vol!;
      }

      it('downloads a volume on a sibling connection; sha256 matches', async () => {
        await using bulk = await qemu.openSibling();
        const vol = await volume(bulk);
        const stream = await bulk.downloadVolume(vol, { highWaterMark: 512 * 1024 });
        const chunks: Uint8Array[] = [];
        for await (const chunk of stream) {
          expect(isStreamHole(chunk)).toBe(false);
          chunks.push(chunk as Uint8Array);
          // A slow consumer: backpressure pauses the socket, keepalive does not kill it.
          if (chunks.length % 8 === 0) await new Promise((r) => setTimeout(r, 5));
        }
        const data = Buffer.concat(chunks);
        expect(data.length).toBe(size);
        expect(sha256(data)).toBe(sha256(content));
        expect(stream.finished).toBe(true);
        expect(await bulk.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
      });

      it('downloads a sparse stream with holes reported, or materialised as zeros', async () => {
        const vol = await volume(qemu);
        const items: StreamChunk[] = [];
        for await (const item of await qemu.downloadVolume(vol, { sparse: true })) items.push(item);
        const holes = items.filter(isStreamHole);
        expect(holes.length).toBeGreaterThanOrEqual(2);
        const total = items.reduce((n, i) => n + (isStreamHole(i) ? i.hole : i.length), 0);
        expect(total).toBe(size);
        const rebuilt = Buffer.concat(
          items.map((i) => (isStreamHole(i) ? Buffer.alloc(i.hole) : Buffer.from(i))),
        );
        expect(sha256(rebuilt)).toBe(sha256(content));
        const zeros: Uint8Array[] = [];
        for await (const item of await qemu.downloadVolume(vol, { sparse: true, holes: 'zeros' })) {
          zeros.push(item as Uint8Array);
        }
        expect(sha256(Buffer.concat(zeros))).toBe(sha256(content));
        // offset/length select a range.
        const part: Uint8Array[] = [];
        for await (const item of await qemu.downloadVolume(vol, { offset: 4096, length: 8192 })) {
          part.push(item as Uint8Array);
        }
        expect(sha256(Buffer.concat(part))).toBe(sha256(content.subarray(4096, 4096 + 8192)));
      });

      it('aborts a download (signal: ABORTED; break: quietly) and the connection stays usable', async () => {
        const vol = await volume(qemu);
        const controller = new AbortController();
        const stream = await qemu.downloadVolume(vol, {
          signal: controller.signal,
          highWaterMark: 64 * 1024,
        });
        let got = 0;
        const error = await rejection(
          (async () => {
            for await (const chunk of stream) {
              got += (chunk as Uint8Array).length;
              controller.abort();
            }
          })(),
        );
        expect(error.code).toBe('ABORTED');
        expect(got).toBeGreaterThan(0);
        const again = await qemu.downloadVolume(vol);
        for await (const _ of again) break;
        expect(again.finished).toBe(true);
        expect(await qemu.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
        const missing = await rejection(
          qemu.downloadVolume({ ...vol, key: `${image}.missing`, name: 'missing' }),
        );
        expect(missing.code).toBe('NOT_FOUND');
      });

      it('sees lifecycle events of a throwaway transient QEMU domain', async () => {
        await using own = await connectRpc({ uri: 'qemu:///system' });
        const name = `hvkit-rpc-events-${process.pid}`;
        const sub = await own.subscribeDomainLifecycle({
          bufferSize: 64,
          signal: AbortSignal.timeout(15_000),
        });
        const dom = await own.call(P.DOMAIN_CREATE_XML, {
          xml: `<domain type='${accel()}'><name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>`,
          flags: 0,
        });
        try {
          expect(dom.id).toBeGreaterThan(0);
        } finally {
          await own.call(P.DOMAIN_DESTROY, { dom });
        }
        const seen: string[] = [];
        for await (const e of sub) {
          if (isDomainEventResync(e) || e.dom.name !== name) continue;
          seen.push(`${e.event}/${e.detail}`);
          if (e.event === DOMAIN_EVENT.STOPPED) break;
        }
        expect(seen).toContain(`${DOMAIN_EVENT.STARTED}/0`);
        expect(seen.at(-1)).toBe(`${DOMAIN_EVENT.STOPPED}/1`);
        expect(sub.dropped).toBe(0);
      });

      it('creates, lists, reads and deletes a checkpoint and runs a push backup on a throwaway domain', async () => {
        const disk = `/var/lib/libvirt/images/hvkit-rpc-cp-${process.pid}.qcow2`;
        const target = `/var/lib/libvirt/images/hvkit-rpc-bk-${process.pid}.qcow2`;
        execFileSync('qemu-img', ['create', '-q', '-f', 'qcow2', disk, '16M']);
        const name = `hvkit-rpc-cp-${process.pid}`;
        let dom: RemoteDomain | undefined;
        try {
          dom = await qemu.call(P.DOMAIN_CREATE_XML, {
            xml: `<domain type='${accel()}'><name>${name}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices><disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${disk}'/><target dev='vda' bus='virtio'/></disk></devices></domain>`,
            flags: 0,
          });
          const cp = await qemu.call(P.DOMAIN_CHECKPOINT_CREATE_XML, {
            dom,
            xml: '<domaincheckpoint><name>cp1</name><description>rpc live</description></domaincheckpoint>',
            flags: 0,
          });
          expect(cp).toMatchObject({ name: 'cp1', dom: { name } });
          const { checkpoints, ret } = await qemu.call(P.DOMAIN_LIST_ALL_CHECKPOINTS, {
            dom,
            needResults: 1,
            flags: 0,
          });
          expect(ret).toBe(1);
          expect(checkpoints[0]?.name).toBe('cp1');
          expect(await qemu.call(P.DOMAIN_CHECKPOINT_GET_XML_DESC, { checkpoint: cp, flags: 0 })).toContain(
            'rpc live',
          );
          expect(
            (await qemu.call(P.DOMAIN_CHECKPOINT_LOOKUP_BY_NAME, { dom, name: 'cp1', flags: 0 })).name,
          ).toBe('cp1');
          await qemu.call(P.DOMAIN_BACKUP_BEGIN, {
            dom,
            backupXml: `<domainbackup mode='push'><disks><disk name='vda' type='file'><target file='${target}'/><driver type='qcow2'/></disk></disks></domainbackup>`,
            checkpointXml: null,
            flags: 0,
          });
          // The job may already be over; then the backup XML is gone too (NOT_FOUND).
          const backupXml = await qemu
            .call(P.DOMAIN_BACKUP_GET_XML_DESC, { dom, flags: 0 })
            .catch((e: HvkitError) => e);
          if (typeof backupXml === 'string') expect(backupXml).toContain('domainbackup');
          else expect(backupXml.code).toBe('NOT_FOUND');
          let completed = false;
          for (let i = 0; i < 100 && !completed; i++) {
            const stats = await qemu.call(P.DOMAIN_GET_JOB_STATS, { dom, flags: 1 });
            completed = stats.type === 3;
            if (!completed) await new Promise((r) => setTimeout(r, 100));
          }
          expect(completed).toBe(true);
          await qemu.call(P.DOMAIN_CHECKPOINT_DELETE, { checkpoint: cp, flags: 0 });
          expect(
            (await qemu.call(P.DOMAIN_LIST_ALL_CHECKPOINTS, { dom, needResults: 1, flags: 0 })).ret,
          ).toBe(0);
        } finally {
          if (dom) await qemu.call(P.DOMAIN_DESTROY, { dom }).catch(() => {});
          rmSync(disk, { force: true });
          rmSync(target, { force: true });
        }
      });
    });
  },
);
