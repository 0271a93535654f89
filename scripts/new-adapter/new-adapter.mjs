#!/usr/bin/env node
/**
 * Generates a new adapter package in the layout every hvkit adapter shares (docs/adding-an-adapter.md).
 *
 *   npm run new-adapter -- <id> --transport http|dialer|exec|files [--title "Acme HV"] [--no-install] [--no-record]
 *
 * Writes packages/<id>/ (package.json, configs, api.json, README.md, src/ with every file of the layout,
 * test/ with the recorder, replay options and the stub's own fixture), docs/adapters/<id>.md,
 * examples/<id>-inventory/, a changeset, and the rows in README.md and docs/README.md. Then it records
 * the stub's fixture with the package's own test/record.ts and runs `npm install` to link the workspace
 * (`--no-record`, `--no-install` leave those out).
 *
 * Bad input (an invalid or taken id, an unknown transport) is refused before anything is written; when a
 * later step fails, everything written is removed again.
 *
 * Exit code: 0 on success, 1 when a step failed, 2 on bad usage.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { rangeFor } from '../core-peers.mjs';

const here = dirname(fileURLToPath(import.meta.url));
const ROOT = join(here, '..', '..');
const TEMPLATES = join(here, 'templates');

/** Transports a generated protocol stub can use. */
export const TRANSPORTS = ['http', 'dialer', 'exec', 'files'];

/** Ids that name something else in the repository or on npm's @hvkit scope. */
const RESERVED = new Set([
  'core',
  'ssh',
  'conformance',
  'cli',
  'hvkit',
  'testing',
  'examples',
  'docs',
  'scripts',
]);

const ID_RE = /^[a-z][a-z0-9]*(?:-[a-z0-9]+)*$/;

