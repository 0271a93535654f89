/**
 * Guest references: the adapter's id string, or `{ id }`, `{ uuid }` or `{ name }`.
 */

import { hvkitError } from '../errors/hvkit-error';
import { quoteForMessage } from '../errors/message';
import type { GuestRef } from '../hypervisor/v1/model';

/** A {@link GuestRef} in one shape: which key it names the guest by, and the value. */
export interface ResolvedGuestRef {
  by: 'id' | 'uuid' | 'name';
  value: string;
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** True for an RFC 4122 UUID in its 8-4-4-4-12 hex form (any case, any version). */
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}

const KEYS = ['id', 'uuid', 'name'] as const;

/**
 * Normalises a {@link GuestRef}. A string is an id. An object names the guest by `id`, `uuid` or `name`;
 * when it has several (e.g. a `Guest` returned by `listGuests`), `id` wins over `uuid` over `name`, and
 * other keys are ignored. A `uuid` is lower-cased.
 *
 * @throws TypeError when `ref` is not a string or an object with a string `id`, `uuid` or `name`.
 * @throws HvkitError `INVALID_ARGUMENT` when the value is empty (or only whitespace), or a `uuid` is not a UUID.
 */
export function resolveGuestRef(ref: GuestRef): ResolvedGuestRef {
  if (typeof ref === 'string') return { by: 'id', value: nonEmpty(ref, 'id') };
  if (typeof ref !== 'object' || ref === null || Array.isArray(ref)) {
    throw new TypeError(
      `A guest reference must be a string or { id }, { uuid } or { name }, got ${describe(ref)}.`,
    );
  }
  const record = ref as Record<string, unknown>;
  for (const key of KEYS) {
    const value = record[key];
    if (value === undefined) continue;
    if (typeof value !== 'string') {
      throw new TypeError(`Guest reference field "${key}" must be a string, got ${describe(value)}.`);
    }
    const text = nonEmpty(value, key);
    if (key === 'uuid') {
      if (!UUID_RE.test(text)) {
        const shown = text.slice(0, 80);
        throw hvkitError(
          'INVALID_ARGUMENT',
          `Guest reference uuid ${quoteForMessage(text, 80)} is not a UUID.`,
          {
            details: { uuid: shown },
          },
        );
      }
      return { by: 'uuid', value: text.toLowerCase() };
    }
    return { by: key, value: text };
  }
  throw new TypeError('A guest reference object must have a string id, uuid or name.');
}

/**
 * A short text for a guest reference in messages, e.g. `name "web-1"`; a value longer than
 * 200 characters is cut, with a marker (see {@link quoteForMessage}).
 */
export function formatGuestRef(ref: GuestRef): string {
  const { by, value } = resolveGuestRef(ref);
  return `${by} ${quoteForMessage(value)}`;
}

function nonEmpty(value: string, key: string): string {
  if (value.trim() === '') {
    throw hvkitError('INVALID_ARGUMENT', `Guest reference ${key} must not be empty.`, {
      details: { field: key },
    });
  }
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value;
}
