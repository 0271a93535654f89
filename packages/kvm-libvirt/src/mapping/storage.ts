/**
 * Storage pools and volumes (`STORAGE_POOL_GET_XML_DESC`, `STORAGE_VOL_GET_XML_DESC`) to the spec's
 * {@link StoragePool} and {@link StorageVolume}.
 */

import { hvkitError, type StoragePool, type StorageVolume } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import type { ActiveOption } from './network';
import { attr, child, parseRoot, rawText, requiredNameUuid, scaledBytes } from './xml-util';

/**
 * Storage pool XML → {@link StoragePool}: `id` = `<uuid>`, `name`, `type` = `<pool type>` (`dir`,
 * `logical`, `netfs`, `iscsi`, ...), `capacityBytes`/`allocationBytes`/`availableBytes` from their `unit`
 * (default bytes), `path` = `<target><path>`, `active` from `options`.
 *
 * An inactive pool reports 0 for every size (libvirt only knows them while the pool runs): with
 * `active: false` the sizes are left out instead of reported as 0.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML, a root other than `<pool>`, or no `<name>`/`<uuid>`.
 */
export function parsePoolXml(xml: string, options: ActiveOption = {}): StoragePool {
  const root = parseRoot(xml, 'pool', 'parsePoolXml');
  const { uuid, name } = requiredNameUuid(root, 'Storage pool', 'parsePoolXml');
  const pool: StoragePool = { id: uuid, name, type: attr(root, 'type') ?? 'unknown' };
  if (options.active !== false) {
    const capacity = scaledBytes(child(root, 'capacity'), 'bytes');
    const allocation = scaledBytes(child(root, 'allocation'), 'bytes');
    const available = scaledBytes(child(root, 'available'), 'bytes');
    if (capacity !== undefined) pool.capacityBytes = capacity;
    if (allocation !== undefined) pool.allocationBytes = allocation;
    if (available !== undefined) pool.availableBytes = available;
  }
  const path = rawText(child(child(root, 'target'), 'path'))?.trim();
  if (path) pool.path = path;
  if (options.active !== undefined) pool.active = options.active;
  return pool;
}

/** Options of {@link parseVolumeXml}. */
export interface ParseVolumeXmlOptions {
  /** Id of the pool the volume is in (its UUID), copied to `StorageVolume.poolId`. */
  poolId: string;
}

/**
 * Storage volume XML → {@link StorageVolume}: `id` = `<key>` (unique on the host; the path for file-based
 * pools), else the target path, else the name; `name`; `poolId` from `options`; `path` = `<target><path>`;
 * `capacityBytes`/`allocationBytes` from their `unit` (default bytes); `format` = `<target><format type>`.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML, a root other than `<volume>`, or no `<name>`;
 *   TypeError when `options.poolId` is not a string.
 */
export function parseVolumeXml(xml: string, options: ParseVolumeXmlOptions): StorageVolume {
  if (typeof options !== 'object' || options === null || typeof options.poolId !== 'string') {
    throw new TypeError('parseVolumeXml: options.poolId must be a string.');
  }
  const root = parseRoot(xml, 'volume', 'parseVolumeXml');
  const name = rawText(child(root, 'name'));
  if (name === undefined || name.trim() === '') {
    throw hvkitError('PROTOCOL', 'Volume XML without <name>.', {
      adapter: ADAPTER_ID,
      operation: 'parseVolumeXml',
    });
  }
  const target = child(root, 'target');
  const path = rawText(child(target, 'path'))?.trim() || undefined;
  const key = rawText(child(root, 'key'))?.trim() || undefined;
  const vol: StorageVolume = { id: key ?? path ?? name, name, poolId: options.poolId };
  if (path !== undefined) vol.path = path;
  const capacity = scaledBytes(child(root, 'capacity'), 'bytes');
  const allocation = scaledBytes(child(root, 'allocation'), 'bytes');
  if (capacity !== undefined) vol.capacityBytes = capacity;
  if (allocation !== undefined) vol.allocationBytes = allocation;
  const format = attr(child(target, 'format'), 'type');
  if (format !== undefined) vol.format = format;
  return vol;
}

/** The sizes of a storage volume, as bytes. */
export interface VolumeSizes {
  /** `<capacity>`: the virtual size (what the guest sees). */
  capacityBytes?: number;
  /** `<allocation>`: the space it takes on the host. */
  allocationBytes?: number;
  /** `<physical>` (libvirt ≥ 3.0): the size of the file or device itself, which is what a download sends. */
  physicalBytes?: number;
}

/**
 * The `<capacity>`, `<allocation>` and `<physical>` of storage volume XML, scaled to bytes by their `unit`.
 * A size that is missing or not a non-negative safe integer is left out.
 *
 * @throws HvkitError `PROTOCOL` for malformed XML or a root other than `<volume>`.
 */
export function parseVolumeSizes(xml: string): VolumeSizes {
  const root = parseRoot(xml, 'volume', 'parseVolumeSizes');
  const sizes: VolumeSizes = {};
  for (const [key, element] of [
    ['capacityBytes', 'capacity'],
    ['allocationBytes', 'allocation'],
    ['physicalBytes', 'physical'],
  ] as const) {
    const n = scaledBytes(child(root, element), 'bytes');
    if (n !== undefined) sizes[key] = n;
  }
  return sizes;
}
