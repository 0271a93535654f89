/**
 * The one hardened XML parser of hvkit: no DOCTYPE, no entity expansion beyond the five predefined
 * entities and character references, no value coercion, a size limit, a nesting limit. The tokenizing and
 * every hardening rule are ./tokenizer.ts (hvkit's one XML tokenizer, also under the vSphere decoder); the
 * objects are built by ./reader.ts (a single pass; about ten times faster than fast-xml-parser's
 * validate + parse on libvirt domain XML, with the same output shape).
 */

import { hvkitError } from '../errors/hvkit-error';
import { readXml } from './reader';
import { XML_DEFAULT_MAX_BYTES, XML_DEFAULT_MAX_DEPTH } from './tokenizer';

export {
  isXmlCodePoint,
  isXmlSpace,
  XML_DEFAULT_MAX_BYTES,
  XML_DEFAULT_MAX_DEPTH,
  type XmlToken,
  XmlTokenizer,
  type XmlTokenizerOptions,
} from './tokenizer';

/** Prefix of attribute keys in parsed objects: `<disk type="file">` → `{ disk: { '@_type': 'file' } }`. */
export const XML_ATTRIBUTE_PREFIX = '@_';
/** Key of an element's text when it also has attributes or children: `{ '#text': '...' }`. */
export const XML_TEXT_KEY = '#text';

/** A parsed element: attributes under `@_name`, text under `#text`, children by tag name. */
export interface XmlObject {
  [key: string]: XmlValue;
}
/** A parsed value: text (never coerced), an element, or repeated elements. */
export type XmlValue = string | XmlObject | XmlValue[];

/**
 * Decides which elements are always arrays, even when they occur once: called with the tag name and the
 * dotted path from the root (`domain.devices.disk`).
 */
export type XmlArrayPredicate = (tagName: string, path: string) => boolean;

/** Options of {@link parseXml}. */
export interface ParseXmlOptions {
  /** Largest input in bytes (UTF-8); larger input is rejected with `PROTOCOL` before parsing. Default 16 MiB. */
  maxBytes?: number;
  /**
   * Elements that are always arrays: dotted paths from the root (`['domain.devices.disk']`) or a predicate.
   * Without it an element is an array only when it occurs more than once.
   */
  alwaysArray?: readonly string[] | XmlArrayPredicate;
  /** Trim whitespace around text and attribute values (default true). */
  trimValues?: boolean;
  /** Deepest element nesting accepted (default 100). */
  maxDepth?: number;
  /** Named in errors. */
  adapter?: string;
  /** Named in errors (e.g. `rpc.DOMAIN_GET_XML_DESC`). */
  operation?: string;
}

/**
 * Index of the first character XML 1.0 cannot contain (NUL and other C0 controls except tab, newline and
 * carriage return; U+FFFE, U+FFFF; unpaired surrogates), or -1 when there is none.
 */
export function findInvalidXmlChar(text: string): number {
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20) {
      if (c !== 0x9 && c !== 0xa && c !== 0xd) return i;
    } else if (c >= 0xd800 && c <= 0xdbff) {
      const next = text.charCodeAt(i + 1);
      if (!(next >= 0xdc00 && next <= 0xdfff)) return i;
      i++;
    } else if ((c >= 0xdc00 && c <= 0xdfff) || c === 0xfffe || c === 0xffff) {
      return i;
    }
  }
  return -1;
}

function protocol(
  message: string,
  options: ParseXmlOptions,
  cause?: unknown,
  details?: Record<string, unknown>,
) {
  return hvkitError('PROTOCOL', `Invalid XML: ${message}`, {
    adapter: options.adapter,
    operation: options.operation,
    cause,
    details,
  });
}

