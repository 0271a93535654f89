#!/usr/bin/env node
/**
 * Typechecks every TypeScript block of the documentation, so no snippet users copy rots.
 *
 * Reads README.md, CONTRIBUTING.md, docs/**\/*.md and each workspace package's README.md, takes every
 * fenced block whose language is `ts` or `typescript`, writes each one as a module into `.snippets/`
 * (git-ignored) next to a tsconfig that extends the repository's strict one (the workspace packages resolve
 * to their sources through the `@hvkit/source` condition), and compiles them together. Errors are reported
 * at their line in the Markdown file.
 *
 * A block is a module on its own: it imports what it uses and declares what it needs. The only shared
 * declarations are in scripts/snippets-prelude.d.ts (keep it short and honest). A block that is not meant
 * to compile (a signature, an excerpt) says so in its info string with a reason:
 *
 *   ```ts nocheck: an excerpt of the options interface
 *
 * Usage: node scripts/check-snippets.mjs [--keep]   (--keep leaves .snippets/ behind after a success)
 * Exit status: 0 when every block compiles, 1 otherwise.
 */

import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');
const OUT = join(ROOT, '.snippets');
const PRELUDE = join(ROOT, 'scripts', 'snippets-prelude.d.ts');
const LANGUAGES = new Set(['ts', 'typescript']);

/** The Markdown files whose snippets are checked, relative to the root. */
function markdownFiles() {
  const files = ['README.md', 'CONTRIBUTING.md'];
  const walk = (dir) => {
    for (const name of readdirSync(join(ROOT, dir)).sort()) {
      const path = join(dir, name);
      if (statSync(join(ROOT, path)).isDirectory()) walk(path);
      else if (name.endsWith('.md')) files.push(path);
    }
  };
  walk('docs');
  for (const parent of ['packages', 'examples']) {
    for (const name of readdirSync(join(ROOT, parent)).sort()) {
      const readme = join(parent, name, 'README.md');
      try {
        if (statSync(join(ROOT, readme)).isFile()) files.push(readme);
      } catch {
        // no README in this workspace
      }
    }
  }
  return files.filter((file) => {
    try {
      return statSync(join(ROOT, file)).isFile();
    } catch {
      return false;
    }
  });
}

/**
 * The fenced blocks of one Markdown text: `{ info, code, line }` with `line` the 1-based line of the
 * block's first code line. Fences may be indented (inside lists); the indent is removed from the code.
 */
function fencedBlocks(text) {
  const lines = text.split('\n');
  const blocks = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^( {0,3})(`{3,}|~{3,})\s*(.*)$/.exec(lines[i]);
    if (!open) continue;
    const [, indent, fence, info] = open;
    const body = [];
    let j = i + 1;
    for (; j < lines.length; j++) {
      const line = lines[j];
      const close = new RegExp(`^ {0,3}${fence[0]}{${fence.length},}\\s*$`);
      if (close.test(line)) break;
      body.push(line.startsWith(indent) ? line.slice(indent.length) : line.trimStart());
    }
    blocks.push({ info: info.trim(), code: body.join('\n'), line: i + 2 });
    i = j;
  }
  return blocks;
}

function main() {
  const keep = process.argv.includes('--keep');
  const problems = [];
  const snippets = [];
  let skipped = 0;
  for (const file of markdownFiles()) {
    const text = readFileSync(join(ROOT, file), 'utf8');
    for (const block of fencedBlocks(text)) {
      const [language = '', ...rest] = block.info.split(/\s+/);
      if (!LANGUAGES.has(language.toLowerCase())) continue;
      const flags = rest.join(' ');
      if (/^nocheck\b/.test(flags)) {
        if (!/^nocheck\s*:?\s*\S/.test(flags)) {
          problems.push(
            `${file}:${block.line - 1}: a \`${language} nocheck\` block needs a reason (\`${language} nocheck: why\`).`,
          );
        }
        skipped++;
        continue;
      }
      const name = `${file.replace(/[^A-Za-z0-9]+/g, '_')}_L${block.line}.ts`;
      snippets.push({ file, line: block.line, name, code: block.code });
    }
  }

  rmSync(OUT, { recursive: true, force: true });
  mkdirSync(OUT, { recursive: true });
  const tsconfig = {
    extends: '../tsconfig.base.json',
    compilerOptions: { noEmit: true, noUnusedLocals: false },
    include: ['*.ts', ...(existsSync(PRELUDE) ? [relative(OUT, PRELUDE)] : [])],
  };
  writeFileSync(join(OUT, 'tsconfig.json'), `${JSON.stringify(tsconfig, null, 2)}\n`);
  const byPath = new Map();
  for (const snippet of snippets) {
    const path = join(OUT, snippet.name);
    // Every block is a module (imports, top-level await); the trailing export makes sure of it.
    writeFileSync(path, `${snippet.code}\nexport {};\n`);
    byPath.set(path, snippet);
  }

  const configPath = join(OUT, 'tsconfig.json');
  const config = ts.getParsedCommandLineOfConfigFile(
    configPath,
    {},
    {
      ...ts.sys,
      onUnRecoverableConfigFileDiagnostic: (d) =>
        problems.push(ts.flattenDiagnosticMessageText(d.messageText, '\n')),
    },
  );
  if (config) {
    const program = ts.createProgram({ rootNames: config.fileNames, options: config.options });
    for (const d of ts.getPreEmitDiagnostics(program)) {
      const message = ts.flattenDiagnosticMessageText(d.messageText, '\n    ');
      const snippet = d.file ? byPath.get(d.file.fileName) : undefined;
      if (d.file && snippet && d.start !== undefined) {
        const { line } = d.file.getLineAndCharacterOfPosition(d.start);
        problems.push(`${snippet.file}:${snippet.line + line}: error TS${d.code}: ${message}`);
      } else if (d.file && d.start !== undefined) {
        const { line } = d.file.getLineAndCharacterOfPosition(d.start);
        problems.push(`${relative(ROOT, d.file.fileName)}:${line + 1}: error TS${d.code}: ${message}`);
      } else {
        problems.push(`error TS${d.code}: ${message}`);
      }
    }
  }

  if (problems.length > 0) {
    for (const problem of problems) console.error(problem);
    console.error(
      `check-snippets: ${problems.length} problem(s) in ${snippets.length} TypeScript block(s); ` +
        `the generated files are in ${relative(ROOT, OUT)}/ (npx tsc -p ${relative(ROOT, OUT)}).`,
    );
    process.exitCode = 1;
    return;
  }
  if (!keep) rmSync(OUT, { recursive: true, force: true });
  console.log(
    `check-snippets: ${snippets.length} TypeScript block(s) typecheck` +
      (skipped > 0 ? ` (${skipped} marked nocheck)` : '') +
      '.',
  );
}

main();
