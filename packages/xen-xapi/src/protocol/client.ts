/**
 * The XAPI client: JSON-RPC v2 on `/jsonrpc`, falling back for good to XML-RPC on `/` when the host answers
 * `text/xml` (hosts older than XenServer 7.3); sessions (login with an originator, one re-login and retry on
 * `SESSION_INVALID`, logout on close); `HOST_IS_SLAVE` followed once, only to a pool member the client was
 * told about, on the same scheme, port and TLS verification; `Async.*` calls run as tasks, awaited,
 * cancelled with `task.cancel` on abort, their XML-fragment result decoded. Every request has a deadline,
 * reads a bounded body and refuses redirects.
 */

import {
  type AdapterConnection,
  ConnectionStatus,
  type FetchLike,
  fetchErrorToHvkitError,
  HvkitError,
  hvkitError,
  type Logger,
  type ResolvedReconnect,
  readResponseText,
  reconnectWithBackoff,
  type SignalOptions,
  sleep,
  withDeadline,
} from '@hvkit/core';
import { ADAPTER_ID, backendErrorToHvkitError, xapiErrorToHvkitError } from '../errors';
import { parseXapiJson, stringifyXapiJson } from './json';
import type { WireValue } from './wire';
import { decodeXmlRpcResponse, decodeXmlRpcValue, encodeXmlRpcCall } from './xmlrpc';

/** Largest response body read by default, in bytes (256 MiB: `VM.get_all_records` of a large pool). */
export const DEFAULT_MAX_RESPONSE_BYTES = 256 * 1024 * 1024;

/** The wire protocol in use. */
export type XapiTransport = 'json-rpc' | 'xml-rpc';

/** Options of {@link XapiClient}. */
export interface XapiClientOptions {
  /** The host's URL (`https://host` or `https://host:port`); the path is ignored. */
  url: URL;
  fetch: FetchLike;
  /** Timeout of a call without its own `timeoutMs`, in ms. */
  timeoutMs: number;
  /** `auto` (default): JSON-RPC first, XML-RPC for good once the host answers `text/xml`. */
  transport?: 'auto' | XapiTransport;
  /** Sent with the login so the host counts this client's sessions apart (default `hvkit`). */
  originator?: string;
  /**
   * Addresses of the pool's members that a `HOST_IS_SLAVE` answer may send the login to (the client adds
   * the addresses of every host record it reads). A master outside this list is not contacted.
   */
  poolHosts?: readonly string[];
  /** Largest response body, in bytes. */
  maxResponseBytes?: number;
  /** Task polling: first and longest pause between `task.get_record` calls, in ms (default 50 and 1000). */
  taskPollMs?: { min: number; max: number };
  /**
   * What a lost host (a call failing with `CONNECTION_LOST`, or timing out and a
   * {@link LIVENESS_CHECK_TIMEOUT_MS} check failing too) does to the client. Settings: the client is
   * `reconnecting`, checks the host with bounded backoff (its session, or a new login when the host forgot
   * it, e.g. after a toolstack restart) and is `open` again once that works; calls meanwhile wait within
   * their own deadline. `false` (the default here; `connect()` turns it on): the loss closes the client.
   */
  reconnect?: ResolvedReconnect | false;
  /** Receives warnings about losses and reconnects. */
  logger?: Logger;
}

/** How long the liveness check after a timed-out call waits for the host: 5 s. */
export const LIVENESS_CHECK_TIMEOUT_MS = 5000;

/** Longest time one reconnection attempt may take, in ms (or the call timeout when shorter). */
const RECONNECT_ATTEMPT_TIMEOUT_MS = 10_000;

/** Options of one call. */
export interface XapiCallOptions extends SignalOptions {}

/** The session credentials, kept to log in again on `SESSION_INVALID`. */
interface Credentials {
  username: string;
  password: string;
}

/** `host` with IPv6 addresses bracketed, for a URL. */
function urlHost(address: string): string {
  return address.includes(':') && !address.startsWith('[') ? `[${address}]` : address;
}

function bareHost(hostname: string): string {
  return hostname.replace(/^\[|\]$/g, '').toLowerCase();
}

