/**
 * `parseLvmReport(text)`: the JSON reports of `lvs`, `vgs`, `pvs` and `lvm fullreport` (`--reportformat
 * json`, sizes with `--units b --nosuffix`) into typed logical volumes, volume groups and physical volumes.
 * Every value in the report is a string (empty means unset); `lv_attr` is decoded character by character
 * (`man lvs`). Pure: no I/O.
 */

import { hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

/** Largest report `parseLvmReport` reads, in bytes of JSON (16 MiB). */
export const MAX_REPORT_BYTES = 16 * 1024 * 1024;

/** Most rows (volumes, groups, physical volumes together) one report may hold. */
export const MAX_REPORT_ROWS = 100_000;

/** Longest value of one field that is kept (LVM names are at most 127 characters; tags and paths longer). */
const MAX_FIELD_CHARS = 4096;

/** What character 1 of `lv_attr` says the volume is. */
export type LvType =
  | 'linear'
  | 'origin'
  | 'origin-merging'
  | 'snapshot'
  | 'snapshot-merging'
  | 'pvmove'
  | 'virtual'
  | 'mirror'
  | 'mirror-unsynced'
  | 'raid'
  | 'raid-unsynced'
  | 'image'
  | 'image-unsynced'
  | 'mirror-log'
  | 'converting'
  | 'thin'
  | 'thin-pool'
  | 'thin-pool-data'
  | 'metadata'
  | 'cache'
  | 'vdo-pool'
  | 'vdo-pool-data'
  | 'integrity'
  | 'unknown';

/** Character 2: `w` writable, `r` read-only, `R` read-only activation of a writable volume. */
export type LvPermissions = 'writable' | 'read-only' | 'read-only-activation' | 'unknown';

/** Character 3 (capital when pvmove locks it: {@link LvAttr.allocationLocked}). */
export type LvAllocation = 'anywhere' | 'contiguous' | 'inherited' | 'cling' | 'normal' | 'unknown';

/** Character 5. `invalid-snapshot` is a snapshot whose copy-on-write area filled up: its data is lost. */
export type LvState =
  | 'inactive'
  | 'active'
  | 'historical'
  | 'suspended'
  | 'invalid-snapshot'
  | 'invalid-snapshot-suspended'
  | 'merge-failed'
  | 'merge-failed-suspended'
  | 'no-table'
  | 'inactive-table'
  | 'thin-check-needed'
  | 'thin-check-needed-suspended'
  | 'unknown';

/** Character 7: the device-mapper target of the active volume. */
export type LvTarget =
  | 'none'
  | 'mirror'
  | 'raid'
  | 'snapshot'
  | 'thin'
  | 'unknown'
  | 'virtual'
  | 'cache'
  | 'vdo'
  | 'writecache';

/** Character 9. The thin-pool states are `failed`, `out-of-data` and `metadata-read-only`. */
export type LvHealth =
  | 'ok'
  | 'partial'
  | 'refresh-needed'
  | 'mismatches'
  | 'write-mostly'
  | 'reshape-remove'
  | 'failed'
  | 'out-of-data'
  | 'metadata-read-only'
  | 'error'
  | 'unknown';

/** `lv_attr` decoded (`man lvs`, "lv_attr bits"). */
export interface LvAttr {
  /** The 10 characters as LVM printed them. */
  raw: string;
  type: LvType;
  permissions: LvPermissions;
  allocation: LvAllocation;
  /** Character 3 is a capital: pvmove has the allocation locked. */
  allocationLocked: boolean;
  /** Character 4 `m`: a fixed minor number. */
  fixedMinor: boolean;
  state: LvState;
  /** Character 6 `o`: the device is open (mounted, or in use by a guest or a copy). `null` when unknown (`X`). */
  open: boolean | null;
  target: LvTarget;
  /** Character 8 `z`: newly allocated blocks are zeroed first. */
  zeroing: boolean;
  health: LvHealth;
  /** Character 10 `k`: activation is skipped unless asked for with `-K` (thin snapshots carry it). */
  skipActivation: boolean;
}

/**
 * What a logical volume is, as the adapter tells them apart:
 * - `internal`: a hidden sub-volume (`[pool_tdata]`, `[lvol0_pmspare]`, mirror images and logs);
 * - `thin-pool`: a pool that thin volumes take blocks from;
 * - `snapshot`: a copy-on-write snapshot (`lvcreate -s -L`), with `origin`;
 * - `thin-snapshot`: a thin volume with an origin (`lvcreate -s` of a thin volume, no `-L`);
 * - `thin`: a thin volume without an origin;
 * - `volume`: any other volume holding data (linear, striped, mirror, raid, an origin of snapshots).
 */
export type LvKind = 'volume' | 'thin' | 'thin-pool' | 'snapshot' | 'thin-snapshot' | 'internal';

/** One logical volume of a report. */
export interface LvmLogicalVolume {
  /** `lv_name`, without the brackets LVM puts around internal volumes. */
  name: string;
  vgName: string;
  /** `vg/lv`. */
  fullName: string;
  kind: LvKind;
  /** LVM showed the name in brackets: an internal volume. */
  internal: boolean;
  uuid?: string;
  /** `/dev/vg/lv`; unset for internal volumes and for thin snapshots that were never activated. */
  path?: string;
  sizeBytes?: number;
  attr?: LvAttr;
  /** The origin of a snapshot or thin snapshot (a name in the same group). */
  origin?: string;
  /** The thin pool of a thin volume. */
  pool?: string;
  /** `data_percent` (thin volumes and pools), or `snap_percent` (COW snapshots), 0..100. */
  dataPercent?: number;
  /** `metadata_percent` of a thin pool, 0..100. */
  metadataPercent?: number;
  /** `lv_time`: when the volume was created. */
  createdAt?: Date;
  /** `lv_tags`, split at commas. */
  tags: string[];
  /** `segtype` (`linear`, `thin`, `thin-pool`, `snapshot`, `striped`, ...). */
  segtype?: string;
  /** `thin_id`: the device id of a thin volume inside its pool (what `thin_delta` takes). */
  thinId?: number;
  /** `transaction_id` of a thin pool. */
  transactionId?: number;
  /** `lv_active` is set and the state character says active. */
  active?: boolean;
  /** `lv_snapshot_invalid` (or the state character `I`/`S`): a snapshot whose COW area filled. */
  snapshotInvalid: boolean;
  /** `lv_dm_path`: the device-mapper path (`/dev/mapper/vg-lv`). */
  dmPath?: string;
  /** Every field of the row as LVM printed it. */
  fields: Readonly<Record<string, string>>;
}

/** Whether `lv` is a snapshot: a copy-on-write one or a thin one (both have an `origin`). */
export function isSnapshot(lv: LvmLogicalVolume): boolean {
  return lv.kind === 'snapshot' || lv.kind === 'thin-snapshot';
}

/** One volume group of a report. */
export interface LvmVolumeGroup {
  name: string;
  uuid?: string;
  sizeBytes?: number;
  freeBytes?: number;
  extentSizeBytes?: number;
  /** `vg_attr` as printed (`wz--n-`). */
  attr?: string;
  lvCount?: number;
  pvCount?: number;
  tags: string[];
  fields: Readonly<Record<string, string>>;
}

/** One physical volume of a report. */
export interface LvmPhysicalVolume {
  /** `pv_name`, the device (`/dev/loop0`). */
  name: string;
  /** The group it belongs to; unset for a PV in no group. */
  vgName?: string;
  uuid?: string;
  sizeBytes?: number;
  freeBytes?: number;
  /** `pv_attr` as printed (`a--`). */
  attr?: string;
  fields: Readonly<Record<string, string>>;
}

/** What {@link parseLvmReport} returns; an array is empty when the report has no section of that kind. */
export interface LvmReport {
  logicalVolumes: LvmLogicalVolume[];
  volumeGroups: LvmVolumeGroup[];
  physicalVolumes: LvmPhysicalVolume[];
}

function protocol(message: string, details: Record<string, unknown> = {}) {
  return hvkitError('PROTOCOL', `LVM report: ${message}`, {
    adapter: ADAPTER_ID,
    operation: 'parseLvmReport',
    details,
  });
}

const TYPES: Readonly<Record<string, LvType>> = {
  '-': 'linear',
  o: 'origin',
  O: 'origin-merging',
  s: 'snapshot',
  S: 'snapshot-merging',
  p: 'pvmove',
  v: 'virtual',
  m: 'mirror',
  M: 'mirror-unsynced',
  r: 'raid',
  R: 'raid-unsynced',
  i: 'image',
  I: 'image-unsynced',
  l: 'mirror-log',
  c: 'converting',
  V: 'thin',
  t: 'thin-pool',
  T: 'thin-pool-data',
  e: 'metadata',
  C: 'cache',
  d: 'vdo-pool',
  D: 'vdo-pool-data',
  g: 'integrity',
};
const PERMISSIONS: Readonly<Record<string, LvPermissions>> = {
  w: 'writable',
  r: 'read-only',
  R: 'read-only-activation',
};
const ALLOCATION: Readonly<Record<string, LvAllocation>> = {
  a: 'anywhere',
  c: 'contiguous',
  i: 'inherited',
  l: 'cling',
  n: 'normal',
};
const STATES: Readonly<Record<string, LvState>> = {
  '-': 'inactive',
  a: 'active',
  h: 'historical',
  s: 'suspended',
  I: 'invalid-snapshot',
  S: 'invalid-snapshot-suspended',
  m: 'merge-failed',
  M: 'merge-failed-suspended',
  d: 'no-table',
  i: 'inactive-table',
  c: 'thin-check-needed',
  C: 'thin-check-needed-suspended',
  X: 'unknown',
};
const TARGETS: Readonly<Record<string, LvTarget>> = {
  '-': 'none',
  m: 'mirror',
  r: 'raid',
  s: 'snapshot',
  t: 'thin',
  u: 'unknown',
  v: 'virtual',
  C: 'cache',
  d: 'vdo',
  e: 'writecache',
};
const HEALTH: Readonly<Record<string, LvHealth>> = {
  '-': 'ok',
  p: 'partial',
  r: 'refresh-needed',
  m: 'mismatches',
  w: 'write-mostly',
  R: 'reshape-remove',
  F: 'failed',
  D: 'out-of-data',
  M: 'metadata-read-only',
  E: 'error',
  X: 'unknown',
};

/**
 * Decodes a 10-character `lv_attr` (`man lvs`). A letter this table does not know decodes to `unknown`
 * (newer lvm2 releases add letters); anything that is not 10 printable ASCII characters is refused.
 *
 * @throws HvkitError `PROTOCOL` for a value that is not an `lv_attr`.
 */
export function decodeLvAttr(raw: string): LvAttr {
  if (typeof raw !== 'string') throw new TypeError('decodeLvAttr: attr must be a string.');
  if (!/^[\x21-\x7e]{10}$/.test(raw)) {
    throw protocol(`lv_attr ${JSON.stringify(raw.slice(0, 40))} is not 10 printable characters.`, {
      field: 'lv_attr',
    });
  }
  const c = [...raw] as [string, string, string, string, string, string, string, string, string, string];
  const flag = (ch: string, yes: string, field: string): boolean => {
    if (ch === yes) return true;
    if (ch === '-') return false;
    throw protocol(`lv_attr ${JSON.stringify(raw)}: ${field} is ${JSON.stringify(ch)}, not ${yes} or -.`, {
      field: 'lv_attr',
    });
  };
  const alloc = c[2];
  return {
    raw,
    type: TYPES[c[0]] ?? 'unknown',
    permissions: PERMISSIONS[c[1]] ?? 'unknown',
    allocation: ALLOCATION[alloc.toLowerCase()] ?? 'unknown',
    allocationLocked: alloc !== alloc.toLowerCase(),
    fixedMinor: flag(c[3], 'm', 'fixed minor'),
    state: STATES[c[4]] ?? 'unknown',
    open: c[5] === 'o' ? true : c[5] === '-' ? false : null,
    target: TARGETS[c[6]] ?? 'unknown',
    zeroing: flag(c[7], 'z', 'zeroing'),
    health: HEALTH[c[8]] ?? 'unknown',
    skipActivation: flag(c[9], 'k', 'skip activation'),
  };
}

type Row = Record<string, string>;

function rowOf(value: unknown, section: string, index: number): Row {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw protocol(`${section}[${index}] is not an object.`, { section, index });
  }
  const row: Row = Object.create(null);
  for (const [key, field] of Object.entries(value)) {
    if (typeof field !== 'string') {
      throw protocol(
        `${section}[${index}].${key.slice(0, 64)} is not a string (every value of a report is).`,
        {
          section,
          index,
          field: key.slice(0, 64),
        },
      );
    }
    if (field.length > MAX_FIELD_CHARS) {
      throw protocol(
        `${section}[${index}].${key.slice(0, 64)} is longer than ${MAX_FIELD_CHARS} characters.`,
        {
          section,
          index,
        },
      );
    }
    row[key] = field;
  }
  return Object.freeze(row);
}

