import {
  BACKUP_MANIFEST_FILE,
  type BackupArtifact,
  type BackupManifest,
  type BackupSource,
  checkProgressLog,
  type Guest,
  type GuestRef,
  HvkitError,
  type Progress,
  parseBackupManifest,
  type RestoreResult,
} from '@hvkit/core';
import { check, describeError, fail, show } from './assert';
import { CapturingSink } from './capturing-sink';
import { backupsOf } from './checks-backups';
import type { CheckContext, CheckDef, SuiteEnv, Target } from './context';
import type { ProbeGuest } from './types';

/** The fixed name of the guest the restore checks create (fixed so replays match recordings). */
export const SUITE_RESTORED_NAME = 'hvkit-conformance-restored';

/** A full backup of `ref` into a capturing sink that keeps the data. */
async function backupKept(
  ctx: CheckContext,
  ref: GuestRef,
  options: {
    mode?: 'full' | 'incremental';
    sinceCheckpoint?: string;
    onProgress?: (p: Progress) => void;
  } = {},
): Promise<{ sink: CapturingSink; artifact: BackupArtifact }> {
  const sink = new CapturingSink({ keepData: true });
  const what = `backups.backup(${show(ref)}, sink, { mode: '${options.mode ?? 'full'}' })`;
  const artifact = await ctx.call(what, backupsOf(ctx).backup(ref, sink, { mode: 'full', ...options }));
  return { sink, artifact };
}

/**
 * Checks that an artifact is self-describing: it has a folder, lists its manifest last, and the manifest
 * (the last file the sink completed) lists every other file with the size and sha256 the sink received, and
 * a definition. Returns the manifest.
 */
export function checkSelfDescribing(
  artifact: BackupArtifact,
  sink: CapturingSink,
  what: string,
): BackupManifest {
  check(
    typeof artifact.path === 'string' && artifact.path.split('/').length === 2,
    `${what}: artifact.path is ${show(artifact.path)}; it must be the artifact's folder '<guest>/<id>'`,
  );
  const path = artifact.path as string;
  check(
    path.endsWith(`/${artifact.id}`),
    `${what}: artifact.path ${show(path)} does not end with the artifact id ${show(artifact.id)}`,
  );
  const names = artifact.files.map((f) => f.name);
  const manifestName = `${path}/${BACKUP_MANIFEST_FILE}`;
  check(
    names.at(-1) === manifestName,
    `${what}: the artifact's last file is ${show(names.at(-1))}, not its manifest ${show(manifestName)}`,
  );
  const outside = names.filter((n) => !n.startsWith(`${path}/`));
  check(
    outside.length === 0,
    `${what}: file(s) ${outside.map(show).join(', ')} are outside the folder ${show(path)}`,
  );
  const completed = sink.writes.filter((w) => w.status === 'complete' || w.status === 'removed');
  check(
    completed.at(-1)?.name === manifestName,
    `${what}: the manifest was not the last file written (last: ${show(completed.at(-1)?.name)}); an artifact without a manifest must be incomplete`,
  );
  const data = sink.completeFiles().get(manifestName)?.data;
  check(data, `${what}: the sink holds no manifest ${show(manifestName)}`);
  let manifest: BackupManifest;
  try {
    manifest = parseBackupManifest(data);
  } catch (error) {
    fail(`${what}: the manifest does not parse: ${describeError(error)}`, error);
  }
  check(
    manifest.id === artifact.id,
    `${what}: the manifest's id ${show(manifest.id)} is not the artifact's ${show(artifact.id)}`,
  );
  check(
    manifest.kind === artifact.kind,
    `${what}: the manifest's kind ${show(manifest.kind)} is not ${show(artifact.kind)}`,
  );
  const complete = sink.completeFiles();
  const listed = new Set<string>();
  for (const f of manifest.files) {
    const name = `${path}/${f.name}`;
    listed.add(name);
    const got = complete.get(name);
    check(got, `${what}: the manifest lists ${show(f.name)}, which the sink did not receive`);
    check(
      got.bytes === f.bytes && got.sha256 === f.sha256,
      `${what}: the manifest says ${show(f.name)} has ${f.bytes} bytes, sha256 ${f.sha256}; the sink received ${got.bytes} bytes, sha256 ${got.sha256}`,
    );
  }
  const unlisted = names.filter((n) => n !== manifestName && !listed.has(n));
  check(unlisted.length === 0, `${what}: file(s) ${unlisted.map(show).join(', ')} are not in the manifest`);
  check(
    manifest.files.some((f) => f.role === 'definition'),
    `${what}: the manifest lists no definition file (role 'definition'); a backup must save the guest's definition`,
  );
  if (artifact.kind === 'full') {
    check(
      manifest.chain?.position === 0 && manifest.chain.id === artifact.id && artifact.chain === artifact.id,
      `${what}: a full backup must start a chain named after itself (manifest chain ${show(manifest.chain)}, artifact.chain ${show(artifact.chain)})`,
    );
  }
  return manifest;
}

