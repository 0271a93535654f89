import { defineConfig } from 'vitest/config';

/** Tests of the repository scripts (scripts/*.test.mjs); a project of the root vitest config. */
export default defineConfig({
  test: {
    name: 'scripts',
    include: ['*.test.mjs'],
    testTimeout: 60_000,
  },
});
