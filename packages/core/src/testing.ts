/**
 * @hvkit/core/testing: an in-memory hvkit adapter for unit tests of code that uses hvkit, and the
 * reference implementation the conformance suite is checked against.
 *
 * @example
 * import { createInMemoryAdapter, createMemorySink } from '@hvkit/core/testing';
 *
 * const adapter = createInMemoryAdapter();
 * const sink = createMemorySink();
 * const artifact = await adapter.backups.backup('vm-101', sink);
 * // The backend is the "server": read it without going through the adapter.
 * expect(adapter.backend.listSnapshotIds('vm-101')).toEqual([]);
 * expect(sink.read(artifact.files[0].name)).toEqual(adapter.backend.readDisk('vm-101', 'vda'));
 * @packageDocumentation
 */
export {
  createInMemoryBackend,
  InMemoryBackend,
  type InMemoryBackendOptions,
  type InMemoryCheckpointRecord,
  type InMemoryGuestFacts,
  type InMemoryRef,
  type InMemorySnapshotRecord,
} from './testing/backend';
export {
  createDefaultDataset,
  type InMemoryDataset,
  type InMemoryDiskSeed,
  type InMemoryGuestSeed,
} from './testing/dataset';
export { applyInMemoryDelta } from './testing/disk-data';
export {
  createInMemoryAdapter,
  type InMemoryAdapter,
  type InMemoryAdapterOptions,
  type InMemoryFaults,
  type InMemorySupportsOverride,
  type PartialInMemoryAdapter,
} from './testing/in-memory-adapter';
export { createMemorySink, type MemorySink } from './testing/memory-sink';
