/**
 * Helpers shared by core's own tests (not published). Import with a relative path.
 */
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HvkitError } from '../errors/hvkit-error';

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

let scratch: string | undefined;

/** Makes a self-signed EC certificate with openssl for this test run, for `CN=name` and the given SAN. */
export function makeTestCert(name: string, san: string): TestCert {
  scratch ??= mkdtempSync(join(tmpdir(), 'hvkit-cert-'));
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
  return { cert: pem, key: readFileSync(key, 'utf8'), fingerprint: new X509Certificate(pem).fingerprint256 };
}
