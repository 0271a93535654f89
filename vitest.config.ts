import { defineConfig } from 'vitest/config';
import SummaryReporter from './scripts/vitest-summary-reporter';

export default defineConfig({
  test: {
    projects: ['packages/*', 'scripts'],
    reporters: ['default', new SummaryReporter()],
  },
});
