/**
 * Labels: one label of model `tag`, the VM's vSphere tags (vAPI REST tagging on vCenter, custom attributes
 * standing in on ESXi) followed by its security flags.
 */

import {
  type CallOptions,
  type GuestRef,
  hvkitError,
  type LabelsCapability,
  type SecurityLabel,
} from '@hvkit/core';
import { readObject, resolveVm, type VsphereContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { customAttributeTags, SECURITY_PATHS, securityFlags, tagLabel } from '../mapping/labels';
import type { DataObject, MoRef } from '../protocol/soap/schema';
import type { VapiTagging } from '../protocol/vapi';

type Tag = { category?: string; name: string };

/** Whether tags go through vAPI REST (vCenter with `/rest`) rather than custom attributes. */
async function useRest(ctx: VsphereContext, signal?: AbortSignal): Promise<boolean> {
  return ctx.tagging !== undefined && (await ctx.tagging.available(signal));
}

/** Custom attributes as the tag fallback: one attribute per category (`hvkit` when none), value = tag name. */
async function setCustomAttributes(
  ctx: VsphereContext,
  vm: MoRef,
  tags: Tag[],
  signal?: AbortSignal,
): Promise<void> {
  const props = await readObject(ctx, vm, ['customValue', 'availableField'], signal);
  const fields = new Map<string, number>();
  for (const f of (props.availableField ?? []) as DataObject[])
    if (typeof f.name === 'string' && typeof f.key === 'number') fields.set(f.name, f.key);
  const target = new Map<string, string>();
  for (const t of tags) target.set(t.category ?? 'hvkit', t.name);
  for (const [name, key] of fields) {
    const has = ((props.customValue ?? []) as DataObject[]).some((v) => v.key === key && v.value !== '');
    if (has && !target.has(name))
      await ctx.session.call('setCustomValue', vm, { key: name, value: '' }, { signal });
  }
  for (const [name, value] of target) {
    await ctx.session.call('setCustomValue', vm, { key: name, value }, { signal });
  }
}

/** The labels capability of one adapter. */
export function createLabels(ctx: VsphereContext): LabelsCapability {
  const get = async (ref: GuestRef, o: CallOptions = {}): Promise<SecurityLabel[]> => {
    const vm = await resolveVm(ctx, ref, 'labels.get', o.signal);
    const props = await readObject(ctx, vm, [...SECURITY_PATHS, 'customValue', 'availableField'], o.signal);
    const flags = securityFlags(props);
    let tags: Tag[];
    if (await useRest(ctx, o.signal)) {
      tags = (
        await (ctx.tagging as VapiTagging).attachedTags({ type: 'VirtualMachine', id: vm.value }, o.signal)
      ).map((t) => (t.category ? { category: t.category, name: t.name } : { name: t.name }));
    } else {
      tags = customAttributeTags(props.customValue, props.availableField);
    }
    return [tagLabel(tags, flags)];
  };

  return {
    get,

    hostModels: async (_o?: CallOptions) => [{ model: 'tag' as const }],

    async set(ref: GuestRef, label: SecurityLabel, o: CallOptions = {}): Promise<SecurityLabel[]> {
      if (typeof label !== 'object' || label === null) throw new TypeError('label must be an object.');
      if (label.model !== 'tag') {
        throw hvkitError(
          'UNSUPPORTED',
          `vSphere labels are tags (model 'tag'), not ${JSON.stringify(label.model)}.`,
          { adapter: ADAPTER_ID, operation: 'labels.set' },
        );
      }
      const wanted = label.tags ?? [];
      for (const t of wanted) {
        if (
          typeof t?.name !== 'string' ||
          t.name === '' ||
          (t.category !== undefined && typeof t.category !== 'string')
        )
          throw hvkitError(
            'INVALID_ARGUMENT',
            'Each tag needs a non-empty name (and an optional category).',
            {
              adapter: ADAPTER_ID,
              operation: 'labels.set',
            },
          );
      }
      const vm = await resolveVm(ctx, ref, 'labels.set', o.signal);
      const key = (t: Tag) => `${t.category ?? ''}\u0000${t.name}`;
      if (await useRest(ctx, o.signal)) {
        const tagging = ctx.tagging as VapiTagging;
        const object = { type: 'VirtualMachine', id: vm.value };
        const attached = await tagging.attachedTags(object, o.signal);
        const want = new Set(wanted.map(key));
        for (const t of attached) {
          if (!want.has(key({ category: t.category, name: t.name })))
            await tagging.setAttached(t.id, object, false, o.signal);
        }
        const have = new Set(attached.map((t) => key({ category: t.category, name: t.name })));
        for (const t of wanted) {
          if (have.has(key(t))) continue;
          const id = await tagging.ensureTag(t.category ?? 'hvkit', t.name, o.signal);
          await tagging.setAttached(id, object, true, o.signal);
        }
      } else {
        await setCustomAttributes(ctx, vm, wanted, o.signal);
      }
      return get(vm.value, o);
    },
  };
}
