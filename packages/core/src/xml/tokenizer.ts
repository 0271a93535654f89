/**
 * hvkit's one XML tokenizer: a pull reader that checks well-formedness and applies every hardening rule
 * (size limit, forbidden characters, no DOCTYPE or any other markup declaration, only the five predefined
 * entities and character references, XML 1.0 name rules, a nesting limit, positions in errors) in one
 * place. `parseXml` builds plain objects on it; the vSphere decoder builds vim25 values on it.
 */

import { hvkitError } from '../errors/hvkit-error';

/** Default largest document of {@link XmlTokenizer} and `parseXml`: 16 MiB. */
export const XML_DEFAULT_MAX_BYTES = 16 * 1024 * 1024;
/** Default deepest element nesting of {@link XmlTokenizer} and `parseXml`: 100. */
export const XML_DEFAULT_MAX_DEPTH = 100;

/**
 * What {@link XmlTokenizer.next} read: a start tag, an end tag (a self-closing tag gives a start then an
 * end), text (decoded character data or a CDATA section), or the end of the document.
 */
export type XmlToken = 'start' | 'end' | 'text' | 'eof';

/** Options of {@link XmlTokenizer}. */
export interface XmlTokenizerOptions {
  /** Largest document in UTF-8 bytes; a larger one is refused with `PROTOCOL`. Default 16 MiB. */
  maxBytes?: number;
  /** Deepest element nesting accepted, the document element being level 1. Default 100. */
  maxDepth?: number;
  /**
   * Trim whitespace around text and attribute values, and drop text that is then empty (`parseXml`'s
   * default). Text split by child elements, CDATA sections or processing instructions is trimmed piece by
   * piece; comments do not split it. CDATA is never trimmed. Default false.
   */
  trimValues?: boolean;
  /**
   * Attribute-value normalisation of XML 1.0 §3.3.3: a literal tab, line feed or carriage return in an
   * attribute value reads as a space (character references to them stay what they name). Default false.
   */
  normalizeAttributeValues?: boolean;
  /** First words of error messages (default `Invalid XML`). */
  label?: string;
  /** Named in errors. */
  adapter?: string;
  /** Named in errors. */
  operation?: string;
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

// Characters XML 1.0 forbids apart from unpaired surrogates (those are found by isWellFormed).
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters to refuse.
const FORBIDDEN_CHAR = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;
const ATTRIBUTE_SPACE = /[\t\n]/g; // a carriage return was read as a line feed

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
export function isXmlSpace(text: string): boolean {
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

/** True when `s` holds `word` at `at` (a plain loop: faster than startsWith for short words). */
function sameChars(s: string, at: number, word: string): boolean {
  const n = word.length;
  if (at + n > s.length) return false;
  for (let k = 0; k < n; k++) if (s.charCodeAt(at + k) !== word.charCodeAt(k)) return false;
  return true;
}

/**
 * Names seen so far, shared by all documents: hash → string (see {@link XmlTokenizer.intern}). Bounded:
 * at most {@link NAMES_MAX} strings of at most 64 characters (about 1 MiB); once full, new names are no
 * longer added (they are then sliced each time, which is only slower).
 */
const NAMES = new Map<number, string>();
const NAMES_MAX = 8192;

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

/**
 * A pull tokenizer over one XML document. Each {@link next} call reads one token and describes it in the
 * fields (`name`, `attributes`, `text`, ...), which stay valid until the following call:
 *
 * ```ts
 * const xml = new XmlTokenizer('<a x="1">hi<b/></a>');
 * xml.next(); // 'start': name 'a', attributes ['x', '1']
 * xml.next(); // 'text': text 'hi'
 * xml.next(); // 'start': name 'b', selfClosing true
 * xml.next(); // 'end': name 'b'
 * xml.next(); // 'end': name 'a'
 * xml.next(); // 'eof'
 * ```
 *
 * Comments, processing instructions and the XML declaration are checked and skipped; CDATA sections come
 * as text, verbatim; `\r\n` and a lone `\r` read as `\n` (XML's end-of-line handling), and offsets and
 * positions are in that normalised text. Names keep their namespace prefixes (`soapenv:Envelope`); repeated
 * names and attribute names are the same string object. The end of the document is reported only when it
 * is complete: one root element, closed, with nothing but whitespace, comments and processing
 * instructions around it.
 *
 * Every refusal is an `HvkitError` `PROTOCOL` whose message names the reason, line and column (details:
 * `line`, `col`, `offset`); {@link fail} raises one at any offset, for callers' own rules.
 */
export class XmlTokenizer {
  /** The token just read (`'eof'` also before the first {@link next}). */
  token: XmlToken = 'eof';
  /** The element name of a `start` or `end` token, prefix included. */
  name = '';
  /** Whether the `start` token just read was `<name/>` (its `end` token comes next). */
  selfClosing = false;
  /**
   * The attributes of the `start` token just read, in document order, as name, value, name, value, ...
   * (`attributeCount` pairs; the array is reused by the next start tag). Values are decoded.
   */
  readonly attributes: string[] = [];
  /** How many attribute pairs {@link attributes} holds. */
  attributeCount = 0;
  /** The text of a `text` token: decoded character data (trimmed when asked), or a CDATA section. */
  text = '';
  /** Elements open after this token (a `start` counts its element; an `end` no longer does). */
  depth = 0;
  /** Where the token starts, as an index into the normalised text. */
  offset = 0;

  private readonly src: string;
  private readonly len: number;
  private readonly maxDepth: number;
  private readonly trimValues: boolean;
  private readonly normalizeAttributes: boolean;
  private readonly label: string;
  private readonly adapter: string | undefined;
  private readonly operation: string | undefined;
  /** Where reading continues. */
  private i: number;
  /** Names of the open elements, root first (`depth` valid). */
  private readonly open: string[] = [];
  /** A self-closing start was returned: its end is the next token. */
  private endPending = false;
  private sawRoot = false;
  private sawDeclaration = false;
  /** Raw text not yet returned (comments do not end it). */
  private pending = '';
  /** Where each piece of `pending` came from: start and end offsets, in pairs (`piecesLength` used). */
  private readonly pieces: number[] = [];
  private piecesLength = 0;
  /** The hash of the name {@link scanName} read last. */
  private hash = 0;

  /**
   * @throws HvkitError `PROTOCOL` when `text` is larger than `maxBytes` or holds characters XML forbids
   *   (C0 controls other than tab, line feed and carriage return; U+FFFE, U+FFFF; unpaired surrogates).
   * @throws TypeError when `text` is not a string or an option has the wrong type.
   */
  constructor(text: string, options: XmlTokenizerOptions = {}) {
    if (typeof text !== 'string') throw new TypeError('XmlTokenizer expects a string.');
    const maxBytes = options.maxBytes ?? XML_DEFAULT_MAX_BYTES;
    if (typeof maxBytes !== 'number' || !(maxBytes > 0))
      throw new TypeError('XmlTokenizer: maxBytes must be a positive number.');
    const maxDepth = options.maxDepth ?? XML_DEFAULT_MAX_DEPTH;
    if (!Number.isInteger(maxDepth) || maxDepth < 1)
      throw new TypeError('XmlTokenizer: maxDepth must be a positive integer.');
    this.maxDepth = maxDepth;
    this.trimValues = options.trimValues === true;
    this.normalizeAttributes = options.normalizeAttributeValues === true;
    this.label = options.label ?? 'Invalid XML';
    this.adapter = options.adapter;
    this.operation = options.operation;
    this.src = text;
    this.len = text.length;
    this.i = 0;
    // A UTF-16 code unit is at most 3 UTF-8 bytes: count the bytes only when that could matter.
    if (
      text.length > maxBytes ||
      (text.length * 3 > maxBytes && Buffer.byteLength(text, 'utf8') > maxBytes)
    ) {
      throw this.error(`document is larger than ${maxBytes} bytes.`, { maxBytes });
    }
    if (FORBIDDEN_CHAR.test(text) || !(text as unknown as { isWellFormed(): boolean }).isWellFormed()) {
      throw this.error('document contains characters XML forbids.');
    }
    if (text.includes('\r')) {
      this.src = text.replace(/\r\n?/g, '\n');
      this.len = this.src.length;
    }
    if (this.src.charCodeAt(0) === 0xfeff) this.i = 1;
  }

  /**
   * Throws a `PROTOCOL` error for the document: `<label>: <reason> (line L, column C).`, with `line`,
   * `col` and `offset` in its details. For the caller's own rules (a value of the wrong type, an
   * unexpected element); the tokenizer raises its own through here too.
   */
  fail(reason: string, offset: number = this.offset): never {
    const at = Math.max(0, Math.min(offset, this.len));
    const { line, col } = lineColumn(this.src, at);
    throw this.error(`${reason.slice(0, 300)} (line ${line}, column ${col}).`, { line, col, offset: at });
  }

  private error(message: string, details?: Record<string, unknown>) {
    return hvkitError('PROTOCOL', `${this.label}: ${message}`, {
      adapter: this.adapter,
      operation: this.operation,
      retryable: false,
      details,
    });
  }

  /**
   * Reads the next token.
   *
   * @throws HvkitError `PROTOCOL` for anything not well-formed or refused (see the class comment).
   */
  next(): XmlToken {
    if (this.endPending) {
      this.endPending = false;
      this.depth--;
      this.selfClosing = false;
      this.token = 'end';
      return 'end';
    }
    const src = this.src;
    const len = this.len;
    let i = this.i;
    for (;;) {
      const lt = src.indexOf('<', i);
      if (lt === -1) {
        if (i < len) this.addPending(i, len);
        this.i = len;
        return this.endOfDocument();
      }
      if (lt > i) this.addPending(i, lt);
      const c1 = src.charCodeAt(lt + 1);
      if (c1 === SLASH) {
        if (this.pending !== '' && this.flushText()) {
          this.i = lt;
          return 'text';
        }
        return this.endTag(lt);
      }
      if (c1 === BANG) {
        if (src.startsWith('--', lt + 2)) {
          const end = src.indexOf('-->', lt + 4);
          if (end === -1) this.fail('comment is not closed.', lt);
          i = end + 3; // a comment does not end the pending text
          continue;
        }
        if (src.startsWith('[CDATA[', lt + 2)) {
          if (this.depth === 0) this.fail('CDATA outside the root element.', lt);
          const end = src.indexOf(']]>', lt + 9);
          if (end === -1) this.fail('CDATA section is not closed.', lt);
          if (this.pending !== '' && this.flushText()) {
            this.i = lt;
            return 'text';
          }
          i = end + 3;
          if (end === lt + 9) continue;
          this.i = i;
          this.offset = lt;
          this.text = src.slice(lt + 9, end);
          this.token = 'text';
          return 'text';
        }
        const word = /^\s*([A-Za-z]+)/.exec(src.slice(lt + 2, lt + 24))?.[1]?.toUpperCase() ?? '';
        if (DECLARATIONS.has(word)) {
          this.fail(`<!${word}> declarations are not allowed (no DTDs, no entity definitions).`, lt);
        }
        this.fail(`unexpected '<!'.`, lt);
      }
      if (c1 === QUESTION) {
        i = this.processingInstruction(lt);
        if (this.pending !== '' && this.flushText()) {
          this.i = i;
          return 'text';
        }
        continue;
      }
      if (this.depth === 0 && this.sawRoot) {
        this.fail('a document must have exactly one root element.', lt);
      }
      if (this.pending !== '' && this.flushText()) {
        this.i = lt;
        return 'text';
      }
      return this.startTag(lt);
    }
  }

  private endOfDocument(): XmlToken {
    if (this.pending !== '') this.flushText();
    if (this.depth > 0) this.fail(`element <${this.open[this.depth - 1]}> is not closed.`, this.len);
    if (!this.sawRoot) this.fail('no root element.', this.len);
    this.offset = this.len;
    this.token = 'eof';
    return 'eof';
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

  /**
   * Ends the pending text: outside the root it must be whitespace; inside, it is trimmed (if asked),
   * dropped when empty, decoded. True when it became a `text` token.
   */
  private flushText(): boolean {
    const pending = this.pending;
    this.pending = '';
    if (this.depth === 0) {
      if (!isXmlSpace(pending)) {
        let k = 0;
        while (isWs(pending.charCodeAt(k))) k++;
        this.fail(
          this.sawRoot ? 'text after the root element.' : 'text before the root element.',
          this.pendingOffset(k),
        );
      }
      return false;
    }
    let t = pending;
    let lead = 0;
    if (this.trimValues) {
      t = pending.trim();
      if (t === '') return false;
      lead = pending.length - pending.trimStart().length;
    }
    if (t.includes('&')) t = this.decodeReferences(t, (k) => this.pendingOffset(lead + k));
    this.text = t;
    this.offset = this.pieces[0] as number;
    this.token = 'text';
    return true;
  }

  /**
   * Decodes the predefined entities and character references of `text`; `locate` turns an index in
   * `text` into an offset in the document for errors. Any other reference (an HTML entity, one a DTD would
   * declare) is an error, so nothing can be expanded.
   */
  private decodeReferences(text: string, locate: (index: number) => number): string {
    let out = '';
    let from = 0;
    let amp = text.indexOf('&');
    while (amp !== -1) {
      const semi = text.indexOf(';', amp + 1);
      if (semi === -1 || semi - amp > 12) {
        this.fail(`unterminated reference ${JSON.stringify(text.slice(amp, amp + 12))}.`, locate(amp));
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
        if (value === undefined) this.fail(`bad character reference &${body};.`, locate(amp));
      } else {
        value = predefinedEntity(body);
        if (value === undefined) this.fail(`undefined entity &${body};.`, locate(amp));
      }
      out += text.slice(from, amp) + value;
      from = semi + 1;
      amp = text.indexOf('&', from);
    }
    return from === 0 ? text : out + text.slice(from);
  }

  /**
   * The string for `src[start, end)` with hash `h`, from the shared name table: names repeat thousands
   * of times, and a shared string is hashed (and internalised as a property key) once instead of on every
   * use.
   */
  private intern(start: number, end: number, h: number): string {
    const len = end - start;
    // Stryker disable next-line all: a cache only: the same value either way (equivalent mutant)
    if (len > 64) return this.src.slice(start, end);
    // Stryker disable next-line all: a cache only: the same value either way (equivalent mutant)
    const key = (h ^ Math.imul(len, 0x9e3779b1)) | 0;
    const hit = NAMES.get(key);
    if (hit !== undefined && hit.length === len && sameChars(this.src, start, hit)) return hit;
    const str = this.src.slice(start, end);
    // Stryker disable next-line all: a cache only: the same value either way (equivalent mutant)
    if (NAMES.size < NAMES_MAX) NAMES.set(key, str);
    return str;
  }

  /** Reads the name starting at `at`: returns its end; its hash is left in `hash`. */
  private scanName(at: number, what: string): number {
    const src = this.src;
    const len = this.len;
    const c0 = src.charCodeAt(at);
    if (at >= len || !isNameStart(c0)) this.fail(`expected ${what} name.`, at);
    let h = c0;
    let j = at + 1;
    for (; j < len; j++) {
      const c = src.charCodeAt(j);
      if (!isNameChar(c)) break;
      // Stryker disable next-line all: the name table's hash; a wrong one only misses the table
      h = (Math.imul(h, 31) + c) | 0;
    }
    this.hash = h;
    return j;
  }

  private skipWs(at: number): number {
    let j = at;
    while (j < this.len && isWs(this.src.charCodeAt(j))) j++;
    return j;
  }

  private endTag(lt: number): XmlToken {
    const src = this.src;
    const open = this.depth > 0 ? (this.open[this.depth - 1] as string) : undefined;
    let j: number;
    if (
      open !== undefined &&
      sameChars(src, lt + 2, open) &&
      !isNameChar(src.charCodeAt(lt + 2 + open.length))
    ) {
      j = this.skipWs(lt + 2 + open.length); // the usual case: the name of the open element
    } else {
      const nameEnd = this.scanName(lt + 2, 'a closing tag');
      const name = src.slice(lt + 2, nameEnd);
      j = this.skipWs(nameEnd);
      if (src.charCodeAt(j) !== GT) this.fail(`closing tag </${name}> is not closed by '>'.`, lt);
      if (open === undefined) this.fail(`closing tag </${name}> without an opening tag.`, lt);
      this.fail(`closing tag </${name}> does not match <${open}>.`, lt);
    }
    if (src.charCodeAt(j) !== GT) this.fail(`closing tag </${open}> is not closed by '>'.`, lt);
    this.depth--;
    this.name = open;
    this.selfClosing = false;
    this.offset = lt;
    this.i = j + 1;
    this.token = 'end';
    return 'end';
  }

  /**
   * A processing instruction or the XML declaration, checked; returns where it ends. The target must be
   * a name followed by whitespace or `?>`; `xml` (any case) is reserved for the declaration, which may
   * only open the document and must be well-formed.
   */
  private processingInstruction(lt: number): number {
    const src = this.src;
    const targetEnd = this.scanName(lt + 2, 'a processing instruction target');
    const after = src.charCodeAt(targetEnd);
    if (!isWs(after) && !(after === QUESTION && src.charCodeAt(targetEnd + 1) === GT)) {
      this.fail('processing instruction target must be followed by whitespace or "?>".', targetEnd);
    }
    const end = src.indexOf('?>', targetEnd);
    if (end === -1) this.fail('processing instruction is not closed.', lt);
    if (targetEnd - lt - 2 === 3 && src.slice(lt + 2, targetEnd).toLowerCase() === 'xml') {
      const first = lt === 0 || (lt === 1 && src.charCodeAt(0) === 0xfeff);
      if (!first || this.sawDeclaration) {
        this.fail('the XML declaration is allowed only at the very start of the document.', lt);
      }
      if (!XML_DECLARATION.test(src.slice(lt, end + 2))) this.fail('malformed XML declaration.', lt);
      this.sawDeclaration = true;
    }
    return end + 2;
  }

  private startTag(lt: number): XmlToken {
    const src = this.src;
    const len = this.len;
    const nameEnd = this.scanName(lt + 1, 'an element');
    const name = this.intern(lt + 1, nameEnd, this.hash);
    if (this.depth >= this.maxDepth) {
      this.fail(`elements nest deeper than ${this.maxDepth} levels.`, lt);
    }
    const attrs = this.attributes;
    let n = 0;
    let j = nameEnd;
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
        if (src.charCodeAt(j + 1) !== GT) this.fail(`expected '>' after '/' in <${name}>.`, j);
        selfClosing = true;
        j += 2;
        break;
      }
      if (j >= len) this.fail(`tag <${name}> is not closed.`, lt);
      if (j === wsStart) this.fail(`expected whitespace before an attribute in <${name}>.`, j);
      const attrStart = j;
      j = this.scanName(j, 'an attribute');
      const attrName = this.intern(attrStart, j, this.hash);
      j = this.skipWs(j);
      if (src.charCodeAt(j) !== EQ) this.fail(`attribute ${attrName} of <${name}> has no value.`, attrStart);
      j = this.skipWs(j + 1);
      const q = src.charCodeAt(j);
      if (q !== DQUOTE && q !== SQUOTE) this.fail(`attribute ${attrName} of <${name}> is not quoted.`, j);
      // One pass to the closing quote, noting '<' (refused), references and the characters
      // attribute-value normalisation replaces; the hash lets short plain values be shared like names.
      let close = j + 1;
      let h = 0;
      let special = false;
      for (; close < len; close++) {
        const a = src.charCodeAt(close);
        if (a === q) break;
        if (a === 0x26 || a === 0x09 || a === 0x0a || a === 0x3c) special = true;
        // Stryker disable next-line all: the name table's hash; a wrong one only misses the table
        h = (Math.imul(h, 31) + a) | 0;
      }
      if (close >= len) this.fail(`attribute ${attrName} of <${name}> is not closed.`, j);
      if (special && src.lastIndexOf('<', close) > j) {
        this.fail(`attribute ${attrName} of <${name}> contains '<'.`, j);
      }
      let value: string;
      if (!special && !this.trimValues) {
        value = close - j - 1 <= 40 ? this.intern(j + 1, close, h) : src.slice(j + 1, close);
      } else {
        value = src.slice(j + 1, close);
        let valueAt = j + 1;
        if (this.normalizeAttributes) value = value.replace(ATTRIBUTE_SPACE, ' ');
        if (this.trimValues) {
          valueAt += value.length - value.trimStart().length;
          value = value.trim();
        }
        if (value.includes('&')) {
          const at = valueAt;
          value = this.decodeReferences(value, (k) => at + k);
        }
      }
      for (let k = 0; k < n; k += 2) {
        if (attrs[k] === attrName) this.fail(`attribute ${attrName} repeats in <${name}>.`, attrStart);
      }
      attrs[n++] = attrName;
      attrs[n++] = value;
      j = close + 1;
    }
    this.attributeCount = n >> 1;
    this.open[this.depth++] = name;
    this.sawRoot = true;
    this.name = name;
    this.selfClosing = selfClosing;
    this.endPending = selfClosing;
    this.offset = lt;
    this.i = j;
    this.token = 'start';
    return 'start';
  }
}
