/**
 * `npm run new-adapter` end to end: copies the repository (the files git has, with node_modules linked
 * entry by entry and the @hvkit workspaces pointing into the copy) to a temporary directory, generates
 * adapters there, and checks what a contributor would run: lint, typecheck, check:packages and the
 * generated package's own tests (its replay conformance test reports every capability skipped because the
 * manifest says false). Bad input must be refused with a clear message and write nothing.
 */

import { execFileSync, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const bin = (name: string) => join(ROOT, 'node_modules', '.bin', name);
let copy: string;

function copyRepository(): string {
  const dest = mkdtempSync(join(tmpdir(), 'hvkit-new-adapter-'));
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: ROOT,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  for (const file of listed.split('\0')) {
    if (file === '' || !existsSync(join(ROOT, file))) continue;
    mkdirSync(dirname(join(dest, file)), { recursive: true });
    cpSync(join(ROOT, file), join(dest, file));
  }
  // node_modules: every entry linked to the real one, except the workspaces, which point into the copy.
  mkdirSync(join(dest, 'node_modules', '@hvkit'), { recursive: true });
  for (const name of readdirSync(join(ROOT, 'node_modules'))) {
    if (name !== '@hvkit') symlinkSync(join(ROOT, 'node_modules', name), join(dest, 'node_modules', name));
  }
  for (const name of readdirSync(join(dest, 'packages'))) {
    if (existsSync(join(dest, 'packages', name, 'package.json')))
      symlinkSync(join('..', '..', 'packages', name), join(dest, 'node_modules', '@hvkit', name));
  }
  return dest;
}

/** Runs a command in the copy; returns its status and output (stdout + stderr). */
function run(cmd: string, args: string[], cwd = copy): { status: number | null; output: string } {
  const result = spawnSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, HVKIT_LIVE: 'off', FORCE_COLOR: '0', NO_COLOR: '1' },
    maxBuffer: 64 * 1024 * 1024,
    timeout: 240_000,
  });
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

function ok(cmd: string, args: string[], cwd = copy): string {
  const { status, output } = run(cmd, args, cwd);
  if (status !== 0) throw new Error(`${cmd} ${args.join(' ')} exited ${status}:\n${output.slice(-4000)}`);
  return output;
}

/** What `npm install` does for a new workspace: link it under node_modules/@hvkit. */
function link(id: string): void {
  symlinkSync(join('..', '..', 'packages', id), join(copy, 'node_modules', '@hvkit', id));
}

function generate(id: string, transport: string): string {
  const output = ok(process.execPath, [
    'scripts/new-adapter/new-adapter.mjs',
    id,
    '--transport',
    transport,
    '--no-install',
  ]);
  link(id);
  return output;
}

/** Every file of the copy (outside node_modules and build output) with its size and mtime. */
function snapshot(): string[] {
  const out: string[] = [];
  const walk = (rel: string) => {
    for (const entry of readdirSync(join(copy, rel), { withFileTypes: true })) {
      if (['node_modules', 'dist', '.turbo', '.snippets'].includes(entry.name)) continue;
      const path = rel === '' ? entry.name : `${rel}/${entry.name}`;
      if (entry.isDirectory()) walk(path);
      else {
        const stat = statSync(join(copy, path));
        out.push(`${path}:${stat.size}:${stat.mtimeMs}`);
      }
    }
  };
  walk('');
  return out.sort();
}

beforeAll(() => {
  copy = copyRepository();
}, 120_000);

afterAll(() => {
  if (copy) rmSync(copy, { recursive: true, force: true });
});

