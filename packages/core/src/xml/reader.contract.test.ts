/**
 * The reader behind `parseXml`, rule by rule against XML 1.0 (fifth edition): which characters names may
 * use (every range of NameStartChar and NameChar at its edges), which code points a character reference
 * may name, what an XML declaration may say, how text is trimmed and joined, and the exact reason of every
 * refusal. reader.test.ts covers positions and structure; parse.differential.test.ts compares with the old
 * parser.
 */

import { describe, expect, it } from 'vitest';
import { HvkitError } from '../errors/hvkit-error';
import { isXmlCodePoint, type ParseXmlOptions, parseXml } from './parse';

/** The reason `parseXml` gives for refusing `text`: its message without the prefix and position. */
function reason(text: string, options?: ParseXmlOptions): string {
  let thrown: unknown;
  try {
    parseXml(text, options);
  } catch (error) {
    thrown = error;
  }
  expect(HvkitError.isInstance(thrown, 'PROTOCOL'), `${JSON.stringify(text)} must be refused`).toBe(true);
  const m = /^Invalid XML: (.*?)(?: \(line \d+, column \d+\)\.)?$/s.exec((thrown as HvkitError).message);
  expect(m, (thrown as HvkitError).message).not.toBeNull();
  return m?.[1] as string;
}

/** XML 1.0 NameStartChar, range by range (the `:` and `_` singletons included). */
const NAME_START: readonly [number, number][] = [
  [0x3a, 0x3a],
  [0x41, 0x5a],
  [0x5f, 0x5f],
  [0x61, 0x7a],
  [0xc0, 0xd6],
  [0xd8, 0xf6],
  [0xf8, 0x2ff],
  [0x370, 0x37d],
  [0x37f, 0x1fff],
  [0x200c, 0x200d],
  [0x2070, 0x218f],
  [0x2c00, 0x2fef],
  [0x3001, 0xd7ff],
  [0xf900, 0xfdcf],
  [0xfdf0, 0xfffd],
  [0x10000, 0xeffff],
];
/** What NameChar adds to NameStartChar. */
const NAME_MORE: readonly [number, number][] = [
  [0x2d, 0x2e],
  [0x30, 0x39],
  [0xb7, 0xb7],
  [0x300, 0x36f],
  [0x203f, 0x2040],
];

const within = (ranges: readonly [number, number][], c: number) =>
  ranges.some(([lo, hi]) => c >= lo && c <= hi);
/** Each range's first and last code point and the ones just outside it. */
const edges = (ranges: readonly [number, number][]) =>
  [...new Set(ranges.flatMap(([lo, hi]) => [lo - 1, lo, hi, hi + 1]))].filter(
    (c) =>
      c > 0x20 &&
      (c < 0xd800 || c > 0xdfff) &&
      c <= 0x10ffff &&
      !'<>/="\'&?!'.includes(String.fromCodePoint(c)),
  );

const accepts = (doc: string) => {
  try {
    parseXml(doc);
    return true;
  } catch (error) {
    if (HvkitError.isInstance(error, 'PROTOCOL')) return false;
    throw error;
  }
};

describe('names', () => {
  it('start with exactly the NameStartChar code points', () => {
    const wrong = edges([...NAME_START, ...NAME_MORE])
      .map((c) => ({
        c: c.toString(16),
        expected: within(NAME_START, c),
        got: accepts(`<${String.fromCodePoint(c)}a/>`),
      }))
      .filter((r) => r.expected !== r.got);
    expect(wrong).toEqual([]);
  });

  it('continue with exactly the NameChar code points', () => {
    const wrong = edges([...NAME_START, ...NAME_MORE])
      .map((c) => ({
        c: c.toString(16),
        expected: within([...NAME_START, ...NAME_MORE], c),
        got: accepts(`<a${String.fromCodePoint(c)} x="1"/>`),
      }))
      .filter((r) => r.expected !== r.got);
    expect(wrong).toEqual([]);
  });

  it('read names up to the first character that cannot continue them, in tags and attributes', () => {
    expect(parseXml('<a-b.c_d:e9 f-g.h="1"/>')).toEqual({ 'a-b.c_d:e9': { '@_f-g.h': '1' } });
    expect(parseXml('<é𐀀><x\u00b7\u0300/></é𐀀>')).toEqual({ é𐀀: { 'x\u00b7\u0300': '' } });
  });
});

