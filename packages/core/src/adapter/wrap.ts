/**
 * The one place where the core wraps an adapter: cancellation, a last-resort timeout, debug logging and
 * error normalisation for every capability method. Adapters themselves contain none of this.
 */

import { HvkitError, hvkitError } from '../errors/hvkit-error';
import type { HypervisorAdapterV1, SubscribeOptions } from '../hypervisor/v1/hypervisor-adapter-v1';
import { SPEC_V1_CAPABILITIES, SPEC_V1_METHODS, type SpecV1Method } from '../hypervisor/v1/methods';
import type { GuestEvent } from '../hypervisor/v1/model';
import { redact, redactError } from '../redact';
import { abortError, checkSignal, checkTimeoutMs, DEFAULT_TIMEOUT_MS, withDeadline } from '../signal/abort';
import type { Logger } from '../transport/types';
import { noopLogger } from './logger';
import { assertSpecificationVersion } from './spec-version';

/** Options of {@link wrapAdapter}. */
export interface WrapAdapterOptions {
  /** Receives a debug line per call (operation, duration, outcome). Default: no logging. */
  logger?: Logger;
  /**
   * Timeout of a call that gives no `timeoutMs` (default {@link DEFAULT_TIMEOUT_MS}). It is a last resort:
   * the adapter's own network timeouts should fire first. `Infinity` disables it.
   */
  defaultTimeoutMs?: number;
  /** Per-operation defaults that override `defaultTimeoutMs`, e.g. `{ 'backups.backup': Infinity }`. */
  operationTimeoutsMs?: Readonly<Record<string, number>>;
  /**
   * Secrets to remove from every error a call throws, HvkitErrors included (passwords the adapter was
   * given). Messages are also cleaned and bounded by the HvkitError constructor.
   */
  secrets?: readonly string[];
  /**
   * After a call's signal aborts or its timeout fires, how long to wait for the adapter's own promise to
   * settle before rejecting anyway (default 5000 ms; 0 rejects at once). An adapter
   * that undoes its work on abort (cancels the job, deletes the temporary snapshot) has then finished that
   * when the caller's promise rejects, so the caller can look for leftovers right away. The rejection is the
   * `ABORTED`/`TIMEOUT` error either way.
   */
  abortSettleMs?: number;
}

/** Default {@link WrapAdapterOptions.abortSettleMs}: 5 seconds. */
export const DEFAULT_ABORT_SETTLE_MS = 5000;

const WRAPPED = Symbol.for('hvkit.wrappedAdapter');

/** True when `adapter` came from {@link wrapAdapter}. */
export function isWrappedAdapter(adapter: unknown): boolean {
  return (
    typeof adapter === 'object' && adapter !== null && (adapter as Record<symbol, unknown>)[WRAPPED] === true
  );
}

/**
 * Wraps an adapter so that every capability method:
 * - rejects at once with `ABORTED` when the call's signal has already aborted (the adapter is not called);
 * - runs under a derived signal (the caller's signal plus `timeoutMs`, else the default timeout) that is
 *   passed down to the adapter in place of the caller's, and rejects with `TIMEOUT`/`ABORTED` when it fires
 *   even if the adapter ignores it (no call hangs forever): once the adapter's promise settles (its cleanup
 *   done), but at most `abortSettleMs` later. Methods marked `longRunning` in {@link SPEC_V1_METHODS}
 *   (`backups.backup`, `backups.backupHostConfig`) have no default timeout, only the caller's;
 * - logs one debug line (`adapter`, `operation`, `durationMs`, `outcome`, `code`);
 * - removes `secrets` from whatever is thrown (with {@link redactError}: message, backend message, stack,
 *   details and the `cause` chain, in place), and turns anything that is not an HvkitError into an
 *   HvkitError `REMOTE` naming the adapter and operation, with the original as `cause`. `TypeError`s pass
 *   through otherwise unchanged (they mean API misuse), and so do HvkitErrors.
 *
 * Which methods there are and which argument holds each one's options comes from {@link SPEC_V1_METHODS}.
 * Other methods an adapter adds to a capability object get the same logging, error conversion and default
 * timeout; as the wrapper cannot know which argument holds their options, no signal is passed down to them.
 *
 * `events.subscribe` keeps returning an async iterable (no timeout; errors are converted the same way; an
 * already-aborted signal makes the first `next()` reject with `ABORTED`). `supports`, `connection`, `adapter`,
 * `specificationVersion`, `close()` and `Symbol.asyncDispose` are kept. Other properties of the adapter and
 * of its capability objects stay reachable (through the prototype chain). Wrapping a wrapped adapter
 * returns it unchanged.
 *
 * @throws HvkitError `UNSUPPORTED` for an adapter of another specification version.
 * @throws TypeError for bad options.
 */
