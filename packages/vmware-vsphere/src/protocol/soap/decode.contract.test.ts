/**
 * The decoder's contract, rule by rule: how each XML Schema type reads (and which texts it refuses), how
 * references, CDATA, comments and processing instructions read, and the exact reason for every refusal of
 * a malformed document. decode.test.ts decodes recorded vcsim responses; fuzz.test.ts throws mutated ones
 * at the decoder.
 */

import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { soapEnvelope } from '../../../test/soap-server';
import { decodeSoapResponse, decodeVimXml, SOAP_ENV_NS, XSD_NS, XSI_NS } from './decode';

const NS = `xmlns:xsi="${XSI_NS}" xmlns:xsd="${XSD_NS}"`;

/** The value of `<v xsi:type="type">text</v>`. */
function typed(type: string, text: string): unknown {
  return decodeVimXml(`<v ${NS} xsi:type="${type}">${text}</v>`, 'xsd:anyType');
}

/** The PROTOCOL error `fn` throws. */
function protocol(fn: () => unknown): HvkitError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(HvkitError.isInstance(thrown, 'PROTOCOL'), String(thrown)).toBe(true);
  return thrown as HvkitError;
}

/** The reason `fn` gives for refusing its input (the message without its prefix and position). */
function reason(fn: () => unknown): string {
  const error = protocol(fn);
  const m = /^Invalid SOAP response: (.*) \(line (\d+), column (\d+)\)\.$/.exec(error.message);
  expect(m, error.message).not.toBeNull();
  expect(error.details).toEqual({ line: Number(m?.[2]), col: Number(m?.[3]), offset: expect.any(Number) });
  expect(error.retryable).toBe(false);
  return m?.[1] as string;
}

/** The offset `fn` names for its refusal. */
function offset(fn: () => unknown): number {
  return (protocol(fn).details as { offset: number }).offset;
}

/** A response to `CurrentTime`-like calls with this body content. */
const response = (method: string, inner: string) =>
  soapEnvelope(`<${method}Response xmlns="urn:vim25">${inner}</${method}Response>`);

describe('integers (xsd:int, xsd:long and their kin)', () => {
  it.each([
    ['xsd:int', '42', 42],
    ['xsd:int', ' \n+7\t', 7],
    ['xsd:int', '-2147483648', -2147483648],
    ['xsd:short', '-12', -12],
    ['xsd:int', '9007199254740991', Number.MAX_SAFE_INTEGER],
    ['xsd:int', '-9007199254740991', -Number.MAX_SAFE_INTEGER],
    ['xsd:int', '00000000000000000001', 1],
    ['xsd:long', '9007199254740992', 9007199254740992n],
    ['xsd:long', '-9223372036854775808', -9223372036854775808n],
    ['xsd:unsignedLong', '18446744073709551615', 18446744073709551615n],
    ['xsd:long', '1'.repeat(40), BigInt('1'.repeat(40))],
  ] as const)('%s %j → %s', (type, text, value) => {
    expect(typed(type, text)).toBe(value);
  });

  it.each([
    ['xsd:int', '12a', 'bad integer'],
    ['xsd:int', 'a12', 'bad integer'],
    ['xsd:int', '1.0', 'bad integer'],
    ['xsd:int', '1 2', 'bad integer'],
    ['xsd:int', '', 'bad integer'],
    ['xsd:int', '+-1', 'bad integer'],
    ['xsd:int', '9007199254740992', 'integer out of range'],
    ['xsd:int', '-99999999999999999999', 'integer out of range'],
    ['xsd:long', '1'.repeat(41), 'integer out of range'],
  ] as const)('%s %j is refused: %s', (type, text, message) => {
    expect(reason(() => typed(type, text))).toBe(message);
  });

  it('refuses an empty element of a numeric type', () => {
    expect(reason(() => decodeVimXml(`<v ${NS} xsi:type="xsd:int"/>`, 'xsd:anyType'))).toBe('bad integer');
  });
});