/** A non-empty field, or undefined. */
function opt(row: Row, key: string): string | undefined {
  const v = row[key];
  return v === undefined || v === '' ? undefined : v;
}

/** A byte count printed by `--units b --nosuffix` (a trailing `B` is tolerated); undefined when empty. */
function bytes(row: Row, key: string, where: string): number | undefined {
  const v = opt(row, key);
  if (v === undefined) return undefined;
  const m = /^(\d{1,20})B?$/.exec(v);
  const n = m ? Number(m[1]) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw protocol(
      `${where}.${key} ${JSON.stringify(v.slice(0, 40))} is not a byte count (use --units b --nosuffix).`,
      {
        field: key,
      },
    );
  }
  return n;
}

function integer(row: Row, key: string, where: string): number | undefined {
  const v = opt(row, key);
  if (v === undefined) return undefined;
  const n = /^\d{1,15}$/.test(v) ? Number(v) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw protocol(`${where}.${key} ${JSON.stringify(v.slice(0, 40))} is not a non-negative integer.`, {
      field: key,
    });
  }
  return n;
}

function percent(row: Row, key: string, where: string): number | undefined {
  const v = opt(row, key);
  if (v === undefined) return undefined;
  const n = /^\d{1,3}(?:\.\d{1,6})?$/.test(v) ? Number(v) : Number.NaN;
  if (!(n >= 0 && n <= 100)) {
    throw protocol(`${where}.${key} ${JSON.stringify(v.slice(0, 40))} is not a percentage.`, { field: key });
  }
  return n;
}