export function wrapAdapter<A extends HypervisorAdapterV1>(adapter: A, options: WrapAdapterOptions = {}): A {
  assertSpecificationVersion(adapter);
  if (isWrappedAdapter(adapter)) return adapter;
  const logger = options.logger ?? noopLogger;
  const defaultTimeoutMs = checkTimeoutMs(options.defaultTimeoutMs ?? DEFAULT_TIMEOUT_MS, 'defaultTimeoutMs');
  for (const [op, ms] of Object.entries(options.operationTimeoutsMs ?? {}))
    checkTimeoutMs(ms, `operationTimeoutsMs.${op}`);
  const secrets = options.secrets ?? [];
  const adapterId = adapter.adapter;

  const abortSettleMs = options.abortSettleMs ?? DEFAULT_ABORT_SETTLE_MS;
  if (typeof abortSettleMs !== 'number' || !Number.isFinite(abortSettleMs) || abortSettleMs < 0) {
    throw new TypeError(
      `abortSettleMs must be a finite number of milliseconds >= 0, got ${String(abortSettleMs)}.`,
    );
  }
  const settings: CallSettings = {
    adapterId,
    abortSettleMs,
    logger,
    secrets,
    timeoutFor: (operation, longRunning) =>
      options.operationTimeoutsMs?.[operation] ?? (longRunning ? Infinity : defaultTimeoutMs),
    connectionState: () => adapter.connection?.state,
  };

  const wrapped = Object.create(adapter) as Record<PropertyKey, unknown>;
  for (const capability of SPEC_V1_CAPABILITIES) {
    const inner = adapter[capability] as object | undefined;
    if (inner === undefined || inner === null) continue;
    define(
      wrapped,
      capability,
      capability === 'events'
        ? wrapEvents(inner as NonNullable<HypervisorAdapterV1['events']>, settings)
        : wrapCapability(capability, inner, settings),
    );
  }
  define(wrapped, 'specificationVersion', adapter.specificationVersion);
  define(wrapped, 'adapter', adapterId);
  define(wrapped, 'supports', adapter.supports);
  // The connection state is a report, not a capability: passed through as it is.
  if (adapter.connection !== undefined) define(wrapped, 'connection', adapter.connection);
  const close = async () => {
    const started = Date.now();
    try {
      await adapter.close();
      log(settings, 'close', started, undefined);
    } catch (error) {
      const converted = convertError(error, settings, 'close');
      log(settings, 'close', started, converted);
      throw converted;
    }
  };
  define(wrapped, 'close', close);
  define(wrapped, Symbol.asyncDispose, close);
  define(wrapped, WRAPPED, true);
  return wrapped as unknown as A;
}

interface CallSettings {
  adapterId: string;
  abortSettleMs: number;
  logger: Logger;
  secrets: readonly string[];
  timeoutFor(operation: string, longRunning: boolean): number;
  /** The adapter's connection state, when it reports one. */
  connectionState(): string | undefined;
}

function define(target: object, key: PropertyKey, value: unknown): void {
  Object.defineProperty(target, key, {
    value,
    enumerable: typeof key === 'string',
    configurable: true,
    writable: false,
  });
}

