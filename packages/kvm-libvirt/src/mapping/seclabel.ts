/**
 * Security labels: libvirt `<seclabel>` elements to the spec's {@link SecurityLabel}, and setting a label in
 * an inactive domain's XML.
 */

import {
  buildXml,
  hvkitError,
  parseXml,
  type SecurityLabel,
  type SecurityModelName,
  type XmlInputObject,
  type XmlValue,
} from '@hvkit/core';
import { ADAPTER_ID } from '../errors';
import { indentBefore, lineStart, scanRoot } from './xml-edit';
import { attr, child, hasControlChar, parseRoot, rawText, yesNo } from './xml-util';

const MODELS: ReadonlySet<string> = new Set(['selinux', 'apparmor', 'dac', 'none']);

/** libvirt's security model name → the spec's, or undefined for models the spec has no name for. */
export function securityModelName(model: string | undefined): SecurityModelName | undefined {
  return model !== undefined && MODELS.has(model) ? (model as SecurityModelName) : undefined;
}

/**
 * One domain-level `<seclabel>` element → {@link SecurityLabel}, or undefined when its model or type is
 * not one the spec names (e.g. the test driver's `testSecurity`).
 *
 * Defaults follow libvirt: no `type` = `dynamic`; no `relabel` = yes for dynamic, no for static and none.
 * Label texts are kept exactly (untrimmed).
 */
export function parseSeclabelElement(el: XmlValue, source: 'live' | 'config'): SecurityLabel | undefined {
  const model = securityModelName(attr(el, 'model'));
  const typeAttr = attr(el, 'type') ?? 'dynamic';
  if (!model || (typeAttr !== 'dynamic' && typeAttr !== 'static' && typeAttr !== 'none')) return undefined;
  const out: SecurityLabel = { model, type: typeAttr };
  const label = nonEmpty(rawText(child(el, 'label')));
  const imageLabel = nonEmpty(rawText(child(el, 'imagelabel')));
  const baseLabel = nonEmpty(rawText(child(el, 'baselabel')));
  if (label !== undefined) out.label = label;
  if (imageLabel !== undefined) out.imageLabel = imageLabel;
  if (baseLabel !== undefined) out.baseLabel = baseLabel;
  out.relabel = yesNo(attr(el, 'relabel')) ?? typeAttr === 'dynamic';
  out.source = source;
  return out;
}

function nonEmpty(value: string | undefined): string | undefined {
  return value === undefined || value.trim() === '' ? undefined : value;
}

/** A per-disk `<source><seclabel>` override. */
export interface DiskSecurityLabel {
  /** Guest disk (target dev). */
  disk: string;
  /** Security model the override is for; undefined when the element names none (it then applies to all). */
  model?: SecurityModelName | string;
  /** Whether libvirt relabels the image; libvirt's default is yes. */
  relabel: boolean;
  /** Label put on the image instead of the domain's image label. */
  label?: string;
  /** `labelskip='yes'`: labelling skipped (e.g. NFS); only in live XML. */
  labelSkip?: boolean;
}

/** The `<seclabel>` overrides inside one disk's `<source>`. */
export function parseDiskSeclabels(disk: string, source: XmlValue | undefined): DiskSecurityLabel[] {
  const out: DiskSecurityLabel[] = [];
  if (source === undefined || typeof source === 'string' || Array.isArray(source)) return out;
  const raw = source.seclabel;
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  for (const el of list) {
    const entry: DiskSecurityLabel = { disk, relabel: yesNo(attr(el, 'relabel')) ?? true };
    const model = attr(el, 'model');
    if (model !== undefined) entry.model = model;
    const label = nonEmpty(rawText(child(el, 'label')));
    if (label !== undefined) entry.label = label;
    const skip = yesNo(attr(el, 'labelskip'));
    if (skip !== undefined) entry.labelSkip = skip;
    out.push(entry);
  }
  return out;
}

/** Options of {@link setDomainSeclabel}. */
export interface SetSeclabelOptions {
  /**
   * `model` (default): replace the `<seclabel>` of the same model and keep the others (stacked drivers).
   * `all`: remove every domain-level `<seclabel>` first.
   */
  replace?: 'model' | 'all';
}

const LABEL_MAX = 4096;

function badLabel(message: string, details: Record<string, unknown> = {}) {
  return hvkitError('INVALID_ARGUMENT', message, { adapter: ADAPTER_ID, operation: 'labels.set', details });
}

function checkLabelText(value: unknown, what: string): string {
  if (typeof value !== 'string') throw badLabel(`${what} must be a string.`, { field: what });
  if (value.trim() === '') throw badLabel(`${what} must not be empty.`, { field: what });
  if (value.length > LABEL_MAX)
    throw badLabel(`${what} is longer than ${LABEL_MAX} characters.`, { field: what });
  if (hasControlChar(value)) throw badLabel(`${what} contains control characters.`, { field: what });
  return value;
}

