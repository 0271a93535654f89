/**
 * Reading properties in bulk: RetrievePropertiesEx and its ContinueRetrievePropertiesEx token loop
 * (CancelRetrievePropertiesEx when the caller stops early), ContainerViews over the inventory, and the
 * decoded result as `{ obj, props, missing }` per object.
 */

import { deriveSignal, type HvkitError, throwIfAborted } from '@hvkit/core';
import { ADAPTER_ID, methodFaultToError } from '../../errors';
import type { CallOptions } from './client';
import { setField } from './decode';
import type { DataObject, LocalizedMethodFault, MoRef } from './schema';
import type { VimSession } from './session';

/** Which properties of which type to read (`PropertySpec`). */
export interface PropertySpecInput {
  /** Managed object type; also matches subtypes (`Network` covers `DistributedVirtualPortgroup`). */
  type: string;
  /** Property paths (`config.hardware.numCPU`). */
  pathSet?: readonly string[];
  /** Read all properties (slow; prefer paths). */
  all?: boolean;
}

/** Where to start and how to traverse (`ObjectSpec`). Selection specs need `_type` (`TraversalSpec`). */
export interface ObjectSpecInput {
  obj: MoRef;
  skip?: boolean;
  selectSet?: readonly DataObject[];
}

/** A `PropertyFilterSpec`. */
export interface PropertyFilterSpecInput {
  propSet: readonly PropertySpecInput[];
  objectSet: readonly ObjectSpecInput[];
  reportMissingObjectsInResults?: boolean;
}

/** A property the server could not return for an object (e.g. no privilege, an invalid path). */
export interface MissingPropertyInfo {
  path: string;
  /** The fault type (`NoPermission`, `InvalidProperty`, `NotAuthenticated`...). */
  faultType: string;
  /** The fault as a typed error (`details.faultSource` = `property`). */
  error: HvkitError;
}

/** One object of a result: its properties by path (unset properties are absent) and what was missing. */
export interface ObjectProperties {
  obj: MoRef;
  props: Record<string, unknown>;
  missing: MissingPropertyInfo[];
}

/** Options of the retrieve functions. */
export interface RetrieveOptions {
  signal?: AbortSignal;
  /**
   * Deadline of the whole retrieval, every page included (default: none overall; each call has the
   * client's default deadline).
   */
  timeoutMs?: number;
  /** Largest number of objects per page the server should return (`RetrieveOptions.maxObjects`). */
  maxObjects?: number;
}

interface WireObjectContent {
  obj: MoRef;
  propSet?: { name: string; val?: unknown }[];
  missingSet?: { path: string; fault?: LocalizedMethodFault }[];
}
interface WireRetrieveResult {
  token?: string;
  objects?: WireObjectContent[];
}

function toObjectProperties(content: WireObjectContent): ObjectProperties {
  const props: Record<string, unknown> = {};
  for (const p of content.propSet ?? []) setField(props, p.name, p.val);
  const missing = (content.missingSet ?? []).map((m) => {
    const error = methodFaultToError(m.fault, {
      source: 'property',
      path: m.path,
      operation: 'retrieveProperties',
    });
    return { path: m.path, faultType: String(error.backendCode), error };
  });
  return { obj: content.obj, props, missing };
}

function checkSpecs(specSet: readonly PropertyFilterSpecInput[]): void {
  if (!Array.isArray(specSet) || specSet.length === 0) {
    throw new TypeError('specSet must be a non-empty array of property filter specs.');
  }
  for (const spec of specSet) {
    if (!Array.isArray(spec?.propSet) || !Array.isArray(spec.objectSet)) {
      throw new TypeError('Each filter spec needs propSet and objectSet arrays.');
    }
  }
}

function checkMaxObjects(maxObjects: number | undefined): void {
  if (maxObjects !== undefined && !(Number.isSafeInteger(maxObjects) && maxObjects > 0)) {
    throw new TypeError('maxObjects must be a positive integer.');
  }
}

