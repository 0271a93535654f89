#!/usr/bin/env node
/**
 * Keeps each package's `@hvkit/core` peer range honest: its lower bound (the "floor") must be a core
 * release that has every core export the package imports.
 *
 * `packages/core/exports.json` records, for each entry point of core (`.`, `./testing`), every export
 * (values and types) and the first core version that has it, or `"unreleased"` for exports added since
 * core's last release. The check (run by `npm run check:packages`, and before `changeset publish`) fails
 * when:
 *
 * - the file does not list exactly the exports core has (fix: `node scripts/core-peers.mjs --write`, which
 *   adds new exports as `"unreleased"` and drops removed ones);
 * - a peer range is not `>=<floor> <1.0.0` (core 0.x) or `^<floor>` (core 1.0 and later), or does not
 *   include core's current version;
 * - a package imports an export first released after its floor;
 * - there are unreleased exports but no pending changeset releases core, or a package imports an
 *   unreleased export but is not itself in the pending release (its raised floor could not be published).
 *
 * `npm run ci:version` runs `changeset version` and then this script with `--release`: unreleased exports
 * get core's new version, and every package's floor is raised to the newest `since` of what it imports.
 * (changesets leaves an in-range peer range alone: `onlyUpdatePeerDependentsWhenOutOfRange`.)
 *
 * Usage: node scripts/core-peers.mjs [--write | --release]
 * Exit code: 0 when consistent (or after writing), 1 on a problem.
 */
import { readdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

/** The repository this script belongs to; every function takes another root (a test's copy) as an option. */
const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');
const CORE = '@hvkit/core';
const coreDirOf = (root) => join(root, 'packages', 'core');
const exportsFileOf = (root) => join(coreDirOf(root), 'exports.json');
const UNRELEASED = 'unreleased';
const COMMENT =
  'First core version that has each export, or "unreleased". Checked by scripts/core-peers.mjs (npm run check:packages); `node scripts/core-peers.mjs --write` adds new exports.';

const readJson = (file) => JSON.parse(readFileSync(file, 'utf8'));
const writeJson = (file, value) => writeFileSync(file, `${JSON.stringify(value, null, 2)}\n`);

/** `1.2.3` (a prerelease suffix is ignored) as numbers, or undefined. */
function parseVersion(text) {
  const m = /^(\d+)\.(\d+)\.(\d+)(?:-[0-9A-Za-z.-]+)?$/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

function compareVersions(a, b) {
  const [x, y] = [parseVersion(a), parseVersion(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return x[i] - y[i];
  return 0;
}

/** The floor of a peer range in the project's form, or undefined when the range has another form. */
export function floorOf(range) {
  const zero = /^>=(\d+\.\d+\.\d+) <1\.0\.0$/.exec(range);
  if (zero && parseVersion(zero[1])[0] === 0) return zero[1];
  const caret = /^\^(\d+\.\d+\.\d+)$/.exec(range);
  if (caret && parseVersion(caret[1])[0] >= 1) return caret[1];
  return undefined;
}

/** The peer range the project writes for a floor. */
export function rangeFor(floor) {
  return parseVersion(floor)[0] === 0 ? `>=${floor} <1.0.0` : `^${floor}`;
}

/** Core's entry points: subpath -> source file (through the `@hvkit/source` condition). */
function coreEntryPoints(root) {
  const coreDir = coreDirOf(root);
  const manifest = readJson(join(coreDir, 'package.json'));
  const entries = {};
  for (const [subpath, target] of Object.entries(manifest.exports ?? {})) {
    const source = typeof target === 'object' && target ? target['@hvkit/source'] : undefined;
    if (typeof source === 'string') entries[subpath] = join(coreDir, source);
  }
  return entries;
}

/** Every export name of each core entry point (values and types), sorted. */
export function coreExports(root = repoRoot) {
  const coreDir = coreDirOf(root);
  const entries = coreEntryPoints(root);
  const config = ts.getParsedCommandLineOfConfigFile(
    join(coreDir, 'tsconfig.json'),
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) => {
        throw new Error(ts.flattenDiagnosticMessageText(d.messageText, '\n'));
      },
    },
  );
  const program = ts.createProgram(Object.values(entries), { ...config.options, noEmit: true });
  const checker = program.getTypeChecker();
  const result = {};
  for (const [subpath, file] of Object.entries(entries)) {
    const source = program.getSourceFile(file);
    const symbol = source && checker.getSymbolAtLocation(source);
    if (!symbol) throw new Error(`core-peers: cannot read the exports of ${relative(root, file)}`);
    result[subpath] = checker
      .getExportsOfModule(symbol)
      .map((s) => s.getName())
      .sort();
  }
  return result;
}

/** Published source files of a package: src/**\/*.ts without tests and test helpers. */
function sourceFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const name of readdirSync(d)) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) {
        if (name !== '__test-utils__' && name !== '__fixtures__' && name !== 'node_modules') walk(path);
      } else if (/\.(m|c)?tsx?$/.test(name) && !/\.test\.(m|c)?tsx?$/.test(name) && !name.endsWith('.d.ts')) {
        out.push(path);
      }
    }
  };
  walk(join(dir, 'src'));
  return out;
}

