/**
 * Unit tests of the reader behind `parseXml` (./reader.ts), through `parseXml`: error positions,
 * end-of-line handling, byte order mark, nesting limit, prototype-safe names and well-formedness refusals.
 * A large document is read in ./reader.large.test.ts; the comparison with the old fast-xml-parser based
 * parser is in ./parse.differential.test.ts.
 */

import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { type ParseXmlOptions, parseXml, type XmlObject } from './parse';

/** The PROTOCOL error `parseXml` throws for `text`; fails the test when it does not throw one. */
function refusal(text: string, options?: ParseXmlOptions): HvkitError {
  let thrown: unknown;
  try {
    parseXml(text, options);
  } catch (error) {
    thrown = error;
  }
  expect(HvkitError.isInstance(thrown, 'PROTOCOL'), `${JSON.stringify(text)} must be refused`).toBe(true);
  return thrown as HvkitError;
}

/** 1-based line and column of the first `needle` in `text` (after XML end-of-line handling). */
function where(text: string, needle: string): { line: number; col: number } {
  const normalised = text.replace(/\r\n?/g, '\n');
  const before = normalised.slice(0, normalised.indexOf(needle));
  const lines = before.split('\n');
  return { line: lines.length, col: (lines.at(-1) ?? '').length + 1 };
}

/** Line and column of the refusal of `text`. */
function position(text: string): { line: unknown; col: unknown } {
  const { details } = refusal(text);
  return { line: details?.line, col: details?.col };
}

