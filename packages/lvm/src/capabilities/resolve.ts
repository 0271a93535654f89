/**
 * Finding guests: the volumes a guest reference names, from one `lvs` report.
 */

import {
  formatGuestRef,
  type Guest,
  type GuestRef,
  hvkitError,
  resolveGuestRef,
  type SignalOptions,
} from '@hvkit/core';
import type { AdapterContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { guestOf, isDataVolume } from '../mapping/guests';
import type { LvmLogicalVolume } from '../mapping/report';

/** A guest with its volumes, and every volume of the report it came from. */
export interface ResolvedGuest {
  guest: Guest;
  volumes: LvmLogicalVolume[];
  all: LvmLogicalVolume[];
}

/** Every guest with its volumes. */
export function guestsOf(context: AdapterContext, all: LvmLogicalVolume[]): ResolvedGuest[] {
  if (context.guests === undefined) {
    return all.filter(isDataVolume).map((lv) => ({ guest: guestOf(lv.fullName, [lv]), volumes: [lv], all }));
  }
  const out: ResolvedGuest[] = [];
  for (const [name, ids] of Object.entries(context.guests)) {
    const volumes = ids
      .map((id) => all.find((lv) => lv.fullName === id))
      .filter((lv): lv is LvmLogicalVolume => lv !== undefined);
    // A mapped guest whose volumes are all gone is not listed (its volumes were removed).
    if (volumes.length > 0) out.push({ guest: guestOf(name, volumes), volumes, all });
  }
  return out;
}

/**
 * The guest `ref` names.
 *
 * @throws HvkitError `NOT_FOUND` when no guest matches; TypeError/INVALID_ARGUMENT for a malformed ref.
 */
export async function resolveGuest(
  context: AdapterContext,
  ref: GuestRef,
  options: SignalOptions & { operation: string },
): Promise<ResolvedGuest> {
  const { by, value } = resolveGuestRef(ref);
  const all = await context.client.lvs(undefined, options);
  const found = guestsOf(context, all).find((g) => g.guest[by] === value);
  if (!found) {
    throw hvkitError('NOT_FOUND', `No LVM guest with ${formatGuestRef(ref)} on ${context.client.target}.`, {
      adapter: ADAPTER_ID,
      operation: options.operation,
      details: { [by]: value.slice(0, 200) },
    });
  }
  return found;
}
