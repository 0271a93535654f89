/**
 * A fast, hardened decoder for vim25 SOAP responses: it pulls tokens from core's `XmlTokenizer` (hvkit's
 * one XML tokenizer) and builds typed JS values straight from the schema table (no generic DOM in between).
 *
 * - `xsi:type` decides the type (any prefix bound to the XMLSchema-instance namespace counts: vCenter
 *   writes `xsi:`, vcsim `XMLSchema-instance:`); without it the declared type applies.
 * - Values are never guessed from their text: `xsd:int` → number, `xsd:long` → number (bigint beyond
 *   2^53), `xsd:boolean` → boolean, `xsd:dateTime` → Date, enums and strings stay strings, even `"123"`.
 * - Data objects become `{ _type, ...fields }`; fields the table declares as arrays are always arrays;
 *   unknown types and fields are kept as raw values (see {@link decodeSoapResponse}).
 * - Hardened by the tokenizer: a size limit, no DOCTYPE or other markup declarations, only the five
 *   predefined entities and character references, XML 1.0 name rules, bounded depth, strict
 *   well-formedness of everything it reads. Any malformed, truncated or unexpected input fails with an
 *   `HvkitError` of code `PROTOCOL` naming the line and column, never anything else.
 */

import { HvkitError, hvkitError, isXmlSpace, XmlTokenizer } from '@hvkit/core';
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
/** Default deepest element nesting below the document element: 64. */
export const DEFAULT_MAX_DEPTH = 64;

