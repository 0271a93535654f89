/**
 * The engine behind {@link parseXml}: one pass over the text that checks well-formedness and builds the
 * parsed object at the same time. No DOCTYPE (nor any other markup declaration), no entities beyond the
 * five predefined ones and character references, a nesting limit.
 *
 * Output shape (what `parseXml` documents):
 * - an element with neither attributes nor child elements is its text (`''` when it has none);
 * - any other element is an object: child elements by tag name in document order (a name seen twice, or
 *   one the array predicate names, becomes an array), then `#text` when there is text, then the
 *   attributes as `@_name`;
 * - text is collected in segments split by child elements, CDATA sections and processing instructions
 *   (comments do not split it); each segment is trimmed when `trimValues` is set, dropped when empty,
 *   entity-decoded, and the segments are concatenated; CDATA is added verbatim;
 * - `\r\n` and a lone `\r` read as `\n` everywhere (XML's end-of-line handling).
 *
 * Internal to @hvkit/core; callers use `parseXml`.
 */

import type { XmlArrayPredicate, XmlObject, XmlValue } from './parse';

/** A syntax or hardening error at `offset` (a UTF-16 index into the normalised text). */
export class XmlReadError extends Error {
  /** 1-based line and column, set when the error leaves {@link readXml}. */
  line = 0;
  col = 0;
  constructor(
    message: string,
    readonly offset: number,
  ) {
    super(message);
    this.name = 'XmlReadError';
  }
}

/** Settings of {@link readXml}. */
export interface ReadXmlSettings {
  trimValues: boolean;
  maxDepth: number;
  isArray: XmlArrayPredicate | undefined;
}

/** The five entities XML predefines (a switch, so names like `constructor` find nothing). */
function predefinedEntity(name: string): string | undefined {
  switch (name) {
    case 'lt':
      return '<';
    case 'gt':
      return '>';
    case 'amp':
      return '&';
    case 'quot':
      return '"';
    case 'apos':
      return "'";
    default:
      return undefined;
  }
}

/** `<?xml version="1.x" encoding="..." standalone="yes|no"?>`, as XML 1.0 spells it (only `version` required). */
const XML_DECLARATION =
  /^<\?xml[ \t\n]+version[ \t\n]*=[ \t\n]*(["'])1\.[0-9]+\1(?:[ \t\n]+encoding[ \t\n]*=[ \t\n]*(["'])[A-Za-z][A-Za-z0-9._-]*\2)?(?:[ \t\n]+standalone[ \t\n]*=[ \t\n]*(["'])(?:yes|no)\3)?[ \t\n]*\?>$/;

/** Markup declarations, all refused: they are how DTDs declare (and expand, and fetch) entities. */
const DECLARATIONS = new Set(['DOCTYPE', 'ENTITY', 'ELEMENT', 'ATTLIST', 'NOTATION']);

const GT = 0x3e; // >
const SLASH = 0x2f; // /
const BANG = 0x21; // !
const QUESTION = 0x3f; // ?
const EQ = 0x3d; // =
const DQUOTE = 0x22;
const SQUOTE = 0x27;

function isWs(c: number): boolean {
  return c === 0x20 || c === 0x0a || c === 0x09 || c === 0x0d;
}

/**
 * XML 1.0 (fifth edition) NameStartChar. Characters above U+FFFF arrive as surrogate pairs: a high
 * surrogate up to U+DB7F starts U+10000–U+EFFFF, and its low surrogate is then a {@link isNameChar}.
 */
function isNameStart(c: number): boolean {
  if (c < 0x80) {
    return (c >= 0x61 && c <= 0x7a) || (c >= 0x41 && c <= 0x5a) || c === 0x5f || c === 0x3a; // a-z A-Z _ :
  }
  return (
    (c >= 0xc0 && c <= 0xd6) ||
    (c >= 0xd8 && c <= 0xf6) ||
    (c >= 0xf8 && c <= 0x2ff) ||
    (c >= 0x370 && c <= 0x37d) ||
    (c >= 0x37f && c <= 0x1fff) ||
    c === 0x200c ||
    c === 0x200d ||
    (c >= 0x2070 && c <= 0x218f) ||
    (c >= 0x2c00 && c <= 0x2fef) ||
    (c >= 0x3001 && c <= 0xd7ff) ||
    (c >= 0xd800 && c <= 0xdb7f) || // high surrogate of U+10000–U+EFFFF
    (c >= 0xf900 && c <= 0xfdcf) ||
    (c >= 0xfdf0 && c <= 0xfffd)
  );
}