/**
 * What a package's published sources import from core: `{ subpath: Set(name) }`, plus problems (a
 * namespace import, `export *` or a dynamic import cannot be checked name by name).
 */
export function coreImportsOf(dir, root = repoRoot) {
  const imports = {};
  const problems = [];
  const add = (specifier, name) => {
    const subpath = specifier === CORE ? '.' : `.${specifier.slice(CORE.length)}`;
    if (!imports[subpath]) imports[subpath] = new Set();
    imports[subpath].add(name);
  };
  const isCore = (node) =>
    node && ts.isStringLiteral(node) && (node.text === CORE || node.text.startsWith(`${CORE}/`));
  for (const file of sourceFiles(dir)) {
    const text = readFileSync(file, 'utf8');
    const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
    const where = (node) => {
      const { line } = source.getLineAndCharacterOfPosition(node.getStart());
      return `${relative(root, file)}:${line + 1}`;
    };
    const visit = (node) => {
      if (ts.isImportDeclaration(node) && isCore(node.moduleSpecifier)) {
        const clause = node.importClause;
        const bindings = clause?.namedBindings;
        if (clause?.name) problems.push(`${where(node)}: default import from ${node.moduleSpecifier.text}`);
        if (bindings && ts.isNamespaceImport(bindings)) {
          problems.push(
            `${where(node)}: namespace import of ${node.moduleSpecifier.text}; import names instead`,
          );
        } else if (bindings) {
          for (const e of bindings.elements) add(node.moduleSpecifier.text, (e.propertyName ?? e.name).text);
        }
      } else if (ts.isExportDeclaration(node) && isCore(node.moduleSpecifier)) {
        if (!node.exportClause || !ts.isNamedExports(node.exportClause)) {
          problems.push(
            `${where(node)}: \`export *\` from ${node.moduleSpecifier.text}; export names instead`,
          );
        } else {
          for (const e of node.exportClause.elements)
            add(node.moduleSpecifier.text, (e.propertyName ?? e.name).text);
        }
      } else if (
        ts.isImportTypeNode(node) &&
        ts.isLiteralTypeNode(node.argument) &&
        isCore(node.argument.literal)
      ) {
        let q = node.qualifier;
        while (q && ts.isQualifiedName(q)) q = q.left;
        if (q) add(node.argument.literal.text, q.text);
        else problems.push(`${where(node)}: import type of the whole ${node.argument.literal.text} module`);
      } else if (
        ts.isCallExpression(node) &&
        node.expression.kind === ts.SyntaxKind.ImportKeyword &&
        isCore(node.arguments[0])
      ) {
        problems.push(`${where(node)}: dynamic import of ${node.arguments[0].text}; import names statically`);
      }
      ts.forEachChild(node, visit);
    };
    visit(source);
  }
  return { imports, problems };
}

/** Public packages (not core) that peer-depend on core. */
function corePeers(root) {
  const coreDir = coreDirOf(root);
  const dir = join(root, 'packages');
  return readdirSync(dir)
    .map((name) => join(dir, name))
    .filter((d) => d !== coreDir && statSync(join(d, 'package.json'), { throwIfNoEntry: false }))
    .map((d) => ({ dir: d, file: join(d, 'package.json'), manifest: readJson(join(d, 'package.json')) }))
    .filter((p) => p.manifest.private !== true && p.manifest.peerDependencies?.[CORE] !== undefined)
    .sort((a, b) => a.manifest.name.localeCompare(b.manifest.name));
}

