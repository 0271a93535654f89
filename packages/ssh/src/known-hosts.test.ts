import { createHmac, generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  checkHostKey,
  fingerprintOf,
  hostFieldMatches,
  hostLookupName,
  keyTypeOf,
  knownKeyTypes,
  normalizeFingerprint,
  parseKnownHosts,
  preferredHostKeyAlgorithms,
} from './known-hosts';

// Known-answer vectors produced with OpenSSH 9.2 on this project's CI image:
//   ssh-keygen -t ed25519 / -t rsa -b 1024, then `ssh-keygen -l -E sha256 -f key.pub`;
//   `ssh-keygen -H -f known_hosts` for the hashed line of `[10.0.0.1]:2200`.
const ED25519_PUB = 'AAAAC3NzaC1lZDI1NTE5AAAAINfsuvmTf9QZK27fq/OJRM8EzwDSNitJnL1nRu3jzHv8';
const ED25519_FP = 'SHA256:q40pCGoI0xOWIaomVM1XqS7jnNOxu4eck6znpmTdFAg';
const RSA_PUB =
  'AAAAB3NzaC1yc2EAAAADAQABAAAAgQC31JHmsu4NeB3l8TA5IzXNlXdlKnf9ex1Qof4OYdUQkj5AobK3RQsXZSN/D6IOoTuh5O5GyOLvI+vE+agsb3BDi6vqdqzGV+MDyotohIOmKP/A3KwpYREflgD/PiYzd8YrxFbe7mR/Jl4tZWGnvr5mjDRGAhzCS8ZDWt0vVR/zPQ==';
const RSA_FP = 'SHA256:N9KpElx71ezgGlM+DkhN/uQnPeAmbektW001nNASUgk';
const OPENSSH_HASHED = '|1|vA2kgTnvQQVzShpbny0oqcgqG+4=|JQf7R8g8IOKWkm+LUo2CDTcjpyk=';

/** A fresh ed25519 public key blob in SSH wire format. */
function newEd25519Blob(): Buffer {
  const { publicKey } = generateKeyPairSync('ed25519');
  const raw = Buffer.from(publicKey.export({ format: 'jwk' }).x as string, 'base64url');
  const type = Buffer.from('ssh-ed25519');
  const out = Buffer.alloc(4 + type.length + 4 + raw.length);
  out.writeUInt32BE(type.length, 0);
  type.copy(out, 4);
  out.writeUInt32BE(raw.length, 4 + type.length);
  raw.copy(out, 8 + type.length);
  return out;
}

/** Hashes a host name the way OpenSSH's HashKnownHosts does. */
function hashHost(name: string, salt = randomBytes(20)): string {
  const mac = createHmac('sha1', salt).update(name).digest('base64');
  return `|1|${salt.toString('base64')}|${mac}`;
}

const b64 = (blob: Buffer) => blob.toString('base64');

