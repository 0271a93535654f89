import { readFileSync } from 'node:fs';
import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { decodeLvAttr, MAX_REPORT_BYTES, parseLvmReport } from './report';

function expectProtocol(fn: () => unknown, message: RegExp) {
  try {
    fn();
  } catch (error) {
    expect(HvkitError.isInstance(error, 'PROTOCOL')).toBe(true);
    expect((error as Error).message).toMatch(message);
    return;
  }
  throw new Error('expected a PROTOCOL error');
}

describe('decodeLvAttr', () => {
  it('decodes every position of the examples man lvs gives', () => {
    expect(decodeLvAttr('-wi-ao----')).toEqual({
      raw: '-wi-ao----',
      type: 'linear',
      permissions: 'writable',
      allocation: 'inherited',
      allocationLocked: false,
      fixedMinor: false,
      state: 'active',
      open: true,
      target: 'none',
      zeroing: false,
      health: 'ok',
      skipActivation: false,
    });
    expect(decodeLvAttr('owi-aos---')).toMatchObject({ type: 'origin', open: true, target: 'snapshot' });
    expect(decodeLvAttr('swi-I-s---')).toMatchObject({ type: 'snapshot', state: 'invalid-snapshot' });
    expect(decodeLvAttr('Vwi---tz-k')).toMatchObject({
      type: 'thin',
      state: 'inactive',
      open: false,
      target: 'thin',
      zeroing: true,
      skipActivation: true,
    });
    expect(decodeLvAttr('twi-aotzD-')).toMatchObject({
      type: 'thin-pool',
      health: 'out-of-data',
      zeroing: true,
    });
    expect(decodeLvAttr('RRCm-Xu--k')).toMatchObject({
      type: 'raid-unsynced',
      permissions: 'read-only-activation',
      allocation: 'contiguous',
      allocationLocked: true,
      fixedMinor: true,
      state: 'inactive',
      open: null,
      target: 'unknown',
    });
    expect(decodeLvAttr('ewi-------')).toMatchObject({ type: 'metadata' });
    expect(decodeLvAttr('Swi-S-s---')).toMatchObject({
      type: 'snapshot-merging',
      state: 'invalid-snapshot-suspended',
    });
  });

  it('reads a letter it does not know as unknown, and refuses what is not an lv_attr', () => {
    expect(decodeLvAttr('?wi-a-----')).toMatchObject({ type: 'unknown' });
    expectProtocol(() => decodeLvAttr('-wi-a'), /not 10 printable/);
    expectProtocol(() => decodeLvAttr('-wi-a-----x'), /not 10 printable/);
    expectProtocol(() => decodeLvAttr('-wi-a- ---'), /not 10 printable/);
    expectProtocol(() => decodeLvAttr('-wi-a-\n---'), /not 10 printable/);
    expectProtocol(() => decodeLvAttr('-wiXa-----'), /fixed minor/);
    expectProtocol(() => decodeLvAttr('-wi-a--q--'), /zeroing/);
    expect(() => decodeLvAttr(7 as unknown as string)).toThrow(TypeError);
  });
});

describe('parseLvmReport hostile input', () => {
  it('refuses what is not a report with PROTOCOL', () => {
    expectProtocol(() => parseLvmReport(''), /not valid JSON/);
    expectProtocol(() => parseLvmReport('  Volume group "vg0" not found'), /not valid JSON/);
    expectProtocol(() => parseLvmReport('[]'), /not a JSON object/);
    expectProtocol(() => parseLvmReport('null'), /not a JSON object/);
    expectProtocol(() => parseLvmReport('{}'), /no "report" array/);
    expectProtocol(() => parseLvmReport('{"report":{}}'), /no "report" array/);
    expectProtocol(() => parseLvmReport('{"report":[1]}'), /report\[0\] is not an object/);
    expectProtocol(() => parseLvmReport('{"report":[{"lv":{}}]}'), /lv is not an array/);
    expectProtocol(() => parseLvmReport('{"report":[{"lv":[[]]}]}'), /lv\[0\] is not an object/);
    expectProtocol(
      () => parseLvmReport('{"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_size":67108864}]}]}'),
      /lv_size is not a string/,
    );
    expectProtocol(() => parseLvmReport('{"report":[{"lv":[{"vg_name":"v"}]}]}'), /has no lv_name/);
    expectProtocol(() => parseLvmReport('{"report":[{"lv":[{"lv_name":"a"}]}]}'), /has no vg_name/);
    expectProtocol(
      () => parseLvmReport('{"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_size":"64.00m"}]}]}'),
      /not a byte count/,
    );
    expectProtocol(
      () =>
        parseLvmReport(
          '{"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_size":"99999999999999999999"}]}]}',
        ),
      /not a byte count/,
    );
    expectProtocol(
      () => parseLvmReport('{"report":[{"lv":[{"lv_name":"a","vg_name":"v","snap_percent":"101.00"}]}]}'),
      /not a percentage/,
    );
    expectProtocol(
      () => parseLvmReport('{"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_time":"yesterday"}]}]}'),
      /not a time/,
    );
    expectProtocol(
      () => parseLvmReport('{"report":[{"lv":[{"lv_name":"a","vg_name":"v","lv_attr":"rm -rf /"}]}]}'),
      /lv_attr/,
    );
    expectProtocol(() => parseLvmReport(new Uint8Array([0x7b, 0xff, 0x7d])), /not valid JSON/);
    expectProtocol(
      () => parseLvmReport(`{"report":[{"lv":[{"lv_name":"${'a'.repeat(5000)}","vg_name":"v"}]}]}`),
      /longer than/,
    );
    expectProtocol(() => parseLvmReport(' '.repeat(MAX_REPORT_BYTES + 1)), /over the/);
    const many = JSON.stringify({
      report: [{ pv: Array.from({ length: 100_001 }, () => ({ pv_name: 'x' })) }],
    });
    expectProtocol(() => parseLvmReport(many), /more than 100000 rows/);
    expect(() => parseLvmReport(42 as unknown as string)).toThrow(TypeError);
  });

  it('keeps a hostile __proto__ key as a plain field', () => {
    const report = parseLvmReport(
      '{"report":[{"lv":[{"lv_name":"a","vg_name":"v","__proto__":"x","constructor":"y"}]}]}',
    );
    const lv = report.logicalVolumes[0];
    expect(Object.getOwnPropertyDescriptor(lv?.fields, '__proto__')?.value).toBe('x');
    expect(({} as Record<string, unknown>).x).toBeUndefined();
  });

  it('ignores log, seg and pvseg sections and reads an empty report', () => {
    expect(parseLvmReport('{"report":[{"lv":[]}],"log":[{"log_seq_num":"1"}]}')).toEqual({
      logicalVolumes: [],
      volumeGroups: [],
      physicalVolumes: [],
    });
    expect(parseLvmReport('{"report":[{"seg":[{"x":"1"}],"pvseg":[]}]}').logicalVolumes).toEqual([]);
  });
});

