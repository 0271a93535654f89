/**
 * Records real packets from the libvirtd peer into `recorded-packets.json` (the seed corpus of the
 * decoder fuzz test). Run as root with the peer up:
 *
 *   cd packages/kvm-libvirt && npx tsx --conditions=@hvkit/source test/record-packets.ts
 *
 * It reads the QEMU guest and the test driver, provokes error replies, starts and destroys a throwaway
 * transient domain (lifecycle events) and downloads a sparse scratch volume (stream data and holes).
 * Large data payloads are cut to 512 bytes; everything else is kept as received.
 */

import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, openSync, rmSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectRpc } from '../src/connect';
import type { RpcTraceEvent } from '../src/protocol/client';
import { MESSAGE_TYPE, PROGRAM } from '../src/protocol/constants';
import { remoteProcedures as P } from '../src/protocol/remote-protocol';

interface Recorded {
  note: string;
  header: RpcTraceEvent['header'];
  payloadHex: string;
}

const out: Recorded[] = [];
let note = '';
const trace = (e: RpcTraceEvent) => {
  if (e.direction !== 'receive' || e.header.program === PROGRAM.KEEPALIVE) return;
  const payload = e.header.type === MESSAGE_TYPE.STREAM ? e.payload.subarray(0, 512) : e.payload;
  out.push({ note, header: { ...e.header }, payloadHex: Buffer.from(payload).toString('hex') });
};

async function tryCall(label: string, f: () => Promise<unknown>): Promise<void> {
  note = label;
  try {
    await f();
  } catch {
    // error replies are what we want here
  }
}

const guestName = process.env.HVKIT_LIBVIRT_GUEST ?? 'hvkit-guest1';
const accel = process.env.HVKIT_LIBVIRT_ACCEL === 'tcg' ? 'qemu' : 'kvm';

const qemu = await connectRpc({ uri: 'qemu:///system', trace });
const dom = await qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: guestName });
await tryCall('list domains', () => qemu.call(P.CONNECT_LIST_ALL_DOMAINS, { needResults: 1, flags: 0 }));
await tryCall('node info', () => qemu.call(P.NODE_GET_INFO));
await tryCall('security model', () => qemu.call(P.NODE_GET_SECURITY_MODEL));
await tryCall('domain info', () => qemu.call(P.DOMAIN_GET_INFO, { dom }));
await tryCall('domain state', () => qemu.call(P.DOMAIN_GET_STATE, { dom, flags: 0 }));
await tryCall('domain xml', () => qemu.call(P.DOMAIN_GET_XML_DESC, { dom, flags: 0 }));
await tryCall('scheduler', () =>
  qemu.call(P.DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS, { dom, nparams: 16, flags: 0 }),
);
await tryCall('memory params', () =>
  qemu.call(P.DOMAIN_GET_MEMORY_PARAMETERS, { dom, nparams: 16, flags: 4 }),
);
await tryCall('blkio params', () => qemu.call(P.DOMAIN_GET_BLKIO_PARAMETERS, { dom, nparams: 16, flags: 4 }));
await tryCall('block io tune', () =>
  qemu.call(P.DOMAIN_GET_BLOCK_IO_TUNE, { dom, disk: 'vda', nparams: 32, flags: 4 }),
);
await tryCall('security labels', () => qemu.call(P.DOMAIN_GET_SECURITY_LABEL_LIST, { dom }));
await tryCall('security label', () => qemu.call(P.DOMAIN_GET_SECURITY_LABEL, { dom }));
await tryCall('all domain stats', () =>
  qemu.call(P.CONNECT_GET_ALL_DOMAIN_STATS, { doms: [], stats: 15, flags: 0 }),
);
await tryCall('job info', () => qemu.call(P.DOMAIN_GET_JOB_INFO, { dom }));
await tryCall('job stats', () => qemu.call(P.DOMAIN_GET_JOB_STATS, { dom, flags: 0 }));
await tryCall('networks', () => qemu.call(P.CONNECT_LIST_ALL_NETWORKS, { needResults: 1, flags: 0 }));
await tryCall('pools', () => qemu.call(P.CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 0 }));
await tryCall('lib version', () => qemu.call(P.CONNECT_GET_LIB_VERSION));
await tryCall('missing domain', () => qemu.call(P.DOMAIN_LOOKUP_BY_NAME, { name: 'hvkit-no-such-domain' }));
await tryCall('no job', () => qemu.call(P.DOMAIN_ABORT_JOB, { dom }));
await tryCall('unknown procedure', () => qemu.callRaw(PROGRAM.REMOTE, 9999));

// Lifecycle events of a throwaway transient domain.
note = 'register events';
const events = await qemu.subscribeDomainLifecycle();
note = 'lifecycle events';
const scratch = await qemu.call(P.DOMAIN_CREATE_XML, {
  xml: `<domain type='${accel}'><name>hvkit-rpc-record-${process.pid}</name><memory unit='MiB'>32</memory><vcpu>1</vcpu><os><type arch='x86_64' machine='pc'>hvm</type></os><devices/></domain>`,
  flags: 0,
});
await qemu.call(P.DOMAIN_DESTROY, { dom: scratch });
await new Promise((r) => setTimeout(r, 500));
await events.close();

// A sparse volume download.
const pool = await qemu.call(P.STORAGE_POOL_LOOKUP_BY_NAME, {
  name: process.env.HVKIT_LIBVIRT_POOL ?? 'default',
});
const file = `/var/lib/libvirt/images/hvkit-rpc-record-${process.pid}.raw`;
const fd = openSync(file, 'w');
writeSync(fd, Buffer.alloc(4096, 0x61), 0, 4096, 0);
writeSync(fd, Buffer.alloc(4096, 0x62), 0, 4096, 1 << 20);
ftruncateSync(fd, 2 << 20);
closeSync(fd);
try {
  await qemu.call(P.STORAGE_POOL_REFRESH, { pool, flags: 0 });
  const vol = await qemu.call(P.STORAGE_VOL_LOOKUP_BY_PATH, { path: file });
  note = 'sparse download';
  const stream = await qemu.downloadVolume(vol, { sparse: true });
  for await (const _ of stream) {
    // drain
  }
} finally {
  rmSync(file, { force: true });
  await qemu.call(P.STORAGE_POOL_REFRESH, { pool, flags: 0 }).catch(() => {});
}
await qemu.close();

const test = await connectRpc({ uri: 'test+unix:///default', trace });
const testDom = await test.call(P.DOMAIN_LOOKUP_BY_NAME, { name: 'test' });
await tryCall('test node info', () => test.call(P.NODE_GET_INFO));
await tryCall('test security model', () => test.call(P.NODE_GET_SECURITY_MODEL));
await tryCall('test domain info', () => test.call(P.DOMAIN_GET_INFO, { dom: testDom }));
await tryCall('test scheduler', () =>
  test.call(P.DOMAIN_GET_SCHEDULER_PARAMETERS, { dom: testDom, nparams: 16 }),
);
await tryCall('test snapshots', () =>
  test.call(P.DOMAIN_LIST_ALL_SNAPSHOTS, { dom: testDom, needResults: 1, flags: 0 }),
);
await tryCall('test auth list', () => test.call(P.AUTH_LIST));
await test.close();

const target = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'recorded-packets.json');
writeFileSync(
  target,
  `${JSON.stringify({ recordedWith: `libvirt ${execFileSync('libvirtd', ['--version']).toString().trim()}`, packets: out }, null, 1)}\n`,
);
console.log(`wrote ${out.length} packets to ${target}`);