/** `lv_time`, e.g. `2026-12-07 14:03:11 +0000`. */
function time(row: Row, key: string, where: string): Date | undefined {
  const v = opt(row, key);
  if (v === undefined) return undefined;
  const m = /^(\d{4}-\d{2}-\d{2}) (\d{2}:\d{2}:\d{2}) ([+-]\d{2})(\d{2})$/.exec(v);
  const date = m ? new Date(`${m[1]}T${m[2]}${m[3]}:${m[4]}`) : new Date(Number.NaN);
  if (Number.isNaN(date.getTime())) {
    throw protocol(`${where}.${key} ${JSON.stringify(v.slice(0, 40))} is not a time LVM prints.`, {
      field: key,
    });
  }
  return date;
}

function tags(row: Row, key: string): string[] {
  const v = opt(row, key);
  return v === undefined ? [] : v.split(',').filter((t) => t !== '');
}

/**
 * `lv_snapshot_invalid`: lvm2 2.03 prints `snapshot invalid` when set, `` for a valid snapshot and `unknown`
 * for volumes that are not snapshots (`1`/`0` with `--binary`).
 */
function snapshotInvalidField(row: Row): boolean {
  const v = opt(row, 'lv_snapshot_invalid');
  return v === 'snapshot invalid' || v === '1';
}