/**
 * The `<seclabel>` element for `label`, as an object for `buildXml`. Validates the combination libvirt
 * accepts for a definition:
 * - `model`: `selinux`, `apparmor`, `dac` or `none` (`none` only with type `none`); `tag` is not libvirt's.
 * - `static`: needs `label`; `relabel` defaults to no (libvirt's default); `baseLabel` is not allowed.
 * - `dynamic`: `relabel` must not be false (libvirt requires relabelling); `baseLabel` is optional.
 * - `none`: no `label`, `baseLabel` or `relabel: true`.
 * Output-only fields are ignored: `imageLabel`, `enforcing`, `source`, `tags`, and `label` of a dynamic
 * label (libvirt generates it at start).
 *
 * @throws HvkitError `INVALID_ARGUMENT` for anything else.
 */
export function seclabelElement(label: SecurityLabel): XmlInputObject {
  if (typeof label !== 'object' || label === null) throw new TypeError('A security label must be an object.');
  const { model, type } = label;
  if (!securityModelName(model)) {
    throw badLabel(
      `libvirt has no security model ${JSON.stringify(String(model))} (selinux, apparmor, dac, none).`,
      {
        field: 'model',
      },
    );
  }
  if (type !== 'dynamic' && type !== 'static' && type !== 'none') {
    throw badLabel(`Unknown security label type ${JSON.stringify(String(type))}.`, { field: 'type' });
  }
  if (model === 'none' && type !== 'none') {
    throw badLabel("Model 'none' only takes type 'none'.", { field: 'type' });
  }
  const el: XmlInputObject = { '@_type': type, '@_model': model };
  if (type === 'static') {
    if (label.label === undefined) throw badLabel('A static label needs `label`.', { field: 'label' });
    if (label.baseLabel !== undefined)
      throw badLabel('`baseLabel` is for dynamic labels only.', { field: 'baseLabel' });
    el['@_relabel'] = label.relabel ? 'yes' : 'no';
    el.label = checkLabelText(label.label, 'label');
  } else if (type === 'dynamic') {
    if (label.relabel === false) {
      throw badLabel('libvirt requires relabel for dynamic labels (relabel: false is not allowed).', {
        field: 'relabel',
      });
    }
    el['@_relabel'] = 'yes';
    if (label.baseLabel !== undefined) el.baselabel = checkLabelText(label.baseLabel, 'baseLabel');
  } else {
    if (label.label !== undefined || label.baseLabel !== undefined) {
      throw badLabel("A label of type 'none' takes no `label` or `baseLabel`.", { field: 'label' });
    }
    if (label.relabel === true)
      throw badLabel("A label of type 'none' cannot relabel.", { field: 'relabel' });
  }
  return el;
}

/**
 * Sets a domain-level security label in an **inactive** domain definition (`DOMAIN_GET_XML_DESC` with
 * `VIR_DOMAIN_XML_INACTIVE | VIR_DOMAIN_XML_SECURE`, 2|1, so that secrets such as graphics passwords
 * survive the redefinition) and returns the new XML for `DOMAIN_DEFINE_XML(_FLAGS)`.
 *
 * The edit is textual and targeted: the `<seclabel>` of the same model (or all, with `replace: 'all'`) is
 * removed and the new one is written where the first removed one was, else after the last `<seclabel>`,
 * else before `</domain>`. Every other byte of the document is kept. Per-disk `<seclabel>` overrides are
 * not touched; libvirt rejects them when the domain label does not relabel ("label overrides require
 * relabeling to be enabled at the domain level").
 *
 * @throws HvkitError `INVALID_ARGUMENT` for a live definition (root `id` attribute), a document that is not
 *   `<domain>`, or an invalid label (see {@link seclabelElement}); `PROTOCOL` for malformed XML.
 */
export function setDomainSeclabel(
  xml: string,
  label: SecurityLabel,
  options: SetSeclabelOptions = {},
): string {
  const root = parseRoot(xml, 'domain', 'labels.set');
  if (attr(root, 'id') !== undefined) {
    throw badLabel(
      'The domain XML is a live definition (it has an id); pass the inactive XML (VIR_DOMAIN_XML_INACTIVE).',
    );
  }
  const replace = options.replace ?? 'model';
  if (replace !== 'model' && replace !== 'all')
    throw new TypeError("options.replace must be 'model' or 'all'.");
  const element = seclabelElement(label);
  const layout = scanRoot(xml);
  if (layout?.rootName !== 'domain') {
    throw hvkitError('PROTOCOL', 'Could not locate the <domain> element to edit.', {
      adapter: ADAPTER_ID,
      operation: 'labels.set',
    });
  }
  const labels = layout.children.filter((c) => c.name === 'seclabel');
  const remove = labels.filter((span) => {
    if (replace === 'all') return true;
    const parsed = parseXml(xml.slice(span.start, span.end), {
      adapter: ADAPTER_ID,
      operation: 'labels.set',
    });
    return attr(parsed.seclabel, 'model') === label.model;
  });
  const firstChild = layout.children[0];
  const indent = firstChild ? indentBefore(xml, firstChild.start) : '  ';
  const built = buildXml({ seclabel: element }, { indent: '  ' })
    .split('\n')
    .map((line, i) => (i === 0 ? line : indent + line))
    .join('\n');

  let out = xml;
  let insertAt: number;
  let prefix: string;
  if (remove.length > 0) {
    // Remove from the end so earlier offsets stay valid; re-insert at the first removed label.
    for (let k = remove.length - 1; k >= 1; k--) {
      const span = remove[k] as (typeof remove)[number];
      out = out.slice(0, lineStart(out, span.start)) + out.slice(span.end);
    }
    const first = remove[0] as (typeof remove)[number];
    out = out.slice(0, first.start) + out.slice(first.end);
    insertAt = first.start;
    prefix = '';
  } else if (labels.length > 0) {
    insertAt = (labels[labels.length - 1] as (typeof labels)[number]).end;
    prefix = `\n${indent}`;
  } else {
    // Before `</domain>`, on its own line.
    const closeLine = lineStart(xml, layout.contentEnd);
    insertAt = closeLine;
    prefix = closeLine === layout.contentEnd ? '' : `\n${indent}`;
  }
  out = out.slice(0, insertAt) + prefix + built + out.slice(insertAt);
  // The result must still be one well-formed <domain> document.
  parseRoot(out, 'domain', 'labels.set');
  return out;
}

