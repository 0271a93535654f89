/**
 * Applies a limits policy: a JSON file of rules `{ "match": "<name regex>", "limits": ResourceLimits }`;
 * every guest whose name matches gets the rule's limits (first matching rule wins).
 *
 * Usage: npm run apply-limits -w @hvkit-examples/vsphere -- policy.json [--dry-run]
 */

import { readFileSync } from 'node:fs';
import { HvkitError, type ResourceLimits } from '@hvkit/core';
import { connectFromEnv } from './connect';

interface Rule {
  match: string;
  limits: ResourceLimits;
}

const [file, flag] = process.argv.slice(2);
if (!file) {
  console.error('usage: apply-limits.ts <policy.json> [--dry-run]');
  process.exit(2);
}
const rules = JSON.parse(readFileSync(file, 'utf8')) as Rule[];
const adapter = await connectFromEnv();
try {
  for (const guest of await adapter.inventory!.listGuests()) {
    const rule = rules.find((r) => new RegExp(r.match).test(guest.name));
    if (!rule || guest.isTemplate) continue;
    if (flag === '--dry-run') {
      console.log(`${guest.name}: would set ${JSON.stringify(rule.limits)}`);
      continue;
    }
    try {
      const result = await adapter.limits!.set(guest.id, rule.limits, { timeoutMs: 120_000 });
      console.log(
        `${guest.name}: ${JSON.stringify(result.limits.cpu)} ${JSON.stringify(result.limits.memory)}`,
      );
      for (const w of result.warnings) console.log(`    warning (${w.field ?? ''}): ${w.message}`);
    } catch (error) {
      if (!HvkitError.isInstance(error)) throw error;
      console.log(`${guest.name}: ${error.code} ${error.message}`);
    }
  }
} finally {
  await adapter.close();
}