const sample = (name: string) => readFileSync(new URL(`./__samples__/${name}`, import.meta.url), 'utf8');

describe('parseLvmReport on reports recorded in the lab VM (lvm2 2.03.16)', () => {
  it('tells linear volumes, origins, COW snapshots, an invalid snapshot, thin pools, thin volumes, thin snapshots and internal volumes apart', () => {
    const { logicalVolumes: lvs } = parseLvmReport(sample('lvs-linear-cow-thin.json'));
    const by = (name: string) => {
      const lv = lvs.find((l) => l.name === name);
      if (!lv) throw new Error(`no ${name}`);
      return lv;
    };
    expect(lvs.map((l) => [l.name, l.kind])).toEqual([
      ['lin', 'volume'],
      ['lin-snap', 'snapshot'],
      ['lin-tiny', 'snapshot'],
      ['lvol0_pmspare', 'internal'],
      ['pool', 'thin-pool'],
      ['pool_tdata', 'internal'],
      ['pool_tmeta', 'internal'],
      ['thin1', 'thin'],
      ['thin1-snap', 'thin-snapshot'],
    ]);
    expect(by('lin')).toMatchObject({
      vgName: 'hvkit-test-sample',
      fullName: 'hvkit-test-sample/lin',
      path: '/dev/hvkit-test-sample/lin',
      sizeBytes: 33554432,
      attr: { type: 'origin', state: 'active', open: false, target: 'snapshot' },
      snapshotInvalid: false,
      active: true,
      segtype: 'linear',
      createdAt: new Date('2026-12-07T14:52:51Z'),
      tags: [],
    });
    expect(by('lin').dataPercent).toBeUndefined();
    expect(by('lin-snap')).toMatchObject({
      origin: 'lin',
      dataPercent: 75.39,
      snapshotInvalid: false,
      sizeBytes: 8388608,
    });
    expect(by('lin-tiny')).toMatchObject({
      origin: 'lin',
      dataPercent: 100,
      snapshotInvalid: true,
      attr: { state: 'invalid-snapshot' },
    });
    expect(by('lvol0_pmspare')).toMatchObject({ internal: true, attr: { type: 'metadata' } });
    expect(by('lvol0_pmspare').path).toBeUndefined();
    expect(by('pool')).toMatchObject({
      dataPercent: 6.25,
      metadataPercent: 10.94,
      transactionId: 2,
      internal: false,
    });
    expect(by('pool_tdata')).toMatchObject({ internal: true, attr: { type: 'thin-pool-data', open: true } });
    expect(by('thin1')).toMatchObject({
      pool: 'pool',
      thinId: 1,
      dataPercent: 8.33,
      attr: { zeroing: true },
    });
    expect(by('thin1-snap')).toMatchObject({
      origin: 'thin1',
      pool: 'pool',
      thinId: 2,
      active: false,
      attr: { type: 'thin', state: 'inactive', skipActivation: true },
    });
  });

  it('reads vgs, pvs and a full report', () => {
    expect(parseLvmReport(sample('vgs.json')).volumeGroups).toEqual([
      expect.objectContaining({
        name: 'hvkit-test-sample',
        sizeBytes: 264241152,
        freeBytes: 142606336,
        extentSizeBytes: 4194304,
        attr: 'wz--n-',
        lvCount: 6,
        pvCount: 1,
      }),
    ]);
    expect(parseLvmReport(sample('pvs.json')).physicalVolumes).toEqual([
      expect.objectContaining({
        name: '/dev/loop0',
        vgName: 'hvkit-test-sample',
        sizeBytes: 264241152,
        attr: 'a--',
      }),
    ]);
    const full = parseLvmReport(sample('fullreport.json'));
    expect(full.volumeGroups.map((v) => v.name)).toEqual(['hvkit-test-sample']);
    expect(full.physicalVolumes.map((p) => p.name)).toEqual(['/dev/loop0']);
    // fullreport without -a leaves the internal volumes out.
    expect(full.logicalVolumes.map((l) => `${l.vgName}/${l.name}:${l.kind}`)).toEqual([
      'hvkit-test-sample/lin:volume',
      'hvkit-test-sample/lin-snap:snapshot',
      'hvkit-test-sample/lin-tiny:snapshot',
      'hvkit-test-sample/pool:thin-pool',
      'hvkit-test-sample/thin1:thin',
      'hvkit-test-sample/thin1-snap:thin-snapshot',
    ]);
  });
});