/** The XAPI client of one connection. */
export class XapiClient {
  readonly #options: XapiClientOptions;
  #url: URL;
  #transport: XapiTransport;
  #fixed: boolean;
  #session: string | undefined;
  #credentials: Credentials | undefined;
  #relogin: Promise<void> | undefined;
  #nextId = 1;
  readonly #poolHosts = new Set<string>();
  readonly #status: ConnectionStatus;
  #generation = 0;
  #closed = false;
  /** True from a loss until the host answers again (no logout is sent to a lost host). */
  #hostLost = false;
  #recovering: AbortController | undefined;
  #checking: Promise<void> | undefined;

  constructor(options: XapiClientOptions) {
    this.#options = options;
    this.#status = new ConnectionStatus({ adapter: ADAPTER_ID, target: options.url.origin });
    this.#url = new URL(options.url.origin);
    this.#transport = options.transport === 'xml-rpc' ? 'xml-rpc' : 'json-rpc';
    this.#fixed = options.transport !== undefined && options.transport !== 'auto';
    for (const h of options.poolHosts ?? []) this.#poolHosts.add(bareHost(h));
  }

  /** The host requests go to (an origin; it changes once when a login is sent to the pool master). */
  get origin(): string {
    return this.#url.origin;
  }

  /** The wire protocol in use now. */
  get transport(): XapiTransport {
    return this.#transport;
  }

  /** The fetch this client sends its requests with (the HTTP transfers use it too). */
  get fetch(): FetchLike {
    return this.#options.fetch;
  }

  /** The session ref (a secret: never put it in messages). */
  get session(): string | undefined {
    return this.#session;
  }

  /** The connection state: `open`, `reconnecting` (see {@link XapiClientOptions.reconnect}), `closed`. */
  get connection(): AdapterConnection {
    return this.#status;
  }

  /** True when the client reconnects after a lost host. */
  get reconnects(): boolean {
    return this.#options.reconnect !== undefined && this.#options.reconnect !== false;
  }

  /** Increases with every login: a session-bound token (event.from's) belongs to one generation. */
  get generation(): number {
    return this.#generation;
  }

  /** The default deadline of a call, in ms. */
  get callTimeoutMs(): number {
    return this.#options.timeoutMs;
  }

  /**
   * Resolves once the client is `open`; `CONNECTION_LOST` when it is or becomes `closed`, or when
   * `timeoutMs` passes while reconnecting; `ABORTED` by the signal.
   */
  waitUntilOpen(options: { signal?: AbortSignal; timeoutMs?: number; operation: string }): Promise<void> {
    return this.#status.waitUntilOpen(options);
  }

  /** The `CONNECTION_LOST` (not retryable) of a call on the closed client. */
  closedError(operation: string): HvkitError {
    return this.#status.closedError(operation);
  }

