/**
 * Targeted edits of an XML document's top-level elements, leaving every other byte as it was (comments,
 * attribute quoting, element order, unknown elements). Internal.
 */

/** Where a child element of the root sits in the text: `[start, end)` covers `<x ...>...</x>` or `<x/>`. */
export interface ElementSpan {
  name: string;
  start: number;
  end: number;
}

/** The root element's name, where its content starts and ends, and its child elements in order. */
export interface RootLayout {
  rootName: string;
  /** Index just after the root's start tag `>`. */
  contentStart: number;
  /** Index of the root's end tag `</...>`. */
  contentEnd: number;
  children: ElementSpan[];
}

/** Index just after the `>` that ends the tag starting at `i` (quotes respected), or -1. */
function tagEnd(xml: string, i: number): number {
  let quote: string | undefined;
  for (let j = i + 1; j < xml.length; j++) {
    const c = xml[j];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === '>') {
      return j + 1;
    }
  }
  return -1;
}

function skipPast(xml: string, from: number, marker: string): number {
  const k = xml.indexOf(marker, from);
  return k === -1 ? -1 : k + marker.length;
}

/**
 * Scans a well-formed document (check it with `parseXml` first) and returns its root layout, or undefined
 * when the scan fails (it then must not be edited).
 */
export function scanRoot(xml: string): RootLayout | undefined {
  let depth = 0;
  let rootName: string | undefined;
  let contentStart = -1;
  let contentEnd = -1;
  const children: ElementSpan[] = [];
  let open: { name: string; start: number } | undefined;
  let i = 0;
  while (i < xml.length) {
    const lt = xml.indexOf('<', i);
    if (lt === -1) break;
    if (xml.startsWith('<!--', lt)) {
      i = skipPast(xml, lt + 4, '-->');
    } else if (xml.startsWith('<![CDATA[', lt)) {
      i = skipPast(xml, lt + 9, ']]>');
    } else if (xml.startsWith('<?', lt)) {
      i = skipPast(xml, lt + 2, '?>');
    } else if (xml.startsWith('<!', lt)) {
      return undefined;
    } else if (xml.startsWith('</', lt)) {
      const end = tagEnd(xml, lt);
      if (end === -1) return undefined;
      depth--;
      if (depth === 1 && open) {
        children.push({ name: open.name, start: open.start, end });
        open = undefined;
      } else if (depth === 0) {
        contentEnd = lt;
        return rootName === undefined ? undefined : { rootName, contentStart, contentEnd, children };
      }
      i = end;
    } else {
      const end = tagEnd(xml, lt);
      if (end === -1) return undefined;
      const name = /^<([^\s/>]+)/.exec(xml.slice(lt, Math.min(end, lt + 256)))?.[1];
      if (!name) return undefined;
      const selfClosing = xml[end - 2] === '/';
      if (depth === 0) {
        rootName = name;
        contentStart = end;
        if (selfClosing) return undefined;
        depth = 1;
      } else if (depth === 1) {
        if (selfClosing) children.push({ name, start: lt, end });
        else {
          open = { name, start: lt };
          depth = 2;
        }
      } else if (!selfClosing) {
        depth++;
      }
      i = end;
    }
    if (i === -1) return undefined;
  }
  return undefined;
}

/** Start of the line that `index` is on, when only whitespace precedes it on that line; else `index`. */
export function lineStart(xml: string, index: number): number {
  let j = index;
  while (j > 0 && (xml[j - 1] === ' ' || xml[j - 1] === '\t')) j--;
  return j > 0 && xml[j - 1] === '\n' ? j - 1 : index;
}

/** The indentation (spaces/tabs) before `index` on its line, or ''. */
export function indentBefore(xml: string, index: number): string {
  let j = index;
  while (j > 0 && (xml[j - 1] === ' ' || xml[j - 1] === '\t')) j--;
  return j === 0 || xml[j - 1] === '\n' ? xml.slice(j, index) : '';
}
