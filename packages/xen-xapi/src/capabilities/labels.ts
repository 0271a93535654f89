/**
 * The `labels` capability: one label of model `tag` per VM, from its tags (no category) and its
 * `hvkit.tag.<category>` other_config keys. XAPI exposes no Xen XSM/FLASK labels.
 */

import {
  type CallOptions,
  type GuestRef,
  hvkitError,
  type LabelsCapability,
  type SecurityLabel,
} from '@hvkit/core';
import { type AdapterContext, resolveVm } from '../context';
import { ADAPTER_ID } from '../errors';
import { labelOf, TAG_KEY_PREFIX } from '../mapping/labels';

const CATEGORY = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;
// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused.
const CONTROL = /[\u0000-\u001f\u007f]/;

/** The labels capability of one adapter. */
export function createLabels(ctx: AdapterContext): LabelsCapability {
  const get = async (ref: GuestRef, o: CallOptions = {}): Promise<SecurityLabel[]> => [
    labelOf((await resolveVm(ctx, ref, 'labels.get', o)).record),
  ];
  return {
    get,
    hostModels: async (_o?: CallOptions) => [{ model: 'tag' as const }],

    async set(ref: GuestRef, label: SecurityLabel, o: CallOptions = {}): Promise<SecurityLabel[]> {
      if (typeof label !== 'object' || label === null) throw new TypeError('label must be an object.');
      const bad = (message: string) =>
        hvkitError('INVALID_ARGUMENT', message, { adapter: ADAPTER_ID, operation: 'labels.set' });
      if (label.model !== 'tag')
        throw hvkitError(
          'UNSUPPORTED',
          `XAPI labels are tags (model 'tag'); XAPI exposes no ${JSON.stringify(label.model)} labels.`,
          {
            adapter: ADAPTER_ID,
            operation: 'labels.set',
          },
        );
      const plain: string[] = [];
      const categorised = new Map<string, string>();
      for (const t of label.tags ?? []) {
        if (
          typeof t?.name !== 'string' ||
          t.name.trim() === '' ||
          CONTROL.test(t.name) ||
          t.name.length > 256
        )
          throw bad('Each tag needs a non-empty name without control characters (at most 256 characters).');
        if (t.category === undefined) {
          if (!plain.includes(t.name)) plain.push(t.name);
          continue;
        }
        if (typeof t.category !== 'string' || !CATEGORY.test(t.category))
          throw bad('A tag category is 1-64 letters, digits, or _ . : - (starting with a letter or digit).');
        if (categorised.has(t.category) && categorised.get(t.category) !== t.name)
          throw bad(
            `Category ${JSON.stringify(t.category)} has more than one tag; XAPI keeps one per category.`,
          );
        categorised.set(t.category, t.name);
      }
      const vm = await resolveVm(ctx, ref, 'labels.set', o);
      const have = (vm.record.tags as string[]) ?? [];
      for (const t of have) if (!plain.includes(t)) await ctx.client.call('VM.remove_tags', [vm.ref, t], o);
      for (const t of plain) if (!have.includes(t)) await ctx.client.call('VM.add_tags', [vm.ref, t], o);
      const config = (vm.record.other_config ?? {}) as Record<string, string>;
      for (const [key, value] of Object.entries(config)) {
        if (!key.startsWith(TAG_KEY_PREFIX)) continue;
        const category = key.slice(TAG_KEY_PREFIX.length);
        if (categorised.get(category) !== value)
          await ctx.client.call('VM.remove_from_other_config', [vm.ref, key], o);
      }
      for (const [category, name] of categorised) {
        const key = TAG_KEY_PREFIX + category;
        if (config[key] !== name) await ctx.client.call('VM.add_to_other_config', [vm.ref, key, name], o);
      }
      return get(vm.record.uuid as string, o);
    },
  };
}