/** What each transport puts into the README, docs page and example. */
const TRANSPORT_INFO = {
  http: {
    text: 'HTTP (JSON over an injectable `fetch`; core’s undici client with verified TLS by default)',
    liveVariables: '`{{ENV}}_URL` (and `{{ENV}}_TOKEN` when it needs one)',
    example: `import { connect } from '@hvkit/{{id}}';

await using hv = await connect({
  url: 'https://{{id}}.example.net/api/',
  token: process.env.{{ENV}}_TOKEN ?? '',
});
console.log(hv.server.product, hv.server.version);
if (hv.supports.inventory) {
  for (const guest of (await hv.inventory?.listGuests()) ?? []) console.log(guest.name, guest.powerState);
}`,
    exampleMain: `const url = process.env.{{ENV}}_URL;
if (!url) throw new Error('set {{ENV}}_URL (and {{ENV}}_TOKEN) to the server to read');
const token = process.env.{{ENV}}_TOKEN;
await using hv = await connect({ url, ...(token ? { token } : {}), insecureHttp: process.env.{{ENV}}_INSECURE_HTTP === '1' });`,
    options: [
      ['url', 'Base URL of the API (`https://…`).'],
      ['token', 'API token, sent as `Authorization: Bearer`; never appears in an error.'],
      ['insecureHttp', 'The named opt-out for a plain `http://` URL (labs, replays).'],
      [
        'tls',
        '`ca`, `pinnedSha256`, `servername` or the named opt-out `insecureSkipVerify` (core’s `TlsSettings`).',
      ],
      ['fetch', 'A fetch to use instead of the adapter’s own client (recording, replay, proxies).'],
      ['timeoutMs', 'Default timeout of one request (30 s).'],
      ['logger', 'Receives one debug line per call.'],
      ['signal', 'Aborts connecting.'],
    ],
    errors:
      'HTTP statuses map through `HTTP_STATUS_CODES` (401 `AUTH_FAILED`, 403 `PERMISSION_DENIED`, 404 `NOT_FOUND`, 409 `CONFLICT`, 400/422 `INVALID_ARGUMENT`, 408/504 `TIMEOUT`, 405/501 `UNSUPPORTED`, others `REMOTE`); redirects are refused (`PROTOCOL`), bodies are bounded (1 MiB).',
  },
  dialer: {
    text: 'a byte stream (TCP by default, or any core `Dialer`: unix socket, TLS, an SSH channel) carrying length-prefixed JSON frames',
    liveVariables: '`{{ENV}}_HOST` and `{{ENV}}_PORT`',
    example: `import { connect } from '@hvkit/{{id}}';

await using hv = await connect({ host: '{{id}}.example.net', port: 7070 });
console.log(hv.server.product, hv.server.version);
if (hv.supports.inventory) {
  for (const guest of (await hv.inventory?.listGuests()) ?? []) console.log(guest.name, guest.powerState);
}`,
    exampleMain: `const host = process.env.{{ENV}}_HOST;
const port = Number(process.env.{{ENV}}_PORT);
if (!host || !port) throw new Error('set {{ENV}}_HOST and {{ENV}}_PORT to the server to read');
await using hv = await connect({ host, port });`,
    options: [
      ['host, port', 'The server’s TCP address (a plain TCP dialer).'],
      ['dialer', 'Any core `Dialer` instead (unix socket, TLS, SSH channel, record/replay).'],
      ['timeoutMs', 'Default timeout of one call (30 s).'],
      ['logger', 'Receives one debug line per call.'],
      ['signal', 'Aborts connecting.'],
    ],
    errors:
      'The server’s error codes map through `BACKEND_ERROR_CODES` (`no-such-object` `NOT_FOUND`, `denied` `PERMISSION_DENIED`, …, others `REMOTE`); frames above 1 MiB and malformed frames are `PROTOCOL`; a closed stream is `CONNECTION_LOST`.',
  },
  exec: {
    text: 'commands run through a core `ExecTransport` (local by default, or `@hvkit/ssh` with every argument quoted)',
    liveVariables: '`{{ENV}}_TARGET` (`local`)',
    example: `import { createLocalExec } from '@hvkit/core';
import { connect } from '@hvkit/{{id}}';

await using hv = await connect({ exec: createLocalExec() });
console.log(hv.server.product, hv.server.version);
if (hv.supports.inventory) {
  for (const guest of (await hv.inventory?.listGuests()) ?? []) console.log(guest.name, guest.powerState);
}`,
    exampleMain: `await using hv = await connect({});`,
    options: [
      [
        'exec',
        'The `ExecTransport` commands run through (default: local, no shell; `connectSsh()` of `@hvkit/ssh` for a remote host).',
      ],
      ['timeoutMs', 'Default timeout of one command (30 s).'],
      ['logger', 'Receives one debug line per call.'],
      ['signal', 'Aborts connecting.'],
    ],
    errors:
      'A command that fails maps through `EXIT_STATUS_CODES` and the stderr patterns of `STDERR_CODES` (`not found` `NOT_FOUND`, `permission denied` `PERMISSION_DENIED`, …, others `REMOTE`); output is bounded (1 MiB).',
  },
  files: {
    text: 'files read through a core `FilesTransport` (local by default, or SFTP from `@hvkit/ssh`)',
    liveVariables: '`{{ENV}}_ROOT` (the directory the backend’s files live under, e.g. `/`)',
    example: `import { connect } from '@hvkit/{{id}}';

await using hv = await connect({ root: '/' });
console.log(hv.server.product, hv.server.version);
if (hv.supports.inventory) {
  for (const guest of (await hv.inventory?.listGuests()) ?? []) console.log(guest.name, guest.powerState);
}`,
    exampleMain: `await using hv = await connect({ root: process.env.{{ENV}}_ROOT ?? '/' });`,
    options: [
      [
        'files',
        'The `FilesTransport` to read through (default: local files; SFTP from `@hvkit/ssh` for a remote host).',
      ],
      ['root', 'Directory the backend’s files live under (default `/`).'],
      ['timeoutMs', 'Default timeout of one read (30 s).'],
      ['logger', 'Receives one debug line per call.'],
      ['signal', 'Aborts connecting.'],
    ],
    errors:
      'File errors arrive typed from the transport (`ENOENT` `NOT_FOUND`, `EACCES` `PERMISSION_DENIED`, …); content the backend should not produce (empty, too large, not text) maps through `BACKEND_ERROR_CODES` to `PROTOCOL`.',
  },
};

class UsageError extends Error {}

function pascal(id) {
  return id
    .split('-')
    .map((p) => p[0].toUpperCase() + p.slice(1))
    .join('');
}

