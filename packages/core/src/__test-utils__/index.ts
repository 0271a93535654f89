/**
 * Helpers shared by core's own tests (not published). Import with a relative path.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll } from 'vitest';
import type { HvkitError } from '../errors/hvkit-error';

export { stopWithProcess } from './process-end';

/**
 * Awaits a promise that must reject and returns what it rejected with (typed as an HvkitError for
 * convenience; assert the type where it matters). A resolved stream is destroyed before failing.
 */
export async function rejection(promise: Promise<unknown>): Promise<HvkitError> {
  try {
    const value = await promise;
    (value as { destroy?: () => void } | undefined)?.destroy?.();
  } catch (error) {
    return error as HvkitError;
  }
  throw new Error('expected a rejection');
}

/** Every entry below `dir`, relative, sorted (dot files included); none when it does not exist. */
export function listAll(dir: string): string[] {
  try {
    return (readdirSync(dir, { recursive: true }) as string[]).sort();
  } catch {
    return [];
  }
}

/**
 * A temporary folder `<tmpdir>/<prefix>XXXXXX` for the tests of the file or `describe` block this is called
 * in: made by a `beforeAll` hook and removed, with all it holds, by an `afterAll` hook. Never made while the
 * file is collected, so a block that is skipped or whose tests are all filtered out (`vitest -t`, StrykerJS)
 * makes none: vitest runs neither hook then. Returns a function giving the folder's path; it throws outside
 * the block's tests (before its `beforeAll`, after its `afterAll`).
 */
export function testTempDir(prefix: string): () => string {
  let dir: string | undefined;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), prefix));
  });
  afterAll(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });
  return () => {
    if (dir === undefined)
      throw new Error(`testTempDir(${prefix}): no folder outside the tests of its block`);
    return dir;
  };
}

/** `data` as an async source of chunks of `size` bytes. */
export async function* chunksOf(data: Buffer, size: number): AsyncGenerator<Buffer> {
  for (let i = 0; i < data.length; i += size) yield data.subarray(i, i + size);
}

/** A self-signed certificate with its key (PEM) and SHA-256 fingerprint (colon hex, as node prints it). */
export interface TestCert {
  cert: string;
  key: string;
  fingerprint: string;
}

/**
 * Makes a self-signed EC certificate with openssl, for `CN=name` and the given SAN. openssl writes the key
 * and certificate into a temporary folder of their own, removed again before this returns (the PEM text is
 * all a test needs), so nothing is left in the temporary directory, whatever becomes of the test.
 */
export function makeTestCert(name: string, san: string): TestCert {
  const scratch = mkdtempSync(join(tmpdir(), 'hvkit-cert-'));
  try {
    const key = join(scratch, `${name}.key`);
    const cert = join(scratch, `${name}.crt`);
    execFileSync(
      'openssl',
      ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes']
        .concat(['-keyout', key, '-out', cert, '-days', '1', '-subj', `/CN=${name}`])
        .concat(['-addext', `subjectAltName=${san}`]),
      { stdio: 'ignore' },
    );
    const pem = readFileSync(cert, 'utf8');
    return {
      cert: pem,
      key: readFileSync(key, 'utf8'),
      fingerprint: new X509Certificate(pem).fingerprint256,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32), for seeded fuzz tests. */
export function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
  };
}

/** What {@link watchMemory} measured so far. */
export interface MemoryWatch {
  /** Takes one more sample now (also done every `intervalMs`). */
  sample(): void;
  /** Stops the periodic sampling. */
  stop(): void;
  /** Peak `heapUsed` minus its value at the start, in bytes. */
  heapGrowth(): number;
  /** Peak RSS minus its value at the start, in bytes. */
  rssGrowth(): number;
  /** `heap 21.5 → peak 40.8 MiB, rss 77.7 → peak 237.0 MiB`. */
  describe(): string;
}

/** Samples the process's heap and RSS every `intervalMs` (and on `sample()`), keeping the start and the peaks. */
export function watchMemory(intervalMs = 20): MemoryWatch {
  const start = process.memoryUsage();
  let heapPeak = start.heapUsed;
  let rssPeak = start.rss;
  const sample = () => {
    const m = process.memoryUsage();
    heapPeak = Math.max(heapPeak, m.heapUsed);
    rssPeak = Math.max(rssPeak, m.rss);
  };
  const timer = setInterval(sample, intervalMs);
  timer.unref();
  const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
  return {
    sample,
    stop: () => clearInterval(timer),
    heapGrowth: () => heapPeak - start.heapUsed,
    rssGrowth: () => rssPeak - start.rss,
    describe: () =>
      `heap ${mib(start.heapUsed)} → peak ${mib(heapPeak)} MiB, rss ${mib(start.rss)} → peak ${mib(rssPeak)} MiB`,
  };
}