function required(row: Row, key: string, where: string): string {
  const v = opt(row, key);
  if (v === undefined) throw protocol(`${where} has no ${key}.`, { field: key });
  return v;
}

function logicalVolume(row: Row, index: number): LvmLogicalVolume {
  const where = `lv[${index}]`;
  const printed = required(row, 'lv_name', where);
  const bracketed = /^\[(.+)\]$/.exec(printed);
  const name = bracketed ? (bracketed[1] as string) : printed;
  const vgName = required(row, 'vg_name', where);
  const attrRaw = opt(row, 'lv_attr');
  const attr = attrRaw === undefined ? undefined : decodeLvAttr(attrRaw);
  const origin = opt(row, 'origin');
  const type = attr?.type;
  const segtype = opt(row, 'segtype');
  const internal =
    bracketed !== null ||
    type === 'image' ||
    type === 'image-unsynced' ||
    type === 'mirror-log' ||
    type === 'metadata' ||
    type === 'thin-pool-data' ||
    type === 'vdo-pool-data' ||
    type === 'pvmove';
  let kind: LvKind;
  if (internal) kind = 'internal';
  else if (type === 'thin-pool' || segtype === 'thin-pool') kind = 'thin-pool';
  else if (type === 'snapshot' || type === 'snapshot-merging' || segtype === 'snapshot') kind = 'snapshot';
  else if (type === 'thin' || segtype === 'thin') kind = origin === undefined ? 'thin' : 'thin-snapshot';
  else kind = 'volume';
  const snapPercent = percent(row, 'snap_percent', where);
  const dataPercent = percent(row, 'data_percent', where);
  const activeField = opt(row, 'lv_active');
  const lv: LvmLogicalVolume = {
    name,
    vgName,
    fullName: `${vgName}/${name}`,
    kind,
    internal,
    tags: tags(row, 'lv_tags'),
    snapshotInvalid:
      snapshotInvalidField(row) ||
      attr?.state === 'invalid-snapshot' ||
      attr?.state === 'invalid-snapshot-suspended',
    fields: row,
  };
  const set = <K extends keyof LvmLogicalVolume>(key: K, value: LvmLogicalVolume[K] | undefined) => {
    if (value !== undefined) lv[key] = value;
  };
  set('uuid', opt(row, 'lv_uuid'));
  set('path', opt(row, 'lv_path'));
  set('sizeBytes', bytes(row, 'lv_size', where));
  set('attr', attr);
  set('origin', origin);
  set('pool', opt(row, 'pool_lv'));
  set('dataPercent', kind === 'snapshot' ? (snapPercent ?? dataPercent) : (dataPercent ?? snapPercent));
  set('metadataPercent', percent(row, 'metadata_percent', where));
  set('createdAt', time(row, 'lv_time', where));
  set('segtype', segtype);
  set('thinId', integer(row, 'thin_id', where));
  set('transactionId', integer(row, 'transaction_id', where));
  set('dmPath', opt(row, 'lv_dm_path'));
  if (activeField !== undefined || attr !== undefined) {
    lv.active =
      attr !== undefined
        ? attr.state !== 'inactive' && attr.state !== 'historical'
        : activeField === 'active' || activeField === '1';
  }
  return lv;
}