/** What a failed or aborted restore must leave unchanged, read through the probe. */
async function backendState(ctx: CheckContext): Promise<{ guests?: string[]; volumes?: string[] }> {
  const p = ctx.probe;
  const out: { guests?: string[]; volumes?: string[] } = {};
  if (p?.listGuestNames)
    out.guests = [...(await ctx.call('probe.listGuestNames', Promise.resolve(p.listGuestNames())))].sort();
  if (p?.listVolumes)
    out.volumes = [...(await ctx.call('probe.listVolumes', Promise.resolve(p.listVolumes())))].sort();
  return out;
}

function compareState(
  before: { guests?: string[]; volumes?: string[] },
  after: typeof before,
  what: string,
): void {
  for (const key of ['guests', 'volumes'] as const) {
    const b = before[key];
    const a = after[key];
    if (!b || !a) continue;
    const added = a.filter((x) => !b.includes(x));
    const removed = b.filter((x) => !a.includes(x));
    check(
      added.length === 0 && removed.length === 0,
      `${what} changed the backend's ${key}: ${[...added.map((x) => `+${x}`), ...removed.map((x) => `-${x}`)].join(', ')} (probe.${key === 'guests' ? 'listGuestNames' : 'listVolumes'})`,
    );
  }
  const named = (after.guests ?? []).includes(SUITE_RESTORED_NAME);
  check(!named, `${what} left a guest named ${SUITE_RESTORED_NAME}`);
}

const probeGuestOf = (g: Guest | { id: string; name: string; uuid?: string }): ProbeGuest => ({
  ref: { id: g.id },
  id: g.id,
  name: g.name,
  ...(g.uuid ? { uuid: g.uuid } : {}),
});

/** Removes a guest the suite restored, through the probe. */
async function removeRestored(ctx: CheckContext, guest: ProbeGuest): Promise<void> {
  await ctx.call(
    `probe.removeGuest(${show(guest.name ?? guest.id)})`,
    Promise.resolve(ctx.probe?.removeGuest?.(guest)),
  );
}

/** Removes a guest named like the suite's restored guest that an earlier, interrupted run left. */
async function removeLeftover(ctx: CheckContext): Promise<void> {
  const probe = ctx.probe;
  if (!probe?.removeGuest) return;
  const ref: ProbeGuest = { ref: { name: SUITE_RESTORED_NAME }, name: SUITE_RESTORED_NAME };
  const exists = probe.guestExists
    ? await ctx.call('probe.guestExists', Promise.resolve(probe.guestExists(ref)))
    : probe.listGuestNames
      ? (await ctx.call('probe.listGuestNames', Promise.resolve(probe.listGuestNames()))).includes(
          SUITE_RESTORED_NAME,
        )
      : false;
  if (exists) await removeRestored(ctx, ref);
}

