#!/usr/bin/env node
/**
 * Checks what every public workspace package would publish, the way a user installs it:
 *
 * - publint in strict mode (warnings count as errors) on the packed files;
 * - @arethetypeswrong/cli with the `strict` profile, which resolves every entry point under
 *   node10, node16 from CommonJS, node16 from ESM and bundler;
 * - the public API: the export names (values and types) of each entry point, read from the built `.d.ts`
 *   with the TypeScript compiler, must equal the package's committed `api.json`, so an export cannot be
 *   added, removed or moved unnoticed; `--write-api` rewrites `api.json` from the build;
 * - the `@hvkit/core` peer ranges: each package's floor is a core release that has every core export it
 *   imports (scripts/core-peers.mjs, which explains the rules).
 *
 * Packages under packages/* with `"private": true` are skipped. Build first (`npm run check:packages`
 * does `turbo run build` before this script).
 *
 * Usage: node scripts/check-packages.mjs [--write-api] [package-name-or-dir ...]
 * Exit code: 0 when every package is clean, 1 when any has a problem, 2 on bad usage.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
import ts from 'typescript';
import { checkCorePeers } from './core-peers.mjs';

const run = promisify(execFile);
const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const attwBin = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'attw.cmd' : 'attw');
const ATTW_PROFILE = 'strict';
const RESOLUTIONS = ['node10', 'node16-cjs', 'node16-esm', 'bundler'];

/** Public workspace packages under packages/*, optionally filtered by name or directory. */
function listPackages(filters) {
  const dir = join(root, 'packages');
  const all = readdirSync(dir, { withFileTypes: true })
    .filter((d) => d.isDirectory() && existsSync(join(dir, d.name, 'package.json')))
    .map((d) => {
      const pkgDir = join(dir, d.name);
      const manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8'));
      return { dir: pkgDir, name: manifest.name, manifest };
    })
    .filter((p) => p.manifest.private !== true)
    .sort((a, b) => a.name.localeCompare(b.name));
  if (filters.length === 0) return all;
  const picked = all.filter((p) => filters.some((f) => f === p.name || f === basename(p.dir)));
  const unknown = filters.filter((f) => !all.some((p) => f === p.name || f === basename(p.dir)));
  if (unknown.length > 0) {
    console.error(`check-packages: no public package named ${unknown.join(', ')}`);
    process.exit(2);
  }
  return picked;
}

/** Entry files named in the manifest that do not exist (a missing build gives confusing tool output). */
function missingBuildOutput(pkg) {
  const targets = new Set();
  const walk = (value) => {
    if (typeof value === 'string') targets.add(value);
    else if (value && typeof value === 'object') for (const v of Object.values(value)) walk(v);
  };
  for (const field of ['main', 'module', 'types']) walk(pkg.manifest[field]);
  walk(pkg.manifest.exports);
  return [...targets].filter((t) => t.startsWith('./dist/') && !existsSync(join(pkg.dir, t)));
}

async function runPublint(pkg) {
  const { messages, pkg: manifest } = await publint({ pkgDir: pkg.dir, strict: true, pack: 'npm' });
  const format = (m) => `${m.type}: ${formatMessage(m, manifest, { color: false }) ?? m.code}`;
  return {
    errors: messages.filter((m) => m.type === 'error').map(format),
    notes: messages.filter((m) => m.type !== 'error').map(format),
  };
}

async function runAttw(pkg) {
  // `--pack` runs `npm pack` in the package directory and deletes the tarball afterwards.
  const args = ['--pack', pkg.dir, '--profile', ATTW_PROFILE, '--format', 'json'];
  let stdout;
  try {
    ({ stdout } = await run(attwBin, args, { cwd: root, maxBuffer: 64 * 1024 * 1024 }));
  } catch (error) {
    // attw exits 1 when it finds problems and still prints its JSON report.
    if (typeof error?.stdout !== 'string' || error.stdout.trim() === '') {
      return { problems: [`attw failed: ${(error?.stderr || error?.message || String(error)).trim()}`] };
    }
    stdout = error.stdout;
  }
  const report = JSON.parse(stdout);
  const analysis = report.analysis ?? {};
  if (!analysis.types) return { problems: ['package ships no type declarations'] };
  const problems = (analysis.problems ?? [])
    .filter((p) => !p.resolutionKind || RESOLUTIONS.includes(p.resolutionKind))
    .map((p) => {
      const where = [p.entrypoint, p.resolutionKind].filter(Boolean).join(' @ ');
      return where ? `${p.kind} (${where})` : p.kind;
    });
  return { problems, entrypoints: Object.keys(analysis.entrypoints ?? {}) };
}