/** XML 1.0 NameChar (plus the low half of a surrogate pair whose high half {@link isNameStart} took). */
function isNameChar(c: number): boolean {
  if (c < 0x80) {
    return (
      (c >= 0x61 && c <= 0x7a) ||
      (c >= 0x41 && c <= 0x5a) ||
      (c >= 0x30 && c <= 0x39) ||
      c === 0x5f ||
      c === 0x3a ||
      c === 0x2d ||
      c === 0x2e
    );
  }
  return (
    isNameStart(c) ||
    c === 0xb7 ||
    (c >= 0x300 && c <= 0x36f) ||
    c === 0x203f ||
    c === 0x2040 ||
    (c >= 0xdc00 && c <= 0xdfff)
  );
}

/** Whether `text` is only XML whitespace (space, tab, newline, carriage return), not Unicode's. */
function isXmlSpace(text: string): boolean {
  for (let k = 0; k < text.length; k++) if (!isWs(text.charCodeAt(k))) return false;
  return true;
}

/** Whether a code point is an XML 1.0 `Char` (what a character reference may name). */
export function isXmlCodePoint(code: number): boolean {
  return (
    code === 0x9 ||
    code === 0xa ||
    code === 0xd ||
    (code >= 0x20 && code <= 0xd7ff) ||
    (code >= 0xe000 && code <= 0xfffd) ||
    (code >= 0x10000 && code <= 0x10ffff)
  );
}

/**
 * Decodes the predefined entities and character references of `text`; `locate` turns an index in `text`
 * into an offset in the document for errors. Any
 * other reference (an HTML entity, one a DTD would declare) is an error, so nothing can be expanded.
 */
function decodeReferences(text: string, locate: (index: number) => number): string {
  let out = '';
  let from = 0;
  let amp = text.indexOf('&');
  while (amp !== -1) {
    const semi = text.indexOf(';', amp + 1);
    if (semi === -1 || semi - amp > 12) {
      throw new XmlReadError(
        `unterminated reference ${JSON.stringify(text.slice(amp, amp + 12))}.`,
        locate(amp),
      );
    }
    const body = text.slice(amp + 1, semi);
    let value: string | undefined;
    if (body.charCodeAt(0) === 0x23) {
      const hex = body.charCodeAt(1) === 0x78; // x
      const digits = body.slice(hex ? 2 : 1);
      if ((hex ? /^[0-9a-fA-F]{1,6}$/ : /^[0-9]{1,7}$/).test(digits)) {
        const code = Number.parseInt(digits, hex ? 16 : 10);
        if (isXmlCodePoint(code)) value = String.fromCodePoint(code);
      }
      if (value === undefined) {
        throw new XmlReadError(`bad character reference &${body};.`, locate(amp));
      }
    } else {
      value = predefinedEntity(body);
      if (value === undefined) throw new XmlReadError(`undefined entity &${body};.`, locate(amp));
    }
    out += text.slice(from, amp) + value;
    from = semi + 1;
    amp = text.indexOf('&', from);
  }
  return from === 0 ? text : out + text.slice(from);
}

/** An element being read. */
interface Frame {
  name: string;
  /** Dotted path from the root (only kept when an array predicate needs it). */
  path: string;
  /** Child elements, created on the first one. */
  children: XmlObject | undefined;
  /** Attributes keyed `@_name` in document order, or undefined when there are none. */
  attrs: XmlObject | undefined;
  /** Text collected so far. */
  text: string;
}

/**
 * Reads one document. The text must already be checked for size and forbidden characters.
 *
 * @throws XmlReadError for anything not well-formed or refused, with its line and column.
 */
export function readXml(input: string, settings: ReadXmlSettings): XmlObject {
  const src = input.includes('\r') ? input.replace(/\r\n?/g, '\n') : input;
  try {
    return new Reader(src, settings).document();
  } catch (error) {
    if (error instanceof XmlReadError) Object.assign(error, lineColumn(src, error.offset));
    throw error;
  }
}