/** Compares a restored guest with the original: definition equal, identity new, disk content equal. */
async function compareRestored(
  ctx: CheckContext,
  original: Guest,
  originalSums: Map<string, string> | undefined,
  result: RestoreResult,
  what: string,
): Promise<void> {
  check(
    result && typeof result === 'object' && result.guest,
    `${what} resolved with ${show(result)}, not a RestoreResult`,
  );
  const g = result.guest;
  const p: string[] = [];
  if (g.name !== SUITE_RESTORED_NAME)
    p.push(`name is ${show(g.name)}, not the ${show(SUITE_RESTORED_NAME)} asked for`);
  if (g.id === original.id) p.push(`id ${show(g.id)} is the original's`);
  if (g.uuid === original.uuid) p.push(`uuid ${show(g.uuid)} is the original's`);
  if (g.vcpus !== original.vcpus) p.push(`vcpus ${g.vcpus}, the original has ${original.vcpus}`);
  if (g.memoryBytes !== original.memoryBytes)
    p.push(`memoryBytes ${g.memoryBytes}, the original has ${original.memoryBytes}`);
  // Paired by device, or by position when the device names the volume (options.restoredDisks 'order').
  const byOrder = ctx.env.options.restoredDisks === 'order';
  const disks = (list: Guest['disks']) => {
    const out = list.map((d) =>
      byOrder ? `${d.capacityBytes ?? '?'}` : `${d.device}:${d.capacityBytes ?? '?'}`,
    );
    return (byOrder ? out : out.sort()).join(', ');
  };
  if (disks(g.disks) !== disks(original.disks))
    p.push(
      `disks [${disks(g.disks)}], the original has [${disks(original.disks)}]${byOrder ? ' (capacities, in order)' : ''}`,
    );
  const nics = (list: Guest['nics']) =>
    list
      .map((n) => `${n.device ?? '?'}@${n.network ?? '?'}`)
      .sort()
      .join(', ');
  if (g.nics.length !== original.nics.length)
    p.push(`NICs [${nics(g.nics)}], the original has [${nics(original.nics)}]`);
  const macs = new Set(original.nics.map((n) => n.mac?.toLowerCase()).filter((m) => m !== undefined));
  const kept = g.nics.filter((n) => n.mac !== undefined && macs.has(n.mac.toLowerCase())).map((n) => n.mac);
  if (kept.length > 0)
    p.push(`NIC MAC(s) ${kept.join(', ')} are the original's; a restored guest needs new ones`);
  if (p.length > 0) fail(`${what}: the restored guest differs from what was backed up: ${p.join('; ')}`);
  if (ctx.probe?.diskSha256 && originalSums) {
    for (const [i, d] of original.disks.entries()) {
      const want = originalSums.get(d.device);
      const device = byOrder ? (g.disks[i]?.device ?? d.device) : d.device;
      const got = await ctx.call(
        `probe.diskSha256(restored, ${show(device)})`,
        Promise.resolve(ctx.probe.diskSha256(probeGuestOf(g), device)),
      );
      check(
        got === want,
        `${what}: disk ${d.device} of the restored guest has sha256 ${got}, the original's was ${want}`,
      );
    }
  }
}

async function diskSums(
  ctx: CheckContext,
  t: Target,
  guest: Guest,
): Promise<Map<string, string> | undefined> {
  const probe = ctx.probe;
  if (!probe?.diskSha256) return undefined;
  const out = new Map<string, string>();
  for (const d of guest.disks) {
    out.set(
      d.device,
      await ctx.call(
        `probe.diskSha256(${show(d.device)})`,
        Promise.resolve(probe.diskSha256(t.probeGuest, d.device)),
      ),
    );
  }
  return out;
}

/**
 * Awaits a restore that must fail: `problem(error)` says what is wrong with the rejection (undefined when it
 * is the one expected); then nothing may have changed on the backend. A restore that resolves has its guest
 * removed and fails the check with `resolved`.
 */
async function expectRestoreFailure(
  ctx: CheckContext,
  what: string,
  promise: Promise<RestoreResult>,
  before: { guests?: string[]; volumes?: string[] },
  problem: (error: unknown) => string | undefined,
  resolved: string,
): Promise<void> {
  let value: RestoreResult | undefined;
  try {
    value = await ctx.call(what, promise);
  } catch (error) {
    const wrong = problem(error);
    if (wrong !== undefined) fail(wrong, error);
    compareState(before, await backendState(ctx), `the failed ${what}`);
    return;
  }
  if (value?.guest && ctx.probe?.removeGuest) await removeRestored(ctx, probeGuestOf(value.guest));
  fail(resolved);
}

/** Whether a value is an HvkitError with `reason` in its details. */
function hasReason(error: unknown, reason: string): boolean {
  return (
    HvkitError.isInstance(error) && (error.details as { reason?: unknown } | undefined)?.reason === reason
  );
}

