import { describe, expect, it } from 'vitest';
import { sampleManifest } from '../__test-utils__/artifacts';
import { HvkitError } from '../errors/hvkit-error';
import type { BackupFile } from '../hypervisor/v1/model';
import { createMemorySink } from '../testing/memory-sink';
import {
  artifactPath,
  BACKUP_MANIFEST_FILE,
  BACKUP_MANIFEST_MAX_BYTES,
  type BackupManifest,
  checkBackupManifest,
  newArtifactId,
  parseBackupManifest,
  serializeBackupManifest,
  writeBackupManifest,
} from './manifest';

function codeOf(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    if (HvkitError.isInstance(e)) return `${e.code}: ${e.message}`;
    return `not an HvkitError: ${String(e)}`;
  }
  return 'no error';
}

describe('newArtifactId and artifactPath', () => {
  it('ids sort by time and carry the kind', () => {
    const a = newArtifactId('full', new Date('2026-12-07T12:05:01.123Z'), () => 'x1');
    const b = newArtifactId('incremental', new Date('2026-12-07T12:05:02Z'), () => 'x0');
    expect(a).toBe('20261207T120501Z-full-x1');
    expect(a < b).toBe(true);
  });

  it('guest names become safe folder names', () => {
    expect(artifactPath('web', 'id1')).toBe('web/id1');
    expect(artifactPath('../../etc', 'id1')).toBe('__.._etc/id1');
    expect(artifactPath('..', 'id1')).toBe('_/id1');
    expect(artifactPath('', 'id1')).toBe('_/id1');
    expect(artifactPath('a b/c\u202e', 'id1')).toBe('a_b_c_/id1');
    expect(artifactPath('x'.repeat(300), 'i').split('/')[0]).toHaveLength(128);
    expect(codeOf(() => artifactPath('web', '..'))).toMatch(/^INVALID_ARGUMENT/);
  });
});

describe('checkBackupManifest: every rule', () => {
  const cases: [string, (m: Record<string, unknown>) => void, RegExp][] = [
    ['format', (m) => (m.format = 'other'), /format/],
    ['version', (m) => (m.version = '1'), /version is not 1/],
    ['specificationVersion', (m) => (m.specificationVersion = 'v2'), /specificationVersion/],
    ['adapter', (m) => (m.adapter = ''), /adapter/],
    ['adapter length', (m) => (m.adapter = 'a'.repeat(65)), /adapter/],
    ['id chars', (m) => (m.id = 'a/b'), /id has characters/],
    ['id dot', (m) => (m.id = '.hidden'), /id has characters/],
    ['kind', (m) => (m.kind = 'weekly'), /kind/],
    ['method', (m) => (m.method = 3), /method/],
    ['guest', (m) => (m.guest = null), /guest is missing/],
    ['guest.id', (m) => (m.guest = { name: 'x' }), /guest\.id/],
    ['guest.uuid', (m) => (m.guest = { id: 'a', name: 'b', uuid: 1 }), /guest\.uuid/],
    ['startedAt', (m) => (m.startedAt = 'yesterday'), /startedAt is not an ISO/],
    ['completedAt', (m) => (m.completedAt = 5), /completedAt/],
    ['consistency', (m) => (m.consistency = 'app'), /consistency/],
    ['chain', (m) => (m.chain = 'c'), /chain is not an object/],
    ['chain.position', (m) => (m.chain = { id: 'c', position: -1 }), /chain\.position/],
    ['chain.id', (m) => (m.chain = { position: 0 }), /chain\.id/],
    ['base', (m) => (m.base = ''), /base/],
    ['checkpoint', (m) => (m.checkpoint = 7), /checkpoint/],
    ['incremental without base', (m) => (m.kind = 'incremental'), /no base or chain/],
    [
      'incremental at 0',
      (m) => Object.assign(m, { kind: 'incremental', base: 'x' }),
      /incremental at chain position 0/,
    ],
    ['files', (m) => (m.files = {}), /files is not an array/],
    ['file object', (m) => (m.files = [null]), /files\[0\] is not an object/],
    [
      'file name ..',
      (m) => ((m.files as Record<string, unknown>[])[0]!.name = '../x'),
      /not a safe relative path/,
    ],
    ['file name absolute', (m) => ((m.files as Record<string, unknown>[])[0]!.name = '/etc/passwd'), /safe/],
    [
      'manifest listed',
      (m) => ((m.files as Record<string, unknown>[])[0]!.name = BACKUP_MANIFEST_FILE),
      /manifest itself/,
    ],
    ['duplicate', (m) => ((m.files as Record<string, unknown>[])[1]!.name = 'guest.json'), /listed twice/],
    ['role', (m) => ((m.files as Record<string, unknown>[])[0]!.role = 'x'), /role/],
    ['bytes', (m) => ((m.files as Record<string, unknown>[])[0]!.bytes = -1), /bytes/],
    ['bytes huge', (m) => ((m.files as Record<string, unknown>[])[0]!.bytes = 2 ** 60), /bytes/],
    ['sha upper', (m) => ((m.files as Record<string, unknown>[])[0]!.sha256 = 'A'.repeat(64)), /sha256/],
    ['disk object', (m) => ((m.files as Record<string, unknown>[])[1]!.disk = 1), /disk is not an object/],
    [
      'disk capacity',
      (m) =>
        ((m.files as Record<string, unknown>[])[1]!.disk = {
          device: 'vda',
          format: 'raw',
          capacityBytes: 1.5,
        }),
      /capacityBytes/,
    ],
    [
      'disk without disk',
      (m) => delete (m.files as Record<string, unknown>[])[1]!.disk,
      /disk file without disk/,
    ],
    ['no definition', (m) => (m.files as unknown[]).shift(), /no definition/],
  ];
  for (const [what, mutate, message] of cases) {
    it(`refuses a bad ${what}`, () => {
      const m = structuredClone(sampleManifest()) as unknown as Record<string, unknown>;
      mutate(m);
      const got = codeOf(() => checkBackupManifest(m as unknown as BackupManifest));
      expect(got).toMatch(/^INVALID_ARGUMENT: Invalid backup manifest/);
      expect(got).toMatch(message);
      expect(codeOf(() => parseBackupManifest(JSON.stringify(m)))).toMatch(/^PROTOCOL/);
    });
  }

  it('accepts a valid manifest and keeps only known fields', () => {
    const m = {
      ...sampleManifest(),
      extra: 'dropped',
      files: sampleManifest().files.map((f) => ({ ...f, x: 1 })),
    };
    const out = checkBackupManifest(m);
    expect(out).toEqual(sampleManifest());
    expect(Object.keys(out)).not.toContain('extra');
    expect(checkBackupManifest(sampleManifest({ kind: 'host-config', files: [] })).files).toEqual([]);
    const inc = sampleManifest({ kind: 'incremental', base: 'a', chain: { id: 'a', position: 1 } });
    expect(checkBackupManifest(inc).base).toBe('a');
  });
});

