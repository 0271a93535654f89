/**
 * scripts/core-peers.mjs on a tiny monorepo written to a temporary directory: a core with two exports and
 * one adapter package that imports them, with the changesets and peer ranges each test needs.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import {
  checkCorePeers,
  coreExports,
  coreImportsOf,
  floorOf,
  rangeFor,
  releaseExports,
  writeExportsRecord,
} from './core-peers.mjs';

const roots = [];
afterEach(() => {
  for (const root of roots.splice(0)) rmSync(root, { recursive: true, force: true });
});

function write(root, files) {
  for (const [name, content] of Object.entries(files)) {
    const path = join(root, name);
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, typeof content === 'string' ? content : `${JSON.stringify(content, null, 2)}\n`);
  }
}

const changeset = (releases) =>
  `---\n${Object.entries(releases)
    .map(([name, type]) => `'${name}': ${type}`)
    .join('\n')}\n---\n\nA change.\n`;

/**
 * The fake monorepo. `exportsRecord` is core's exports.json (omitted: none written), `peer` the adapter's
 * range for @hvkit/core, `changesets` the pending ones.
 */
function monorepo({ coreVersion = '0.3.0', exportsRecord, peer = '>=0.3.0 <1.0.0', changesets = {} } = {}) {
  const root = mkdtempSync(join(tmpdir(), 'hvkit-core-peers-'));
  roots.push(root);
  write(root, {
    'package.json': { name: 'fake', private: true, workspaces: ['packages/*'] },
    '.changeset/config.json': {
      changelog: false,
      commit: false,
      fixed: [],
      linked: [],
      access: 'public',
      baseBranch: 'main',
      updateInternalDependencies: 'patch',
      ignore: [],
      // As in the repository: a core release does not by itself release the packages that peer on it.
      ___experimentalUnsafeOptions_WILL_CHANGE_IN_PATCH: { onlyUpdatePeerDependentsWhenOutOfRange: true },
    },
    'packages/core/package.json': {
      name: '@hvkit/core',
      version: coreVersion,
      type: 'module',
      exports: { '.': { '@hvkit/source': './src/index.ts', import: './dist/index.js' } },
    },
    'packages/core/tsconfig.json': {
      compilerOptions: {
        strict: true,
        target: 'ES2022',
        module: 'ESNext',
        moduleResolution: 'Bundler',
        noEmit: true,
        types: [],
      },
      include: ['src'],
    },
    'packages/core/src/index.ts':
      "export { helper } from './helper';\nexport type Options = { verbose?: boolean };\n",
    'packages/core/src/helper.ts': 'export function helper(): number {\n  return 1;\n}\n',
    'packages/acme/package.json': {
      name: '@hvkit/acme',
      version: '0.1.0',
      type: 'module',
      peerDependencies: { '@hvkit/core': peer },
    },
    'packages/acme/src/index.ts':
      "import { helper, type Options } from '@hvkit/core';\nexport const run = (o: Options = {}) => helper() + (o.verbose ? 1 : 0);\n",
    'packages/acme/src/index.test.ts': "import { notExported } from '@hvkit/core';\nnotExported();\n",
  });
  if (exportsRecord) write(root, { 'packages/core/exports.json': exportsRecord });
  for (const [name, releases] of Object.entries(changesets))
    write(root, { [`.changeset/${name}.md`]: changeset(releases) });
  return root;
}

const released = (since) => ({ '.': { Options: '0.1.0', helper: since } });