describe('floats, booleans, dates and base64', () => {
  it.each([
    ['1.5', 1.5],
    [' 2e3 ', 2000],
    ['.5', 0.5],
    ['5.', 5],
    ['-1E-2', -0.01],
    ['+3', 3],
    ['1e+2', 100],
    ['INF', Number.POSITIVE_INFINITY],
    ['-INF', Number.NEGATIVE_INFINITY],
  ] as const)('xsd:double %j → %s', (text, value) => {
    expect(typed('xsd:double', text)).toBe(value);
  });

  it('reads NaN, and refuses what is not a number', () => {
    expect(typed('xsd:float', ' NaN ')).toBeNaN();
    for (const text of [
      '1.2.3',
      'e5',
      '1e',
      '--1',
      'inf',
      '0x10',
      '',
      '.',
      '1 2',
      'a1.5',
      '1.5a',
      '1e5.5',
      '1ee5',
    ]) {
      expect(
        reason(() => typed('xsd:double', text)),
        text,
      ).toBe('bad number');
    }
  });

  it('reads true, 1, false and 0 (trimmed) as booleans, nothing else', () => {
    expect([
      typed('xsd:boolean', 'true'),
      typed('xsd:boolean', ' 1 '),
      typed('xsd:boolean', 'false'),
    ]).toEqual([true, true, false]);
    expect(typed('xsd:boolean', '\n0\n')).toBe(false);
    for (const text of ['yes', 'TRUE', 'False', '', '2']) {
      expect(
        reason(() => typed('xsd:boolean', text)),
        text,
      ).toBe('bad boolean');
    }
  });

  it('reads dateTime with a zone, an offset or none (then UTC), with any fraction', () => {
    const iso = (text: string) => (typed('xsd:dateTime', text) as Date).toISOString();
    expect(iso('2026-11-26T16:02:57.69882353Z')).toBe('2026-11-26T16:02:57.698Z');
    expect(iso(' 2026-01-02T03:04:05 ')).toBe('2026-01-02T03:04:05.000Z');
    expect(iso('2026-01-02T03:04:05+01:30')).toBe('2026-01-02T01:34:05.000Z');
    expect(iso('2026-01-02T03:04:05.5-02:00')).toBe('2026-01-02T05:04:05.500Z');
    for (const text of [
      '2026-01-02',
      '2026-01-02T03:04',
      'x2026-01-02T03:04:05Z',
      '2026-01-02T03:04:05Zx',
      '2026-01-02T03:04:05+0100',
      '2026-01-02T03:04:05.Z',
      '26-01-02T03:04:05Z',
      '2026-13-45T03:04:05Z',
      '2026-01-02T03:04:05+1:00',
      '',
    ]) {
      expect(
        reason(() => typed('xsd:dateTime', text)),
        text,
      ).toBe('bad dateTime');
    }
  });

  it('reads base64 with whitespace and padding, and refuses other characters', () => {
    const bytes = (text: string) => Buffer.from(typed('xsd:base64Binary', text) as Buffer).toString('utf8');
    expect(bytes('aGVsbG8=')).toBe('hello');
    expect(bytes('aGVs\n bG8=\n')).toBe('hello');
    expect(bytes('aGk=')).toBe('hi');
    expect(bytes('aA==')).toBe('h');
    expect(bytes('')).toBe('');
    for (const text of ['a$b', 'aGVsbG8===', '=aGVs', 'aG=Vs', 'aGVs-bG8']) {
      expect(
        reason(() => typed('xsd:base64Binary', text)),
        text,
      ).toBe('bad base64 value');
    }
  });
});