describe('fingerprints', () => {
  it('match ssh-keygen -l -E sha256', () => {
    expect(fingerprintOf(Buffer.from(ED25519_PUB, 'base64'))).toBe(ED25519_FP);
    expect(fingerprintOf(Buffer.from(RSA_PUB, 'base64'))).toBe(RSA_FP);
  });

  it('reads the key type from the blob', () => {
    expect(keyTypeOf(Buffer.from(ED25519_PUB, 'base64'))).toBe('ssh-ed25519');
    expect(keyTypeOf(Buffer.from(RSA_PUB, 'base64'))).toBe('ssh-rsa');
    expect(keyTypeOf(Buffer.from([0, 0, 0, 200, 1]))).toBeUndefined();
  });

  it('reads a key type of 1 to 64 bytes that fits the blob, nothing else', () => {
    const blob = (len: number, type: string) => {
      const b = Buffer.alloc(4 + Buffer.byteLength(type));
      b.writeUInt32BE(len, 0);
      b.write(type, 4, 'latin1');
      return b;
    };
    expect(keyTypeOf(blob(1, 'x'))).toBe('x');
    expect(keyTypeOf(blob(64, 'k'.repeat(64)))).toBe('k'.repeat(64));
    expect(keyTypeOf(blob(65, 'k'.repeat(65)))).toBeUndefined();
    expect(keyTypeOf(blob(0, 'x'))).toBeUndefined();
    expect(keyTypeOf(blob(2, 'x'))).toBeUndefined();
    expect(keyTypeOf(Buffer.from([0, 0, 0]))).toBeUndefined();
    expect(keyTypeOf(new Uint8Array())).toBeUndefined();
    // A view into a larger buffer reads from its own start.
    const outer = Buffer.concat([Buffer.from('junk'), blob(3, 'abc')]);
    expect(keyTypeOf(outer.subarray(4))).toBe('abc');
  });

  it('normalises user input and rejects non-SHA256 forms', () => {
    expect(normalizeFingerprint(`${ED25519_FP}=`)).toBe(ED25519_FP);
    expect(normalizeFingerprint(`  ${ED25519_FP} `)).toBe(ED25519_FP);
    expect(normalizeFingerprint('MD5:16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48')).toBeUndefined();
    expect(normalizeFingerprint('SHA256:short')).toBeUndefined();
    expect(normalizeFingerprint(`${ED25519_FP}AAAA`)).toBeUndefined();
    expect(normalizeFingerprint(`x${ED25519_FP}`)).toBeUndefined();
    expect(normalizeFingerprint(`${ED25519_FP}==`)).toBeUndefined();
  });
});

describe('parseKnownHosts', () => {
  it('keeps plain, hashed and @revoked lines; skips comments, @cert-authority and junk', () => {
    const text = [
      '# comment',
      '',
      `host1,10.0.0.5 ssh-ed25519 ${ED25519_PUB} comment here`,
      `${OPENSSH_HASHED} ssh-ed25519 ${ED25519_PUB}`,
      `@revoked * ssh-rsa ${RSA_PUB}`,
      `@cert-authority *.example.com ssh-rsa ${RSA_PUB}`,
      `@bogus host ssh-rsa ${RSA_PUB}`,
      'host2 ssh-ed25519 not!base64',
      `host3 ssh-rsa ${ED25519_PUB}`,
      'host4 ssh-ed25519',
    ].join('\n');
    const k = parseKnownHosts(text, 'kh');
    expect(k.entries.map((e) => [e.hosts, e.keyType, e.marker, e.line])).toEqual([
      ['host1,10.0.0.5', 'ssh-ed25519', null, 3],
      [OPENSSH_HASHED, 'ssh-ed25519', null, 4],
      ['*', 'ssh-rsa', 'revoked', 5],
    ]);
    expect(k.entries[0]?.source).toBe('kh');
    expect(k.skipped.map((s) => s.line)).toEqual([6, 7, 8, 9, 10]);
    expect(k.skipped[0]?.reason).toMatch(/cert-authority/);
  });

  it('names why each line was skipped', () => {
    const k = parseKnownHosts(
      [
        `@cert-authority *.example.com ssh-rsa ${RSA_PUB}`,
        `@bogus host ssh-rsa ${RSA_PUB}`,
        'host2 ssh-ed25519',
        'host3 ssh-ed25519 not!base64',
        `host4 ssh-ed25519 !${ED25519_PUB}`,
        `host5 ssh-ed25519 ${ED25519_PUB}!`,
        `host6 ssh-rsa ${ED25519_PUB}`,
      ].join('\n'),
    );
    expect(k.entries).toEqual([]);
    expect(k.skipped).toEqual([
      { line: 1, reason: '@cert-authority lines are not supported' },
      { line: 2, reason: 'unknown marker @bogus' },
      { line: 3, reason: 'expected: hosts keytype key [comment]' },
      { line: 4, reason: 'key is not base64' },
      { line: 5, reason: 'key is not base64' },
      { line: 6, reason: 'key is not base64' },
      { line: 7, reason: 'key blob is not of type ssh-rsa' },
    ]);
  });

  it('reads fields separated by runs of spaces and tabs, on indented lines, without a source', () => {
    const k = parseKnownHosts(
      `  \t host1 \t ssh-ed25519   ${ED25519_PUB}  \t a comment  \n\t@revoked  *  ssh-rsa\t${RSA_PUB}`,
    );
    expect(k.skipped).toEqual([]);
    expect(k.entries.map((e) => [e.hosts, e.keyType, e.marker, e.line, 'source' in e])).toEqual([
      ['host1', 'ssh-ed25519', null, 1, false],
      ['*', 'ssh-rsa', 'revoked', 2, false],
    ]);
    expect(k.entries[0]?.key.toString('base64')).toBe(ED25519_PUB);
  });

  it('accepts CRLF line ends', () => {
    const k = parseKnownHosts(`a ssh-ed25519 ${ED25519_PUB}\r\nb ssh-rsa ${RSA_PUB}\r\n`);
    expect(k.entries.map((e) => e.hosts)).toEqual(['a', 'b']);
  });
});

