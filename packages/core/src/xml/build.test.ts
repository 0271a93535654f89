import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { buildXml, xmlEscape, xmlEscapeAttribute } from './build';
import { parseXml } from './parse';

function invalid(fn: () => unknown): void {
  let thrown: unknown;
  try {
    fn();
  } catch (error) {
    thrown = error;
  }
  expect(HvkitError.isInstance(thrown, 'INVALID_ARGUMENT')).toBe(true);
}

describe('xmlEscape', () => {
  it('escapes text', () => {
    expect(xmlEscape('a<b>&c]]>')).toBe('a&lt;b&gt;&amp;c]]&gt;');
    expect(xmlEscape('"quotes" \'stay\'')).toBe('"quotes" \'stay\'');
    expect(xmlEscape('line\r\nend\ttab')).toBe('line&#13;\nend\ttab');
    expect(xmlEscape('😀 é')).toBe('😀 é');
  });

  it('escapes attributes', () => {
    expect(xmlEscapeAttribute(`a"b'c<d>&e\tf\ng\rh`)).toBe('a&quot;b&apos;c&lt;d&gt;&amp;e&#9;f&#10;g&#13;h');
  });

  it('rejects characters XML cannot hold', () => {
    invalid(() => xmlEscape('nul\u0000'));
    invalid(() => xmlEscape('bell\u0007'));
    invalid(() => xmlEscapeAttribute('lone \uD800 surrogate'));
    expect(() => xmlEscape(5 as unknown as string)).toThrow(TypeError);
  });

  it('round trips through parseXml', () => {
    const nasty = `<script>alert("x")</script> & 'quotes' \t tab\nnewline`;
    const xml = `<a v="${xmlEscapeAttribute(nasty)}">${xmlEscape(nasty)}</a>`;
    const parsed = parseXml(xml, { trimValues: false }) as { a: Record<string, string> };
    expect(parsed.a['@_v']).toBe(nasty);
    expect(parsed.a['#text']).toBe(nasty);
  });
});

describe('buildXml', () => {
  it('builds the shape parseXml returns', () => {
    const input = {
      domain: {
        '@_type': 'kvm',
        name: 'web-1 <prod>',
        memory: { '@_unit': 'KiB', '#text': 1048576 },
        devices: { disk: [{ '@_dev': 'vda' }, { '@_dev': 'vdb', readonly: '' }] },
        vcpu: 2,
        on_crash: true,
        skipped: undefined,
        alsoSkipped: null,
      },
    };
    const xml = buildXml(input);
    expect(xml).toBe(
      '<domain type="kvm"><name>web-1 &lt;prod&gt;</name><memory unit="KiB">1048576</memory>' +
        '<devices><disk dev="vda"/><disk dev="vdb"><readonly/></disk></devices><vcpu>2</vcpu><on_crash>true</on_crash></domain>',
    );
    expect(parseXml(xml)).toEqual({
      domain: {
        '@_type': 'kvm',
        name: 'web-1 <prod>',
        memory: { '@_unit': 'KiB', '#text': '1048576' },
        devices: { disk: [{ '@_dev': 'vda' }, { '@_dev': 'vdb', readonly: '' }] },
        vcpu: '2',
        on_crash: 'true',
      },
    });
  });

  it('writes a declaration and indents when asked', () => {
    expect(buildXml({ a: { b: { c: 'x' }, d: '' } }, { declaration: true, indent: '  ' })).toBe(
      '<?xml version="1.0" encoding="UTF-8"?>\n<a>\n  <b>\n    <c>x</c>\n  </b>\n  <d/>\n</a>',
    );
  });

  it('keeps namespace prefixes', () => {
    expect(buildXml({ 'soapenv:Envelope': { '@_xmlns:soapenv': 'urn:x', 'soapenv:Body': '' } })).toBe(
      '<soapenv:Envelope xmlns:soapenv="urn:x"><soapenv:Body/></soapenv:Envelope>',
    );
  });

  it('rejects names that could inject markup', () => {
    invalid(() => buildXml({ 'a><evil': 'x' }));
    invalid(() => buildXml({ a: { '@_x="1" y': 'v' } }));
    invalid(() => buildXml({ a: { '1abc': 'v' } }));
    invalid(() => buildXml({ a: { 'b c': 'v' } }));
    invalid(() => buildXml({ a: { '@_x': { nested: 'no' } } }));
    invalid(() => buildXml({ a: Number.NaN }));
  });

  it('needs exactly one root', () => {
    expect(() => buildXml({})).toThrow(TypeError);
    expect(() => buildXml({ a: '1', b: '2' })).toThrow(TypeError);
    expect(() => buildXml({ a: ['1', '2'] })).toThrow(TypeError);
    expect(() => buildXml(null as unknown as Record<string, never>)).toThrow(TypeError);
  });
});
