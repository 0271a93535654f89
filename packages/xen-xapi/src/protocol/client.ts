/**
 * The wire client of the xen-xapi adapter: JSON over HTTP through an injectable `fetch` (core's
 * `createHttpFetch` by default: undici, keep-alive, verified TLS). Every request has a deadline, reads at
 * most {@link MAX_RESPONSE_BYTES}, and refuses redirects (`redirect: 'manual'`), so a hostile or broken
 * server can neither hang a call, exhaust memory nor send the token elsewhere.
 */

import {
  type FetchLike,
  fetchErrorToHvkitError,
  hvkitError,
  readResponseText,
  type SignalOptions,
  withDeadline,
} from '@hvkit/core';
import { ADAPTER_ID, backendErrorToHvkitError } from '../errors';

/** Largest response body read, in bytes (1 MiB). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** What the backend says about itself (`GET version`). */
export interface BackendHello {
  product: string;
  version: string;
  build?: string;
}

/** Options of {@link XenXapiClient}. */
export interface XenXapiClientOptions {
  /** Base URL of the API; request paths are resolved against it. */
  baseUrl: URL;
  fetch: FetchLike;
  /** Sent as `Authorization: Bearer <token>`. */
  token?: string;
  /** Timeout of a request without its own `timeoutMs`, in ms. */
  timeoutMs: number;
}

/** The JSON-over-HTTP client. */
export class XenXapiClient {
  readonly #options: XenXapiClientOptions;
  readonly #base: URL;

  constructor(options: XenXapiClientOptions) {
    this.#options = options;
    this.#base = new URL(
      options.baseUrl.href.endsWith('/') ? options.baseUrl.href : `${options.baseUrl.href}/`,
    );
  }

  /** Where requests go (an origin, never carrying a secret). */
  get target(): string {
    return this.#base.origin;
  }

  /**
   * `GET <path>` and the JSON body.
   *
   * @throws HvkitError: the status's code for an error response (see `errors.ts`), `PROTOCOL` for a redirect,
   *   a body above {@link MAX_RESPONSE_BYTES} or one that is not JSON, `TIMEOUT`/`ABORTED`,
   *   `CONNECTION_LOST` for network failures.
   */
  async getJson(path: string, options: SignalOptions = {}): Promise<unknown> {
    const url = new URL(path.replace(/^\/+/, ''), this.#base);
    const operation = `GET ${url.pathname}`;
    const context = { adapter: ADAPTER_ID, operation };
    return withDeadline(
      async (signal) => {
        const headers: Record<string, string> = { accept: 'application/json' };
        if (this.#options.token !== undefined) headers.authorization = `Bearer ${this.#options.token}`;
        let response: Response;
        try {
          response = await this.#options.fetch(url, { method: 'GET', headers, redirect: 'manual', signal });
        } catch (error) {
          throw fetchErrorToHvkitError(error, { ...context, signal, target: this.target });
        }
        if (response.status >= 300 && response.status < 400) {
          await response.body?.cancel().catch(() => {});
          throw hvkitError(
            'PROTOCOL',
            `${operation}: the server answered with a redirect (HTTP ${response.status}), which is refused.`,
            {
              ...context,
              backendCode: response.status,
            },
          );
        }
        const text = await readResponseText(response, {
          ...context,
          maxBytes: MAX_RESPONSE_BYTES,
          signal,
          target: this.target,
        });
        if (!response.ok) throw backendErrorToHvkitError(response.status, text, { operation });
        try {
          return JSON.parse(text) as unknown;
        } catch (error) {
          throw hvkitError('PROTOCOL', `${operation}: the response is not JSON.`, {
            ...context,
            cause: error,
          });
        }
      },
      { ...options, ...context, defaultTimeoutMs: this.#options.timeoutMs },
    );
  }

  /** What the server says about itself; connect calls it first, so it fails fast. */
  async hello(options: SignalOptions = {}): Promise<BackendHello> {
    return parseHello(await this.getJson('version', options));
  }
}

/**
 * Checks the shape of a `version` answer.
 *
 * @throws HvkitError `PROTOCOL` when it is not `{ product: string, version: string, build?: string }`.
 */
export function parseHello(body: unknown): BackendHello {
  const b = (typeof body === 'object' && body !== null ? body : {}) as Record<string, unknown>;
  if (
    typeof b.product !== 'string' ||
    typeof b.version !== 'string' ||
    (b.build !== undefined && typeof b.build !== 'string')
  ) {
    throw hvkitError('PROTOCOL', 'The version answer is not { product, version, build? } strings.', {
      adapter: ADAPTER_ID,
      operation: 'hello',
    });
  }
  return {
    product: b.product,
    version: b.version,
    ...(typeof b.build === 'string' ? { build: b.build } : {}),
  };
}
