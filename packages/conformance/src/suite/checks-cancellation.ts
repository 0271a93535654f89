import {
  type BackupSource,
  isLimitFieldSupported,
  limitPatch,
  type ResourceLimits,
  readLimitField,
  type SecurityLabel,
  type SpecV1Operation,
  specV1Methods,
} from '@hvkit/core';
import { ConformanceFailure, check, expectHvkitError, fail, firstDifference, show } from './assert';
import { CapturingSink } from './capturing-sink';
import {
  backendBefore,
  backupsOf,
  checkNothingLeft,
  MISSING_SNAPSHOT_ID,
  SUITE_SNAPSHOT_NAME,
  snapshotIds,
} from './checks-backups';
import type { CheckContext, CheckDef, GroupDef, SuiteEnv } from './context';
import { limitTestValue } from './context';

/** How the suite calls one method with an already-aborted signal. */
interface PreAborted {
  /** Whether the manifest lets the suite call the method at all (else no check is listed). */
  when: boolean;
  unavailable?: string;
  run(ctx: CheckContext, signal: AbortSignal): Promise<void>;
}

const preAbortedWhat = (call: string) => `${call} with an already-aborted signal`;

/**
 * The `cancellation` group: an already-aborted signal on every method of `SPEC_V1_METHODS` (a method missing
 * from the record below is a type error), and an abort midway through a backup.
 */