describe('npm run new-adapter', () => {
  it('refuses bad input with a clear message and writes nothing', () => {
    const before = snapshot();
    const cases: [string[], RegExp][] = [
      [['Acme!', '--transport', 'http'], /invalid adapter id "Acme!"/],
      [['core', '--transport', 'http'], /the id "core" is reserved/],
      [['kvm-libvirt', '--transport', 'dialer'], /the id "kvm-libvirt" is taken: packages\/kvm-libvirt/],
      [
        ['acme', '--transport', 'carrier-pigeon'],
        /unknown transport "carrier-pigeon": use one of http, dialer, exec, files/,
      ],
      [['acme'], /missing --transport/],
      [['--transport', 'http'], /missing the adapter id/],
      [['acme', '--transport', 'http', '--force'], /unknown option --force/],
    ];
    for (const [args, message] of cases) {
      const { status, output } = run(process.execPath, ['scripts/new-adapter/new-adapter.mjs', ...args]);
      expect(status, output).toBe(2);
      expect(output).toMatch(message);
    }
    expect(snapshot()).toEqual(before);
  });

  it('generates an http adapter that passes lint, typecheck, check:packages and its conformance test', () => {
    const output = generate('acme', 'http');
    expect(output).toMatch(/4 passed, 0 failed, 10 skipped/);
    for (const path of [
      'packages/acme/src/index.ts',
      'packages/acme/src/connect.ts',
      'packages/acme/src/supports.ts',
      'packages/acme/src/context.ts',
      'packages/acme/src/errors.ts',
      'packages/acme/src/capabilities/inventory.ts',
      'packages/acme/src/capabilities/events.ts',
      'packages/acme/src/mapping/hypervisor.ts',
      'packages/acme/src/protocol/client.ts',
      'packages/acme/src/conformance.test.ts',
      'packages/acme/src/conformance.live.test.ts',
      'packages/acme/test/record.ts',
      'packages/acme/test/replay-options.ts',
      'packages/acme/test/fixtures/stub/cassette.json',
      'packages/acme/test/fixtures/stub/fixture.json',
      'packages/acme/api.json',
      'packages/acme/README.md',
      'docs/adapters/acme.md',
      'examples/acme-inventory/src/main.ts',
      '.changeset/acme-adapter.md',
    ]) {
      expect(existsSync(join(copy, path)), path).toBe(true);
    }
    expect(readFileSync(join(copy, 'README.md'), 'utf8')).toMatch(/\[`@hvkit\/acme`\]\(packages\/acme\)/);
    expect(readFileSync(join(copy, 'docs/README.md'), 'utf8')).toMatch(/\(adapters\/acme\.md\)/);
    expect(readFileSync(join(copy, 'docs/adapters/acme.md'), 'utf8')).toMatch(
      /<!-- capabilities:begin -->[\s\S]*\*\*inventory\*\*[\s\S]*<!-- capabilities:end -->/,
    );

    ok(bin('biome'), ['check', '.']);
    ok(bin('tsc'), ['--noEmit', '-p', 'packages/acme/tsconfig.json']);
    ok(bin('tsc'), ['--noEmit', '-p', 'tsconfig.json']);
    ok(process.execPath, ['scripts/check-snippets.mjs']);

    // check:packages for the new package: build it and what it needs (core), then publint, attw and the
    // core peer range (which needs the generated changeset).
    ok(bin('tsup'), [], join(copy, 'packages', 'core'));
    ok(bin('tsup'), [], join(copy, 'packages', 'acme'));
    const checked = ok(process.execPath, ['scripts/check-packages.mjs', '@hvkit/acme']);
    expect(checked).toMatch(/check-packages: all packages ok/);

    const tests = ok(bin('vitest'), ['run', '--reporter=verbose'], join(copy, 'packages', 'acme'));
    for (const capability of ['inventory', 'limits', 'labels', 'backups', 'events']) {
      expect(tests).toContain(`not supported by adapter (supports.${capability} = false)`);
    }
    expect(tests).toMatch(/used every recorded interaction/);
    expect(tests).not.toMatch(/fixture.*missing|no fixture/i);
    expect(tests).toMatch(/Test Files\s+4 passed \| 1 skipped/);
  }, 300_000);

  it.each([
    ['acme-sock', 'dialer'],
    ['acme-exec', 'exec'],
    ['acme-files', 'files'],
  ])(
    'generates %s (%s) that lints, typechecks and passes its replay conformance test',
    (id, transport) => {
      generate(id, transport);
      ok(bin('biome'), ['check', `packages/${id}`, `examples/${id}-inventory`, `docs/adapters/${id}.md`]);
      ok(bin('tsc'), ['--noEmit', '-p', `packages/${id}/tsconfig.json`]);
      const tests = ok(bin('vitest'), ['run', 'src/conformance.test.ts'], join(copy, 'packages', id));
      expect(tests).toMatch(/15 tests \| 10 skipped/);
    },
    120_000,
  );
});
