/**
 * A logged-in vSphere session over {@link VimSoapClient}: service content, Login/Logout, a re-login when a
 * call's own SOAP fault says the session is gone (once per call, never in a loop; never for faults nested
 * in a task or a property), and a keep-alive that calls `CurrentTime` when the session has been idle.
 */

import {
  type AdapterConnection,
  abortError,
  ConnectionStatus,
  checkSignal,
  deriveSignal,
  HvkitError,
  hvkitError,
  type Logger,
  type ReconnectOptions,
  type ResolvedReconnect,
  raceAbort,
  reconnectDelayMs,
  resolveReconnect,
  sleep,
} from '@hvkit/core';
import { ADAPTER_ID, isSessionLost } from '../../errors';
import {
  type CallOptions,
  DEFAULT_CALL_TIMEOUT_MS,
  DEFAULT_VIM_VERSION,
  type VimClientOptions,
  VimSoapClient,
} from './client';
import type { SoapArgs } from './envelope';
import type { MoRef, ServiceContent, UserSession } from './schema';

/** Default idle time after which the keep-alive calls `CurrentTime`: 10 minutes (govmomi's default). */
export const DEFAULT_KEEPALIVE_MS = 10 * 60_000;

/** The `ServiceInstance` managed object, the root of everything. */
export const SERVICE_INSTANCE: MoRef = Object.freeze({ type: 'ServiceInstance', value: 'ServiceInstance' });

/** Options of {@link connectVim}. */
export interface VimSessionOptions extends VimClientOptions {
  /** User name, e.g. `administrator@vsphere.local`. Without it the session is not logged in. */
  username?: string;
  /** Password. Kept in memory for re-logins; never logged or put in an error. */
  password?: string;
  /**
   * Call `CurrentTime` after this many ms without a call, so the server does not expire the session
   * (default {@link DEFAULT_KEEPALIVE_MS}); `false` disables it. The timer never keeps the process alive.
   */
  keepAliveMs?: number | false;
  /** Log in again (once per call) when the session has expired (default true). */
  relogin?: boolean;
  /**
   * Pick the newest API version the server lists in `vimServiceVersions.xml` (default true unless `version`
   * is given).
   */
  negotiateVersion?: boolean;
  /** Receives warnings from the keep-alive and re-logins. */
  logger?: Logger;
  /**
   * What a lost server (a call failing with `CONNECTION_LOST`, or timing out and a 5 s liveness check
   * failing too) does to the session. With reconnection (settings, or `true` for the defaults) the
   * session is `reconnecting`: it checks the server with bounded backoff (RetrieveServiceContent, then a
   * re-login when the server forgot the session) and is `open` again once that works; calls meanwhile
   * wait within their own deadline. With `false` the session is `closed` by the loss, and every later call
   * fails with `CONNECTION_LOST` (not retryable). Default `false`; the adapter's `connect()` turns it on.
   */
  reconnect?: ReconnectOptions | boolean;
}

/** How long the liveness check after a timed-out call waits for the server: 5 s. */
export const LIVENESS_CHECK_TIMEOUT_MS = 5000;

/** Default time `close()` gives Logout before it releases the connections anyway: 2 s. */
export const DEFAULT_CLOSE_TIMEOUT_MS = 2000;

/** Options of a session call. */
export interface SessionCallOptions extends CallOptions {}

/** Methods that are never retried after a re-login (they are the login machinery themselves). */
const NO_RELOGIN: ReadonlySet<string> = new Set([
  'Login',
  'Logout',
  'LoginByToken',
  'RetrieveServiceContent',
]);

/** Counters, for tests and diagnostics. */
export interface VimSessionStats {
  /** Successful logins, the first one included. */
  logins: number;
  /** Re-logins after a lost session. */
  relogins: number;
  /** Keep-alive calls made. */
  keepAlives: number;
}

