/**
 * The domain XML a restore defines: the backed-up definition, rewritten for a new guest (new name, no
 * UUID, no MACs, no static security labels) or for the same guest (in place), with the restored disks
 * pointing at their new volumes. A pure function over the text: every byte it does not edit stays as it was
 * (comments, attribute quoting, element order, `<metadata>` of other tools). Internal.
 */

import { type HvkitWarning, hvkitError, xmlEscape, xmlEscapeAttribute } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import { parseRoot } from './xml-util';

/** Where one restored disk now lives. */
export interface RestoredDiskSource {
  /** The disk's target device (`vda`), as in the definition and the manifest. */
  device: string;
  /** Path of the volume the disk reads first (the newest layer of a chain). */
  path: string;
  /** Its format (`qcow2`, `raw`). */
  format: string;
  /**
   * For a restored incremental chain: the layers below `path`, nearest first (each a qcow2 whose
   * unallocated clusters read from the next one). Written as `<backingStore>` elements.
   */
  backing?: readonly { path: string; format: string }[];
}

/** Options of {@link rewriteDomainForRestore}. */
export interface RewriteDomainOptions {
  /**
   * `new`: a new guest (new name, libvirt assigns the UUID and MACs, static security labels and their MCS
   * categories dropped, ties to the old guest removed). `in-place`: the same guest; only disks change.
   */
  mode: 'new' | 'in-place';
  /** The new guest's name (mode `new`). */
  name?: string;
  /** The restored disks. Each must be a disk of the definition. */
  disks: readonly RestoredDiskSource[];
}

/** The result of {@link rewriteDomainForRestore}. */
export interface RewrittenDomain {
  xml: string;
  /** What was dropped or changed that the caller should know about (a disk without backup, NVRAM, ...). */
  warnings: HvkitWarning[];
}

/** One element of the document, located in the text. */
interface Span {
  name: string;
  /** Index of `<`. */
  start: number;
  /** Index just after the start tag's `>`. */
  tagEnd: number;
  /** Index of the end tag's `<` (equals `tagEnd` for a self-closing element). */
  contentEnd: number;
  /** Index just after the element. */
  end: number;
  selfClosing: boolean;
  children: Span[];
}

/** Index just after the `>` ending the tag at `i` (quotes respected), or -1. */
function tagEndAt(xml: string, i: number): number {
  let quote: string | undefined;
  for (let j = i + 1; j < xml.length; j++) {
    const c = xml[j];
    if (quote) {
      if (c === quote) quote = undefined;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '>') return j + 1;
  }
  return -1;
}

/** The element tree of a well-formed document (checked with `parseRoot` first), or undefined. */
function scanTree(xml: string): Span | undefined {
  const stack: Span[] = [];
  let root: Span | undefined;
  let i = 0;
  const skip = (from: number, marker: string) => {
    const k = xml.indexOf(marker, from);
    return k === -1 ? -1 : k + marker.length;
  };
  while (i < xml.length && i !== -1) {
    const lt = xml.indexOf('<', i);
    if (lt === -1) break;
    if (xml.startsWith('<!--', lt)) i = skip(lt + 4, '-->');
    else if (xml.startsWith('<![CDATA[', lt)) i = skip(lt + 9, ']]>');
    else if (xml.startsWith('<?', lt)) i = skip(lt + 2, '?>');
    else if (xml.startsWith('<!', lt)) return undefined;
    else if (xml.startsWith('</', lt)) {
      const end = tagEndAt(xml, lt);
      const open = stack.pop();
      if (end === -1 || !open) return undefined;
      open.contentEnd = lt;
      open.end = end;
      i = end;
    } else {
      const end = tagEndAt(xml, lt);
      if (end === -1) return undefined;
      const name = /^<([^\s/>]+)/.exec(xml.slice(lt, Math.min(end, lt + 256)))?.[1];
      if (!name) return undefined;
      const selfClosing = xml[end - 2] === '/';
      const span: Span = { name, start: lt, tagEnd: end, contentEnd: end, end, selfClosing, children: [] };
      const parent = stack[stack.length - 1];
      if (parent) parent.children.push(span);
      else if (root) return undefined;
      else root = span;
      if (!selfClosing) stack.push(span);
      i = end;
    }
  }
  return stack.length === 0 ? root : undefined;
}

const kids = (span: Span | undefined, name: string): Span[] =>
  span ? span.children.filter((c) => c.name === name) : [];
const kid = (span: Span | undefined, name: string): Span | undefined => kids(span, name)[0];

