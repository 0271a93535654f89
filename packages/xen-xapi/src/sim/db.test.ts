import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { XAPI_SEED_DB_PATH } from '../simulator';
import { parseXmlDbDump } from './db';
import { formatMap, formatSet, mapFromSExpr, parseSExpr, setFromSExpr } from './sexpr';

describe('/pool/xmldbdump loading', () => {
  it('reads rows with namespaced columns, S-expression sets and maps, typed by the datamodel', () => {
    const db =
      parseXmlDbDump(`<?xml version="1.0"?><database><manifest><pair key="schema_major_vsn" value="5"/></manifest>
      <table name="VM"><row ref="OpaqueRef:v" _ref="OpaqueRef:v" __ctime="1" uuid="u1" name__label="a &amp; b" VCPUs__max="2"
        memory__static_max="18446744073709551615" VCPUs__params="(('weight' '512') ('cap' '0'))" tags="('x' 'it\\'s')"
        is_a_template="false" resident_on="OpaqueRef:NULL" snapshot_time="20240301T02:00:00Z" HVM__shadow_multiplier="1.000"/></table>
      <table name="VIF"><row ref="OpaqueRef:i" uuid="u2" VM="OpaqueRef:v" device="0"/></table>
      <table name="Bond"/></database>`);
    const vm = db.table('VM').get('OpaqueRef:v');
    expect(vm).toMatchObject({
      uuid: 'u1',
      name_label: 'a & b',
      VCPUs_max: 2,
      memory_static_max: 18446744073709551615n,
      VCPUs_params: { weight: '512', cap: '0' },
      tags: ['x', "it's"],
      is_a_template: false,
      resident_on: null,
      VIFs: ['OpaqueRef:i'], // recomputed from VIF.VM
      HVM_shadow_multiplier: '1.000', // an unknown column stays a string
    });
    expect((vm?.snapshot_time as Date | undefined)?.toISOString()).toBe('2024-03-01T02:00:00.000Z');
    expect(db.manifest.get('schema_major_vsn')).toBe('5');
    expect(db.has('bond')).toBe(true);
  });

  it.each([
    ['<database><table name="VM"><row uuid="x"/></table></database>', /needs a ref/],
    ['<database><row ref="OpaqueRef:1"/></database>', /outside a <table>/],
    ['<db/>', /root element must be <database>/],
    ['<database><table name="VM"><row ref="r" tags="(\'a\'"/></table></database>', /S-expression/],
  ])('refuses %s with PROTOCOL', (text, why) => {
    expect(() => parseXmlDbDump(text)).toThrow(
      expect.objectContaining({ code: 'PROTOCOL', message: expect.stringMatching(why) }),
    );
  });

  it('the seed database: a pool of two hosts, guests, a template, a snapshot, dom0, a VLAN network', async () => {
    const db = parseXmlDbDump(await readFile(XAPI_SEED_DB_PATH, 'utf8'));
    expect(db.table('host').size).toBe(2);
    const vms = [...db.table('VM').values()];
    expect(vms.filter((v) => v.is_control_domain).length).toBe(1);
    expect(vms.filter((v) => v.is_a_snapshot && v.is_a_template).length).toBe(1);
    expect(vms.filter((v) => v.is_a_template && !v.is_a_snapshot).length).toBe(1);
    expect([...db.table('VLAN').values()].map((v) => v.tag)).toEqual([42, 42]);
  });
});

describe('S-expressions', () => {
  it('round-trip sets and maps, quotes and backslashes included', () => {
    const set = ['a', "b'c", 'd\\e', ''];
    expect(setFromSExpr(formatSet(set))).toEqual(set);
    const map = { k: "v'1", 'x y': '' };
    expect(Object.fromEntries(mapFromSExpr(formatMap(map)))).toEqual(map);
    expect(parseSExpr("(a ('b' c))")).toEqual(['a', ['b', 'c']]);
  });
  it.each(["('a'", "'a", '(', ')', "('a') x", `${'('.repeat(40)}${')'.repeat(40)}`])(
    '%j is PROTOCOL',
    (text) => {
      expect(() => parseSExpr(text)).toThrow(expect.objectContaining({ code: 'PROTOCOL' }));
    },
  );
});
