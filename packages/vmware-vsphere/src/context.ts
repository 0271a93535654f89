/**
 * What every capability of one adapter shares: the vim25 session, the fetch downloads go through, the
 * session URL, the vAPI tagging client, settings from `connect`, and helpers to read objects and resolve
 * guest references.
 */

import {
  type FetchLike,
  formatGuestRef,
  type GuestRef,
  HvkitError,
  hvkitError,
  type Logger,
  resolveGuestRef,
} from '@hvkit/core';
import { ADAPTER_ID } from './errors';
import {
  createContainerView,
  destroyView,
  type ObjectProperties,
  type PropertySpecInput,
  retrieveProperties,
} from './protocol/soap/property-collector';
import type { MoRef } from './protocol/soap/schema';
import type { VimSession } from './protocol/soap/session';
import type { VapiTagging } from './protocol/vapi';

/** Internal state shared by the capability objects. */
export interface VsphereContext {
  session: VimSession;
  /** The fetch of the session (the adapter's own undici pool, or the `fetch` option); downloads use it. */
  fetch: FetchLike;
  /** The session's SOAP URL (`https://vc.example/sdk`); downloads stay on its origin. */
  url: URL;
  /** The vAPI REST tagging client, undefined on ESXi or with `labels: 'custom-attributes'`. */
  tagging: VapiTagging | undefined;
  /** Idle deadline of backup downloads, ms (see `VmwareVsphereOptions.backupIdleTimeoutMs`). */
  backupIdleTimeoutMs: number;
  /** Aborts when `close()` starts: change feeds end. */
  closeSignal: AbortSignal;
  logger: Logger | undefined;
}

/** True when connected to vCenter (`about.apiType` VirtualCenter), false for an ESXi host. */
export function isVcenter(ctx: VsphereContext): boolean {
  return ctx.session.serviceContent.about?.apiType === 'VirtualCenter';
}

/** The objects of one type in a property collector result. */
export function propsOf(list: ObjectProperties[], type: string): ObjectProperties[] {
  return list.filter((o) => o.obj.type === type);
}

/** Reads several types through one ContainerView in one RetrievePropertiesEx. */
export async function retrieveView(
  ctx: VsphereContext,
  propSet: PropertySpecInput[],
  signal?: AbortSignal,
): Promise<ObjectProperties[]> {
  const session = ctx.session;
  const types = [...new Set(propSet.map((p) => p.type))];
  const view = await createContainerView(session, { types }, { signal });
  try {
    return await retrieveProperties(
      session,
      [
        {
          propSet,
          objectSet: [
            {
              obj: view,
              skip: true,
              selectSet: [{ _type: 'TraversalSpec', type: 'ContainerView', path: 'view' }],
            },
          ],
        },
      ],
      { signal },
    );
  } finally {
    await destroyView(session, view, { timeoutMs: 10_000 }).catch(() => {});
  }
}

/** Reads properties of one object (`{}` when the server returns nothing for it). */
export async function readObject(
  ctx: VsphereContext,
  obj: MoRef,
  paths: readonly string[],
  signal?: AbortSignal,
): Promise<Record<string, unknown>> {
  const [content] = await retrieveProperties(
    ctx.session,
    [{ propSet: [{ type: obj.type, pathSet: [...paths] }], objectSet: [{ obj }] }],
    { signal },
  );
  return content?.props ?? {};
}

function notFound(ref: GuestRef, operation: string): HvkitError {
  return hvkitError('NOT_FOUND', `No guest matches ${formatGuestRef(ref)}.`, {
    adapter: ADAPTER_ID,
    operation,
  });
}

/**
 * Finds the VM a reference names: an id is its moref (`vm-42`, one RetrievePropertiesEx tells whether it
 * exists); a `{ uuid }` matches `config.instanceUuid` first, then the BIOS `config.uuid`; a `{ name }`
 * matching several VMs is a `CONFLICT`.
 *
 * @throws HvkitError `NOT_FOUND`, `CONFLICT`.
 */
export async function resolveVm(
  ctx: VsphereContext,
  ref: GuestRef,
  operation: string,
  signal?: AbortSignal,
): Promise<MoRef> {
  const { by, value } = resolveGuestRef(ref);
  if (by === 'id') {
    // An id is a moref: one RetrievePropertiesEx tells whether it exists.
    const obj = { type: 'VirtualMachine', value };
    try {
      const [found] = await retrieveProperties(
        ctx.session,
        [{ propSet: [{ type: 'VirtualMachine', pathSet: ['name'] }], objectSet: [{ obj }] }],
        { signal },
      );
      if (found?.obj.type === 'VirtualMachine' && found.obj.value === value) return found.obj;
    } catch (error) {
      if (!HvkitError.isInstance(error, 'NOT_FOUND')) throw error;
    }
    throw notFound(ref, operation);
  }
  const vms = await retrieveView(
    ctx,
    [{ type: 'VirtualMachine', pathSet: ['name', 'config.instanceUuid', 'config.uuid'] }],
    signal,
  );
  const matches = vms.filter((o) => {
    if (by === 'name') return o.props.name === value;
    const ids = [o.props['config.instanceUuid'], o.props['config.uuid']].map((u) =>
      String(u ?? '').toLowerCase(),
    );
    const instance = ids[0];
    // instanceUuid first: a BIOS uuid only counts when no VM has that instance uuid.
    return (
      instance === value ||
      (ids[1] === value &&
        !vms.some((v) => String(v.props['config.instanceUuid'] ?? '').toLowerCase() === value))
    );
  });
  if (matches.length === 0) throw notFound(ref, operation);
  if (matches.length > 1) {
    throw hvkitError('CONFLICT', `${matches.length} guests match ${formatGuestRef(ref)}; use the id.`, {
      adapter: ADAPTER_ID,
      operation,
      details: { ids: matches.map((m) => m.obj.value) },
    });
  }
  return (matches[0] as ObjectProperties).obj;
}