/** Parses and checks the command line; throws UsageError with a clear message. */
export function parseArgs(argv) {
  const args = { id: undefined, transport: undefined, title: undefined, install: true, record: true };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--transport' || a === '--title') {
      const value = argv[++i];
      if (value === undefined || value.startsWith('--')) throw new UsageError(`${a} needs a value`);
      args[a.slice(2)] = value;
    } else if (a.startsWith('--transport=')) args.transport = a.slice('--transport='.length);
    else if (a.startsWith('--title=')) args.title = a.slice('--title='.length);
    else if (a === '--no-install') args.install = false;
    else if (a === '--no-record') args.record = false;
    else if (a.startsWith('-')) throw new UsageError(`unknown option ${a}`);
    else if (args.id === undefined) args.id = a;
    else throw new UsageError(`unexpected argument ${JSON.stringify(a)}`);
  }
  if (args.id === undefined) throw new UsageError('missing the adapter id');
  if (!ID_RE.test(args.id) || args.id.length > 40) {
    throw new UsageError(
      `invalid adapter id ${JSON.stringify(args.id)}: use lower-case kebab-case of letters and digits, starting with a letter (e.g. acme or acme-hv), at most 40 characters`,
    );
  }
  if (RESERVED.has(args.id))
    throw new UsageError(`the id ${JSON.stringify(args.id)} is reserved (it names another part of hvkit)`);
  if (args.transport === undefined)
    throw new UsageError(`missing --transport (one of ${TRANSPORTS.join(', ')})`);
  if (!TRANSPORTS.includes(args.transport)) {
    throw new UsageError(
      `unknown transport ${JSON.stringify(args.transport)}: use one of ${TRANSPORTS.join(', ')}`,
    );
  }
  if (args.title !== undefined && (args.title.trim() === '' || /[\n`|<>]/.test(args.title))) {
    throw new UsageError('--title must be one line without `, |, < or >');
  }
  return args;
}

function fill(text, vars) {
  return text.replace(/\{\{(\w+)\}\}/g, (m, name) => {
    if (!(name in vars)) throw new Error(`template placeholder ${m} has no value`);
    return vars[name];
  });
}

/** Template files under a directory: relative path (without `.tmpl`) -> text. */
function readTemplates(dir) {
  const out = {};
  const walk = (d) => {
    for (const name of readdirSync(d).sort()) {
      const path = join(d, name);
      if (statSync(path).isDirectory()) walk(path);
      else if (name.endsWith('.tmpl'))
        out[relative(dir, path).slice(0, -'.tmpl'.length)] = readFileSync(path, 'utf8');
    }
  };
  walk(dir);
  return out;
}

function capabilityTable() {
  // The table scripts/gen-capability-table.ts prints for a manifest with every capability false.
  const rows = ['inventory', 'limits', 'labels', 'backups', 'events'].map((c) => `| **${c}** | (all) | ✗ |`);
  return ['| Capability | Field | Supported |', '|---|---|---|', ...rows].join('\n');
}

function json(value) {
  return `${JSON.stringify(value, null, 2)}\n`;
}

/** Every file to write, relative to the root, and the edits of shared files. */
export function plan(args, root = ROOT) {
  const { id, transport } = args;
  const Name = pascal(id);
  const CONST = id.replace(/-/g, '_').toUpperCase();
  const ENV = `HVKIT_${CONST}`;
  const title = args.title ?? Name;
  const info = TRANSPORT_INFO[transport];
  const base = { id, Name, CONST, ENV, title, camel: Name[0].toLowerCase() + Name.slice(1), transport };
  const vars = {
    ...base,
    transportText: info.text,
    example: fill(info.example, base),
    liveVariables: fill(info.liveVariables, base),
    optionsTable: [
      '| Option | Meaning |',
      '|---|---|',
      ...info.options.map(([k, v]) => `| \`${k.replace(', ', '`, `')}\` | ${v} |`),
    ].join('\n'),
    errorsText: info.errors,
    capabilityTable: capabilityTable(),
  };
  const coreVersion = JSON.parse(
    readFileSync(join(root, 'packages', 'core', 'package.json'), 'utf8'),
  ).version;
  const pkgDir = `packages/${id}`;
  const files = {};
  const templates = {
    ...readTemplates(join(TEMPLATES, 'common')),
    ...readTemplates(join(TEMPLATES, transport)),
  };
  for (const [path, text] of Object.entries(templates)) {
    if (path === 'docs/adapter.md') continue;
    files[`${pkgDir}/${path}`] = fill(text, vars);
  }
  files[`${pkgDir}/package.json`] = json({
    name: `@hvkit/${id}`,
    version: '0.0.0',
    description: `hvkit adapter for ${title}: spec v1 over ${transport === 'http' ? 'HTTP' : `a core ${pascal(transport)} transport`}.`,
    license: 'Apache-2.0',
    repository: { type: 'git', url: 'git+https://github.com/hvkit/hvkit.git', directory: pkgDir },
    type: 'module',
    sideEffects: false,
    exports: {
      '.': {
        '@hvkit/source': './src/index.ts',
        import: { types: './dist/index.d.ts', default: './dist/index.js' },
        require: { types: './dist/index.d.cts', default: './dist/index.cjs' },
      },
      './package.json': './package.json',
    },
    main: './dist/index.cjs',
    module: './dist/index.js',
    types: './dist/index.d.cts',
    files: ['dist', 'src', '!src/**/*.test.ts', '!src/**/__samples__', 'README.md'],
    engines: { node: '>=20.19' },
    scripts: {
      build: 'tsup',
      test: 'vitest run',
      typecheck: 'tsc --noEmit -p tsconfig.json',
      lint: 'biome check .',
    },
    peerDependencies: { '@hvkit/core': rangeFor(coreVersion) },
    devDependencies: { '@hvkit/conformance': '*', '@hvkit/core': '*' },
    publishConfig: { access: 'public', provenance: true },
  });
  files[`${pkgDir}/api.json`] = json({
    '.': {
      values: ['ADAPTER_ID', `${CONST}_SUPPORTS`, 'connect'].sort(),
      types: [`${Name}Adapter`, `${Name}Options`].sort(),
    },
  });
  files[`docs/adapters/${id}.md`] = fill(templates['docs/adapter.md'], vars);
  const exampleDir = `examples/${id}-inventory`;
  files[`${exampleDir}/package.json`] = json({
    name: `@hvkit-examples/${id}-inventory`,
    version: '0.0.0',
    private: true,
    type: 'module',
    description: `${title} example: what the server is, what the adapter supports, and its guests when it lists them.`,
    scripts: { start: 'node --conditions=@hvkit/source --import tsx src/main.ts' },
    dependencies: { '@hvkit/core': '*', [`@hvkit/${id}`]: '*' },
  });
  files[`${exampleDir}/src/main.ts`] = fill(
    `/**
 * Prints what the {{id}} server is, what the adapter supports, and its guests when it lists them.
 *
 *   npm start -w @hvkit-examples/{{id}}-inventory
 */

import { hasCapability } from '@hvkit/core';
import { connect } from '@hvkit/{{id}}';

${info.exampleMain}
console.log(\`\${hv.server.product} \${hv.server.version}\`);
console.log(JSON.stringify(hv.supports, null, 2));
if (hasCapability(hv, 'inventory')) {
  for (const guest of await hv.inventory.listGuests()) console.log(guest.name, guest.powerState);
} else {
  console.log('inventory: not supported yet (supports.inventory is false)');
}
`,
    base,
  );
  files[`.changeset/${id}-adapter.md`] = fill(
    `---
'@hvkit/{{id}}': minor
---

New adapter package \`@hvkit/{{id}}\` for {{title}}: \`connect()\`, \`{{Name}}Options\`, \`{{Name}}Adapter\`,
\`{{CONST}}_SUPPORTS\` and \`ADAPTER_ID\`, generated by \`npm run new-adapter\`. Every capability is still \`false\`
in its manifest.
`,
    base,
  );
  return { files, vars, pkgDir, exampleDir };
}

/**
 * Puts the adapter's row into a status table: in place of a `planned` row that already names the package
 * (README.md lists the adapters on the roadmap), else after the last row whose status column says
 * `available`.
 */
export function addRow(text, row, file, id) {
  const lines = text.split('\n');
  const name = `\`@hvkit/${id}\``;
  const planned = lines.findIndex((l) => l.includes(name) && /^\|.*\|\s*planned\s*\|\s*$/.test(l));
  if (planned >= 0) {
    lines[planned] = row;
    return lines.join('\n');
  }
  let at = -1;
  for (let i = 0; i < lines.length; i++) if (/^\|.*\|\s*available\s*\|\s*$/.test(lines[i])) at = i;
  if (at < 0) throw new Error(`${file}: found no table row with status "available" to add the adapter after`);
  lines.splice(at + 1, 0, row);
  return lines.join('\n');
}

/** The edits of README.md and docs/README.md. */
function sharedEdits(root, vars) {
  const { id, title } = vars;
  const readme = join(root, 'README.md');
  const docs = join(root, 'docs', 'README.md');
  return {
    [readme]: addRow(
      readFileSync(readme, 'utf8'),
      `| [\`@hvkit/${id}\`](packages/${id}) | ${title} (new: every capability still \`false\`) | available |`,
      'README.md',
      id,
    ),
    [docs]: addRow(
      readFileSync(docs, 'utf8'),
      `| [${title}](adapters/${id}.md) | \`@hvkit/${id}\` | available |`,
      'docs/README.md',
      id,
    ),
  };
}

function run(cmd, argv, root) {
  execFileSync(cmd, argv, { cwd: root, stdio: 'inherit', env: process.env });
}

/** Generates the adapter; returns the list of written paths (relative to root). */
export function generate(args, root = ROOT) {
  const { files, vars, pkgDir, exampleDir } = plan(args, root);
  const taken = [
    pkgDir,
    exampleDir,
    `docs/adapters/${args.id}.md`,
    `.changeset/${args.id}-adapter.md`,
  ].filter((p) => existsSync(join(root, p)));
  if (taken.length > 0)
    throw new UsageError(`the id ${JSON.stringify(args.id)} is taken: ${taken.join(', ')} already exist(s)`);
  const edits = sharedEdits(root, vars);
  const originals = Object.fromEntries(Object.keys(edits).map((f) => [f, readFileSync(f, 'utf8')]));
  const lockFile = join(root, 'package-lock.json');
  const lock = existsSync(lockFile) ? readFileSync(lockFile, 'utf8') : undefined;
  const written = [];
  try {
    for (const [path, text] of Object.entries(files)) {
      mkdirSync(dirname(join(root, path)), { recursive: true });
      writeFileSync(join(root, path), text);
      written.push(path);
    }
    for (const [file, text] of Object.entries(edits)) writeFileSync(file, text);
    // The templates are written plainly; biome lays them out (and pads the new table rows) as `npm run lint` wants.
    const biome = join(root, 'node_modules', '.bin', process.platform === 'win32' ? 'biome.cmd' : 'biome');
    run(
      biome,
      [
        'check',
        '--write',
        '--no-errors-on-unmatched',
        ...written,
        ...Object.keys(edits).map((f) => relative(root, f)),
      ],
      root,
    );
    if (args.record) {
      run(
        process.execPath,
        ['--conditions=@hvkit/source', '--import', 'tsx', `${pkgDir}/test/record.ts`],
        root,
      );
    }
    if (args.install)
      run(process.platform === 'win32' ? 'npm.cmd' : 'npm', ['install', '--no-audit', '--no-fund'], root);
  } catch (error) {
    for (const dir of [pkgDir, exampleDir]) rmSync(join(root, dir), { recursive: true, force: true });
    for (const path of written) rmSync(join(root, path), { force: true });
    for (const [file, text] of Object.entries(originals)) writeFileSync(file, text);
    if (lock !== undefined) writeFileSync(lockFile, lock);
    rmSync(join(root, 'node_modules', '@hvkit', args.id), { force: true });
    throw error;
  }
  return written;
}

function main() {
  let args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (error) {
    if (!(error instanceof UsageError)) throw error;
    console.error(`new-adapter: ${error.message}`);
    console.error(
      'usage: npm run new-adapter -- <id> --transport http|dialer|exec|files [--title "Name"] [--no-install] [--no-record]',
    );
    process.exit(2);
  }
  try {
    const written = generate(args);
    console.log(
      `new-adapter: wrote ${written.length} files for @hvkit/${args.id} (${args.transport}), and rows in README.md and docs/README.md.`,
    );
    console.log(
      'next: fill in src/protocol/client.ts, turn capabilities on in src/supports.ts, re-record with test/record.ts; see docs/adding-an-adapter.md',
    );
    if (!args.install)
      console.log('run `npm install` to link the new workspace and update package-lock.json');
  } catch (error) {
    if (error instanceof UsageError) {
      console.error(`new-adapter: ${error.message}; nothing written`);
      process.exit(2);
    }
    console.error(
      `new-adapter: ${error instanceof Error ? error.message : String(error)}; everything written was removed again`,
    );
    process.exit(1);
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) main();
