import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { findInvalidXmlChar, parseXml, xmlArray, xmlAttr, xmlText } from './parse';

/** Walks parsed output by keys; fails the test when a step is missing. */
function dig(value: unknown, ...path: string[]): unknown {
  let current = value;
  for (const key of path) {
    expect(current, `missing ${key}`).toBeTypeOf('object');
    current = (current as Record<string, unknown>)[key];
  }
  return current;
}

function protocolError(fn: () => unknown): HvkitError {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(HvkitError.isInstance(thrown, 'PROTOCOL')).toBe(true);
  return thrown as HvkitError;
}

const DOMAIN = `<?xml version="1.0"?>
<!-- a libvirt domain -->
<domain type='kvm' id='7'>
  <name>web&#45;1</name>
  <uuid>6f2a5e3c-1b2d-4e5f-8a9b-0c1d2e3f4a5b</uuid>
  <memory unit='KiB'>1048576</memory>
  <vcpu placement='static'>002</vcpu>
  <description>a &lt;b&gt; &amp; "c" &apos;d&apos; &#x263A; &#128512;</description>
  <devices>
    <disk type='file' device='disk'><source file='/var/lib/libvirt/images/a.qcow2'/><target dev='vda'/></disk>
  </devices>
  <seclabel type='dynamic' model='selinux' relabel='yes'/>
</domain>`;

