/**
 * The vAPI REST tagging endpoints (`/rest/com/vmware/cis/...`): session, categories, tags and
 * tag associations. vCenter (and vcsim with its REST endpoints) serves them; an ESXi host does not.
 */

import { type FetchLike, hvkitError } from '@hvkit/core';

const ADAPTER = 'vmware-vsphere';

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
}

/** A small client of the vAPI tagging service. Logs in lazily; `available()` tells whether the server has it. */
export class VapiTagging {
  readonly #options: VapiTaggingOptions;
  #sessionId: string | undefined;
  #available: boolean | undefined;

  constructor(options: VapiTaggingOptions) {
    this.#options = options;
  }

  async #request(
    method: string,
    path: string,
    body: unknown,
    signal: AbortSignal | undefined,
    auth = false,
  ): Promise<{ status: number; json: unknown }> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (body !== undefined) headers['content-type'] = 'application/json';
    if (auth) {
      const { username, password } = this.#options;
      headers.authorization = `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
    } else if (this.#sessionId) headers['vmware-api-session-id'] = this.#sessionId;
    const response = await this.#options.fetch(`${this.#options.origin}/rest${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      signal,
    });
    const text = await response.text();
    let json: unknown;
    try {
      json = text === '' ? undefined : JSON.parse(text);
    } catch {
      json = undefined;
    }
    return { status: response.status, json };
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
      throw hvkitError('AUTH_FAILED', 'vAPI login failed.', { adapter: ADAPTER, operation: 'vapi.login' });
    const value = (json as { value?: unknown } | undefined)?.value;
    if (status !== 200 || typeof value !== 'string') {
      throw hvkitError('PROTOCOL', `vAPI login answered HTTP ${status}.`, {
        adapter: ADAPTER,
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
      adapter: ADAPTER,
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

  /** Ends the REST session (best effort). */
  async logout(): Promise<void> {
    if (!this.#sessionId) return;
    try {
      await this.#request('DELETE', '/com/vmware/cis/session', undefined, AbortSignal.timeout(5000));
    } catch {
      // best effort
    }
    this.#sessionId = undefined;
    this.#available = undefined;
  }
}
