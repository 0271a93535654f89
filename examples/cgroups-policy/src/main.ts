/**
 * Applies a limits policy file to every guest group of a host: libvirt's groups, systemd machine scopes
 * and the extra groups you name. Each guest gets the limits of the first rule whose `match` (a regular
 * expression) matches its name. Without `--apply` it only prints what would change (a dry run); the
 * policy is validated against the host's manifest first either way, so a bad policy changes nothing.
 *
 * Writes are live only: libvirt and systemd may rewrite a guest's groups when it restarts, so re-run this
 * after restarts (or set the limits in the domain XML / unit files for persistence). `apply: 'persistent'`
 * is UNSUPPORTED by @hvkit/cgroups.
 *
 * Usage:
 *   npm start -w @hvkit-examples/cgroups-policy -- <policy.json> [--apply] [--extra-group <path>]...
 * Remote host: set HVKIT_CGROUPS_SSH_HOST (and _PORT, _USER, _KEY, _KNOWN_HOSTS).
 */

import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { connect } from '@hvkit/cgroups';
import { HvkitError, normalizeLimits, type ResourceLimits, validateLimits } from '@hvkit/core';
import { connectSsh, type SshClient } from '@hvkit/ssh';

/** The `section.field` (or `disks[device].field`) paths whose value in `patch` differs from `current`. */
function changes(current: ResourceLimits, patch: ResourceLimits): string[] {
  const out: string[] = [];
  for (const section of ['cpu', 'memory', 'pids'] as const) {
    const want = (patch[section] ?? {}) as Record<string, unknown>;
    const have = (current[section] ?? {}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(want)) if (have[key] !== value) out.push(`${section}.${key}`);
  }
  for (const disk of patch.disks ?? []) {
    const have = (current.disks?.find((d) => d.device === disk.device) ?? {}) as Record<string, unknown>;
    for (const [key, value] of Object.entries(disk))
      if (have[key] !== value) out.push(`disks[${disk.device}].${key}`);
  }
  return out;
}

interface Rule {
  match: string;
  limits: ResourceLimits;
}

const args = process.argv.slice(2);
const file = args.find((a) => !a.startsWith('--') && args[args.indexOf(a) - 1] !== '--extra-group');
const apply = args.includes('--apply');
const extraGroups = args.flatMap((a, i) => (args[i - 1] === '--extra-group' ? [a] : []));
const env = process.env;
if (!file) {
  console.error('usage: main.ts <policy.json> [--apply] [--extra-group <path>]...');
  process.exit(2);
}
// npm runs workspace scripts in the workspace: a relative path is taken from where npm was started.
const policy = JSON.parse(await readFile(resolve(env.INIT_CWD ?? process.cwd(), file), 'utf8')) as {
  rules?: Rule[];
};
if (!Array.isArray(policy.rules)) throw new Error(`${file}: expected { "rules": [{ "match", "limits" }] }`);
const rules = policy.rules.map((r) => ({ re: new RegExp(r.match), limits: r.limits }));

let ssh: SshClient | undefined;
if (env.HVKIT_CGROUPS_SSH_HOST) {
  ssh = await connectSsh({
    host: env.HVKIT_CGROUPS_SSH_HOST,
    port: Number(env.HVKIT_CGROUPS_SSH_PORT ?? 22),
    username: env.HVKIT_CGROUPS_SSH_USER ?? 'root',
    auth: { privateKey: env.HVKIT_CGROUPS_SSH_KEY ?? `${env.HOME}/.ssh/id_ed25519` },
    ...(env.HVKIT_CGROUPS_SSH_KNOWN_HOSTS
      ? { hostKey: { knownHostsFile: env.HVKIT_CGROUPS_SSH_KNOWN_HOSTS } }
      : {}),
  });
}
try {
  await using hv = await connect({ ...(ssh ? { ssh } : {}), extraGroups });
  console.log(`${hv.server.product} (kernel ${hv.server.version}) on ${ssh?.target ?? 'this machine'}`);
  // A policy the host cannot carry (memory.minBytes on cgroup v1, a weight of 0) fails here, before any write.
  for (const rule of rules) validateLimits(rule.limits, hv.supports.limits, { adapter: hv.adapter });
  let failed = 0;
  for (const guest of await hv.inventory.listGuests()) {
    const rule = rules.find((r) => r.re.test(guest.name));
    if (!rule) continue;
    const current = await hv.limits.get(guest.id);
    const same = changes(current, normalizeLimits(rule.limits)).length === 0;
    if (!apply || same) {
      console.log(
        `${guest.name} (${guest.id}): ${same ? 'already as the policy says' : `would set ${JSON.stringify(rule.limits)}`}`,
      );
      continue;
    }
    try {
      const result = await hv.limits.set(guest.id, rule.limits);
      console.log(
        `${guest.name}: applied (${result.appliesAt})`,
        JSON.stringify({ cpu: result.limits.cpu, memory: result.limits.memory }),
      );
      for (const w of result.warnings) console.log(`  warning: ${w.field ?? ''} ${w.message}`);
    } catch (error) {
      // A refused write (EBUSY: a memory limit below usage) was put back; go on with the next guest.
      if (!HvkitError.isInstance(error)) throw error;
      failed += 1;
      console.error(`${guest.name}: ${error.code} ${error.message}`);
    }
  }
  if (!apply) console.log('dry run: nothing changed (pass --apply to write)');
  if (failed > 0) process.exitCode = 1;
} finally {
  await ssh?.close();
}