describe('host matching', () => {
  it('uses [host]:port for ports other than 22, lower-cased', () => {
    expect(hostLookupName('Example.COM')).toBe('example.com');
    expect(hostLookupName('example.com', 22)).toBe('example.com');
    expect(hostLookupName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  it('matches plain patterns, wildcards and negation', () => {
    expect(hostFieldMatches('a,b,c', 'b')).toBe(true);
    expect(hostFieldMatches('a,b,c', 'd')).toBe(false);
    expect(hostFieldMatches('*.example.com', 'kvm1.example.com')).toBe(true);
    expect(hostFieldMatches('*.example.com', 'example.com')).toBe(false);
    expect(hostFieldMatches('kvm?.lab', 'kvm7.lab')).toBe(true);
    expect(hostFieldMatches('kvm?.lab', 'kvm17.lab')).toBe(false);
    expect(hostFieldMatches('*.lab,!bad.lab', 'bad.lab')).toBe(false);
    expect(hostFieldMatches('*.lab,!bad.lab', 'good.lab')).toBe(true);
    expect(hostFieldMatches('[127.0.0.1]:2222', '[127.0.0.1]:2222')).toBe(true);
    expect(hostFieldMatches('[127.0.0.1]:2222', '127.0.0.1')).toBe(false);
    expect(hostFieldMatches('[127.0.0.1]:*', '[127.0.0.1]:4000')).toBe(true);
    expect(hostFieldMatches('KVM1', 'kvm1')).toBe(true);
    expect(hostFieldMatches('a,,b', 'b')).toBe(true);
    expect(hostFieldMatches('', '')).toBe(false);
    expect(hostFieldMatches(',', '')).toBe(false);
    // Only * and ? are wildcards; a plain pattern is compared whole.
    expect(hostFieldMatches('kvm', 'kvm1')).toBe(false);
    expect(hostFieldMatches('k*m?', 'kvm1')).toBe(true);
    expect(hostFieldMatches('*', 'a\nb')).toBe(true);
    // A negation only refuses; alone it matches nothing.
    expect(hostFieldMatches('!bad.lab', 'good.lab')).toBe(false);
    expect(hostFieldMatches('!bad.lab,*.lab', 'bad.lab')).toBe(false);
    // Regex characters in patterns are literal.
    expect(hostFieldMatches('a.b', 'axb')).toBe(false);
  });

  it('anchors wildcard patterns at both ends: a longer name that merely contains a match is refused', () => {
    expect(hostFieldMatches('kvm?.lab', 'evilkvm1.lab')).toBe(false);
    expect(hostFieldMatches('kvm?.lab', 'kvm1.lab.evil')).toBe(false);
    expect(hostFieldMatches('*.example.com', 'kvm1.example.com.attacker.net')).toBe(false);
    expect(hostFieldMatches('[10.0.0.?]:22?', '[10.0.0.1]:2222')).toBe(false);
    expect(hostFieldMatches('[10.0.0.?]:22?', 'x[10.0.0.1]:222')).toBe(false);
    expect(hostFieldMatches('[10.0.0.?]:22?', '[10.0.0.1]:222')).toBe(true);
    // A plain name is compared whole, too.
    expect(hostFieldMatches('kvm1.lab', 'evilkvm1.lab')).toBe(false);
    expect(hostFieldMatches('kvm1.lab', 'kvm1.lab.evil')).toBe(false);
  });

  it('matches hashed entries (HMAC-SHA1 keyed by the salt)', () => {
    expect(hostFieldMatches(hashHost('kvm1.example.com'), 'kvm1.example.com')).toBe(true);
    expect(hostFieldMatches(hashHost('kvm1.example.com'), 'kvm2.example.com')).toBe(false);
    expect(hostFieldMatches(hashHost('[127.0.0.1]:2222'), '[127.0.0.1]:2222')).toBe(true);
    expect(hostFieldMatches(hashHost('[127.0.0.1]:2222'), '127.0.0.1')).toBe(false);
    // The line OpenSSH itself hashed.
    expect(hostFieldMatches(OPENSSH_HASHED, '[10.0.0.1]:2200')).toBe(true);
    expect(hostFieldMatches(OPENSSH_HASHED, '10.0.0.1')).toBe(false);
    // Malformed hashed fields never match.
    expect(hostFieldMatches('|1|bad', 'x')).toBe(false);
    expect(hostFieldMatches('|2|AAAA|BBBB', 'x')).toBe(false);
    const [, , salt, mac] = hashHost('x').split('|') as string[];
    expect(hostFieldMatches(`|1|${salt}|${mac}|`, 'x')).toBe(false);
    expect(hostFieldMatches(`|2|${salt}|${mac}`, 'x')).toBe(false);
    expect(hostFieldMatches(`|1||${mac}`, 'x')).toBe(false);
    expect(hostFieldMatches(`|1|${salt}|${(mac as string).slice(0, 12)}`, 'x')).toBe(false);
    // OpenSSH compares the field with its own encoding of salt and HMAC: anything Node's lenient base64
    // decoder would skip over (junk after the padding, characters outside the alphabet, missing padding,
    // a salt that is not 20 bytes) is a field that does not match, not a match.
    expect(hostFieldMatches(`|1|${salt}|${mac}junk`, 'x')).toBe(false);
    expect(hostFieldMatches(`|1|${salt}|${mac}==`, 'x')).toBe(false);
    expect(hostFieldMatches(`|1|${salt}|${(mac as string).replace('=', '')}`, 'x')).toBe(false);
    expect(hostFieldMatches(`|1|${salt} |${mac}`, 'x')).toBe(false);
    expect(
      hostFieldMatches(`|1|${(salt as string).slice(0, 4)}!${(salt as string).slice(4)}|${mac}`, 'x'),
    ).toBe(false);
    const shortSalt = randomBytes(8);
    const shortMac = createHmac('sha1', shortSalt).update('x').digest('base64');
    expect(hostFieldMatches(`|1|${shortSalt.toString('base64')}|${shortMac}`, 'x')).toBe(false);
  });
});

describe('checkHostKey', () => {
  const good = newEd25519Blob();
  const other = newEd25519Blob();
  const rsa = Buffer.from(RSA_PUB, 'base64');

  it('accepts the listed key, in plain and hashed form, with the port', () => {
    for (const hosts of ['[127.0.0.1]:2222', hashHost('[127.0.0.1]:2222'), 'x,[127.0.0.1]:2222']) {
      const k = parseKnownHosts(`${hosts} ssh-ed25519 ${b64(good)}\n`);
      const r = checkHostKey(k, '127.0.0.1', 2222, good);
      expect(r.ok).toBe(true);
    }
  });

  it('accepts any of several keys and key types listed for a host', () => {
    const k = parseKnownHosts(
      `h ssh-rsa ${RSA_PUB}\nh ssh-ed25519 ${b64(other)}\nh ssh-ed25519 ${b64(good)}\n`,
    );
    expect(checkHostKey(k, 'h', 22, good).ok).toBe(true);
    expect(checkHostKey(k, 'h', 22, rsa).ok).toBe(true);
    expect(knownKeyTypes(k, 'h', 22)).toEqual(['ssh-rsa', 'ssh-ed25519']);
  });

  it('reports a changed key of the same type as HOST_KEY_MISMATCH', () => {
    const k = parseKnownHosts(`${hashHost('h')} ssh-ed25519 ${b64(other)}\n`);
    const r = checkHostKey(k, 'h', 22, good);
    expect(r).toMatchObject({ ok: false, reason: 'HOST_KEY_MISMATCH', knownTypes: ['ssh-ed25519'] });
  });

  it('reports a host known only with other key types, or not at all, as HOST_KEY_UNKNOWN', () => {
    const k = parseKnownHosts(`h ssh-rsa ${RSA_PUB}\n`);
    expect(checkHostKey(k, 'h', 22, good)).toMatchObject({
      ok: false,
      reason: 'HOST_KEY_UNKNOWN',
      knownTypes: ['ssh-rsa'],
    });
    expect(checkHostKey(k, 'other', 22, good)).toMatchObject({
      ok: false,
      reason: 'HOST_KEY_UNKNOWN',
      knownTypes: [],
    });
    // Same host, other port: unknown.
    expect(checkHostKey(k, 'h', 2222, rsa)).toMatchObject({ ok: false, reason: 'HOST_KEY_UNKNOWN' });
  });

  it('refuses a @revoked key even when it is also listed as valid', () => {
    const k = parseKnownHosts(`h ssh-ed25519 ${b64(good)}\n@revoked * ssh-ed25519 ${b64(good)}\n`);
    expect(checkHostKey(k, 'h', 22, good)).toMatchObject({ ok: false, reason: 'HOST_KEY_REVOKED' });
    // Another key of the host stays valid.
    const k2 = parseKnownHosts(`h ssh-ed25519 ${b64(good)}\n@revoked * ssh-ed25519 ${b64(other)}\n`);
    expect(checkHostKey(k2, 'h', 22, good).ok).toBe(true);
  });

  it('never takes a @revoked line as a key of the host', () => {
    const k = parseKnownHosts(`@revoked h ssh-ed25519 ${b64(good)}\nh ssh-rsa ${RSA_PUB}\n`);
    expect(knownKeyTypes(k, 'h', 22)).toEqual(['ssh-rsa']);
    expect(checkHostKey(k, 'h', 22, other)).toEqual({
      ok: false,
      reason: 'HOST_KEY_UNKNOWN',
      knownTypes: ['ssh-rsa'],
    });
    expect(knownKeyTypes(k, 'other', 22)).toEqual([]);
  });

  it('ignores @cert-authority lines (they never make a host known)', () => {
    const k = parseKnownHosts(`@cert-authority * ssh-ed25519 ${b64(good)}\n`);
    expect(checkHostKey(k, 'h', 22, good)).toMatchObject({ ok: false, reason: 'HOST_KEY_UNKNOWN' });
  });
});

describe('preferredHostKeyAlgorithms', () => {
  it('puts the known key types first and keeps every other algorithm', () => {
    const all = preferredHostKeyAlgorithms([]);
    expect(all[0]).toBe('ssh-ed25519');
    const rsaFirst = preferredHostKeyAlgorithms(['ssh-rsa']);
    expect(rsaFirst.slice(0, 3)).toEqual(['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa']);
    expect([...rsaFirst].sort()).toEqual([...all].sort());
    expect(preferredHostKeyAlgorithms(['ecdsa-sha2-nistp256', 'ssh-unknown'])[0]).toBe('ecdsa-sha2-nistp256');
    expect(preferredHostKeyAlgorithms(['ssh-unknown'])).toEqual(all);
    expect(all).toEqual([
      'ssh-ed25519',
      'ecdsa-sha2-nistp256',
      'ecdsa-sha2-nistp384',
      'ecdsa-sha2-nistp521',
      'rsa-sha2-512',
      'rsa-sha2-256',
      'ssh-rsa',
    ]);
  });
});
