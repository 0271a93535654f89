/**
 * Benchmark: stream N bytes to a remote file through @hvkit/ssh's createSshSink, and through the
 * OpenSSH client (`ssh ... 'cat > f'`) fed the same bytes; print MB/s for each, the ratio and peak RSS.
 *
 *   scripts/peers/sshd.sh start
 *   node --conditions=@hvkit/source --import tsx bench/ssh-sink.ts [--bytes 1G] [--chunk 64K]
 *        [--runs 1] [--method exec|sftp] [--no-verify]
 *
 * Peer coordinates come from HVKIT_SSH_* variables, else from .peers/env or .peers/sshd.env.
 */
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parseByteSize } from '@hvkit/core';
import { connectSsh, createSshSink } from '@hvkit/ssh';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const MiB = 1024 * 1024;

function loadPeerEnv(): void {
  for (const file of ['.peers/env', '.peers/sshd.env']) {
    const path = join(root, file);
    if (!existsSync(path)) continue;
    for (const line of readFileSync(path, 'utf8').split('\n')) {
      const m = /^(?:export\s+)?(HVKIT_SSH_[A-Z_]+)=(.*)$/.exec(line.trim());
      if (m && process.env[m[1] as string] === undefined) {
        process.env[m[1] as string] = (m[2] as string).replace(/^'(.*)'$/, '$1');
      }
    }
  }
}

const { values } = parseArgs({
  options: {
    bytes: { type: 'string', default: '1G' },
    chunk: { type: 'string', default: '64K' },
    runs: { type: 'string', default: '1' },
    method: { type: 'string', default: 'exec' },
    'no-verify': { type: 'boolean', default: false },
  },
});
const total = parseByteSize(values.bytes);
const chunkSize = parseByteSize(values.chunk);
const runs = Number(values.runs);
const method = values.method as 'exec' | 'sftp';
const verify = !values['no-verify'];

loadPeerEnv();
const need = [
  'HVKIT_SSH_HOST',
  'HVKIT_SSH_PORT',
  'HVKIT_SSH_USER',
  'HVKIT_SSH_KEY',
  'HVKIT_SSH_KNOWN_HOSTS',
] as const;
const missing = need.filter((k) => !process.env[k]);
if (missing.length > 0) {
  console.error(`missing ${missing.join(', ')}: start the peer with scripts/peers/sshd.sh start`);
  process.exit(2);
}
const env = Object.fromEntries(need.map((k) => [k, process.env[k] ?? ''])) as Record<
  (typeof need)[number],
  string
>;

/** The same bytes for every run: a random block, each chunk stamped with its index. */
const block = randomBytes(chunkSize);
async function* source(): AsyncGenerator<Buffer> {
  let produced = 0;
  let i = 0;
  while (produced < total) {
    const n = Math.min(chunkSize, total - produced);
    const chunk = Buffer.allocUnsafe(n);
    block.copy(chunk, 0, 0, n);
    if (n >= 4) chunk.writeUInt32BE(i++, 0);
    produced += n;
    yield chunk;
  }
}
const expectedSha = await (async () => {
  const h = createHash('sha256');
  for await (const c of source()) h.update(c);
  return h.digest('hex');
})();

/** Samples this process's RSS (and optionally a child's VmHWM) while `fn` runs. */
async function measured<T>(fn: () => Promise<T>): Promise<{ value: T; seconds: number; peakRss: number }> {
  let peakRss = process.memoryUsage.rss();
  const timer = setInterval(() => {
    peakRss = Math.max(peakRss, process.memoryUsage.rss());
  }, 20);
  const t0 = performance.now();
  try {
    const value = await fn();
    return { value, seconds: (performance.now() - t0) / 1000, peakRss };
  } finally {
    clearInterval(timer);
  }
}

function childPeakRss(pid: number | undefined, into: { peak: number }): NodeJS.Timeout {
  return setInterval(() => {
    try {
      const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
      if (m) into.peak = Math.max(into.peak, Number(m[1]) * 1024);
    } catch {}
  }, 20);
}

const ssh = await connectSsh({
  host: env.HVKIT_SSH_HOST,
  port: Number(env.HVKIT_SSH_PORT),
  username: env.HVKIT_SSH_USER,
  auth: { privateKey: env.HVKIT_SSH_KEY },
  hostKey: { knownHostsFile: env.HVKIT_SSH_KNOWN_HOSTS },
});
const dir = `/tmp/hvkit-bench-ssh-sink-${process.pid}`;
await ssh.exec.exec({ argv: ['mkdir', '-p', '--', dir] });

async function remoteSha(path: string): Promise<string> {
  const r = await ssh.exec.exec({ argv: ['sha256sum', '--', path], timeoutMs: 600_000 });
  return r.stdout.toString().slice(0, 64);
}

