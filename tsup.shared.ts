import { defineConfig, type Options } from 'tsup';

/** Build settings every package shares: ESM + CJS + .d.ts from the listed entries. */
export function hvkitTsup(entry: Record<string, string>, extra: Options = {}) {
  return defineConfig({
    entry,
    format: ['esm', 'cjs'],
    dts: true,
    tsconfig: 'tsconfig.build.json',
    sourcemap: true,
    clean: true,
    target: 'node20',
    platform: 'node',
    splitting: false,
    ...extra,
  });
}
