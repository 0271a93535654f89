/**
 * Benchmark: hvkit `connect()` + `inventory.listGuests()` + `close()` against a Go program using govmomi
 * (bench/govmomi-inventory) that logs in and reads the same 12 VirtualMachine properties, on the same
 * private vcsim with 1024 VMs (4 clusters × 256 VMs per cluster root pool), plain http on loopback.
 * Runs alternate (A/B), each side timed from login to logout inside its own process; prints min and median
 * per side and the ratio of medians (hvkit / govmomi; target ≤ 1.0).
 *
 *   node --conditions=@hvkit/source --import tsx bench/vsphere-inventory.ts [runs=7]
 *
 * Needs HVKIT_VCSIM_BIN (or .peers/env) and Go with Debian's golang-github-vmware-govmomi-dev.
 * hvkit's listGuests also reads the hosts' port groups and the distributed port groups (for VLANs) in the
 * same RetrievePropertiesEx, so it does slightly more than the Go side.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { loadavg, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connect } from '@hvkit/vmware-vsphere';
import { startVcsim } from '../packages/vmware-vsphere/test/vcsim-instance';

const here = dirname(fileURLToPath(import.meta.url));
const runs = Number(process.argv[2] ?? 7);

function launcher(): string {
  if (process.env.HVKIT_VCSIM_BIN) return process.env.HVKIT_VCSIM_BIN;
  const envFile = join(here, '..', '.peers', 'env');
  const m = existsSync(envFile) ? /^HVKIT_VCSIM_BIN=(.*)$/m.exec(readFileSync(envFile, 'utf8')) : null;
  if (!m?.[1]) throw new Error('HVKIT_VCSIM_BIN is not set (run scripts/peers/start).');
  return m[1];
}

function stats(xs: number[]): { min: number; median: number } {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  const median = s.length % 2 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
  return { min: s[0] as number, median };
}

const work = mkdtempSync(join(tmpdir(), 'hvkit-bench-vsphere-'));
const goBin = join(work, 'govmomi-inventory');
console.log('building bench/govmomi-inventory ...');
execFileSync('go', ['build', '-o', goBin, '.'], {
  cwd: join(here, 'govmomi-inventory'),
  env: {
    ...process.env,
    GO111MODULE: 'off',
    GOPATH: '/usr/share/gocode',
    GOCACHE: join(tmpdir(), 'hvkit-gocache'),
  },
  stdio: 'inherit',
});

const sim = await startVcsim({
  bin: launcher(),
  args: ['-model', 'vpx', '-cluster', '4', '-host', '3', '-standalone-host', '0', '-vm', '256'],
});
try {
  const goUrl = new URL(sim.url);
  goUrl.username = sim.username;
  goUrl.password = sim.password;
  const hvkit: number[] = [];
  const go: number[] = [];
  let count = 0;
  const runHvkit = async () => {
    const started = performance.now();
    const adapter = await connect({
      url: sim.url,
      insecureHttp: true,
      username: sim.username,
      password: sim.password,
      keepAliveMs: false,
    });
    const guests = await adapter.inventory!.listGuests();
    await adapter.close();
    count = guests.length;
    return performance.now() - started;
  };
  const runGo = () => {
    const out = execFileSync(goBin, ['-url', goUrl.href, '-runs', '1'], { encoding: 'utf8' });
    const line = JSON.parse(out.trim()) as { vms: number; ms: number };
    if (line.vms !== count && count !== 0) throw new Error(`govmomi saw ${line.vms} VMs, hvkit ${count}`);
    return line.ms;
  };
  // One warm-up each (JIT, connection setup, vcsim caches), not counted.
  await runHvkit();
  runGo();
  for (let i = 0; i < runs; i++) {
    hvkit.push(await runHvkit());
    go.push(runGo());
  }
  const h = stats(hvkit);
  const g = stats(go);
  const fmt = (n: number) => n.toFixed(0);
  console.log(
    `VMs: ${count}; runs: ${runs} each, alternating; load average: ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  console.log(
    `hvkit   connect + listGuests + close: min ${fmt(h.min)} ms, median ${fmt(h.median)} ms  [${hvkit.map(fmt).join(' ')}]`,
  );
  console.log(
    `govmomi login + retrieve 12 + logout: min ${fmt(g.min)} ms, median ${fmt(g.median)} ms  [${go.map(fmt).join(' ')}]`,
  );
  console.log(`ratio (hvkit / govmomi, medians): ${(h.median / g.median).toFixed(2)}  (target <= 1.0)`);
} finally {
  await sim.stop();
  rmSync(work, { recursive: true, force: true });
}
