import {
  type Guest,
  type HostSecurityModel,
  type LabelsCapability,
  SECURITY_MODEL_NAMES,
  type SecurityLabel,
  type SecurityModelName,
} from '@hvkit/core';
import { check, expectHvkitError, fail, firstDifference, show } from './assert';
import { MISSING_GUEST_ID } from './checks-inventory';
import type { CheckContext, CheckDef, GroupDef, SuiteEnv } from './context';

const TYPES = ['dynamic', 'static', 'none'];

function labelsOf(ctx: CheckContext): LabelsCapability {
  const l = ctx.adapter.labels;
  if (!l) fail('adapter.labels is missing although supports.labels is not false');
  return l;
}

/** Everything wrong with the labels of one guest. */
export function labelProblems(
  labels: SecurityLabel[],
  models: readonly SecurityModelName[],
  who: string,
): string[] {
  if (!Array.isArray(labels)) return [`${who}: labels.get returned ${show(labels)}, not an array`];
  const p: string[] = [];
  for (const l of labels) {
    if (!SECURITY_MODEL_NAMES.includes(l?.model))
      p.push(`${who}: label model ${show(l?.model)} is not one of ${SECURITY_MODEL_NAMES.join(', ')}`);
    else if (!models.includes(l.model))
      p.push(`${who}: label model ${l.model} is not in supports.labels.models (${models.join(', ')})`);
    if (!TYPES.includes(l?.type))
      p.push(`${who}: label type ${show(l?.type)} is not one of ${TYPES.join(', ')}`);
    for (const k of ['label', 'imageLabel', 'baseLabel'] as const) {
      if (l?.[k] !== undefined && typeof l[k] !== 'string')
        p.push(`${who}: ${k} is ${show(l[k])}, not a string`);
    }
    for (const k of ['relabel', 'enforcing'] as const) {
      if (l?.[k] !== undefined && typeof l[k] !== 'boolean')
        p.push(`${who}: ${k} is ${show(l[k])}, not a boolean`);
    }
    if (l?.source !== undefined && l.source !== 'live' && l.source !== 'config')
      p.push(`${who}: source ${show(l.source)} is not 'live' or 'config'`);
    if (
      l?.tags !== undefined &&
      (!Array.isArray(l.tags) || l.tags.some((t) => typeof t?.name !== 'string'))
    ) {
      p.push(`${who}: tags ${show(l.tags)} must be an array of { name, category? }`);
    }
  }
  return p;
}

async function hostModels(ctx: CheckContext): Promise<HostSecurityModel[] | undefined> {
  const labels = labelsOf(ctx);
  if (labels.hostModels) return ctx.call('labels.hostModels()', labels.hostModels());
  const inv = ctx.env.supports.inventory;
  if (ctx.adapter.inventory && inv !== false && inv.host)
    return (await ctx.call('inventory.host()', ctx.adapter.inventory.host())).securityModels;
  return undefined;
}

const inactive = (g: Guest | undefined): g is Guest =>
  g !== undefined && g.powerState !== 'running' && g.powerState !== 'paused' && !g.isTemplate;

/** A stopped, non-template guest to set labels on: the target when stopped, else the first one listed. */
async function stoppedGuest(ctx: CheckContext): Promise<Guest> {
  const target = await ctx.target();
  if (inactive(target.guest)) return target.guest;
  const found = (await ctx.guests()).find(inactive);
  if (!found) return ctx.skip('no stopped, non-template guest to set a label on');
  return found;
}

/**
 * The guest to set its own label back on, its labels and that label (a static or dynamic one of `models` in
 * its definition): the target when it is stopped; else the first stopped, non-template guest listed that has
 * such a label. The stopped guests are looked at in turn, so that the check does not depend on where the
 * backend lists a stopped guest without one (libvirt's order of stopped domains changes from one daemon start
 * to the next).
 */
