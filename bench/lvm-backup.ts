/**
 * Benchmark: an @hvkit/lvm backup of a volume in the lab VM (snapshot, stream with sha256 into an SSH sink,
 * snapshot removed) against the plain copy of the same kind of snapshot, `ssh lab 'dd if=SNAP' | ssh target
 * 'cat > f'`, both from this machine to the sshd peer (the same topology: the data passes through here).
 * Prints MB/s of each, the ratio (target >= 0.9) and this process's peak RSS (target <= 128 MB).
 *
 *   npx turbo run build --filter=@hvkit/lvm...            # measure the built packages, as users run them
 *   set -a; . /work/lab/env; set +a                        # or .peers/env with the lab-vm peer
 *   node --import tsx bench/lvm-backup.ts [--mib 64] [--runs 3]
 *
 * (With `--conditions=@hvkit/source` it measures the TypeScript sources under tsx instead.) It makes a
 * volume group `hvkit-test-bench-<random>` on a loop file in the VM and removes it at the end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '@hvkit/lvm';
import { connectSsh, createSshSink, type SshClient } from '@hvkit/ssh';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: { mib: { type: 'string', default: '64' }, runs: { type: 'string', default: '3' } },
});
const mib = Number(values.mib);
const runs = Number(values.runs);

for (const file of ['.peers/env', '.peers/sshd.env']) {
  const path = join(root, file);
  if (!existsSync(path)) continue;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(?:export\s+)?(HVKIT_(?:SSH|LAB_SSH)_[A-Z_]+)=(.*)$/.exec(line.trim());
    if (m && process.env[m[1] as string] === undefined)
      process.env[m[1] as string] = (m[2] as string).replace(/^'(.*)'$/, '$1');
  }
}
/** A variable of the peers' environment (lab-vm and sshd). */
function need(name: string): string {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set (peers lab-vm and sshd).`);
  return value;
}
const peer = (prefix: string) => ({
  host: need(`${prefix}_HOST`),
  port: need(`${prefix}_PORT`),
  user: need(`${prefix}_USER`),
  key: need(`${prefix}_KEY`),
  known: need(`${prefix}_KNOWN_HOSTS`),
});
const lab = peer('HVKIT_LAB_SSH');
const target = peer('HVKIT_SSH');
const open = (p: typeof lab): Promise<SshClient> =>
  connectSsh({
    host: p.host,
    port: Number(p.port),
    username: p.user,
    auth: { privateKey: p.key },
    hostKey: { knownHostsFile: p.known },
  });
const sshArgv = (p: typeof lab, command: string) => [
  '-i',
  p.key,
  '-p',
  p.port,
  '-o',
  `UserKnownHostsFile=${p.known}`,
  '-o',
  'StrictHostKeyChecking=yes',
  '-o',
  'BatchMode=yes',
  `${p.user}@${p.host}`,
  command,
];
async function sh(ssh: SshClient, script: string): Promise<string> {
  const r = await ssh.exec.exec({ argv: ['bash', '-euo', 'pipefail', '-c', script], timeoutMs: 600_000 });
  if (r.exitCode !== 0) throw new Error(`lab script failed: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

/** `ssh lab 'dd if=dev' | ssh target 'cat > file'`, no shell on this side. */
function plainCopy(dev: string, file: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const reader = spawn('ssh', sshArgv(lab, `dd if=${dev} bs=4M status=none`), {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const writer = spawn('ssh', sshArgv(target, `cat > ${file}`), { stdio: ['pipe', 'ignore', 'inherit'] });
    reader.stdout.pipe(writer.stdin);
    let left = 2;
    const done = (code: number | null) => {
      if (code !== 0) reject(new Error(`plain copy: ssh exited with ${code}`));
      else if (--left === 0) resolve();
    };
    reader.on('close', done);
    writer.on('close', done);
  });
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const vg = `hvkit-test-bench-${randomBytes(3).toString('hex')}`;
const labSsh = await open(lab);
const targetSsh = await open(target);
const dir = `/tmp/hvkit-lvm-bench-${vg}`;
try {
  await sh(
    labSsh,
    `modprobe dm-snapshot; modprobe loop; mkdir -p /root/${vg}; truncate -s ${mib * 3 + 64}M /root/${vg}/pv.img
loop=$(losetup -f --show /root/${vg}/pv.img); pvcreate -q "$loop" >/dev/null; vgcreate -q ${vg} "$loop" >/dev/null
lvcreate -q -y -L ${mib}M -n data ${vg} >/dev/null
dd if=/dev/urandom of=/dev/${vg}/data bs=1M count=${mib} status=none conv=fsync
lvcreate -q -s -L ${mib}M -n data-plain ${vg}/data >/dev/null`,
  );
  const hv = await connect({ ssh: labSsh, snapshotSize: { percent: 100 } });
  const hvkit: number[] = [];
  const plain: number[] = [];
  /** The transfer phase alone (snapshot, lvs and lvremove under TCG take seconds of their own). */
  const transfer: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    let transferStart = 0;
    let transferEnd = 0;
    const a = await hv.backups?.backup(`${vg}/data`, createSshSink(targetSsh, `${dir}/hvkit-${i}`), {
      onProgress: (p) => {
        if (p.phase !== 'transfer') return;
        if (p.processedBytes === 0) transferStart = performance.now();
        if (p.processedBytes === p.totalBytes) transferEnd = performance.now();
      },
    });
    hvkit.push((mib * MiB) / 1e6 / ((performance.now() - t0) / 1000));
    transfer.push((mib * MiB) / 1e6 / ((transferEnd - transferStart) / 1000));
    if (!a?.files.some((f) => f.bytes === mib * MiB)) throw new Error('the backup has no full disk file');
    await sh(targetSsh, `mkdir -p ${dir}`);
    const t1 = performance.now();
    await plainCopy(`/dev/${vg}/data-plain`, `${dir}/plain-${i}.raw`);
    plain.push((mib * MiB) / 1e6 / ((performance.now() - t1) / 1000));
  }
  await hv.close();
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const h = median(hvkit);
  const p = median(plain);
  console.log(
    `volume ${mib} MiB, ${runs} runs (median); ${process.execArgv.join(' ').includes('@hvkit/source') ? 'sources under tsx' : 'built packages'}`,
  );
  console.log(
    `hvkit backup (snapshot + dd + sha256 sink + verify + cleanup): ${h.toFixed(1)} MB/s  [${hvkit.map((x) => x.toFixed(1)).join(', ')}]`,
  );
  console.log(
    `plain ssh dd | ssh cat:                                       ${p.toFixed(1)} MB/s  [${plain.map((x) => x.toFixed(1)).join(', ')}]`,
  );
  console.log(
    `hvkit transfer phase alone (dd -> sha256 sink):               ${median(transfer).toFixed(1)} MB/s  [${transfer.map((x) => x.toFixed(1)).join(', ')}]`,
  );
  console.log(
    `ratio hvkit / plain: ${(h / p).toFixed(2)} (target >= 0.9); transfer phase / plain: ${(median(transfer) / p).toFixed(2)}`,
  );
  console.log(`peak RSS of this process: ${(peakRss / 1e6).toFixed(1)} MB (target <= 128 MB)`);
} finally {
  await sh(
    labSsh,
    `vgremove -q -y -f ${vg} >/dev/null 2>&1 || true
for l in $(losetup -j /root/${vg}/pv.img | cut -d: -f1); do losetup -d "$l"; done; rm -rf /root/${vg}`,
  ).catch(() => {});
  await sh(targetSsh, `rm -rf ${dir}`).catch(() => {});
  await labSsh.close();
  await targetSsh.close();
}