/** Options of {@link decodeSoapResponse}. */
export interface DecodeOptions {
  /** Largest document in UTF-8 bytes; larger input is `PROTOCOL` (default {@link DEFAULT_MAX_RESPONSE_BYTES}). */
  maxBytes?: number;
  /**
   * Deepest element nesting accepted below the document element (default {@link DEFAULT_MAX_DEPTH}): with
   * 3, `<v><a><a><a>x</a></a></a></v>` is read and one more level is refused.
   */
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

function localName(name: string): string {
  const colon = name.indexOf(':');
  return colon < 0 ? name : name.slice(colon + 1);
}

/** Whether `v` could be a QName: not empty, no whitespace at either end. */
function trimmedName(v: string): boolean {
  return v !== '' && v.trim().length === v.length;
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
  /** The document's tokens. */
  readonly xml: XmlTokenizer;
  readonly properties: ReadonlySet<string> | undefined;
  readonly anyResponse: boolean;
  // Namespace bindings in scope: parallel stacks, `nsLen` entries valid.
  private nsPrefixes: string[] = [];
  private nsUris: string[] = [];
  // `<prefix>:type` for each binding.
  private nsTypeAttrs: string[] = [];
  nsLen = 0;
  /** `nsLen` before the start tag just read pushed its bindings (restored once its element is read). */
  mark = 0;
  /** A start tag {@link raw} read ahead: the next {@link nextChild} returns it. */
  private ahead = false;
  // The start tag just read.
  tagName = '';
  xsiType: string | undefined = undefined;
  moType: string | undefined = undefined;

  constructor(text: string, options: DecodeOptions, operation: string | undefined) {
    this.xml = new XmlTokenizer(text, {
      maxBytes: options.maxBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
      // The tokenizer counts the document element too.
      maxDepth: (options.maxDepth ?? DEFAULT_MAX_DEPTH) + 1,
      normalizeAttributeValues: true,
      label: 'Invalid SOAP response',
      adapter: options.adapter ?? 'vmware-vsphere',
      operation: options.operation ?? operation,
    });
    this.properties = options.properties;
    this.anyResponse = options.anyResponse === true;
  }

  /** Throws `PROTOCOL` for the document, at the token just read unless `at` says otherwise. */
  fail(message: string, at?: number): never {
    return this.xml.fail(message, at);
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
    this.nsTypeAttrs[this.nsLen] = `${prefix}:type`;
    this.nsLen++;
  }

  /** The namespace of an element name's prefix (`soapenv:Body` → the SOAP namespace). */
  elementNs(name: string): string | undefined {
    const colon = name.indexOf(':');
    return colon < 0 ? undefined : this.lookupNs(name.slice(0, colon));
  }

  /**
   * Takes in the start tag the tokenizer just read: its name, its namespace declarations (pushed), its
   * `type` attribute (a managed object reference's type) and its `xsi:type`.
   */
  startTag(): void {
    const xml = this.xml;
    this.mark = this.nsLen;
    this.tagName = xml.name;
    this.xsiType = undefined;
    this.moType = undefined;
    const n = xml.attributeCount * 2;
    if (n === 0) return;
    const attrs = xml.attributes;
    let typeAttr: string | undefined;
    let typeAttrValue: string | undefined;
    let typeAttrs: string[] | undefined;
    for (let k = 0; k < n; k += 2) {
      const attr = attrs[k] as string;
      const value = attrs[k + 1] as string;
      if (attr === 'type') {
        this.moType = value; // a repeated attribute is refused by the tokenizer
      } else if (attr.startsWith('xmlns')) {
        if (attr.length === 5) continue; // default namespace: vim25 names are matched by local name
        if (attr.charCodeAt(5) !== 58 || attr.length === 6) this.fail('bad namespace declaration');
        if (value === '') this.fail('empty namespace binding');
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
    if (typeAttr !== undefined) {
      this.resolveTypeAttr(typeAttr, typeAttrValue as string);
      if (typeAttrs) {
        for (let k = 0; k < typeAttrs.length; k += 2) {
          this.resolveTypeAttr(typeAttrs[k] as string, typeAttrs[k + 1] as string);
        }
      }
    }
  }

  /** The namespace bound to the prefix of `qname` (`xsi:type` → the prefix `xsi`). */
  private prefixNs(qname: string, prefixLength: number): string | undefined {
    for (let k = this.nsLen - 1; k >= 0; k--) {
      const p = this.nsPrefixes[k] as string;
      if (p.length === prefixLength && qname.startsWith(p)) return this.nsUris[k];
    }
    if (prefixLength === 3 && qname.startsWith('xml')) return 'http://www.w3.org/XML/1998/namespace';
    return undefined;
  }

  private resolveTypeAttr(attr: string, value: string): void {
    let uri: string | undefined;
    for (let k = this.nsLen - 1; k >= 0; k--) {
      if (this.nsTypeAttrs[k] === attr) {
        uri = this.nsUris[k];
        break;
      }
    }
    if (uri === undefined) this.fail(`unbound namespace prefix ${attr.slice(0, 40)}`);
    if (uri !== XSI_NS) return;
    if (this.xsiType !== undefined) this.fail('duplicate xsi:type');
    let v = value;
    if (!trimmedName(v)) {
      v = v.trim();
      if (v === '') this.fail('bad xsi:type');
    }
    const colon = v.indexOf(':');
    if (colon === -1) {
      this.xsiType = v;
      return;
    }
    if (colon === v.length - 1 || v.indexOf(':', colon + 1) !== -1 || /\s/.test(v)) this.fail('bad xsi:type');
    const typeUri = this.prefixNs(v, colon);
    if (typeUri === XSD_NS || (typeUri === undefined && colon === 3 && v.startsWith('xsd'))) {
      this.xsiType = colon === 3 && v.startsWith('xsd') ? v : `xsd:${v.slice(colon + 1)}`;
    } else if (typeUri === undefined) {
      this.fail(`unbound namespace prefix in xsi:type ${v.slice(0, 40)}`);
    } else {
      this.xsiType = v.slice(colon + 1);
    }
  }

  /**
   * In element-only content: true when the next child's start tag was read (and taken in, `mark` set),
   * false when the element's end tag was. Text other than whitespace fails.
   */
  nextChild(): boolean {
    if (this.ahead) {
      this.ahead = false;
      return true;
    }
    const xml = this.xml;
    for (;;) {
      const token = xml.next();
      if (token === 'start') {
        this.startTag();
        return true;
      }
      if (token === 'end') return false;
      if (token === 'eof') this.fail('truncated document'); // the tokenizer refuses that first
      if (!isXmlSpace(xml.text)) this.fail('text where elements were expected');
    }
  }

  /** Reads text-only content up to and including the end tag of the element just started. */
  readText(): string {
    const xml = this.xml;
    let out = '';
    for (;;) {
      const token = xml.next();
      if (token === 'text') out = out === '' ? xml.text : out + xml.text;
      else if (token === 'end') return out;
      else this.fail('element where text was expected');
    }
  }

  /** Skips the rest of the element whose start tag was just read (its content still checked). */
  skipElement(): void {
    const xml = this.xml;
    const mark = this.mark;
    let open = 1;
    for (;;) {
      const token = xml.next();
      if (token === 'start') {
        this.startTag();
        open++;
      } else if (token === 'end') {
        if (--open === 0) break;
      } else if (token === 'eof') {
        this.fail('truncated document'); // the tokenizer refuses that first
      }
    }
    this.nsLen = mark;
  }

  /** When the start tag just read was `<x/>`: reads its end and returns true. */
  private emptyTag(): boolean {
    if (!this.xml.selfClosing) return false;
    this.xml.next();
    return true;
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
    switch (kind) {
      case 'string':
      case 'enum':
        return this.readText();
      case 'moref': {
        const moType = this.moType;
        const text = this.readText();
        if (moType === undefined || moType === '' || text === '') this.fail('bad managed object reference');
        return { type: moType, value: text };
      }
      case 'int':
      case 'long':
        return this.integer(this.readText(), kind === 'long' || type === 'xsd:long');
      case 'boolean': {
        const text = this.readText().trim();
        if (text === 'true' || text === '1') return true;
        if (text === 'false' || text === '0') return false;
        return this.fail('bad boolean');
      }
      case 'float':
        return this.float(this.readText());
      case 'dateTime':
        return this.date(this.readText());
      case 'base64': {
        const text = this.readText();
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

  /** A data object of `info` (or only raw fields when the table does not know it), `_type` = `type`. */
  object(info: VimTypeInfo | undefined, type: string): DataObject {
    const obj: DataObject = { _type: type };
    if (this.emptyTag()) return obj;
    if (info === undefined) return this.rawChildren(obj);
    if (type === 'DynamicProperty') return this.dynamicProperty(obj);
    const fields = info.fields;
    let repeated: Set<string> | undefined;
    while (this.nextChild()) {
      const mark = this.mark;
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
    return obj;
  }

  /** `DynamicProperty`: `val` is skipped when its name was not asked for. */
  private dynamicProperty(obj: DataObject): DataObject {
    let skipped = false;
    while (this.nextChild()) {
      const mark = this.mark;
      const key = localName(this.tagName);
      if (key === 'name' && obj.name === undefined) {
        obj.name = this.value('xsd:string', 'string');
      } else if (key === 'val' && obj.val === undefined && !skipped) {
        const wanted = this.properties;
        if (wanted !== undefined && (typeof obj.name !== 'string' || !wanted.has(obj.name))) {
          this.skipElement();
          skipped = true;
        } else {
          obj.val = this.value('xsd:anyType', 'any');
        }
      } else {
        this.fail(`unexpected ${key.slice(0, 40)} in DynamicProperty`);
      }
      this.nsLen = mark;
    }
    if (typeof obj.name !== 'string') this.fail('DynamicProperty without name');
    if (skipped) return SKIP as unknown as DataObject;
    return obj;
  }

  /** `ArrayOfX` (element just read): each child is an X. */
  array(type: string): unknown[] {
    const out: unknown[] = [];
    const item = vimArrayItem(type) as readonly [string, string];
    const itemType = item[1];
    const itemKind = kindOf(itemType);
    while (this.nextChild()) {
      const mark = this.mark;
      out.push(this.value(itemType, itemKind));
      this.nsLen = mark;
    }
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
    const moType = this.moType;
    if (this.emptyTag()) return type !== undefined ? { _type: type } : '';
    const xml = this.xml;
    let text = '';
    for (;;) {
      const token = xml.next();
      if (token === 'text') {
        text = text === '' ? xml.text : text + xml.text;
      } else if (token === 'end') {
        break;
      } else {
        // A child element: element content, when only whitespace came before it.
        if (token !== 'start' || !isXmlSpace(text)) this.fail('element where text was expected');
        this.startTag();
        this.ahead = true;
        return this.rawChildren(type !== undefined ? { _type: type } : {});
      }
    }
    if (moType !== undefined && type === undefined) {
      if (moType === '' || text === '') this.fail('bad managed object reference');
      return { type: moType, value: text };
    }
    if (type !== undefined && text === '') return { _type: type };
    return text;
  }

  private rawChildren<T extends Record<string, unknown>>(obj: T): T {
    let repeated: Set<string> | undefined;
    while (this.nextChild()) {
      const mark = this.mark;
      const key = localName(this.tagName);
      repeated = this.addRaw(obj, key, this.unknownValue(), repeated);
      this.nsLen = mark;
    }
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

  /** The document element (the tokenizer skips what may come before it and refuses anything else). */
  documentElement(): void {
    this.xml.next();
    this.startTag();
  }

  /** After the document element: the end of the document (the tokenizer refuses anything else). */
  endOfDocument(): void {
    this.xml.next();
  }

  envelope(method: string, returns: string | undefined): SoapResponse {
    this.documentElement();
    const envName = this.tagName;
    if (localName(envName) !== 'Envelope' || this.elementNs(envName) !== SOAP_ENV_NS)
      this.fail('not a SOAP envelope');
    if (this.xml.selfClosing) this.fail('empty SOAP envelope');
    let result: SoapResponse | undefined;
    while (this.nextChild()) {
      const mark = this.mark;
      const name = this.tagName;
      const local = localName(name);
      if (this.elementNs(name) !== SOAP_ENV_NS) this.fail(`unexpected ${local.slice(0, 40)} in Envelope`);
      if (local === 'Header' && result === undefined) {
        this.skipElement();
      } else if (local === 'Body' && result === undefined) {
        if (this.xml.selfClosing) this.fail('empty SOAP body');
        result = this.body(method, returns);
      } else {
        this.fail(`unexpected ${local.slice(0, 40)} in Envelope`);
      }
      this.nsLen = mark;
    }
    this.endOfDocument();
    if (result === undefined) this.fail('SOAP envelope without Body');
    return result;
  }

  private body(method: string, returns: string | undefined): SoapResponse {
    if (!this.nextChild()) this.fail('empty SOAP body');
    const mark = this.mark;
    const name = this.tagName;
    const local = localName(name);
    let result: SoapResponse;
    if (local === 'Fault' && this.elementNs(name) === SOAP_ENV_NS) {
      result = { fault: this.fault(), returnval: undefined };
    } else {
      if (!this.anyResponse && local !== `${method}Response`)
        this.fail(`expected ${method}Response, got ${local.slice(0, 60)}`);
      result = { fault: undefined, returnval: this.response(returns) };
    }
    this.nsLen = mark;
    if (this.nextChild()) this.fail('more than one element in the SOAP body');
    return result;
  }

  private response(returns: string | undefined): unknown {
    let declared = returns;
    let many = false;
    if (declared?.endsWith('[]')) {
      declared = declared.slice(0, -2);
      many = true;
    }
    const values: unknown[] = [];
    while (this.nextChild()) {
      const mark = this.mark;
      if (localName(this.tagName) === 'returnval') {
        values.push(
          declared === undefined || declared === 'void'
            ? this.unknownValue()
            : this.value(declared, kindOf(declared)),
        );
      } else {
        this.skipElement();
      }
      this.nsLen = mark;
    }
    if (declared === 'void') return undefined;
    if (many) return values;
    if (values.length <= 1) return values[0];
    if (returns !== undefined) this.fail('more than one returnval');
    return values;
  }

  private fault(): SoapFault {
    if (this.xml.selfClosing) this.fail('empty SOAP fault');
    let faultcode: string | undefined;
    let faultstring: string | undefined;
    let detail: DataObject | undefined;
    while (this.nextChild()) {
      const mark = this.mark;
      const key = localName(this.tagName);
      if (key === 'faultcode' && faultcode === undefined) {
        faultcode = localName(this.readText().trim());
      } else if (key === 'faultstring' && faultstring === undefined) {
        faultstring = this.readText();
      } else if (key === 'detail' && detail === undefined) {
        detail = this.faultDetail();
      } else {
        this.skipElement();
      }
      this.nsLen = mark;
    }
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
    let detail: DataObject | undefined;
    while (this.nextChild()) {
      const mark = this.mark;
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
      } else {
        this.skipElement();
      }
      this.nsLen = mark;
    }
    return detail;
  }
}

/** Checks the arguments every decoder takes (misuse is a TypeError). */
function checkArguments(text: unknown, options: DecodeOptions): void {
  if (typeof text !== 'string') throw new TypeError('decodeSoapResponse expects the response text.');
  const maxBytes = options.maxBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  if (typeof maxBytes !== 'number' || !(maxBytes > 0)) throw new TypeError('maxBytes must be positive.');
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
  checkArguments(text, options);
  const operation = `soap.${method}`;
  const returns = options.returns ?? methodReturnType(method);
  try {
    return new Reader(text, options, operation).envelope(method, returns);
  } catch (error) {
    if (HvkitError.isInstance(error)) throw error;
    // Defence in depth: nothing but PROTOCOL may escape (e.g. a RangeError on pathological input).
    throw hvkitError('PROTOCOL', 'Invalid SOAP response: could not be decoded.', {
      adapter: options.adapter ?? 'vmware-vsphere',
      operation: options.operation ?? operation,
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
  checkArguments(text, options);
  try {
    const reader = new Reader(text, options, options.operation);
    reader.documentElement();
    const value = reader.value(type, kindOf(type));
    reader.endOfDocument();
    return value;
  } catch (error) {
    if (HvkitError.isInstance(error)) throw error;
    throw hvkitError('PROTOCOL', 'Invalid XML value: could not be decoded.', {
      adapter: options.adapter ?? 'vmware-vsphere',
      operation: options.operation,
      cause: error,
      retryable: false,
    });
  }
}
