/**
 * The simulator's database: loaded from XAPI's own `/pool/xmldbdump` format (`<database><manifest/>
 * <table name="VM"><row ref=... uuid=... name__label=... VCPUs__params="(('weight' '256'))"/></table>
 * </database>`: one table per class, one row per object, every field an attribute, namespaced fields
 * joined with `__`, sets and maps as S-expressions). Known fields are typed with the datamodel table;
 * other columns stay strings. One-to-many sets (`VM.VIFs`, `network.PIFs`, ...) are recomputed from the
 * refs that define them, as XAPI's database does.
 */

import { readFile } from 'node:fs/promises';
import { hvkitError, XmlTokenizer } from '@hvkit/core';
import { canonicalClass, defaultOf, fieldsOf, type XapiField } from '../protocol/datamodel';
import { NULL_REF } from '../protocol/values';
import { parseXapiDate, setOwn, type WireValue, XapiFloat } from '../protocol/wire';
import { mapFromSExpr, setFromSExpr } from './sexpr';

/** One object: field name -> value (typed for known fields, strings for others). */
export type SimRow = Record<string, unknown>;

/** The tables: class name (canonical spelling when known) -> ref -> row. */
export class SimDb {
  readonly tables = new Map<string, Map<string, SimRow>>();
  readonly manifest = new Map<string, string>();

  /** The table of a class (created empty when missing). */
  table(cls: string): Map<string, SimRow> {
    const name = canonicalClass(cls) ?? this.#find(cls) ?? cls;
    let t = this.tables.get(name);
    if (!t) {
      t = new Map();
      this.tables.set(name, t);
    }
    return t;
  }

  #find(cls: string): string | undefined {
    const lower = cls.toLowerCase();
    for (const k of this.tables.keys()) if (k.toLowerCase() === lower) return k;
    return undefined;
  }

  /** Whether the class has a table (any case). */
  has(cls: string): boolean {
    return canonicalClass(cls) !== undefined || this.#find(cls) !== undefined;
  }

  /** A row by ref, with its class, or undefined. */
  lookup(ref: string): { cls: string; row: SimRow } | undefined {
    for (const [cls, t] of this.tables) {
      const row = t.get(ref);
      if (row) return { cls, row };
    }
    return undefined;
  }

  /** A new row of class `cls` with every known field at its default, then `values`. */
  insert(cls: string, ref: string, values: SimRow): SimRow {
    const row: SimRow = {};
    for (const [name, f] of fieldsOf(cls)) setOwn(row, name, structuredClone(defaultOf(f.type)));
    for (const [k, v] of Object.entries(values)) setOwn(row, k, v);
    this.table(cls).set(ref, row);
    return row;
  }

  /** Recomputes the one-to-many ref sets from the refs that define them. */
  relink(): void {
    const links: Array<[string, string, string, string]> = [
      ['VIF', 'VM', 'VM', 'VIFs'],
      ['VBD', 'VM', 'VM', 'VBDs'],
      ['VIF', 'network', 'network', 'VIFs'],
      ['PIF', 'network', 'network', 'PIFs'],
      ['PIF', 'host', 'host', 'PIFs'],
      ['VM', 'resident_on', 'host', 'resident_VMs'],
      ['VDI', 'SR', 'SR', 'VDIs'],
      ['VBD', 'VDI', 'VDI', 'VBDs'],
      ['VM', 'snapshot_of', 'VM', 'snapshots'],
      ['VLAN', 'tagged_PIF', 'PIF', 'VLAN_slave_of'],
    ];
    for (const [, , target, set] of links) for (const row of this.table(target).values()) row[set] = [];
    for (const [from, field, target, set] of links) {
      const targets = this.table(target);
      for (const [ref, row] of this.table(from)) {
        const to = row[field];
        if (typeof to === 'string') (targets.get(to)?.[set] as string[] | undefined)?.push(ref);
      }
    }
    for (const [ref, vlan] of this.table('VLAN')) {
      const pif = this.table('PIF').get(vlan.untagged_PIF as string);
      if (pif) pif.VLAN_master_of = ref;
    }
  }
}

/** Reads one attribute string as the field's type. */
function fromColumn(field: XapiField | undefined, text: string): unknown {
  if (!field) return text;
  switch (field.type) {
    case 'string':
      return text;
    case 'int': {
      const t = text.trim();
      if (!/^-?\d+$/.test(t)) return 0;
      const n = Number(t);
      return Number.isSafeInteger(n) ? n : BigInt(t);
    }
    case 'float':
      return Number(text);
    case 'bool':
      return text === 'true';
    case 'datetime':
      try {
        return parseXapiDate(text);
      } catch {
        return null;
      }
    case 'ref':
      return text === '' || text === NULL_REF ? null : text;
    case 'strings':
    case 'refs':
      return text.trim() === '' ? [] : setFromSExpr(text);
    case 'map':
    case 'floatMap': {
      const out: Record<string, unknown> = {};
      if (text.trim() !== '')
        for (const [k, v] of mapFromSExpr(text)) setOwn(out, k, field.type === 'floatMap' ? Number(v) : v);
      return out;
    }
  }
}