describe('core-peers', () => {
  it('writes peer ranges in the project form and reads their floor back', () => {
    expect(rangeFor('0.4.0')).toBe('>=0.4.0 <1.0.0');
    expect(rangeFor('1.2.0')).toBe('^1.2.0');
    expect(floorOf('>=0.4.0 <1.0.0')).toBe('0.4.0');
    expect(floorOf('^1.2.0')).toBe('1.2.0');
    expect(floorOf('^0.4.0')).toBeUndefined();
    expect(floorOf('>=1.0.0 <1.0.0')).toBeUndefined();
    expect(floorOf('*')).toBeUndefined();
  });

  it("reads core's exports and what a package imports (its tests left out)", () => {
    const root = monorepo();
    expect(coreExports(root)).toEqual({ '.': ['Options', 'helper'] });
    const { imports, problems } = coreImportsOf(join(root, 'packages/acme'), root);
    expect(problems).toEqual([]);
    expect(Object.fromEntries(Object.entries(imports).map(([k, v]) => [k, [...v].sort()]))).toEqual({
      '.': ['Options', 'helper'],
    });
  });

  it('passes a consistent monorepo', async () => {
    const root = monorepo({ exportsRecord: released('0.2.0') });
    const { problems, summary } = await checkCorePeers({ root });
    expect(problems).toEqual([]);
    expect(summary).toEqual([
      '@hvkit/acme: >=0.3.0 <1.0.0; imports 2 core export(s), newest released one from 0.2.0',
    ]);
  });

  it('fails a peer range whose floor is below a core release the package needs', async () => {
    const root = monorepo({ exportsRecord: released('0.3.0'), peer: '>=0.2.0 <1.0.0' });
    const { problems } = await checkCorePeers({ root });
    expect(problems).toEqual([
      "@hvkit/acme: imports 'helper' (core 0.3.0 and later) but its peer range starts at 0.2.0",
    ]);
  });

  it('fails a peer range in another form, or one that excludes the current core', async () => {
    const caret = await checkCorePeers({
      root: monorepo({ exportsRecord: released('0.2.0'), peer: '^0.3.0' }),
    });
    expect(caret.problems).toEqual([
      '@hvkit/acme: peer range "^0.3.0" for @hvkit/core is not in the form ">=0.3.0 <1.0.0"',
    ]);
    const ahead = await checkCorePeers({
      root: monorepo({ exportsRecord: released('0.2.0'), peer: '>=0.4.0 <1.0.0' }),
    });
    expect(ahead.problems).toEqual([
      "@hvkit/acme: peer range >=0.4.0 <1.0.0 does not include core's version 0.3.0",
    ]);
  });

  it('fails an unreleased export without a changeset releasing core and the package that imports it', async () => {
    const record = { '.': { Options: '0.1.0', helper: 'unreleased' } };
    const none = await checkCorePeers({ root: monorepo({ exportsRecord: record }) });
    expect(none.problems).toEqual([
      'core has 1 unreleased export(s) but no pending changeset releases @hvkit/core; add one',
      "@hvkit/acme: imports core's unreleased helper but has no pending changeset; add one, so that it is released with its floor raised to the next core",
    ]);
    const coreOnly = await checkCorePeers({
      root: monorepo({ exportsRecord: record, changesets: { a: { '@hvkit/core': 'minor' } } }),
    });
    expect(coreOnly.problems).toEqual([
      "@hvkit/acme: imports core's unreleased helper but has no pending changeset; add one, so that it is released with its floor raised to the next core",
    ]);
    const both = await checkCorePeers({
      root: monorepo({
        exportsRecord: record,
        changesets: { a: { '@hvkit/core': 'minor' }, b: { '@hvkit/acme': 'patch' } },
      }),
    });
    expect(both.problems).toEqual([]);
  });

  it('fails an exports.json that does not list what core exports, and --write fixes it', async () => {
    const root = monorepo({ exportsRecord: { '.': { helper: '0.2.0', gone: '0.1.0' } } });
    expect((await checkCorePeers({ root })).problems).toEqual([
      "core exports Options from '.' but exports.json does not list them (run `node scripts/core-peers.mjs --write`)",
      "exports.json lists gone for '.', which core no longer exports (run `node scripts/core-peers.mjs --write`)",
      "@hvkit/acme: imports 'Options' from '@hvkit/core', which core does not export",
    ]);
    writeExportsRecord({ root });
    const record = JSON.parse(readFileSync(join(root, 'packages/core/exports.json'), 'utf8'));
    expect(record['.']).toEqual({ Options: 'unreleased', helper: '0.2.0' });
  });

  it('--release stamps unreleased exports with the new core version and raises floors', () => {
    const root = monorepo({
      coreVersion: '0.4.0',
      exportsRecord: { '.': { Options: '0.1.0', helper: 'unreleased' } },
      peer: '>=0.3.0 <1.0.0',
    });
    releaseExports({ root });
    const record = JSON.parse(readFileSync(join(root, 'packages/core/exports.json'), 'utf8'));
    expect(record['.']).toEqual({ Options: '0.1.0', helper: '0.4.0' });
    const acme = JSON.parse(readFileSync(join(root, 'packages/acme/package.json'), 'utf8'));
    expect(acme.peerDependencies['@hvkit/core']).toBe('>=0.4.0 <1.0.0');
  });
});
