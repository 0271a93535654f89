/**
 * Logical volumes as spec v1 guests, storage pools and storage volumes. Pure functions over parsed reports.
 *
 * - Every volume group is a storage pool (`type: 'lvm'`, id = group name).
 * - Every non-internal logical volume is a storage volume (id `vg/lv`), snapshots included.
 * - A guest is what holds data worth backing up: by default each non-internal, non-snapshot volume that
 *   hvkit did not create for itself (id and name `vg/lv`, one disk); with a user mapping, each named guest
 *   with its volumes (id and name the mapping's key).
 */

import { createHash } from 'node:crypto';
import type { Disk, Guest, StoragePool, StorageVolume } from '@hvkit/core';
import type { LvmLogicalVolume, LvmVolumeGroup } from './report';

/** The LVM tag hvkit puts on every volume it creates for itself (snapshots, base snapshots, restore volumes). */
export const HVKIT_TAG = 'hvkit';
/** Tag of a thin snapshot kept as the base of the next incremental backup. */
export const HVKIT_BASE_TAG = 'hvkit-base';
/** Tag of a snapshot made for one backup run (removed at its end). */
export const HVKIT_RUN_TAG = 'hvkit-run';
/** Tag of a volume a restore is writing (renamed or removed at its end). */
export const HVKIT_RESTORE_TAG = 'hvkit-restore';

/** Whether hvkit made this volume for itself. */
export function isHvkitVolume(lv: LvmLogicalVolume): boolean {
  return lv.tags.includes(HVKIT_TAG);
}

/** Volumes that hold data: not internal, not a thin pool, not a snapshot, not hvkit's own. */
export function isDataVolume(lv: LvmLogicalVolume): boolean {
  return (lv.kind === 'volume' || lv.kind === 'thin') && !isHvkitVolume(lv);
}

/**
 * A stable RFC 4122 UUID (version 5 layout) derived from LVM's own 32-character volume UUID, which is not
 * an RFC 4122 UUID. The same volume always gives the same UUID.
 */
export function guestUuid(seed: string): string {
  const h = createHash('sha256').update(`hvkit-lvm:${seed}`).digest();
  h[6] = ((h[6] as number) & 0x0f) | 0x50;
  h[8] = ((h[8] as number) & 0x3f) | 0x80;
  const hex = h.subarray(0, 16).toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}

/** A volume as a guest disk (`device` is `vg/lv`). */
export function diskOf(lv: LvmLogicalVolume): Disk {
  return {
    device: lv.fullName,
    backing: 'block',
    format: 'raw',
    ...(lv.path ? { source: lv.path } : {}),
    ...(lv.sizeBytes !== undefined ? { capacityBytes: lv.sizeBytes } : {}),
    readonly: lv.attr?.permissions === 'read-only',
  };
}

/**
 * What a guest reports for CPUs and memory. LVM knows neither; spec v1 requires positive values, so these
 * placeholders stand in (documented on the adapter's page). Read a guest's real CPUs and memory from its
 * hypervisor's adapter.
 */
export const PLACEHOLDER_VCPUS = 1;
/** See {@link PLACEHOLDER_VCPUS}: 1 MiB. */
export const PLACEHOLDER_MEMORY_BYTES = 1024 * 1024;

/**
 * A guest from its id and volumes. Active volumes make it `running`, none active `stopped`; CPUs and memory
 * are placeholders ({@link PLACEHOLDER_VCPUS}).
 */
export function guestOf(id: string, volumes: readonly LvmLogicalVolume[]): Guest {
  return {
    id,
    uuid: guestUuid(volumes.length === 1 ? (volumes[0]?.uuid ?? id) : id),
    name: id,
    powerState: volumes.some((v) => v.active) ? 'running' : 'stopped',
    vcpus: PLACEHOLDER_VCPUS,
    memoryBytes: PLACEHOLDER_MEMORY_BYTES,
    disks: volumes.map(diskOf),
    nics: [],
    isTemplate: false,
    tags: [...new Set(volumes.flatMap((v) => v.tags))],
  };
}

/** A volume group as a storage pool. */
export function poolOf(vg: LvmVolumeGroup): StoragePool {
  const pool: StoragePool = {
    id: vg.name,
    name: vg.name,
    type: 'lvm',
    path: `/dev/${vg.name}`,
    active: true,
  };
  if (vg.sizeBytes !== undefined) pool.capacityBytes = vg.sizeBytes;
  if (vg.freeBytes !== undefined) pool.availableBytes = vg.freeBytes;
  if (vg.sizeBytes !== undefined && vg.freeBytes !== undefined)
    pool.allocationBytes = vg.sizeBytes - vg.freeBytes;
  return pool;
}

/** A logical volume as a storage volume. Thin volumes report what they use of the pool as allocation. */
export function volumeOf(lv: LvmLogicalVolume): StorageVolume {
  const v: StorageVolume = { id: lv.fullName, name: lv.name, poolId: lv.vgName, format: 'raw' };
  if (lv.path) v.path = lv.path;
  if (lv.sizeBytes !== undefined) {
    v.capacityBytes = lv.sizeBytes;
    v.allocationBytes =
      (lv.kind === 'thin' || lv.kind === 'thin-snapshot') && lv.dataPercent !== undefined
        ? Math.round((lv.sizeBytes * lv.dataPercent) / 100)
        : lv.sizeBytes;
  }
  return v;
}
