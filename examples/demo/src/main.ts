/**
 * The hvkit demo: for every adapter, prints host, guests, limits and labels from embedded data (recorded
 * fixtures or the in-memory reference adapter). No server is needed.
 *
 * Run: `npm run demo` at the repository root. `--json` prints the same data as JSON.
 */
import { HvkitError, type HypervisorAdapter } from '@hvkit/core';
import { bytes, diskLimits, label, nicLimits, num } from './format';
import { DEMO_SOURCES, type DemoSource } from './sources';
import { renderTable } from './table';

interface Report {
  source: string;
  origin: string;
  host: unknown;
  guests: unknown[];
}

async function collect(source: DemoSource, adapter: HypervisorAdapter, signal: AbortSignal) {
  const out: string[] = [];
  const report: Report = { source: source.name, origin: source.origin, host: undefined, guests: [] };
  if (!adapter.inventory) {
    out.push('  (adapter has no inventory capability)');
    return { text: out.join('\n'), report };
  }
  const host = await adapter.inventory.host({ signal });
  report.host = host;
  out.push(
    `Host ${host.name}: ${host.hypervisor.kind} ${host.hypervisor.version}` +
      `${host.cpu.model ? `, ${host.cpu.model}` : ''}` +
      `${host.cpu.threads ? `, ${host.cpu.threads} threads` : ''}` +
      `${host.memoryBytes ? `, ${bytes(host.memoryBytes)} RAM` : ''}` +
      `, security: ${host.securityModels.map((m) => m.model + (m.enforcing ? ' (enforcing)' : '')).join(', ') || 'none'}`,
  );

  const guests = await adapter.inventory.listGuests({ signal });
  out.push(
    '',
    renderTable(
      ['GUEST', 'STATE', 'VCPUS', 'MEMORY', 'DISKS', 'NICS (VLAN)'],
      guests.map((g) => [
        g.isTemplate ? `${g.name} (template)` : g.name,
        g.powerState,
        String(g.vcpus),
        bytes(g.memoryBytes),
        g.disks.map((d) => `${d.device} ${bytes(d.capacityBytes)}`).join(', ') || '-',
        g.nics.map((n) => `${n.device}${n.vlan !== undefined ? ` (${n.vlan})` : ''}`).join(', ') || '-',
      ]),
    ),
  );

  const limitRows: string[][] = [];
  const labelRows: string[][] = [];
  for (const g of guests) {
    const entry: Record<string, unknown> = { guest: g };
    if (adapter.limits) {
      const l = await adapter.limits.get(g.id, { signal });
      entry.limits = l;
      limitRows.push([
        g.name,
        l.cpu?.weight === null ? 'default' : num(l.cpu?.weight),
        num(l.cpu?.maxCores),
        bytes(l.memory?.maxBytes),
        bytes(l.memory?.softBytes),
        diskLimits(l),
        nicLimits(l),
      ]);
    }
    if (adapter.labels) {
      const labels = await adapter.labels.get(g.id, { signal });
      entry.labels = labels;
      labelRows.push([g.name, labels.map(label).join('; ') || '-']);
    }
    report.guests.push(entry);
  }
  if (adapter.limits) {
    out.push(
      '',
      renderTable(['LIMITS', 'CPU WEIGHT', 'MAX CORES', 'MEM MAX', 'MEM SOFT', 'DISK IO', 'NIC'], limitRows),
    );
  }
  if (adapter.labels) out.push('', renderTable(['LABELS', 'MODEL/TYPE LABEL'], labelRows));
  return { text: out.join('\n'), report };
}

async function main(): Promise<number> {
  const json = process.argv.includes('--json');
  const signal = AbortSignal.timeout(60_000);
  const reports: Report[] = [];
  let failures = 0;
  for (const source of DEMO_SOURCES) {
    const { adapter, finish } = await source.open();
    try {
      const { text, report } = await collect(source, adapter, signal);
      reports.push(report);
      if (!json) {
        const title = `== ${source.name} (${adapter.adapter}) — ${source.origin}`;
        process.stdout.write(`${title}\n\n${text}\n\n`);
      }
    } catch (error) {
      failures++;
      const why = HvkitError.isInstance(error) ? `${error.code}: ${error.message}` : String(error);
      process.stderr.write(`demo: ${source.name} failed: ${why}\n`);
    } finally {
      await adapter.close();
      try {
        finish?.();
      } catch (error) {
        failures++;
        const why = HvkitError.isInstance(error) ? `${error.code}: ${error.message}` : String(error);
        process.stderr.write(`demo: ${source.name} did not replay as recorded: ${why}\n`);
      }
    }
  }
  if (json) process.stdout.write(`${JSON.stringify(reports, null, 2)}\n`);
  return failures === 0 ? 0 : 1;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (error) => {
    process.stderr.write(`demo: ${error instanceof Error ? error.stack : String(error)}\n`);
    process.exitCode = 1;
  },
);