// ------------------------------------------------------------------------------------------- api.json

/** The file, next to package.json, that records a package's public API. */
export const API_FILE = 'api.json';

/**
 * The entry points of a package manifest and the `.d.ts` each resolves to for an ESM importer:
 * `{ '.': './dist/index.d.ts', './rpc': './dist/rpc.d.ts' }`. `./package.json` and entries without types
 * are left out.
 */
export function typedEntryPoints(manifest) {
  let map = manifest.exports ?? {};
  if (typeof map === 'string' || !Object.keys(map).some((key) => key.startsWith('.'))) map = { '.': map };
  const out = {};
  for (const [subpath, target] of Object.entries(map)) {
    if (subpath === './package.json') continue;
    const types = typesOf(target);
    if (types) out[subpath] = types;
  }
  return out;
}

function typesOf(target) {
  if (typeof target === 'string') return /\.d\.(m|c)?ts$/.test(target) ? target : undefined;
  if (!target || typeof target !== 'object') return undefined;
  for (const key of ['import', 'types', 'default']) {
    if (!(key in target)) continue;
    const found = key === 'types' && typeof target.types === 'string' ? target.types : typesOf(target[key]);
    if (found) return found;
  }
  return undefined;
}

/**
 * The export names of each entry point of a built package, from its `.d.ts` files: `{ subpath: { values,
 * types } }`, each list sorted. A name that is a value (function, class, const, enum, namespace with
 * values) is under `values`, even when it is also a type; a name that is only a type (interface, type
 * alias) is under `types`.
 *
 * @throws Error when an entry point's `.d.ts` is missing (build first).
 */
export function readPackageApi(
  pkgDir,
  manifest = JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')),
) {
  const entries = typedEntryPoints(manifest);
  const files = Object.fromEntries(
    Object.entries(entries).map(([subpath, file]) => [subpath, join(pkgDir, file)]),
  );
  for (const [subpath, file] of Object.entries(files)) {
    if (!existsSync(file))
      throw new Error(`${relative(root, file)} (entry point '${subpath}') does not exist; build first`);
  }
  const program = ts.createProgram(Object.values(files), {
    noEmit: true,
    skipLibCheck: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
  });
  const checker = program.getTypeChecker();
  const api = {};
  for (const subpath of Object.keys(files).sort()) {
    const source = program.getSourceFile(files[subpath]);
    const module = source && checker.getSymbolAtLocation(source);
    const values = [];
    const types = [];
    for (const symbol of module ? checker.getExportsOfModule(module) : []) {
      const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
      (target.flags & ts.SymbolFlags.Value ? values : types).push(symbol.getName());
    }
    api[subpath] = { values: values.sort(), types: types.sort() };
  }
  return api;
}

/**
 * The differences between a committed API record and the built one, one line each (empty when equal):
 * entry points added or removed, and names added, removed or moved between values and types.
 */
export function apiDifferences(recorded, actual) {
  const lines = [];
  const subpaths = [...new Set([...Object.keys(recorded ?? {}), ...Object.keys(actual)])].sort();
  for (const subpath of subpaths) {
    const before = recorded?.[subpath];
    const after = actual[subpath];
    if (!before) {
      lines.push(`+ entry point '${subpath}' (${after.values.length} values, ${after.types.length} types)`);
      continue;
    }
    if (!after) {
      lines.push(`- entry point '${subpath}'`);
      continue;
    }
    const kindOf = (record, name) =>
      record.values?.includes(name) ? 'value' : record.types?.includes(name) ? 'type' : undefined;
    const names = [
      ...new Set([...(before.values ?? []), ...(before.types ?? []), ...after.values, ...after.types]),
    ].sort();
    for (const name of names) {
      const was = kindOf(before, name);
      const is = kindOf(after, name);
      if (was === is) continue;
      if (!was) lines.push(`+ ${name} (${is}) in '${subpath}'`);
      else if (!is) lines.push(`- ${name} (${was}) in '${subpath}'`);
      else lines.push(`~ ${name} in '${subpath}': was a ${was}, now a ${is}`);
    }
  }
  return lines;
}

