/**
 * Applies one limits policy to every guest whose name matches a pattern: CPU weight, a CPU cap and a soft
 * memory limit, live and persistent for running guests, persistent for stopped ones. `--dry-run` only
 * validates (an invalid policy is rejected before anything changes).
 *
 * Usage: npm run apply-limits -w @hvkit-examples/kvm -- <name regex> [--dry-run]
 */

import { type ResourceLimits, validateLimits } from '@hvkit/core';
import { connectFromEnv } from './connect';

const [pattern = '.*', flag] = process.argv.slice(2);
const adapter = await connectFromEnv();
try {
  const re = new RegExp(pattern);
  // The policy, without the fields this driver cannot set (the test driver has no CPU limits).
  const lim = adapter.supports.limits;
  const policy: ResourceLimits = { memory: { softBytes: 512 * 1024 * 1024 } };
  if (lim !== false && lim.cpu.weight && lim.cpu.maxCores) policy.cpu = { weight: 200, maxCores: 1.5 };
  validateLimits(policy, lim, { adapter: adapter.adapter });
  for (const g of await adapter.inventory!.listGuests()) {
    if (!re.test(g.name)) continue;
    if (flag === '--dry-run') {
      console.log(`${g.name}: would apply ${JSON.stringify(policy)}`);
      continue;
    }
    const result = await adapter.limits!.set(g.id, policy);
    console.log(
      `${g.name}: applied (${result.appliesAt})`,
      JSON.stringify({ cpu: result.limits.cpu, memory: result.limits.memory }),
    );
    for (const w of result.warnings) console.log(`  warning: ${w.field ?? ''} ${w.message}`);
  }
} finally {
  await adapter.close();
}
