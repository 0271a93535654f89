/**
 * Refusing option keys nobody reads. A misspelt or foreign option (`tls: { pinnedSha256 }` where the
 * adapter pins `thumbprint`) would otherwise be accepted and do nothing, and the caller would believe it
 * took effect.
 */

import { quoteForMessage } from '../errors/message';

/**
 * The keys an options object accepts: a list of names, or a record whose keys are the names and whose
 * values are `true` (any value) or the spec of a nested options object, checked the same way when the
 * value given is a plain object.
 */
export type OptionKeySpec = readonly string[] | { readonly [key: string]: true | OptionKeySpec };

/**
 * An {@link OptionKeySpec} naming every key of the options type `T`; use it with `satisfies` so that a new
 * option cannot be added to the type and forgotten in the list.
 *
 * @example
 * const KEYS = { url: true, tls: ['ca', 'servername'], signal: true } as const satisfies OptionKeysOf<MyOptions>;
 */
export type OptionKeysOf<T> = { readonly [K in keyof T]-?: true | OptionKeySpec };

const IDENTIFIER = /^[A-Za-z_$][\w$]*$/;
const MAX_LISTED_UNKNOWN = 5;

function showKey(key: string): string {
  return IDENTIFIER.test(key) ? key : quoteForMessage(key, 60);
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

/**
 * Throws a `TypeError` (API misuse) when the options object `value` has an own enumerable key that
 * `allowed` does not name, at any level `allowed` describes. The message names the unknown key with its
 * path and lists the accepted keys at that level, e.g. `vmware-vsphere connect: unknown option
 * tls.pinnedSha256; tls accepts ca, thumbprint, insecureSkipVerify, servername.`
 *
 * `undefined` is accepted (no options). Symbol keys are ignored. A nested value that is not a plain object
 * (`false`, a class instance such as an `SshClient`) is left to the option's own validation.
 *
 * @param where who is checking, for the message (`vmware-vsphere connect`, `createHttpFetch`).
 * @throws TypeError when `value` is neither `undefined` nor an object, or has an unknown key.
 */
export function checkOptionKeys(value: unknown, allowed: OptionKeySpec, where: string): void {
  if (value === undefined) return;
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TypeError(
      `${where}: options must be an object, got ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}.`,
    );
  }
  checkLevel(value as Record<string, unknown>, allowed, where, '');
}

function checkLevel(
  value: Record<string, unknown>,
  allowed: OptionKeySpec,
  where: string,
  path: string,
): void {
  const names: readonly string[] = Array.isArray(allowed) ? allowed : Object.keys(allowed);
  const unknown = Object.keys(value).filter((key) => !names.includes(key));
  if (unknown.length > 0) {
    const shown = unknown.slice(0, MAX_LISTED_UNKNOWN).map((key) => `${path}${showKey(key)}`);
    const more =
      unknown.length > MAX_LISTED_UNKNOWN ? ` (and ${unknown.length - MAX_LISTED_UNKNOWN} more)` : '';
    const level = path === '' ? 'accepted options' : `${path.slice(0, -1)} accepts`;
    throw new TypeError(
      `${where}: unknown option${unknown.length > 1 ? 's' : ''} ${shown.join(', ')}${more}; ` +
        `${level}: ${names.join(', ')}.`,
    );
  }
  if (Array.isArray(allowed)) return;
  for (const [key, spec] of Object.entries(allowed as Record<string, true | OptionKeySpec>)) {
    if (spec === true) continue;
    const nested = value[key];
    if (isPlainObject(nested)) checkLevel(nested, spec, where, `${path}${key}.`);
  }
}