/**
 * A vSphere session. Get one with {@link connectVim}. Every call has a deadline and takes a signal; a call
 * whose SOAP fault is `NotAuthenticated` triggers one re-login (shared by concurrent calls) and one retry.
 */
export class VimSession {
  /** The SOAP transport (URL, version, session cookie). */
  readonly client: VimSoapClient;
  /** The service content read at connect time. */
  readonly serviceContent: ServiceContent;
  readonly #username: string | undefined;
  readonly #password: string | undefined;
  readonly #relogin: boolean;
  readonly #keepAliveMs: number | undefined;
  readonly #logger: Logger | undefined;
  #userSession: UserSession | undefined;
  #generation = 0;
  #loginInFlight: Promise<void> | undefined;
  #timer: ReturnType<typeof setTimeout> | undefined;
  #closed = false;
  readonly #stats: VimSessionStats = { logins: 0, relogins: 0, keepAlives: 0 };
  readonly #status: ConnectionStatus;
  readonly #reconnect: ResolvedReconnect | false;
  readonly #callTimeoutMs: number;
  #recovering: AbortController | undefined;
  #checking: Promise<void> | undefined;
  /** True from a loss until the server answers again (no Logout is sent to a lost server). */
  #serverLost = false;

  /** Use {@link connectVim}. */
  constructor(client: VimSoapClient, serviceContent: ServiceContent, options: VimSessionOptions) {
    this.client = client;
    this.serviceContent = serviceContent;
    this.#username = options.username;
    this.#password = options.password;
    this.#relogin = options.relogin !== false;
    this.#keepAliveMs =
      options.keepAliveMs === false ? undefined : (options.keepAliveMs ?? DEFAULT_KEEPALIVE_MS);
    this.#logger = options.logger;
    this.#reconnect = resolveReconnect(options.reconnect ?? false);
    this.#callTimeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
    this.#status = new ConnectionStatus({ adapter: ADAPTER_ID, target: client.url.origin });
  }

  /**
   * The state of the connection to the server: `open`; `reconnecting` after a loss (with `reconnect`);
   * `closed` after `close()`/`logout()` or a loss without reconnection. See {@link VimSessionOptions.reconnect}.
   */
  get connection(): AdapterConnection {
    return this.#status;
  }

  /**
   * Resolves once the session is `open` (at once when it is); `CONNECTION_LOST` when it is or becomes
   * `closed`, or when `timeoutMs` passes while reconnecting; `ABORTED` by the signal.
   */
  waitUntilOpen(options: { signal?: AbortSignal; timeoutMs?: number; operation: string }): Promise<void> {
    return this.#status.waitUntilOpen(options);
  }

  /** The default deadline of a call, ms (the client's `timeoutMs`). */
  get callTimeoutMs(): number {
    return this.#callTimeoutMs;
  }

  /** True when the session reconnects after a lost server (see {@link VimSessionOptions.reconnect}). */
  get reconnects(): boolean {
    return this.#reconnect !== false;
  }

  /** The logged-in user session (from Login), or `undefined` before login and after logout. */
  get userSession(): UserSession | undefined {
    return this.#userSession;
  }

  /** Increases with every login; session-scoped objects (views, collectors) belong to one generation. */
  get generation(): number {
    return this.#generation;
  }

