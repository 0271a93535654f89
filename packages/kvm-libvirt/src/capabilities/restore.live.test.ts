/**
 * backups.restore on the real QEMU driver (peer: libvirtd, scripts/peers/start libvirtd). Everything here
 * is a throwaway of this file: a source guest `hvkit-test-rs-<pid>` (stopped, defined from the peer guest's
 * definition with a static DAC label, on a 16 MiB qcow2 of known content in the peer's pool), its full backup
 * taken with `backups.backup` into a temporary directory, artifacts written by hand beside it (a corrupt one,
 * an incremental qcow2 overlay made with qemu-img/qemu-io: the guest has no OS to change its disk), and every
 * guest and volume the restores make; all are removed in `afterAll`, and the peer's guests are only read.
 */

import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { livePeer } from '@hvkit/conformance';
import {
  artifactPath,
  type BackupManifest,
  createDirectorySink,
  createDirectorySource,
  type Progress,
  writeBackupManifest,
} from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { rejection } from '../../test/fake-libvirtd';
import { connect, connectRpc } from '../connect';
import { BACKUP_LEASE_KEY, BACKUP_LEASE_NAMESPACE } from '../mapping/backup-state';
import { parseDomainXmlDetails } from '../mapping/domain';
import { rewriteDomainForRestore } from '../mapping/restore-definition';
import type { LibvirtRpcClient } from '../protocol/client';
import { DOMAIN_XML } from '../protocol/constants';
import { remoteProcedures as P } from '../protocol/remote-protocol';

const peer = livePeer('libvirtd', ['HVKIT_LIBVIRT_QEMU_URI', 'HVKIT_LIBVIRT_GUEST', 'HVKIT_LIBVIRT_POOL']);
const sha256 = (data: Uint8Array) => createHash('sha256').update(data).digest('hex');
const MiB = 1024 * 1024;