describe('text: references, CDATA, comments and processing instructions', () => {
  it('decodes the predefined entities and character references once, keeps CDATA, drops comments and PIs', () => {
    expect(typed('xsd:string', 'a&amp;b &lt;&gt;&quot;&apos; &#65;&#x42;&#x1F600;&amp;#65;')).toBe(
      'a&b <>"\' AB😀&#65;',
    );
    expect(typed('xsd:string', 'a<!-- c -->b<![CDATA[<x>&amp;]]>c<?pi x?>d')).toBe('ab<x>&amp;cd');
    expect(typed('xsd:string', '')).toBe('');
    expect(decodeVimXml(`<v ${NS} xsi:type="xsd:string"/>`, 'xsd:anyType')).toBe('');
    expect(typed('xsd:string', '&#x10FFFF;')).toBe('\u{10FFFF}');
    expect(typed('xsd:string', '&#1234567;x'.replace('1234567', '0000065'))).toBe('Ax');
  });

  it.each([
    ['&nbsp;', 'undefined entity &nbsp;.'],
    ['&abcdefghijk;', 'undefined entity &abcdefghijk;.'],
    ['&abcdefghijkl;', 'unterminated reference "&abcdefghijk".'],
    ['a & b', 'unterminated reference "& b".'],
    ['&amp', 'unterminated reference "&amp".'],
    ['&#12345678;', 'bad character reference &#12345678;.'],
    ['&#x1234567;', 'bad character reference &#x1234567;.'],
    ['&#x;', 'bad character reference &#x;.'],
    ['&#;', 'bad character reference &#;.'],
    ['&#0;', 'bad character reference &#0;.'],
    ['&#x110000;', 'bad character reference &#x110000;.'],
    ['&#xFFFE;', 'bad character reference &#xFFFE;.'],
    ['x&#65', 'unterminated reference "&#65".'],
  ] as const)('%j is refused: %s', (text, message) => {
    expect(reason(() => typed('xsd:string', text))).toBe(message);
  });

  it('names where a bad reference starts', () => {
    const doc = `<v ${NS} xsi:type="xsd:string">abc&bogus;</v>`;
    expect(offset(() => decodeVimXml(doc, 'xsd:anyType'))).toBe(doc.indexOf('&bogus;'));
    const attr = `<v ${NS} type="a&bogus;">x</v>`;
    expect(offset(() => decodeVimXml(attr, 'ManagedObjectReference'))).toBe(attr.indexOf('&bogus;'));
  });

  it('decodes references in attribute values and turns tabs and line breaks in them into spaces', () => {
    expect(decodeVimXml('<v type="a&amp;b&#x20;c">x</v>', 'ManagedObjectReference')).toEqual({
      type: 'a&b c',
      value: 'x',
    });
    expect(decodeVimXml('<v type="a\tb\nc\rd">x</v>', 'ManagedObjectReference')).toEqual({
      type: 'a b c d',
      value: 'x',
    });
    expect(decodeVimXml(`<v type='${'T'.repeat(50)}'>x</v>`, 'ManagedObjectReference')).toEqual({
      type: 'T'.repeat(50),
      value: 'x',
    });
  });

  it.each([
    ['<v>a<b/></v>', 'element where text was expected'],
    ['<v>a<!-- open</v>', 'comment is not closed.'],
    ['<v>a<![CDATA[open</v>', 'CDATA section is not closed.'],
    ['<v>a<?pi open</v>', 'processing instruction is not closed.'],
    ['<v>a<!DOCTYPE x></v>', '<!DOCTYPE> declarations are not allowed (no DTDs, no entity definitions).'],
    ['<v>abc', 'element <v> is not closed.'],
    ['<v>abc</w>', 'closing tag </w> does not match <v>.'],
    ['<v>abc</vv>', 'closing tag </vv> does not match <v>.'],
    ['<vv>abc</v>', 'closing tag </v> does not match <vv>.'],
    ['<v>abc</v x>', "closing tag </v> is not closed by '>'."],
  ] as const)('string content %j is refused: %s', (doc, message) => {
    expect(reason(() => decodeVimXml(doc, 'xsd:string'))).toBe(message);
  });

  it('accepts whitespace before the > of an end tag', () => {
    expect(decodeVimXml('<v>abc</v \n\t>', 'xsd:string')).toBe('abc');
  });
});

describe('managed object references', () => {
  it('read the type attribute and the text', () => {
    expect(decodeVimXml('<v type="VirtualMachine">vm-1</v>', 'ManagedObjectReference')).toEqual({
      type: 'VirtualMachine',
      value: 'vm-1',
    });
    // A raw value with a type attribute is a reference too; one typed by an unknown type is its text.
    expect(decodeVimXml('<v type="Folder">group-d1</v>', 'xsd:anyType')).toEqual({
      type: 'Folder',
      value: 'group-d1',
    });
    expect(decodeVimXml('<v type="Folder">group-d1</v>', 'UnknownType')).toBe('group-d1');
  });

  it.each([
    ['<v>vm-1</v>'],
    ['<v type="">vm-1</v>'],
    ['<v type="VirtualMachine"></v>'],
    ['<v type="VirtualMachine"/>'],
  ])('%s is refused', (doc) => {
    expect(reason(() => decodeVimXml(doc, 'ManagedObjectReference'))).toBe('bad managed object reference');
  });

  it('refuses an empty raw reference', () => {
    const raw = (inner: string) =>
      decodeSoapResponse(response('X', `<returnval>${inner}</returnval>`), 'X', { returns: undefined });
    expect(raw('<a type="Folder">f</a>').returnval).toEqual({ a: { type: 'Folder', value: 'f' } });
    expect(reason(() => raw('<a type="">f</a>'))).toBe('bad managed object reference');
    expect(reason(() => raw('<a type="Folder"></a>'))).toBe('bad managed object reference');
  });
});

