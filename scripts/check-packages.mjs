#!/usr/bin/env node
/**
 * Checks what every public workspace package would publish, the way a user installs it:
 *
 * - publint in strict mode (warnings count as errors) on the packed files;
 * - @arethetypeswrong/cli with the `strict` profile, which resolves every entry point under
 *   node10, node16 from CommonJS, node16 from ESM and bundler;
 * - the `@hvkit/core` peer ranges: each package's floor is a core release that has every core export it
 *   imports (scripts/core-peers.mjs, which explains the rules).
 *
 * Packages under packages/* with `"private": true` are skipped. Build first (`npm run check:packages`
 * does `turbo run build` before this script).
 *
 * Usage: node scripts/check-packages.mjs [package-name-or-dir ...]
 * Exit code: 0 when every package is clean, 1 when any has a problem, 2 on bad usage.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { publint } from 'publint';
import { formatMessage } from 'publint/utils';
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

function table(rows) {
  const header = ['package', 'publint --strict', `attw --profile ${ATTW_PROFILE}`];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i].length)));
  const line = (cells) => `| ${cells.map((c, i) => c.padEnd(widths[i])).join(' | ')} |`;
  return [line(header), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

async function main() {
  const packages = listPackages(process.argv.slice(2));
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
      rows.push([pkg.name, 'not built', 'not built']);
      console.error(`\n${pkg.name} (${where}): missing ${missing.join(', ')}; run \`npm run build\` first`);
      continue;
    }
    const [lint, types] = [await runPublint(pkg), await runAttw(pkg)];
    if (lint.errors.length > 0 || types.problems.length > 0) failed = true;
    rows.push([
      pkg.name,
      lint.errors.length === 0 ? 'ok' : `${lint.errors.length} error(s)`,
      types.problems.length === 0
        ? `ok (${types.entrypoints.length} entry points)`
        : `${types.problems.length} problem(s)`,
    ]);
    const details = [...lint.errors, ...lint.notes, ...types.problems.map((p) => `attw: ${p}`)];
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

main().catch((error) => {
  console.error(error);
  process.exitCode = 1;
});