const ATTR_RE = /([^\s=/<>]+)\s*=\s*("[^"]*"|'[^']*')/g;

/** The raw (undecoded) attributes of a start tag, in order. */
function rawAttributes(xml: string, span: Span): [string, string][] {
  const tag = xml.slice(span.start, span.tagEnd);
  const out: [string, string][] = [];
  for (const m of tag.matchAll(ATTR_RE)) out.push([m[1] as string, m[2] as string]);
  return out;
}

/** An attribute's decoded value (only the five predefined entities and numeric references). */
function attrValue(xml: string, span: Span, name: string): string | undefined {
  const raw = rawAttributes(xml, span).find(([n]) => n === name)?.[1];
  if (raw === undefined) return undefined;
  return decodeEntities(raw.slice(1, -1));
}

function decodeEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|lt|gt|amp|quot|apos);/g, (_, e: string) => {
    if (e.startsWith('#x')) return String.fromCodePoint(Number.parseInt(e.slice(2), 16));
    if (e.startsWith('#')) return String.fromCodePoint(Number.parseInt(e.slice(1), 10));
    return { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" }[e] as string;
  });
}

function textOf(xml: string, span: Span): string {
  return decodeEntities(xml.slice(span.tagEnd, span.contentEnd)).trim();
}

/** A start tag rebuilt with attributes changed: `set` values (undefined removes). Quotes are kept. */
function retag(xml: string, span: Span, set: Record<string, string | undefined>): string {
  const attrs = rawAttributes(xml, span);
  const parts: string[] = [];
  const done = new Set<string>();
  for (const [name, raw] of attrs) {
    if (name in set) {
      done.add(name);
      const v = set[name];
      if (v !== undefined) parts.push(`${name}='${xmlEscapeAttribute(v)}'`);
    } else parts.push(`${name}=${raw}`);
  }
  for (const [name, v] of Object.entries(set)) {
    if (!done.has(name) && v !== undefined) parts.push(`${name}='${xmlEscapeAttribute(v)}'`);
  }
  return `<${span.name}${parts.length ? ` ${parts.join(' ')}` : ''}${span.selfClosing ? '/>' : '>'}`;
}

/** Start of the line of `index` when only blanks precede it there (so a removal takes the line). */
function lineStartOf(xml: string, index: number): number {
  let j = index;
  while (j > 0 && (xml[j - 1] === ' ' || xml[j - 1] === '\t')) j--;
  return j > 0 && xml[j - 1] === '\n' ? j - 1 : index;
}

function indentOf(xml: string, index: number): string {
  let j = index;
  while (j > 0 && (xml[j - 1] === ' ' || xml[j - 1] === '\t')) j--;
  return xml.slice(j, index);
}

interface Edit {
  start: number;
  end: number;
  text: string;
}

function invalid(message: string, details?: Record<string, unknown>) {
  return hvkitError('INVALID_ARGUMENT', message, {
    adapter: ADAPTER_ID,
    operation: 'backups.restore',
    details: { reason: 'artifact-invalid', ...details },
  });
}

/** Drops the MCS categories from a label's level: `system_u:system_r:svirt_t:s0:c1,c2` → `…:s0`. */
function withoutCategories(label: string): string {
  const parts = label.split(':');
  return parts.length > 4 ? parts.slice(0, 4).join(':') : label;
}

/**
 * Rewrites a backed-up domain definition for restore (see {@link RewriteDomainOptions}).
 *
 * Mode `new`: `<name>` becomes `options.name`; `<uuid>` is removed (libvirt assigns one) and a `<genid>`
 * value too (an empty `<genid/>` asks for a new one); every interface loses its `<mac>` (libvirt generates a
 * 52:54:00 address) and its `<target dev>`; `<seclabel type='static'>` elements go (the guest gets the
 * default dynamic label), dynamic ones lose `<label>`/`<imagelabel>` and the MCS categories of
 * `<baselabel>`, `relabel='no'` becomes yes; disk-level `<seclabel>`s of restored disks go; the NVRAM path is
 * dropped (libvirt makes a new one from the template; the old guest's EFI variables are not copied);
 * graphics ports become `autoport='yes'`; unix channel paths go (libvirt generates them per guest). A
 * `device='disk'` disk that has no restored source is removed, with a warning: the new guest must not share
 * the original's disk.
 *
 * Both modes: each restored disk gets `type='file'`, `<source file>` = its new path, `<driver type>` = its
 * format and its `<backingStore>` chain (an empty `<backingStore/>` ends it, so libvirt does not probe).
 *
 * @throws TypeError when options are missing or `name` is absent in mode `new`.
 * @throws HvkitError `INVALID_ARGUMENT` (`details.reason: 'artifact-invalid'`) when the XML is not a domain
 *   definition or a restored disk is not in it; `PROTOCOL` for malformed XML.
 */