/** Every function property of `object` and its prototypes, up to (not including) Object.prototype. */
function methodNames(object: object): string[] {
  const names = new Set<string>();
  for (
    let proto: object | null = object;
    proto && proto !== Object.prototype;
    proto = Object.getPrototypeOf(proto)
  ) {
    for (const name of Object.getOwnPropertyNames(proto)) {
      if (name === 'constructor') continue;
      const descriptor = Object.getOwnPropertyDescriptor(proto, name);
      if (descriptor && typeof descriptor.value === 'function') names.add(name);
    }
  }
  return [...names];
}

function wrapCapability(
  capability: keyof typeof SPEC_V1_METHODS,
  inner: object,
  settings: CallSettings,
): object {
  const wrapped = Object.create(inner) as Record<string, unknown>;
  const spec = SPEC_V1_METHODS[capability] as Readonly<Record<string, SpecV1Method>>;
  for (const name of methodNames(inner)) {
    const method = (inner as Record<string, unknown>)[name] as (...args: unknown[]) => unknown;
    if (typeof method !== 'function') continue;
    const info = Object.hasOwn(spec, name) ? spec[name] : undefined;
    define(wrapped, name, wrapMethod(inner, method, `${capability}.${name}`, info, settings));
  }
  return wrapped;
}

function wrapMethod(
  self: object,
  method: (...args: unknown[]) => unknown,
  operation: string,
  /** The method's entry in SPEC_V1_METHODS; undefined for a method the adapter added. */
  info: SpecV1Method | undefined,
  settings: CallSettings,
): (...args: unknown[]) => Promise<unknown> {
  const optionsIndex = info?.optionsIndex;
  const context = { adapter: settings.adapterId, operation };
  return async function wrappedMethod(...args: unknown[]): Promise<unknown> {
    const started = Date.now();
    let callOptions: { signal?: AbortSignal; timeoutMs?: number } = {};
    if (optionsIndex !== undefined) {
      const given = args[optionsIndex];
      if (given !== undefined) {
        if (typeof given !== 'object' || given === null) {
          throw new TypeError(`${operation}: options must be an object.`);
        }
        callOptions = given as typeof callOptions;
      }
    }
    const signal = checkSignal(callOptions.signal);
    if (signal?.aborted) {
      const error = abortError(signal, context);
      log(settings, operation, started, error);
      throw error;
    }
    const timeoutMs = callOptions.timeoutMs ?? settings.timeoutFor(operation, info?.longRunning === true);
    try {
      const result = await withDeadline(
        (derived) => {
          const callArgs = args.slice();
          if (optionsIndex !== undefined) {
            while (callArgs.length < optionsIndex) callArgs.push(undefined);
            callArgs[optionsIndex] = { ...callOptions, signal: derived };
          }
          return method.apply(self, callArgs) as Promise<unknown>;
        },
        { signal, timeoutMs, settleMs: settings.abortSettleMs, ...context },
      );
      log(settings, operation, started, undefined);
      return result;
    } catch (error) {
      let converted = convertError(error, settings, operation);
      // A deadline that passes while the adapter is reconnecting is the lost connection's doing: the call
      // waited for it within its deadline and fails with CONNECTION_LOST (retryable), as the spec says.
      if (HvkitError.isInstance(converted, 'TIMEOUT') && settings.connectionState() === 'reconnecting') {
        converted = hvkitError(
          'CONNECTION_LOST',
          `${settings.adapterId} ${operation}: the connection was lost and is still reconnecting after ${
            Date.now() - started
          } ms`,
          { ...context, cause: converted, retryable: true },
        );
      }
      log(settings, operation, started, converted);
      throw converted;
    }
  };
}