/** The pending release plan of changesets: package name -> new version. */
async function pendingReleases(root) {
  const require = createRequire(join(repoRoot, 'node_modules', '@changesets', 'cli', 'package.json'));
  const getReleasePlan = require('@changesets/get-release-plan').default;
  const plan = await getReleasePlan(root);
  return new Map(plan.releases.filter((r) => r.type !== 'none').map((r) => [r.name, r.newVersion]));
}

/** The recorded exports, updated to core's actual ones (new: unreleased; removed: dropped). */
function syncedRecord(actual, recorded) {
  const out = { $comment: COMMENT };
  for (const [subpath, names] of Object.entries(actual)) {
    out[subpath] = {};
    for (const name of names) out[subpath][name] = recorded?.[subpath]?.[name] ?? UNRELEASED;
  }
  return out;
}

/**
 * Checks everything described at the top. Returns a list of problems (empty when consistent) and a
 * summary line per package.
 */
export async function checkCorePeers({ root = repoRoot } = {}) {
  const coreDir = coreDirOf(root);
  const exportsFile = exportsFileOf(root);
  const problems = [];
  const summary = [];
  const coreVersion = readJson(join(coreDir, 'package.json')).version;
  const actual = coreExports(root);
  let recorded;
  try {
    recorded = readJson(exportsFile);
  } catch (error) {
    return { problems: [`cannot read ${relative(root, exportsFile)}: ${error.message}`], summary };
  }
  const fix = 'run `node scripts/core-peers.mjs --write`';
  for (const [subpath, names] of Object.entries(actual)) {
    const known = recorded[subpath] ?? {};
    const missing = names.filter((n) => !(n in known));
    const extra = Object.keys(known).filter((n) => !names.includes(n));
    if (missing.length > 0) {
      problems.push(
        `core exports ${missing.join(', ')} from '${subpath}' but exports.json does not list them (${fix})`,
      );
    }
    if (extra.length > 0) {
      problems.push(
        `exports.json lists ${extra.join(', ')} for '${subpath}', which core no longer exports (${fix})`,
      );
    }
    for (const [name, since] of Object.entries(known)) {
      if (since !== UNRELEASED && !parseVersion(since))
        problems.push(`exports.json: '${name}' has since "${since}"`);
      else if (since !== UNRELEASED && compareVersions(since, coreVersion) > 0) {
        problems.push(`exports.json: '${name}' since ${since}, after core's version ${coreVersion}`);
      }
    }
  }
  const unreleased = new Set(
    Object.entries(recorded)
      .filter(([k]) => k !== '$comment')
      .flatMap(([subpath, names]) =>
        Object.entries(names)
          .filter(([, since]) => since === UNRELEASED)
          .map(([name]) => `${subpath}:${name}`),
      ),
  );
  const pending = unreleased.size > 0 ? await pendingReleases(root) : new Map();
  if (unreleased.size > 0 && !pending.has(CORE)) {
    problems.push(
      `core has ${unreleased.size} unreleased export(s) but no pending changeset releases ${CORE}; add one`,
    );
  }
  for (const pkg of corePeers(root)) {
    const name = pkg.manifest.name;
    const range = pkg.manifest.peerDependencies[CORE];
    const floor = floorOf(range);
    if (!floor) {
      problems.push(
        `${name}: peer range ${JSON.stringify(range)} for ${CORE} is not in the form ${JSON.stringify(rangeFor(coreVersion))}`,
      );
      continue;
    }
    if (compareVersions(floor, coreVersion) > 0 || parseVersion(floor)[0] !== parseVersion(coreVersion)[0]) {
      problems.push(`${name}: peer range ${range} does not include core's version ${coreVersion}`);
    }
    const { imports, problems: importProblems } = coreImportsOf(pkg.dir, root);
    problems.push(...importProblems.map((p) => `${name}: ${p}`));
    let newest;
    let needsRelease = [];
    for (const [subpath, names] of Object.entries(imports)) {
      for (const n of names) {
        const since = recorded[subpath]?.[n];
        if (since === undefined) {
          problems.push(
            `${name}: imports '${n}' from '${CORE}${subpath.slice(1)}', which core does not export`,
          );
        } else if (since === UNRELEASED) {
          needsRelease.push(n);
        } else {
          if (compareVersions(since, floor) > 0) {
            problems.push(
              `${name}: imports '${n}' (core ${since} and later) but its peer range starts at ${floor}`,
            );
          }
          if (!newest || compareVersions(since, newest) > 0) newest = since;
        }
      }
    }
    needsRelease = needsRelease.sort();
    if (needsRelease.length > 0 && !pending.has(name)) {
      problems.push(
        `${name}: imports core's unreleased ${needsRelease.join(', ')} but has no pending changeset; add one, so that it is released with its floor raised to the next core`,
      );
    }
    summary.push(
      `${name}: ${range}; imports ${Object.values(imports).reduce((n, s) => n + s.size, 0)} core export(s)` +
        (needsRelease.length > 0 ? `, ${needsRelease.length} unreleased (floor raised at ci:version)` : '') +
        (newest ? `, newest released one from ${newest}` : ''),
    );
  }
  return { problems, summary };
}