export function rewriteDomainForRestore(xml: string, options: RewriteDomainOptions): RewrittenDomain {
  if (typeof options !== 'object' || options === null) throw new TypeError('options are required.');
  if (options.mode !== 'new' && options.mode !== 'in-place')
    throw new TypeError("mode must be 'new' or 'in-place'.");
  if (options.mode === 'new' && (typeof options.name !== 'string' || options.name === '')) {
    throw new TypeError('A restore as a new guest needs a name.');
  }
  parseRoot(xml, 'domain', 'backups.restore');
  const root = scanTree(xml);
  if (root?.name !== 'domain') throw invalid('The definition file is not a libvirt <domain> document.');
  const warnings: HvkitWarning[] = [];
  const edits: Edit[] = [];
  const remove = (span: Span) => edits.push({ start: lineStartOf(xml, span.start), end: span.end, text: '' });
  const replaceTag = (span: Span, set: Record<string, string | undefined>) =>
    edits.push({ start: span.start, end: span.tagEnd, text: retag(xml, span, set) });
  const isNew = options.mode === 'new';

  if (attrValue(xml, root, 'id') !== undefined) replaceTag(root, { id: undefined });
  const devices = kid(root, 'devices');
  const diskSpans = kids(devices, 'disk');
  const byDevice = new Map<string, Span>();
  for (const d of diskSpans) {
    const dev = attrValue(xml, kid(d, 'target') ?? d, 'dev');
    if (dev !== undefined) byDevice.set(dev, d);
  }
  const restored = new Set<string>();
  for (const disk of options.disks) {
    const span = byDevice.get(disk.device);
    if (!span) {
      throw invalid(`The definition has no disk ${JSON.stringify(disk.device)} that the artifact restores.`, {
        device: disk.device,
      });
    }
    restored.add(disk.device);
    edits.push({ start: span.start, end: span.end, text: rewriteDisk(xml, span, disk) });
  }

  if (isNew) {
    const nameSpan = kid(root, 'name');
    if (!nameSpan) throw invalid('The definition has no <name>.');
    edits.push({ start: nameSpan.tagEnd, end: nameSpan.contentEnd, text: xmlEscape(options.name as string) });
    for (const u of kids(root, 'uuid')) remove(u);
    for (const g of kids(root, 'genid')) {
      if (!g.selfClosing) edits.push({ start: g.start, end: g.end, text: '<genid/>' });
    }
    for (const d of diskSpans) {
      const dev = attrValue(xml, kid(d, 'target') ?? d, 'dev');
      const device = attrValue(xml, d, 'device') ?? 'disk';
      if (device === 'disk' && (dev === undefined || !restored.has(dev))) {
        remove(d);
        warnings.push({
          type: 'compatibility',
          field: `disks.${dev ?? ''}`,
          message: `Disk ${dev ?? '(no target)'} has no restored copy in the artifact; the new guest is defined without it so that it does not share the original's disk.`,
        });
      }
    }
    for (const iface of kids(devices, 'interface')) {
      for (const m of kids(iface, 'mac')) remove(m);
      for (const t of kids(iface, 'target')) remove(t);
    }
    for (const label of kids(root, 'seclabel')) rewriteSeclabel(xml, label, edits, remove, replaceTag);
    const os = kid(root, 'os');
    for (const nv of kids(os, 'nvram')) {
      if (!nv.selfClosing && textOf(xml, nv) !== '') {
        edits.push({ start: nv.tagEnd, end: nv.contentEnd, text: '' });
        warnings.push({
          type: 'compatibility',
          field: 'os.nvram',
          message:
            "The new guest gets a fresh NVRAM from the firmware's template; the original's EFI variables are not copied.",
        });
      }
    }
    for (const g of kids(devices, 'graphics')) {
      const set: Record<string, string | undefined> = {};
      for (const a of ['port', 'tlsPort', 'websocket']) {
        if (attrValue(xml, g, a) !== undefined) set[a] = undefined;
      }
      if (attrValue(xml, g, 'autoport') !== undefined || Object.keys(set).length > 0) set.autoport = 'yes';
      if (Object.keys(set).length > 0) replaceTag(g, set);
    }
    for (const ch of kids(devices, 'channel')) {
      if (attrValue(xml, ch, 'type') !== 'unix') continue;
      for (const src of kids(ch, 'source')) {
        if (attrValue(xml, src, 'path') !== undefined) replaceTag(src, { path: undefined });
      }
    }
  }
  return { xml: applyEdits(xml, edits), warnings };
}

