/**
 * The vAPI REST tagging endpoints (`/rest/com/vmware/cis/...`): session, categories, tags and
 * tag associations. vCenter (and vcsim with its REST endpoints) serves them; an ESXi host does not.
 *
 * Every request goes to the session's own origin only (redirects are never followed, so neither the
 * basic credentials nor the `vmware-api-session-id` header can be sent elsewhere), has a deadline, and
 * reads at most {@link DEFAULT_VAPI_MAX_RESPONSE_BYTES} of JSON.
 */

import {
  abortError,
  deriveSignal,
  type FetchLike,
  fetchErrorToHvkitError,
  HvkitError,
  hvkitError,
  readResponseText,
} from '@hvkit/core';
import { ADAPTER_ID } from '../errors';

/** Default deadline of one vAPI request (login included): 60 s. */
export const DEFAULT_VAPI_TIMEOUT_MS = 60_000;
/** Largest vAPI JSON response read: 4 MiB (tens of thousands of tag ids). Larger is `PROTOCOL`. */
export const DEFAULT_VAPI_MAX_RESPONSE_BYTES = 4 * 1024 * 1024;

/** An id for a URL path: `urn:vmomi:...` ids keep their colons (as govmomi sends them). */
function pathId(id: string): string {
  return encodeURIComponent(id).replaceAll('%3A', ':');
}

/** A tag with its category name. */
export interface VapiTag {
  id: string;
  name: string;
  categoryId: string;
  category?: string;
}

/** Options of {@link VapiTagging}. */
export interface VapiTaggingOptions {
  /** Server origin, e.g. `https://vc.example`. */
  origin: string;
  fetch: FetchLike;
  username: string;
  password: string;
  /** Deadline of one request, ms (default {@link DEFAULT_VAPI_TIMEOUT_MS}); a call's signal can cut it short. */
  timeoutMs?: number;
  /** Largest response body read (default {@link DEFAULT_VAPI_MAX_RESPONSE_BYTES}). */
  maxResponseBytes?: number;
}

/** A small client of the vAPI tagging service. Logs in lazily; `available()` tells whether the server has it. */
export class VapiTagging {
  readonly #options: VapiTaggingOptions;
  #sessionId: string | undefined;
  #available: boolean | undefined;

  constructor(options: VapiTaggingOptions) {
    this.#options = options;
  }

