import {
  type BackupArtifact,
  type BackupsCapability,
  checkProgressLog,
  HvkitError,
  type Progress,
  type Snapshot,
} from '@hvkit/core';
import { ConformanceFailure, check, describeError, expectHvkitError, fail, show } from './assert';
import { CapturingSink } from './capturing-sink';
import { MISSING_GUEST_ID } from './checks-inventory';
import { restoreChecks } from './checks-restore';
import type { CheckContext, CheckDef, GroupDef, SuiteEnv, Target } from './context';

/** The fixed name of the snapshot the suite creates (fixed so replays match recordings). */
export const SUITE_SNAPSHOT_NAME = 'hvkit-conformance-snapshot';
/** A snapshot id no backend has. */
export const MISSING_SNAPSHOT_ID = 'hvkit-conformance-no-such-snapshot';

const SHA256 = /^[0-9a-f]{64}$/;
const TEN_MINUTES = 10 * 60 * 1000;

export function backupsOf(ctx: CheckContext): BackupsCapability {
  const b = ctx.adapter.backups;
  if (!b) fail('adapter.backups is missing although supports.backups is not false');
  return b;
}

/** Snapshot ids from the probe (temporary ones included), else from the adapter, else undefined. */
export async function snapshotIds(
  ctx: CheckContext,
  target: Target,
): Promise<{ ids: string[]; source: string } | undefined> {
  if (ctx.probe?.listSnapshotIds) {
    const ids = await ctx.call(
      'probe.listSnapshotIds',
      Promise.resolve(ctx.probe.listSnapshotIds(target.probeGuest)),
    );
    return { ids: [...ids].sort(), source: 'probe.listSnapshotIds' };
  }
  const bk = ctx.env.supports.backups;
  if (bk !== false && bk.snapshots && ctx.adapter.backups) {
    const list = await ctx.call('backups.listSnapshots()', ctx.adapter.backups.listSnapshots(target.ref));
    return { ids: list.map((s) => s.id).sort(), source: 'backups.listSnapshots' };
  }
  return undefined;
}

/** Checkpoint ids from the probe, or undefined. */
export async function checkpointIds(ctx: CheckContext, target: Target): Promise<string[] | undefined> {
  if (!ctx.probe?.listCheckpointIds) return undefined;
  const ids = await ctx.call(
    'probe.listCheckpointIds',
    Promise.resolve(ctx.probe.listCheckpointIds(target.probeGuest)),
  );
  return [...ids].sort();
}

/** The snapshots and checkpoints of the target before a backup that must leave none of its own behind. */
export interface BackendBefore {
  snaps: { ids: string[]; source: string } | undefined;
  cps: string[] | undefined;
}

/** Reads what {@link checkNothingLeft} compares with. */
export async function backendBefore(ctx: CheckContext, target: Target): Promise<BackendBefore> {
  return { snaps: await snapshotIds(ctx, target), cps: await checkpointIds(ctx, target) };
}

/**
 * Fails when a backup that did not complete (`the aborted backup`, `the failed backup`) left a complete
 * file in the sink, or a snapshot or checkpoint on the backend that was not there before.
 */
export async function checkNothingLeft(
  ctx: CheckContext,
  target: Target,
  before: BackendBefore,
  sink: CapturingSink,
  subject: { the: string; a: string },
): Promise<void> {
  const complete = [...sink.completeFiles().keys()];
  check(
    complete.length === 0,
    `${subject.the} left complete file(s) ${complete.map((n) => show(n)).join(', ')} in the sink; ${subject.a} must leave nothing that looks complete (remove written files with sink.removeFile)`,
  );
  const snapsAfter = await snapshotIds(ctx, target);
  if (before.snaps && snapsAfter) {
    const left = snapsAfter.ids.filter((id) => !before.snaps?.ids.includes(id));
    check(
      left.length === 0,
      `${subject.the} left snapshot(s) ${left.join(', ')} behind (${snapsAfter.source}); it must remove the temporary snapshot it made`,
    );
  }
  const cpsAfter = await checkpointIds(ctx, target);
  if (before.cps && cpsAfter) {
    const left = cpsAfter.filter((id) => !before.cps?.includes(id));
    check(
      left.length === 0,
      `${subject.the} left checkpoint(s) ${left.join(', ')} behind (probe.listCheckpointIds)`,
    );
  }
}

/** Whether `error` is `target` or has it somewhere in its `cause` chain (at most 8 deep). */
function causedBy(error: unknown, target: unknown): boolean {
  let current = error;
  for (let i = 0; i < 8 && current !== undefined && current !== null; i++) {
    if (current === target) return true;
    current = (current as { cause?: unknown }).cause;
  }
  return false;
}

