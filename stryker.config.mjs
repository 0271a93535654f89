// @ts-check
/**
 * Mutation testing of the security-critical modules: `npm run test:mutation` (StrykerJS 9 with its vitest
 * runner; the tests it runs are chosen in vitest.mutation.config.ts). The clear-text report lists every
 * surviving mutant; the run fails below a mutation score of 80 %.
 */
import { readFileSync } from 'node:fs';

/**
 * `file:first-last`, the lines of the top-level functions `names` of `file`: from the `function` line to
 * the closing `}` at column 0. Found by name, so the range follows the code when lines move.
 * @param {string} file
 * @param {string[]} names
 * @returns {string[]}
 */
function functions(file, names) {
  const lines = readFileSync(new URL(file, import.meta.url), 'utf8').split('\n');
  return names.map((name) => {
    const start = lines.findIndex((l) => new RegExp(`^(export )?(async )?function ${name}\\b`).test(l));
    const end = lines.findIndex((l, i) => i > start && l === '}');
    if (start < 0 || end < 0) throw new Error(`stryker.config.mjs: no function ${name} in ${file}`);
    return `${file}:${start + 1}-${end + 1}`;
  });
}

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
export default {
  testRunner: 'vitest',
  plugins: ['@stryker-mutator/vitest-runner'],
  vitest: { configFile: 'vitest.mutation.config.ts', related: true },
  mutate: [
    // SSH: known_hosts matching, argument quoting, and the host key checks of a connection.
    'packages/ssh/src/known-hosts.ts',
    'packages/ssh/src/quote.ts',
    ...functions('packages/ssh/src/connection.ts', ['readKnownHosts', 'buildVerifier', 'connectError']),
    // core: secrets out of messages, limits validation, the XML tokenizer and reader, the backup sinks.
    'packages/core/src/redact.ts',
    'packages/core/src/limits/validate.ts',
    'packages/core/src/xml/tokenizer.ts',
    'packages/core/src/xml/reader.ts',
    'packages/core/src/backup/confined-dir.ts',
    'packages/core/src/backup/directory-sink.ts',
    'packages/core/src/backup/stream-sink.ts',
    // libvirt: the XDR reader and writer, libvirt errors to HvkitError codes.
    'packages/kvm-libvirt/src/protocol/xdr.ts',
    'packages/kvm-libvirt/src/errors.ts',
    // vSphere: vim faults to HvkitError codes, the SOAP response decoder.
    'packages/vmware-vsphere/src/errors.ts',
    'packages/vmware-vsphere/src/protocol/soap/decode.ts',
  ],
  ignorePatterns: ['bench', 'docs', 'examples', 'tools', '.peers', 'reports', '**/dist', '.turbo'],
  coverageAnalysis: 'perTest',
  reporters: ['clear-text', 'progress-append-only', 'json'],
  clearTextReporter: { allowColor: false, logTests: false, reportTests: false, reportScoreTable: true },
  jsonReporter: { fileName: 'reports/mutation/mutation.json' },
  thresholds: { high: 90, low: 80, break: 80 },
  concurrency: 2,
  timeoutMS: 3000,
  // The last run's results, committed: a run re-tests only the mutants whose code or covering tests changed
  // since (CI runs on a fresh clone, so only a committed file helps). `--force` re-tests everything.
  incremental: true,
  incrementalFile: 'tools/mutation/stryker-incremental.json',
  tempDirName: '.stryker-tmp',
  cleanTempDir: 'always',
};