  /**
   * One request to `/rest<path>` on the session's origin, under its own deadline. Redirects are refused
   * (`PROTOCOL`), transport failures are typed (`CONNECTION_LOST`, `TIMEOUT`, `ABORTED`), and the body is
   * read up to the size bound.
   */
  async #request(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    auth = false,
  ): Promise<{ status: number; json: unknown }> {
    const operation = `vapi.${method} ${path.split('?')[0]}`;
    const context = { adapter: ADAPTER_ID, operation };
    const origin = this.#options.origin;
    const derived = deriveSignal(
      { signal, timeoutMs: this.#options.timeoutMs },
      { ...context, defaultTimeoutMs: DEFAULT_VAPI_TIMEOUT_MS },
    );
    try {
      const headers: Record<string, string> = { accept: 'application/json' };
      if (body !== undefined) headers['content-type'] = 'application/json';
      if (auth) {
        const { username, password } = this.#options;
        headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
      } else if (this.#sessionId) headers['vmware-api-session-id'] = this.#sessionId;
      let response: Response;
      try {
        response = await this.#options.fetch(`${origin}/rest${path}`, {
          method,
          headers,
          body: body === undefined ? undefined : JSON.stringify(body),
          signal: derived.signal,
          redirect: 'manual',
        });
      } catch (error) {
        throw fetchErrorToHvkitError(error, { signal: derived.signal, target: origin, ...context });
      }
      if (response.status >= 300 && response.status < 400) {
        await response.body?.cancel().catch(() => {});
        throw hvkitError(
          'PROTOCOL',
          `vAPI ${method} ${path.split('?')[0]} answered with a redirect (HTTP ${response.status}); ` +
            'redirects are not followed, so the session never leaves the server it was opened on.',
          { ...context, backendCode: response.status, retryable: false },
        );
      }
      const text = await readResponseText(response, {
        maxBytes: this.#options.maxResponseBytes ?? DEFAULT_VAPI_MAX_RESPONSE_BYTES,
        signal: derived.signal,
        target: origin,
        ...context,
      });
      let json: unknown;
      try {
        json = text === '' ? undefined : JSON.parse(text);
      } catch {
        json = undefined;
      }
      return { status: response.status, json };
    } catch (error) {
      if (derived.signal.aborted && !HvkitError.isInstance(error)) throw abortError(derived.signal, context);
      throw error;
    } finally {
      derived.dispose();
    }
  }

  /** True when the server serves the tagging API (logs in on first use). */
  async available(signal?: AbortSignal): Promise<boolean> {
    if (this.#available !== undefined) return this.#available;
    const { status, json } = await this.#request('POST', '/com/vmware/cis/session', undefined, signal, true);
    if (status === 404) {
      this.#available = false;
      return false;
    }
    if (status === 401 || status === 403)
      throw hvkitError('AUTH_FAILED', 'vAPI login failed.', { adapter: ADAPTER_ID, operation: 'vapi.login' });
    const value = (json as { value?: unknown } | undefined)?.value;
    if (status !== 200 || typeof value !== 'string') {
      throw hvkitError('PROTOCOL', `vAPI login answered HTTP ${status}.`, {
        adapter: ADAPTER_ID,
        operation: 'vapi.login',
      });
    }
    this.#sessionId = value;
    this.#available = true;
    return true;
  }

  async #call(method: string, path: string, body: unknown, signal?: AbortSignal): Promise<unknown> {
    const { status, json } = await this.#request(method, path, body, signal);
    if (status >= 200 && status < 300) return (json as { value?: unknown } | undefined)?.value;
    const code =
      status === 404 ? 'NOT_FOUND' : status === 401 || status === 403 ? 'PERMISSION_DENIED' : 'REMOTE';
    throw hvkitError(code, `vAPI ${method} ${path} answered HTTP ${status}.`, {
      adapter: ADAPTER_ID,
      operation: `vapi${path}`,
      backendCode: status,
    });
  }

  /** GETs one tag or category by id. */
  async #getById<T>(kind: 'tag' | 'category', id: string, signal?: AbortSignal): Promise<T> {
    return (await this.#call(
      'GET',
      `/com/vmware/cis/tagging/${kind}/id:${pathId(id)}`,
      undefined,
      signal,
    )) as T;
  }

  /** Tags attached to a managed object. */
  async attachedTags(object: { type: string; id: string }, signal?: AbortSignal): Promise<VapiTag[]> {
    const ids = (await this.#call(
      'POST',
      '/com/vmware/cis/tagging/tag-association?~action=list-attached-tags',
      { object_id: object },
      signal,
    )) as string[] | undefined;
    const out: VapiTag[] = [];
    const categories = new Map<string, string>();
    for (const id of ids ?? []) {
      const tag = await this.#getById<{ name: string; category_id: string }>('tag', id, signal);
      let category = categories.get(tag.category_id);
      if (category === undefined) {
        category = (await this.#getById<{ name: string }>('category', tag.category_id, signal)).name;
        categories.set(tag.category_id, category);
      }
      out.push({ id, name: tag.name, categoryId: tag.category_id, category });
    }
    return out;
  }

  /** Finds (or creates) the tag `name` in category `category` (created with cardinality MULTIPLE). */
  async ensureTag(category: string, name: string, signal?: AbortSignal): Promise<string> {
    const categoryIds = ((await this.#call('GET', '/com/vmware/cis/tagging/category', undefined, signal)) ??
      []) as string[];
    let categoryId: string | undefined;
    for (const id of categoryIds) {
      const c = await this.#getById<{ name: string }>('category', id, signal);
      if (c.name === category) {
        categoryId = id;
        break;
      }
    }
    categoryId ??= (await this.#call(
      'POST',
      '/com/vmware/cis/tagging/category',
      {
        create_spec: { name: category, description: 'hvkit', cardinality: 'MULTIPLE', associable_types: [] },
      },
      signal,
    )) as string;
    const tagIds = ((await this.#call(
      'POST',
      '/com/vmware/cis/tagging/tag?~action=list-tags-for-category',
      { category_id: categoryId },
      signal,
    )) ?? []) as string[];
    for (const id of tagIds) {
      const t = await this.#getById<{ name: string }>('tag', id, signal);
      if (t.name === name) return id;
    }
    return (await this.#call(
      'POST',
      '/com/vmware/cis/tagging/tag',
      { create_spec: { name, description: 'hvkit', category_id: categoryId } },
      signal,
    )) as string;
  }

  /** Attaches or detaches a tag. */
  async setAttached(
    tagId: string,
    object: { type: string; id: string },
    attached: boolean,
    signal?: AbortSignal,
  ): Promise<void> {
    await this.#call(
      'POST',
      `/com/vmware/cis/tagging/tag-association/id:${pathId(tagId)}?~action=${attached ? 'attach' : 'detach'}`,
      { object_id: object },
      signal,
    );
  }

  /** Ends the REST session (best effort, at most `timeoutMs`, default 5000). */
  async logout(options: { timeoutMs?: number } = {}): Promise<void> {
    if (!this.#sessionId) return;
    try {
      await this.#request(
        'DELETE',
        '/com/vmware/cis/session',
        undefined,
        AbortSignal.timeout(options.timeoutMs ?? 5000),
      );
    } catch {
      // best effort
    }
    this.#sessionId = undefined;
    this.#available = undefined;
  }
}