describe('start tags', () => {
  it.each([
    ['<v b>x</v>', 'attribute b of <v> has no value.'],
    ['<v b =c>x</v>', 'attribute b of <v> is not quoted.'],
    ['<v b="c', 'attribute b of <v> is not closed.'],
    ['<v b="c>x</v>', 'attribute b of <v> is not closed.'],
    ['<v b="<">x</v>', "attribute b of <v> contains '<'."],
    ['<v/ >', "expected '>' after '/' in <v>."],
    ['<v b="1"c="2">x</v>', 'expected whitespace before an attribute in <v>.'],
    ['<v -b="1">x</v>', 'expected an attribute name.'],
    ['<v type="a" type="b">x</v>', 'attribute type repeats in <v>.'],
    ['<v xmlns:="u">x</v>', 'bad namespace declaration'],
    ['<v xmlnsx="u">x</v>', 'bad namespace declaration'],
    ['<v xmlns:p="">x</v>', 'empty namespace binding'],
    ['<v p:type="x">x</v>', 'unbound namespace prefix p:type'],
    ['<v', 'tag <v> is not closed.'],
    ['<v b="1" ', 'tag <v> is not closed.'],
  ] as const)('%j is refused: %s', (doc, message) => {
    expect(reason(() => decodeVimXml(doc, 'xsd:string'))).toBe(message);
  });

  it('accepts whitespace around = and both quotes, and ignores a default namespace', () => {
    expect(decodeVimXml(`<v xmlns="urn:vim25" type \n=\t'Folder'>f</v>`, 'ManagedObjectReference')).toEqual({
      type: 'Folder',
      value: 'f',
    });
  });
});

describe('xsi:type', () => {
  const value = (attrs: string, text = '5') => decodeVimXml(`<v ${attrs}>${text}</v>`, 'xsd:anyType');

  it('types through any prefix bound to XMLSchema-instance and names types through any prefix bound to XMLSchema', () => {
    expect(value(`xmlns:i="${XSI_NS}" xmlns:s="${XSD_NS}" i:type="s:int"`)).toBe(5);
    expect(value(`xmlns:xsi="${XSI_NS}" xsi:type="xsd:int"`)).toBe(5);
    expect(value(`xmlns:xsi="${XSI_NS}" xsi:type=" xsd:int "`)).toBe(5);
    expect(value(`xmlns:xsi="${XSI_NS}" xmlns:v="urn:vim25" xsi:type="v:Unknown"`, '<a>1</a>')).toEqual({
      _type: 'Unknown',
      a: '1',
    });
    expect(value(`xmlns:xsi="${XSI_NS}" xsi:type="Unknown"`, '<a>1</a>')).toEqual({
      _type: 'Unknown',
      a: '1',
    });
    // A type attribute in another namespace is not xsi:type.
    expect(value(`xmlns:o="urn:other" o:type="xsd:int"`)).toBe('5');
  });

  it.each([
    [`xmlns:xsi="${XSI_NS}" xsi:type=""`, 'bad xsi:type'],
    [`xmlns:xsi="${XSI_NS}" xsi:type="  "`, 'bad xsi:type'],
    [`xmlns:xsi="${XSI_NS}" xsi:type="xsd:"`, 'bad xsi:type'],
    [`xmlns:xsi="${XSI_NS}" xsi:type="a:b:c"`, 'bad xsi:type'],
    [`xmlns:xsi="${XSI_NS}" xsi:type=" xsd: int"`, 'bad xsi:type'],
    [`xmlns:xsi="${XSI_NS}" xsi:type="q:int"`, 'unbound namespace prefix in xsi:type q:int'],
    [`xmlns:xsi="${XSI_NS}" xmlns:i="${XSI_NS}" xsi:type="xsd:int" i:type="xsd:int"`, 'duplicate xsi:type'],
  ] as const)('%s is refused: %s', (attrs, message) => {
    expect(reason(() => value(attrs))).toBe(message);
  });
});

