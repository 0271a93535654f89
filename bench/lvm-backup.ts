/**
 * Benchmark: an @hvkit/lvm backup of a volume in the lab VM (snapshot, stream with sha256 into an SSH sink,
 * snapshot removed) against what a user would otherwise run by hand, both from this machine to the sshd
 * peer (the same topology: the data passes through here):
 *
 * - the plain copy: `ssh lab 'dd if=SNAP bs=4M' | ssh target 'cat > f'` of a snapshot of the same volume
 *   (a real shell pipe, not through this process);
 * - the whole by-hand recipe: `ssh lab lvcreate -s`, that plain copy, `ssh target sha256sum f` (without it
 *   the copy proves nothing; hvkit hashes while it streams and has the target check it), `ssh lab lvremove`.
 *
 * Both sides get connections opened before the clock starts (hvkit: one ssh2 connection to each host; the
 * recipe: an OpenSSH ControlMaster to each), so neither pays a key exchange (about 1.1 s under TCG) in the
 * measurement. Prints MB/s of each, both ratios (target >= 0.9 against the plain copy), the backup's transfer
 * phase alone, and this process's peak RSS (target <= 128 MB). The VM's page cache is dropped before each
 * side, so both read the volume from the (emulated) disk; then a throwaway snapshot is made and removed,
 * which reads LVM's tools, udev's rules and dmsetup back in (what any host that runs LVM commands has in
 * its cache), so neither side pays for loading them. For reference it also times the plain copy with the
 * read hvkit makes (`dd iflag=direct`).
 *
 * Volume size (default 512 MiB): a real guest's volume is gigabytes; 64 MiB measured mostly the fixed cost of
 * the LVM commands (seconds under TCG), which no user pays per 64 MiB. The volume group's physical volume is
 * the lab VM's scratch disk (`HVKIT_LAB_SCRATCH_DISK`, an empty 8 GiB virtio disk per boot), so volumes
 * larger than the root disk's free 1.5 GiB fit; on an older lab VM without it, a loop file on the root disk
 * (512 MiB at most then). A copy runs at 10-20 MB/s under TCG (ssh in the guest is the bottleneck), so
 * 3 runs of both sides of 512 MiB take about 5 minutes, of 1536 MiB about 12. The COW area is the
 * adapter's default (20 %, at least 16 MiB) on both sides.
 *
 * Measure the built packages with plain node (what users run; tsx's loader thread adds to the RSS):
 *
 *   npx turbo run build --filter=@hvkit/lvm --filter=@hvkit/ssh --filter=@hvkit/core
 *   npx esbuild bench/lvm-backup.ts --format=esm --platform=node --outfile=bench/.out/lvm-backup.mjs
 *   node bench/.out/lvm-backup.mjs [--mib 512] [--runs 3]
 *
 * (`node --conditions=@hvkit/source --import tsx bench/lvm-backup.ts` measures the sources under tsx.) Peer
 * coordinates come from HVKIT_LAB_SSH_* and HVKIT_SSH_*, else from .peers/env. It makes a volume group
 * `hvkit-test-bench-<random>` on a loop file in the VM and removes it at the end.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { connect } from '@hvkit/lvm';
import { connectSsh, createSshSink, type SshClient } from '@hvkit/ssh';

/** The repository root (this file runs from bench/ or, compiled, from bench/.out/). */
function findRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'turbo.json')) && dirname(dir) !== dir) dir = dirname(dir);
  return dir;
}
const root = findRoot();
const MiB = 1024 * 1024;
const { values } = parseArgs({
  options: { mib: { type: 'string', default: '512' }, runs: { type: 'string', default: '3' } },
});
const mib = Number(values.mib);
const runs = Number(values.runs);
if (!Number.isSafeInteger(mib) || mib < 16 || !Number.isSafeInteger(runs) || runs < 1) {
  throw new TypeError('--mib must be an integer >= 16 and --runs >= 1');
}
/** The adapter's default COW area: 20 % of the volume, at least 16 MiB. */
const cowMiB = Math.max(Math.ceil(mib / 5), 16);