describe('readXml via parseXml', () => {
  describe('error positions', () => {
    it('reports the 1-based line and column of the offending markup', () => {
      // Closing tag mismatch: at the '<' of `</a>`.
      expect(position('<a>\n  <b>\n</a>')).toEqual({ line: 3, col: 1 });
      // Unquoted attribute value: at the value.
      expect(position('<a>\n<b x=1/></a>')).toEqual({ line: 2, col: 6 });
      // Undefined entity: at its '&'.
      expect(position('<a>\n<b>text &bogus; more</b></a>')).toEqual({ line: 2, col: 9 });
      expect(position('<a x="1" y="a&bogus;"/>')).toEqual({ line: 1, col: 14 });
      // Second root: at its '<'.
      expect(position('<a/>\n <b/>')).toEqual({ line: 2, col: 2 });
      // An element left open: at the end of the text.
      expect(position('<a>\n<b></b>\nxy')).toEqual({ line: 3, col: 3 });
      // Text after the root: its first character that is not whitespace.
      expect(position('<a/>\n\nx')).toEqual({ line: 3, col: 1 });
    });

    it('counts \\r\\n and a lone \\r as one line break each', () => {
      expect(position('<a>\r\n<b>\r\n</a>')).toEqual({ line: 3, col: 1 });
      expect(position('<a>\r<b>\r</a>')).toEqual({ line: 3, col: 1 });
      expect(position('<a>\r\r\n\r<b x=1/></a>')).toEqual({ line: 4, col: 6 });
    });

    // A fixed reader defect: the '&' must be located in the source even when leading whitespace was
    // trimmed (text or attribute value) or a comment earlier in the run was cut out.
    it('locates a bad reference after trimmed whitespace or a comment', () => {
      const docs = [
        '<a>\n\n\n\nx &bogus;</a>',
        '<a x="\n\n  &bogus;"/>',
        '<a>x<!-- long\n\n\ncomment -->y &bogus;</a>',
        '<a>\r\n  <!-- c --> &bogus;</a>',
      ];
      const wrong = docs
        .map((doc) => ({ doc, reported: position(doc), actual: where(doc, '&bogus;') }))
        .filter(({ reported, actual }) => reported.line !== actual.line || reported.col !== actual.col);
      expect(wrong).toEqual([]);
    });

    it('puts the position in the message too', () => {
      expect(refusal('<a>\n</b>').message).toMatch(/line 2, column 1/);
    });
  });

  describe('end-of-line handling', () => {
    it('reads \\r\\n and a lone \\r as \\n in text, attribute values and CDATA', () => {
      const doc = '<a x="1\r\n2\r3">\r\nl1\rl2\r\n<![CDATA[c\r\nd\re]]></a>';
      expect(parseXml(doc, { trimValues: false })).toEqual({
        a: { '#text': '\nl1\nl2\nc\nd\ne', '@_x': '1\n2\n3' },
      });
      expect(parseXml(doc)).toEqual({ a: { '#text': 'l1\nl2c\nd\ne', '@_x': '1\n2\n3' } });
    });

    it('keeps a carriage return written as a character reference', () => {
      expect(parseXml('<a x="&#13;&#10;">1&#xD;2</a>', { trimValues: false })).toEqual({
        a: { '#text': '1\r2', '@_x': '\r\n' },
      });
    });
  });

  describe('byte order mark', () => {
    it('skips a BOM at the start, in a string or in bytes', () => {
      expect(parseXml('\uFEFF<a>1</a>')).toEqual({ a: '1' });
      expect(parseXml('\uFEFF<?xml version="1.0"?>\n<a>1</a>')).toEqual({ a: '1' });
      const bytes = new Uint8Array([0xef, 0xbb, 0xbf, ...new TextEncoder().encode('<a>é</a>')]);
      expect(parseXml(bytes)).toEqual({ a: 'é' });
    });

    it('keeps U+FEFF inside an element as text', () => {
      expect(parseXml('<a>x\uFEFFy</a>')).toEqual({ a: 'x\uFEFFy' });
    });
  });

  describe('nesting limit', () => {
    const nest = (levels: number, leaf = 'x') =>
      `${'<e>'.repeat(levels - 1)}${leaf === '' ? '<e/>' : `<e>${leaf}</e>`}${'</e>'.repeat(levels - 1)}`;

    it('maxDepth n accepts n levels and refuses n + 1', () => {
      for (const n of [1, 2, 3, 10, 250]) {
        expect(() => parseXml(nest(n), { maxDepth: n })).not.toThrow();
        expect(() => parseXml(nest(n, ''), { maxDepth: n })).not.toThrow();
        expect(refusal(nest(n + 1), { maxDepth: n }).message).toContain(`deeper than ${n} levels`);
        // A self-closing element counts as a level too.
        refusal(nest(n + 1, ''), { maxDepth: n });
      }
    });

    it('defaults to 100 levels', () => {
      expect(() => parseXml(nest(100))).not.toThrow();
      refusal(nest(101));
    });

    it('counts depth, not the number of elements', () => {
      const wide = `<r>${'<e><f/></e>'.repeat(1000)}</r>`;
      expect(() => parseXml(wide, { maxDepth: 3 })).not.toThrow();
    });

    it('rejects a maxDepth that is not a positive integer with TypeError', () => {
      for (const maxDepth of [0, -1, 1.5, Number.NaN]) {
        expect(() => parseXml('<a/>', { maxDepth })).toThrow(TypeError);
      }
    });
  });

  describe('names that are properties of Object.prototype', () => {
    it('refuses an element named __proto__, at the root and below', () => {
      refusal('<__proto__/>');
      refusal('<a><__proto__>x</__proto__></a>');
      refusal('<a><b/><__proto__ x="1"/></a>');
    });

    it('takes attributes named __proto__ as ordinary attributes', () => {
      const doc = parseXml('<a __proto__="x" constructor="y"><b __proto__="z"/></a>');
      expect(doc).toEqual({ a: { b: { '@___proto__': 'z' }, '@___proto__': 'x', '@_constructor': 'y' } });
      const a = doc.a as XmlObject;
      expect(Object.getPrototypeOf(a)).toBe(Object.prototype);
      expect(Object.keys(a)).toEqual(['b', '@___proto__', '@_constructor']);
      expect(({} as Record<string, unknown>).x).toBeUndefined();
    });

    it('makes a repeated constructor / toString / hasOwnProperty element an array', () => {
      for (const name of [
        'constructor',
        'toString',
        'hasOwnProperty',
        'valueOf',
        'prototype',
        '__defineGetter__',
      ]) {
        const once = parseXml(`<a><${name}>1</${name}></a>`);
        expect(once, name).toEqual({ a: { [name]: '1' } });
        expect(Object.hasOwn(once.a as XmlObject, name)).toBe(true);
        const twice = parseXml(`<a><${name}>1</${name}><${name}>2</${name}></a>`);
        expect(twice, name).toEqual({ a: { [name]: ['1', '2'] } });
        const mixed = parseXml(`<a><${name} k="v"/><x/><${name}/><${name}>3</${name}></a>`);
        expect(mixed, name).toEqual({ a: { [name]: [{ '@_k': 'v' }, '', '3'], x: '' } });
        // And as the root.
        expect(parseXml(`<${name}/>`)).toEqual({ [name]: '' });
      }
    });

    it('makes a single prototype-named element an array when asked', () => {
      expect(parseXml('<a><toString>1</toString></a>', { alwaysArray: ['a.toString'] })).toEqual({
        a: { toString: ['1'] },
      });
    });
  });

  describe('attributes', () => {
    it('refuses a repeated attribute, whatever the quotes', () => {
      expect(refusal('<a x="1" x="2"/>').message).toContain('repeats');
      refusal(`<a x='1' y="2" x='3'/>`);
      refusal('<a><b ns:x="1" ns:x="1"></b></a>');
      // Different qualified names are different attributes.
      expect(parseXml('<a x="1" ns:x="2" xmlns:ns="u"/>')).toEqual({
        a: { '@_x': '1', '@_ns:x': '2', '@_xmlns:ns': 'u' },
      });
    });

    it('refuses unquoted and boolean (value-less) attributes', () => {
      expect(refusal('<a x=1/>').message).toContain('not quoted');
      expect(refusal('<a checked/>').message).toContain('has no value');
      refusal('<a checked></a>');
      refusal('<a x="1" checked y="2"/>');
      refusal('<a x=/>');
    });

    it("refuses '<' in an attribute value and an attribute value left open", () => {
      expect(refusal('<a x="1<2"/>').message).toContain("contains '<'");
      refusal('<a x="1/>');
    });

    it('accepts whitespace around = and both quote styles', () => {
      expect(parseXml(`<a x = "1" y\n=\t'"2"' z='it&apos;s'/>`)).toEqual({
        a: { '@_x': '1', '@_y': '"2"', '@_z': "it's" },
      });
    });
  });

  describe('document structure', () => {
    it('refuses text before or after the root', () => {
      expect(refusal('x<a/>').message).toContain('text before the root element');
      expect(refusal('<a/>x').message).toContain('text after the root element');
      refusal('<?xml version="1.0"?>\nx\n<a/>');
      refusal('<a/><!-- c -->x<!-- d -->');
      // Whitespace, comments and PIs are fine on both sides.
      expect(parseXml(' \n<!-- c --><?pi x?>\t<a/>\r\n<!-- d --><?pi?> ')).toEqual({ a: '' });
    });

    it('refuses two roots', () => {
      for (const doc of ['<a/><b/>', '<a/><a/>', '<a></a>\n<a></a>', '<a/><!-- c --><b>x</b>']) {
        expect(refusal(doc).message).toContain('exactly one root element');
      }
    });

    it('refuses a document without a root', () => {
      for (const doc of ['', ' ', '<?xml version="1.0"?>', '<!-- only a comment -->', '\uFEFF']) refusal(doc);
    });

    it('refuses a closing tag that does not match', () => {
      expect(refusal('<a></b>').message).toContain('does not match <a>');
      expect(refusal('<a><b></a></b>').message).toContain('</a> does not match <b>');
      refusal('<a></A>');
      refusal('<ns:a></a>');
      refusal('</a>');
      refusal('<a/></a>');
      refusal('<a></a');
      refusal('<a></ a>');
    });

    it('refuses an element left open', () => {
      expect(refusal('<a><b></b>').message).toContain('<a> is not closed');
      refusal('<a');
      refusal('<a x="1"');
      refusal('<a/');
    });

    it('refuses an unterminated comment, CDATA section or processing instruction', () => {
      expect(refusal('<a><!-- open</a>').message).toContain('comment is not closed');
      expect(refusal('<a/><!-- open').message).toContain('comment is not closed');
      expect(refusal('<a><![CDATA[open</a>').message).toContain('CDATA section is not closed');
      expect(refusal('<a><?pi open</a>').message).toContain('processing instruction is not closed');
      expect(refusal('<?xml version="1.0"').message).toContain('processing instruction is not closed');
    });

    it("refuses '<!DOCTYPE' and the other markup declarations, naming them", () => {
      for (const doc of [
        '<!DOCTYPE a><a/>',
        '<!doctype a><a/>',
        '<?xml version="1.0"?>\n<!DOCTYPE a [<!ENTITY x "y">]>\n<a>&x;</a>',
        '<!DOCTYPE a SYSTEM "http://127.0.0.1:1/a.dtd"><a/>',
      ]) {
        expect(refusal(doc).message).toContain('DOCTYPE');
      }
      expect(refusal('<a><!ENTITY x "y"></a>').message).toContain('ENTITY');
      expect(refusal('<a><!ELEMENT a ANY></a>').message).toContain('ELEMENT');
      expect(refusal('<a/><!ATTLIST a x CDATA #IMPLIED>').message).toContain('ATTLIST');
      // Not inside comments or CDATA.
      expect(parseXml('<a><!-- <!DOCTYPE a> --><![CDATA[<!DOCTYPE b>]]></a>')).toEqual({ a: '<!DOCTYPE b>' });
    });
  });

  describe('references', () => {
    it('decodes the five predefined entities and character references, once', () => {
      expect(parseXml('<a x="&lt;&amp;lt;">&gt;&quot;&apos;&#65;&#x42;&#x1F600;&amp;#65;</a>')).toEqual({
        a: { '#text': '>"\'AB😀&#65;', '@_x': '<&lt;' },
      });
    });

    it('refuses other and malformed references', () => {
      for (const doc of [
        '<a>&nbsp;</a>',
        '<a>&amp</a>',
        '<a>& b</a>',
        '<a>&;</a>',
        '<a>&#;</a>',
        '<a>&#x;</a>',
        '<a>&#0;</a>',
        '<a>&#xFFFE;</a>',
        '<a>&#x110000;</a>',
        '<a x="&copy;"/>',
        '<a>&hasOwnProperty;</a>',
      ]) {
        refusal(doc);
      }
    });

    // A fixed reader defect (fast-xml-parser's strict decoder had it too): looked up in a plain object,
    // `&constructor;` decoded to "function Object() { [native code] }" and `&__proto__;` to
    // "[object Object]"; only the five predefined names may be decoded.
    it('refuses references named like Object.prototype members', () => {
      const leaked: string[] = [];
      for (const name of ['__proto__', 'constructor', 'toString', 'valueOf']) {
        for (const doc of [`<a>&${name};</a>`, `<a x="&${name};"/>`]) {
          try {
            leaked.push(`${doc} → ${JSON.stringify(parseXml(doc))}`);
          } catch (error) {
            expect(HvkitError.isInstance(error, 'PROTOCOL')).toBe(true);
          }
        }
      }
      expect(leaked).toEqual([]);
    });
  });
});