  /**
   * After a timed-out call: resolves once the liveness check it started has decided (running one when
   * none runs); the state is then `open`, or `reconnecting`/`closed` when the host did not answer.
   */
  async livenessChecked(): Promise<void> {
    if (this.#status.state !== 'open' || this.#closed) return;
    if (this.#checking === undefined) this.#checkAlive();
    await this.#checking;
  }

  /** Adds pool member addresses that `HOST_IS_SLAVE` may point to. */
  notePoolHosts(addresses: Iterable<string>): void {
    for (const a of addresses) if (a) this.#poolHosts.add(bareHost(a));
  }

  /** One request, no session handling: the result value, or the XAPI error as an HvkitError. */
  async rpc(method: string, params: readonly WireValue[], options: XapiCallOptions = {}): Promise<unknown> {
    const operation = method.startsWith('session.login') ? 'session.login_with_password' : method;
    const context = { adapter: ADAPTER_ID, operation };
    return withDeadline(
      async (signal) => {
        for (;;) {
          const transport = this.#transport;
          const json = transport === 'json-rpc';
          const id = this.#nextId++;
          const url = new URL(json ? '/jsonrpc' : '/', this.#url);
          const body = json
            ? `{"jsonrpc":"2.0","method":${JSON.stringify(method)},"params":${stringifyXapiJson(params)},"id":${id}}`
            : encodeXmlRpcCall(method, params);
          let response: Response;
          try {
            response = await this.#options.fetch(url, {
              method: 'POST',
              headers: {
                'content-type': json ? 'application/json' : 'text/xml',
                accept: json ? 'application/json' : 'text/xml',
              },
              body,
              redirect: 'manual',
              signal,
            });
          } catch (error) {
            throw fetchErrorToHvkitError(error, { ...context, signal, target: this.origin });
          }
          if (response.status >= 300 && response.status < 400) {
            await response.body?.cancel().catch(() => {});
            throw hvkitError(
              'PROTOCOL',
              `${operation}: the host answered with a redirect (HTTP ${response.status}), which is refused.`,
              {
                ...context,
                backendCode: response.status,
              },
            );
          }
          const text = await readResponseText(response, {
            ...context,
            maxBytes: this.#options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES,
            signal,
            target: this.origin,
          });
          const type = (response.headers.get('content-type') ?? '').split(';')[0]?.trim().toLowerCase() ?? '';
          if (json && type === 'text/xml' && !this.#fixed) {
            // An old host: its XML-RPC handler answered. XML-RPC from now on.
            this.#transport = 'xml-rpc';
            this.#fixed = true;
            continue;
          }
          if (!response.ok) throw backendErrorToHvkitError(response.status, text, { operation });
          this.#fixed = true;
          return json ? this.#jsonResult(text, id, operation) : this.#xmlResult(text, operation);
        }
      },
      { ...options, ...context, defaultTimeoutMs: this.#options.timeoutMs },
    );
  }

  #jsonResult(text: string, id: number, operation: string): unknown {
    const reply = parseXapiJson(text, { operation }) as Record<string, unknown> | null;
    if (typeof reply !== 'object' || reply === null || Array.isArray(reply))
      throw hvkitError('PROTOCOL', `${operation}: the JSON-RPC reply is not an object.`, {
        adapter: ADAPTER_ID,
        operation,
      });
    if (reply.id !== id)
      throw hvkitError(
        'PROTOCOL',
        `${operation}: the JSON-RPC reply has id ${JSON.stringify(reply.id)}, not ${id}.`,
        {
          adapter: ADAPTER_ID,
          operation,
        },
      );
    const error = reply.error;
    if (error !== undefined && error !== null) {
      if (Array.isArray(error)) throw xapiErrorToHvkitError(error, { operation }); // v1
      if (typeof error === 'object') {
        const e = error as { message?: unknown; data?: unknown };
        const data = Array.isArray(e.data) ? e.data : e.data === undefined ? [] : [e.data];
        throw xapiErrorToHvkitError([e.message, ...data], { operation });
      }
      throw hvkitError('PROTOCOL', `${operation}: the JSON-RPC error is not an XAPI error.`, {
        adapter: ADAPTER_ID,
        operation,
      });
    }
    if (!('result' in reply))
      throw hvkitError('PROTOCOL', `${operation}: the JSON-RPC reply has neither result nor error.`, {
        adapter: ADAPTER_ID,
        operation,
      });
    return reply.result;
  }

  #xmlResult(text: string, operation: string): unknown {
    const decoded = decodeXmlRpcResponse(text, { operation });
    if ('fault' in decoded)
      throw hvkitError('PROTOCOL', `${operation}: the host answered with an XML-RPC fault.`, {
        adapter: ADAPTER_ID,
        operation,
        backendCode: typeof decoded.fault.code === 'number' ? decoded.fault.code : undefined,
        backendMessage: typeof decoded.fault.message === 'string' ? decoded.fault.message : undefined,
      });
    const v = decoded.value as Record<string, unknown> | null;
    if (typeof v !== 'object' || v === null || (v.Status !== 'Success' && v.Status !== 'Failure'))
      throw hvkitError(
        'PROTOCOL',
        `${operation}: the XML-RPC result is not an XAPI {Status, Value} struct.`,
        {
          adapter: ADAPTER_ID,
          operation,
        },
      );
    if (v.Status === 'Failure') throw xapiErrorToHvkitError(v.ErrorDescription, { operation });
    return v.Value;
  }

