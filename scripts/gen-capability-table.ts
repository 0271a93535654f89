/**
 * Prints the markdown capability table of an adapter from its exported `supports` manifest constant.
 *
 *   node --conditions=@hvkit/source --import tsx scripts/gen-capability-table.ts @hvkit/vmware-vsphere VMWARE_VSPHERE_SUPPORTS
 *
 * Arguments: the module to import (package name or path) and the name of the exported manifest. The table
 * lists every leaf of the manifest (`limits.cpu.weight`, `backups.methods`, ...) with ✓ / ✗ or the value,
 * so docs can paste it between `<!-- capabilities:begin -->` / `<!-- capabilities:end -->` markers.
 */

import { pathToFileURL } from 'node:url';
import type { SupportsManifest } from '@hvkit/core';

/** One table row: a dotted manifest path and its rendered value. */
export interface CapabilityRow {
  capability: string;
  path: string;
  value: string;
}

function render(value: unknown): string {
  if (value === true) return '✓';
  if (value === false) return '✗';
  if (Array.isArray(value)) return value.length ? value.map((v) => `\`${String(v)}\``).join(', ') : '–';
  return `\`${String(value)}\``;
}

/** Flattens a manifest into rows, in declaration order; a capability that is `false` is one row. */
export function capabilityRows(
  supports: SupportsManifest | Readonly<Record<string, unknown>>,
): CapabilityRow[] {
  const rows: CapabilityRow[] = [];
  const walk = (capability: string, path: string[], value: unknown) => {
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      for (const [k, v] of Object.entries(value)) walk(capability, [...path, k], v);
      return;
    }
    rows.push({ capability, path: path.join('.') || '(all)', value: render(value) });
  };
  for (const [capability, value] of Object.entries(supports)) walk(capability, [], value);
  return rows;
}

/** The markdown table of {@link capabilityRows}. */
export function capabilityTable(supports: SupportsManifest | Readonly<Record<string, unknown>>): string {
  const lines = ['| Capability | Field | Supported |', '|---|---|---|'];
  let last = '';
  for (const row of capabilityRows(supports)) {
    lines.push(`| ${row.capability === last ? '' : `**${row.capability}**`} | ${row.path} | ${row.value} |`);
    last = row.capability;
  }
  return lines.join('\n');
}

async function main(argv: string[]): Promise<void> {
  const [specifier, exportName] = argv;
  if (!specifier || !exportName) {
    console.error('usage: gen-capability-table.ts <module> <exported supports constant>');
    process.exitCode = 2;
    return;
  }
  const target =
    specifier.startsWith('.') || specifier.startsWith('/') ? pathToFileURL(specifier).href : specifier;
  const mod = (await import(target)) as Record<string, unknown>;
  const supports = mod[exportName];
  if (typeof supports !== 'object' || supports === null) {
    console.error(`${specifier} has no exported object ${exportName}`);
    process.exitCode = 1;
    return;
  }
  console.log(capabilityTable(supports as SupportsManifest));
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) await main(process.argv.slice(2));