describe.skipIf(!peer.available)(
  `backups.restore on QEMU, live (peer libvirtd)${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const uri = env.HVKIT_LIBVIRT_QEMU_URI as string;
    const poolName = env.HVKIT_LIBVIRT_POOL as string;
    const tag = `hvkit-test-rs-${process.pid}`;
    let work = '';
    let backups = '';
    let client: LibvirtRpcClient;
    let poolPath: string;
    let srcPath: string;
    let srcXml: string;
    /** Guest-visible content of the source disk (raw). */
    let content: Buffer;
    const guestsToRemove = new Set<string>([tag]);
    /** The pool's volumes before this file ran: only volumes that appeared since are removed at the end. */
    let initialVolumes: string[] = [];

    const virsh = (...args: string[]) =>
      execFileSync('virsh', ['-c', uri, ...args], { encoding: 'utf8', timeout: 30_000 });
    const volumes = () =>
      virsh('vol-list', poolName)
        .split('\n')
        .slice(2)
        .map((l) => l.trim().split(/\s+/)[0] as string)
        .filter((n) => n !== '')
        .sort();
    /** This file's guests (other helpers share the daemon). */
    const guests = () =>
      virsh('list', '--all', '--name')
        .split('\n')
        .map((s) => s.trim())
        .filter((g) => g.startsWith(tag));
    /** Volumes this file or a restore may have made (other helpers share the pool). */
    const ours = () => volumes().filter((v) => v.startsWith(tag) || v.startsWith('hvkit-restore-'));
    const qemuImg = (...args: string[]) => execFileSync('qemu-img', args, { timeout: 60_000 });
    /** sha256 of a disk's guest-visible bytes (its whole backing chain), read with qemu-img. */
    const guestViewSha = (spec: string) => {
      const out = join(work, `view-${randomBytes(4).toString('hex')}.raw`);
      qemuImg('convert', '-U', '-O', 'raw', spec, out);
      const sum = sha256(readFileSync(out));
      rmSync(out);
      return sum;
    };
    /** sha256 of `virsh vol-download` of a volume. */
    const volSha = (path: string) => {
      const out = join(work, `dl-${randomBytes(4).toString('hex')}`);
      virsh('vol-download', path, out);
      const sum = sha256(readFileSync(out));
      rmSync(out);
      return sum;
    };

    /** Writes an artifact of the source guest: its secure inactive XML and `disks` (device → file bytes). */
    async function writeArtifact(
      id: string,
      disks: { device: string; bytes: Uint8Array; format: string; incremental?: string }[],
      over: Partial<BackupManifest> = {},
    ): Promise<{ path: string; manifest: BackupManifest }> {
      const sink = createDirectorySink(backups, { fsync: false });
      const path = artifactPath(tag, id);
      const files: BackupManifest['files'] = [];
      const put = async (name: string, bytes: Uint8Array) => {
        async function* one() {
          yield bytes;
        }
        await sink.writeFile(`${path}/${name}`, one());
      };
      const xml = new TextEncoder().encode(srcXml);
      await put('domain.xml', xml);
      files.push({
        name: 'domain.xml',
        role: 'definition',
        bytes: xml.length,
        sha256: sha256(xml),
        format: 'libvirt-domain-xml',
      });
      for (const d of disks) {
        const name = `disk-${d.device}.${d.format}`;
        await put(name, d.bytes);
        files.push({
          name,
          role: 'disk',
          bytes: d.bytes.length,
          sha256: sha256(d.bytes),
          disk: {
            device: d.device,
            format: d.format,
            capacityBytes: 16 * MiB,
            ...(d.incremental ? { incremental: d.incremental } : {}),
          },
        });
      }
      const details = parseDomainXmlDetails(srcXml);
      const manifest: BackupManifest = {
        format: 'hvkit-backup',
        version: 1,
        specificationVersion: 'v1',
        adapter: 'kvm-libvirt',
        id,
        kind: 'full',
        method: 'volume-download',
        guest: { id: details.uuid, name: tag, uuid: details.uuid },
        startedAt: new Date().toISOString(),
        completedAt: new Date().toISOString(),
        consistency: 'crash',
        chain: { id, position: 0 },
        checkpoint: `cp-${id}`,
        files,
        ...over,
      };
      await writeBackupManifest(sink, path, manifest);
      return { path, manifest };
    }

    let full: { path: string; manifest: BackupManifest };
    let fullDisk: Buffer;

    beforeAll(async () => {
      work = mkdtempSync(join(tmpdir(), 'hvkit-restore-'));
      backups = join(work, 'backups');
      initialVolumes = volumes();
      client = await connectRpc({ uri });
      const pool = await client.call(P.STORAGE_POOL_LOOKUP_BY_NAME, { name: poolName });
      poolPath = /<path>([^<]+)<\/path>/.exec(
        await client.call(P.STORAGE_POOL_GET_XML_DESC, { pool, flags: 0 }),
      )?.[1] as string;
      // The source disk: 16 MiB with random data in three places, as qcow2 in the pool.
      content = Buffer.alloc(16 * MiB);
      randomBytes(MiB).copy(content, 0);
      randomBytes(300_000).copy(content, 5 * MiB + 123);
      randomBytes(2 * MiB).copy(content, 12 * MiB);
      const raw = join(work, 'src.raw');
      writeFileSync(raw, content);
      srcPath = join(poolPath, `${tag}-vda.qcow2`);
      qemuImg('convert', '-f', 'raw', '-O', 'qcow2', raw, srcPath);
      await client.call(P.STORAGE_POOL_REFRESH, { pool, flags: 0 });
      // The source guest: the peer guest's definition, renamed, on that disk, with a static DAC label.
      const peerXml = virsh('dumpxml', '--inactive', '--security-info', env.HVKIT_LIBVIRT_GUEST as string);
      const base = rewriteDomainForRestore(peerXml, {
        mode: 'new',
        name: tag,
        disks: [{ device: 'vda', path: srcPath, format: 'qcow2' }],
      }).xml.replace(
        '</domain>',
        "  <seclabel type='static' model='dac' relabel='yes'>\n    <label>+0:+0</label>\n  </seclabel>\n</domain>",
      );
      const dom = await client.call(P.DOMAIN_DEFINE_XML, { xml: base });
      srcXml = await client.call(P.DOMAIN_GET_XML_DESC, {
        dom,
        flags: DOMAIN_XML.SECURE | DOMAIN_XML.INACTIVE,
      });
      fullDisk = readFileSync(srcPath);
      // The full backup: a real one (the guest is stopped: its volume is downloaded) into the directory.
      await using hv = await connect({ uri });
      const artifact = await hv.backups.backup({ name: tag }, createDirectorySink(backups, { fsync: false }));
      const manifest = (await createDirectorySource(backups).list()).find(
        (l) => l.id === artifact.id,
      )?.manifest;
      expect(manifest?.files.find((f) => f.role === 'disk')).toMatchObject({
        name: 'disk-vda.qcow2',
        sha256: sha256(fullDisk),
      });
      full = { path: artifact.path as string, manifest: manifest as BackupManifest };
    });

    afterAll(async () => {
      if (!peer.available) return;
      for (const g of guestsToRemove) {
        try {
          virsh('destroy', g);
        } catch {}
        try {
          virsh('undefine', '--nvram', g);
        } catch {}
      }
      for (const v of volumes()) {
        if (v.startsWith(tag) || (v.startsWith('hvkit-restore-') && !initialVolumes.includes(v))) {
          try {
            virsh('vol-delete', '--pool', poolName, v);
          } catch {}
        }
      }
      await client?.close();
      if (work) rmSync(work, { recursive: true, force: true });
    });

    it('restores as a new guest: same disk bytes and definition, new name, uuid and MAC, static label dropped; it starts', async () => {
      const beforeVols = ours();
      await using hv = await connect({ uri });
      expect(hv.supports.backups === false ? false : hv.supports.backups.restore).toEqual({
        asNew: true,
        inPlace: true,
        incrementalChains: true,
      });
      const name = `${tag}-new`;
      guestsToRemove.add(name);
      const log: Progress[] = [];
      const result = await hv.backups.restore!(createDirectorySource(backups), {
        artifact: full.manifest.id,
        name,
        onProgress: (p) => log.push(p),
      });
      expect(result.mode).toBe('new');
      expect(result.artifacts).toEqual([full.manifest.id]);
      expect(result.guest.name).toBe(name);
      const original = parseDomainXmlDetails(srcXml);
      const restoredXml = virsh('dumpxml', '--inactive', '--security-info', name);
      const restored = parseDomainXmlDetails(restoredXml);
      expect(restored.uuid).not.toBe(original.uuid);
      expect(result.guest.id).toBe(restored.uuid);
      expect(restored.vcpus).toEqual(original.vcpus);
      expect(restored.memory).toEqual(original.memory);
      expect(restored.disks.map((d) => [d.device, d.format])).toEqual(
        original.disks.map((d) => [d.device, d.format]),
      );
      expect(restored.interfaces.map((i) => [i.type, i.network, i.model])).toEqual(
        original.interfaces.map((i) => [i.type, i.network, i.model]),
      );
      expect(restored.interfaces[0]?.mac).toMatch(/^52:54:00:/);
      expect(restored.interfaces[0]?.mac).not.toBe(original.interfaces[0]?.mac);
      expect(original.seclabels.some((l) => l.type === 'static')).toBe(true);
      expect(restored.seclabels.some((l) => l.type === 'static')).toBe(false);
      // The disk: the artifact's bytes exactly, in a new volume of the original's pool.
      const disk = restored.disks[0]?.source as string;
      expect(disk.startsWith(`${poolPath}/hvkit-restore-`)).toBe(true);
      expect(volSha(disk)).toBe(sha256(fullDisk));
      expect(volSha(srcPath)).toBe(sha256(fullDisk));
      expect(guestViewSha(disk)).toBe(sha256(content));
      // Only the restored disk is new in the pool: no lease volume, no other leftover.
      expect(ours()).toEqual([...beforeVols, disk.split('/').at(-1) as string].sort());
      // Progress: one upload phase with its total known at the start, growing up to it.
      expect(log[0]).toMatchObject({ phase: 'upload', processedBytes: 0, totalBytes: fullDisk.length });
      expect(log.at(-1)).toMatchObject({ processedBytes: fullDisk.length, totalBytes: fullDisk.length });
      for (let i = 1; i < log.length; i++) {
        expect((log[i] as Progress).processedBytes).toBeGreaterThanOrEqual(
          (log[i - 1] as Progress).processedBytes,
        );
      }
      // It starts (an OS-less guest: QEMU opens the restored disk).
      virsh('start', name);
      expect(virsh('domstate', name).trim()).toBe('running');
      virsh('destroy', name);
    });

    it('a flipped byte in the disk file: INVALID_ARGUMENT artifact-mismatch, no volume or guest created', async () => {
      const corrupt = Buffer.from(fullDisk);
      const at = Math.floor(fullDisk.length / 2);
      guestsToRemove.add(`${tag}-corrupt`);
      const id = '20261207T130500Z-full-bbbbbb';
      const { path } = await writeArtifact(id, [{ device: 'vda', bytes: corrupt, format: 'qcow2' }]);
      // Flip one byte of the written file (the manifest still has the right sha256).
      const file = join(backups, path, 'disk-vda.qcow2');
      const bytes = readFileSync(file);
      bytes[at] = (bytes[at] as number) ^ 0xff;
      writeFileSync(file, bytes);
      const beforeVols = ours();
      const beforeGuests = guests();
      await using hv = await connect({ uri });
      const error = await rejection(
        hv.backups.restore!(createDirectorySource(backups), { artifact: id, name: `${tag}-corrupt` }),
      );
      expect(error.code).toBe('INVALID_ARGUMENT');
      expect(error.details).toMatchObject({ reason: 'artifact-mismatch' });
      expect(ours()).toEqual(beforeVols);
      expect(guests()).toEqual(beforeGuests);
    });

    it('aborts at several points (before anything, at the first bytes, mid-upload, at the end): nothing left', async () => {
      const beforeVols = ours();
      const beforeGuests = guests();
      await using hv = await connect({ uri });
      const source = createDirectorySource(backups);
      const pre = new AbortController();
      pre.abort();
      expect(
        (await rejection(hv.backups.restore!(source, { artifact: full.manifest.id, signal: pre.signal })))
          .code,
      ).toBe('ABORTED');
      for (const fraction of [0, 0.3, 0.7, 1]) {
        const controller = new AbortController();
        const error = await rejection(
          hv.backups.restore!(source, {
            artifact: full.manifest.id,
            name: `${tag}-abort`,
            signal: controller.signal,
            onProgress: (p) => {
              if (p.processedBytes >= fraction * (p.totalBytes ?? 0)) controller.abort();
            },
          }),
        );
        expect(error.code, `abort at ${fraction}`).toBe('ABORTED');
        expect(ours(), `abort at ${fraction}`).toEqual(beforeVols);
        expect(guests(), `abort at ${fraction}`).toEqual(beforeGuests);
      }
    });

    it('the name of an existing guest is CONFLICT; a running guest in place is CONFLICT; nothing created', async () => {
      const beforeVols = ours();
      await using hv = await connect({ uri });
      const source = createDirectorySource(backups);
      const taken = await rejection(
        hv.backups.restore!(source, { artifact: full.manifest.id, name: env.HVKIT_LIBVIRT_GUEST as string }),
      );
      expect(taken.code).toBe('CONFLICT');
      virsh('start', tag);
      try {
        const running = await rejection(
          hv.backups.restore!(source, { artifact: full.manifest.id, mode: 'in-place' }),
        );
        expect(running.code).toBe('CONFLICT');
      } finally {
        virsh('destroy', tag);
      }
      expect(ours()).toEqual(beforeVols);
    });

    it('restores in place on the stopped guest: its disk replaced by the artifact, uuid, name and MAC kept', async () => {
      // Change the guest's disk so that the restore has something to undo.
      const beforeXml = virsh('dumpxml', '--inactive', '--security-info', tag);
      const before = parseDomainXmlDetails(beforeXml);
      const oldDisk = before.disks[0]?.source as string;
      await using hv = await connect({ uri });
      // Another process's live lease on the guest: CONFLICT, nothing created.
      const leaseXml = `<lease owner='elsewhere.example:1' run='other-run' startedAt='${new Date().toISOString()}' expiresAt='${new Date(Date.now() + 600_000).toISOString()}' operation='backup'/>`;
      const nsArgs = ['--uri', BACKUP_LEASE_NAMESPACE, '--config'];
      virsh('metadata', tag, ...nsArgs, '--key', BACKUP_LEASE_KEY, '--set', leaseXml);
      const beforeVols = ours();
      try {
        const held = await rejection(
          hv.backups.restore!(createDirectorySource(backups), {
            artifact: full.manifest.id,
            mode: 'in-place',
          }),
        );
        expect(held.code).toBe('CONFLICT');
        expect(held.details).toMatchObject({ reason: 'lease', run: 'other-run' });
        expect(ours()).toEqual(beforeVols);
      } finally {
        virsh('metadata', tag, ...nsArgs, '--remove');
      }
      // While it runs, the restore holds the guest's lease (operation restore), as a backup would see it.
      const seen: string[] = [];
      const result = await hv.backups.restore!(createDirectorySource(backups), {
        artifact: full.manifest.id,
        mode: 'in-place',
        onProgress: () => {
          if (seen.length === 0) seen.push(virsh('metadata', tag, ...nsArgs));
        },
      });
      expect(seen[0]).toMatch(/operation="restore"/);
      expect(result.mode).toBe('in-place');
      // The redefinition leaves no lease behind.
      expect(() => virsh('metadata', tag, ...nsArgs)).toThrow();
      const after = parseDomainXmlDetails(virsh('dumpxml', '--inactive', '--security-info', tag));
      expect(after.uuid).toBe(before.uuid);
      expect(after.name).toBe(before.name);
      expect(after.interfaces.map((i) => i.mac)).toEqual(before.interfaces.map((i) => i.mac));
      expect(after.seclabels).toEqual(before.seclabels);
      const newDisk = after.disks[0]?.source as string;
      expect(newDisk).not.toBe(oldDisk);
      expect(volSha(newDisk)).toBe(sha256(fullDisk));
      // The replaced volume is gone.
      expect(ours()).not.toContain(oldDisk.split('/').at(-1));
      virsh('start', tag);
      virsh('destroy', tag);
    });

    it('restores an incremental chain (full, then a qcow2 overlay) as a backing chain whose guest view is the latest', async () => {
      // The incremental: a qcow2 overlay over the full disk with two changed places (unallocated clusters
      // mean "unchanged"); like libvirt's push-mode incremental targets, its header names a backing file (here
      // the full image's temporary copy), which the restore must not carry into the pool.
      const overlay = join(work, 'inc.qcow2');
      const fullFile = join(work, 'full.qcow2');
      writeFileSync(fullFile, fullDisk);
      qemuImg('create', '-f', 'qcow2', '-F', 'qcow2', '-b', fullFile, overlay);
      execFileSync('qemu-io', ['-c', 'write -P 0x5a 1M 64k', '-c', 'write -P 0xa5 14M 1M', overlay]);
      const expected = guestViewSha(overlay);
      expect(expected).not.toBe(sha256(content));
      const incId = '20261207T131000Z-incremental-cccccc';
      await writeArtifact(
        incId,
        [{ device: 'vda', bytes: readFileSync(overlay), format: 'qcow2', incremental: 'qcow2-overlay' }],
        {
          kind: 'incremental',
          method: 'libvirt-push',
          chain: { id: full.manifest.id, position: 1 },
          base: full.manifest.id,
          ...(full.manifest.checkpoint ? { parentCheckpoint: full.manifest.checkpoint } : {}),
          checkpoint: `cp-${incId}`,
        },
      );
      const name = `${tag}-chain`;
      guestsToRemove.add(name);
      await using hv = await connect({ uri });
      const result = await hv.backups.restore!(createDirectorySource(backups), { artifact: incId, name });
      expect(result.artifacts).toEqual([full.manifest.id, incId]);
      const xml = virsh('dumpxml', '--inactive', name);
      const top = parseDomainXmlDetails(xml).disks[0]?.source as string;
      const bottom = /<backingStore type='file'>\s*<format type='qcow2'\/>\s*<source file='([^']+)'/.exec(
        xml,
      )?.[1];
      expect(bottom).toBeDefined();
      const spec = `json:${JSON.stringify({
        driver: 'qcow2',
        file: { driver: 'file', filename: top },
        backing: { driver: 'qcow2', file: { driver: 'file', filename: bottom } },
      })}`;
      expect(guestViewSha(spec)).toBe(expected);
      // The uploaded overlay names no backing file of its own: only the definition's chain.
      const info = JSON.parse(qemuImg('info', '-U', '--output=json', top).toString()) as Record<
        string,
        unknown
      >;
      expect(info['backing-filename']).toBeUndefined();
      // libvirt and QEMU accept the chain.
      virsh('start', name);
      expect(virsh('domstate', name).trim()).toBe('running');
      virsh('destroy', name);
    });
  },
);
