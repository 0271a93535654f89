/**
 * Labels: XAPI has no Xen XSM/FLASK labels (domains are built with ssidref 0), so security domains are
 * tags. A VM's plain `tags` are tags without a category; a categorised tag `{ category, name }` is the
 * `other_config` key `hvkit.tag.<category>` holding the name (one name per category).
 */

import type { SecurityLabel } from '@hvkit/core';
import type { XapiRecord } from '../protocol/values';

/** Prefix of the `other_config` keys holding categorised tags. */
export const TAG_KEY_PREFIX = 'hvkit.tag.';

/** The VM's one label, model `tag`. */
export function labelOf(vm: XapiRecord): SecurityLabel {
  const tags: { category?: string; name: string }[] = ((vm.tags as string[]) ?? []).map((name) => ({ name }));
  const config = (vm.other_config ?? {}) as Record<string, string>;
  for (const key of Object.keys(config).sort()) {
    if (key.startsWith(TAG_KEY_PREFIX) && key.length > TAG_KEY_PREFIX.length && config[key])
      tags.push({ category: key.slice(TAG_KEY_PREFIX.length), name: config[key] as string });
  }
  return { model: 'tag', type: 'static', tags, source: 'config' };
}
