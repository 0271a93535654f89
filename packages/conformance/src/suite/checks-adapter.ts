import { SECURITY_MODEL_NAMES, SPEC_V1_CAPABILITIES, specV1Methods } from '@hvkit/core';
import { check, fail, show } from './assert';
import type { CheckDef, GroupDef, SuiteEnv } from './context';

const KEBAB = /^[a-z0-9]+(?:-[a-z0-9]+)*$/;

/** Problems with the manifest and how it matches the capability objects and methods (`SPEC_V1_METHODS`). */
export function supportsProblems(adapter: Record<string, unknown>, supports: unknown): string[] {
  const problems: string[] = [];
  if (typeof supports !== 'object' || supports === null)
    return [`supports is ${show(supports)}, not an object`];
  const s = supports as Record<string, unknown>;
  for (const cap of SPEC_V1_CAPABILITIES) {
    const entry = s[cap];
    const object = adapter[cap];
    if (entry === undefined) {
      problems.push(`supports.${cap} is missing (use false when the capability is absent)`);
      continue;
    }
    if (entry === false && object !== undefined)
      problems.push(`supports.${cap} is false but adapter.${cap} exists`);
    if (entry !== false && (typeof object !== 'object' || object === null)) {
      problems.push(`supports.${cap} is ${show(entry)} but adapter.${cap} is ${show(object)}`);
    }
  }
  for (const row of specV1Methods()) {
    const entry = s[row.capability] as Record<string, unknown> | false | undefined;
    const object = adapter[row.capability] as Record<string, unknown> | undefined;
    if (!entry || typeof object !== 'object' || object === null) continue;
    const has = typeof object[row.method] === 'function';
    if (row.required) {
      if (!has) problems.push(`${row.operation} is missing`);
    } else if (row.presentWhen !== undefined) {
      const flag = entry[row.presentWhen];
      const flagName = `supports.${row.capability}.${row.presentWhen}`;
      if (flag === true && !has) problems.push(`${flagName} is true but ${row.operation} is missing`);
      if (flag !== true && has) problems.push(`${flagName} is ${show(flag)} but ${row.operation} exists`);
    }
  }
  const lim = s.limits as Record<string, unknown> | false | undefined;
  if (lim) {
    if (lim.applies !== 'live' && lim.applies !== 'next-boot') {
      problems.push(`supports.limits.applies is ${show(lim.applies)}, not 'live' or 'next-boot'`);
    }
    const modes = lim.modes;
    if (
      !Array.isArray(modes) ||
      modes.length === 0 ||
      modes.some((m) => !['live', 'persistent', 'both'].includes(m))
    ) {
      problems.push(
        `supports.limits.modes is ${show(modes)}: it must list one or more of 'live', 'persistent', 'both'`,
      );
    }
  }
  const lab = s.labels as Record<string, unknown> | false | undefined;
  if (lab) {
    const models = lab.models;
    if (!Array.isArray(models) || models.some((m) => !SECURITY_MODEL_NAMES.includes(m))) {
      problems.push(
        `supports.labels.models is ${show(models)}: it must list models of ${SECURITY_MODEL_NAMES.join(', ')}`,
      );
    }
  }
  const bk = s.backups as Record<string, unknown> | false | undefined;
  if (bk) {
    const methods = bk.methods;
    if (!Array.isArray(methods) || methods.some((m) => typeof m !== 'string' || m === '')) {
      problems.push(`supports.backups.methods is ${show(methods)}: it must be an array of method names`);
    } else if ((bk.full === true || bk.incremental === true) && methods.length === 0) {
      problems.push('supports.backups.methods is empty although backups are supported');
    }
  }
  return problems;
}

/** The `adapter` group: identity, manifest, close. */
export function adapterGroup(env: SuiteEnv): GroupDef {
  const checks: CheckDef[] = [
    {
      id: 'adapter.specification-version',
      title: "specificationVersion is 'v1'",
      async run({ adapter }) {
        check(
          adapter.specificationVersion === 'v1',
          `specificationVersion is ${show(adapter.specificationVersion)}; an adapter of spec v1 must say 'v1'`,
        );
      },
    },
    {
      id: 'adapter.id',
      title: 'adapter id is a stable kebab-case name',
      async run({ adapter }) {
        check(
          typeof adapter.adapter === 'string' && KEBAB.test(adapter.adapter),
          `adapter id is ${show(adapter.adapter)}; it must be a kebab-case name such as 'kvm-libvirt'`,
        );
        check(
          adapter.adapter === env.adapterId,
          `adapter id changed between factory() calls: ${show(env.adapterId)} then ${show(adapter.adapter)}`,
        );
      },
    },
    {
      id: 'adapter.supports',
      title: 'supports matches the capability objects and optional methods',
      async run({ adapter }) {
        const problems = supportsProblems(adapter as unknown as Record<string, unknown>, adapter.supports);
        if (problems.length > 0)
          fail(`the supports manifest does not match the adapter: ${problems.join('; ')}`);
      },
    },
    {
      id: 'adapter.close',
      title: 'close() is idempotent and Symbol.asyncDispose exists',
      async run({ adapter, call }) {
        check(typeof adapter.close === 'function', 'adapter.close is not a function');
        check(
          typeof adapter[Symbol.asyncDispose] === 'function',
          'adapter[Symbol.asyncDispose] is not a function',
        );
        await call('close()', adapter.close());
        await call('a second close()', adapter.close());
      },
    },
  ];
  return { name: 'adapter', checks };
}