function volumeGroup(row: Row, index: number): LvmVolumeGroup {
  const where = `vg[${index}]`;
  const vg: LvmVolumeGroup = {
    name: required(row, 'vg_name', where),
    tags: tags(row, 'vg_tags'),
    fields: row,
  };
  const set = <K extends keyof LvmVolumeGroup>(key: K, value: LvmVolumeGroup[K] | undefined) => {
    if (value !== undefined) vg[key] = value;
  };
  set('uuid', opt(row, 'vg_uuid'));
  set('sizeBytes', bytes(row, 'vg_size', where));
  set('freeBytes', bytes(row, 'vg_free', where));
  set('extentSizeBytes', bytes(row, 'vg_extent_size', where));
  set('attr', opt(row, 'vg_attr'));
  set('lvCount', integer(row, 'lv_count', where));
  set('pvCount', integer(row, 'pv_count', where));
  return vg;
}

function physicalVolume(row: Row, index: number): LvmPhysicalVolume {
  const where = `pv[${index}]`;
  const pv: LvmPhysicalVolume = { name: required(row, 'pv_name', where), fields: row };
  const set = <K extends keyof LvmPhysicalVolume>(key: K, value: LvmPhysicalVolume[K] | undefined) => {
    if (value !== undefined) pv[key] = value;
  };
  set('vgName', opt(row, 'vg_name'));
  set('uuid', opt(row, 'pv_uuid'));
  set('sizeBytes', bytes(row, 'pv_size', where));
  set('freeBytes', bytes(row, 'pv_free', where));
  set('attr', opt(row, 'pv_attr'));
  return pv;
}