function wrapEvents(
  events: NonNullable<HypervisorAdapterV1['events']>,
  settings: CallSettings,
): NonNullable<HypervisorAdapterV1['events']> {
  const operation = 'events.subscribe';
  const context = { adapter: settings.adapterId, operation };
  const wrapped = Object.create(events) as Record<string, unknown>;
  define(wrapped, 'subscribe', (options: SubscribeOptions = {}): AsyncIterable<GuestEvent> => {
    if (typeof options !== 'object' || options === null)
      throw new TypeError(`${operation}: options must be an object.`);
    const signal = checkSignal(options.signal);
    return {
      [Symbol.asyncIterator](): AsyncIterator<GuestEvent> {
        settings.logger.debug('hvkit call', {
          adapter: settings.adapterId,
          operation,
          outcome: 'subscribed',
        });
        if (signal?.aborted) {
          let done = false;
          return {
            next: async () => {
              if (done) return { done: true, value: undefined };
              done = true;
              throw abortError(signal, context);
            },
            return: async () => {
              done = true;
              return { done: true, value: undefined };
            },
          };
        }
        let iterator: AsyncIterator<GuestEvent>;
        try {
          iterator = events.subscribe(options)[Symbol.asyncIterator]();
        } catch (error) {
          throw convertError(error, settings, operation);
        }
        const guard = async <R>(step: () => Promise<R> | R): Promise<R> => {
          try {
            return await step();
          } catch (error) {
            throw convertError(error, settings, operation);
          }
        };
        const result: AsyncIterator<GuestEvent> = {
          next: () => guard(() => iterator.next()),
          return: (value?: unknown) =>
            guard(() =>
              iterator.return
                ? iterator.return(value)
                : ({ done: true, value: undefined } as IteratorResult<GuestEvent>),
            ),
        };
        if (iterator.throw) {
          const innerThrow = iterator.throw.bind(iterator);
          result.throw = (error?: unknown) => guard(() => innerThrow(error));
        }
        return result;
      },
    };
  });
  return wrapped as unknown as NonNullable<HypervisorAdapterV1['events']>;
}

/**
 * Converts what an adapter threw into what the wrapped adapter throws: HvkitErrors and TypeErrors as they
 * are (the adapter's secrets removed, in place), `AbortError`/`TimeoutError` DOMExceptions into
 * `ABORTED`/`TIMEOUT`, anything else into `REMOTE`.
 */
function convertError(error: unknown, settings: CallSettings, operation: string): unknown {
  // The secrets go from the error and its causes first: a converted error keeps the original as `cause`.
  redactError(error, settings.secrets);
  if (HvkitError.isInstance(error)) return error;
  const name = typeof error === 'object' && error !== null ? (error as { name?: unknown }).name : undefined;
  // By name too: a TypeError from another realm is still misuse.
  if (error instanceof TypeError || name === 'TypeError') return error;
  const context = { adapter: settings.adapterId, operation };
  if (name === 'AbortError')
    return hvkitError('ABORTED', `${settings.adapterId} ${operation}: aborted.`, {
      ...context,
      cause: error,
    });
  if (name === 'TimeoutError') {
    return hvkitError('TIMEOUT', `${settings.adapterId} ${operation}: timed out.`, {
      ...context,
      cause: error,
    });
  }
  const raw = error instanceof Error ? error.message : String(error);
  const message = redact(raw, settings.secrets);
  const code = typeof error === 'object' && error !== null ? (error as { code?: unknown }).code : undefined;
  return hvkitError('REMOTE', `${settings.adapterId} ${operation} failed: ${message}`, {
    ...context,
    cause: error,
    backendMessage: message,
    backendCode: typeof code === 'string' || typeof code === 'number' ? code : undefined,
  });
}

function log(settings: CallSettings, operation: string, started: number, error: unknown): void {
  try {
    settings.logger.debug('hvkit call', {
      adapter: settings.adapterId,
      operation,
      durationMs: Date.now() - started,
      outcome: error === undefined ? 'ok' : 'error',
      ...(HvkitError.isInstance(error)
        ? { code: error.code }
        : error === undefined
          ? {}
          : { error: String(error) }),
    });
  } catch {
    // A failing logger must not change the outcome of the call.
  }
}