async function guestWithOwnLabel(
  ctx: CheckContext,
  models: readonly string[],
): Promise<{ guest: Guest; before: SecurityLabel[]; own: SecurityLabel }> {
  const target = await ctx.target();
  const candidates = inactive(target.guest) ? [target.guest] : (await ctx.guests()).filter(inactive);
  if (candidates.length === 0) return ctx.skip('no stopped, non-template guest to set a label on');
  for (const guest of candidates) {
    const before = await ctx.call('labels.get()', labelsOf(ctx).get(guest.id));
    const own = before.find(
      (l) => l.source !== 'live' && (l.type === 'static' || l.type === 'dynamic') && models.includes(l.model),
    );
    if (own) return { guest, before, own };
  }
  return ctx.skip(
    candidates.length === 1
      ? `guest ${show(candidates[0]?.name)} has no static or dynamic label of a supported model to set back`
      : 'no stopped guest has a static or dynamic label of a supported model to set back',
  );
}

/** The `labels` group. */
export function labelsGroup(env: SuiteEnv): GroupDef {
  const lab = env.supports.labels;
  if (lab === false)
    return { name: 'labels', skipReason: 'not supported by adapter (supports.labels = false)', checks: [] };
  const models = lab.models;
  const checks: CheckDef[] = [
    {
      id: 'labels.get',
      title: 'get() of every guest returns labels with known models (in supports) and types',
      async run(ctx) {
        const labels = labelsOf(ctx);
        const guests = await ctx.guests();
        const refs =
          guests.length > 0
            ? guests.slice(0, 20).map((g) => ({ ref: g.id, who: `guest ${show(g.name)}` }))
            : [{ ref: (await ctx.target()).ref, who: 'the target' }];
        const problems: string[] = [];
        for (const { ref, who } of refs) {
          problems.push(
            ...labelProblems(await ctx.call(`labels.get(${show(ref)})`, labels.get(ref)), models, who),
          );
        }
        if (problems.length > 0) fail(`labels.get returned bad labels: ${problems.slice(0, 20).join('; ')}`);
      },
    },
    {
      id: 'labels.host-models',
      title: 'hostModels() lists known models, the same the host reports',
      unavailable: lab.hostModels
        ? undefined
        : 'not supported by adapter (supports.labels.hostModels = false)',
      async run(ctx) {
        const list = await ctx.call('labels.hostModels()', labelsOf(ctx).hostModels!());
        check(Array.isArray(list), `labels.hostModels() returned ${show(list)}, not an array`);
        for (const m of list) {
          check(
            SECURITY_MODEL_NAMES.includes(m?.model),
            `labels.hostModels() lists model ${show(m?.model)}, not one of ${SECURITY_MODEL_NAMES.join(', ')}`,
          );
        }
        const inv = ctx.env.supports.inventory;
        if (ctx.adapter.inventory && inv !== false && inv.host) {
          const host = await ctx.call('inventory.host()', ctx.adapter.inventory.host());
          const hostSet = new Set((host.securityModels ?? []).map((m) => m.model));
          const extra = list.filter((m) => !hostSet.has(m.model)).map((m) => m.model);
          check(
            extra.length === 0,
            `labels.hostModels() lists ${extra.join(', ')} but inventory.host().securityModels does not`,
          );
        }
      },
    },
    {
      id: 'labels.declared-models',
      title: 'every running guest has a label for each security model the host declares',
      async run(ctx) {
        const declared = await hostModels(ctx);
        if (!declared)
          return ctx.skip(
            'the adapter reports no host security models (no labels.hostModels, no inventory.host)',
          );
        const wanted = declared.map((m) => m.model).filter((m) => m !== 'none' && models.includes(m));
        if (wanted.length === 0) return ctx.skip('the host declares no security model this adapter reports');
        const running = (await ctx.guests()).filter((g) => g.powerState === 'running').slice(0, 10);
        if (running.length === 0)
          return ctx.skip('no running guest (labels of stopped guests may be generated at boot)');
        const problems: string[] = [];
        for (const g of running) {
          const labels = await ctx.call(`labels.get(${show(g.id)})`, labelsOf(ctx).get(g.id));
          for (const m of wanted) {
            if (!labels.some((l) => l.model === m))
              problems.push(
                `running guest ${show(g.name)} has no ${m} label although the host declares ${m}`,
              );
          }
        }
        if (problems.length > 0) fail(problems.join('; '));
      },
    },
    {
      id: 'labels.set',
      title: "set() of a stopped guest's own label returns it and changes nothing else",
      mutates: true,
      unavailable: lab.set ? undefined : 'not supported by adapter (supports.labels.set = false)',
      async run(ctx) {
        const labels = labelsOf(ctx);
        const { guest, before, own } = await guestWithOwnLabel(ctx, models);
        const input: SecurityLabel = { model: own.model, type: own.type };
        if (own.type === 'static') {
          if (own.label !== undefined) input.label = own.label;
          if (own.imageLabel !== undefined) input.imageLabel = own.imageLabel;
          if (own.relabel !== undefined) input.relabel = own.relabel;
        } else {
          if (own.baseLabel !== undefined) input.baseLabel = own.baseLabel;
          input.relabel = true;
        }
        if (own.tags !== undefined) input.tags = own.tags;
        const what = `labels.set(${show(guest.id)}, ${show(input)})`;
        const result = await ctx.call(what, labels.set!(guest.id, input));
        check(Array.isArray(result), `${what} resolved with ${show(result)}, not the guest's labels`);
        const echoed = result.find(
          (l) => l.model === own.model && l.type === own.type && l.source !== 'live',
        );
        check(echoed, () => `${what} returned ${show(result)}, which has no ${own.model} ${own.type} label`);
        if (own.type === 'static')
          check(
            echoed.label === own.label,
            `${what} returned label ${show(echoed.label)}, not ${show(own.label)}`,
          );
        const after = await ctx.call('labels.get()', labels.get(guest.id));
        const diff = firstDifference(before, after);
        if (diff) fail(`setting a guest's own label changed its labels: ${diff}`);
      },
    },
    {
      id: 'labels.set-unsupported-model',
      title: 'set() with a model not in supports.labels.models is rejected with UNSUPPORTED',
      unavailable: !lab.set
        ? 'not supported by adapter (supports.labels.set = false)'
        : SECURITY_MODEL_NAMES.every((m) => models.includes(m))
          ? 'the adapter supports every model'
          : undefined,
      async run(ctx) {
        const guest = await stoppedGuest(ctx);
        const model = SECURITY_MODEL_NAMES.find((m) => !models.includes(m)) as SecurityModelName;
        const input: SecurityLabel = { model, type: 'dynamic', relabel: true };
        const before = await ctx.call('labels.get()', labelsOf(ctx).get(guest.id));
        const what = `labels.set(${show(guest.id)}, ${show(input)})`;
        await expectHvkitError(ctx.call(what, labelsOf(ctx).set!(guest.id, input)), 'UNSUPPORTED', what);
        const diff = firstDifference(before, await ctx.call('labels.get()', labelsOf(ctx).get(guest.id)));
        if (diff) fail(`${what} was rejected but the labels changed: ${diff}`);
      },
    },
    {
      id: 'labels.not-found',
      title: 'get (and set) reject an unknown guest with NOT_FOUND',
      async run(ctx) {
        const labels = labelsOf(ctx);
        await expectHvkitError(
          ctx.call('labels.get(unknown)', labels.get(MISSING_GUEST_ID)),
          'NOT_FOUND',
          `labels.get("${MISSING_GUEST_ID}")`,
        );
        if (labels.set && models[0]) {
          const input: SecurityLabel = { model: models[0], type: 'dynamic', relabel: true };
          await expectHvkitError(
            ctx.call('labels.set(unknown)', labels.set({ name: MISSING_GUEST_ID }, input)),
            'NOT_FOUND',
            `labels.set({ name: "${MISSING_GUEST_ID}" }, ${show(input)})`,
          );
        }
      },
    },
  ];
  return { name: 'labels', checks };
}
