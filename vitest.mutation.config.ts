import { defineConfig } from 'vitest/config';
import { hvkitVitest } from './vitest.shared';

/**
 * The vitest setup StrykerJS runs (`npm run test:mutation`): per package, the unit tests of the mutated
 * modules, and only those: a test file that imports a mutated module runs for each of its mutants that it
 * reaches, and for every mutant of the module's top-level code. Left out: live tests (they need the shared
 * peers, and a peer that answers differently from one run to the next would make a mutant look killed);
 * the randomised fuzz and differential tests, the 5 MB document and the symlink race (seconds each, and
 * the race depends on timing: run for every mutant they reach, they alone would take hours; `npm test`
 * runs them); and the tests of code built on these modules (SOAP client, property collector, the
 * adapters' replay suites), which reach them through the paths the unit tests cover.
 */
const TESTS: Record<string, string[]> = {
  core: [
    'src/redact.test.ts',
    'src/redact.contract.test.ts',
    'src/limits/*.test.ts',
    'src/xml/reader.test.ts',
    'src/xml/reader.contract.test.ts',
    'src/xml/parse.test.ts',
    'src/backup/*.test.ts',
  ],
  ssh: ['src/known-hosts.test.ts', 'src/quote.test.ts', 'src/connection.test.ts'],
  'kvm-libvirt': [
    'src/protocol/xdr.test.ts',
    'src/error-codes.test.ts',
    'src/errors.test.ts',
    'src/protocol/packet.test.ts',
    'src/protocol/remote-protocol.test.ts',
  ],
  'vmware-vsphere': [
    'src/protocol/soap/decode.test.ts',
    'src/protocol/soap/decode.contract.test.ts',
    'src/errors.test.ts',
    'src/protocol/soap/envelope.test.ts',
    'src/protocol/soap/schema.test.ts',
  ],
};
const EXCLUDE = [
  '**/node_modules/**',
  '**/*.live.test.ts',
  '**/*fuzz*.test.ts',
  '**/*.differential.test.ts',
  '**/*.large.test.ts',
  '**/*.race.test.ts',
];

export default defineConfig({
  test: {
    projects: Object.entries(TESTS).map(([name, include]) => {
      const shared = hvkitVitest({ name, include, exclude: EXCLUDE });
      return { ...shared, test: { ...shared.test, name, root: `packages/${name}` } };
    }),
  },
});
