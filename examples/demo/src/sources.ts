import type { HypervisorAdapter } from '@hvkit/core';
import { createInMemoryAdapter } from '@hvkit/core/testing';

/** One backend the demo shows: an adapter opened on embedded data, so no server is needed. */
export interface DemoSource {
  /** Short label printed as the section title. */
  name: string;
  /** Where the data comes from (recorded fixture folder, or the in-memory reference adapter). */
  origin: string;
  open(): Promise<HypervisorAdapter>;
}

/**
 * Every source the demo prints. Each adapter package adds one entry that replays its recorded fixtures;
 * until an adapter lands, the in-memory reference adapter from `@hvkit/core/testing` stands in.
 */
export const DEMO_SOURCES: DemoSource[] = [
  {
    name: 'in-memory',
    origin: '@hvkit/core/testing reference adapter (default dataset)',
    open: async () => createInMemoryAdapter(),
  },
];