describe('character references', () => {
  it('may name exactly the XML Char code points', () => {
    const chars: [number, number][] = [
      [0x9, 0x9],
      [0xa, 0xa],
      [0xd, 0xd],
      [0x20, 0xd7ff],
      [0xe000, 0xfffd],
      [0x10000, 0x10ffff],
    ];
    for (const c of [0, 0x8, 0x9, 0xa, 0xb, 0xc, 0xd, 0xe, 0x1f, ...edges(chars), 0xd800, 0xdfff]) {
      expect(isXmlCodePoint(c), c.toString(16)).toBe(within(chars, c));
    }
  });

  it('take up to 7 decimal or 6 hex digits', () => {
    expect(parseXml('<a>&#0000065;&#x00041;&#X41;</a>'.replace('&#X41;', ''))).toEqual({ a: 'AA' });
    expect(reason('<a>&#00000065;</a>')).toBe('bad character reference &#00000065;.');
    expect(reason('<a>&#x0000041;</a>')).toBe('bad character reference &#x0000041;.');
    expect(reason('<a>&#x4G;</a>')).toBe('bad character reference &#x4G;.');
    expect(reason('<a>&#6a;</a>')).toBe('bad character reference &#6a;.');
    expect(reason('<a>&#-65;</a>')).toBe('bad character reference &#-65;.');
    expect(reason('<a>&#xD800;</a>')).toBe('bad character reference &#xD800;.');
  });

  it('name the reference they refuse, cut at 12 characters when it does not end', () => {
    expect(reason('<a>&bogus;</a>')).toBe('undefined entity &bogus;.');
    expect(reason('<a>x &abcdefghijklmnop; y</a>')).toBe('unterminated reference "&abcdefghijk".');
    expect(reason('<a>x &abcdefghijk;</a>')).toBe('undefined entity &abcdefghijk;.');
    expect(reason('<a>& </a>')).toBe('unterminated reference "&".');
    expect(reason('<a>& </a>', { trimValues: false })).toBe('unterminated reference "& ".');
  });

  it('decode every reference in a text, and nothing else', () => {
    expect(parseXml('<a>&lt;&lt;x&gt;y&amp;</a>')).toEqual({ a: '<<x>y&' });
    expect(parseXml('<a>plain text</a>')).toEqual({ a: 'plain text' });
  });
});

describe('the XML declaration', () => {
  it.each([
    '<?xml version="1.0"?>',
    "<?xml version='1.1'?>",
    '<?xml version="1.10" encoding="UTF-8"?>',
    '<?xml version = "1.0"\tencoding= \'iso-8859-1\' standalone ="yes" ?>',
    '<?xml version="1.0" standalone="no"?>',
    '<?xml\nversion="1.0"\nencoding="a._-9"?>',
  ])('%s is accepted', (decl) => {
    expect(parseXml(`${decl}<a/>`)).toEqual({ a: '' });
  });

  it.each([
    '<?xml?>',
    '<?xml version="2.0"?>',
    '<?xml version="1."?>',
    '<?xml version="1.0\'?>',
    '<?xml version="1.0"encoding="UTF-8"?>',
    '<?xml version="1.0" encoding="8bit"?>',
    '<?xml version="1.0" encoding=""?>',
    '<?xml version="1.0" standalone="maybe"?>',
    '<?xml version="1.0" standalone="yes" encoding="UTF-8"?>',
    '<?xml version="1.0" other="x"?>',
    '<?xml encoding="UTF-8" version="1.0"?>',
    '<?xml version="1.0" encoding="UTF-8"standalone="no"?>',
  ])('%s is malformed', (decl) => {
    expect(reason(`${decl}<a/>`)).toBe('malformed XML declaration.');
  });

  it('may only open the document (after a BOM), once; xml in other cases is reserved too', () => {
    expect(parseXml('\uFEFF<?xml version="1.0"?><a/>')).toEqual({ a: '' });
    for (const doc of [
      ' <?xml version="1.0"?><a/>',
      '<a/><?xml version="1.0"?>',
      '<?xml version="1.0"?><?xml version="1.0"?><a/>',
    ]) {
      expect(reason(doc), doc).toBe('the XML declaration is allowed only at the very start of the document.');
    }
    expect(reason('<a><?XmL version="1.0"?></a>')).toBe(
      'the XML declaration is allowed only at the very start of the document.',
    );
    // Longer or shorter targets are ordinary processing instructions.
    expect(parseXml('<a><?xmlx y?><?xm y?></a>')).toEqual({ a: '' });
  });

  it('processing instructions need a target followed by whitespace or ?>', () => {
    expect(parseXml('<a><?pi?><?pi\tx?></a>')).toEqual({ a: '' });
    expect(reason('<a><?pi-x?y?></a>')).toBe(
      'processing instruction target must be followed by whitespace or "?>".',
    );
    expect(reason('<a><?pi?x?></a>')).toBe(
      'processing instruction target must be followed by whitespace or "?>".',
    );
    expect(reason('<a><? pi?></a>')).toBe('expected a processing instruction target name.');
    expect(reason('<?xml="1.0"?><a/>')).toBe(
      'processing instruction target must be followed by whitespace or "?>".',
    );
  });
});