/** One pass over one document; the state lives on the instance, and frames of closed elements are reused. */
class Reader {
  private readonly len: number;
  private readonly trimValues: boolean;
  private readonly maxDepth: number;
  private readonly isArray: XmlArrayPredicate | undefined;
  /** Open elements, root first: `frames[0..depth)`; frame objects are reused once their element closed. */
  private readonly frames: Frame[] = [];
  private depth = 0;
  private top: Frame | undefined;
  private result: XmlObject | undefined;
  /** Raw text not yet added to `top` (comments do not end it). */
  private pending = '';
  /** Where each piece of `pending` came from: start and end offsets, in pairs (`piecesLength` used). */
  private readonly pieces: number[] = [];
  private piecesLength = 0;
  private sawDeclaration = false;

  constructor(
    private readonly src: string,
    settings: ReadXmlSettings,
  ) {
    this.len = src.length;
    this.trimValues = settings.trimValues;
    this.maxDepth = settings.maxDepth;
    this.isArray = settings.isArray;
  }

  document(): XmlObject {
    const src = this.src;
    const len = this.len;
    let i = src.charCodeAt(0) === 0xfeff ? 1 : 0;
    while (i < len) {
      const lt = src.indexOf('<', i);
      if (lt === -1) {
        this.addPending(i, len);
        break;
      }
      if (lt > i) this.addPending(i, lt);
      const c1 = src.charCodeAt(lt + 1);
      if (c1 === SLASH) i = this.closingTag(lt);
      else if (c1 === BANG) i = this.bang(lt);
      else if (c1 === QUESTION) i = this.processingInstruction(lt);
      else i = this.openingTag(lt);
    }
    this.flushText();
    if (this.top !== undefined) throw new XmlReadError(`element <${this.top.name}> is not closed.`, len);
    if (this.result === undefined) throw new XmlReadError('no root element.', len);
    return this.result;
  }

  private addPending(from: number, to: number): void {
    if (this.pending === '') {
      this.pending = this.src.slice(from, to);
      this.piecesLength = 0;
    } else {
      this.pending += this.src.slice(from, to);
    }
    this.pieces[this.piecesLength++] = from;
    this.pieces[this.piecesLength++] = to;
  }

  /** The document offset of index `k` of the pending text (whose pieces may be split by comments). */
  private pendingOffset(k: number): number {
    let rest = k;
    const pieces = this.pieces;
    for (let p = 0; p < this.piecesLength; p += 2) {
      const size = (pieces[p + 1] as number) - (pieces[p] as number);
      if (rest < size) return (pieces[p] as number) + rest;
      rest -= size;
    }
    return pieces[this.piecesLength - 1] ?? 0;
  }

  /** Ends the pending text segment: trimmed (if asked), dropped when empty, decoded, added to the element. */
  private flushText(): void {
    const pending = this.pending;
    if (pending === '') return;
    this.pending = '';
    const top = this.top;
    if (top === undefined) {
      if (!isXmlSpace(pending)) {
        let k = 0;
        while (isWs(pending.charCodeAt(k))) k++;
        throw new XmlReadError(
          this.result === undefined ? 'text before the root element.' : 'text after the root element.',
          this.pendingOffset(k),
        );
      }
      return;
    }
    let t = pending;
    let lead = 0;
    if (this.trimValues) {
      t = pending.trim();
      lead = pending.length - pending.trimStart().length;
    }
    if (t === '') return;
    if (t.includes('&')) t = decodeReferences(t, (k) => this.pendingOffset(lead + k));
    top.text = top.text === '' ? t : top.text + t;
  }

  /** The end of the name starting at `at`. */
  private name(at: number, what: string): number {
    const src = this.src;
    if (at >= this.len || !isNameStart(src.charCodeAt(at))) {
      throw new XmlReadError(`expected ${what} name.`, at);
    }
    let j = at + 1;
    while (j < this.len && isNameChar(src.charCodeAt(j))) j++;
    return j;
  }

  private skipWs(at: number): number {
    let j = at;
    while (j < this.len && isWs(this.src.charCodeAt(j))) j++;
    return j;
  }