for (const file of ['.peers/env', '.peers/sshd.env']) {
  const path = join(root, file);
  if (!existsSync(path)) continue;
  for (const line of readFileSync(path, 'utf8').split('\n')) {
    const m = /^(?:export\s+)?(HVKIT_(?:SSH|LAB_SSH|LAB_SCRATCH)_[A-Z_]+)=(.*)$/.exec(line.trim());
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
type Peer = ReturnType<typeof peer>;
const lab = peer('HVKIT_LAB_SSH');
const target = peer('HVKIT_SSH');
/** The lab VM's empty scratch disk, when the lab VM has one. */
const scratch = process.env.HVKIT_LAB_SCRATCH_DISK;
const open = (p: Peer): Promise<SshClient> =>
  connectSsh({
    host: p.host,
    port: Number(p.port),
    username: p.user,
    auth: { privateKey: p.key },
    hostKey: { knownHostsFile: p.known },
  });

/** OpenSSH's options for a peer, through the ControlMaster socket `control`. */
const sshOptions = (p: Peer, control: string) => [
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
  '-o',
  `ControlPath=${control}`,
  `${p.user}@${p.host}`,
];
/** A word for bash (single-quoted). */
const q = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;

/** Runs a program (no shell) and returns its stdout; fails on a non-zero exit. */
function run(argv: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(argv[0] as string, argv.slice(1), { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
    });
    child.on('error', reject);
    child.on('close', (code) =>
      code === 0 ? resolve(out) : reject(new Error(`${argv.slice(0, 2).join(' ')}... exited with ${code}`)),
    );
  });
}
async function sh(ssh: SshClient, script: string): Promise<string> {
  const r = await ssh.exec.exec({ argv: ['bash', '-euo', 'pipefail', '-c', script], timeoutMs: 900_000 });
  if (r.exitCode !== 0) throw new Error(`lab script failed: ${r.stderr.toString()}`);
  return r.stdout.toString();
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const fmt = (xs: number[]) => `${median(xs).toFixed(2)}  [${xs.map((x) => x.toFixed(2)).join(', ')}]`;
const seconds = (t: number) => (performance.now() - t) / 1000;
const vg = `hvkit-test-bench-${randomBytes(3).toString('hex')}`;
const controls = mkdtempSync(join(tmpdir(), 'hvkit-bench-ssh-'));
const labCtl = join(controls, 'lab');
const targetCtl = join(controls, 'target');
const labSsh = await open(lab);
const targetSsh = await open(target);
const dir = `/tmp/hvkit-lvm-bench-${vg}`;
let masters = false;
try {
  // The physical volume: the scratch disk (wiped first: nothing else uses it), else a loop file.
  const pv = scratch
    ? `pv=${q(scratch)}; test -b "$pv"; wipefs -q -a "$pv"`
    : `modprobe loop; mkdir -p /root/${vg}; truncate -s ${mib + 2 * cowMiB + 64}M /root/${vg}/pv.img; pv=$(losetup -f --show /root/${vg}/pv.img)`;
  await sh(
    labSsh,
    `modprobe dm-snapshot; ${pv}; pvcreate -q -y "$pv" >/dev/null; vgcreate -q ${vg} "$pv" >/dev/null
lvcreate -q -y -L ${mib}M -n data ${vg} >/dev/null
dd if=/dev/urandom of=/dev/${vg}/data bs=4M count=${mib / 4} iflag=fullblock status=none conv=fsync`,
  );
  await sh(targetSsh, `mkdir -p ${dir}`);
  // The recipe's connections, opened before any clock starts (as hvkit's are).
  await run(['ssh', '-M', '-N', '-f', '-o', 'ControlPersist=600', ...sshOptions(lab, labCtl)]);
  await run(['ssh', '-M', '-N', '-f', '-o', 'ControlPersist=600', ...sshOptions(target, targetCtl)]);
  masters = true;
  const onLab = (command: string) => run(['ssh', ...sshOptions(lab, labCtl), command]);
  const onTarget = (command: string) => run(['ssh', ...sshOptions(target, targetCtl), command]);

  const hv = await connect({ ssh: labSsh });
  const bytes = mib * MiB;
  const hvkitSec: number[] = [];
  const transferSec: number[] = [];
  const plainSec: number[] = [];
  const recipeSec: number[] = [];
  const directSec: number[] = [];
  /**
   * The same cache state before each side: the VM's page cache dropped (on an older lab VM the volume and its
   * loop file do not both fit in the VM's 1 GiB, so whichever side read second would read from the cache),
   * then a throwaway snapshot made, checked and removed, which reads LVM's tools, udev's rules for a new
   * device and dmsetup back in: what a host that runs LVM commands (a backup every night) has in its cache.
   * Both sides read a snapshot device that nothing has read yet, so its data comes from the disk either way.
   */
  const coldCache = () =>
    sh(
      labSsh,
      `sync; echo 3 > /proc/sys/vm/drop_caches; lvs >/dev/null
lvcreate -q -s -L 16M -n warm ${vg}/data >/dev/null; dmsetup status ${vg.replace(/-/g, '--')}-warm >/dev/null; lvremove -q -y ${vg}/warm >/dev/null`,
    );
  for (let i = 0; i < runs; i++) {
    await coldCache();
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
    hvkitSec.push(seconds(t0));
    transferSec.push((transferEnd - transferStart) / 1000);
    const disk = a?.files.find((f) => f.bytes === bytes);
    if (!disk) throw new Error('the backup has no full disk file');

    // The by-hand recipe, step by step; the plain copy is its middle step.
    const snap = `/dev/${vg}/data-plain`;
    const file = `${dir}/plain-${i}.raw`;
    await coldCache();
    const t1 = performance.now();
    await onLab(`lvcreate -q -s -L ${cowMiB}M -n data-plain ${vg}/data >/dev/null`);
    const t2 = performance.now();
    await run([
      'bash',
      '-o',
      'pipefail',
      '-c',
      `ssh ${sshOptions(lab, labCtl).map(q).join(' ')} ${q(`dd if=${snap} bs=4M status=none`)} | ssh ${sshOptions(target, targetCtl).map(q).join(' ')} ${q(`cat > ${file}`)}`,
    ]);
    plainSec.push(seconds(t2));
    const sum = (await onTarget(`sha256sum ${file}`)).split(' ')[0];
    await onLab(`lvremove -q -y ${vg}/data-plain >/dev/null`);
    recipeSec.push(seconds(t1));
    if (sum !== disk.sha256) throw new Error(`the two copies differ: ${sum} vs ${disk.sha256}`);

    // For reference, the plain copy with the read hvkit's dd makes (`iflag=direct`, no page cache).
    await onLab(`lvcreate -q -s -L ${cowMiB}M -n data-plain ${vg}/data >/dev/null`);
    await coldCache();
    const t3 = performance.now();
    await run([
      'bash',
      '-o',
      'pipefail',
      '-c',
      `ssh ${sshOptions(lab, labCtl).map(q).join(' ')} ${q(`dd if=${snap} bs=4M iflag=direct status=none`)} | ssh ${sshOptions(target, targetCtl).map(q).join(' ')} ${q(`cat > ${file}`)}`,
    ]);
    directSec.push(seconds(t3));
    await onLab(`lvremove -q -y ${vg}/data-plain >/dev/null`);
    await sh(targetSsh, `rm -rf ${dir}/hvkit-${i} ${file}`);
  }
  await hv.close();
  const peakRss = process.resourceUsage().maxRSS * 1024;
  const mbps = (sec: number[]) => sec.map((s) => bytes / 1e6 / s);
  const h = median(hvkitSec);
  const underTsx = import.meta.url.endsWith('.ts');
  console.log(
    `volume ${mib} MiB of random data on ${scratch ? "the lab VM's scratch disk" : 'a loop file'}, COW ${cowMiB} MiB, ${runs} run(s), medians; ${underTsx ? (process.execArgv.join(' ').includes('@hvkit/source') ? 'sources under tsx' : 'built packages under tsx') : 'built packages, plain node'}`,
  );
  console.log(`seconds: hvkit backup ${fmt(hvkitSec)}`);
  console.log(`         hvkit transfer phase ${fmt(transferSec)}`);
  console.log(`         plain dd | ssh cat ${fmt(plainSec)}`);
  console.log(`         by-hand recipe (lvcreate + dd | ssh cat + sha256sum + lvremove) ${fmt(recipeSec)}`);
  console.log(`         (reference) plain dd iflag=direct | ssh cat ${fmt(directSec)}`);
  console.log(
    `MB/s:    hvkit ${median(mbps(hvkitSec)).toFixed(1)}, plain ${median(mbps(plainSec)).toFixed(1)}, recipe ${median(mbps(recipeSec)).toFixed(1)}, hvkit transfer phase ${median(mbps(transferSec)).toFixed(1)}`,
  );
  console.log(
    `ratio hvkit / plain copy: ${(median(plainSec) / h).toFixed(2)} (target >= 0.9); hvkit / by-hand recipe: ${(median(recipeSec) / h).toFixed(2)}; transfer phase / plain: ${(median(plainSec) / median(transferSec)).toFixed(2)}; hvkit / plain copy with iflag=direct: ${(median(directSec) / h).toFixed(2)}`,
  );
  // Each run's own ratios: both sides of a run ran minutes apart at most, so the load of the shared VM (other
  // tests) changes less between them than between runs.
  const paired = (other: number[]) => hvkitSec.map((x, i) => (other[i] as number) / x);
  console.log(
    `per-run ratios: hvkit / plain ${fmt(paired(plainSec))}; hvkit / recipe ${fmt(paired(recipeSec))}; hvkit / plain with iflag=direct ${fmt(paired(directSec))}`,
  );
  console.log(`peak RSS of this process: ${(peakRss / 1e6).toFixed(1)} MB (target <= 128 MB)`);
} finally {
  await sh(
    labSsh,
    scratch
      ? `vgremove -q -y -f ${vg} >/dev/null 2>&1 || true; pvremove -q -y -ff ${q(scratch)} >/dev/null 2>&1 || true`
      : `vgremove -q -y -f ${vg} >/dev/null 2>&1 || true
for l in $(losetup -j /root/${vg}/pv.img | cut -d: -f1); do losetup -d "$l"; done; rm -rf /root/${vg}`,
  ).catch(() => {});
  await sh(targetSsh, `rm -rf ${dir}`).catch(() => {});
  if (masters) {
    await run(['ssh', '-O', 'exit', ...sshOptions(lab, labCtl)]).catch(() => {});
    await run(['ssh', '-O', 'exit', ...sshOptions(target, targetCtl)]).catch(() => {});
  }
  rmSync(controls, { recursive: true, force: true });
  await labSsh.close();
  await targetSsh.close();
}
