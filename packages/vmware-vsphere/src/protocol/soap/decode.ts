/**
 * A fast, hardened decoder for vim25 SOAP responses: a hand-written tokenizer over the response text that
 * builds typed JS values straight from the schema table (no generic DOM in between).
 *
 * - `xsi:type` decides the type (any prefix bound to the XMLSchema-instance namespace counts: vCenter
 *   writes `xsi:`, vcsim `XMLSchema-instance:`); without it the declared type applies.
 * - Values are never guessed from their text: `xsd:int` → number, `xsd:long` → number (bigint beyond
 *   2^53), `xsd:boolean` → boolean, `xsd:dateTime` → Date, enums and strings stay strings, even `"123"`.
 * - Data objects become `{ _type, ...fields }`; fields the table declares as arrays are always arrays;
 *   unknown types and fields are kept as raw values (see {@link decodeSoapResponse}).
 * - Hardened: a size limit, no DOCTYPE or other markup declarations, only the five predefined entities and
 *   character references, bounded depth, strict well-formedness of everything it reads. Any malformed,
 *   truncated or unexpected input fails with an `HvkitError` of code `PROTOCOL`, never anything else.
 */

import { HvkitError, hvkitError, isXmlCodePoint } from '@hvkit/core';
import {
  type DataObject,
  methodReturnType,
  type ValueKind,
  type VimTypeInfo,
  vimArrayItem,
  vimType,
  vimValueKind,
} from './schema';

/** SOAP 1.1 envelope namespace. */
export const SOAP_ENV_NS = 'http://schemas.xmlsoap.org/soap/envelope/';
/** XML Schema instance namespace (`xsi:type`). */
export const XSI_NS = 'http://www.w3.org/2001/XMLSchema-instance';
/** XML Schema namespace (`xsd:int`). */
export const XSD_NS = 'http://www.w3.org/2001/XMLSchema';

/**
 * Default largest SOAP response accepted: 64 MiB (a real vCenter pages property results, ~100 objects a
 * page; vcsim does not, and 4096 VMs × 12 properties are 31.5 MB). Decoding holds the text and the decoded
 * values at once: measured at up to about 4.5× the response size for bodies of many small elements
 * (a 63 MiB response: +282 MiB RSS), so this bound also bounds the client's memory.
 */
export const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024;
/** Default deepest element nesting: 64. */
export const DEFAULT_MAX_DEPTH = 64;

/** Options of {@link decodeSoapResponse}. */
export interface DecodeOptions {
  /** Largest document in UTF-16 code units (≈ bytes for vim25 text); larger input is `PROTOCOL`. */
  maxBytes?: number;
  /** Deepest element nesting accepted (default {@link DEFAULT_MAX_DEPTH}). */
  maxDepth?: number;
  /**
   * Declared type of `returnval` (`ServiceContent`, `ManagedObjectReference`, `ObjectContent[]`, `void`);
   * default from the method (see `methodReturnType`), else decoded by `xsi:type` or as raw values.
   */
  returns?: string;
  /**
   * Property paths to materialise: `DynamicProperty` values whose `name` is not listed are skipped
   * without building them (and left out of `propSet`). Default: all.
   */
  properties?: ReadonlySet<string>;
  /** Accept any response element, not only `<method>Response` (for parsing a fault of an unknown call). */
  anyResponse?: boolean;
  /** Named in errors (default `vmware-vsphere`). */
  adapter?: string;
  /** Named in errors (default `soap.<method>`). */
  operation?: string;
}

/** A SOAP fault as sent by the server. */
export interface SoapFault {
  /** `ServerFaultCode`, `ClientFaultCode`, ... (prefix removed). */
  faultcode: string;
  /** The server's message; may be empty. */
  faultstring: string;
  /** The vim fault type (`xsi:type` of the detail element), when the fault has a detail. */
  faultType: string | undefined;
  /** The decoded detail (`{ _type: 'ManagedObjectNotFound', obj: {...} }`), when present. */
  detail: DataObject | undefined;
}

/** What a SOAP response held: the method's return value, or a fault. */
export type SoapResponse =
  | { readonly fault: undefined; readonly returnval: unknown }
  | { readonly fault: SoapFault; readonly returnval: undefined };

/** Marks a `DynamicProperty` skipped through {@link DecodeOptions.properties}. */
const SKIP: unique symbol = Symbol('skip');

// Internal kinds: the schema's plus `array` (ArrayOfX) and `loose` (a type the table does not know).
type Kind = ValueKind | 'array' | 'loose';

const KIND_CACHE = new Map<string, Kind>();
function kindOf(type: string): Kind {
  let kind = KIND_CACHE.get(type);
  // Stryker disable next-line all: a cache only: the same value either way (equivalent mutant)
  if (kind !== undefined) return kind;
  const base = vimValueKind(type);
  if (base !== 'data') kind = base;
  else if (vimArrayItem(type) !== undefined) kind = 'array';
  else if (vimType(type) !== undefined) kind = 'data';
  else kind = 'loose';
  // Stryker disable next-line all: a cache only: the same value either way (equivalent mutant)
  if (KIND_CACHE.size < 4096) KIND_CACHE.set(type, kind);
  return kind;
}