describe('documents', () => {
  const env = (inner: string, ns = SOAP_ENV_NS) => `<s:Envelope xmlns:s="${ns}">${inner}</s:Envelope>`;
  const time = '<CurrentTimeResponse><returnval>2026-01-02T03:04:05Z</returnval></CurrentTimeResponse>';
  const decode = (doc: string, method = 'CurrentTime', options = {}) =>
    decodeSoapResponse(doc, method, options);

  it('reads a BOM, the XML declaration, comments and PIs around the envelope, and skips a Header', () => {
    const doc = `\uFEFF<?xml version="1.0"?>\n<!-- c --><?pi?>${env(`<s:Header><a><b/></a></s:Header><s:Body>${time}</s:Body>`)}\n<!-- after -->\n`;
    expect((decode(doc).returnval as Date).toISOString()).toBe('2026-01-02T03:04:05.000Z');
    expect(
      (decode(env(`<s:Header/><s:Body><!-- c -->${time}<?pi?></s:Body>`)).returnval as Date).getTime(),
    ).toBe(Date.UTC(2026, 0, 2, 3, 4, 5));
  });

  it.each([
    ['', 'no root element.'],
    [' <!-- only --> ', 'no root element.'],
    ['x<a/>', 'text before the root element.'],
    ['< a/>', 'expected an element name.'],
    ['<!DOCTYPE x><a/>', '<!DOCTYPE> declarations are not allowed (no DTDs, no entity definitions).'],
    ['<!-- open', 'comment is not closed.'],
    ['<?xml open', 'processing instruction is not closed.'],
    ['<Envelope/>', 'not a SOAP envelope'],
    [`<s:Envelope xmlns:s="urn:other"/>`, 'not a SOAP envelope'],
    [`<s:Body xmlns:s="${SOAP_ENV_NS}"/>`, 'not a SOAP envelope'],
    [`<s:Envelope xmlns:s="${SOAP_ENV_NS}"/>`, 'empty SOAP envelope'],
    [env('<Body/>'), 'unexpected Body in Envelope'],
    [env('<s:Foo/>'), 'unexpected Foo in Envelope'],
    [env(`<s:Body>${time}</s:Body><s:Body>${time}</s:Body>`), 'unexpected Body in Envelope'],
    [env(`<s:Body>${time}</s:Body><s:Header/>`), 'unexpected Header in Envelope'],
    [env('<s:Header/>'), 'SOAP envelope without Body'],
    [env('<s:Body/>'), 'empty SOAP body'],
    [env('<s:Body></s:Body>'), 'empty SOAP body'],
    [env(`<s:Body>${time}<x/></s:Body>`), 'more than one element in the SOAP body'],
    [env(`<s:Body>text${time}</s:Body>`), 'text where elements were expected'],
    [env(`<s:Body><![CDATA[x]]>${time}</s:Body>`), 'text where elements were expected'],
    [
      env(`<s:Body>${time}</s:Body>`).replace('</s:Envelope>', '</s:Envelope>x'),
      'text after the root element.',
    ],
    [env(`<s:Body>${time}</s:Body>`).replace('</s:Envelope>', ''), 'element <s:Envelope> is not closed.'],
    [env('<s:Body><LoginResponse/></s:Body>'), 'expected CurrentTimeResponse, got LoginResponse'],
    [env(`<s:Body><s:Fault/></s:Body>`), 'empty SOAP fault'],
    [env(`<s:Body><s:Fault><faultstring>x</faultstring></s:Fault></s:Body>`), 'SOAP fault without faultcode'],
    [
      env(`<s:Header><a>${'<b>'.repeat(70)}${'</b>'.repeat(70)}</a></s:Header>`),
      'elements nest deeper than 65 levels.',
    ],
    [env('<s:Body><1a/></s:Body>'), 'expected an element name.'],
  ] as const)('%j is refused: %s', (doc, message) => {
    expect(reason(() => decode(doc))).toBe(message);
  });

  it('reads whitespace-only CDATA between elements as nothing', () => {
    expect(decode(env(`<s:Body><![CDATA[ \n]]>${time}</s:Body>`)).returnval).toBeInstanceOf(Date);
  });

  it('takes any response element when asked, and the operation and adapter named in errors', () => {
    expect(decode(env('<s:Body><LoginResponse/></s:Body>'), 'CurrentTime', { anyResponse: true })).toEqual({
      fault: undefined,
      returnval: undefined,
    });
    const named = protocol(() => decode(env('<s:Body/>'), 'CurrentTime', { adapter: 'x', operation: 'y' }));
    expect([named.adapter, named.operation]).toEqual(['x', 'y']);
    const plain = protocol(() => decode(env('<s:Body/>'), 'CurrentTime'));
    expect([plain.adapter, plain.operation]).toEqual(['vmware-vsphere', 'soap.CurrentTime']);
    expect(protocol(() => decodeVimXml('<v>', 'xsd:string')).operation).toBeUndefined();
  });

  it('nests as deep as maxDepth allows, in values and in skipped headers', () => {
    const deep = (n: number) => `${'<a>'.repeat(n)}x${'</a>'.repeat(n)}`;
    expect(() =>
      decode(env(`<s:Header>${deep(10)}</s:Header><s:Body>${time}</s:Body>`), 'CurrentTime', {
        maxDepth: 12,
      }),
    ).not.toThrow();
    expect(
      reason(() =>
        decode(env(`<s:Header>${deep(12)}</s:Header><s:Body>${time}</s:Body>`), 'CurrentTime', {
          maxDepth: 12,
        }),
      ),
    ).toBe('elements nest deeper than 13 levels.');
    const value = (n: number, maxDepth: number) =>
      decodeVimXml(`<v>${deep(n)}</v>`, 'xsd:anyType', { maxDepth });
    expect(value(3, 3)).toEqual({ a: { a: { a: 'x' } } });
    expect(reason(() => value(4, 3))).toBe('elements nest deeper than 4 levels.');
  });
});

