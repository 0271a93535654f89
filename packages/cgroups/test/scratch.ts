/**
 * Scratch cgroups for live tests, made with plain commands (never this package's code), locally or over
 * SSH through an ExecTransport: `hvkit-test-<random>` in each v1 hierarchy the test needs, or on cgroup
 * v2 a parent with `+cpu +memory +io +pids` in its subtree_control and a leaf child as the guest. A
 * `sleep` can be put in it so it is a populated group like a guest's. `remove()` kills what runs in it,
 * waits for `populated 0` / empty `cgroup.procs` (rmdir is EBUSY until then) and removes every directory.
 */

import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { ExecTransport } from '@hvkit/core';

/** A scratch group. */
export interface ScratchGroup {
  /** The guest's id (path relative to the hierarchy roots). */
  id: string;
  /** The group's directory per hierarchy mount point. */
  dirs: string[];
  /** Runs `sleep` inside the group; resolves to its pid. */
  populate(): Promise<number>;
  /** Kills what runs in the group and removes every directory it made (idempotent). */
  remove(): Promise<void>;
}

async function sh(exec: ExecTransport, script: string, ...args: string[]): Promise<string> {
  const r = await exec.exec({ argv: ['sh', '-c', script, 'sh', ...args], timeoutMs: 20_000 });
  if (r.exitCode !== 0) {
    throw new Error(`sh -c ${JSON.stringify(script)} failed (${r.exitCode}): ${r.stderr.toString().trim()}`);
  }
  return r.stdout.toString();
}

/** A random scratch name, `hvkit-test-<hex>`. */
export function scratchName(): string {
  return `hvkit-test-${randomBytes(5).toString('hex')}`;
}

/**
 * Creates a scratch group. `mounts` are the v1 mount points to create it in (`/sys/fs/cgroup/cpu`, ...),
 * or `{ v2: '/sys/fs/cgroup' }` for a parent + leaf on cgroup v2. `child` makes a child group under it on
 * v1 as well (the guest is then the child; the parent can carry its own limits).
 */
export async function createScratchGroup(
  exec: ExecTransport,
  mounts: readonly string[] | { v2: string },
  options: { child?: boolean; name?: string } = {},
): Promise<ScratchGroup> {
  const name = options.name ?? scratchName();
  const v2 = !Array.isArray(mounts) ? (mounts as { v2: string }).v2 : undefined;
  const bases = v2 ? [v2] : (mounts as readonly string[]);
  const parents = bases.map((m) => posix.join(m, name));
  const leafName = v2 || options.child ? 'guest' : undefined;
  const id = leafName ? `${name}/${leafName}` : name;
  const dirs = bases.map((m) => posix.join(m, id));
  let removed = false;
  await sh(exec, 'mkdir -- "$@"', ...parents);
  try {
    if (v2) {
      // Enable the controllers at the root (usually already on) and in our parent, then make the leaf.
      await sh(
        exec,
        'for c in cpu memory io pids; do grep -qw "$c" "$1/cgroup.subtree_control" || echo "+$c" > "$1/cgroup.subtree_control"; done; echo "+cpu +memory +io +pids" > "$2/cgroup.subtree_control"',
        v2,
        parents[0] as string,
      );
    }
    if (leafName) await sh(exec, 'mkdir -- "$@"', ...dirs);
  } catch (error) {
    await sh(exec, 'rmdir -- "$@" 2>/dev/null || true', ...parents);
    throw error;
  }
  return {
    id,
    dirs,
    async populate() {
      const procs = dirs.map((d) => posix.join(d, 'cgroup.procs'));
      // The shell moves itself into the group(s), then becomes sleep (same pid); it runs detached.
      await sh(
        exec,
        'nohup sh -c \'for f; do echo $$ > "$f"; done; exec sleep 600\' sh "$@" >/dev/null 2>&1 & echo $!',
        ...procs,
      );
      const first = procs[0] as string;
      for (let i = 0; i < 50; i++) {
        const pid = (await sh(exec, 'cat -- "$1"', first)).trim().split('\n')[0];
        if (pid && /^\d+$/.test(pid)) return Number(pid);
        await new Promise((r) => setTimeout(r, 100));
      }
      throw new Error(`no process arrived in ${first}`);
    },
    async remove() {
      if (removed) return;
      // Kill every process in the leaf groups, wait until they are empty (rmdir is EBUSY before), then
      // remove leaves and parents. Bounded: 10 s.
      await sh(
        exec,
        `for d; do [ -d "$d" ] || continue; for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done; done
n=0; for d; do while [ -d "$d" ] && [ -n "$(cat "$d/cgroup.procs" 2>/dev/null)" ] && [ $n -lt 100 ]; do sleep 0.1; n=$((n+1)); done; done
for d; do [ -d "$d" ] && rmdir -- "$d"; done; true`,
        ...dirs,
      );
      if (leafName) await sh(exec, 'for d; do [ -d "$d" ] && rmdir -- "$d"; done; true', ...parents);
      const left = await sh(exec, 'for d; do [ -d "$d" ] && echo "$d"; done; true', ...dirs, ...parents);
      if (left.trim() !== '') throw new Error(`scratch groups left behind: ${left.trim()}`);
      removed = true;
    },
  };
}