/**
 * Parses the JSON report of `lvs`, `vgs`, `pvs` or `lvm fullreport`, run with `--reportformat json` and, for
 * sizes in bytes, `--units b --nosuffix`:
 *
 * ```sh
 * lvs -a --reportformat json --units b --nosuffix -o lv_name,vg_name,lv_attr,lv_size,origin,pool_lv,...
 * ```
 *
 * The report is `{"report":[{"lv":[...]}]}` (`vg`, `pv` for the other commands; `lvm fullreport` has one
 * object per group with `vg`, `pv`, `lv`, `pvseg` and `seg`). Rows of every object are collected; the `seg`
 * and `pvseg` sections and keys other than `report` (such as `log`) are ignored. Values are strings; an
 * empty one is unset. Internal volumes (`[pool_tdata]`) lose their brackets and get `kind: 'internal'`.
 *
 * @example
 * const { logicalVolumes } = parseLvmReport(stdout);
 * const snapshots = logicalVolumes.filter((lv) => lv.kind === 'snapshot');
 *
 * @throws TypeError when `text` is not a string or bytes.
 * @throws HvkitError `PROTOCOL` when the text is not a report of this shape (not JSON, over
 *   {@link MAX_REPORT_BYTES} or {@link MAX_REPORT_ROWS}, a value that is not a string, a size that is not a
 *   byte count, an `lv_attr` that is not 10 characters, a row without its name), naming the first problem.
 */
export function parseLvmReport(text: string | Uint8Array): LvmReport {
  if (typeof text !== 'string' && !(text instanceof Uint8Array)) {
    throw new TypeError('parseLvmReport: text must be a string or a Uint8Array.');
  }
  const size = typeof text === 'string' ? Buffer.byteLength(text) : text.byteLength;
  if (size > MAX_REPORT_BYTES) throw protocol(`${size} bytes, over the ${MAX_REPORT_BYTES} limit.`, { size });
  let value: unknown;
  try {
    value = JSON.parse(
      typeof text === 'string' ? text : new TextDecoder('utf-8', { fatal: true }).decode(text),
    );
  } catch (error) {
    throw protocol(`not valid JSON (${(error as Error).message.slice(0, 200)}).`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw protocol('not a JSON object.');
  const report = (value as { report?: unknown }).report;
  if (!Array.isArray(report)) throw protocol('has no "report" array.');
  const out: LvmReport = { logicalVolumes: [], volumeGroups: [], physicalVolumes: [] };
  let rows = 0;
  for (const [i, part] of report.entries()) {
    if (typeof part !== 'object' || part === null || Array.isArray(part)) {
      throw protocol(`report[${i}] is not an object.`);
    }
    // `lvm fullreport` has one object per group and leaves vg_name out of its lv and pv rows.
    const vgRows = (part as Record<string, unknown>).vg;
    const onlyVg =
      Array.isArray(vgRows) && vgRows.length === 1 && typeof vgRows[0]?.vg_name === 'string'
        ? (vgRows[0].vg_name as string)
        : undefined;
    for (const [section, parse, into] of [
      ['lv', logicalVolume, out.logicalVolumes],
      ['vg', volumeGroup, out.volumeGroups],
      ['pv', physicalVolume, out.physicalVolumes],
    ] as const) {
      const list = (part as Record<string, unknown>)[section];
      if (list === undefined) continue;
      if (!Array.isArray(list)) throw protocol(`report[${i}].${section} is not an array.`);
      rows += list.length;
      if (rows > MAX_REPORT_ROWS) throw protocol(`more than ${MAX_REPORT_ROWS} rows.`);
      for (const [j, raw] of list.entries()) {
        let row = rowOf(raw, section, j);
        if (section !== 'vg' && onlyVg !== undefined && row.vg_name === undefined) {
          row = Object.freeze(Object.assign(Object.create(null), row, { vg_name: onlyVg }));
        }
        (into as unknown[]).push((parse as (row: Row, index: number) => unknown)(row, j));
      }
    }
  }
  return out;
}