describe('return values', () => {
  const decode = (inner: string, method: string, returns?: string) =>
    decodeSoapResponse(response(method, inner), method, returns === undefined ? {} : { returns });

  it('reads one returnval as the value, many as a list when the type says so, none as undefined', () => {
    expect(decode('<returnval>a</returnval>', 'X').returnval).toBe('a');
    expect(decode('<returnval>a</returnval><returnval>b</returnval>', 'X').returnval).toEqual(['a', 'b']);
    expect(decode('', 'X').returnval).toBeUndefined();
    expect(decodeSoapResponse(soapEnvelope('<XResponse/>'), 'X').returnval).toBeUndefined();
    expect(decode('<returnval>1</returnval>', 'X', 'xsd:int[]').returnval).toEqual([1]);
    expect(decode('', 'X', 'xsd:int[]').returnval).toEqual([]);
    expect(decode('<other>1</other><other/><returnval>2</returnval>', 'X', 'xsd:int').returnval).toBe(2);
    expect(decode('<returnval>1</returnval>', 'Logout').returnval).toBeUndefined();
    expect(reason(() => decode('<returnval>1</returnval><returnval>2</returnval>', 'X', 'xsd:int'))).toBe(
      'more than one returnval',
    );
  });
});

describe('data objects', () => {
  const field = (inner: string) =>
    decodeVimXml(`<v ${NS} xsi:type="AboutInfo">${inner}</v>`, 'xsd:anyType') as Record<string, unknown>;

  it('types declared fields, keeps unknown ones raw (repeated names become lists), and refuses a repeated field', () => {
    expect(
      field('<name>vc</name><apiVersion>6.5</apiVersion><extra>1</extra><extra>2</extra><extra>3</extra>'),
    ).toEqual({
      _type: 'AboutInfo',
      name: 'vc',
      apiVersion: '6.5',
      extra: ['1', '2', '3'],
    });
    expect(reason(() => field('<name>a</name><name>b</name>'))).toBe('field name repeated');
    expect(reason(() => field('<_type>x</_type>'))).toBe('element named _type');
    expect(field('')).toEqual({ _type: 'AboutInfo' });
    expect(decodeVimXml(`<v ${NS} xsi:type="AboutInfo"/>`, 'xsd:anyType')).toEqual({ _type: 'AboutInfo' });
  });

  it('reads an unknown subtype of a known type with the known fields typed', () => {
    expect(
      decodeVimXml(`<v ${NS} xsi:type="FutureAboutInfo"><name>vc</name><new>1</new></v>`, 'AboutInfo'),
    ).toEqual({ _type: 'FutureAboutInfo', name: 'vc', new: '1' });
  });

  it('reads raw elements: text, empty, self-closing with or without a type', () => {
    const raw = (inner: string) => decodeVimXml(`<v ${NS}>${inner}</v>`, 'xsd:anyType');
    expect(raw('<a>1</a><b/><c></c>')).toEqual({ a: '1', b: '', c: '' });
    expect(decodeVimXml(`<v ${NS} xsi:type="Unknown"/>`, 'xsd:anyType')).toEqual({ _type: 'Unknown' });
    expect(decodeVimXml(`<v ${NS} xsi:type="Unknown"></v>`, 'xsd:anyType')).toEqual({ _type: 'Unknown' });
    expect(decodeVimXml(`<v ${NS} xsi:type="Unknown">t</v>`, 'xsd:anyType')).toBe('t');
    expect(raw('  <a>1</a>  ')).toEqual({ a: '1' });
    expect(raw('  text  ')).toBe('  text  ');
    expect(raw('<a xsi:type="xsd:int">7</a>')).toEqual({ a: 7 });
  });

  it('reads DynamicProperty name and val, and refuses anything else in it', () => {
    const dp = (inner: string, properties?: ReadonlySet<string>) =>
      decodeVimXml(
        `<v ${NS} xsi:type="DynamicProperty">${inner}</v>`,
        'xsd:anyType',
        properties ? { properties } : {},
      );
    expect(dp('<name>n</name><val xsi:type="xsd:int">1</val>')).toEqual({
      _type: 'DynamicProperty',
      name: 'n',
      val: 1,
    });
    expect(dp('<name>n</name><val xsi:type="xsd:int">1</val>', new Set(['n']))).toEqual({
      _type: 'DynamicProperty',
      name: 'n',
      val: 1,
    });
    expect(reason(() => dp('<name>n</name><other/>'))).toBe('unexpected other in DynamicProperty');
    expect(reason(() => dp('<val>1</val>'))).toBe('DynamicProperty without name');
    expect(reason(() => dp('<name>n</name><name>m</name>'))).toBe('unexpected name in DynamicProperty');
    expect(reason(() => dp('<name>n</name><val>1</val><val>2</val>'))).toBe(
      'unexpected val in DynamicProperty',
    );
  });
});

