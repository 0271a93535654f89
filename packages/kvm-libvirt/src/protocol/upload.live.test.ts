/**
 * Live tests of STORAGE_VOL_UPLOAD (the write stream) against the libvirtd peer's QEMU driver: throwaway
 * raw volumes in the peer's pool, created and deleted here; nothing else is changed.
 */

import { createHash, randomBytes } from 'node:crypto';
import { livePeer } from '@hvkit/conformance';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection } from '../../test/fake-libvirtd';
import { connectRpc } from '../connect';
import type { LibvirtRpcClient } from './client';
import { remoteProcedures as P } from './remote-protocol';
import { isStreamHole } from './stream';
import type { RemoteStoragePool, RemoteStorageVol } from './types';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_POOL']);
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');

describe.skipIf(!peer.available)(
  `libvirt STORAGE_VOL_UPLOAD, live (peer libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    let client: LibvirtRpcClient;
    let pool: RemoteStoragePool;
    const created: RemoteStorageVol[] = [];

    async function rawVolume(bytes: number): Promise<RemoteStorageVol> {
      const name = `hvkit-test-upload-${process.pid}-${created.length}-${Date.now().toString(36)}.img`;
      const xml = `<volume><name>${name}</name><capacity unit='bytes'>${bytes}</capacity><allocation>0</allocation><target><format type='raw'/></target></volume>`;
      const vol = await client.call(P.STORAGE_VOL_CREATE_XML, { pool, xml, flags: 0 });
      created.push(vol);
      return vol;
    }

    async function download(vol: RemoteStorageVol): Promise<Buffer> {
      const parts: Buffer[] = [];
      for await (const c of await client.downloadVolume(vol, { sparse: true, holes: 'zeros' })) {
        if (!isStreamHole(c)) parts.push(Buffer.from(c));
      }
      return Buffer.concat(parts);
    }

    beforeAll(async () => {
      client = await connectRpc({ uri: env.HVKIT_LIBVIRT_QEMU_URI as string });
      pool = await client.call(P.STORAGE_POOL_LOOKUP_BY_NAME, { name: env.HVKIT_LIBVIRT_POOL as string });
    });
    afterAll(async () => {
      for (const vol of created) {
        await client.call(P.STORAGE_VOL_DELETE, { vol, flags: 0 }).catch(() => {});
      }
      await client?.close();
    });

    it('uploads data and holes (sparse) and reads back the same bytes; a file ending in a hole keeps its size', async () => {
      const size = 3 * 1024 * 1024 + 4096;
      const a = randomBytes(700_000);
      const b = randomBytes(300_000);
      const content = Buffer.alloc(size);
      a.copy(content, 0);
      b.copy(content, 2 * 1024 * 1024);
      const vol = await rawVolume(size);
      await using bulk = await client.openSibling();
      const stream = await bulk.uploadVolume(vol, { sparse: true });
      await stream.write(a);
      await stream.hole(2 * 1024 * 1024 - a.length);
      await stream.write(b);
      await stream.hole(size - 2 * 1024 * 1024 - b.length);
      expect(stream.bytesSent).toBe(size);
      await stream.finish();
      expect(stream.finished).toBe(true);
      const back = await download(vol);
      expect(back.length).toBe(size);
      expect(sha256(back)).toBe(sha256(content));
      // The connection stays usable.
      expect(await bulk.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
    });

    it('a hole on a stream opened without sparse is a TypeError and sends nothing', async () => {
      const vol = await rawVolume(4096);
      const stream = await client.uploadVolume(vol);
      await expect(stream.hole(10)).rejects.toThrow(TypeError);
      await stream.write(Buffer.alloc(4096, 7));
      await stream.finish();
      expect(sha256(await download(vol))).toBe(sha256(Buffer.alloc(4096, 7)));
    });

    it('aborts an upload by signal: ABORTED, later writes reject, the connection stays usable', async () => {
      const vol = await rawVolume(8 * 1024 * 1024);
      await using bulk = await client.openSibling();
      const controller = new AbortController();
      const stream = await bulk.uploadVolume(vol, { signal: controller.signal });
      await stream.write(randomBytes(1024 * 1024));
      controller.abort();
      const error = await rejection(stream.write(randomBytes(1024)));
      expect(error.code).toBe('ABORTED');
      expect(stream.finished).toBe(true);
      expect(await bulk.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
    });

    it('the daemon refusing data past `length` fails the stream with its error', async () => {
      const vol = await rawVolume(64 * 1024);
      const stream = await client.uploadVolume(vol, { length: 4096 });
      // libvirt takes what fits and then reports "cannot write to stream" (ENOSPC) for the rest.
      const error = await rejection(
        (async () => {
          for (let i = 0; i < 16; i++) await stream.write(randomBytes(64 * 1024));
          await stream.finish();
        })(),
      );
      expect(['REMOTE', 'INVALID_ARGUMENT', 'PROTOCOL']).toContain(error.code);
      expect(await client.call(P.CONNECT_GET_URI)).toBe('qemu:///system');
    });
  },
);