  private closingTag(lt: number): number {
    this.flushText();
    const nameEnd = this.name(lt + 2, 'a closing tag');
    const name = this.src.slice(lt + 2, nameEnd);
    const j = this.skipWs(nameEnd);
    if (this.src.charCodeAt(j) !== GT)
      throw new XmlReadError(`closing tag </${name}> is not closed by '>'.`, lt);
    const frame = this.top;
    if (frame === undefined) throw new XmlReadError(`closing tag </${name}> without an opening tag.`, lt);
    if (frame.name !== name)
      throw new XmlReadError(`closing tag </${name}> does not match <${frame.name}>.`, lt);
    this.depth--;
    this.top = this.depth > 0 ? this.frames[this.depth - 1] : undefined;
    this.closeElement(frame);
    return j + 1;
  }

  /** `<!--`, `<![CDATA[`, or a refused declaration. */
  private bang(lt: number): number {
    const src = this.src;
    if (src.startsWith('--', lt + 2)) {
      const end = src.indexOf('-->', lt + 4);
      if (end === -1) throw new XmlReadError('comment is not closed.', lt);
      return end + 3; // a comment does not end the pending text
    }
    if (src.startsWith('[CDATA[', lt + 2)) {
      const top = this.top;
      if (top === undefined) throw new XmlReadError('CDATA outside the root element.', lt);
      const end = src.indexOf(']]>', lt + 9);
      if (end === -1) throw new XmlReadError('CDATA section is not closed.', lt);
      this.flushText();
      top.text += src.slice(lt + 9, end);
      return end + 3;
    }
    const word = /^\s*([A-Za-z]+)/.exec(src.slice(lt + 2, lt + 24))?.[1]?.toUpperCase() ?? '';
    if (DECLARATIONS.has(word)) {
      throw new XmlReadError(`<!${word}> declarations are not allowed (no DTDs, no entity definitions).`, lt);
    }
    throw new XmlReadError(`unexpected '<!'.`, lt);
  }

  /**
   * A processing instruction or the XML declaration: dropped once checked. The target must be a name
   * followed by whitespace or `?>`; `xml` (any case) is reserved for the declaration, which may only open
   * the document and must be well-formed.
   */
  private processingInstruction(lt: number): number {
    const src = this.src;
    const targetEnd = this.name(lt + 2, 'a processing instruction target');
    const after = src.charCodeAt(targetEnd);
    if (!isWs(after) && !(after === QUESTION && src.charCodeAt(targetEnd + 1) === GT)) {
      throw new XmlReadError(
        'processing instruction target must be followed by whitespace or "?>".',
        targetEnd,
      );
    }
    const end = src.indexOf('?>', targetEnd);
    if (end === -1) throw new XmlReadError('processing instruction is not closed.', lt);
    if (targetEnd - lt - 2 === 3 && src.slice(lt + 2, targetEnd).toLowerCase() === 'xml') {
      const first = lt === 0 || (lt === 1 && src.charCodeAt(0) === 0xfeff);
      if (!first || this.sawDeclaration) {
        throw new XmlReadError('the XML declaration is allowed only at the very start of the document.', lt);
      }
      if (!XML_DECLARATION.test(src.slice(lt, end + 2))) {
        throw new XmlReadError('malformed XML declaration.', lt);
      }
      this.sawDeclaration = true;
    }
    this.flushText();
    return end + 2;
  }