/**
 * Loads a database in the `/pool/xmldbdump` format.
 *
 * @throws HvkitError `PROTOCOL` for a document that is not such a database (malformed XML, rows without a
 *   ref, bad S-expressions in known set or map fields).
 */
export function parseXmlDbDump(text: string): SimDb {
  const db = new SimDb();
  const xml: XmlTokenizer = new XmlTokenizer(text, {
    maxBytes: 512 * 1024 * 1024,
    label: 'Invalid XAPI database',
    adapter: 'xen-xapi',
    operation: 'simulator.load',
  });
  let table: string | undefined;
  let first = true;
  for (;;) {
    const t = xml.next();
    if (t === 'eof') break;
    if (t === 'text') {
      if (!/^\s*$/.test(xml.text)) xml.fail('unexpected text');
      continue;
    }
    if (t === 'end') {
      if (xml.name === 'table') table = undefined;
      continue;
    }
    const attrs = new Map<string, string>();
    for (let k = 0; k < xml.attributeCount; k++)
      attrs.set(xml.attributes[2 * k] as string, xml.attributes[2 * k + 1] as string);
    if (first) {
      if (xml.name !== 'database') xml.fail('the root element must be <database>');
      first = false;
      continue;
    }
    if (xml.name === 'manifest') continue;
    if (xml.name === 'pair') {
      const key = attrs.get('key');
      if (key !== undefined) db.manifest.set(key, attrs.get('value') ?? '');
      continue;
    }
    if (xml.name === 'table') {
      const name = attrs.get('name');
      if (!name) xml.fail('a <table> needs a name');
      table = canonicalClass(name) ?? name;
      db.table(table);
      continue;
    }
    if (xml.name === 'row') {
      if (table === undefined) xml.fail('a <row> outside a <table>');
      const ref = attrs.get('ref') ?? attrs.get('_ref');
      if (!ref) xml.fail('a <row> needs a ref');
      const fields = fieldsOf(table);
      const byColumn = new Map<string, XapiField>();
      for (const f of fields.values()) byColumn.set(f.column, f);
      const row: SimRow = {};
      for (const [column, value] of attrs) {
        if (column === 'ref' || column === '_ref' || column.startsWith('__')) continue;
        const field = byColumn.get(column);
        const name = field?.name ?? column.replace(/__/g, '_');
        try {
          setOwn(row, name, fromColumn(field, value));
        } catch (error) {
          xml.fail(`field ${column} of ${table} ${ref}: ${(error as Error).message}`);
        }
      }
      db.insert(table, ref, row);
      continue;
    }
    xml.fail(`unexpected element <${xml.name}>`);
  }
  db.relink();
  return db;
}

/** Loads a database from `/pool/xmldbdump` text (starting with `<`) or from the path of such a file. */
export async function loadXmlDbDump(db: string): Promise<SimDb> {
  if (typeof db !== 'string')
    throw new TypeError('db must be the path of a /pool/xmldbdump file or its text.');
  const text = db.trimStart().startsWith('<')
    ? db
    : await readFile(db, 'utf8').catch((error: unknown) => {
        throw hvkitError('NOT_FOUND', `Cannot read the XAPI database file: ${(error as Error).message}`, {
          adapter: 'xen-xapi',
          operation: 'simulator.load',
          cause: error,
        });
      });
  return parseXmlDbDump(text);
}

/** A field's value as the wire carries it (the codecs then write XML-RPC or JSON). */
export function toWire(field: XapiField | undefined, value: unknown): WireValue {
  if (!field) return (value ?? '') as WireValue;
  switch (field.type) {
    case 'float':
      return new XapiFloat(Number(value));
    case 'datetime':
      return value instanceof Date ? value : new Date(0);
    case 'ref':
      return typeof value === 'string' && value !== '' ? value : NULL_REF;
    case 'floatMap': {
      const out: Record<string, WireValue> = {};
      for (const [k, v] of Object.entries((value ?? {}) as object)) setOwn(out, k, new XapiFloat(Number(v)));
      return out;
    }
    default:
      return (value ?? defaultOf(field.type)) as WireValue;
  }
}

/** A whole row as a wire record. */
export function rowToWire(cls: string, row: SimRow): Record<string, WireValue> {
  const fields = fieldsOf(cls);
  const out: Record<string, WireValue> = {};
  for (const [k, v] of Object.entries(row)) setOwn(out, k, toWire(fields.get(k), v));
  return out;
}