  /**
   * Logs in. `HOST_IS_SLAVE` is followed once to the master it names, when that address is a known pool
   * member; the master's own host records must then list it.
   *
   * @throws HvkitError `AUTH_FAILED` for refused credentials, `CONFLICT` (backendCode `HOST_IS_SLAVE`,
   *   `details.params[0]` the master) when the host is not the master and the master is not a known pool
   *   member, and the transport's errors.
   */
  async login(username: string, password: string, options: XapiCallOptions = {}): Promise<void> {
    this.#credentials = { username, password };
    await this.#login(options, true);
  }

  async #login(options: XapiCallOptions, mayFollow: boolean): Promise<void> {
    const credentials = this.#credentials;
    if (!credentials) throw new TypeError('XapiClient: log in first.');
    try {
      const session = await this.rpc(
        'session.login_with_password',
        [credentials.username, credentials.password, '1.1', this.#options.originator ?? 'hvkit'],
        options,
      );
      if (typeof session !== 'string' || session === '')
        throw hvkitError('PROTOCOL', 'session.login_with_password did not return a session ref.', {
          adapter: ADAPTER_ID,
          operation: 'session.login_with_password',
        });
      this.#session = session;
      this.#generation++;
    } catch (error) {
      if (!HvkitError.isInstance(error) || error.backendCode !== 'HOST_IS_SLAVE') throw error;
      const master = String((error.details?.params as unknown[] | undefined)?.[0] ?? '');
      if (!mayFollow || master === '' || !this.#poolHosts.has(bareHost(master))) {
        throw hvkitError(
          'CONFLICT',
          `${this.origin} is a pool member, not the pool master${master ? ` (the master is ${master})` : ''}; connect to the master${master ? ', or list it in poolHosts to follow it' : ''}.`,
          {
            adapter: ADAPTER_ID,
            operation: 'session.login_with_password',
            backendCode: 'HOST_IS_SLAVE',
            details: { params: master ? [master] : [] },
            cause: error,
          },
        );
      }
      const next = new URL(this.#url.href);
      next.hostname = urlHost(master);
      this.#url = new URL(next.origin);
      await this.#login(options, false);
      // The master's records must list the address we followed: a host outside the pool is refused.
      // (rpc, not call: this may run while the client is reconnecting.)
      const addresses = (await this.rpc(
        'host.get_all_records',
        [this.#session as string],
        options,
      )) as Record<string, { address?: unknown }>;
      const listed = Object.values(addresses ?? {}).some(
        (h) => typeof h?.address === 'string' && bareHost(h.address) === bareHost(master),
      );
      if (!listed) {
        await this.logout();
        throw hvkitError(
          'PROTOCOL',
          `The pool master ${master} does not list itself among the pool's hosts; refused.`,
          {
            adapter: ADAPTER_ID,
            operation: 'session.login_with_password',
          },
        );
      }
    }
  }

  /** Logs in again after `SESSION_INVALID`, once for all the calls that saw the same dead session. */
  async #renew(dead: string | undefined, options: XapiCallOptions): Promise<void> {
    if (this.#session !== dead) return; // someone else renewed it
    this.#relogin ??= this.#login(options, true).finally(() => {
      this.#relogin = undefined;
    });
    await this.#relogin;
  }

