import { defineConfig } from 'vitest/config';
import SummaryReporter from './scripts/vitest-summary-reporter';

export default defineConfig({
  test: {
    projects: ['packages/*'],
    reporters: ['default', new SummaryReporter()],
  },
});