/** The paths to materialise: all requested ones, or `undefined` (everything) when a spec reads `all`. */
function requestedPaths(specSet: readonly PropertyFilterSpecInput[]): ReadonlySet<string> | undefined {
  const paths = new Set<string>();
  for (const spec of specSet) {
    for (const p of spec.propSet) {
      if (p.all) return undefined;
      for (const path of p.pathSet ?? []) paths.add(path);
    }
  }
  return paths;
}

function wireSpecs(specSet: readonly PropertyFilterSpecInput[]): Record<string, unknown>[] {
  // Types are implied by RetrievePropertiesEx's signature; only selectSet entries need _type.
  return specSet.map((spec) => ({
    propSet: spec.propSet.map((p) => ({
      type: p.type,
      all: p.all,
      pathSet: p.pathSet ? [...p.pathSet] : undefined,
    })),
    objectSet: spec.objectSet.map((o) => ({
      obj: o.obj,
      skip: o.skip,
      selectSet: o.selectSet ? [...o.selectSet] : undefined,
    })),
    reportMissingObjectsInResults: spec.reportMissingObjectsInResults,
  }));
}

/**
 * Reads properties page by page: RetrievePropertiesEx, then ContinueRetrievePropertiesEx while the server
 * returns a token. Only the requested paths are materialised. When the caller stops early (break, an
 * error, an abort), the open token is released with CancelRetrievePropertiesEx (in the background).
 *
 * @throws HvkitError as the session's calls; TypeError for malformed specs.
 */
export async function* retrievePropertiesPages(
  session: VimSession,
  specSet: readonly PropertyFilterSpecInput[],
  options: RetrieveOptions = {},
): AsyncGenerator<ObjectProperties[], void, undefined> {
  checkSpecs(specSet);
  checkMaxObjects(options.maxObjects);
  const pc = session.serviceContent.propertyCollector;
  const properties = requestedPaths(specSet);
  const derived = deriveSignal(
    { signal: options.signal, timeoutMs: options.timeoutMs ?? Number.POSITIVE_INFINITY },
    { adapter: ADAPTER_ID, operation: 'retrieveProperties' },
  );
  const callOptions: CallOptions = { signal: derived.signal, properties };
  let token: string | undefined;
  try {
    const first = await session.call<WireRetrieveResult | undefined>(
      'RetrievePropertiesEx',
      pc,
      {
        specSet: wireSpecs(specSet),
        options: { maxObjects: options.maxObjects },
      },
      callOptions,
    );
    token = first?.token;
    yield (first?.objects ?? []).map(toObjectProperties);
    while (token !== undefined) {
      throwIfAborted(derived.signal, { adapter: ADAPTER_ID, operation: 'retrieveProperties' });
      const next = await session.call<WireRetrieveResult | undefined>(
        'ContinueRetrievePropertiesEx',
        pc,
        { token },
        callOptions,
      );
      token = next?.token;
      yield (next?.objects ?? []).map(toObjectProperties);
    }
  } finally {
    derived.dispose();
    if (token !== undefined && !session.closed) {
      const abandoned = token;
      session
        .call('CancelRetrievePropertiesEx', pc, { token: abandoned }, { timeoutMs: 10_000 })
        .catch(() => {});
    }
  }
}

/**
 * Reads properties and collects every page (see {@link retrievePropertiesPages}). When a property comes
 * back missing with `NotAuthenticated` and `SessionManager.currentSession` shows the session is gone, logs
 * in again and retrieves once more (a per-property NotAuthenticated with a live session is reported as
 * missing).
 */
export async function retrieveProperties(
  session: VimSession,
  specSet: readonly PropertyFilterSpecInput[],
  options: RetrieveOptions = {},
): Promise<ObjectProperties[]> {
  for (let attempt = 0; ; attempt++) {
    const generation = session.generation;
    const out: ObjectProperties[] = [];
    for await (const page of retrievePropertiesPages(session, specSet, options)) out.push(...page);
    const notAuthenticated = out.some((o) => o.missing.some((m) => m.faultType === 'NotAuthenticated'));
    if (attempt === 0 && notAuthenticated && (await session.reloginIfSessionLost(generation, options)))
      continue;
    return out;
  }
}