export function cancellationGroup(env: SuiteEnv): GroupDef {
  const { inventory: inv, limits: lim, labels: lab, backups: bk } = env.supports;
  const expectAborted = (ctx: CheckContext, call: string, promise: Promise<unknown>) =>
    expectHvkitError(ctx.call(call, promise), 'ABORTED', preAbortedWhat(call)).then(() => undefined);
  const limitField = lim
    ? (['cpu.weight', 'cpu.maxCores', 'memory.softBytes', 'memory.maxBytes', 'pids.max'] as const).find((p) =>
        isLimitFieldSupported(lim, p),
      )
    : undefined;
  const labelModel = lab ? lab.models[0] : undefined;

  const calls: Record<SpecV1Operation, PreAborted | 'events.pre-aborted'> = {
    'inventory.host': {
      when: inv !== false && inv.host,
      run: (ctx, signal) => expectAborted(ctx, 'inventory.host()', ctx.adapter.inventory!.host({ signal })),
    },
    'inventory.listGuests': {
      when: inv !== false && inv.guests,
      run: (ctx, signal) =>
        expectAborted(ctx, 'inventory.listGuests()', ctx.adapter.inventory!.listGuests({ signal })),
    },
    'inventory.getGuest': {
      when: inv !== false && inv.guests,
      async run(ctx, signal) {
        const t = await ctx.target();
        await expectAborted(
          ctx,
          `inventory.getGuest(${show(t.ref)})`,
          ctx.adapter.inventory!.getGuest(t.ref, { signal }),
        );
      },
    },
    'inventory.listNetworks': {
      when: inv !== false && inv.networks,
      run: (ctx, signal) =>
        expectAborted(ctx, 'inventory.listNetworks()', ctx.adapter.inventory!.listNetworks!({ signal })),
    },
    'inventory.listStoragePools': {
      when: inv !== false && inv.storage,
      run: (ctx, signal) =>
        expectAborted(
          ctx,
          'inventory.listStoragePools()',
          ctx.adapter.inventory!.listStoragePools!({ signal }),
        ),
    },
    'inventory.listStorageVolumes': {
      when: inv !== false && inv.storage,
      async run(ctx, signal) {
        const pools = await ctx.call(
          'inventory.listStoragePools()',
          ctx.adapter.inventory!.listStoragePools!(),
        );
        const id = pools[0]?.id ?? 'hvkit-conformance-no-such-pool';
        await expectAborted(
          ctx,
          `inventory.listStorageVolumes(${show(id)})`,
          ctx.adapter.inventory!.listStorageVolumes!(id, { signal }),
        );
      },
    },
    'limits.get': {
      when: lim !== false,
      async run(ctx, signal) {
        const t = await ctx.target();
        await expectAborted(ctx, `limits.get(${show(t.ref)})`, ctx.adapter.limits!.get(t.ref, { signal }));
      },
    },
    'limits.set': {
      when: lim !== false,
      unavailable: limitField ? undefined : 'no cpu, memory or pids field is supported',
      async run(ctx, signal) {
        const limits = ctx.adapter.limits!;
        const t = await ctx.target();
        const path = limitField!;
        const before = await ctx.call('limits.get()', limits.get(t.ref));
        const probeBefore = ctx.probe?.getLimits
          ? await ctx.call(
              'probe.getLimits',
              Promise.resolve(ctx.probe.getLimits(t.probeGuest, 'persistent')),
            )
          : undefined;
        const current = readLimitField(before, path);
        const value = limitTestValue(ctx.env, path, current, t.guest);
        const call = `limits.set(${show(t.ref)}, ${show(limitPatch(path, value))})`;
        let failure: unknown;
        try {
          await expectAborted(ctx, call, limits.set(t.ref, limitPatch(path, value), { signal }));
        } catch (error) {
          failure = error;
        }
        const after = await ctx.call('limits.get()', limits.get(t.ref));
        const diff = firstDifference(before, after);
        const probeAfter =
          probeBefore && ctx.probe?.getLimits
            ? await ctx.call(
                'probe.getLimits',
                Promise.resolve(ctx.probe.getLimits(t.probeGuest, 'persistent')),
              )
            : undefined;
        const probeDiff = probeBefore ? firstDifference(probeBefore, probeAfter) : undefined;
        if (diff || probeDiff) {
          const restore: ResourceLimits = limitPatch(path, current === undefined ? null : current);
          await ctx.call('restoring limits', limits.set(t.ref, restore)).catch(() => {});
          const note = `it changed the limits (${diff ?? `backend: ${probeDiff}`})`;
          if (failure instanceof Error) failure.message += `; and ${note}`;
          else failure = new ConformanceFailure(`${preAbortedWhat(call)} ${note}`);
        }
        if (failure !== undefined) throw failure;
      },
    },
    'backups.listSnapshots': {
      when: bk !== false && bk.snapshots,
      async run(ctx, signal) {
        const t = await ctx.target();
        await expectAborted(
          ctx,
          `backups.listSnapshots(${show(t.ref)})`,
          backupsOf(ctx).listSnapshots(t.ref, { signal }),
        );
      },
    },
    'backups.createSnapshot': {
      when: bk !== false && bk.snapshots,
      async run(ctx, signal) {
        const t = await ctx.target();
        const before = await snapshotIds(ctx, t);
        const call = `backups.createSnapshot(${show(t.ref)}, { name: '${SUITE_SNAPSHOT_NAME}' })`;
        let failure: unknown;
        try {
          await expectAborted(
            ctx,
            call,
            backupsOf(ctx).createSnapshot(t.ref, { name: SUITE_SNAPSHOT_NAME, signal }),
          );
        } catch (error) {
          failure = error;
        }
        const after = await snapshotIds(ctx, t);
        const created = after && before ? after.ids.filter((id) => !before.ids.includes(id)) : [];
        for (const id of created)
          await backupsOf(ctx)
            .deleteSnapshot(t.ref, id)
            .catch(() => {});
        if (created.length > 0) {
          const note = `it created snapshot(s) ${created.join(', ')}`;
          if (failure instanceof Error) failure.message += `; and ${note}`;
          else failure = new ConformanceFailure(`${preAbortedWhat(call)} ${note}`);
        }
        if (failure !== undefined) throw failure;
      },
    },
    'backups.deleteSnapshot': {
      when: bk !== false && bk.snapshots,
      async run(ctx, signal) {
        const t = await ctx.target();
        await expectAborted(
          ctx,
          `backups.deleteSnapshot(${show(t.ref)}, '${MISSING_SNAPSHOT_ID}')`,
          backupsOf(ctx).deleteSnapshot(t.ref, MISSING_SNAPSHOT_ID, { signal }),
        );
      },
    },
    'backups.revertSnapshot': {
      when: bk !== false && bk.snapshots,
      async run(ctx, signal) {
        const backups = backupsOf(ctx);
        if (!backups.revertSnapshot) return ctx.skip('the adapter has no backups.revertSnapshot');
        const t = await ctx.target();
        await expectAborted(
          ctx,
          `backups.revertSnapshot(${show(t.ref)}, '${MISSING_SNAPSHOT_ID}')`,
          backups.revertSnapshot(t.ref, MISSING_SNAPSHOT_ID, { signal }),
        );
      },
    },
    'backups.backup': {
      when: bk !== false && bk.full,
      async run(ctx, signal) {
        const t = await ctx.target();
        const before = await snapshotIds(ctx, t);
        const sink = new CapturingSink();
        const call = `backups.backup(${show(t.ref)}, sink)`;
        await expectAborted(ctx, call, backupsOf(ctx).backup(t.ref, sink, { signal }));
        check(
          sink.writes.length === 0,
          `${preAbortedWhat(call)} still wrote to the sink (${sink.writes.map((w) => show(w.name)).join(', ')})`,
        );
        const after = await snapshotIds(ctx, t);
        if (before && after) {
          const left = after.ids.filter((id) => !before.ids.includes(id));
          check(
            left.length === 0,
            `${preAbortedWhat(call)} left snapshot(s) ${left.join(', ')} (${after.source})`,
          );
        }
      },
    },
    'backups.backupHostConfig': {
      when: bk !== false && bk.hostConfig,
      async run(ctx, signal) {
        const sink = new CapturingSink();
        await expectAborted(
          ctx,
          'backups.backupHostConfig(sink)',
          backupsOf(ctx).backupHostConfig!(sink, { signal }),
        );
        check(
          sink.completeFiles().size === 0,
          `${preAbortedWhat('backups.backupHostConfig(sink)')} left a complete file in the sink`,
        );
      },
    },
    'backups.restore': {
      when: bk !== false && bk.restore !== false,
      async run(ctx, signal) {
        const touched: string[] = [];
        const source: BackupSource = {
          kind: 'conformance-untouchable',
          location: 'a source the adapter must not read with an aborted signal',
          list: async () => {
            touched.push('list');
            return [];
          },
          readManifest: async (path) => {
            touched.push(`readManifest(${show(path)})`);
            throw new ConformanceFailure('the adapter read a manifest with an aborted signal');
          },
          readFile: (name) => {
            touched.push(`readFile(${show(name)})`);
            return (async function* () {})();
          },
        };
        const call = 'backups.restore(source)';
        await expectAborted(ctx, call, backupsOf(ctx).restore!(source, { signal }));
        check(touched.length === 0, `${preAbortedWhat(call)} still read the source (${touched.join(', ')})`);
      },
    },
    'backups.listCheckpoints': {
      when: bk !== false && bk.checkpoints,
      async run(ctx, signal) {
        const t = await ctx.target();
        await expectAborted(
          ctx,
          `backups.listCheckpoints(${show(t.ref)})`,
          backupsOf(ctx).listCheckpoints!(t.ref, { signal }),
        );
      },
    },
    'backups.cleanup': {
      when: bk !== false && bk.cleanup,
      async run(ctx, signal) {
        const t = await ctx.target();
        await expectAborted(
          ctx,
          `backups.cleanup(${show(t.ref)})`,
          backupsOf(ctx).cleanup!(t.ref, { signal }),
        );
      },
    },
    'labels.get': {
      when: lab !== false,
      async run(ctx, signal) {
        const t = await ctx.target();
        await expectAborted(ctx, `labels.get(${show(t.ref)})`, ctx.adapter.labels!.get(t.ref, { signal }));
      },
    },
    'labels.hostModels': {
      when: lab !== false && lab.hostModels,
      run: (ctx, signal) =>
        expectAborted(ctx, 'labels.hostModels()', ctx.adapter.labels!.hostModels!({ signal })),
    },
    'labels.set': {
      when: lab !== false && lab.set && labelModel !== undefined,
      async run(ctx, signal) {
        const t = await ctx.target();
        const before = await ctx.call('labels.get()', ctx.adapter.labels!.get(t.ref));
        const input: SecurityLabel = { model: labelModel!, type: 'dynamic', relabel: true };
        const call = `labels.set(${show(t.ref)}, ${show(input)})`;
        let failure: unknown;
        try {
          await expectAborted(ctx, call, ctx.adapter.labels!.set!(t.ref, input, { signal }));
        } catch (error) {
          failure = error;
        }
        const diff = firstDifference(before, await ctx.call('labels.get()', ctx.adapter.labels!.get(t.ref)));
        if (diff) {
          const note = `it changed the labels (${diff})`;
          if (failure instanceof Error) failure.message += `; and ${note}`;
          else failure = new ConformanceFailure(`${preAbortedWhat(call)} ${note}`);
        }
        if (failure !== undefined) throw failure;
      },
    },
    // Its own check in the events group: the iteration ends (or rejects with ABORTED) at once.
    'events.subscribe': 'events.pre-aborted',
  };

  const checks: CheckDef[] = specV1Methods().flatMap((row) => {
    const c = calls[row.operation];
    if (typeof c === 'string' || !c.when) return [];
    return [
      {
        id: `cancellation.pre-aborted.${row.operation}`,
        title: `${row.operation} with an already-aborted signal rejects with ABORTED and does nothing`,
        unavailable: c.unavailable,
        run: (ctx: CheckContext) => c.run(ctx, AbortSignal.abort()),
      },
    ];
  });

  checks.push({
    id: 'cancellation.abort-during-backup',
    title:
      'aborting a backup after its first chunk rejects with ABORTED, leaving no snapshot, checkpoint or complete file',
    mutates: true,
    unavailable:
      bk === false
        ? 'not supported by adapter (supports.backups = false)'
        : bk.full
          ? undefined
          : 'not supported by adapter (supports.backups.full = false)',
    async run(ctx) {
      const t = await ctx.target();
      const before = await backendBefore(ctx, t);
      const sink = new CapturingSink();
      const controller = new AbortController();
      let abortedAt: number | undefined;
      sink.onChunk = (total) => {
        if (abortedAt === undefined) {
          abortedAt = total;
          controller.abort();
        }
      };
      const call = `backups.backup(${show(t.ref)}, sink, { signal })`;
      try {
        await expectHvkitError(
          ctx.call(call, backupsOf(ctx).backup(t.ref, sink, { signal: controller.signal })),
          'ABORTED',
          `${call} aborted after its first chunk`,
        );
      } catch (error) {
        if (abortedAt === undefined)
          fail(
            `${call} wrote no data to the sink, so the suite could not abort it midway (${(error as Error).message})`,
            error,
          );
        throw error;
      }
      await checkNothingLeft(ctx, t, before, sink, { the: 'the aborted backup', a: 'an aborted backup' });
    },
  });
  return { name: 'cancellation', checks };
}
