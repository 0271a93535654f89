/**
 * The object builder behind {@link parseXml}, on the {@link XmlTokenizer} (which checks well-formedness
 * and applies the hardening rules).
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
import { XmlTokenizer, type XmlTokenizerOptions } from './tokenizer';

/** Settings of {@link readXml}. */
export interface ReadXmlSettings extends XmlTokenizerOptions {
  isArray: XmlArrayPredicate | undefined;
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
 * Reads one document into the object `parseXml` returns.
 *
 * @throws HvkitError `PROTOCOL` for anything not well-formed or refused, with its line and column.
 */
export function readXml(input: string, settings: ReadXmlSettings): XmlObject {
  const xml = new XmlTokenizer(input, settings);
  const isArray = settings.isArray;
  /** Open elements, root first: `frames[0..depth)`; frame objects are reused once their element closed. */
  const frames: Frame[] = [];
  let depth = 0;
  let result: XmlObject | undefined;

  /** Adds a finished element to the open one (or makes it the document's root). */
  const addToParent = (name: string, path: string, value: XmlValue): void => {
    if (depth === 0) {
      const doc: XmlObject = {};
      doc[name] = isArray?.(name, path) ? [value] : value;
      result = doc;
      return;
    }
    const parent = frames[depth - 1] as Frame;
    if (parent.children === undefined) parent.children = {};
    const obj = parent.children;
    if (Object.hasOwn(obj, name)) {
      const existing = obj[name] as XmlValue;
      if (Array.isArray(existing)) existing.push(value);
      else obj[name] = [existing, value];
    } else {
      obj[name] = isArray?.(name, path) ? [value] : value;
    }
  };

  for (;;) {
    const token = xml.next();
    if (token === 'text') {
      const top = frames[depth - 1] as Frame;
      top.text = top.text === '' ? xml.text : top.text + xml.text;
    } else if (token === 'start') {
      const name = xml.name;
      if (name === '__proto__') xml.fail('element name __proto__ is not allowed.');
      let attrs: XmlObject | undefined;
      const count = xml.attributeCount * 2;
      if (count > 0) {
        attrs = {};
        const list = xml.attributes;
        for (let k = 0; k < count; k += 2) attrs[`@_${list[k]}`] = list[k + 1] as string;
      }
      const path =
        isArray === undefined ? '' : depth === 0 ? name : `${(frames[depth - 1] as Frame).path}.${name}`;
      let frame = frames[depth];
      if (frame === undefined) {
        frame = { name, path, children: undefined, attrs, text: '' };
        frames[depth] = frame;
      } else {
        frame.name = name;
        frame.path = path;
        frame.children = undefined;
        frame.attrs = attrs;
        frame.text = '';
      }
      depth++;
    } else if (token === 'end') {
      depth--;
      const frame = frames[depth] as Frame;
      addToParent(frame.name, frame.path, elementValue(frame));
    } else {
      return result as XmlObject;
    }
  }
}

/** The value of a closed element (see the module comment). */
function elementValue(frame: Frame): XmlValue {
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
  return value;
}
