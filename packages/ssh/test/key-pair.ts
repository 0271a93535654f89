import ssh2 from 'ssh2';

/**
 * `ssh2.utils.generateKeyPairSync`, retried until ssh2 can parse the private key it made: about 4 in 1,000
 * ed25519 keys it generates are refused by its own parser ("Malformed OpenSSH private key"), which made tests
 * using a fresh key fail now and then.
 */
export function generateParsableKeyPair(
  type: 'ed25519' | 'ecdsa' | 'rsa',
  bits?: number,
): { private: string; public: string } {
  for (let attempt = 0; attempt < 20; attempt++) {
    const pair = ssh2.utils.generateKeyPairSync(type, bits === undefined ? {} : { bits });
    if (!(ssh2.utils.parseKey(pair.private) instanceof Error)) return pair;
  }
  throw new Error(`ssh2 made 20 ${type} keys in a row that it cannot parse`);
}
