/**
 * OpenSSH `known_hosts` parsing and host key checks, and SHA256 fingerprints.
 *
 * Supported: plain host patterns (comma lists, `*` and `?` wildcards, `!` negation, `[host]:port`),
 * hashed hosts (`|1|salt|hmac`, HMAC-SHA1 of the host name keyed by the salt), several keys and key
 * types per host, and `@revoked`. `@cert-authority` lines are ignored (host certificates are not
 * supported).
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/** One usable line of a known_hosts file. */
export interface KnownHostEntry {
  /** `revoked` for `@revoked` lines; `null` otherwise. */
  marker: 'revoked' | null;
  /** The host field as written (patterns or a hashed `|1|salt|hash`). */
  hosts: string;
  /** Key type as written, e.g. `ssh-ed25519`. */
  keyType: string;
  /** The public key blob (SSH wire format). */
  key: Buffer;
  /** 1-based line number, for messages. */
  line: number;
  /** File the entry came from, when known. */
  source?: string;
}

/** A known_hosts file, parsed. */
export interface KnownHosts {
  entries: KnownHostEntry[];
  /** Lines that were skipped (malformed, unknown marker, `@cert-authority`), with the reason. */
  skipped: { line: number; reason: string }[];
}

/** Reads the key type embedded at the start of an SSH public key blob. */
export function keyTypeOf(blob: Uint8Array): string | undefined {
  if (blob.length < 4) return undefined;
  const len = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength).readUInt32BE(0);
  if (len === 0 || len > 64 || 4 + len > blob.length) return undefined;
  return Buffer.from(blob.subarray(4, 4 + len)).toString('latin1');
}

/** OpenSSH's SHA256 fingerprint of a public key blob: `SHA256:` + unpadded base64 of its SHA-256. */
export function fingerprintOf(blob: Uint8Array): string {
  return `SHA256:${createHash('sha256').update(blob).digest('base64').replace(/=+$/, '')}`;
}

/**
 * Normalises a fingerprint given by a user to `SHA256:<unpadded base64>`. Returns `undefined` when it is
 * not a SHA256 fingerprint (MD5 `aa:bb:...` fingerprints are not accepted: too weak to pin).
 */
export function normalizeFingerprint(value: string): string | undefined {
  const m = /^SHA256:([A-Za-z0-9+/]{43})=?$/.exec(value.trim());
  return m ? `SHA256:${m[1]}` : undefined;
}

const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** Parses the text of a known_hosts file. Malformed lines are skipped (and listed), never fatal. */
export function parseKnownHosts(text: string, source?: string): KnownHosts {
  const entries: KnownHostEntry[] = [];
  const skipped: { line: number; reason: string }[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const raw = (lines[i] as string).trim();
    if (raw === '' || raw.startsWith('#')) continue;
    const fields = raw.split(/\s+/);
    let marker: 'revoked' | null = null;
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift() as string;
      if (m === '@cert-authority') {
        skipped.push({ line: i + 1, reason: '@cert-authority lines are not supported' });
        continue;
      }
      if (m !== '@revoked') {
        skipped.push({ line: i + 1, reason: `unknown marker ${m}` });
        continue;
      }
      marker = 'revoked';
    }
    const [hosts, keyType, keyB64] = fields;
    if (!hosts || !keyType || !keyB64) {
      skipped.push({ line: i + 1, reason: 'expected: hosts keytype key [comment]' });
      continue;
    }
    if (!BASE64.test(keyB64)) {
      skipped.push({ line: i + 1, reason: 'key is not base64' });
      continue;
    }
    const key = Buffer.from(keyB64, 'base64');
    if (keyTypeOf(key) !== keyType) {
      skipped.push({ line: i + 1, reason: `key blob is not of type ${keyType}` });
      continue;
    }
    const entry: KnownHostEntry = { marker, hosts, keyType, key, line: i + 1 };
    if (source !== undefined) entry.source = source;
    entries.push(entry);
  }
  return { entries, skipped };
}

/** The name a host is looked up under: `host` for port 22, `[host]:port` otherwise (lower-cased). */
export function hostLookupName(host: string, port = 22): string {
  const h = host.toLowerCase();
  return port === 22 ? h : `[${h}]:${port}`;
}

function wildcardMatch(pattern: string, name: string): boolean {
  if (!pattern.includes('*') && !pattern.includes('?')) return pattern === name;
  let re = '^';
  for (const ch of pattern) {
    if (ch === '*') re += '.*';
    else if (ch === '?') re += '.';
    else re += ch.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`${re}$`, 's').test(name);
}

/** HMAC-SHA1's output length, and the salt length OpenSSH writes and requires. */
const SHA1_BYTES = 20;

