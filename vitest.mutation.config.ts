import { defineConfig } from 'vitest/config';
import { hvkitVitest } from './vitest.shared';

/**
 * The vitest setup StrykerJS runs (`npm run test:mutation`): per package, the unit tests of the mutated
 * modules. Left out: live tests (they need the shared peers, and a peer that answers differently from one
 * run to the next would make a mutant look killed), the randomised fuzz and differential tests
 * (thousands of samples each: run for every mutant they cover, they alone would take hours; `npm test`
 * runs them), and the adapters' replay suites (seconds per run, and they reach these modules only
 * through the unit-tested paths).
 */
const TESTS: Record<string, string[]> = {
  core: ['src/redact.test.ts', 'src/limits/*.test.ts', 'src/xml/*.test.ts', 'src/backup/*.test.ts'],
  ssh: ['src/known-hosts.test.ts', 'src/quote.test.ts', 'src/connection.test.ts'],
  'kvm-libvirt': ['src/rpc/*.test.ts'],
  'vmware-vsphere': ['src/soap/*.test.ts'],
};
const EXCLUDE = [
  '**/node_modules/**',
  '**/*.live.test.ts',
  '**/*fuzz*.test.ts',
  '**/*.differential.test.ts',
  '**/*.large.test.ts',
];

export default defineConfig({
  test: {
    projects: Object.entries(TESTS).map(([name, include]) => {
      const shared = hvkitVitest({ name, include, exclude: EXCLUDE });
      return { ...shared, test: { ...shared.test, name, root: `packages/${name}` } };
    }),
  },
});