/**
 * Parses XML into a plain object. Element text and attribute values stay strings (`'007'` stays `'007'`,
 * `'true'` stays `'true'`); attributes are keyed `@_name`; text of an element that also has attributes or
 * children is under `#text`; namespace prefixes are kept (`soapenv:Envelope`). Comments, processing
 * instructions and the XML declaration are dropped; CDATA becomes text.
 *
 * Hardened: input above `maxBytes` is rejected before parsing; a DOCTYPE (or any other markup declaration)
 * is rejected, so no entity can be declared, expanded or fetched; the only references decoded are the five
 * predefined entities (`&lt;` `&gt;` `&amp;` `&quot;` `&apos;`) and character references (`&#65;`,
 * `&#x41;`); any other reference is an error.
 *
 * @throws HvkitError `PROTOCOL` for oversized, malformed or forbidden input (invalid UTF-8 in a byte array
 *   included).
 * @throws TypeError when `text` is not a string or byte array, or options are of the wrong type.
 */
export function parseXml(text: string | Uint8Array, options: ParseXmlOptions = {}): XmlObject {
  const maxBytes = options.maxBytes ?? XML_DEFAULT_MAX_BYTES;
  if (typeof maxBytes !== 'number' || !(maxBytes > 0))
    throw new TypeError('parseXml: maxBytes must be a positive number.');
  let source: string;
  if (typeof text === 'string') {
    source = text; // the tokenizer checks its size
  } else if (text instanceof Uint8Array) {
    if (text.byteLength > maxBytes) {
      throw protocol(`document is larger than ${maxBytes} bytes.`, options, undefined, { maxBytes });
    }
    try {
      source = new TextDecoder('utf-8', { fatal: true }).decode(text);
    } catch (error) {
      throw protocol('document is not valid UTF-8.', options, error);
    }
  } else {
    throw new TypeError('parseXml expects a string or a Uint8Array.');
  }

  const maxDepth = options.maxDepth ?? XML_DEFAULT_MAX_DEPTH;
  if (!Number.isInteger(maxDepth) || maxDepth < 1)
    throw new TypeError('parseXml: maxDepth must be a positive integer.');
  // The tokenizer checks the size of a string, the characters, and everything else.
  const result = readXml(source, {
    maxBytes,
    maxDepth,
    trimValues: options.trimValues ?? true,
    isArray: arrayPredicate(options.alwaysArray),
    adapter: options.adapter,
    operation: options.operation,
  });
  // The reader returns exactly one root element; an `alwaysArray` naming it makes that an array.
  if (Object.values(result).some(Array.isArray)) {
    throw protocol('a document must have exactly one root element.', options);
  }
  return result;
}

function arrayPredicate(alwaysArray: ParseXmlOptions['alwaysArray']): XmlArrayPredicate | undefined {
  if (alwaysArray === undefined) return undefined;
  if (typeof alwaysArray === 'function') return alwaysArray;
  if (!Array.isArray(alwaysArray) || alwaysArray.some((p) => typeof p !== 'string')) {
    throw new TypeError('parseXml: alwaysArray must be an array of dotted paths or a function.');
  }
  const paths = new Set(alwaysArray);
  return (_tag, path) => paths.has(path);
}

/** `value` as an array: `[]` for undefined, `[value]` for one element, the array itself otherwise. */
export function xmlArray<T>(value: T | T[] | undefined): T[] {
  if (value === undefined) return [];
  return Array.isArray(value) ? value : [value];
}

/** The text of a parsed element: the string itself, its `#text`, or `undefined` (absent or no text). */
export function xmlText(value: XmlValue | undefined): string | undefined {
  if (typeof value === 'string') return value;
  if (value === undefined || Array.isArray(value)) return undefined;
  const text = value[XML_TEXT_KEY];
  return typeof text === 'string' ? text : undefined;
}

/** An attribute of a parsed element (`xmlAttr(disk, 'type')`), or `undefined`. */
export function xmlAttr(value: XmlValue | undefined, name: string): string | undefined {
  if (value === undefined || typeof value === 'string' || Array.isArray(value)) return undefined;
  const attr = value[XML_ATTRIBUTE_PREFIX + name];
  return typeof attr === 'string' ? attr : undefined;
}
