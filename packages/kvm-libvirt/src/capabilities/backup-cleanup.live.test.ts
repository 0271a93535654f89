/**
 * `backups.cleanup` and backup jobs it finds running: only hvkit's own jobs of runs without a live lease
 * are aborted. The fake libvirtd as a proxy in front of the libvirtd peer answers the job calls
 * (DOMAIN_GET_JOB_INFO, DOMAIN_BACKUP_GET_XML_DESC, DOMAIN_ABORT_JOB) and, where a test says so, the lease
 * (DOMAIN_GET_METADATA) itself, and passes every other call to the real daemon. The guest is a throwaway
 * guest of this file (test/throwaway-guest.ts), so that no other test's backup of the peer's guests is seen.
 */

import { livePeer } from '@hvkit/conformance';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type FakeLibvirtd, startFakeLibvirtd } from '../../test/fake-libvirtd';
import { createThrowawayGuest, type ThrowawayGuest } from '../../test/throwaway-guest';
import { connect } from '../connect';
import { buildLeaseXml, tempVolumeName } from '../mapping/backup-state';
import { MESSAGE_TYPE, REMOTE_PROC } from '../protocol/constants';
import { XdrWriter } from '../protocol/xdr';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_SOCKET', 'HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_POOL']);
const env = (peer.available ? peer.env : {}) as Record<string, string>;
/** `REMOTE_PROC_DOMAIN_GET_METADATA`. */
const DOMAIN_GET_METADATA = 265;

/** A job info reply: type 2 (unbounded, running) or 0 (none), then 11 counters. */
function jobInfo(running: boolean): Uint8Array {
  const w = new XdrWriter().int(running ? 2 : 0);
  for (let i = 0; i < 11; i++) w.uhyper(0);
  return w.bytes();
}

let proxy: FakeLibvirtd | undefined;
afterEach(async () => {
  await proxy?.close();
  proxy = undefined;
});

describe.skipIf(!peer.available)(
  `backups.cleanup and running backup jobs (peer libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    let g: ThrowawayGuest | undefined;
    beforeAll(async () => {
      g = await createThrowawayGuest(
        env.HVKIT_LIBVIRT_QEMU_URI as string,
        env.HVKIT_LIBVIRT_POOL as string,
        `hvkit-kbj${process.pid.toString(36)}`,
        {
          diskMiB: 64,
          dataMiB: 0,
        },
      );
    }, 120_000);
    afterAll(async () => {
      await g?.remove();
    }, 120_000);

    /**
     * A proxy whose guest runs a backup job with `backupXml` until DOMAIN_ABORT_JOB, and whose lease is
     * `lease` (the real one when undefined). Returns how many aborts it got.
     */
    async function withJob(backupXml: string, lease?: string) {
      const state = { aborts: 0 };
      proxy = await startFakeLibvirtd({
        upstream: env.HVKIT_LIBVIRT_SOCKET,
        handle: (call, c) => {
          if (call.header.type !== MESSAGE_TYPE.CALL) return false;
          switch (call.header.procedure) {
            case REMOTE_PROC.DOMAIN_GET_JOB_INFO:
              c.reply(call, jobInfo(state.aborts === 0));
              return true;
            case REMOTE_PROC.DOMAIN_BACKUP_GET_XML_DESC:
              c.reply(call, new XdrWriter().string(backupXml).bytes());
              return true;
            case REMOTE_PROC.DOMAIN_ABORT_JOB:
              state.aborts++;
              c.reply(call);
              return true;
            case DOMAIN_GET_METADATA:
              if (lease === undefined) return false;
              c.reply(call, new XdrWriter().string(lease).bytes());
              return true;
            default:
              return false;
          }
        },
      });
      return state;
    }

    const guest = () => g as ThrowawayGuest;
    const hvkitJob = (run: string) =>
      `<domainbackup mode='push'><disks><disk name='vda' backup='yes' type='file'><driver type='qcow2'/><target file='/var/lib/libvirt/images/${tempVolumeName(guest().uuid, run, 'vda')}'/></disk></disks></domainbackup>`;

    it("leaves another tool's backup job (a pull backup) alone", async () => {
      const state = await withJob(
        "<domainbackup mode='pull'><server transport='unix' socket='/run/vnb.sock'/><disks><disk name='vda' backup='yes' exportname='vda' exportbitmap='virtnbdbackup.0'><scratch file='/var/lib/libvirt/images/vnb.scratch'/></disk></disks></domainbackup>",
      );
      const hv = await connect({ uri: (proxy as FakeLibvirtd).uri('qemu', '/system'), keepalive: false });
      try {
        expect(await hv.backups.cleanup?.({ name: guest().name })).toEqual({ removed: [], kept: [] });
        expect(state.aborts).toBe(0);
      } finally {
        await hv.close();
      }
    });

    it("aborts hvkit's job of a run without a live lease", async () => {
      const state = await withJob(hvkitJob('20260101T000000Z-full-dead'));
      const hv = await connect({ uri: (proxy as FakeLibvirtd).uri('qemu', '/system'), keepalive: false });
      try {
        expect(await hv.backups.cleanup?.({ name: guest().name })).toEqual({
          removed: [{ kind: 'job', name: 'backup job', run: '20260101T000000Z-full-dead' }],
          kept: [],
        });
        expect(state.aborts).toBe(1);
      } finally {
        await hv.close();
      }
    });

    it("keeps hvkit's job of a run that another host's live lease holds", async () => {
      const run = '20260101T000000Z-full-live';
      const lease = buildLeaseXml({
        owner: 'elsewhere.invalid:7',
        run,
        startedAt: new Date().toISOString(),
        expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
        operation: 'backup',
      });
      const state = await withJob(hvkitJob(run), lease);
      const hv = await connect({ uri: (proxy as FakeLibvirtd).uri('qemu', '/system'), keepalive: false });
      try {
        const result = await hv.backups.cleanup?.({ name: guest().name });
        expect(result?.removed).toEqual([]);
        expect(result?.kept).toEqual(
          expect.arrayContaining([
            { kind: 'lease', name: 'elsewhere.invalid:7', run },
            { kind: 'job', name: 'backup job', run },
          ]),
        );
        expect(state.aborts).toBe(0);
      } finally {
        await hv.close();
      }
    });
  },
);