/** A domain-level `<seclabel>` for a new guest: static ones go, dynamic ones lose what was assigned. */
function rewriteSeclabel(
  xml: string,
  label: Span,
  edits: Edit[],
  remove: (span: Span) => void,
  replaceTag: (span: Span, set: Record<string, string | undefined>) => void,
): void {
  const type = attrValue(xml, label, 'type');
  if (type === 'none') return;
  if (type === 'static') {
    remove(label);
    return;
  }
  if (attrValue(xml, label, 'relabel') === 'no') replaceTag(label, { relabel: 'yes' });
  for (const l of [...kids(label, 'label'), ...kids(label, 'imagelabel')]) remove(l);
  for (const b of kids(label, 'baselabel')) {
    const value = textOf(xml, b);
    const stripped = withoutCategories(value);
    if (stripped !== value) edits.push({ start: b.tagEnd, end: b.contentEnd, text: xmlEscape(stripped) });
  }
}

/** The restored disk element: file source, format, backing chain; other children kept. */
function rewriteDisk(xml: string, span: Span, disk: RestoredDiskSource): string {
  const inner: Edit[] = [];
  const base = span.start;
  const local = (s: Span) => ({ start: s.start - base, end: s.end - base });
  const text = xml.slice(span.start, span.end);
  const indent = indentOf(xml, span.start);
  const childIndent = span.children[0] ? indentOf(xml, span.children[0].start) : `${indent}  `;
  const drop = (s: Span) => {
    const l = local(s);
    inner.push({ start: lineStartOf(text, l.start), end: l.end, text: '' });
  };
  const source = `<source file='${xmlEscapeAttribute(disk.path)}'/>`;
  let chain = '';
  let pad = childIndent;
  for (const layer of disk.backing ?? []) {
    chain += `\n${pad}<backingStore type='file'>\n${pad}  <format type='${xmlEscapeAttribute(layer.format)}'/>\n${pad}  <source file='${xmlEscapeAttribute(layer.path)}'/>`;
    pad += '  ';
  }
  chain += `\n${pad}<backingStore/>`;
  for (let p = (disk.backing ?? []).length; p > 0; p--) {
    pad = pad.slice(0, -2);
    chain += `\n${pad}</backingStore>`;
  }
  const driver = kid(span, 'driver');
  const sourceSpan = kid(span, 'source');
  for (const b of kids(span, 'backingStore')) drop(b);
  if (driver) {
    inner.push({
      start: driver.start - base,
      end: driver.tagEnd - base,
      text: retag(xml, driver, { type: disk.format }),
    });
  }
  const newDriver = driver
    ? ''
    : `\n${childIndent}<driver name='qemu' type='${xmlEscapeAttribute(disk.format)}'/>`;
  if (sourceSpan) inner.push({ ...local(sourceSpan), text: source + chain });
  if (!sourceSpan || newDriver) {
    // An empty drive gets a source; a disk without <driver> one that names the format. Both go first.
    const at = span.tagEnd - base;
    const first = newDriver + (sourceSpan ? '' : `\n${childIndent}${source}${chain}`);
    inner.push({ start: at, end: at, text: first });
  }
  const out = applyEdits(text, inner);
  // The element's own tag: a file disk now.
  const tagEnd = span.tagEnd - span.start;
  return retag(xml, span, { type: 'file' }) + out.slice(tagEnd);
}

/**
 * Applies non-overlapping edits given in original offsets. An edit inside another one's range is dropped
 * (the outer edit, a removal or replacement of the whole element, wins).
 */
function applyEdits(text: string, edits: Edit[]): string {
  const ascending = [...edits].sort((a, b) => a.start - b.start || b.end - a.end);
  const kept: Edit[] = [];
  for (const e of ascending) {
    const last = kept[kept.length - 1];
    if (last && e.start < last.end) {
      if (e.end <= last.end) continue;
      throw new Error(`restore-definition: overlapping edits at ${e.start}`);
    }
    kept.push(e);
  }
  let out = text;
  for (let k = kept.length - 1; k >= 0; k--) {
    const e = kept[k] as Edit;
    out = out.slice(0, e.start) + e.text + out.slice(e.end);
  }
  return out;
}