  /**
   * Calls `method` with the session as its first parameter. `SESSION_INVALID` (a restarted toolstack, an
   * expired or evicted session) is answered by one new login and one retry. While the client is
   * `reconnecting` the call first waits for it within its own deadline (then `CONNECTION_LOST`,
   * retryable); on a `closed` client it fails with `CONNECTION_LOST`, not retryable.
   */
  async call(
    method: string,
    params: readonly WireValue[] = [],
    options: XapiCallOptions = {},
  ): Promise<unknown> {
    if (this.#status.state === 'closed') throw this.#status.closedError(method);
    if (this.#status.state === 'reconnecting') {
      const started = Date.now();
      const timeoutMs = options.timeoutMs ?? this.#options.timeoutMs;
      await this.#status.waitUntilOpen({ signal: options.signal, timeoutMs, operation: method });
      if (options.timeoutMs !== undefined && Number.isFinite(options.timeoutMs))
        options = { ...options, timeoutMs: Math.max(1, options.timeoutMs - (Date.now() - started)) };
    }
    const session = this.#session;
    if (session === undefined) throw new TypeError('XapiClient: log in first.');
    try {
      try {
        return await this.rpc(method, [session, ...params], options);
      } catch (error) {
        if (!HvkitError.isInstance(error) || error.backendCode !== 'SESSION_INVALID') throw error;
        await this.#renew(session, options);
        return await this.rpc(method, [this.#session as string, ...params], options);
      }
    } catch (error) {
      throw this.#failed(error, method);
    }
  }

  /**
   * A call failed: a lost host (`CONNECTION_LOST`) starts reconnecting, or closes the client without
   * reconnection; a `TIMEOUT` first checks whether the host still answers. Returns the error to throw
   * (`CONNECTION_LOST`, not retryable, once the client is closed).
   */
  #failed(error: unknown, operation: string): unknown {
    if (!HvkitError.isInstance(error)) return error;
    if (this.#closed || this.#status.state === 'closed')
      return error.code === 'CONNECTION_LOST' ? this.#status.closedError(operation) : error;
    if (error.code === 'CONNECTION_LOST')
      return this.#lost(error) ? this.#status.closedError(operation) : error;
    if (error.code === 'TIMEOUT' && this.#status.state === 'open') this.#checkAlive();
    return error;
  }

  /** After a timed-out call: the host must answer `pool.get_all` within 5 s, or it counts as lost. */
  #checkAlive(): void {
    if (this.#checking) return;
    this.#checking = (async () => {
      try {
        await this.rpc('pool.get_all', [this.#session ?? ''], { timeoutMs: LIVENESS_CHECK_TIMEOUT_MS });
      } catch (error) {
        if (HvkitError.isInstance(error) && (error.code === 'CONNECTION_LOST' || error.code === 'TIMEOUT'))
          this.#lost(
            hvkitError('CONNECTION_LOST', `The XAPI host ${this.origin} does not answer.`, {
              adapter: ADAPTER_ID,
              operation: 'pool.get_all',
              cause: error,
            }),
          );
      } finally {
        this.#checking = undefined;
      }
    })();
  }

  /** The host is lost: reconnect, or close (returns true then). */
  #lost(error: HvkitError): boolean {
    if (this.#status.state !== 'open' || this.#closed) return false;
    this.#hostLost = true;
    const settings = this.#options.reconnect;
    if (settings === undefined || settings === false) {
      this.#status.update('closed', error);
      return true;
    }
    this.#options.logger?.warn('XAPI host lost; reconnecting', { message: error.message });
    this.#status.update('reconnecting', error);
    const stop = new AbortController();
    this.#recovering = stop;
    void this.#recover(settings, stop.signal);
    return false;
  }

  /** Checks the host with backoff until it answers and the session works again (a new login if needed). */
  async #recover(settings: ResolvedReconnect, stop: AbortSignal): Promise<void> {
    const outcome = await reconnectWithBackoff({
      status: this.#status,
      settings,
      signal: stop,
      attempt: async (signal) => {
        const o = { signal, timeoutMs: Math.min(this.#options.timeoutMs, RECONNECT_ATTEMPT_TIMEOUT_MS) };
        if (this.#session !== undefined) {
          try {
            await this.rpc('pool.get_all', [this.#session], o);
            return; // the host kept the session (it hung, or the network dropped)
          } catch (error) {
            if (!HvkitError.isInstance(error) || error.backendCode !== 'SESSION_INVALID') throw error;
          }
        }
        await this.#login(o, true); // a restarted toolstack: new sessions only
      },
      giveUpError: (cause) =>
        hvkitError('CONNECTION_LOST', `Reconnecting to the XAPI host ${this.origin} failed.`, {
          adapter: ADAPTER_ID,
          cause,
          retryable: false,
        }),
      onFailedAttempt: (attempt, error) =>
        this.#options.logger?.debug('XAPI reconnect attempt failed', {
          attempt,
          code: HvkitError.isInstance(error) ? error.code : undefined,
        }),
    });
    if (outcome === 'stopped') return;
    this.#recovering = undefined;
    if (outcome === 'open') {
      this.#hostLost = false;
      this.#options.logger?.info('XAPI host reachable again');
    }
  }

  /**
   * Runs `Async.<method>` as a task and waits for it: its result decoded from the XML fragment XAPI keeps in
   * `task.result`, its failure as the XAPI error. When `signal` aborts (or the deadline passes) the task is
   * cancelled with `task.cancel` before this rejects. The task is destroyed at the end either way.
   */
  async callAsync(
    method: string,
    params: readonly WireValue[] = [],
    options: XapiCallOptions = {},
  ): Promise<unknown> {
    const operation = `Async.${method}`;
    const context = { adapter: ADAPTER_ID, operation };
    const task = await this.call(operation, params, options);
    if (typeof task !== 'string' || !task.startsWith('OpaqueRef:'))
      throw hvkitError('PROTOCOL', `${operation} did not return a task ref.`, context);
    const poll = this.#options.taskPollMs ?? { min: 50, max: 1000 };
    let finished = false;
    try {
      return await withDeadline(
        async (signal) => {
          let delay = poll.min;
          for (;;) {
            const rec = (await this.call('task.get_record', [task], {
              signal,
              timeoutMs: Number.POSITIVE_INFINITY,
            })) as Record<string, unknown>;
            const status = rec?.status;
            if (status === 'success') {
              finished = true;
              return typeof rec.result === 'string'
                ? decodeXmlRpcValue(rec.result, { operation })
                : rec.result;
            }
            if (status === 'failure') {
              finished = true;
              throw xapiErrorToHvkitError(rec.error_info, { operation });
            }
            if (status === 'cancelled') {
              finished = true;
              throw hvkitError('ABORTED', `${operation}: the task was cancelled on the host.`, {
                ...context,
                backendCode: 'TASK_CANCELLED',
              });
            }
            if (status !== 'pending' && status !== 'cancelling')
              throw hvkitError(
                'PROTOCOL',
                `${operation}: unknown task status ${JSON.stringify(status)}.`,
                context,
              );
            await sleep(delay, { signal, ...context });
            delay = Math.min(poll.max, delay * 2);
          }
        },
        { ...options, ...context, defaultTimeoutMs: this.#options.timeoutMs },
      );
    } finally {
      if (!finished) await this.#cancelTask(task);
      await this.call('task.destroy', [task], { timeoutMs: 5000 }).catch(() => {});
    }
  }

  /** Cancels a task and waits (briefly) until the host says it is no longer pending. */
  async #cancelTask(task: string): Promise<void> {
    await this.call('task.cancel', [task], { timeoutMs: 5000 }).catch(() => {});
    for (let i = 0; i < 20; i++) {
      const rec = (await this.call('task.get_record', [task], { timeoutMs: 5000 }).catch(() => undefined)) as
        | Record<string, unknown>
        | undefined;
      if (!rec || (rec.status !== 'pending' && rec.status !== 'cancelling')) return;
      await sleep(50);
    }
  }

  /** Ends the session (best effort, bounded by `timeoutMs`, default 5 s); the client can log in again afterwards. */
  async logout(options: { timeoutMs?: number } = {}): Promise<void> {
    const session = this.#session;
    this.#session = undefined;
    if (session === undefined) return;
    await this.rpc('session.logout', [session], { timeoutMs: options.timeoutMs ?? 5000 }).catch(() => {});
  }

  /**
   * Closes the client for good: stops reconnecting, reports `closed` (calls waiting for a reconnect fail
   * at once), and logs out (best effort, at most `timeoutMs`; not at all while the host is lost).
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#recovering?.abort();
    const lost = this.#hostLost || this.#status.state !== 'open';
    this.#status.update('closed');
    if (lost) this.#session = undefined;
    else await this.logout(options);
  }
}