  /** Login, re-login and keep-alive counters. */
  get stats(): Readonly<VimSessionStats> {
    return { ...this.#stats };
  }

  /** True once {@link close} or {@link logout} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  #checkOpen(operation: string): void {
    if (this.#closed) {
      throw hvkitError('CONNECTION_LOST', 'The vSphere session is closed.', {
        adapter: ADAPTER_ID,
        operation,
        retryable: false,
      });
    }
    if (this.#status.state === 'closed') throw this.#status.closedError(operation);
  }

  /**
   * Reports the state as `closed` from now on (the adapter's `close()` started), so that calls waiting for
   * a reconnect fail at once, and stops reconnecting.
   */
  reportClosed(): void {
    this.#recovering?.abort();
    this.#status.update('closed');
  }

  /**
   * A call failed: a lost server (`CONNECTION_LOST`) starts reconnecting, or closes the session without
   * reconnection; a `TIMEOUT` first checks whether the server still answers. Returns the error to throw
   * (not retryable once the session is closed by the loss).
   */
  #failed(error: unknown): unknown {
    if (!HvkitError.isInstance(error) || this.#closed || this.#status.state === 'closed') return error;
    if (error.code === 'CONNECTION_LOST') {
      return this.#lost(error) ? this.#status.closedError(error.operation ?? 'call') : error;
    }
    if (error.code === 'TIMEOUT' && this.#status.state === 'open') this.#checkAlive();
    return error;
  }

  /** After a timed-out call: the server must answer CurrentTime within 5 s, or it counts as lost. */
  #checkAlive(): void {
    if (this.#checking) return;
    this.#checking = (async () => {
      try {
        await this.client.invoke('CurrentTime', SERVICE_INSTANCE, undefined, {
          timeoutMs: LIVENESS_CHECK_TIMEOUT_MS,
        });
      } catch (error) {
        if (!HvkitError.isInstance(error)) return;
        if (error.code === 'CONNECTION_LOST' || error.code === 'TIMEOUT') {
          this.#lost(
            hvkitError('CONNECTION_LOST', `The vSphere server ${this.client.url.origin} does not answer.`, {
              adapter: ADAPTER_ID,
              operation: 'soap.CurrentTime',
              cause: error,
            }),
          );
        }
      } finally {
        this.#checking = undefined;
      }
    })();
  }

  /** The server is lost: reconnect, or close (returns true then). */
  #lost(error: HvkitError): boolean {
    if (this.#status.state !== 'open' || this.#closed) return false;
    this.#serverLost = true;
    if (this.#reconnect === false) {
      this.#stopKeepAlive();
      this.#status.update('closed', error);
      return true;
    }
    this.#logger?.warn('vSphere server lost; reconnecting', { message: error.message });
    this.#status.update('reconnecting', error);
    const stop = new AbortController();
    this.#recovering = stop;
    void this.#recover(this.#reconnect, stop.signal);
    return false;
  }

  /** Checks the server with backoff until it answers and the session is logged in again. */
  async #recover(settings: ResolvedReconnect, stop: AbortSignal): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await sleep(reconnectDelayMs(attempt, settings), { signal: stop });
      } catch {
        return;
      }
      if (stop.aborted || this.#status.state !== 'reconnecting') return;
      try {
        const timeoutMs = Math.min(this.#callTimeoutMs, 10_000);
        await this.client.invoke('RetrieveServiceContent', SERVICE_INSTANCE, undefined, {
          signal: stop,
          timeoutMs,
        });
        if (this.#userSession !== undefined && !(await this.isSessionActive({ signal: stop, timeoutMs }))) {
          await this.#login(stop, true, timeoutMs);
        }
      } catch (error) {
        if (stop.aborted) return;
        const e = HvkitError.isInstance(error) ? error : undefined;
        this.#logger?.debug('vSphere reconnect attempt failed', { attempt, code: e?.code });
        if (e?.code === 'AUTH_FAILED' || e?.code === 'PERMISSION_DENIED' || attempt >= settings.maxAttempts) {
          this.#recovering = undefined;
          this.#status.update(
            'closed',
            e ??
              hvkitError('CONNECTION_LOST', 'Reconnecting to the vSphere server failed.', {
                adapter: ADAPTER_ID,
                cause: error,
                retryable: false,
              }),
          );
          return;
        }
        continue;
      }
      if (stop.aborted) return;
      this.#recovering = undefined;
      this.#serverLost = false;
      this.#logger?.info('vSphere server reachable again', { attempt });
      this.#status.update('open');
      this.#touch();
      return;
    }
  }

  /**
   * Calls `method` on `thisRef`. When the call's own SOAP fault is `NotAuthenticated` and the session was
   * logged in with a password, logs in again (once, shared with concurrent calls) and retries once; a
   * second `NotAuthenticated` is thrown. The deadline (`timeoutMs`) covers the re-login and the retry.
   *
   * @throws HvkitError as {@link VimSoapClient.invoke}; `CONNECTION_LOST` after close.
   */
  async call<T = unknown>(
    method: string,
    thisRef: MoRef,
    args?: SoapArgs,
    options: SessionCallOptions = {},
  ): Promise<T> {
    this.#checkOpen(`soap.${method}`);
    checkSignal(options.signal);
    const context = { adapter: ADAPTER_ID, operation: `soap.${method}` };
    if (this.#status.state === 'reconnecting') {
      // Waits for the server within the call's deadline (then CONNECTION_LOST, retryable).
      const started = Date.now();
      const timeoutMs = options.timeoutMs ?? this.#callTimeoutMs;
      await this.#status.waitUntilOpen({ signal: options.signal, timeoutMs, operation: context.operation });
      if (options.timeoutMs !== undefined) {
        options = { ...options, timeoutMs: Math.max(1, options.timeoutMs - (Date.now() - started)) };
      }
    }
    // An explicit timeoutMs bounds the whole call (re-login and retry included); without one, each attempt
    // (and the re-login) gets the client's default deadline.
    const derived = deriveSignal(
      { signal: options.signal, timeoutMs: options.timeoutMs ?? Number.POSITIVE_INFINITY },
      context,
    );
    const callOptions: CallOptions = {
      ...options,
      signal: derived.signal,
      timeoutMs: options.timeoutMs === undefined ? undefined : Number.POSITIVE_INFINITY,
    };
    try {
      const generation = this.#generation;
      try {
        const result = (await this.client.invoke(method, thisRef, args, callOptions)) as T;
        this.#touch();
        return result;
      } catch (error) {
        if (!this.#canRelogin(method, error)) throw error;
        this.#logger?.warn('vSphere session expired; logging in again', { method });
        await this.#reloginOnce(generation, derived.signal);
        const result = (await this.client.invoke(method, thisRef, args, callOptions)) as T;
        this.#touch();
        return result;
      }
    } catch (error) {
      if (derived.signal.aborted && !HvkitError.isInstance(error)) throw abortError(derived.signal, context);
      throw this.#failed(error);
    } finally {
      derived.dispose();
    }
  }

  #canRelogin(method: string, error: unknown): boolean {
    return (
      this.#relogin &&
      !this.#closed &&
      this.#password !== undefined &&
      this.#userSession !== undefined &&
      !NO_RELOGIN.has(method) &&
      isSessionLost(error)
    );
  }

  /**
   * Logs in again unless another call already did since `generation`. Concurrent callers share one Login
   * (bounded by the client's default deadline); each waits only as long as its own signal allows.
   */
  async #reloginOnce(generation: number, signal: AbortSignal | undefined): Promise<void> {
    if (this.#generation !== generation) return;
    if (!this.#loginInFlight) {
      this.#loginInFlight = this.#login(undefined, true).finally(() => {
        this.#loginInFlight = undefined;
      });
    }
    await raceAbort(this.#loginInFlight, signal, { adapter: ADAPTER_ID, operation: 'login' });
  }

  async #login(signal: AbortSignal | undefined, relogin: boolean, timeoutMs?: number): Promise<void> {
    if (this.#username === undefined || this.#password === undefined) {
      throw new TypeError('This session has no username and password to log in with.');
    }
    const sessionManager = this.serviceContent.sessionManager;
    if (!sessionManager) {
      throw hvkitError('UNSUPPORTED', 'The server has no SessionManager.', {
        adapter: ADAPTER_ID,
        operation: 'login',
      });
    }
    // A stale cookie must not be sent with Login.
    this.client.clearCookies();
    const userSession = (await this.client.invoke(
      'Login',
      sessionManager,
      { userName: this.#username, password: this.#password },
      { signal, timeoutMs },
    )) as UserSession;
    this.#userSession = userSession;
    this.#generation++;
    this.#stats.logins++;
    if (relogin) this.#stats.relogins++;
    this.#touch();
  }

  /**
   * Logs in with the session's user name and password (done by {@link connectVim}; call it again only after
   * {@link logout} was not used, e.g. to switch a session created without `login`).
   *
   * @throws HvkitError `AUTH_FAILED` for a wrong user name or password (the message never holds the password).
   */
  async login(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<UserSession> {
    this.#checkOpen('login');
    await this.#login(checkSignal(options.signal), false, options.timeoutMs);
    return this.#userSession as UserSession;
  }

  /**
   * Ends the server-side session, stops the keep-alive and marks this session closed. A session that
   * already expired is not an error.
   */
  async logout(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#stopKeepAlive();
    this.reportClosed();
    const sessionManager = this.serviceContent.sessionManager;
    try {
      if (this.#userSession !== undefined && sessionManager) {
        await this.client.invoke('Logout', sessionManager, undefined, options);
      }
    } catch (error) {
      if (!isSessionLost(error)) throw error;
    } finally {
      this.#userSession = undefined;
      this.client.clearCookies();
    }
  }

  /**
   * Logs out (best effort: at most `timeoutMs`, default {@link DEFAULT_CLOSE_TIMEOUT_MS}, 2 s; not at all
   * while the server is lost) and closes the connection pool the session created.
   */
  async close(options: { timeoutMs?: number } = {}): Promise<void> {
    try {
      if (!this.#closed) {
        if (!this.#serverLost) {
          await this.logout({ timeoutMs: options.timeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS });
        } else {
          this.#closed = true;
          this.reportClosed();
        }
      }
    } catch (error) {
      this.#logger?.warn('vSphere logout failed while closing', {
        code: HvkitError.isInstance(error) ? error.code : undefined,
      });
    } finally {
      this.#closed = true;
      this.#stopKeepAlive();
      await this.client.close();
    }
  }

  /** Same as {@link close}. */
  [Symbol.asyncDispose](): Promise<void> {
    return this.close();
  }

  /** The server's clock (`ServiceInstance.CurrentTime`); also what the keep-alive calls. */
  async currentTime(options: SessionCallOptions = {}): Promise<Date> {
    return this.call<Date>('CurrentTime', SERVICE_INSTANCE, undefined, options);
  }

  /**
   * Whether the server still knows this session, read from `SessionManager.currentSession` (which is
   * unset, or missing with NotAuthenticated, when it does not). No re-login happens here.
   */
  async isSessionActive(options: { signal?: AbortSignal; timeoutMs?: number } = {}): Promise<boolean> {
    const sessionManager = this.serviceContent.sessionManager;
    if (!sessionManager) return false;
    const result = (await this.client.invoke(
      'RetrievePropertiesEx',
      this.serviceContent.propertyCollector,
      {
        specSet: [
          {
            propSet: [{ type: 'SessionManager', pathSet: ['currentSession'] }],
            objectSet: [{ obj: sessionManager }],
          },
        ],
        options: {},
      },
      options,
    )) as { objects?: { propSet?: { name: string; val?: unknown }[] }[] } | undefined;
    const prop = result?.objects?.[0]?.propSet?.find((p) => p.name === 'currentSession');
    return typeof prop?.val === 'object' && prop.val !== null;
  }

  /**
   * Re-establishes the session when a nested NotAuthenticated fault (in a property collector result)
   * turns out to mean the session is gone: checks `currentSession` and logs in again when it is unset.
   * Returns true when it logged in again. Used by the property collector; safe to call any time.
   */
  async reloginIfSessionLost(generation: number, options: { signal?: AbortSignal } = {}): Promise<boolean> {
    if (!this.#relogin || this.#closed || this.#password === undefined || this.#userSession === undefined) {
      return false;
    }
    if (this.#generation !== generation) return true;
    if (await this.isSessionActive(options)) return false;
    this.#logger?.warn('vSphere session expired (found through a property fault); logging in again');
    await this.#reloginOnce(generation, options.signal);
    return true;
  }

  #touch(): void {
    if (this.#keepAliveMs === undefined || this.#closed) return;
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#keepAlive(), this.#keepAliveMs);
    this.#timer.unref?.();
  }

  #stopKeepAlive(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #keepAlive(): void {
    this.#timer = undefined;
    if (this.#closed || this.#userSession === undefined) return;
    this.#stats.keepAlives++;
    this.call('CurrentTime', SERVICE_INSTANCE, undefined, { timeoutMs: 30_000 }).catch((error: unknown) => {
      this.#logger?.warn('vSphere keep-alive failed', {
        code: HvkitError.isInstance(error) ? error.code : undefined,
        message: error instanceof Error ? error.message : String(error),
      });
      // Try again after another idle period; a later call re-logs in if the session is gone.
      this.#touch();
    });
  }
}

