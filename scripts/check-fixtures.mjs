#!/usr/bin/env node
// Checks every packages/*/test/fixtures folder (any **/test/fixtures under the repository) for secrets
// left in recorded fixtures and for folders without a valid fixture.json. Exits 1 on any finding.
//
// Run from the repository root:  npm run check:fixtures
// (= node --conditions=@hvkit/source --import tsx scripts/check-fixtures.mjs [root] [--json])
// The scanner is the TypeScript source of @hvkit/conformance/fixtures, loaded through tsx; no build needed.
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const args = process.argv.slice(2);
const json = args.includes('--json');
const root = resolve(args.find((a) => !a.startsWith('--')) ?? resolve(here, '..'));

let scanner;
try {
  scanner = await import('../packages/conformance/src/fixtures/secret-scan.ts');
} catch (error) {
  console.error(
    'check-fixtures: cannot load the scanner; run it as `node --conditions=@hvkit/source --import tsx scripts/check-fixtures.mjs`',
  );
  console.error(error);
  process.exit(2);
}

const result = await scanner.scanForSecrets(root);
if (json) {
  console.log(JSON.stringify(result, null, 2));
} else {
  for (const w of result.warnings) console.warn(`warning: ${w}`);
  if (result.findings.length > 0) {
    console.error(scanner.formatFindings(result.findings));
    console.error(
      `\ncheck-fixtures: ${result.findings.length} problem(s) in ${result.fixtureFolders.length} fixture folder(s). ` +
        'Normalise fixtures before committing them (normalise() from @hvkit/conformance/fixtures).',
    );
  } else {
    console.log(
      `check-fixtures: ${result.fixtureFolders.length} fixture folder(s), ${result.filesScanned} file(s) scanned, no secrets found.`,
    );
  }
}
process.exit(result.findings.length > 0 ? 1 : 0);
