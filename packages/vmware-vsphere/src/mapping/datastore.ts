/** Datastore properties → spec v1 `StoragePool`; VM disks on a datastore → `StorageVolume`s. */

import type { StoragePool, StorageVolume } from '@hvkit/core';
import type { ObjectProperties } from '../protocol/soap/property-collector';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import { isDisk } from './vm';

/** Maps one Datastore (`name`, `summary`). */
export function mapDatastore(d: ObjectProperties): StoragePool {
  const s = (d.props.summary ?? {}) as DataObject;
  const pool: StoragePool = {
    id: d.obj.value,
    name: String(d.props.name ?? s.name ?? d.obj.value),
    type: String(s.type ?? 'unknown'),
  };
  if (typeof s.capacity === 'number') pool.capacityBytes = s.capacity;
  if (typeof s.freeSpace === 'number') pool.availableBytes = s.freeSpace;
  if (typeof s.capacity === 'number' && typeof s.freeSpace === 'number')
    pool.allocationBytes = s.capacity - s.freeSpace;
  if (typeof s.url === 'string') pool.path = s.url;
  if (typeof s.accessible === 'boolean') pool.active = s.accessible;
  return pool;
}

/** The VMDKs of the given VMs (`config.hardware.device`) that live on datastore `poolId`, by path. */
export function volumesOnDatastore(vms: readonly ObjectProperties[], poolId: string): StorageVolume[] {
  const out = new Map<string, StorageVolume>();
  for (const vm of vms) {
    for (const d of ((vm.props['config.hardware.device'] ?? []) as DataObject[]).filter(isDisk)) {
      const backing = (d.backing ?? {}) as DataObject;
      if ((backing.datastore as MoRef | undefined)?.value !== poolId || typeof backing.fileName !== 'string')
        continue;
      const volume: StorageVolume = {
        id: backing.fileName,
        name: backing.fileName.replace(/^\[[^\]]*\]\s*/, ''),
        poolId,
        path: backing.fileName,
        format: 'vmdk',
      };
      if (typeof d.capacityInBytes === 'number') volume.capacityBytes = d.capacityInBytes;
      out.set(volume.id, volume);
    }
  }
  return [...out.values()].sort((a, b) => a.id.localeCompare(b.id));
}
