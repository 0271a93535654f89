import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import {
  BACKUP_LEASE_NAMESPACE,
  buildLeaseXml,
  checkpointDescription,
  parseCheckpointTag,
  parseLeaseXml,
  type StoredLease,
  storedLeaseIsLive,
  tempVolumeName,
  tempVolumeRun,
  withoutLeaseMetadata,
} from './backup-state';

const UUID = '68766b69-7431-4000-8000-000000000001';

describe('checkpoint tag', () => {
  it('round-trips chain, run and position through the description', () => {
    const tag = {
      chain: '20261207T120501Z-full-3f9a1c',
      run: '20261207T130000Z-incremental-aa',
      position: 3,
    };
    const text = checkpointDescription(tag);
    expect(text).toBe(
      'hvkit chain=20261207T120501Z-full-3f9a1c run=20261207T130000Z-incremental-aa position=3',
    );
    expect(parseCheckpointTag(text)).toEqual(tag);
    expect(parseCheckpointTag(`  ${text}\n`)).toEqual(tag);
  });

  it("recognises hvkit's pre-chain description as legacy and nothing else as hvkit's", () => {
    expect(parseCheckpointTag('created by hvkit backups.backup')).toBe('legacy');
    for (const other of [
      undefined,
      '',
      'virtnbdbackup checkpoint',
      'hvkit chain=a run=b',
      'hvkit chain=a run=b position=x',
      'hvkit chain=a/b run=c position=1',
      'made by hvkit chain=a run=b position=1',
      'hvkit chain=a run=b position=1 extra',
    ]) {
      expect(parseCheckpointTag(other)).toBeUndefined();
    }
  });

  it('refuses ids it could not read back', () => {
    expect(() => checkpointDescription({ chain: 'a b', run: 'r', position: 0 })).toThrow(TypeError);
    expect(() => checkpointDescription({ chain: 'a', run: '', position: 0 })).toThrow(TypeError);
    expect(() => checkpointDescription({ chain: 'a', run: 'r', position: -1 })).toThrow(TypeError);
    expect(() => checkpointDescription({ chain: 'a', run: 'r', position: 1.5 })).toThrow(TypeError);
  });
});

describe('temporary volume names', () => {
  it("carry the guest's uuid, the run and the device, and give the run back", () => {
    const name = tempVolumeName(UUID.toUpperCase(), '20261207T120501Z-full-x1', 'vda');
    expect(name).toBe(`hvkit-backup-${UUID}-20261207T120501Z-full-x1.vda.qcow2`);
    expect(tempVolumeRun(UUID, name)).toBe('20261207T120501Z-full-x1');
    expect(tempVolumeRun(UUID, tempVolumeName(UUID, 'r.1', 'hd-c/x'))).toBe('r.1');
  });

  it("are not another guest's or anyone else's", () => {
    const other = '68766b69-7431-4000-8000-000000000002';
    expect(tempVolumeRun(UUID, tempVolumeName(other, 'r1', 'vda'))).toBeUndefined();
    expect(tempVolumeRun(UUID, 'hvkit-guest1.qcow2')).toBeUndefined();
    expect(tempVolumeRun(UUID, `hvkit-backup-${UUID}-r1.vda.raw`)).toBeUndefined();
    expect(tempVolumeRun(UUID, `hvkit-backup-${UUID}-r 1.vda.qcow2`)).toBeUndefined();
  });
});