/** The restore and artifact checks of the `backups` group (issue 11). */
export function restoreChecks(env: SuiteEnv): CheckDef[] {
  const bk = env.supports.backups;
  if (bk === false) return [];
  const rs = bk.restore;
  const needsFull = bk.full ? undefined : 'not supported by adapter (supports.backups.full = false)';
  // Self-describing artifacts and the progress rules came with restore (issue 11): an adapter that declares
  // no restore yet writes the older layout, and these checks wait until it declares one.
  const needsArtifacts =
    needsFull ??
    (rs === false
      ? 'supports.backups.restore = false: artifacts and progress are checked once the adapter restores'
      : undefined);
  const needsAsNew =
    needsFull ??
    (rs === false
      ? 'not supported by adapter (supports.backups.restore = false)'
      : rs.asNew
        ? undefined
        : 'not supported by adapter (supports.backups.restore.asNew = false)');
  const restoreOptions = (source: BackupSource, artifact: string, extra: Record<string, unknown> = {}) => ({
    artifact,
    name: SUITE_RESTORED_NAME,
    ...(env.options.restoreStorage === undefined ? {} : { storage: env.options.restoreStorage }),
    ...extra,
    source,
  });
  /** Runs `restore` with the suite's options; the caller removes what it restored. */
  const restore = (
    ctx: CheckContext,
    source: BackupSource,
    artifact: string,
    extra: Record<string, unknown> = {},
  ) => {
    const { source: _s, ...options } = restoreOptions(source, artifact, extra);
    const what = `backups.restore(source, { artifact: ${show(artifact)}, name: '${SUITE_RESTORED_NAME}' })`;
    return { what, promise: backupsOf(ctx).restore!(source, options) };
  };
  const needProbe = (ctx: CheckContext, ...methods: (keyof NonNullable<CheckContext['probe']>)[]) => {
    const missing = methods.filter((m) => typeof ctx.probe?.[m] !== 'function');
    if (missing.length > 0)
      ctx.skip(`needs probe.${missing.join(', probe.')} (the restored guest must be removed afterwards)`);
  };

  return [
    {
      id: 'backups.artifact.self-describing',
      title:
        'a full backup is a folder with the definition, every file listed with its size and sha256, the manifest last',
      mutates: true,
      unavailable: needsArtifacts,
      async run(ctx) {
        const t = await ctx.target();
        const { sink, artifact } = await backupKept(ctx, t.ref);
        checkSelfDescribing(artifact, sink, `backups.backup(${show(t.ref)})`);
      },
    },
    {
      id: 'backups.progress',
      title:
        'backup progress: totals per phase never exceeded, only growing, at most ~10 callbacks per second plus the last',
      mutates: true,
      unavailable: needsArtifacts,
      async run(ctx) {
        const t = await ctx.target();
        const log: Progress[] = [];
        const started = Date.now();
        await backupKept(ctx, t.ref, { onProgress: (p) => log.push({ ...p }) });
        const elapsed = Date.now() - started;
        check(log.length > 0, 'backups.backup(): onProgress was never called');
        const problems = checkProgressLog(log, { elapsedMs: elapsed });
        if (problems.length > 0)
          fail(`backups.backup() progress: ${problems.map((p) => p.message).join('; ')}`);
      },
    },
    {
      id: 'backups.chains',
      title: 'two full backups: listCheckpoints shows only the newest chain among hvkit checkpoints',
      mutates: true,
      unavailable:
        needsFull ??
        (bk.checkpoints && bk.incremental
          ? undefined
          : 'not supported by adapter (supports.backups.checkpoints or incremental = false)'),
      async run(ctx) {
        const t = await ctx.target();
        const first = (await backupKept(ctx, t.ref)).artifact;
        const second = (await backupKept(ctx, t.ref)).artifact;
        check(
          typeof second.chain === 'string' && second.chain !== first.chain,
          `two full backups returned chains ${show(first.chain)} and ${show(second.chain)}; each full backup starts a new chain`,
        );
        const list = await ctx.call('backups.listCheckpoints()', backupsOf(ctx).listCheckpoints!(t.ref));
        check(Array.isArray(list), `backups.listCheckpoints() returned ${show(list)}`);
        const managed = list.filter((c) => c.managed);
        const stale = managed.filter((c) => c.chain !== second.chain);
        check(
          stale.length === 0,
          `after a second full backup, hvkit checkpoint(s) of older chains remain: ${stale.map((c) => `${c.id} (chain ${c.chain})`).join(', ')}`,
        );
        check(
          managed.some((c) => c.id === second.checkpoint),
          `listCheckpoints() does not show the newest backup's checkpoint ${show(second.checkpoint)} as hvkit's`,
        );
        check(
          !list.some((c) => c.id === first.checkpoint),
          `the first full backup's checkpoint ${show(first.checkpoint)} is still there after the second full backup`,
        );
      },
    },
    {
      id: 'backups.cleanup.nothing-left',
      title: 'cleanup() after a clean backup removes nothing and returns removed/kept lists',
      mutates: true,
      unavailable: bk.cleanup ? undefined : 'not supported by adapter (supports.backups.cleanup = false)',
      async run(ctx) {
        const t = await ctx.target();
        if (bk.full) await backupKept(ctx, t.ref);
        const result = await ctx.call('backups.cleanup()', backupsOf(ctx).cleanup!(t.ref));
        check(
          result && Array.isArray(result.removed) && Array.isArray(result.kept),
          `backups.cleanup() returned ${show(result)}, not { removed: [], kept: [] }`,
        );
        check(result.removed.length === 0, `cleanup() after a clean backup removed ${show(result.removed)}`);
      },
    },
    {
      id: 'backups.restore.as-new',
      title:
        'restore as a new guest: same definition (vcpus, memory, disks, NICs) and disk content, new ids and MACs',
      mutates: true,
      unavailable: needsAsNew,
      async run(ctx) {
        needProbe(ctx, 'removeGuest');
        const t = await ctx.target();
        await removeLeftover(ctx);
        const original =
          t.guest ?? ctx.skip('needs the inventory, to compare the restored guest with the original');
        const { sink, artifact } = await backupKept(ctx, t.ref);
        const sums = await diskSums(ctx, t, original);
        const log: Progress[] = [];
        const { what, promise } = restore(ctx, sink.source(), artifact.id, {
          onProgress: (p: Progress) => log.push({ ...p }),
        });
        const result = await ctx.call(what, promise);
        try {
          await compareRestored(ctx, original, sums, result, what);
          check(
            Array.isArray(result.artifacts) && result.artifacts.at(-1) === artifact.id,
            `${what}: result.artifacts is ${show(result.artifacts)}, expected to end with ${show(artifact.id)}`,
          );
          const problems = checkProgressLog(log);
          if (problems.length > 0) fail(`${what} progress: ${problems.map((p) => p.message).join('; ')}`);
        } finally {
          await removeRestored(ctx, probeGuestOf(result.guest));
        }
      },
    },
    {
      id: 'backups.restore.incremental-chain',
      title:
        'restore an incremental backup as new: the chain (full, then incremental) gives the disk content at the incremental',
      mutates: true,
      unavailable:
        needsAsNew ??
        (bk.incremental && rs !== false && rs.incrementalChains
          ? undefined
          : 'not supported by adapter (supports.backups.incremental or restore.incrementalChains = false)'),
      async run(ctx) {
        needProbe(ctx, 'removeGuest');
        const t = await ctx.target();
        await removeLeftover(ctx);
        const original =
          t.guest ?? ctx.skip('needs the inventory, to compare the restored guest with the original');
        const { sink, artifact: full } = await backupKept(ctx, t.ref);
        const what = `backups.backup(${show(t.ref)}, sink, { mode: 'incremental' })`;
        // The incremental goes into the same sink: the source then holds the whole chain.
        const inc = await ctx.call(
          what,
          backupsOf(ctx).backup(t.ref, sink, {
            mode: 'incremental',
            sinceCheckpoint: full.checkpoint as string,
          }),
        );
        check(
          inc.chain === full.chain,
          `${what} returned chain ${show(inc.chain)}, the full backup's is ${show(full.chain)}`,
        );
        checkSelfDescribing(inc, sink, what);
        const sums = await diskSums(ctx, t, original);
        const r = restore(ctx, sink.source(), inc.id);
        const result = await ctx.call(r.what, r.promise);
        try {
          check(
            Array.isArray(result.artifacts) && result.artifacts.join(',') === `${full.id},${inc.id}`,
            `${r.what}: result.artifacts is ${show(result.artifacts)}, expected the chain [${full.id}, ${inc.id}]`,
          );
          await compareRestored(ctx, original, sums, result, r.what);
        } finally {
          await removeRestored(ctx, probeGuestOf(result.guest));
        }
      },
    },
    {
      id: 'backups.restore.corrupt',
      title:
        'restore of an artifact with one flipped byte: INVALID_ARGUMENT artifact-mismatch, no guest or volume created',
      mutates: true,
      unavailable: needsAsNew,
      async run(ctx) {
        const t = await ctx.target();
        const { sink, artifact } = await backupKept(ctx, t.ref);
        const manifest = checkSelfDescribing(artifact, sink, 'backups.backup()');
        const victim =
          [...manifest.files]
            .filter((f) => f.role === 'disk' && f.bytes > 0)
            .sort((a, b) => b.bytes - a.bytes)[0] ?? manifest.files.find((f) => f.bytes > 0);
        check(victim, 'the artifact has no non-empty file to corrupt');
        sink.corrupt(`${artifact.path}/${victim.name}`, Math.floor(victim.bytes / 2));
        const before = await backendState(ctx);
        const { what, promise } = restore(ctx, sink.source(), artifact.id);
        await expectRestoreFailure(
          ctx,
          what,
          promise,
          before,
          (error) =>
            HvkitError.isInstance(error, 'INVALID_ARGUMENT') && hasReason(error, 'artifact-mismatch')
              ? undefined
              : `${what} with byte ${Math.floor(victim.bytes / 2)} of ${victim.name} flipped rejected with ${describeError(error)}; expected INVALID_ARGUMENT with details.reason 'artifact-mismatch'`,
          `${what} restored an artifact whose ${victim.name} has a flipped byte; it must verify every file against the manifest`,
        );
      },
    },
    {
      id: 'backups.restore.abort',
      title:
        'a restore aborted at several points (first chunk, middle, last chunk) rejects with ABORTED and leaves nothing',
      mutates: true,
      unavailable: needsAsNew,
      async run(ctx) {
        const t = await ctx.target();
        const { sink, artifact } = await backupKept(ctx, t.ref);
        const manifest = checkSelfDescribing(artifact, sink, 'backups.backup()');
        const chunks = manifest.files.reduce((n, f) => n + Math.ceil(f.bytes / (64 * 1024)), 0);
        const points = [...new Set([1, Math.max(1, Math.floor(chunks / 2)), Math.max(1, chunks)])];
        const before = await backendState(ctx);
        for (const at of points) {
          const controller = new AbortController();
          const source = sink.source({ onChunk: (n) => n === at && controller.abort() });
          const { what, promise } = restore(ctx, source, artifact.id, { signal: controller.signal });
          const label = `${what} aborted after chunk ${at} of ${chunks}`;
          await expectRestoreFailure(
            ctx,
            label,
            promise,
            before,
            (error) =>
              HvkitError.isInstance(error, 'ABORTED')
                ? undefined
                : `${label} rejected with ${describeError(error)}; expected ABORTED`,
            `${label} resolved; an aborted restore must reject with ABORTED and leave nothing`,
          );
        }
      },
    },
    {
      id: 'backups.diskless',
      title: 'a backup of a guest without disks is a valid artifact holding its definition',
      mutates: true,
      unavailable:
        needsArtifacts ??
        (env.options.disklessGuest === undefined
          ? 'no disk-less guest given (options.disklessGuest)'
          : undefined),
      async run(ctx) {
        const ref = env.options.disklessGuest as GuestRef;
        const { sink, artifact } = await backupKept(ctx, ref);
        const manifest = checkSelfDescribing(artifact, sink, `backups.backup(${show(ref)})`);
        check(
          !manifest.files.some((f) => f.role === 'disk'),
          `the backup of disk-less guest ${show(ref)} lists disk files: ${manifest.files.map((f) => f.name).join(', ')}`,
        );
        if (needsAsNew === undefined && ctx.probe?.removeGuest && ctx.adapter.inventory) {
          await removeLeftover(ctx);
          const original = await ctx.call('inventory.getGuest', ctx.adapter.inventory.getGuest(ref));
          const { what, promise } = restore(ctx, sink.source(), artifact.id);
          const result = await ctx.call(what, promise);
          try {
            await compareRestored(ctx, original, undefined, result, what);
          } finally {
            await removeRestored(ctx, probeGuestOf(result.guest));
          }
        }
      },
    },
  ];
}
