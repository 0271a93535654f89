/**
 * cgroup mode and controller discovery from `/proc/self/mountinfo` (see the notes' §1.3): the filesystem
 * type is the first field after `" - "`; v1 hierarchies are `cgroup` mounts whose super options name their
 * controllers (`rw,cpu`, `rw,name=systemd`); the v2 hierarchy is a `cgroup2` mount whose controllers are
 * listed in its `cgroup.controllers` file.
 */

/** How the host mounts its cgroups. */
export type CgroupMode = 'legacy' | 'hybrid' | 'unified';

/** The controllers the adapter reads and writes (`io` is v1 `blkio`). */
export type Controller = 'cpu' | 'cpuacct' | 'cpuset' | 'memory' | 'io' | 'pids';

/** Every controller the adapter knows. */
export const CONTROLLERS: readonly Controller[] = ['cpu', 'cpuacct', 'cpuset', 'memory', 'io', 'pids'];

/** One mounted cgroup hierarchy. */
export interface CgroupMount {
  version: 1 | 2;
  /** Absolute mount point on the host, e.g. `/sys/fs/cgroup/cpu`. */
  mountPoint: string;
  /** The v1 controllers of the super options (`cpu`, `cpuacct`, `blkio`, `name=systemd`, ...); `[]` for v2. */
  options: string[];
}

/** Mount options of a cgroup v1 super block that are not controllers. */
const NOT_CONTROLLERS = new Set(['rw', 'ro', 'noprefix', 'clone_children', 'xattr', 'cpuset_v2_mode']);

/** Undoes the octal escapes of mountinfo fields (`\040` for a space, `\134` for a backslash). */
export function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/** The cgroup mounts listed in a mountinfo text, in file order (malformed lines are ignored). */
export function parseCgroupMounts(mountinfo: string): CgroupMount[] {
  const out: CgroupMount[] = [];
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const left = line.slice(0, sep).split(' ');
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    const mountPoint = left[4];
    if (mountPoint === undefined || !mountPoint.startsWith('/')) continue;
    if (fstype === 'cgroup') {
      const options = superOptions
        .split(',')
        .filter((o) => o !== '' && !NOT_CONTROLLERS.has(o) && !o.startsWith('release_agent='));
      out.push({ version: 1, mountPoint: unescapeMountField(mountPoint), options });
    } else if (fstype === 'cgroup2') {
      out.push({ version: 2, mountPoint: unescapeMountField(mountPoint), options: [] });
    }
  }
  return out;
}

/**
 * The mode of a set of mounts: `unified` when only a cgroup2 hierarchy is mounted (or the cgroup2 mount
 * holds every controller and no v1 hierarchy has one), `legacy` when only v1 hierarchies are, `hybrid`
 * when both are (systemd's `/sys/fs/cgroup/unified` beside v1 hierarchies). `undefined` when none is.
 */
export function cgroupMode(mounts: readonly CgroupMount[]): CgroupMode | undefined {
  const v1 = mounts.some((m) => m.version === 1);
  const v2 = mounts.some((m) => m.version === 2);
  if (v1 && v2) return 'hybrid';
  if (v1) return 'legacy';
  if (v2) return 'unified';
  return undefined;
}

/** Where a controller lives. */
export interface ControllerPlace {
  version: 1 | 2;
  mountPoint: string;
}

/**
 * Which hierarchy holds each controller: a v1 mount naming it (`blkio` for `io`), else the v2 mount when
 * its `cgroup.controllers` lists it. A controller bound to v1 cannot be enabled on v2 (the kernel's
 * ENOENT in the notes' §1.3), so v1 wins; the same controller on two v1 mounts keeps the first.
 */
export function placeControllers(
  mounts: readonly CgroupMount[],
  v2Controllers: readonly string[],
): Partial<Record<Controller, ControllerPlace>> {
  const out: Partial<Record<Controller, ControllerPlace>> = {};
  for (const controller of CONTROLLERS) {
    const v1Name = controller === 'io' ? 'blkio' : controller;
    const v1 = mounts.find((m) => m.version === 1 && m.options.includes(v1Name));
    if (v1) {
      out[controller] = { version: 1, mountPoint: v1.mountPoint };
      continue;
    }
    const v2 = mounts.find((m) => m.version === 2);
    // cgroup2 accounts CPU time in cpu.stat without a cpuacct controller.
    const v2Name = controller === 'cpuacct' ? 'cpu' : controller;
    if (v2 && v2Controllers.includes(v2Name)) out[controller] = { version: 2, mountPoint: v2.mountPoint };
  }
  return out;
}
