/**
 * 1 GiB through the SSH backup sink against the real sshd peer, with bounded memory. In a file of its
 * own so that its process (vitest runs each file in a fresh worker) starts without other tests' garbage.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectRoot, generated, liveTitle, remoteSha256, scratchDir, sshd } from '../test/sshd-peer';
import { createSshSink, type SshClient } from './index';

const MiB = 1024 * 1024;
/** The RSS ceiling of the whole test process during the transfer: 128 MiB. */
const RSS_LIMIT = 128 * MiB;

describe.skipIf(!sshd.available)(liveTitle('SSH backup sink, 1 GiB'), { retry: 0 }, () => {
  let ssh: SshClient;
  let dir: string;
  beforeAll(async () => {
    ssh = await connectRoot();
    dir = scratchDir('sink-1gib');
  });
  afterAll(async () => {
    if (ssh && !ssh.closed) {
      await ssh.exec.exec({ argv: ['rm', '-rf', '--', dir] });
      await ssh.close();
    }
  });

  it('streams 1 GiB (generated lazily) with a matching remote sha256 while RSS stays under 128 MiB', async () => {
    const sink = createSshSink(ssh, dir, { verify: true });
    const total = 1024 * MiB;
    // 64 KiB chunks, as fs.createReadStream yields them.
    const src = generated(total, 64 * 1024);
    const baseline = process.memoryUsage.rss();
    let maxRss = baseline;
    const sample = () => {
      maxRss = Math.max(maxRss, process.memoryUsage.rss());
    };
    const sampler = setInterval(sample, 25);
    const started = performance.now();
    let verifyAt = 0;
    let file: Awaited<ReturnType<typeof sink.writeFile>>;
    try {
      file = await sink.writeFile('big.bin', src, {
        expectedBytes: total,
        onProgress: (p) => {
          sample();
          if (p.phase === 'verify' && verifyAt === 0) verifyAt = performance.now();
        },
      });
    } finally {
      clearInterval(sampler);
    }
    const ended = performance.now();
    const rate = (total / 1e6 / ((verifyAt - started) / 1000)).toFixed(0);
    console.log(
      `1 GiB via createSshSink: transfer ${((verifyAt - started) / 1000).toFixed(1)} s (${rate} MB/s), remote verify ${((ended - verifyAt) / 1000).toFixed(1)} s; RSS baseline ${(baseline / MiB).toFixed(1)} MiB, max ${(maxRss / MiB).toFixed(1)} MiB (${(maxRss / 1e6).toFixed(1)} MB)`,
    );
    expect(src.produced).toBe(total);
    expect(file).toEqual({ name: 'big.bin', bytes: total, sha256: src.sha256 });
    // Checked again independently of the sink.
    expect(await remoteSha256(ssh, `${dir}/big.bin`)).toBe(src.sha256);
    expect(maxRss).toBeLessThan(RSS_LIMIT);
    await sink.removeFile('big.bin');
  }, 300_000);
});
