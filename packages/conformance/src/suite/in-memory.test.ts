/**
 * The suite passes on the reference adapter, registered with vitest exactly as an adapter package would
 * (live mode: the in-memory backend is the "server" and the probe reads it directly).
 */
import type { HypervisorAdapterV1 } from '@hvkit/core';
import { createInMemoryAdapter, type InMemoryAdapter } from '@hvkit/core/testing';
import * as vitest from 'vitest';
import { inMemoryWithDisklessGuest } from './__samples__/diskless';
import { runAdapterConformance } from './run';
import type { ConformanceProbe } from './types';

// Type-level check: the backend is a complete probe.
const probeOf = (adapter: HypervisorAdapterV1): ConformanceProbe => (adapter as InMemoryAdapter).backend;

runAdapterConformance({
  name: 'in-memory',
  mode: 'live',
  factory: async () => inMemoryWithDisklessGuest(),
  probe: probeOf,
  disklessGuest: { name: 'no-disks' },
});

// Replay mode without a probe and without events: the events group and the probe-based checks show up as
// skipped with their reasons (the latter through vitest's context.skip). The whole vitest module can be
// passed as the test API.
runAdapterConformance({
  name: 'in-memory without events',
  mode: 'replay',
  factory: async () => createInMemoryAdapter({ without: ['events'] }),
  test: vitest,
});
