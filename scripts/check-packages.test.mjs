/**
 * The api.json part of scripts/check-packages.mjs, on a small built package written to a temporary
 * directory, and the script's command line on bad usage.
 */
import { execFile } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import {
  API_FILE,
  apiDifferences,
  checkPackageApi,
  formatApi,
  readPackageApi,
  typedEntryPoints,
} from './check-packages.mjs';

const script = join(dirname(fileURLToPath(import.meta.url)), 'check-packages.mjs');
const run = promisify(execFile);

const MANIFEST = {
  name: '@acme/hv',
  version: '0.0.0',
  type: 'module',
  exports: {
    '.': {
      '@hvkit/source': './src/index.ts',
      import: { types: './dist/index.d.ts', default: './dist/index.js' },
      require: { types: './dist/index.d.cts', default: './dist/index.cjs' },
    },
    './rpc': {
      '@hvkit/source': './src/rpc.ts',
      import: { types: './dist/rpc.d.ts', default: './dist/rpc.js' },
      require: { types: './dist/rpc.d.cts', default: './dist/rpc.cjs' },
    },
    './package.json': './package.json',
  },
};

const INDEX_DTS = `import { F as Frame } from './frame-abc.js';
export declare function connect(options: AcmeOptions): Promise<AcmeAdapter>;
export interface AcmeOptions { uri: string }
export type AcmeAdapter = { close(): Promise<void> };
export declare const ADAPTER_ID = "acme";
export declare class AcmeError extends Error {}
declare const supports: { readonly inventory: false };
export { supports as ACME_SUPPORTS, type Frame };
`;

const RPC_DTS = `export declare const PROGRAM = 536903814;
export type { F as Frame } from './frame-abc.js';
`;

const FRAME_DTS = `interface F { bytes: Uint8Array }
export type { F };
`;

const dirs = [];
afterEach(() => {
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

function builtPackage(files = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'hvkit-api-'));
  dirs.push(dir);
  mkdirSync(join(dir, 'dist'));
  writeFileSync(join(dir, 'package.json'), JSON.stringify(MANIFEST));
  const all = {
    'dist/index.d.ts': INDEX_DTS,
    'dist/rpc.d.ts': RPC_DTS,
    'dist/frame-abc.d.ts': FRAME_DTS,
    ...files,
  };
  for (const [name, text] of Object.entries(all)) writeFileSync(join(dir, name), text);
  return dir;
}

describe('check-packages api.json', () => {
  it('finds the ESM types of each entry point, without ./package.json', () => {
    expect(typedEntryPoints(MANIFEST)).toEqual({ '.': './dist/index.d.ts', './rpc': './dist/rpc.d.ts' });
    expect(typedEntryPoints({ exports: { types: './a.d.ts', default: './a.js' } })).toEqual({
      '.': './a.d.ts',
    });
    expect(typedEntryPoints({ exports: './index.js' })).toEqual({});
  });

  it('reads values and types of every entry point from the built .d.ts, renames and re-exports included', () => {
    expect(readPackageApi(builtPackage())).toEqual({
      '.': {
        values: ['ACME_SUPPORTS', 'ADAPTER_ID', 'AcmeError', 'connect'],
        types: ['AcmeAdapter', 'AcmeOptions', 'Frame'],
      },
      './rpc': { values: ['PROGRAM'], types: ['Frame'] },
    });
  });

  it('fails without api.json, passes once written, and names each change after that', () => {
    const dir = builtPackage();
    expect(checkPackageApi(dir)).toEqual([
      'api.json is missing; run `node scripts/check-packages.mjs --write-api` and commit it',
    ]);
    expect(checkPackageApi(dir, { write: true })).toEqual([]);
    const written = readFileSync(join(dir, API_FILE), 'utf8');
    expect(written).toBe(formatApi(readPackageApi(dir)));
    expect(JSON.parse(written)['./rpc']).toEqual({ values: ['PROGRAM'], types: ['Frame'] });
    expect(checkPackageApi(dir)).toEqual([]);

    // An export added, one removed, one turned from a type into a value, and an entry point dropped.
    writeFileSync(
      join(dir, 'dist/index.d.ts'),
      INDEX_DTS.replace('export interface AcmeOptions { uri: string }', 'export declare class AcmeOptions {}')
        .replace('export declare const ADAPTER_ID = "acme";', '')
        .concat('export declare function parseDomainXml(xml: string): object;\n'),
    );
    const manifest = structuredClone(MANIFEST);
    delete manifest.exports['./rpc'];
    writeFileSync(join(dir, 'package.json'), JSON.stringify(manifest));
    const problems = checkPackageApi(dir);
    expect(problems[0]).toMatch(/^the exports differ from api\.json \(\+ added, - removed\); if the change/);
    expect(problems.slice(1)).toEqual([
      "    - ADAPTER_ID (value) in '.'",
      "    ~ AcmeOptions in '.': was a type, now a value",
      "    + parseDomainXml (value) in '.'",
      "    - entry point './rpc'",
    ]);
  });

  it('names a new entry point and a missing build', () => {
    expect(
      apiDifferences(
        { '.': { values: ['a'], types: [] } },
        {
          '.': { values: ['a'], types: [] },
          './soap': { values: ['x', 'y'], types: ['T'] },
        },
      ),
    ).toEqual(["+ entry point './soap' (2 values, 1 types)"]);
    const dir = builtPackage();
    rmSync(join(dir, 'dist/rpc.d.ts'));
    expect(checkPackageApi(dir)).toEqual([
      expect.stringMatching(/dist\/rpc\.d\.ts \(entry point '\.\/rpc'\) does not exist; build first$/),
    ]);
  });

  it('refuses an unknown option or package on the command line (exit code 2)', async () => {
    const fails = (args) =>
      run(process.execPath, [script, ...args]).then(
        () => undefined,
        (error) => ({ code: error.code, stderr: error.stderr }),
      );
    expect(await fails(['--write-apis'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('unknown option --write-apis'),
    });
    expect(await fails(['--write-api', 'no-such-package'])).toMatchObject({
      code: 2,
      stderr: expect.stringContaining('no public package named no-such-package'),
    });
  });
});
