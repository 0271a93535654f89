/**
 * LVM names, checked before any command runs. LVM allows `A-Z a-z 0-9 + _ . -` in volume group and logical
 * volume names, not starting with `-`, not `.` or `..`, at most 127 characters (`man lvm`, "VALID NAMES");
 * logical volume names cannot start with `snapshot` or `pvmove` nor contain the suffixes LVM keeps for its
 * internal volumes. Everything else (spaces, quotes, `$`, `;`, `/`, newlines) is refused with
 * `INVALID_ARGUMENT`, so a name never reaches a command line it could change.
 */

import { hvkitError } from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

const NAME = /^[A-Za-z0-9+_.][A-Za-z0-9+_.-]{0,126}$/;
const RESERVED_LV_PREFIXES = ['snapshot', 'pvmove'];
const RESERVED_LV_PARTS = [
  '_cdata',
  '_cmeta',
  '_corig',
  '_cpool',
  '_cvol',
  '_wcorig',
  '_mimage',
  '_mlog',
  '_pmspare',
  '_rimage',
  '_rmeta',
  '_tdata',
  '_tmeta',
  '_vdata',
  '_vorigin',
];

function bad(what: string, name: string, why: string, operation?: string) {
  return hvkitError('INVALID_ARGUMENT', `${what} ${JSON.stringify(name.slice(0, 200))} ${why}.`, {
    adapter: ADAPTER_ID,
    ...(operation ? { operation } : {}),
    details: { reason: 'invalid-name' },
  });
}

function checkCommon(what: string, name: unknown, operation?: string): string {
  if (typeof name !== 'string') throw new TypeError(`${what} must be a string.`);
  if (name === '.' || name === '..') throw bad(what, name, 'is not a valid LVM name', operation);
  if (!NAME.test(name)) {
    throw bad(
      what,
      name,
      'is not a valid LVM name (1-127 of A-Z a-z 0-9 + _ . -, not starting with -)',
      operation,
    );
  }
  return name;
}

/** Checks a volume group name. @throws HvkitError `INVALID_ARGUMENT`; TypeError for a non-string. */
export function checkVgName(name: unknown, operation?: string): string {
  return checkCommon('Volume group name', name, operation);
}

/** Checks a logical volume name (also the names LVM reserves). @throws HvkitError `INVALID_ARGUMENT`. */
export function checkLvName(name: unknown, operation?: string): string {
  const lv = checkCommon('Logical volume name', name, operation);
  if (RESERVED_LV_PREFIXES.some((p) => lv.startsWith(p))) {
    throw bad(
      'Logical volume name',
      lv,
      `starts with a prefix LVM reserves (${RESERVED_LV_PREFIXES.join(', ')})`,
      operation,
    );
  }
  const part = RESERVED_LV_PARTS.find((p) => lv.includes(p));
  if (part)
    throw bad(
      'Logical volume name',
      lv,
      `contains ${part}, which LVM reserves for internal volumes`,
      operation,
    );
  return lv;
}

/** A logical volume by group and name. */
export interface LvId {
  vg: string;
  lv: string;
}

/**
 * Parses a volume id `vg/lv` (the id of guests and storage volumes), checking both names.
 *
 * @throws HvkitError `INVALID_ARGUMENT` for anything else; TypeError for a non-string.
 */
export function parseLvId(id: unknown, operation?: string): LvId {
  if (typeof id !== 'string') throw new TypeError('A volume id must be a string "vg/lv".');
  const slash = id.indexOf('/');
  if (slash < 0 || id.indexOf('/', slash + 1) >= 0) {
    throw bad('Volume id', id, 'is not "<volume group>/<logical volume>"', operation);
  }
  return { vg: checkVgName(id.slice(0, slash), operation), lv: checkLvName(id.slice(slash + 1), operation) };
}

/** `vg/lv`. */
export function lvIdString(id: LvId): string {
  return `${id.vg}/${id.lv}`;
}

/** The device node udev creates for an active volume: `/dev/<vg>/<lv>` (names already checked). */
export function lvDevicePath(id: LvId): string {
  return `/dev/${id.vg}/${id.lv}`;
}

/**
 * The device-mapper name LVM gives an active volume: `<vg>-<lv>` with every `-` inside either name doubled
 * (`vg-a/my-data` is `vg--a-my--data`), as `dmsetup` takes it (names already checked).
 */
export function lvDmName(id: LvId): string {
  return `${id.vg.replaceAll('-', '--')}-${id.lv.replaceAll('-', '--')}`;
}