describe('SOAP faults', () => {
  const fault = (inner: string) =>
    decodeSoapResponse(soapEnvelope(`<soapenv:Fault>${inner}</soapenv:Fault>`), 'X').fault;

  it('reads faultcode without its prefix, faultstring, and the vim fault in detail', () => {
    expect(
      fault(
        `<faultcode> soapenv:ServerFaultCode </faultcode><faultstring> msg </faultstring><detail><NotFoundFault xsi:type="NotFound"></NotFoundFault><Second/></detail><extra><x/></extra><faultstring>second</faultstring>`,
      ),
    ).toEqual({
      faultcode: 'ServerFaultCode',
      faultstring: ' msg ',
      faultType: 'NotFound',
      detail: { _type: 'NotFound' },
    });
  });

  it('names the fault by its element when it has no xsi:type, and reads empty parts', () => {
    expect(fault('<faultcode>c</faultcode><detail><InvalidLoginFault/></detail>')).toEqual({
      faultcode: 'c',
      faultstring: '',
      faultType: 'InvalidLogin',
      detail: { _type: 'InvalidLogin' },
    });
    expect(fault('<faultcode/><faultstring/><detail/>')).toEqual({
      faultcode: '',
      faultstring: '',
      faultType: undefined,
      detail: undefined,
    });
    expect(fault('<faultcode>c</faultcode><detail><Fault/></detail>')?.faultType).toBe('Fault');
    expect(
      fault('<faultcode>c</faultcode><detail><Weird xsi:type="xsd:string">text</Weird></detail>'),
    ).toEqual({
      faultcode: 'c',
      faultstring: '',
      faultType: 'xsd:string',
      detail: { _type: 'xsd:string' },
    });
  });
});

describe('checks before decoding', () => {
  it('refuses what is not a string, a bad maxBytes, a body over maxBytes and characters XML forbids', () => {
    expect(() => decodeSoapResponse(1 as unknown as string, 'X')).toThrow(
      'decodeSoapResponse expects the response text.',
    );
    for (const maxBytes of [0, -1, Number.NaN, '5']) {
      expect(() => decodeSoapResponse('<a/>', 'X', { maxBytes } as never)).toThrow(
        'maxBytes must be positive.',
      );
    }
    const big = protocol(() => decodeSoapResponse('<a/>', 'X', { maxBytes: 3 }));
    expect(big.message).toBe('Invalid SOAP response: document is larger than 3 bytes.');
    expect(big.details).toEqual({ maxBytes: 3 });
    expect([big.retryable, big.adapter, big.operation]).toEqual([false, 'vmware-vsphere', 'soap.X']);
    expect(protocol(() => decodeSoapResponse('<a/>', 'X', { maxBytes: 4 })).message).toMatch(
      /not a SOAP envelope/,
    );
    for (const bad of ['\u0001', '\uFFFE', '\uFFFF', '\uD800', '\u000B']) {
      const error = protocol(() =>
        decodeSoapResponse(`<a>${bad}</a>`, 'X', { adapter: 'a', operation: 'o' }),
      );
      expect(error.message).toBe('Invalid SOAP response: document contains characters XML forbids.');
      expect([error.retryable, error.adapter, error.operation]).toEqual([false, 'a', 'o']);
    }
    expect(() => decodeVimXml(`<v>\t\n\r ok</v>`, 'xsd:string')).not.toThrow();
  });

  it('decodeVimXml needs exactly one element', () => {
    expect(reason(() => decodeVimXml('text', 'xsd:string'))).toBe('text before the root element.');
    expect(reason(() => decodeVimXml('  ', 'xsd:string'))).toBe('no root element.');
    expect(reason(() => decodeVimXml('<v>a</v><w/>', 'xsd:string'))).toBe(
      'a document must have exactly one root element.',
    );
    expect(decodeVimXml('<?xml version="1.0"?> <!-- c --><v>a</v> <!-- d --> ', 'xsd:string')).toBe('a');
  });
});

