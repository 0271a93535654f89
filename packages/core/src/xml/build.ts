/**
 * Writing XML: escaping and a small builder over the same object shape {@link parseXml} returns.
 */

import { hvkitError } from '../errors/hvkit-error';
import { findInvalidXmlChar, XML_ATTRIBUTE_PREFIX, XML_TEXT_KEY } from './parse';

function checkChars(value: string, what: string): void {
  if (findInvalidXmlChar(value) !== -1) {
    throw hvkitError('INVALID_ARGUMENT', `${what} contains a character XML cannot represent.`);
  }
}

/**
 * Escapes text for element content: `&`, `<` and `>` (the last so `]]>` can never appear), and `\r` as
 * `&#13;` so it survives line-end normalisation.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for characters XML 1.0 cannot represent (NUL, most control
 *   characters, lone surrogates).
 */
export function xmlEscape(text: string): string {
  if (typeof text !== 'string') throw new TypeError(`xmlEscape expects a string, got ${typeof text}.`);
  checkChars(text, 'Text');
  return text.replace(/[&<>\r]/g, (c) => ESCAPES[c] as string);
}

/**
 * Escapes an attribute value (to be put between double or single quotes): `&`, `<`, `>`, `"`, `'`, and
 * tab, newline and carriage return as character references so attribute-value normalisation keeps them.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for characters XML 1.0 cannot represent.
 */
export function xmlEscapeAttribute(value: string): string {
  if (typeof value !== 'string')
    throw new TypeError(`xmlEscapeAttribute expects a string, got ${typeof value}.`);
  checkChars(value, 'Attribute value');
  return value.replace(/[&<>"'\t\n\r]/g, (c) => ESCAPES[c] as string);
}

const ESCAPES: Readonly<Record<string, string>> = {
  '&': '&amp;',
  '<': '&lt;',
  '>': '&gt;',
  '"': '&quot;',
  "'": '&apos;',
  '\t': '&#9;',
  '\n': '&#10;',
  '\r': '&#13;',
};

/** An XML name (element or attribute), optionally with one namespace prefix. */
const NAME_RE = /^[A-Za-z_][\w.-]*(?::[A-Za-z_][\w.-]*)?$/;

/** A value {@link buildXml} accepts: the shape {@link parseXml} returns, plus numbers and booleans as text. */
export type XmlInput = string | number | bigint | boolean | null | undefined | XmlInputObject | XmlInput[];
/** An element for {@link buildXml}: `@_name` attributes, `#text` text, children by tag name. */
export interface XmlInputObject {
  [key: string]: XmlInput;
}

/** Options of {@link buildXml}. */
export interface BuildXmlOptions {
  /** Start with `<?xml version="1.0" encoding="UTF-8"?>` (default false). */
  declaration?: boolean;
  /** Indent with this string and put each element on its own line (default: no whitespace added). */
  indent?: string;
}

/**
 * Serialises an object of the shape {@link parseXml} returns: keys are tag names, `@_name` keys are
 * attributes, `#text` is text, arrays repeat an element, `''` gives an empty element `<x/>`, `undefined`
 * and `null` are left out. Numbers, bigints and booleans are written as text. All text and attribute values
 * are escaped; names are checked.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for an invalid element or attribute name or an unrepresentable
 *   character.
 * @throws TypeError when `root` is not an object with exactly one root element.
 */
export function buildXml(root: XmlInputObject, options: BuildXmlOptions = {}): string {
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw new TypeError('buildXml expects an object with one root element.');
  }
  const keys = Object.keys(root).filter((k) => root[k] !== undefined && root[k] !== null);
  if (keys.length !== 1 || keys[0]?.startsWith(XML_ATTRIBUTE_PREFIX) || keys[0] === XML_TEXT_KEY) {
    throw new TypeError('buildXml expects exactly one root element.');
  }
  const rootName = keys[0] as string;
  if (Array.isArray(root[rootName])) throw new TypeError('buildXml: the root element cannot repeat.');
  const parts: string[] = [];
  if (options.declaration) parts.push('<?xml version="1.0" encoding="UTF-8"?>');
  const indent = options.indent;
  writeElement(parts, rootName, root[rootName], indent, 0);
  return parts.join(indent !== undefined ? '\n' : '');
}

function checkName(name: string): void {
  if (!NAME_RE.test(name)) {
    throw hvkitError('INVALID_ARGUMENT', `Invalid XML name ${JSON.stringify(name.slice(0, 80))}.`);
  }
}

function scalarText(value: string | number | bigint | boolean): string {
  if (typeof value === 'number' && !Number.isFinite(value)) {
    throw hvkitError('INVALID_ARGUMENT', `Cannot write ${value} as XML text.`);
  }
  return String(value);
}

function writeElement(
  parts: string[],
  name: string,
  value: XmlInput,
  indent: string | undefined,
  depth: number,
): void {
  if (value === undefined || value === null) return;
  if (Array.isArray(value)) {
    for (const item of value) writeElement(parts, name, item, indent, depth);
    return;
  }
  checkName(name);
  const pad = indent !== undefined ? indent.repeat(depth) : '';
  if (typeof value !== 'object') {
    const text = scalarText(value);
    parts.push(text === '' ? `${pad}<${name}/>` : `${pad}<${name}>${xmlEscape(text)}</${name}>`);
    return;
  }
  let open = `${pad}<${name}`;
  let text: string | undefined;
  const children: [string, XmlInput][] = [];
  for (const [key, child] of Object.entries(value)) {
    if (child === undefined || child === null) continue;
    if (key.startsWith(XML_ATTRIBUTE_PREFIX)) {
      const attr = key.slice(XML_ATTRIBUTE_PREFIX.length);
      checkName(attr);
      if (typeof child === 'object')
        throw hvkitError('INVALID_ARGUMENT', `Attribute ${attr} must be a scalar.`);
      open += ` ${attr}="${xmlEscapeAttribute(scalarText(child))}"`;
    } else if (key === XML_TEXT_KEY) {
      if (typeof child === 'object')
        throw hvkitError('INVALID_ARGUMENT', `${XML_TEXT_KEY} must be a scalar.`);
      text = scalarText(child);
    } else {
      children.push([key, child]);
    }
  }
  if (children.length === 0) {
    parts.push(text === undefined || text === '' ? `${open}/>` : `${open}>${xmlEscape(text)}</${name}>`);
    return;
  }
  if (indent === undefined || text !== undefined) {
    // Mixed content is written without added whitespace, which would change the text.
    const inner: string[] = [];
    if (text !== undefined) inner.push(xmlEscape(text));
    for (const [key, child] of children) writeElement(inner, key, child, undefined, 0);
    parts.push(`${open}>${inner.join('')}</${name}>`);
    return;
  }
  parts.push(`${open}>`);
  for (const [key, child] of children) writeElement(parts, key, child, indent, depth + 1);
  parts.push(`${pad}</${name}>`);
}