/**
 * `text` decoded when it is exactly the canonical base64 of `bytes` bytes (padding included); otherwise
 * undefined. Node's decoder skips characters outside the alphabet and stops at the padding, so without the
 * round trip `|1|salt|hmac` with junk appended would still match; OpenSSH compares the field with its own
 * encoding, which is the same as this check.
 */
function canonicalBase64(text: string, bytes: number): Buffer | undefined {
  const decoded = Buffer.from(text, 'base64');
  return decoded.length === bytes && decoded.toString('base64') === text ? decoded : undefined;
}

function hashedMatch(field: string, name: string): boolean {
  const parts = field.split('|');
  // '', '1', salt, hash
  if (parts.length !== 4 || parts[1] !== '1') return false;
  const salt = canonicalBase64(parts[2] as string, SHA1_BYTES);
  const expected = canonicalBase64(parts[3] as string, SHA1_BYTES);
  if (!salt || !expected) return false;
  const actual = createHmac('sha1', salt).update(name).digest();
  return timingSafeEqual(actual, expected);
}

/** Whether a known_hosts host field matches a lookup name (see {@link hostLookupName}). */
export function hostFieldMatches(field: string, lookupName: string): boolean {
  if (field.startsWith('|')) return hashedMatch(field, lookupName);
  let matched = false;
  for (const raw of field.split(',')) {
    if (raw === '') continue;
    const negated = raw.startsWith('!');
    const pattern = (negated ? raw.slice(1) : raw).toLowerCase();
    if (wildcardMatch(pattern, lookupName)) {
      if (negated) return false;
      matched = true;
    }
  }
  return matched;
}

/** The outcome of checking an offered host key. */
export type HostKeyCheck =
  | { ok: true; entry: KnownHostEntry }
  | {
      ok: false;
      /** `HOST_KEY_REVOKED`: listed under @revoked; `HOST_KEY_MISMATCH`: the host is known with a different
       * key of the same type; `HOST_KEY_UNKNOWN`: no key of this type is known for the host. */
      reason: 'HOST_KEY_REVOKED' | 'HOST_KEY_MISMATCH' | 'HOST_KEY_UNKNOWN';
      /** Key types known for the host (possibly empty). */
      knownTypes: string[];
      /** The matching entry, for a mismatch or a revocation. */
      entry?: KnownHostEntry;
    };

/**
 * Checks `key` (an SSH public key blob) offered by `host:port` against known_hosts entries.
 * A key listed under `@revoked` is refused whatever that line's host patterns say.
 */
export function checkHostKey(known: KnownHosts, host: string, port: number, key: Uint8Array): HostKeyCheck {
  const offered = Buffer.from(key);
  const type = keyTypeOf(offered);
  const name = hostLookupName(host, port);
  const revoked = known.entries.find((e) => e.marker === 'revoked' && e.key.equals(offered));
  const forHost = known.entries.filter((e) => e.marker === null && hostFieldMatches(e.hosts, name));
  const knownTypes = [...new Set(forHost.map((e) => e.keyType))];
  if (revoked) return { ok: false, reason: 'HOST_KEY_REVOKED', knownTypes, entry: revoked };
  const exact = forHost.find((e) => e.key.equals(offered));
  if (exact) return { ok: true, entry: exact };
  const sameType = forHost.find((e) => e.keyType === type);
  if (sameType) return { ok: false, reason: 'HOST_KEY_MISMATCH', knownTypes, entry: sameType };
  return { ok: false, reason: 'HOST_KEY_UNKNOWN', knownTypes };
}

/** Key types known for `host:port` (not revoked), in file order. */
export function knownKeyTypes(known: KnownHosts, host: string, port: number): string[] {
  const name = hostLookupName(host, port);
  return [
    ...new Set(
      known.entries.filter((e) => e.marker === null && hostFieldMatches(e.hosts, name)).map((e) => e.keyType),
    ),
  ];
}

/** Host key algorithms ssh2 can negotiate, in its default order. */
const HOST_KEY_ALGORITHMS = [
  'ssh-ed25519',
  'ecdsa-sha2-nistp256',
  'ecdsa-sha2-nistp384',
  'ecdsa-sha2-nistp521',
  'rsa-sha2-512',
  'rsa-sha2-256',
  'ssh-rsa',
];

function algorithmsForKeyType(type: string): string[] {
  if (type === 'ssh-rsa') return ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'];
  return HOST_KEY_ALGORITHMS.includes(type) ? [type] : [];
}

/**
 * The host key algorithm preference that asks the server first for the key types already known for
 * the host (as OpenSSH does), so a host known only by its RSA key is not refused for offering ed25519.
 */
export function preferredHostKeyAlgorithms(knownTypes: readonly string[]): string[] {
  const first = knownTypes.flatMap(algorithmsForKeyType);
  return [...new Set([...first, ...HOST_KEY_ALGORITHMS])];
}