/**
 * Connects to a vSphere SDK endpoint: negotiates the API version (`vimServiceVersions.xml`), reads the
 * service content and logs in when `username` is given. Fails fast with a typed error.
 *
 * @example
 * const session = await connectVim({ url: 'https://vc.example/sdk', username, password,
 *   tls: { thumbprint: 'AA:BB:...' } });
 * try { ... } finally { await session.close(); }
 *
 * @throws HvkitError `AUTH_FAILED` (bad login, untrusted certificate, thumbprint mismatch),
 *   `CONNECTION_LOST`, `TIMEOUT`, `ABORTED`, `PROTOCOL` (not a vSphere endpoint), `INVALID_ARGUMENT`
 *   (bad URL or settings; empty user name).
 */
export async function connectVim(
  options: VimSessionOptions,
  callOptions: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<VimSession> {
  if (typeof options !== 'object' || options === null) throw new TypeError('connectVim needs options.');
  if (options.username !== undefined && (typeof options.username !== 'string' || options.username === '')) {
    throw hvkitError('INVALID_ARGUMENT', 'username must be a non-empty string.', { adapter: ADAPTER_ID });
  }
  if (options.username !== undefined && typeof options.password !== 'string') {
    throw new TypeError('password must be a string when username is given.');
  }
  if (
    options.keepAliveMs !== undefined &&
    options.keepAliveMs !== false &&
    !(
      typeof options.keepAliveMs === 'number' &&
      options.keepAliveMs > 0 &&
      Number.isFinite(options.keepAliveMs)
    )
  ) {
    throw new TypeError('keepAliveMs must be a positive number of ms or false.');
  }
  const client = new VimSoapClient(options);
  const derived = deriveSignal(callOptions, {
    adapter: ADAPTER_ID,
    operation: 'connect',
    defaultTimeoutMs: 60_000,
  });
  try {
    const signal = derived.signal;
    if (options.negotiateVersion ?? options.version === undefined) {
      try {
        client.version = (await client.serviceVersions({ signal }))[0] ?? DEFAULT_VIM_VERSION;
      } catch (error) {
        // Only a missing or unreadable version list falls back; network and TLS failures are real.
        if (!HvkitError.isInstance(error, 'PROTOCOL')) throw error;
      }
    }
    const serviceContent = (await client.invoke('RetrieveServiceContent', SERVICE_INSTANCE, undefined, {
      signal,
    })) as ServiceContent;
    if (serviceContent?._type !== 'ServiceContent' || !serviceContent.propertyCollector) {
      throw hvkitError('PROTOCOL', 'RetrieveServiceContent returned no service content.', {
        adapter: ADAPTER_ID,
        operation: 'connect',
      });
    }
    const session = new VimSession(client, serviceContent, options);
    if (options.username !== undefined) await session.login({ signal });
    return session;
  } catch (error) {
    await client.close().catch(() => {});
    throw error;
  } finally {
    derived.dispose();
  }
}