describe('text', () => {
  it('is trimmed per segment by default, kept whole with trimValues: false', () => {
    const doc = '<a x=" 1 "> t1 <b/> t2 <!-- c --> t3 <![CDATA[ cd ]]> t4 </a>';
    // Comments do not split a segment; CDATA is kept as it is.
    expect(parseXml(doc)).toEqual({ a: { b: '', '#text': 't1t2  t3 cd t4', '@_x': '1' } });
    expect(parseXml(doc, { trimValues: false })).toEqual({
      a: { b: '', '#text': ' t1  t2  t3  cd  t4 ', '@_x': ' 1 ' },
    });
  });

  it('drops segments that are only whitespace, keeps an element without text as an empty string', () => {
    expect(parseXml('<a> <b> </b> </a>')).toEqual({ a: { b: '' } });
    expect(parseXml('<a> <b> </b> </a>', { trimValues: false })).toEqual({ a: { b: ' ', '#text': '  ' } });
    expect(parseXml('<a></a>')).toEqual({ a: '' });
  });

  it('shapes elements: attributes only, text with attributes, children with text', () => {
    expect(parseXml('<a x="1"/>')).toEqual({ a: { '@_x': '1' } });
    expect(parseXml('<a x="1"></a>')).toEqual({ a: { '@_x': '1' } });
    expect(parseXml('<a x="1">t</a>')).toEqual({ a: { '#text': 't', '@_x': '1' } });
    expect(parseXml('<a><b/>t</a>')).toEqual({ a: { b: '', '#text': 't' } });
    expect(parseXml('<a><b/><b>2</b><c/><b x="3"/></a>')).toEqual({
      a: { b: ['', '2', { '@_x': '3' }], c: '' },
    });
  });

  it('builds the dotted paths alwaysArray names', () => {
    const paths: string[] = [];
    parseXml('<a><b><c/></b><d/></a>', {
      alwaysArray: (_name, path) => {
        paths.push(path);
        return false;
      },
    });
    expect(paths.sort()).toEqual(['a', 'a.b', 'a.b.c', 'a.d']);
    expect(parseXml('<a><b><c>1</c></b><c>2</c></a>', { alwaysArray: ['a.b.c'] })).toEqual({
      a: { b: { c: ['1'] }, c: '2' },
    });
    // The root cannot be a list.
    expect(reason('<a/>', { alwaysArray: ['a'] })).toBe('a document must have exactly one root element.');
  });
});

describe('refusals', () => {
  it.each([
    ['<a></b>', 'closing tag </b> does not match <a>.'],
    ['</a>', 'closing tag </a> without an opening tag.'],
    ['<a></a x>', "closing tag </a> is not closed by '>'."],
    ['<a></ a>', 'expected a closing tag name.'],
    ['<a', 'tag <a> is not closed.'],
    ['<a x="1"', 'tag <a> is not closed.'],
    ['<a/ >', "expected '>' after '/' in <a>."],
    ['<a x="1"y="2"/>', 'expected whitespace before an attribute in <a>.'],
    ['<a x/>', 'attribute x of <a> has no value.'],
    ['<a x=1/>', 'attribute x of <a> is not quoted.'],
    ['<a x="1/>', 'attribute x of <a> is not closed.'],
    ['<a x="<"/>', "attribute x of <a> contains '<'."],
    ['<a x="1" x="2"/>', 'attribute x repeats in <a>.'],
    ['< a/>', 'expected an element name.'],
    ['<a -x="1"/>', 'expected an attribute name.'],
    ['<__proto__/>', 'element name __proto__ is not allowed.'],
    ['<a/><b/>', 'a document must have exactly one root element.'],
    ['x<a/>', 'text before the root element.'],
    ['<a/>x', 'text after the root element.'],
    ['', 'no root element.'],
    ['<a>', 'element <a> is not closed.'],
    ['<![CDATA[x]]><a/>', 'CDATA outside the root element.'],
    ['<a><![CDATA[x</a>', 'CDATA section is not closed.'],
    ['<a><!-- x</a>', 'comment is not closed.'],
    ['<a><?pi x</a>', 'processing instruction is not closed.'],
    ['<a><!x></a>', "unexpected '<!'."],
    ['<a><!-x></a>', "unexpected '<!'."],
    ['<!DOCTYPE a><a/>', '<!DOCTYPE> declarations are not allowed (no DTDs, no entity definitions).'],
    ['<a><! NOTATION x></a>', '<!NOTATION> declarations are not allowed (no DTDs, no entity definitions).'],
    ['<a><!attlist x></a>', '<!ATTLIST> declarations are not allowed (no DTDs, no entity definitions).'],
  ] as const)('%j: %s', (doc, message) => {
    expect(reason(doc)).toBe(message);
  });

  it('cuts a long reason at 300 characters', () => {
    const name = `a${'b'.repeat(400)}`;
    expect(reason(`<${name}></c>`)).toBe(`closing tag </c> does not match <${name}>.`.slice(0, 300));
  });
});
