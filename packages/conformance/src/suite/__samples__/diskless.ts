/** Adapters for the suite's own tests. */
import {
  createInMemoryAdapter,
  type InMemoryAdapter,
  type InMemoryAdapterOptions,
} from '@hvkit/core/testing';

/** The default dataset plus a guest without disks, for `backups.diskless`. */
export function inMemoryWithDisklessGuest(options: InMemoryAdapterOptions = {}): InMemoryAdapter {
  const adapter = createInMemoryAdapter({ ...options, without: undefined });
  adapter.backend.defineGuest({
    id: 'vm-nodisk',
    uuid: '5f0c2a3e-8d1b-4e7a-9c6f-0a1b2c3d4e5f',
    name: 'no-disks',
    powerState: 'stopped',
    vcpus: 1,
    memoryBytes: 256 * 1024 * 1024,
    disks: [],
    nics: [{ device: 'net0', mac: '52:54:00:a1:0d:01', network: 'default', model: 'virtio' }],
    isTemplate: false,
    tags: [],
  });
  return adapter;
}

/** The ref of that guest, for `disklessGuest`. */
export const DISKLESS_GUEST = { name: 'no-disks' };