function dateProblem(value: unknown, what: string, live: boolean): string | undefined {
  if (!(value instanceof Date) || Number.isNaN(value.getTime()))
    return `${what} is ${show(value)}, not a valid Date`;
  if (live && Math.abs(value.getTime() - Date.now()) > TEN_MINUTES) {
    return `${what} is ${value.toISOString()}, more than 10 minutes from now (time zone or unit slip?)`;
  }
  return undefined;
}

/** Everything wrong with one snapshot record. */
export function snapshotProblems(s: Snapshot, who: string): string[] {
  const p: string[] = [];
  if (typeof s !== 'object' || s === null) return [`${who} is ${show(s)}`];
  if (typeof s.id !== 'string' || s.id === '') p.push(`${who}: id is ${show(s.id)}`);
  if (typeof s.name !== 'string') p.push(`${who}: name is ${show(s.name)}`);
  if (s.kind !== 'disk' && s.kind !== 'memory')
    p.push(`${who}: kind is ${show(s.kind)}, not 'disk' or 'memory'`);
  const d = dateProblem(s.createdAt, `${who}: createdAt`, false);
  if (d) p.push(d);
  return p;
}

/**
 * Checks an artifact against what the capturing sink received: every file it lists was received complete,
 * with the same size and sha256, and every complete file is listed.
 */
export function verifyArtifact(
  artifact: BackupArtifact,
  sink: CapturingSink,
  expected: {
    kind: BackupArtifact['kind'];
    guest?: string;
    methods: readonly string[];
    what: string;
    live: boolean;
  },
): void {
  const { what } = expected;
  check(
    artifact && typeof artifact === 'object',
    `${what} resolved with ${show(artifact)}, not a BackupArtifact`,
  );
  const p: string[] = [...sink.problems];
  if (typeof artifact.id !== 'string' || artifact.id === '') p.push(`id is ${show(artifact.id)}`);
  if (artifact.kind !== expected.kind) p.push(`kind is ${show(artifact.kind)}, expected '${expected.kind}'`);
  if (expected.guest !== undefined && artifact.guest !== expected.guest)
    p.push(`guest is ${show(artifact.guest)}, expected ${show(expected.guest)}`);
  if (typeof artifact.method !== 'string' || !expected.methods.includes(artifact.method)) {
    p.push(
      `method ${show(artifact.method)} is not in supports.backups.methods (${expected.methods.join(', ')})`,
    );
  }
  if (artifact.consistency !== 'crash' && artifact.consistency !== 'fs-frozen')
    p.push(`consistency is ${show(artifact.consistency)}`);
  const d = dateProblem(artifact.createdAt, 'createdAt', expected.live);
  if (d) p.push(d);
  if (p.length > 0) fail(`${what} returned a bad artifact: ${p.join('; ')}`);

  check(
    Array.isArray(artifact.files) && artifact.files.length > 0,
    `${what}: the artifact lists no files (${show(artifact.files)})`,
  );
  const complete = sink.completeFiles();
  const listed = new Set<string>();
  for (const f of artifact.files) {
    const name = show(f?.name);
    check(!listed.has(f.name), `${what}: the artifact lists file ${name} twice`);
    listed.add(f.name);
    const got = complete.get(f.name);
    check(
      got,
      () =>
        `${what}: the artifact lists file ${name} but the sink received no complete file of that name (received: ${[...complete.keys()].map((n) => show(n)).join(', ') || 'none'})`,
    );
    check(
      typeof f.sha256 === 'string' && SHA256.test(f.sha256),
      `${what}: artifact file ${name} has sha256 ${show(f.sha256)}, not 64 lower-case hex digits`,
    );
    check(
      f.bytes === got.bytes,
      `${what}: artifact file ${name} says ${show(f.bytes)} bytes but the sink received ${got.bytes}`,
    );
    check(
      f.sha256 === got.sha256,
      `${what}: artifact file ${name} has sha256 ${f.sha256}, which does not match the sha256 of the ${got.bytes} bytes the sink received (${got.sha256})`,
    );
  }
  const unlisted = [...complete.keys()].filter((n) => !listed.has(n));
  check(
    unlisted.length === 0,
    `${what}: the sink received complete file(s) ${unlisted.map((n) => show(n)).join(', ')} that the artifact does not list`,
  );
}

/**
 * Checks a progress log with core's `checkProgressLog` rules: whole, non-negative byte counts; within a phase
 * `processedBytes` never decreases and (`strict`) `totalBytes` does not change and is never exceeded. The
 * strict rules came with restore (issue 11) and apply once an adapter declares `supports.backups.restore`.
 * (The rate of callbacks is checked by `backups.progress`, which times the backup.)
 */