describe('lease element', () => {
  const lease: StoredLease = {
    owner: 'host-a:4242',
    run: '20261207T120501Z-full-3f9a1c',
    startedAt: '2026-12-07T12:05:01.000Z',
    expiresAt: '2026-12-07T12:07:01.000Z',
    operation: 'backup',
    checkpoint: 'hvkit-20261207T120501Z-full-3f9a1c',
    artifact: 'guest_1/20261207T120501Z-full-3f9a1c',
  };

  it('round-trips through the XML', () => {
    const xml = buildLeaseXml(lease);
    expect(xml).toMatch(/^<lease /);
    expect(parseLeaseXml(xml)).toEqual(lease);
    const { checkpoint: _c, artifact: _a, ...bare } = lease;
    expect(parseLeaseXml(buildLeaseXml(bare))).toEqual(bare);
  });

  it('escapes what it writes', () => {
    const odd = { ...lease, owner: 'a"b<c>&\'d:1' };
    expect(parseLeaseXml(buildLeaseXml(odd)).owner).toBe(odd.owner);
  });

  it('refuses to write an incomplete or multi-line lease', () => {
    expect(() => buildLeaseXml({ ...lease, owner: '' })).toThrow(TypeError);
    expect(() => buildLeaseXml({ ...lease, run: 'a\nb' })).toThrow(TypeError);
    expect(() => buildLeaseXml({ ...lease, run: 'x'.repeat(1025) })).toThrow(TypeError);
  });

  it('reads a broken lease as PROTOCOL', () => {
    for (const xml of [
      '<lease owner="a:1" run="r" startedAt="2026-01-01T00:00:00Z"/>',
      '<lease owner="a:1" run="r" startedAt="2026-01-01T00:00:00Z" expiresAt="soon"/>',
      '<other/>',
      '<lease',
      `<lease owner="${'x'.repeat(20_000)}"/>`,
    ]) {
      expect(() => parseLeaseXml(xml), xml.slice(0, 60)).toThrow(HvkitError);
    }
  });

  it('is live until it expires, and only while a local owner process exists', () => {
    const at = new Date('2026-12-07T12:06:00Z');
    const never = () => false;
    const always = () => true;
    expect(storedLeaseIsLive(lease, at, 'host-b', never)).toBe(true);
    expect(storedLeaseIsLive(lease, new Date('2026-12-07T12:07:01Z'), 'host-b', always)).toBe(false);
    expect(storedLeaseIsLive(lease, at, 'host-a', always)).toBe(true);
    expect(storedLeaseIsLive(lease, at, 'host-a', never)).toBe(false);
    expect(storedLeaseIsLive({ ...lease, expiresAt: 'x' }, at, 'host-b', always)).toBe(false);
    // This process exists; a pid far beyond pid_max does not.
    expect(storedLeaseIsLive({ ...lease, owner: `host-a:${process.pid}` }, at, 'host-a')).toBe(true);
    expect(storedLeaseIsLive({ ...lease, owner: 'host-a:2147483646' }, at, 'host-a')).toBe(false);
  });
});

describe('withoutLeaseMetadata', () => {
  const lease = `<hvkit-lease:lease xmlns:hvkit-lease="${BACKUP_LEASE_NAMESPACE}" owner="h:1" run="r" startedAt="2026-01-01T00:00:00Z" expiresAt="2026-01-01T00:02:00Z"/>`;

  it('drops the lease and a <metadata> it leaves empty, nothing else', () => {
    const xml = `<domain type='kvm'>\n  <name>g</name>\n  <metadata>\n    ${lease}\n  </metadata>\n  <memory unit='KiB'>1</memory>\n</domain>\n`;
    expect(withoutLeaseMetadata(xml)).toBe(
      "<domain type='kvm'>\n  <name>g</name>\n  <memory unit='KiB'>1</memory>\n</domain>\n",
    );
  });

  it('keeps other metadata, and XML without a lease unchanged', () => {
    const tags =
      '<hvkit:guest xmlns:hvkit="https://hvkit.dev/xmlns/libvirt/1"><hvkit:tag>a</hvkit:tag></hvkit:guest>';
    const xml = `<domain>\n  <metadata>\n    ${tags}\n    ${lease.replace('/>', '></hvkit-lease:lease>')}\n  </metadata>\n</domain>`;
    expect(withoutLeaseMetadata(xml)).toBe(`<domain>\n  <metadata>\n    ${tags}\n  </metadata>\n</domain>`);
    const plain = '<domain><name>g</name></domain>';
    expect(withoutLeaseMetadata(plain)).toBe(plain);
    // What libvirt leaves after the lease's removal goes too.
    expect(withoutLeaseMetadata('<domain>\n  <name>g</name>\n  <metadata/>\n</domain>')).toBe(
      '<domain>\n  <name>g</name>\n</domain>',
    );
    // Another namespace with a lease element stays.
    const foreign = '<domain><metadata><x:lease xmlns:x="urn:other"/></metadata></domain>';
    expect(withoutLeaseMetadata(foreign)).toBe(foreign);
  });
});
