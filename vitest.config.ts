import { defineConfig } from 'vitest/config';
import SummaryReporter from './scripts/vitest-summary-reporter';

export default defineConfig({
  test: {
    projects: [
      'packages/*',
      // Tests of the repository's own scripts (checks, generators) run beside the packages'.
      {
        test: {
          name: 'scripts',
          root: 'scripts',
          include: ['**/*.test.{ts,mjs}'],
          exclude: ['**/node_modules/**'],
        },
      },
    ],
    reporters: ['default', new SummaryReporter()],
  },
});