/** `--write`: records new exports as unreleased, drops removed ones. */
export function writeExportsRecord({ root = repoRoot } = {}) {
  const exportsFile = exportsFileOf(root);
  let recorded = {};
  try {
    recorded = readJson(exportsFile);
  } catch {
    // starts empty
  }
  writeJson(exportsFile, syncedRecord(coreExports(root), recorded));
  console.log(`core-peers: wrote ${relative(root, exportsFile)}`);
}

/**
 * `--release` (after `changeset version`): unreleased exports get core's version; each package's floor
 * becomes the newest `since` of what it imports (never lowered).
 */
export function releaseExports({ root = repoRoot } = {}) {
  const exportsFile = exportsFileOf(root);
  const coreVersion = readJson(join(coreDirOf(root), 'package.json')).version;
  const record = syncedRecord(coreExports(root), readJson(exportsFile));
  for (const [subpath, names] of Object.entries(record)) {
    if (subpath === '$comment') continue;
    for (const name of Object.keys(names)) if (names[name] === UNRELEASED) names[name] = coreVersion;
  }
  writeJson(exportsFile, record);
  for (const pkg of corePeers(root)) {
    const range = pkg.manifest.peerDependencies[CORE];
    let floor = floorOf(range) ?? /\d+\.\d+\.\d+/.exec(range)?.[0] ?? '0.0.0';
    // A new core major starts a new floor (changesets rewrites an out-of-range peer as `>=X.0.0`).
    const major = `${parseVersion(coreVersion)[0]}.0.0`;
    if (compareVersions(floor, major) < 0) floor = major;
    const { imports } = coreImportsOf(pkg.dir, root);
    for (const [subpath, names] of Object.entries(imports)) {
      for (const n of names) {
        const since = record[subpath]?.[n];
        if (since && parseVersion(since) && compareVersions(since, floor) > 0) floor = since;
      }
    }
    const next = rangeFor(floor);
    if (next !== range) {
      pkg.manifest.peerDependencies[CORE] = next;
      writeJson(pkg.file, pkg.manifest);
      console.log(`core-peers: ${pkg.manifest.name} peer ${CORE} ${range} -> ${next}`);
    }
  }
}

async function main() {
  const args = process.argv.slice(2);
  if (args.some((a) => a !== '--write' && a !== '--release') || args.length > 1) {
    console.error('Usage: node scripts/core-peers.mjs [--write | --release]');
    process.exit(2);
  }
  if (args[0] === '--write') return writeExportsRecord();
  if (args[0] === '--release') return releaseExports();
  const { problems, summary } = await checkCorePeers();
  for (const line of summary) console.log(`core-peers: ${line}`);
  if (problems.length > 0) {
    for (const p of problems) console.error(`core-peers: ${p}`);
    process.exitCode = 1;
  } else {
    console.log('core-peers: peer ranges cover what each package imports from core');
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((error) => {
    console.error(error);
    process.exitCode = 1;
  });
}
