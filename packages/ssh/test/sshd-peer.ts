/**
 * The sshd peer (scripts/peers/sshd.sh) as seen by live tests: its variables and connect helpers.
 */
import { createHash, randomBytes } from 'node:crypto';
import { livePeer } from '@hvkit/conformance';
import { HvkitError } from '@hvkit/core';
import { expect } from 'vitest';
import { connectSsh, type SshClient, type SshConnectOptions } from '../src/index';

export const SSHD_VARS = [
  'HVKIT_SSH_HOST',
  'HVKIT_SSH_PORT',
  'HVKIT_SSH_USER',
  'HVKIT_SSH_KEY',
  'HVKIT_SSH_KNOWN_HOSTS',
  'HVKIT_SSH_HOST_FINGERPRINT',
  'HVKIT_SSH_PASSWORD_USER',
  'HVKIT_SSH_PASSWORD',
] as const;

export const sshd = livePeer('sshd', SSHD_VARS);

/** `describe` title with the skip reason. */
export function liveTitle(what: string): string {
  return `live sshd: ${what}${sshd.available ? '' : ` (skipped: ${sshd.reason})`}`;
}

type Env = Record<(typeof SSHD_VARS)[number], string>;

/** The peer's variables (only call inside a suite that runs). */
export function env(): Env {
  if (!sshd.available) throw new Error(sshd.reason);
  return sshd.env;
}

/** Options for the root login by key, verified against the peer's known_hosts. */
export function rootOptions(extra: Partial<SshConnectOptions> = {}): SshConnectOptions {
  const e = env();
  return {
    host: e.HVKIT_SSH_HOST,
    port: Number(e.HVKIT_SSH_PORT),
    username: e.HVKIT_SSH_USER,
    auth: { privateKey: e.HVKIT_SSH_KEY },
    hostKey: { knownHostsFile: e.HVKIT_SSH_KNOWN_HOSTS },
    readyTimeout: 15_000,
    ...extra,
  };
}

/** Connects as root by key. */
export function connectRoot(extra: Partial<SshConnectOptions> = {}): Promise<SshClient> {
  return connectSsh(rootOptions(extra));
}

/** A unique scratch directory name on the peer. */
export function scratchDir(tag: string): string {
  return `/tmp/hvkit-ssh-live-${tag}-${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** Expects `promise` to reject with an HvkitError of `code`; returns it. */
export async function rejectsWith(promise: Promise<unknown>, code: HvkitError['code']): Promise<HvkitError> {
  try {
    await promise;
  } catch (e) {
    if (!HvkitError.isInstance(e)) throw e;
    expect(e.code, e.message).toBe(code);
    return e;
  }
  throw new Error(`expected ${code}, got success`);
}

/** Records the unhandled rejections while `fn` runs (and shortly after). */
export async function unhandledDuring(fn: () => Promise<void>): Promise<unknown[]> {
  const seen: unknown[] = [];
  const onUnhandled = (reason: unknown) => seen.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 100));
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  return seen;
}

/** `promise`, or a plain Error when it has not settled within `ms` (a hang). */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise,
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${what} still pending after ${ms} ms`)), ms);
    }),
  ]).finally(() => clearTimeout(timer));
}

/**
 * A source of `total` pseudo-random bytes in `chunkSize` pieces, generated lazily (a fresh buffer per
 * chunk, never the whole stream), hashed as they are produced.
 */
export function generated(total: number, chunkSize = 64 * 1024) {
  const block = randomBytes(chunkSize);
  const hash = createHash('sha256');
  let produced = 0;
  return {
    /** SHA-256 (hex) of what has been produced so far. */
    get sha256() {
      return hash.copy().digest('hex');
    },
    get produced() {
      return produced;
    },
    async *[Symbol.asyncIterator]() {
      let i = 0;
      while (produced < total) {
        const n = Math.min(chunkSize, total - produced);
        const chunk = Buffer.allocUnsafe(n);
        block.copy(chunk, 0, 0, n);
        // Every chunk differs, so a dropped, repeated or reordered chunk changes the hash.
        if (n >= 4) chunk.writeUInt32BE(i++, 0);
        hash.update(chunk);
        produced += n;
        yield chunk;
      }
    },
  };
}

/** `sha256sum` of a file on the peer. */
export async function remoteSha256(ssh: SshClient, path: string): Promise<string> {
  const r = await ssh.exec.exec({ argv: ['sha256sum', '--', path], timeoutMs: 180_000 });
  expect(r.exitCode, r.stderr.toString()).toBe(0);
  return r.stdout.toString().slice(0, 64);
}