export function verifyProgress(log: Progress[], what: string, strict = true): void {
  check(log.length > 0, `${what}: onProgress was never called`);
  const problems = checkProgressLog(log).filter(
    (p) => strict || !/exceeds totalBytes|totalBytes of phase .* changed/.test(p.message),
  );
  if (problems.length > 0) fail(`${what}: ${problems.map((p) => p.message).join('; ')}`);
}

/** Whether the strict progress rules apply (the adapter declares restore). */
function strictProgress(env: SuiteEnv): boolean {
  return env.supports.backups !== false && env.supports.backups.restore !== false;
}

function methodsOf(env: SuiteEnv): readonly string[] {
  return env.supports.backups === false ? [] : env.supports.backups.methods;
}

/** Runs a full backup into a fresh capturing sink and verifies it; returns the artifact. */
async function fullBackup(ctx: CheckContext, target: Target): Promise<BackupArtifact> {
  const sink = new CapturingSink();
  const progress: Progress[] = [];
  const snapsBefore = await snapshotIds(ctx, target);
  const what = `backups.backup(${show(target.ref)}, sink, { mode: 'full' })`;
  const artifact = await ctx.call(
    what,
    backupsOf(ctx).backup(target.ref, sink, { mode: 'full', onProgress: (p) => progress.push(p) }),
  );
  verifyArtifact(artifact, sink, {
    kind: 'full',
    guest: target.guest?.id,
    methods: methodsOf(ctx.env),
    what,
    live: ctx.live,
  });
  verifyProgress(progress, what, strictProgress(ctx.env));
  const snapsAfter = await snapshotIds(ctx, target);
  if (snapsBefore && snapsAfter) {
    const left = snapsAfter.ids.filter((id) => !snapsBefore.ids.includes(id));
    check(left.length === 0, `${what} left snapshot(s) ${left.join(', ')} behind (${snapsAfter.source})`);
  }
  return artifact;
}

