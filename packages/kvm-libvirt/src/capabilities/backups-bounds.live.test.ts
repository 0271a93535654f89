/**
 * Backups against a daemon that misbehaves: the fake libvirtd as a proxy in front of the libvirtd peer
 * answers the backup's download or job calls itself (a hole of 2^52 bytes, a job that never progresses)
 * and passes every other call to the real daemon. The intercepted calls never reach the daemon, so nothing
 * is created there: no job, no checkpoint, no volume. The stopped guest of the peer has no disk: the proxy
 * gives it the running guest's disk in its XML (the volume is then looked up and sized by the real daemon,
 * and only its download is faked).
 */

import { Writable } from 'node:stream';
import { livePeer } from '@hvkit/conformance';
import { type BackupSink, createStreamSink } from '@hvkit/core';
import { afterEach, describe, expect, it } from 'vitest';
import { type FakeLibvirtd, rejection, startFakeLibvirtd } from '../../test/fake-libvirtd';
import { connect, connectRpc } from '../connect';
import { MESSAGE_STATUS, MESSAGE_TYPE, REMOTE_PROC } from '../protocol/constants';
import { remoteProcedures } from '../protocol/remote-protocol';
import { XdrWriter } from '../protocol/xdr';

const peer = livePeer('libvirtd', [
  'HVKIT_LIBVIRT_SOCKET',
  'HVKIT_LIBVIRT_GUEST',
  'HVKIT_LIBVIRT_STOPPED_GUEST',
  'HVKIT_LIBVIRT_POOL',
  'HVKIT_LIBVIRT_GUEST_DISK',
]);
const env = (peer.available ? peer.env : {}) as Record<string, string>;

/**
 * A sink that counts what it is given of disk files (`disk-*`; the definition and the manifest are not
 * counted) and keeps nothing; records the expected sizes it was told of them.
 */
function countingSink() {
  const state = { bytes: 0, expected: [] as (number | undefined)[] };
  const base = createStreamSink(
    (name) =>
      new Writable({
        write(chunk: Buffer, _encoding, done) {
          if (/\/disk-[^/]+$/.test(name)) state.bytes += chunk.length;
          done();
        },
      }),
    { location: 'counting' },
  );
  const sink: BackupSink = {
    ...base,
    writeFile: (name, source, options = {}) => {
      if (/\/disk-[^/]+$/.test(name)) state.expected.push(options.expectedBytes);
      return base.writeFile(name, source, options);
    },
  };
  return { sink, state };
}

let proxy: FakeLibvirtd | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

describe.skipIf(!peer.available)(
  `kvm-libvirt backups against a hostile daemon (peer libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    it('a stopped guest: a hole of 2^52 bytes in the volume download ends with PROTOCOL, the sink gets no more than the volume', async () => {
      // The stopped guest's XML with the running guest's disk volume in it.
      const direct = await connectRpc({
        uri: `qemu+unix:///system?socket=${env.HVKIT_LIBVIRT_SOCKET}`,
      });
      let xml: string;
      try {
        const dom = await direct.call(remoteProcedures.DOMAIN_LOOKUP_BY_NAME, {
          name: env.HVKIT_LIBVIRT_STOPPED_GUEST as string,
        });
        xml = (await direct.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: 0 })).replace(
          '</devices>',
          `<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='${env.HVKIT_LIBVIRT_GUEST_DISK}'/><target dev='vdz' bus='virtio'/></disk></devices>`,
        );
      } finally {
        await direct.close();
      }
      proxy = await startFakeLibvirtd({
        upstream: env.HVKIT_LIBVIRT_SOCKET,
        handle: (call, c) => {
          if (call.header.type !== MESSAGE_TYPE.CALL) return false;
          if (call.header.procedure === REMOTE_PROC.DOMAIN_GET_XML_DESC) {
            c.reply(call, new XdrWriter().string(xml).bytes());
            return true;
          }
          if (call.header.procedure !== REMOTE_PROC.STORAGE_VOL_DOWNLOAD) return false;
          c.reply(call);
          c.stream(call, MESSAGE_STATUS.CONTINUE, new Uint8Array(4096));
          c.hole(call, 2n ** 52n);
          return true;
        },
      });
      const hv = await connect({ uri: proxy.uri('qemu', '/system'), keepalive: false });
      try {
        const { sink, state } = countingSink();
        const started = Date.now();
        const error = await rejection(
          hv.backups.backup({ name: env.HVKIT_LIBVIRT_STOPPED_GUEST as string }, sink, { timeoutMs: 10_000 }),
        );
        const took = Date.now() - started;
        console.log(
          `2^52-byte hole: ${error.code} after ${took} ms, sink got ${state.bytes} bytes, expected ${state.expected}`,
        );
        expect(error.code).toBe('PROTOCOL');
        expect(took).toBeLessThan(5000);
        const expected = state.expected[0];
        expect(expected).toBeGreaterThan(0);
        expect(state.bytes).toBeLessThanOrEqual(expected as number);
      } finally {
        await hv.close();
      }
    });

    it('a running guest: a push-backup job that never progresses fails with TIMEOUT after backupIdleTimeoutMs, and is aborted', async () => {
      let aborted = false;
      proxy = await startFakeLibvirtd({
        upstream: env.HVKIT_LIBVIRT_SOCKET,
        handle: (call, c) => {
          if (call.header.type !== MESSAGE_TYPE.CALL) return false;
          switch (call.header.procedure) {
            case REMOTE_PROC.DOMAIN_BACKUP_BEGIN:
              c.reply(call);
              return true;
            case REMOTE_PROC.DOMAIN_ABORT_JOB:
              aborted = true;
              return false;
            case REMOTE_PROC.DOMAIN_GET_JOB_INFO: {
              if (aborted) return false;
              // Running (VIR_DOMAIN_JOB_UNBOUNDED), stuck at 1 MiB of 64 MiB.
              const w = new XdrWriter()
                .int(2)
                .uhyper(1000)
                .uhyper(0)
                .uhyper(64 * 2 ** 20)
                .uhyper(2 ** 20);
              for (let i = 0; i < 7; i++) w.uhyper(0);
              c.reply(call, w.bytes());
              return true;
            }
            default:
              return false;
          }
        },
      });
      const hv = await connect({
        uri: proxy.uri('qemu', '/system'),
        keepalive: false,
        backupIdleTimeoutMs: 1000,
        naming: { uniqueId: () => `hvkit-bounds-${process.pid}` },
      });
      try {
        const { sink, state } = countingSink();
        const started = Date.now();
        const error = await rejection(
          hv.backups.backup({ name: env.HVKIT_LIBVIRT_GUEST as string }, sink, { timeoutMs: 8000 }),
        );
        const took = Date.now() - started;
        console.log(`stalled job: ${error.code} after ${took} ms`);
        expect(error.code).toBe('TIMEOUT');
        expect(error.message).toMatch(/no progress for 1000 ms/);
        expect(took).toBeLessThan(4000);
        expect(aborted).toBe(true);
        expect(state.bytes).toBe(0);
      } finally {
        await hv.close();
      }
    });
  },
);
