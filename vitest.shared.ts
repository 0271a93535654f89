import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { ViteUserConfig } from 'vitest/config';

const root = dirname(fileURLToPath(import.meta.url));

/**
 * Loads `.peers/env` (written by `scripts/peers/start`) into process.env so live tests find the
 * real peers that a developer started by hand. Variables already set win.
 */
function loadPeerEnv(): void {
  const file = join(root, '.peers', 'env');
  if (!existsSync(file)) return;
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    const m = /^(?:export\s+)?([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    const [, key, raw] = m as unknown as [string, string, string];
    const value = raw.replace(/^'(.*)'$/, '$1').replace(/^"(.*)"$/, '$1');
    if (process.env[key] === undefined) process.env[key] = value;
  }
}

const conditions = ['@hvkit/source', 'module', 'node', 'development|production'];

/** The vitest settings every package shares: tests run from source through the `@hvkit/source` condition. */
export function hvkitVitest(test: NonNullable<ViteUserConfig['test']> = {}): ViteUserConfig {
  loadPeerEnv();
  return {
    resolve: { conditions },
    ssr: { resolve: { conditions, externalConditions: ['@hvkit/source'] } },
    test: {
      include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
      testTimeout: 30_000,
      hookTimeout: 60_000,
      ...test,
    },
  };
}
