import { defineConfig } from 'vitest/config';

/**
 * Tests of the repository scripts (checks, the mutation floor, the new-adapter generator); a project of the
 * root vitest config. The generator's test runs it end to end in a temporary copy of the repository, hence
 * the long timeouts.
 */
export default defineConfig({
  test: {
    name: 'scripts',
    include: ['**/*.test.{ts,mjs}'],
    exclude: ['**/node_modules/**'],
    testTimeout: 300_000,
    hookTimeout: 120_000,
  },
});