describe('parseXml', () => {
  it('parses attributes under @_ and keeps values as strings', () => {
    const domain = parseXml(DOMAIN).domain;
    expect(dig(domain, '@_type')).toBe('kvm');
    expect(dig(domain, '@_id')).toBe('7');
    expect(dig(domain, 'memory')).toEqual({ '@_unit': 'KiB', '#text': '1048576' });
    expect(dig(domain, 'vcpu', '#text')).toBe('002');
    expect(dig(domain, 'seclabel', '@_relabel')).toBe('yes');
    expect(dig(domain, 'devices', 'disk', 'source', '@_file')).toBe('/var/lib/libvirt/images/a.qcow2');
  });

  it('decodes the predefined entities and character references', () => {
    const domain = parseXml(DOMAIN).domain;
    expect(dig(domain, 'name')).toBe('web-1');
    expect(dig(domain, 'description')).toBe('a <b> & "c" \'d\' ☺ 😀');
    expect(parseXml('<a>&lt;a&gt;</a>')).toEqual({ a: '<a>' });
    expect(parseXml('<a x="&lt;&quot;&#65;&#x42;&amp;amp;"/>')).toEqual({ a: { '@_x': '<"AB&amp;' } });
    // Decoded exactly once.
    expect(parseXml('<a>&amp;lt;</a>')).toEqual({ a: '&lt;' });
    expect(parseXml('<a>&amp;#65;</a>')).toEqual({ a: '&#65;' });
  });

  it('does not coerce values', () => {
    const doc = parseXml('<r a="1e3"><n>007</n><b>true</b><h>0x10</h><f>1.50</f><e></e></r>');
    expect(doc).toEqual({ r: { '@_a': '1e3', n: '007', b: 'true', h: '0x10', f: '1.50', e: '' } });
  });

  it('keeps namespace prefixes', () => {
    const soap = `<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">
      <soapenv:Body><RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><obj type="VirtualMachine">vm-42</obj>
      <propSet><name>config.hardware.numCPU</name><val xsi:type="xsd:int">4</val></propSet></returnval></RetrievePropertiesExResponse></soapenv:Body></soapenv:Envelope>`;
    const envelope = parseXml(soap)['soapenv:Envelope'];
    expect(dig(envelope, '@_xmlns:soapenv')).toBe('http://schemas.xmlsoap.org/soap/envelope/');
    const returnval = dig(envelope, 'soapenv:Body', 'RetrievePropertiesExResponse', 'returnval');
    expect(dig(returnval, 'obj')).toEqual({ '@_type': 'VirtualMachine', '#text': 'vm-42' });
    expect(dig(returnval, 'propSet', 'val')).toEqual({ '@_xsi:type': 'xsd:int', '#text': '4' });
  });

  it('keeps CDATA as text without decoding references in it', () => {
    expect(parseXml('<a><![CDATA[<raw> &lt; &#65;]]></a>')).toEqual({ a: '<raw> &lt; &#65;' });
  });

  it('makes the requested elements arrays', () => {
    const xml = '<domain><devices><disk dev="a"/><interface/></devices></domain>';
    expect(dig(parseXml(xml), 'domain', 'devices', 'disk')).toEqual({ '@_dev': 'a' });
    const byPath = parseXml(xml, {
      alwaysArray: ['domain.devices.disk', 'domain.devices.interface'],
    });
    expect(dig(byPath, 'domain', 'devices', 'disk')).toEqual([{ '@_dev': 'a' }]);
    expect(dig(byPath, 'domain', 'devices', 'interface')).toEqual(['']);
    const byPredicate = parseXml(xml, { alwaysArray: (tag) => tag === 'disk' });
    expect(dig(byPredicate, 'domain', 'devices', 'disk')).toEqual([{ '@_dev': 'a' }]);
    expect(dig(byPredicate, 'domain', 'devices', 'interface')).toBe('');
    // Attributes are never arrays.
    expect(parseXml('<a><b x="1"/></a>', { alwaysArray: (tag) => tag === 'b' })).toEqual({
      a: { b: [{ '@_x': '1' }] },
    });
  });

  it('allows comments, processing instructions and whitespace after the root', () => {
    expect(parseXml('<a>1</a>\n<!-- end -->\n<?pi x?>\n')).toEqual({ a: '1' });
  });

  it('repeated elements become arrays', () => {
    expect(parseXml('<a><b>1</b><b>2</b></a>')).toEqual({ a: { b: ['1', '2'] } });
  });

  it('can keep whitespace', () => {
    expect(parseXml('<a> x </a>')).toEqual({ a: 'x' });
    expect(parseXml('<a> x </a>', { trimValues: false })).toEqual({ a: ' x ' });
  });

  it('accepts bytes (UTF-8) and rejects invalid UTF-8', () => {
    expect(parseXml(new TextEncoder().encode('<a>é</a>'))).toEqual({ a: 'é' });
    protocolError(() => parseXml(new Uint8Array([0x3c, 0x61, 0x3e, 0xff, 0x3c, 0x2f, 0x61, 0x3e])));
  });

  it('rejects the billion laughs', () => {
    const bomb = `<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
]>
<lolz>&lol3;</lolz>`;
    const error = protocolError(() => parseXml(bomb));
    expect(error.message).toContain('DOCTYPE');
  });

  it('rejects external entities', () => {
    const xxe = `<?xml version="1.0"?><!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><foo>&xxe;</foo>`;
    protocolError(() => parseXml(xxe));
    protocolError(() => parseXml('<!DOCTYPE foo SYSTEM "http://127.0.0.1:1/evil.dtd"><foo/>'));
    protocolError(() => parseXml('<!doctype foo><foo/>'));
    protocolError(() => parseXml('<foo><!ENTITY x "y"></foo>'));
  });

  it('rejects undefined entities (no HTML entities, nothing to expand)', () => {
    protocolError(() => parseXml('<a>&xxe;</a>'));
    protocolError(() => parseXml('<a>&nbsp;</a>'));
    protocolError(() => parseXml('<a x="&copy;"/>'));
  });

  it('rejects bad character references', () => {
    protocolError(() => parseXml('<a>&#0;</a>'));
    protocolError(() => parseXml('<a>&#xD800;</a>'));
    protocolError(() => parseXml('<a>&#x110000;</a>'));
    protocolError(() => parseXml('<a>&#xZZ;</a>'));
  });

  it('does not mistake DOCTYPE text in comments or CDATA for a declaration', () => {
    expect(parseXml('<a><!-- <!DOCTYPE x> --><![CDATA[<!ENTITY y "z">]]></a>')).toEqual({
      a: '<!ENTITY y "z">',
    });
  });

  it('rejects input over maxBytes before parsing', () => {
    const big = `<a>${'x'.repeat(2000)}</a>`;
    const error = protocolError(() => parseXml(big, { maxBytes: 1000 }));
    expect(error.details).toEqual({ maxBytes: 1000 });
    protocolError(() => parseXml(new TextEncoder().encode(big), { maxBytes: 1000 }));
    // Counted in UTF-8 bytes, not characters.
    protocolError(() => parseXml(`<a>${'é'.repeat(600)}</a>`, { maxBytes: 1000 }));
    expect(parseXml(big, { maxBytes: 4096 })).toEqual({ a: 'x'.repeat(2000) });
  });

  it('defaults to a 16 MiB limit', () => {
    const justOver = `<a>${'x'.repeat(16 * 1024 * 1024 - 6)}</a>`;
    protocolError(() => parseXml(justOver));
  });

  it('rejects malformed XML with PROTOCOL', () => {
    for (const bad of [
      '',
      'not xml',
      '<a>',
      '<a></b>',
      '<a><b></a></b>',
      '<a x=1/>',
      '<a x="1" x="2"/>',
      '<a/><b/>',
      '<a/><a/>',
      '<a/>trailing',
      '<a/>trailing<!-- c -->',
      'leading<a/>',
      '<a>x & y</a>',
      '<a>\u0001</a>',
      '<__proto__/>',
    ]) {
      const error = protocolError(() => parseXml(bad, { adapter: 'kvm-libvirt', operation: 'dumpxml' }));
      expect(error.adapter).toBe('kvm-libvirt');
      expect(error.operation).toBe('dumpxml');
    }
  });

  it('rejects deep nesting', () => {
    const deep = `${'<a>'.repeat(200)}x${'</a>'.repeat(200)}`;
    protocolError(() => parseXml(deep));
    expect(() => parseXml(deep, { maxDepth: 300 })).not.toThrow();
  });

  it('throws TypeError for misuse', () => {
    expect(() => parseXml(42 as unknown as string)).toThrow(TypeError);
    expect(() => parseXml('<a/>', { maxBytes: 0 })).toThrow(TypeError);
    expect(() => parseXml('<a/>', { alwaysArray: 'a' as unknown as string[] })).toThrow(TypeError);
  });
});

describe('xml helpers', () => {
  it('xmlArray, xmlText, xmlAttr', () => {
    expect(xmlArray(undefined)).toEqual([]);
    expect(xmlArray('a')).toEqual(['a']);
    expect(xmlArray(['a', 'b'])).toEqual(['a', 'b']);
    expect(xmlText('x')).toBe('x');
    expect(xmlText({ '@_unit': 'KiB', '#text': '5' })).toBe('5');
    expect(xmlText({ '@_unit': 'KiB' })).toBeUndefined();
    expect(xmlText(undefined)).toBeUndefined();
    expect(xmlAttr({ '@_unit': 'KiB' }, 'unit')).toBe('KiB');
    expect(xmlAttr('text', 'unit')).toBeUndefined();
  });

  it('findInvalidXmlChar', () => {
    expect(findInvalidXmlChar('ok\t\n\r😀')).toBe(-1);
    expect(findInvalidXmlChar('a\u0000')).toBe(1);
    expect(findInvalidXmlChar('a\uD800b')).toBe(1);
    expect(findInvalidXmlChar('\uDC00')).toBe(0);
    expect(findInvalidXmlChar('\uFFFE')).toBe(0);
  });
});