describe('names that hash alike', () => {
  // "Aa" and "BB" have the same 31-based string hash (65·31 + 97 = 66·31 + 66): the decoder's name table
  // must still tell them apart.
  it('keeps element names, attribute names and short values apart', () => {
    expect(decodeVimXml('<v><Aa>1</Aa><BB>2</BB><Aa>3</Aa></v>', 'xsd:anyType')).toEqual({
      Aa: ['1', '3'],
      BB: '2',
    });
    expect(decodeVimXml('<v><a type="Aa">x</a><b type="BB">y</b></v>', 'xsd:anyType')).toEqual({
      a: { type: 'Aa', value: 'x' },
      b: { type: 'BB', value: 'y' },
    });
    expect(reason(() => decodeVimXml('<Aa>x</BB>', 'xsd:string'))).toBe(
      'closing tag </BB> does not match <Aa>.',
    );
  });

  it('keeps type attributes of prefixes that hash alike apart', () => {
    const doc = `<v xmlns:Aa="${XSI_NS}" xmlns:BB="urn:other" BB:type="xsd:int">5</v>`;
    expect(decodeVimXml(doc, 'xsd:anyType')).toBe('5');
    const typed = `<v xmlns:Aa="${XSI_NS}" xmlns:BB="urn:other" xmlns:xsd="${XSD_NS}" Aa:type="xsd:int">5</v>`;
    expect(decodeVimXml(typed, 'xsd:anyType')).toBe(5);
  });
});

describe("core's tokenizer: malformed XML the decoder's own tokenizer used to accept", () => {
  const env = (inner: string) => `<s:Envelope xmlns:s="${SOAP_ENV_NS}">${inner}</s:Envelope>`;
  const time = '<CurrentTimeResponse><returnval>2026-01-02T03:04:05Z</returnval></CurrentTimeResponse>';
  const ok = env(`<s:Header><h>a</h></s:Header><s:Body>${time}</s:Body>`);

  it.each([
    // Processing instructions and the XML declaration used to be skipped unread.
    [`<?xml version="1.0" encoding="UTF-"8"?>${ok}`, 'malformed XML declaration.'],
    [
      `<?xml version="1.0"?><?xml version="1.0"?>${ok}`,
      'the XML declaration is allowed only at the very start of the document.',
    ],
    [` <?xml version="1.0"?>${ok}`, 'the XML declaration is allowed only at the very start of the document.'],
    [`<?pi"x?>${ok}`, 'processing instruction target must be followed by whitespace or "?>".'],
    [`<? pi?>${ok}`, 'expected a processing instruction target name.'],
    // Attributes may not repeat (only a repeated `type` used to be refused).
    [ok.replace('<s:Body>', '<s:Body a="1" a="2">'), 'attribute a repeats in <s:Body>.'],
    // Skipped content (a Header, an unrequested property) is read like the rest.
    [ok.replace('<h>a</h>', '<h>a & b</h>'), 'unterminated reference "& b".'],
    [ok.replace('<h>a</h>', '<h>&bogus;</h>'), 'undefined entity &bogus;.'],
    // XML 1.0 name rules: non-ASCII characters used to count as name characters.
    [ok.replace(/<(\/?)h>/g, '<$1h\u00d7>'), 'expected whitespace before an attribute in <h>.'],
    [ok.replace(/<(\/?)h>/g, '<$1\u0300h>'), 'expected an element name.'],
  ] as const)('%j is refused: %s', (doc, message) => {
    expect(decodeSoapResponse(ok, 'CurrentTime').returnval).toBeInstanceOf(Date);
    expect(reason(() => decodeSoapResponse(doc, 'CurrentTime'))).toBe(message);
  });

  it('reads \\r\\n and a lone \\r in text as \\n (XML end-of-line handling)', () => {
    expect(decodeVimXml('<v>a\r\nb\rc</v>', 'xsd:string')).toBe('a\nb\nc');
  });

  it('reads a character reference to whitespace between elements as whitespace', () => {
    expect(decodeSoapResponse(env(`<s:Body>&#32;${time}</s:Body>`), 'CurrentTime').returnval).toBeInstanceOf(
      Date,
    );
  });
});
