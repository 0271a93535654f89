import { defineConfig } from 'vitest/config';
import SummaryReporter from './scripts/vitest-summary-reporter';

export default defineConfig({
  test: {
    projects: [
      'packages/*',
      // Tests of the repository's own scripts (checks, the new-adapter generator, which runs end to end in
      // a temporary copy of the repository: hence the long timeouts).
      {
        test: {
          name: 'scripts',
          include: ['scripts/**/*.test.ts'],
          exclude: ['**/node_modules/**'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
    reporters: ['default', new SummaryReporter()],
  },
});