/** `api.json` text for an API record (stable: sorted, two-space indented, newline at the end). */
export function formatApi(api) {
  const sorted = {};
  for (const subpath of Object.keys(api).sort()) {
    sorted[subpath] = { values: [...api[subpath].values].sort(), types: [...api[subpath].types].sort() };
  }
  return `${JSON.stringify(sorted, null, 2)}\n`;
}

/**
 * Compares a built package's exports with its `api.json`. Returns problems (empty when they match).
 * With `write`, rewrites `api.json` instead and returns no problems.
 */
export function checkPackageApi(pkgDir, { write = false } = {}) {
  const file = join(pkgDir, API_FILE);
  let actual;
  try {
    actual = readPackageApi(pkgDir);
  } catch (error) {
    return [error.message];
  }
  if (write) {
    writeFileSync(file, formatApi(actual));
    return [];
  }
  if (!existsSync(file)) {
    return [`${API_FILE} is missing; run \`node scripts/check-packages.mjs --write-api\` and commit it`];
  }
  let recorded;
  try {
    recorded = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    return [`${API_FILE} is not JSON: ${error.message}`];
  }
  const differences = apiDifferences(recorded, actual);
  if (differences.length === 0) return [];
  return [
    `the exports differ from ${API_FILE} (+ added, - removed); if the change is meant, run \`node scripts/check-packages.mjs --write-api\`, commit ${API_FILE} and list removed or moved exports in a changeset:`,
    ...differences.map((d) => `    ${d}`),
  ];
}

function table(rows) {
  const header = ['package', 'publint --strict', `attw --profile ${ATTW_PROFILE}`, API_FILE];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main() {
  const args = process.argv.slice(2);
  const writeApi = args.includes('--write-api');
  const unknownFlags = args.filter((a) => a.startsWith('--') && a !== '--write-api');
  if (unknownFlags.length > 0) {
    console.error(`check-packages: unknown option ${unknownFlags.join(', ')}`);
    console.error('Usage: node scripts/check-packages.mjs [--write-api] [package-name-or-dir ...]');
    process.exit(2);
  }
  const packages = listPackages(args.filter((a) => !a.startsWith('--')));
  if (writeApi) {
    let failed = false;
    for (const pkg of packages) {
      const problems = checkPackageApi(pkg.dir, { write: true });
      if (problems.length > 0) failed = true;
      for (const p of problems) console.error(`${pkg.name}: ${p}`);
      if (problems.length === 0)
        console.log(`check-packages: wrote ${relative(root, join(pkg.dir, API_FILE))}`);
    }
    if (failed) process.exitCode = 1;
    return;
  }
  if (packages.length === 0) {
    console.log('check-packages: no public packages under packages/*');
    return;
  }
  const rows = [];
  let failed = false;
  for (const pkg of packages) {
    const where = relative(root, pkg.dir);
    const missing = missingBuildOutput(pkg);
    if (missing.length > 0) {
      failed = true;
      rows.push([pkg.name, 'not built', 'not built', 'not built']);
      console.error(`\n${pkg.name} (${where}): missing ${missing.join(', ')}; run \`npm run build\` first`);
      continue;
    }
    const [lint, types] = [await runPublint(pkg), await runAttw(pkg)];
    const api = checkPackageApi(pkg.dir);
    if (lint.errors.length > 0 || types.problems.length > 0 || api.length > 0) failed = true;
    rows.push([
      pkg.name,
      lint.errors.length === 0 ? 'ok' : `${lint.errors.length} error(s)`,
      types.problems.length === 0
        ? `ok (${types.entrypoints.length} entry points)`
        : `${types.problems.length} problem(s)`,
      api.length === 0 ? 'ok' : 'differs',
    ]);
    const details = [
      ...lint.errors,
      ...lint.notes,
      ...types.problems.map((p) => `attw: ${p}`),
      ...api.map((p) => `${API_FILE}: ${p}`),
    ];
    if (details.length > 0) {
      console.log(`\n${pkg.name} (${where}):`);
      for (const d of details) console.log(`  - ${d}`);
    }
  }
  console.log(`\n${table(rows)}\n`);
  console.log(`attw resolutions checked: ${RESOLUTIONS.join(', ')}`);
  const peers = await checkCorePeers();
  for (const line of peers.summary) console.log(`core peer range: ${line}`);
  for (const problem of peers.problems) console.error(`core peer range: ${problem}`);
  if (peers.problems.length > 0) failed = true;
  if (failed) {
    console.error('check-packages: FAILED');
    process.exitCode = 1;
  } else {
    console.log('check-packages: all packages ok');
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