/** The security labels of a domain definition as {@link SecurityLabel}s (see {@link parseSeclabelElement}). */
export function seclabelsOf(root: XmlValue, source: 'live' | 'config'): SecurityLabel[] {
  if (root === undefined || typeof root === 'string' || Array.isArray(root)) return [];
  const raw = root.seclabel;
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  const out: SecurityLabel[] = [];
  for (const el of list) {
    const parsed = parseSeclabelElement(el, source);
    if (parsed) out.push(parsed);
  }
  return out;
}

/**
 * Whether a security model has an enforcing state: SELinux (enforcing or permissive, host-wide) and AppArmor
 * (enforce or complain, per profile). DAC and `none` have none: libvirt reports 0 for them, which means
 * nothing, so `enforcing` is left out for them.
 */
export function hasEnforcingState(model: SecurityModelName): boolean {
  return model === 'selinux' || model === 'apparmor';
}

/** Input of {@link liveSecurityLabels}. */
export interface LiveSecurityLabelsInput {
  /**
   * `DOMAIN_GET_SECURITY_LABEL_LIST` entries (or the single `DOMAIN_GET_SECURITY_LABEL` entry), in the
   * order of the host's stacked security drivers. `enforcing` is libvirt's int (1 = enforcing) or a boolean.
   */
  labels: readonly { label: string; enforcing: number | boolean }[];
  /**
   * Model names in the same driver order: the capabilities' `<secmodel>` list (primary first), e.g.
   * `['none', 'dac']` or `['selinux', 'dac']`.
   */
  models: readonly string[];
  /** The labels of the live domain XML (`parseDomainXmlDetails(...).seclabels`), for type and relabel. */
  xmlLabels?: readonly SecurityLabel[];
}

/**
 * Live security labels (`virDomainGetSecurityLabelList`) → {@link SecurityLabel}s with `source: 'live'`, and
 * `enforcing` for the models that have such a state ({@link hasEnforcingState}: SELinux, where libvirt
 * reports the host's mode, and AppArmor, where it reports the profile's). The API gives only label text
 * and enforcement, per driver in stack order; the model comes
 * from `models` at the same index, and type, relabel, image and base label from the XML label of the same
 * model. Without one, the type is `none` for an empty label or the `none` model, else `dynamic` (libvirt's
 * default). Entries whose model the spec does not name (the test driver's `testSecurity`) are left out.
 *
 * Measured on libvirt 9.0 (QEMU, drivers none + dac): `[{label: '', enforcing: 0}, {label: '+999:+994',
 * enforcing: 0}]`; the test driver's list call returns no entries.
 */
export function liveSecurityLabels(input: LiveSecurityLabelsInput): SecurityLabel[] {
  if (
    typeof input !== 'object' ||
    input === null ||
    !Array.isArray(input.labels) ||
    !Array.isArray(input.models)
  ) {
    throw new TypeError('liveSecurityLabels: labels and models must be arrays.');
  }
  const out: SecurityLabel[] = [];
  input.labels.forEach((entry, i) => {
    const model = securityModelName(input.models[i]);
    if (!model) return;
    const xml = input.xmlLabels?.find((l) => l.model === model);
    const text = typeof entry.label === 'string' && entry.label.trim() !== '' ? entry.label : undefined;
    const label: SecurityLabel = {
      model,
      type: xml?.type ?? (model === 'none' || text === undefined ? 'none' : 'dynamic'),
    };
    if (text !== undefined) label.label = text;
    if (xml?.imageLabel !== undefined) label.imageLabel = xml.imageLabel;
    if (xml?.baseLabel !== undefined) label.baseLabel = xml.baseLabel;
    if (xml?.relabel !== undefined) label.relabel = xml.relabel;
    if (hasEnforcingState(model)) label.enforcing = entry.enforcing === true || entry.enforcing === 1;
    label.source = 'live';
    out.push(label);
  });
  return out;
}
