import { defineConfig } from 'vitest/config';
import SummaryReporter from './scripts/vitest-summary-reporter';

export default defineConfig({
  test: {
    // scripts/: the repository's own scripts (scripts/vitest.config.ts).
    projects: ['packages/*', 'scripts'],
    reporters: ['default', new SummaryReporter()],
  },
});