const INT_RE = /^[+-]?\d+$/;
const FLOAT_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const DATE_RE = /^-?\d{4,}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?(Z|[+-]\d\d:\d\d)?$/;
const BASE64_RE = /^[A-Za-z0-9+/\s]*={0,2}\s*$/;
// Characters XML 1.0 forbids (lone surrogates are checked with isWellFormed).
// biome-ignore lint/suspicious/noControlCharactersInRegex: these are exactly the characters to reject.
const INVALID_CHAR_RE = /[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]/;
const XML_WS = /^[ \t\r\n]*$/;

// Character classes for names: 1 = name start character, 2 = name character only (ASCII; all non-ASCII
// characters count as both, which is lenient but never lets markup through).
const NAME_CLASS = new Uint8Array(128);
for (let c = 0; c < 128; c++) {
  if ((c >= 97 && c <= 122) || (c >= 65 && c <= 90) || c === 95 || c === 58) NAME_CLASS[c] = 1;
  else if ((c >= 48 && c <= 57) || c === 45 || c === 46) NAME_CLASS[c] = 2;
}
function isNameStart(c: number): boolean {
  return c < 128 ? NAME_CLASS[c] === 1 : !Number.isNaN(c);
}
function isNameChar(c: number): boolean {
  return c < 128 ? NAME_CLASS[c] !== 0 : !Number.isNaN(c);
}
function isWs(c: number): boolean {
  return c === 32 || c === 10 || c === 9 || c === 13;
}
function localName(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

/** True when `s` holds `word` at `at` (a plain loop: faster than startsWith for short words here). */
function sameChars(s: string, at: number, word: string): boolean {
  const n = word.length;
  if (at + n > s.length) return false;
  for (let k = 0; k < n; k++) if (s.charCodeAt(at + k) !== word.charCodeAt(k)) return false;
  return true;
}

/**
 * Sets a field without ever touching the prototype (`__proto__` from hostile input stays data).
 * @internal Shared with the property collector; not re-exported by the package.
 */
export function setField(obj: Record<string, unknown>, key: string, value: unknown): void {
  if (key === '__proto__') {
    Object.defineProperty(obj, key, { value, enumerable: true, writable: true, configurable: true });
  } else {
    obj[key] = value;
  }
}

class Reader {
  readonly s: string;
  readonly end: number;
  i = 0;
  depth = 0;
  readonly maxDepth: number;
  readonly properties: ReadonlySet<string> | undefined;
  readonly anyResponse: boolean;
  readonly adapter: string;
  readonly operation: string | undefined;
  // Namespace bindings in scope: parallel stacks, `nsLen` entries valid.
  private nsPrefixes: string[] = [];
  private nsUris: string[] = [];
  // `<prefix>:type` for each binding, from the intern table, so an attribute name matches by identity.
  private nsTypeAttrs: string[] = [];
  nsLen = 0;
  // This document's intern table: hash → string (see intern()).
  private readonly names = new Map<number, string>();
  // The start tag just read.
  tagName = '';
  selfClosing = false;
  xsiType: string | undefined = undefined;
  moType: string | undefined = undefined;

  constructor(text: string, options: DecodeOptions, operation: string | undefined) {
    this.s = text;
    this.end = text.length;
    this.maxDepth = options.maxDepth ?? DEFAULT_MAX_DEPTH;
    this.properties = options.properties;
    this.anyResponse = options.anyResponse === true;
    this.adapter = options.adapter ?? 'vmware-vsphere';
    this.operation = options.operation ?? operation;
  }

  fail(message: string, at: number = this.i): never {
    throw hvkitError('PROTOCOL', `Invalid SOAP response: ${message} (at offset ${at}).`, {
      adapter: this.adapter,
      operation: this.operation,
      retryable: false,
      details: { offset: at },
    });
  }

  lookupNs(prefix: string): string | undefined {
    for (let k = this.nsLen - 1; k >= 0; k--) if (this.nsPrefixes[k] === prefix) return this.nsUris[k];
    if (prefix === 'xml') return 'http://www.w3.org/XML/1998/namespace';
    return undefined;
  }

  private pushNs(prefix: string, uri: string): void {
    this.nsPrefixes[this.nsLen] = prefix;
    // Canonical constants for the namespaces the decoder compares against.
    this.nsUris[this.nsLen] =
      uri === XSI_NS ? XSI_NS : uri === XSD_NS ? XSD_NS : uri === SOAP_ENV_NS ? SOAP_ENV_NS : uri;
    this.nsTypeAttrs[this.nsLen] = this.internString(`${prefix}:type`);
    this.nsLen++;
  }

  /** The namespace of an element name's prefix (`soapenv:Body` → the SOAP namespace). */
  elementNs(name: string): string | undefined {
    const colon = name.indexOf(':');
    return colon < 0 ? undefined : this.lookupNs(name.slice(0, colon));
  }

  skipWs(): void {
    const s = this.s;
    let i = this.i;
    while (i < this.end && isWs(s.charCodeAt(i))) i++;
    this.i = i;
  }

  /** Decodes entity and character references in `t` (which came from offset `at`). */
  decodeRefs(t: string, at: number): string {
    let out = '';
    let last = 0;
    let amp = t.indexOf('&');
    while (amp !== -1) {
      const semi = t.indexOf(';', amp + 1);
      if (semi === -1 || semi - amp > 12) this.fail('unterminated entity reference', at + amp);
      const ref = t.slice(amp + 1, semi);
      let ch: string;
      switch (ref) {
        case 'lt':
          ch = '<';
          break;
        case 'gt':
          ch = '>';
          break;
        case 'amp':
          ch = '&';
          break;
        case 'quot':
          ch = '"';
          break;
        case 'apos':
          ch = "'";
          break;
        default: {
          let code = Number.NaN;
          if (/^#[0-9]{1,7}$/.test(ref)) code = Number.parseInt(ref.slice(1), 10);
          else if (/^#x[0-9a-fA-F]{1,6}$/.test(ref)) code = Number.parseInt(ref.slice(2), 16);
          else this.fail(`undefined entity &${ref.slice(0, 10)};`, at + amp);
          if (!isXmlCodePoint(code)) {
            this.fail('character reference to a character XML forbids', at + amp);
          }
          ch = String.fromCodePoint(code);
        }
      }
      out += t.slice(last, amp) + ch;
      last = semi + 1;
      amp = t.indexOf('&', last);
    }
    return out + t.slice(last);
  }

  /** Skips `<!--...-->` at `i`. */
  skipComment(): void {
    const close = this.s.indexOf('-->', this.i + 4);
    if (close === -1) this.fail('unterminated comment');
    this.i = close + 3;
  }

  /** Skips `<?...?>` at `i`. */
  skipPi(): void {
    const close = this.s.indexOf('?>', this.i + 2);
    if (close === -1) this.fail('unterminated processing instruction');
    this.i = close + 2;
  }

  /** Reads `<![CDATA[...]]>` at `i`, returns its text. */
  readCdata(): string {
    const start = this.i + 9;
    const close = this.s.indexOf(']]>', start);
    if (close === -1) this.fail('unterminated CDATA section');
    this.i = close + 3;
    return this.s.slice(start, close);
  }

  /**
   * Handles `<!` markup inside content at `i`: skips a comment (returns undefined) or returns a CDATA
   * section's text; anything else (DOCTYPE, ENTITY, ...) fails.
   */
  bangMarkup(): string | undefined {
    const s = this.s;
    if (s.startsWith('<!--', this.i)) {
      this.skipComment();
      return undefined;
    }
    if (s.startsWith('<![CDATA[', this.i)) return this.readCdata();
    return this.fail('markup declarations (DOCTYPE, ENTITY, ...) are not allowed');
  }

  /**
   * The string for `s[start, end)` with hash `h`, from this document's intern table: names and short
   * attribute values repeat thousands of times, and a shared string is hashed (and internalised as a
   * property key) once instead of on every use.
   */
  private intern(start: number, end: number, h: number): string {
    const len = end - start;
    // Stryker disable next-line all: a cache only: the same value either way (equivalent mutant)
    if (len > 64) return this.s.slice(start, end);
    // Stryker disable next-line all: a cache only: the same value either way (equivalent mutant)
    const key = (h ^ Math.imul(len, 0x9e3779b1)) | 0;
    const hit = this.names.get(key);
    if (hit !== undefined && hit.length === len && sameChars(this.s, start, hit)) return hit;
    const str = this.s.slice(start, end);
    // Stryker disable next-line all: a cache only: the same value either way (equivalent mutant)
    if (this.names.size < 8192) this.names.set(key, str);
    return str;
  }

  // Stryker disable all: a cache only: the same value either way (equivalent mutant); its result is compared by value
  /** `str` from the intern table (see {@link intern}), adding it when absent. */
  private internString(str: string): string {
    let h = 0;
    for (let k = 0; k < str.length; k++) h = (Math.imul(h, 31) + str.charCodeAt(k)) | 0;
    if (str.length > 64) return str;
    const key = (h ^ Math.imul(str.length, 0x9e3779b1)) | 0;
    const hit = this.names.get(key);
    if (hit === str) return hit;
    if (hit === undefined && this.names.size < 8192) this.names.set(key, str);
    return str;
  }
  // Stryker restore all

  /** Reads a start tag at `i` (`<` then a name start character). Pushes its namespace declarations. */
  readStartTag(): void {
    const s = this.s;
    const end = this.end;
    let i = this.i + 1;
    const nameStart = i;
    if (i >= end || !isNameStart(s.charCodeAt(i))) this.fail('bad element name', i);
    let h = 0;
    for (; i < end; i++) {
      const c = s.charCodeAt(i);
      if (!isNameChar(c)) break;
      // Stryker disable next-line all: the intern table's hash; a wrong one only misses the table
      h = (Math.imul(h, 31) + c) | 0;
    }
    this.tagName = this.intern(nameStart, i, h);
    this.xsiType = undefined;
    this.moType = undefined;
    let typeAttr: string | undefined;
    let typeAttrValue: string | undefined;
    let typeAttrs: string[] | undefined;
    let sawWs = false;
    for (;;) {
      if (i >= end) this.fail('truncated start tag', i);
      const c = s.charCodeAt(i);
      if (isWs(c)) {
        i++;
        sawWs = true;
        continue;
      }
      if (c === 62 /* > */) {
        i++;
        this.selfClosing = false;
        break;
      }
      if (c === 47 /* / */) {
        if (s.charCodeAt(i + 1) !== 62) this.fail('bad start tag', i);
        i += 2;
        this.selfClosing = true;
        break;
      }
      if (!sawWs || !isNameStart(c)) this.fail('bad attribute', i);
      const attrStart = i;
      h = 0;
      for (; i < end; i++) {
        const a = s.charCodeAt(i);
        if (!isNameChar(a)) break;
        // Stryker disable next-line all: the intern table's hash; a wrong one only misses the table
        h = (Math.imul(h, 31) + a) | 0;
      }
      const attr = this.intern(attrStart, i, h);
      while (i < end && isWs(s.charCodeAt(i))) i++;
      if (s.charCodeAt(i) !== 61 /* = */) this.fail('attribute without value', i);
      i++;
      while (i < end && isWs(s.charCodeAt(i))) i++;
      const quote = s.charCodeAt(i);
      if (quote !== 34 && quote !== 39) this.fail('unquoted attribute value', i);
      const valueStart = i + 1;
      h = 0;
      let special = false;
      for (i = valueStart; i < end; i++) {
        const a = s.charCodeAt(i);
        if (a === quote) break;
        if (a === 60 /* < */) this.fail('"<" in attribute value', i);
        if (a === 38 /* & */ || a === 9 || a === 10 || a === 13) special = true;
        // Stryker disable next-line all: the intern table's hash; a wrong one only misses the table
        h = (Math.imul(h, 31) + a) | 0;
      }
      if (i >= end) this.fail('unterminated attribute value', valueStart);
      let value: string;
      if (special) {
        value = this.decodeRefs(s.slice(valueStart, i).replace(/[\t\n\r]/g, ' '), valueStart);
        // Stryker disable next-line all: interning or not gives the same string (equivalent mutant)
      } else if (i - valueStart > 40) {
        value = s.slice(valueStart, i); // namespace URIs and long ids: not worth interning
      } else {
        value = this.intern(valueStart, i, h);
      }
      i++;
      sawWs = false;
      if (attr === 'type') {
        if (this.moType !== undefined) this.fail('duplicate attribute type', attrStart);
        this.moType = value;
      } else if (attr.startsWith('xmlns')) {
        if (attr.length === 5) continue; // default namespace: vim25 names are matched by local name
        if (attr.charCodeAt(5) !== 58 || attr.length === 6) this.fail('bad namespace declaration', attrStart);
        if (value === '') this.fail('empty namespace binding', attrStart);
        this.pushNs(attr.slice(6), value);
      } else if (attr.endsWith(':type')) {
        if (typeAttr === undefined) {
          typeAttr = attr;
          typeAttrValue = value;
        } else {
          typeAttrs ??= [];
          typeAttrs.push(attr, value);
        }
      }
    }
    this.i = i;
    if (typeAttr !== undefined) {
      this.resolveTypeAttr(typeAttr, typeAttrValue as string, nameStart);
      if (typeAttrs) {
        for (let k = 0; k < typeAttrs.length; k += 2) {
          this.resolveTypeAttr(typeAttrs[k] as string, typeAttrs[k + 1] as string, nameStart);
        }
      }
    }
  }

  /** The namespace bound to the prefix of `qname` (`xsi:type` → the prefix `xsi`), without slicing. */
  private prefixNs(qname: string, prefixLength: number): string | undefined {
    for (let k = this.nsLen - 1; k >= 0; k--) {
      const p = this.nsPrefixes[k] as string;
      if (p.length === prefixLength && sameChars(qname, 0, p)) return this.nsUris[k];
    }
    if (prefixLength === 3 && qname.startsWith('xml')) return 'http://www.w3.org/XML/1998/namespace';
    return undefined;
  }

  private resolveTypeAttr(attr: string, value: string, at: number): void {
    let uri: string | undefined;
    for (let k = this.nsLen - 1; k >= 0; k--) {
      if (this.nsTypeAttrs[k] === attr) {
        uri = this.nsUris[k];
        break;
      }
    }
    if (uri === undefined) this.fail(`unbound namespace prefix ${attr.slice(0, 40)}`, at);
    if (uri !== XSI_NS) return;
    if (this.xsiType !== undefined) this.fail('duplicate xsi:type', at);
    let v = value;
    if (v === '' || !isNameStart(v.charCodeAt(0)) || !isNameChar(v.charCodeAt(v.length - 1))) {
      v = v.trim();
      if (v === '') this.fail('bad xsi:type', at);
    }
    const colon = v.indexOf(':');
    if (colon === -1) {
      this.xsiType = v;
      return;
    }
    if (colon === v.length - 1 || v.indexOf(':', colon + 1) !== -1 || /\s/.test(v))
      this.fail('bad xsi:type', at);
    const typeUri = this.prefixNs(v, colon);
    if (typeUri === XSD_NS || (typeUri === undefined && colon === 3 && v.startsWith('xsd'))) {
      this.xsiType = colon === 3 && v.startsWith('xsd') ? v : `xsd:${v.slice(colon + 1)}`;
    } else if (typeUri === undefined) {
      this.fail(`unbound namespace prefix in xsi:type ${v.slice(0, 40)}`, at);
    } else {
      this.xsiType = v.slice(colon + 1);
    }
  }

  /** Reads `</name>` at `i`. */
  readEndTag(name: string): void {
    const s = this.s;
    const at = this.i;
    if (!sameChars(s, at + 2, name)) this.fail('mismatched end tag', at);
    let i = at + 2 + name.length;
    while (i < this.end && isWs(s.charCodeAt(i))) i++;
    if (s.charCodeAt(i) !== 62 || isNameChar(s.charCodeAt(at + 2 + name.length)))
      this.fail('mismatched end tag', at);
    this.i = i + 1;
  }

  /**
   * In element-only content: skips whitespace, comments and PIs. True when a child start tag is at `i`,
   * false at an end tag. Text or the end of input fail.
   */
  nextChild(): boolean {
    const s = this.s;
    for (;;) {
      this.skipWs();
      const i = this.i;
      if (i >= this.end) this.fail('truncated document');
      if (s.charCodeAt(i) !== 60 /* < */) this.fail('text where elements were expected');
      const c1 = s.charCodeAt(i + 1);
      if (c1 === 47 /* / */) return false;
      if (c1 === 33 /* ! */) {
        const text = this.bangMarkup();
        if (text !== undefined && !XML_WS.test(text)) this.fail('text where elements were expected');
      } else if (c1 === 63 /* ? */) {
        this.skipPi();
      } else {
        return true;
      }
    }
  }

  /** Reads text-only content up to and including `</name>` (after a start tag that was not `/>`). */
  readText(name: string): string {
    const s = this.s;
    let out = '';
    for (;;) {
      const lt = s.indexOf('<', this.i);
      if (lt === -1) this.fail('truncated document', this.end);
      if (lt > this.i) {
        const chunk = s.slice(this.i, lt);
        out += chunk.indexOf('&') === -1 ? chunk : this.decodeRefs(chunk, this.i);
      }
      this.i = lt;
      const c1 = s.charCodeAt(lt + 1);
      if (c1 === 47) {
        this.readEndTag(name);
        return out;
      }
      if (c1 === 33) {
        const text = this.bangMarkup();
        if (text !== undefined) out += text;
      } else if (c1 === 63) {
        this.skipPi();
      } else {
        this.fail('element where text was expected');
      }
    }
  }

  /** Skips the rest of an element whose start tag (not `/>`) was just read, checking its nesting. */
  skipElement(name: string): void {
    const s = this.s;
    const names = [name];
    const mark = this.nsLen;
    for (;;) {
      const lt = s.indexOf('<', this.i);
      if (lt === -1) this.fail('truncated document', this.end);
      this.i = lt;
      const c1 = s.charCodeAt(lt + 1);
      if (c1 === 47) {
        this.readEndTag(names.pop() as string);
        if (names.length === 0) {
          this.nsLen = mark;
          return;
        }
      } else if (c1 === 33) {
        this.bangMarkup();
      } else if (c1 === 63) {
        this.skipPi();
      } else {
        this.readStartTag();
        if (!this.selfClosing) {
          if (this.depth + names.length > this.maxDepth) this.fail('elements nested too deeply');
          names.push(this.tagName);
        }
      }
    }
  }

  // ---- typed decoding ----

  /** Decodes the element whose start tag was just read, as `declared` unless its xsi:type says otherwise. */
  value(declared: string, declaredKind: Kind): unknown {
    let type = declared;
    let kind = declaredKind;
    const xsi = this.xsiType;
    if (xsi !== undefined && xsi !== declared) {
      type = xsi;
      kind = kindOf(xsi);
      // An unknown subtype of a known data type: decode the known (inherited) fields typed.
      if (kind === 'loose' && declaredKind === 'data') return this.object(vimType(declared), xsi);
    }
    const name = this.tagName;
    switch (kind) {
      case 'string':
      case 'enum':
        return this.selfClosing ? '' : this.readText(name);
      case 'moref': {
        const moType = this.moType;
        const text = this.selfClosing ? '' : this.readText(name);
        if (moType === undefined || moType === '' || text === '') this.fail('bad managed object reference');
        return { type: moType, value: text };
      }
      case 'int':
      case 'long':
        return this.integer(
          this.selfClosing ? '' : this.readText(name),
          kind === 'long' || type === 'xsd:long',
        );
      case 'boolean': {
        const text = (this.selfClosing ? '' : this.readText(name)).trim();
        if (text === 'true' || text === '1') return true;
        if (text === 'false' || text === '0') return false;
        return this.fail('bad boolean');
      }
      case 'float':
        return this.float(this.selfClosing ? '' : this.readText(name));
      case 'dateTime':
        return this.date(this.selfClosing ? '' : this.readText(name));
      case 'base64': {
        const text = this.selfClosing ? '' : this.readText(name);
        if (!BASE64_RE.test(text)) this.fail('bad base64 value');
        return Buffer.from(text, 'base64');
      }
      case 'array':
        return this.array(type);
      case 'data': {
        const info = vimType(type);
        return info === undefined ? this.raw(type) : this.object(info, type);
      }
      case 'any':
        return this.raw(undefined);
      default:
        return this.raw(type);
    }
  }

  integer(raw: string, long: boolean): number | bigint {
    const text = raw.trim();
    if (!INT_RE.test(text)) this.fail('bad integer');
    if (text.length <= 16) {
      const n = Number(text);
      if (Number.isSafeInteger(n)) return n;
    }
    if (text.length > 40) this.fail('integer out of range');
    const big = BigInt(text);
    if (big >= BigInt(Number.MIN_SAFE_INTEGER) && big <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(big);
    if (!long) this.fail('integer out of range');
    return big;
  }

  float(raw: string): number {
    const text = raw.trim();
    if (text === 'INF') return Number.POSITIVE_INFINITY;
    if (text === '-INF') return Number.NEGATIVE_INFINITY;
    if (text === 'NaN') return Number.NaN;
    if (!FLOAT_RE.test(text)) this.fail('bad number');
    return Number(text);
  }

  date(raw: string): Date {
    const text = raw.trim();
    const m = DATE_RE.exec(text);
    if (!m) this.fail('bad dateTime');
    const date = new Date(m[1] === undefined ? `${text}Z` : text);
    if (Number.isNaN(date.getTime())) this.fail('bad dateTime');
    return date;
  }

  enter(): void {
    if (++this.depth > this.maxDepth) this.fail('elements nested too deeply');
  }

  /** A data object of `info` (or only raw fields when the table does not know it), `_type` = `type`. */
  object(info: VimTypeInfo | undefined, type: string): DataObject {
    const name = this.tagName;
    const obj: DataObject = { _type: type };
    if (this.selfClosing) return obj;
    if (info === undefined) return this.rawChildren(obj, name);
    if (type === 'DynamicProperty') return this.dynamicProperty(obj, name);
    this.enter();
    const fields = info.fields;
    let repeated: Set<string> | undefined;
    while (this.nextChild()) {
      const mark = this.nsLen;
      this.readStartTag();
      const key = localName(this.tagName);
      const field = fields.get(key);
      if (field !== undefined) {
        const v = this.value(field.type, field.kind);
        if (field.array) {
          if (v === SKIP) {
            this.nsLen = mark;
            continue;
          }
          const list = obj[key] as unknown[] | undefined;
          if (list === undefined) obj[key] = [v];
          else list.push(v);
        } else if (obj[key] !== undefined) {
          this.fail(`field ${key} repeated`);
        } else {
          obj[key] = v;
        }
      } else {
        repeated = this.addRaw(obj, key, this.unknownValue(), repeated);
      }
      this.nsLen = mark;
    }
    this.readEndTag(name);
    this.depth--;
    return obj;
  }

  /** `DynamicProperty`: `val` is skipped when its name was not asked for. */
  private dynamicProperty(obj: DataObject, name: string): DataObject {
    this.enter();
    let skipped = false;
    while (this.nextChild()) {
      const mark = this.nsLen;
      this.readStartTag();
      const key = localName(this.tagName);
      if (key === 'name' && obj.name === undefined) {
        obj.name = this.value('xsd:string', 'string');
      } else if (key === 'val' && obj.val === undefined && !skipped) {
        const wanted = this.properties;
        if (wanted !== undefined && (typeof obj.name !== 'string' || !wanted.has(obj.name))) {
          if (!this.selfClosing) this.skipElement(this.tagName);
          skipped = true;
        } else {
          obj.val = this.value('xsd:anyType', 'any');
        }
      } else {
        this.fail(`unexpected ${key.slice(0, 40)} in DynamicProperty`);
      }
      this.nsLen = mark;
    }
    this.readEndTag(name);
    this.depth--;
    if (typeof obj.name !== 'string') this.fail('DynamicProperty without name');
    if (skipped) return SKIP as unknown as DataObject;
    return obj;
  }

  /** `ArrayOfX` (element just read): each child is an X. */
  array(type: string): unknown[] {
    const out: unknown[] = [];
    if (this.selfClosing) return out;
    const name = this.tagName;
    const item = vimArrayItem(type) as readonly [string, string];
    const itemType = item[1];
    const itemKind = kindOf(itemType);
    this.enter();
    while (this.nextChild()) {
      const mark = this.nsLen;
      this.readStartTag();
      out.push(this.value(itemType, itemKind));
      this.nsLen = mark;
    }
    this.readEndTag(name);
    this.depth--;
    return out;
  }

  /** A field the type does not declare: typed by its xsi:type when it has one, else raw. */
  unknownValue(): unknown {
    const xsi = this.xsiType;
    if (xsi !== undefined) return this.value(xsi, kindOf(xsi));
    return this.raw(undefined);
  }

  /**
   * An element without a usable type: text-only content is a string (a managed object reference when it
   * has a `type` attribute), element content an object of raw fields (`_type` = `type` when given).
   */
  raw(type: string | undefined): unknown {
    const name = this.tagName;
    const moType = this.moType;
    if (this.selfClosing) return type !== undefined ? { _type: type } : '';
    // Peek: does element content follow?
    const s = this.s;
    let j = this.i;
    while (j < this.end && isWs(s.charCodeAt(j))) j++;
    const startsChild =
      j < this.end && s.charCodeAt(j) === 60 && isNameStart(s.charCodeAt(j + 1)) && j + 1 < this.end;
    if (!startsChild) {
      const text = this.readText(name);
      if (moType !== undefined && type === undefined) {
        if (moType === '' || text === '') this.fail('bad managed object reference');
        return { type: moType, value: text };
      }
      if (type !== undefined && text === '') return { _type: type };
      return text;
    }
    const obj: Record<string, unknown> = type !== undefined ? { _type: type } : {};
    return this.rawChildren(obj, name);
  }

  private rawChildren<T extends Record<string, unknown>>(obj: T, name: string): T {
    this.enter();
    let repeated: Set<string> | undefined;
    while (this.nextChild()) {
      const mark = this.nsLen;
      this.readStartTag();
      const key = localName(this.tagName);
      repeated = this.addRaw(obj, key, this.unknownValue(), repeated);
      this.nsLen = mark;
    }
    this.readEndTag(name);
    this.depth--;
    return obj;
  }

  /** Adds a raw field; a repeated name turns into an array. */
  private addRaw(
    obj: Record<string, unknown>,
    key: string,
    value: unknown,
    repeated: Set<string> | undefined,
  ): Set<string> | undefined {
    if (key === '_type') this.fail('element named _type');
    if (!Object.hasOwn(obj, key)) {
      setField(obj, key, value);
      return repeated;
    }
    const set = repeated ?? new Set<string>();
    if (set.has(key)) {
      (obj[key] as unknown[]).push(value);
    } else {
      set.add(key);
      setField(obj, key, [obj[key], value]);
    }
    return set;
  }

  // ---- envelope ----

  /** Skips whitespace, comments and processing instructions (the XML declaration too). */
  skipMisc(): void {
    const s = this.s;
    for (;;) {
      this.skipWs();
      if (this.i >= this.end) return;
      if (s.startsWith('<?', this.i)) this.skipPi();
      else if (s.startsWith('<!--', this.i)) this.skipComment();
      else if (s.startsWith('<!', this.i))
        this.fail('markup declarations (DOCTYPE, ENTITY, ...) are not allowed');
      else return;
    }
  }

  envelope(method: string, returns: string | undefined): SoapResponse {
    if (this.s.charCodeAt(0) === 0xfeff) this.i = 1;
    this.skipMisc();
    if (this.i >= this.end) this.fail('empty document');
    if (this.s.charCodeAt(this.i) !== 60 || !isNameStart(this.s.charCodeAt(this.i + 1)))
      this.fail('document does not start with an element');
    this.readStartTag();
    const envName = this.tagName;
    if (localName(envName) !== 'Envelope' || this.elementNs(envName) !== SOAP_ENV_NS)
      this.fail('not a SOAP envelope');
    if (this.selfClosing) this.fail('empty SOAP envelope');
    this.enter();
    let result: SoapResponse | undefined;
    while (this.nextChild()) {
      const mark = this.nsLen;
      this.readStartTag();
      const name = this.tagName;
      const local = localName(name);
      if (this.elementNs(name) !== SOAP_ENV_NS) this.fail(`unexpected ${local.slice(0, 40)} in Envelope`);
      if (local === 'Header' && result === undefined) {
        if (!this.selfClosing) this.skipElement(name);
      } else if (local === 'Body' && result === undefined) {
        if (this.selfClosing) this.fail('empty SOAP body');
        result = this.body(name, method, returns);
      } else {
        this.fail(`unexpected ${local.slice(0, 40)} in Envelope`);
      }
      this.nsLen = mark;
    }
    this.readEndTag(envName);
    this.depth--;
    this.skipMisc();
    if (this.i !== this.end) this.fail('content after the document element');
    if (result === undefined) this.fail('SOAP envelope without Body');
    return result;
  }

  private body(bodyName: string, method: string, returns: string | undefined): SoapResponse {
    this.enter();
    if (!this.nextChild()) this.fail('empty SOAP body');
    const mark = this.nsLen;
    this.readStartTag();
    const name = this.tagName;
    const local = localName(name);
    let result: SoapResponse;
    if (local === 'Fault' && this.elementNs(name) === SOAP_ENV_NS) {
      result = { fault: this.fault(name), returnval: undefined };
    } else {
      if (!this.anyResponse && local !== `${method}Response`)
        this.fail(`expected ${method}Response, got ${local.slice(0, 60)}`);
      result = { fault: undefined, returnval: this.response(name, returns) };
    }
    this.nsLen = mark;
    if (this.nextChild()) this.fail('more than one element in the SOAP body');
    this.readEndTag(bodyName);
    this.depth--;
    return result;
  }

  private response(name: string, returns: string | undefined): unknown {
    let declared = returns;
    let many = false;
    if (declared?.endsWith('[]')) {
      declared = declared.slice(0, -2);
      many = true;
    }
    const values: unknown[] = [];
    if (!this.selfClosing) {
      this.enter();
      while (this.nextChild()) {
        const mark = this.nsLen;
        this.readStartTag();
        if (localName(this.tagName) === 'returnval') {
          values.push(
            declared === undefined || declared === 'void'
              ? this.unknownValue()
              : this.value(declared, kindOf(declared)),
          );
        } else if (!this.selfClosing) {
          this.skipElement(this.tagName);
        }
        this.nsLen = mark;
      }
      this.readEndTag(name);
      this.depth--;
    }
    if (declared === 'void') return undefined;
    if (many) return values;
    if (values.length <= 1) return values[0];
    if (returns !== undefined) this.fail('more than one returnval');
    return values;
  }

  private fault(name: string): SoapFault {
    if (this.selfClosing) this.fail('empty SOAP fault');
    this.enter();
    let faultcode: string | undefined;
    let faultstring: string | undefined;
    let detail: DataObject | undefined;
    while (this.nextChild()) {
      const mark = this.nsLen;
      this.readStartTag();
      const key = localName(this.tagName);
      if (key === 'faultcode' && faultcode === undefined) {
        faultcode = localName((this.selfClosing ? '' : this.readText(this.tagName)).trim());
      } else if (key === 'faultstring' && faultstring === undefined) {
        faultstring = this.selfClosing ? '' : this.readText(this.tagName);
      } else if (key === 'detail' && detail === undefined) {
        detail = this.faultDetail();
      } else if (!this.selfClosing) {
        this.skipElement(this.tagName);
      }
      this.nsLen = mark;
    }
    this.readEndTag(name);
    this.depth--;
    if (faultcode === undefined) this.fail('SOAP fault without faultcode');
    return {
      faultcode,
      faultstring: faultstring ?? '',
      faultType: detail?._type,
      detail,
    };
  }

  /** `<detail><XFault xsi:type="X">...</XFault></detail>`: the first child is the vim fault. */
  private faultDetail(): DataObject | undefined {
    if (this.selfClosing) return undefined;
    const name = this.tagName;
    this.enter();
    let detail: DataObject | undefined;
    while (this.nextChild()) {
      const mark = this.nsLen;
      this.readStartTag();
      if (detail === undefined) {
        const element = localName(this.tagName);
        const declared =
          element.endsWith('Fault') && element.length > 5 ? element.slice(0, -5) : element || 'MethodFault';
        const type = this.xsiType ?? declared;
        const kind = kindOf(type);
        let value: unknown;
        if (kind === 'data' || kind === 'loose') value = this.object(vimType(type), type);
        else value = this.value(type, kind);
        detail =
          typeof value === 'object' && value !== null && !Array.isArray(value) && '_type' in value
            ? (value as DataObject)
            : { _type: type };
      } else if (!this.selfClosing) {
        this.skipElement(this.tagName);
      }
      this.nsLen = mark;
    }
    this.readEndTag(name);
    this.depth--;
    return detail;
  }
}

function checkDocument(text: unknown, options: DecodeOptions, operation: string | undefined): string {
  if (typeof text !== 'string') throw new TypeError('decodeSoapResponse expects the response text.');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  if (typeof maxBytes !== 'number' || !(maxBytes > 0)) throw new TypeError('maxBytes must be positive.');
  const context = { adapter: options.adapter ?? 'vmware-vsphere', operation: options.operation ?? operation };
  if (text.length > maxBytes) {
    throw hvkitError('PROTOCOL', `Invalid SOAP response: larger than ${maxBytes} bytes.`, {
      ...context,
      retryable: false,
      details: { maxBytes },
    });
  }
  if (!(text as unknown as { isWellFormed(): boolean }).isWellFormed() || INVALID_CHAR_RE.test(text)) {
    throw hvkitError('PROTOCOL', 'Invalid SOAP response: contains characters XML forbids.', {
      ...context,
      retryable: false,
    });
  }
  return text;
}

/**
 * Decodes a vim25 SOAP response to `method`: the `returnval` (typed by `options.returns` or the method's
 * known return type, else by `xsi:type`, else raw), or the SOAP fault with its decoded vim fault.
 *
 * Raw values (no type information): text becomes a string, text with a `type` attribute a
 * {@link MoRef}, element content an object of raw fields (repeated names become arrays).
 *
 * @throws HvkitError `PROTOCOL` for anything that is not a well-formed SOAP response to `method`: a
 *   truncated or mutated body, a DOCTYPE, an undefined entity, too deep nesting, a body above
 *   `maxBytes`, a value that does not parse as its declared type.
 * @throws TypeError when `text` is not a string.
 */
export function decodeSoapResponse(text: string, method: string, options: DecodeOptions = {}): SoapResponse {
  const operation = `soap.${method}`;
  const source = checkDocument(text, options, operation);
  const reader = new Reader(source, options, operation);
  const returns = options.returns ?? methodReturnType(method);
  try {
    return reader.envelope(method, returns);
  } catch (error) {
    if (HvkitError.isInstance(error)) throw error;
    // Defence in depth: nothing but PROTOCOL may escape (e.g. a RangeError on pathological input).
    throw hvkitError('PROTOCOL', 'Invalid SOAP response: could not be decoded.', {
      adapter: reader.adapter,
      operation: reader.operation,
      cause: error,
      retryable: false,
    });
  }
}

/**
 * Decodes one standalone XML element as vim25 `type` (e.g. a `<val xsi:type="...">` cut out of a
 * response, or a recorded data object). Same rules and errors as {@link decodeSoapResponse}.
 */
export function decodeVimXml(text: string, type: string, options: DecodeOptions = {}): unknown {
  const source = checkDocument(text, options, undefined);
  const reader = new Reader(source, options, options.operation);
  try {
    reader.skipMisc();
    if (reader.i >= reader.end || source.charCodeAt(reader.i) !== 60) reader.fail('no element');
    reader.readStartTag();
    const value = reader.value(type, kindOf(type));
    reader.skipMisc();
    if (reader.i !== reader.end) reader.fail('content after the element');
    return value;
  } catch (error) {
    if (HvkitError.isInstance(error)) throw error;
    throw hvkitError('PROTOCOL', 'Invalid XML value: could not be decoded.', {
      adapter: reader.adapter,
      operation: reader.operation,
      cause: error,
      retryable: false,
    });
  }
}
