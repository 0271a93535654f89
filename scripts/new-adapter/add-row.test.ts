/** The status-table edit of `npm run new-adapter` (README.md and docs/README.md). */
import { describe, expect, it } from 'vitest';
import { addRow } from './new-adapter.mjs';

const TABLE = [
  '| Package | What | Status |',
  '| --- | --- | --- |',
  '| [`@hvkit/core`](packages/core) | core | available |',
  '| [`@hvkit/kvm`](packages/kvm) | kvm | available |',
  '| `@hvkit/lvm` | LVM volumes | planned |',
  '| `hvkit` | CLI | planned |',
  '',
].join('\n');

describe('addRow', () => {
  it('replaces the planned row that already names the package, and adds no second row', () => {
    const out = addRow(TABLE, '| [`@hvkit/lvm`](packages/lvm) | LVM | available |', 'README.md', 'lvm');
    const lines = out.split('\n');
    expect(lines.filter((l) => l.includes('`@hvkit/lvm`'))).toEqual([
      '| [`@hvkit/lvm`](packages/lvm) | LVM | available |',
    ]);
    expect(lines[4]).toBe('| [`@hvkit/lvm`](packages/lvm) | LVM | available |');
    expect(lines).toHaveLength(TABLE.split('\n').length);
  });

  it('adds a new adapter after the last available row when no planned row names it', () => {
    const out = addRow(TABLE, '| [`@hvkit/acme`](packages/acme) | Acme | available |', 'README.md', 'acme');
    const lines = out.split('\n');
    expect(lines[4]).toBe('| [`@hvkit/acme`](packages/acme) | Acme | available |');
    expect(lines[5]).toBe('| `@hvkit/lvm` | LVM volumes | planned |');
  });

  it('does not take a planned row of a package whose name only starts the same', () => {
    const out = addRow(TABLE, '| [`@hvkit/lv`](packages/lv) | LV | available |', 'README.md', 'lv');
    expect(out.split('\n').filter((l) => l.includes('planned'))).toHaveLength(2);
  });

  it('fails with the file name when the table has no available row', () => {
    expect(() => addRow('| a | b | planned |\n', '| x | y | available |', 'docs/README.md', 'x')).toThrow(
      /docs\/README.md/,
    );
  });
});