/** Options of {@link createContainerView}. */
export interface ContainerViewInput {
  /** Where to start (default: the root folder). */
  container?: MoRef;
  /** Managed object types to include (`['VirtualMachine']`). */
  types: readonly string[];
  /** Include the whole subtree (default true). */
  recursive?: boolean;
}

/** Creates a ContainerView (a session-scoped object; destroy it with {@link destroyView}). */
export async function createContainerView(
  session: VimSession,
  input: ContainerViewInput,
  options: CallOptions = {},
): Promise<MoRef> {
  if (!Array.isArray(input?.types) || input.types.some((t) => typeof t !== 'string' || t === '')) {
    throw new TypeError('types must be an array of managed object type names.');
  }
  const viewManager = session.serviceContent.viewManager;
  if (!viewManager) {
    throw new TypeError('This server has no ViewManager (not a vSphere endpoint with views).');
  }
  return session.call<MoRef>(
    'CreateContainerView',
    viewManager,
    {
      container: input.container ?? session.serviceContent.rootFolder,
      type: [...input.types],
      recursive: input.recursive ?? true,
    },
    options,
  );
}

/** Destroys a view. */
export async function destroyView(
  session: VimSession,
  view: MoRef,
  options: CallOptions = {},
): Promise<void> {
  await session.call('DestroyView', view, undefined, options);
}

/** The filter spec that reads `paths` of every `type` object in a ContainerView. */
export function containerViewSpec(
  view: MoRef,
  type: string,
  paths: readonly string[],
): PropertyFilterSpecInput {
  return {
    propSet: [{ type, pathSet: paths }],
    objectSet: [
      {
        obj: view,
        skip: true,
        selectSet: [{ _type: 'TraversalSpec', type: 'ContainerView', path: 'view' }],
      },
    ],
  };
}

/** Input of {@link retrieveContainer}. */
export interface RetrieveContainerInput {
  /** Managed object type (`VirtualMachine`). */
  type: string;
  /** Property paths to read. */
  paths: readonly string[];
  /** Where to start (default: the root folder). */
  container?: MoRef;
  /** Include the whole subtree (default true). */
  recursive?: boolean;
}

/**
 * Reads `paths` of every `type` object under `container`: CreateContainerView, the RetrievePropertiesEx
 * token loop, DestroyView. When the session was re-established on the way (which invalidates the view),
 * starts over once with a new view.
 */
export async function retrieveContainer(
  session: VimSession,
  input: RetrieveContainerInput,
  options: RetrieveOptions = {},
): Promise<ObjectProperties[]> {
  if (typeof input?.type !== 'string' || input.type === '') throw new TypeError('type must be a type name.');
  if (!Array.isArray(input.paths) || input.paths.some((p) => typeof p !== 'string' || p === '')) {
    throw new TypeError('paths must be an array of property paths.');
  }
  checkMaxObjects(options.maxObjects);
  const derived = deriveSignal(
    { signal: options.signal, timeoutMs: options.timeoutMs ?? Number.POSITIVE_INFINITY },
    { adapter: ADAPTER_ID, operation: 'retrieveContainer' },
  );
  const signal = derived.signal;
  try {
    for (let attempt = 0; ; attempt++) {
      const generation = session.generation;
      const view = await createContainerView(
        session,
        { types: [input.type], container: input.container, recursive: input.recursive },
        { signal },
      );
      let done = false;
      try {
        const result = await retrieveProperties(session, [containerViewSpec(view, input.type, input.paths)], {
          signal,
          maxObjects: options.maxObjects,
        });
        done = true;
        return result;
      } catch (error) {
        if (attempt === 0 && session.generation !== generation) continue;
        throw error;
      } finally {
        if (session.generation === generation && !session.closed) {
          const destroying = destroyView(session, view, { timeoutMs: 10_000 }).catch(() => {});
          // Wait for the clean-up only on success; an abort or error returns at once.
          if (done && !signal.aborted) await destroying;
        }
      }
    }
  } finally {
    derived.dispose();
  }
}
