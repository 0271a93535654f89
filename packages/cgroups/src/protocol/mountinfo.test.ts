import { describe, expect, it } from 'vitest';
import { cgroupMode, parseCgroupMounts, placeControllers } from './mountinfo';

// This machine's mountinfo (hybrid: v1 controllers plus cgroup2 at /sys/fs/cgroup/unified).
const HYBRID = `31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
`;
// A systemd host on cgroup v2 only (Debian 12).
const UNIFIED = `25 30 0:22 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
`;
// A pure v1 host with cpu and cpuacct co-mounted.
const LEGACY = `32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw - cgroup cgroup rw,cpu,cpuacct
35 31 0:32 / /sys/fs/cgroup/memory rw - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/my\\040dir rw - cgroup cgroup rw,pids
`;

describe('mountinfo', () => {
  it('tells hybrid, unified and legacy apart', () => {
    expect(cgroupMode(parseCgroupMounts(HYBRID))).toBe('hybrid');
    expect(cgroupMode(parseCgroupMounts(UNIFIED))).toBe('unified');
    expect(cgroupMode(parseCgroupMounts(LEGACY))).toBe('legacy');
    expect(cgroupMode(parseCgroupMounts('22 27 0:21 / /proc rw - proc proc rw\n'))).toBeUndefined();
  });

  it('lists the controllers of each v1 hierarchy and undoes octal escapes', () => {
    const mounts = parseCgroupMounts(LEGACY);
    expect(mounts[0]).toEqual({
      version: 1,
      mountPoint: '/sys/fs/cgroup/cpu,cpuacct',
      options: ['cpu', 'cpuacct'],
    });
    expect(mounts[2]?.mountPoint).toBe('/sys/fs/cgroup/my dir');
    expect(parseCgroupMounts(HYBRID).find((m) => m.mountPoint.endsWith('systemd'))?.options).toEqual([
      'name=systemd',
    ]);
  });

  it('places controllers: v1 wins (a controller bound to v1 cannot be used on v2), else cgroup2 lists it', () => {
    expect(placeControllers(parseCgroupMounts(HYBRID), ['hugetlb'])).toEqual({
      cpu: { version: 1, mountPoint: '/sys/fs/cgroup/cpu' },
      cpuacct: { version: 1, mountPoint: '/sys/fs/cgroup/cpuacct' },
      memory: { version: 1, mountPoint: '/sys/fs/cgroup/memory' },
      io: { version: 1, mountPoint: '/sys/fs/cgroup/blkio' },
      pids: { version: 1, mountPoint: '/sys/fs/cgroup/pids' },
    });
    const v2 = { version: 2, mountPoint: '/sys/fs/cgroup' };
    expect(
      placeControllers(parseCgroupMounts(UNIFIED), [
        'cpuset',
        'cpu',
        'io',
        'memory',
        'hugetlb',
        'pids',
        'rdma',
        'misc',
      ]),
    ).toEqual({ cpu: v2, cpuacct: v2, cpuset: v2, memory: v2, io: v2, pids: v2 });
  });
});