  private openingTag(lt: number): number {
    const src = this.src;
    const len = this.len;
    if (this.top === undefined && this.result !== undefined) {
      throw new XmlReadError('a document must have exactly one root element.', lt);
    }
    this.flushText();
    const nameEnd = this.name(lt + 1, 'an element');
    const name = src.slice(lt + 1, nameEnd);
    if (name === '__proto__') throw new XmlReadError('element name __proto__ is not allowed.', lt);
    if (this.depth >= this.maxDepth) {
      throw new XmlReadError(`elements nest deeper than ${this.maxDepth} levels.`, lt);
    }
    let j = nameEnd;
    let attrs: XmlObject | undefined;
    let selfClosing = false;
    for (;;) {
      const wsStart = j;
      j = this.skipWs(j);
      const c = src.charCodeAt(j);
      if (c === GT) {
        j++;
        break;
      }
      if (c === SLASH) {
        if (src.charCodeAt(j + 1) !== GT) throw new XmlReadError(`expected '>' after '/' in <${name}>.`, j);
        selfClosing = true;
        j += 2;
        break;
      }
      if (j >= len) throw new XmlReadError(`tag <${name}> is not closed.`, lt);
      if (j === wsStart) throw new XmlReadError(`expected whitespace before an attribute in <${name}>.`, j);
      const attrStart = j;
      j = this.name(j, 'an attribute');
      const attrName = src.slice(attrStart, j);
      j = this.skipWs(j);
      if (src.charCodeAt(j) !== EQ)
        throw new XmlReadError(`attribute ${attrName} of <${name}> has no value.`, attrStart);
      j = this.skipWs(j + 1);
      const q = src.charCodeAt(j);
      if (q !== DQUOTE && q !== SQUOTE)
        throw new XmlReadError(`attribute ${attrName} of <${name}> is not quoted.`, j);
      const close = src.indexOf(q === DQUOTE ? '"' : "'", j + 1);
      if (close === -1) throw new XmlReadError(`attribute ${attrName} of <${name}> is not closed.`, j);
      let value = src.slice(j + 1, close);
      if (value.includes('<')) throw new XmlReadError(`attribute ${attrName} of <${name}> contains '<'.`, j);
      let valueAt = j + 1;
      if (this.trimValues) {
        valueAt += value.length - value.trimStart().length;
        value = value.trim();
      }
      if (value.includes('&')) {
        const at = valueAt;
        value = decodeReferences(value, (k) => at + k);
      }
      const key = `@_${attrName}`;
      if (attrs === undefined) attrs = {};
      else if (Object.hasOwn(attrs, key)) {
        throw new XmlReadError(`attribute ${attrName} repeats in <${name}>.`, attrStart);
      }
      attrs[key] = value;
      j = close + 1;
    }
    const top = this.top;
    const path = this.isArray === undefined ? '' : top === undefined ? name : `${top.path}.${name}`;
    if (selfClosing) {
      // Attributes only (or nothing): the value is ready.
      this.addToParent(name, path, attrs ?? '');
      return j;
    }
    let frame = this.frames[this.depth];
    if (frame === undefined) {
      frame = { name, path, children: undefined, attrs, text: '' };
      this.frames[this.depth] = frame;
    } else {
      frame.name = name;
      frame.path = path;
      frame.children = undefined;
      frame.attrs = attrs;
      frame.text = '';
    }
    this.depth++;
    this.top = frame;
    return j;
  }

  /** Builds the element's value (see the module comment) and adds it to its parent. */
  private closeElement(frame: Frame): void {
    const { children, attrs, text } = frame;
    let value: XmlValue;
    if (children === undefined && attrs === undefined) {
      value = text;
    } else if (children === undefined && text === '') {
      value = attrs as XmlObject;
    } else {
      const obj: XmlObject = children ?? {};
      if (text !== '') obj['#text'] = text;
      if (attrs !== undefined) {
        for (const key in attrs) obj[key] = attrs[key] as string;
      }
      value = obj;
    }
    this.addToParent(frame.name, frame.path, value);
  }

  /** Adds a finished element to the open one (or makes it the document's root). */
  private addToParent(name: string, path: string, value: XmlValue): void {
    const parent = this.top;
    if (parent === undefined) {
      const doc: XmlObject = {};
      doc[name] = this.isArray?.(name, path) ? [value] : value;
      this.result = doc;
      return;
    }
    if (parent.children === undefined) parent.children = {};
    const obj = parent.children;
    if (Object.hasOwn(obj, name)) {
      const existing = obj[name] as XmlValue;
      if (Array.isArray(existing)) existing.push(value);
      else obj[name] = [existing, value];
    } else {
      obj[name] = this.isArray?.(name, path) ? [value] : value;
    }
  }
}

/** 1-based line and column of `offset` in `text`. */
function lineColumn(text: string, offset: number): { line: number; col: number } {
  let line = 1;
  let lineStart = 0;
  const end = Math.min(offset, text.length);
  for (let k = text.indexOf('\n'); k !== -1 && k < end; k = text.indexOf('\n', k + 1)) {
    line++;
    lineStart = k + 1;
  }
  return { line, col: end - lineStart + 1 };
}
