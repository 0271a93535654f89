import { defineConfig } from 'vitest/config';
import SummaryReporter from './scripts/vitest-summary-reporter';

export default defineConfig({
  test: {
    projects: [
      'packages/*',
      // Repository scripts (the new-adapter generator), tested end to end in a temporary copy.
      {
        test: {
          name: 'scripts',
          include: ['scripts/**/*.test.ts'],
          testTimeout: 300_000,
          hookTimeout: 120_000,
        },
      },
    ],
    reporters: ['default', new SummaryReporter()],
  },
});