/** The `backups` group. */
export function backupsGroup(env: SuiteEnv): GroupDef {
  const bk = env.supports.backups;
  if (bk === false)
    return { name: 'backups', skipReason: 'not supported by adapter (supports.backups = false)', checks: [] };
  const needs = (flag: boolean, name: string) =>
    flag ? undefined : `not supported by adapter (supports.backups.${name} = false)`;
  const checks: CheckDef[] = [
    {
      id: 'backups.snapshots.list',
      title: 'listSnapshots() returns snapshots with ids, names, kinds and valid dates',
      unavailable: needs(bk.snapshots, 'snapshots'),
      async run(ctx) {
        const t = await ctx.target();
        const list = await ctx.call('backups.listSnapshots()', backupsOf(ctx).listSnapshots(t.ref));
        check(Array.isArray(list), `backups.listSnapshots() returned ${show(list)}, not an array`);
        const p = list.flatMap((s, i) => snapshotProblems(s, `snapshot #${i}`));
        const ids = list.map((s) => s.id);
        if (new Set(ids).size !== ids.length) p.push(`snapshot ids repeat: ${ids.join(', ')}`);
        if (p.length > 0) fail(`backups.listSnapshots() returned bad snapshots: ${p.join('; ')}`);
      },
    },
    {
      id: 'backups.snapshots.create-delete',
      title: 'createSnapshot() then deleteSnapshot(): listed (and on the backend), then gone',
      mutates: true,
      unavailable: needs(bk.snapshots, 'snapshots'),
      async run(ctx) {
        const backups = backupsOf(ctx);
        const t = await ctx.target();
        const old = (await ctx.call('backups.listSnapshots()', backups.listSnapshots(t.ref))).find(
          (s) => s.name === SUITE_SNAPSHOT_NAME,
        );
        if (old) await ctx.call('deleting a leftover suite snapshot', backups.deleteSnapshot(t.ref, old.id));
        const what = `backups.createSnapshot(${show(t.ref)}, { name: '${SUITE_SNAPSHOT_NAME}' })`;
        const snap = await ctx.call(
          what,
          backups.createSnapshot(t.ref, {
            name: SUITE_SNAPSHOT_NAME,
            description: 'hvkit conformance suite',
          }),
        );
        let deleted = false;
        try {
          const p = snapshotProblems(snap, `the snapshot ${what} returned`);
          const d = dateProblem(snap?.createdAt, 'createdAt', ctx.live);
          if (d && ctx.live) p.push(`the snapshot's ${d}`);
          if (p.length > 0) fail(p.join('; '));
          check(snap.name === SUITE_SNAPSHOT_NAME, `${what} returned a snapshot named ${show(snap.name)}`);
          check(
            snap.kind === 'disk',
            `${what} without memory: true returned kind ${show(snap.kind)}, not 'disk'`,
          );
          const listed = await ctx.call('backups.listSnapshots()', backups.listSnapshots(t.ref));
          check(
            listed.some((s) => s.id === snap.id),
            `snapshot ${show(snap.id)} is not in listSnapshots() after ${what}`,
          );
          const onBackend = await snapshotIds(ctx, t);
          if (onBackend)
            check(
              onBackend.ids.includes(snap.id),
              `snapshot ${show(snap.id)} is not on the backend (${onBackend.source}) after ${what}`,
            );
          await ctx.call(`backups.deleteSnapshot(${show(snap.id)})`, backups.deleteSnapshot(t.ref, snap.id));
          deleted = true;
          const after = await ctx.call('backups.listSnapshots()', backups.listSnapshots(t.ref));
          check(
            !after.some((s) => s.id === snap.id),
            `snapshot ${show(snap.id)} is still listed after deleteSnapshot()`,
          );
          const backendAfter = await snapshotIds(ctx, t);
          if (backendAfter)
            check(
              !backendAfter.ids.includes(snap.id),
              `snapshot ${show(snap.id)} is still on the backend (${backendAfter.source}) after deleteSnapshot()`,
            );
        } finally {
          if (!deleted && snap && typeof snap.id === 'string')
            await backups.deleteSnapshot(t.ref, snap.id).catch(() => {});
        }
      },
    },
    {
      id: 'backups.snapshots.delete-not-found',
      title: 'deleteSnapshot() of an unknown snapshot is NOT_FOUND',
      unavailable: needs(bk.snapshots, 'snapshots'),
      async run(ctx) {
        const t = await ctx.target();
        const what = `backups.deleteSnapshot(${show(t.ref)}, '${MISSING_SNAPSHOT_ID}')`;
        await expectHvkitError(
          ctx.call(what, backupsOf(ctx).deleteSnapshot(t.ref, MISSING_SNAPSHOT_ID)),
          'NOT_FOUND',
          what,
        );
      },
    },
    {
      id: 'backups.full',
      title:
        'a full backup: sha256 and size of each file match what the sink received; progress grows; nothing left behind',
      mutates: true,
      unavailable: needs(bk.full, 'full'),
      async run(ctx) {
        const t = await ctx.target();
        const cpBefore = await checkpointIds(ctx, t);
        const artifact = await fullBackup(ctx, t);
        if (bk.incremental) {
          check(
            typeof artifact.checkpoint === 'string' && artifact.checkpoint !== '',
            `the adapter supports incremental backups but a full backup returned checkpoint ${show(artifact.checkpoint)}`,
          );
        }
        const cpAfter = await checkpointIds(ctx, t);
        if (cpAfter && artifact.checkpoint !== undefined) {
          check(
            cpAfter.includes(artifact.checkpoint),
            `the artifact's checkpoint ${show(artifact.checkpoint)} is not on the backend (probe.listCheckpointIds: ${cpAfter.join(', ') || 'none'})`,
          );
          const extra = cpAfter.filter((id) => id !== artifact.checkpoint && !(cpBefore ?? []).includes(id));
          check(
            extra.length === 0,
            `the full backup created checkpoint(s) ${extra.join(', ')} besides the artifact's`,
          );
        }
      },
    },
    {
      id: 'backups.incremental',
      title: "an incremental backup since the full one's checkpoint verifies and names its parent",
      mutates: true,
      unavailable: !bk.full
        ? 'needs full backups (supports.backups.full = false)'
        : needs(bk.incremental, 'incremental'),
      async run(ctx) {
        const t = await ctx.target();
        const full = await fullBackup(ctx, t);
        check(
          typeof full.checkpoint === 'string' && full.checkpoint !== '',
          `a full backup returned checkpoint ${show(full.checkpoint)}; incremental backups need one`,
        );
        const sink = new CapturingSink();
        const progress: Progress[] = [];
        const what = `backups.backup(${show(t.ref)}, sink, { mode: 'incremental', sinceCheckpoint: ${show(full.checkpoint)} })`;
        const inc = await ctx.call(
          what,
          backupsOf(ctx).backup(t.ref, sink, {
            mode: 'incremental',
            sinceCheckpoint: full.checkpoint,
            onProgress: (p) => progress.push(p),
          }),
        );
        verifyArtifact(inc, sink, {
          kind: 'incremental',
          guest: t.guest?.id,
          methods: methodsOf(ctx.env),
          what,
          live: ctx.live,
        });
        verifyProgress(progress, what, strictProgress(ctx.env));
        check(
          inc.parentCheckpoint === full.checkpoint,
          `${what} returned parentCheckpoint ${show(inc.parentCheckpoint)}, expected ${show(full.checkpoint)}`,
        );
        check(
          typeof inc.checkpoint === 'string' && inc.checkpoint !== full.checkpoint,
          `${what} returned checkpoint ${show(inc.checkpoint)}; it must create a new one for the next incremental`,
        );
        const cps = await checkpointIds(ctx, t);
        if (cps)
          check(
            cps.includes(inc.checkpoint as string),
            `checkpoint ${show(inc.checkpoint)} is not on the backend (probe.listCheckpointIds)`,
          );
      },
    },
    {
      id: 'backups.host-config',
      title: "backupHostConfig(): a 'host-config' artifact whose files match what the sink received",
      unavailable: needs(bk.hostConfig, 'hostConfig'),
      async run(ctx) {
        const sink = new CapturingSink();
        const what = 'backups.backupHostConfig(sink)';
        const artifact = await ctx.call(what, backupsOf(ctx).backupHostConfig!(sink));
        verifyArtifact(artifact, sink, {
          kind: 'host-config',
          methods: methodsOf(ctx.env),
          what,
          live: ctx.live,
        });
      },
    },
    {
      id: 'backups.sink-failure',
      title:
        'a sink that fails midway (a full disk): the backup rejects with its error, leaving no snapshot, checkpoint or complete file',
      mutates: true,
      unavailable: needs(bk.full, 'full'),
      async run(ctx) {
        const t = await ctx.target();
        const before = await backendBefore(ctx, t);
        const sink = new CapturingSink();
        sink.failAfterBytes = 1;
        const call = `backups.backup(${show(t.ref)}, sink)`;
        const what = `${call} with a sink that fails at its first chunk`;
        let value: unknown;
        try {
          value = await ctx.call(call, backupsOf(ctx).backup(t.ref, sink));
        } catch (error) {
          if (error instanceof ConformanceFailure) throw error;
          if (!sink.failure) {
            fail(
              `${call} wrote no data to the sink, so the suite could not fail it midway (it rejected with ${describeError(error)})`,
              error,
            );
          }
          check(
            HvkitError.isInstance(error) && causedBy(error, sink.failure),
            `${what} rejected with ${describeError(error)}; expected the sink's error (HvkitError REMOTE, backendCode ENOSPC) or an HvkitError caused by it`,
          );
          await checkNothingLeft(ctx, t, before, sink, { the: 'the failed backup', a: 'a failed backup' });
          return;
        }
        fail(`${what} resolved (with ${show(value)}); expected it to reject with the sink's error`);
      },
    },
    {
      id: 'backups.not-found',
      title: 'every guest method rejects an unknown guest with NOT_FOUND, writing nothing',
      async run(ctx) {
        const backups = backupsOf(ctx);
        const ref = { name: MISSING_GUEST_ID };
        const text = `{ name: "${MISSING_GUEST_ID}" }`;
        if (bk.snapshots) {
          await expectHvkitError(
            ctx.call('listSnapshots', backups.listSnapshots(ref)),
            'NOT_FOUND',
            `backups.listSnapshots(${text})`,
          );
          await expectHvkitError(
            ctx.call('createSnapshot', backups.createSnapshot(ref, { name: SUITE_SNAPSHOT_NAME })),
            'NOT_FOUND',
            `backups.createSnapshot(${text})`,
          );
          await expectHvkitError(
            ctx.call('deleteSnapshot', backups.deleteSnapshot(ref, MISSING_SNAPSHOT_ID)),
            'NOT_FOUND',
            `backups.deleteSnapshot(${text}, ...)`,
          );
          if (backups.revertSnapshot) {
            await expectHvkitError(
              ctx.call('revertSnapshot', backups.revertSnapshot(ref, MISSING_SNAPSHOT_ID)),
              'NOT_FOUND',
              `backups.revertSnapshot(${text}, ...)`,
            );
          }
        }
        if (bk.full) {
          const sink = new CapturingSink();
          await expectHvkitError(
            ctx.call('backup', backups.backup(ref, sink)),
            'NOT_FOUND',
            `backups.backup(${text}, sink)`,
          );
          check(
            sink.completeFiles().size === 0,
            `backups.backup(${text}) rejected but left complete files in the sink`,
          );
        }
      },
    },
  ];
  return { name: 'backups', checks: [...checks, ...restoreChecks(env)] };
}