async function runOpenSsh(): Promise<{ seconds: number; peakRss: number; childPeak: number }> {
  const child = { peak: 0 };
  const r = await measured(
    () =>
      new Promise<void>((resolve, reject) => {
        const p = spawn(
          'ssh',
          [
            '-i',
            env.HVKIT_SSH_KEY,
            '-p',
            env.HVKIT_SSH_PORT,
            '-o',
            `UserKnownHostsFile=${env.HVKIT_SSH_KNOWN_HOSTS}`,
            '-o',
            'StrictHostKeyChecking=yes',
            '-o',
            'BatchMode=yes',
            `${env.HVKIT_SSH_USER}@${env.HVKIT_SSH_HOST}`,
            `cat > ${dir}/openssh.bin`,
          ],
          { stdio: ['pipe', 'ignore', 'inherit'] },
        );
        const sampler = childPeakRss(p.pid, child);
        p.on('error', reject);
        p.on('close', (code) => {
          clearInterval(sampler);
          if (code === 0) resolve();
          else reject(new Error(`ssh exited with ${code}`));
        });
        (async () => {
          for await (const chunk of source()) {
            if (!p.stdin.write(chunk)) await new Promise((r2) => p.stdin.once('drain', r2));
          }
          p.stdin.end();
        })().catch(reject);
      }),
  );
  if ((await remoteSha(`${dir}/openssh.bin`)) !== expectedSha)
    throw new Error('openssh copy has the wrong sha256');
  return { seconds: r.seconds, peakRss: r.peakRss, childPeak: child.peak };
}

async function runHvkit(): Promise<{ seconds: number; transferSeconds: number; peakRss: number }> {
  const sink = createSshSink(ssh, dir, { verify, method });
  let verifyAt = 0;
  const t0 = performance.now();
  const r = await measured(() =>
    sink.writeFile('hvkit.bin', source(), {
      expectedBytes: total,
      onProgress: (p) => {
        if (p.phase === 'verify' && verifyAt === 0) verifyAt = performance.now();
      },
    }),
  );
  if (r.value.sha256 !== expectedSha) throw new Error('hvkit sink reported the wrong sha256');
  if ((await remoteSha(`${dir}/hvkit.bin`)) !== expectedSha)
    throw new Error('hvkit copy has the wrong sha256');
  return {
    seconds: r.seconds,
    transferSeconds: ((verifyAt || performance.now()) - t0) / 1000,
    peakRss: r.peakRss,
  };
}

const mbps = (seconds: number) => total / 1e6 / seconds;
const fmt = (x: number) => x.toFixed(1);
console.log(
  `ssh-sink bench: ${fmt(total / MiB)} MiB in ${fmt(chunkSize / 1024)} KiB chunks, method ${method}, verify ${verify}, ${runs} run(s), target ${ssh.target}`,
);
const results: { openssh: number; hvkit: number; hvkitTransfer: number }[] = [];
let hvkitPeak = 0;
let opensshPeak = 0;
let opensshChildPeak = 0;
try {
  for (let run = 1; run <= runs; run++) {
    const o = await runOpenSsh();
    const h = await runHvkit();
    hvkitPeak = Math.max(hvkitPeak, h.peakRss);
    opensshPeak = Math.max(opensshPeak, o.peakRss);
    opensshChildPeak = Math.max(opensshChildPeak, o.childPeak);
    results.push({
      openssh: mbps(o.seconds),
      hvkit: mbps(h.seconds),
      hvkitTransfer: mbps(h.transferSeconds),
    });
    console.log(
      `run ${run}: openssh cat ${fmt(mbps(o.seconds))} MB/s; hvkit sink ${fmt(mbps(h.seconds))} MB/s end to end (transfer ${fmt(mbps(h.transferSeconds))} MB/s${verify ? `, remote verify ${fmt(h.seconds - h.transferSeconds)} s` : ''})`,
    );
  }
} finally {
  await ssh.exec.exec({ argv: ['rm', '-rf', '--', dir] }).catch(() => {});
  await ssh.close();
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] as number;
const o = median(results.map((r) => r.openssh));
const h = median(results.map((r) => r.hvkit));
const ht = median(results.map((r) => r.hvkitTransfer));
console.log(`openssh (ssh ... 'cat > f'):  ${fmt(o)} MB/s`);
console.log(
  `hvkit createSshSink:          ${fmt(h)} MB/s end to end${verify ? ' (incl. remote SHA-256 verify)' : ''}, ${fmt(ht)} MB/s transfer`,
);
console.log(
  `ratio hvkit/openssh:          ${(h / o).toFixed(2)} end to end, ${(ht / o).toFixed(2)} transfer only`,
);
console.log(
  `peak RSS: bench process ${fmt(hvkitPeak / MiB)} MiB during the hvkit run (${fmt(opensshPeak / MiB)} MiB while feeding ssh); ssh client ${fmt(opensshChildPeak / MiB)} MiB`,
);