describe('parseBackupManifest', () => {
  it('round-trips what serializeBackupManifest writes (string and bytes)', () => {
    const bytes = serializeBackupManifest(sampleManifest());
    const text = new TextDecoder().decode(bytes);
    expect(text.endsWith('}\n')).toBe(true);
    expect(parseBackupManifest(bytes)).toEqual(sampleManifest());
    expect(parseBackupManifest(text)).toEqual(sampleManifest());
  });

  it('refuses a newer version as UNSUPPORTED and other versions as PROTOCOL', () => {
    expect(codeOf(() => parseBackupManifest(JSON.stringify({ ...sampleManifest(), version: 2 })))).toMatch(
      /^UNSUPPORTED: Backup manifest version 2/,
    );
    expect(codeOf(() => parseBackupManifest(JSON.stringify({ ...sampleManifest(), version: 0 })))).toMatch(
      /^PROTOCOL/,
    );
  });

  it('hostile input: huge, deep, not JSON, not UTF-8, __proto__', () => {
    const huge = JSON.stringify({ ...sampleManifest(), pad: 'x'.repeat(BACKUP_MANIFEST_MAX_BYTES) });
    expect(codeOf(() => parseBackupManifest(huge))).toMatch(/^PROTOCOL: Backup manifest is \d+ bytes, over/);
    const deep = `${'['.repeat(400_000)}${']'.repeat(400_000)}`;
    expect(codeOf(() => parseBackupManifest(deep))).toMatch(/^PROTOCOL/);
    const deepObject = `{"format":"hvkit-backup","version":1,"guest":${'{"a":'.repeat(100_000)}1${'}'.repeat(100_000)}}`;
    expect(codeOf(() => parseBackupManifest(deepObject))).toMatch(/^PROTOCOL/);
    expect(codeOf(() => parseBackupManifest('{"format":'))).toMatch(
      /^PROTOCOL: Backup manifest is not valid JSON/,
    );
    expect(codeOf(() => parseBackupManifest(new Uint8Array([0x7b, 0xff, 0x7d])))).toMatch(/^PROTOCOL/);
    expect(codeOf(() => parseBackupManifest('null'))).toMatch(/^PROTOCOL/);
    expect(codeOf(() => parseBackupManifest('[]'))).toMatch(/^PROTOCOL/);
    const proto = serializeBackupManifest(sampleManifest());
    const text = new TextDecoder()
      .decode(proto)
      .replace(
        '"format"',
        '"__proto__": { "polluted": true }, "constructor": { "prototype": { "p": 1 } }, "format"',
      )
      .replace('"name": "web"', '"name": "web", "__proto__": { "id": "evil" }');
    const parsed = parseBackupManifest(text);
    expect(parsed).toEqual(sampleManifest());
    expect(Object.getPrototypeOf(parsed)).toBe(Object.prototype);
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.keys(parsed.guest)).toEqual(['id', 'name', 'uuid']);
  });
});

describe('writeBackupManifest', () => {
  it('writes the manifest into the artifact folder, with its size announced', async () => {
    const sink = createMemorySink();
    const file: BackupFile = await writeBackupManifest(sink, 'web/id1', sampleManifest());
    expect(file.name).toBe(`web/id1/${BACKUP_MANIFEST_FILE}`);
    const data = sink.read(file.name) as Uint8Array;
    expect(file.bytes).toBe(data.length);
    expect(parseBackupManifest(data)).toEqual(sampleManifest());
    await expect(
      writeBackupManifest(sink, 'web/id2', { ...sampleManifest(), version: 3 as 1 }),
    ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' });
    expect(sink.read(`web/id2/${BACKUP_MANIFEST_FILE}`)).toBeUndefined();
  });
});
