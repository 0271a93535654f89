/**
 * The reference-client probe of the cgroups adapter: reads a guest group's cgroup files WITHOUT the
 * adapter (plain file reads through an ExecTransport running `cat`, locally or over SSH), so the live
 * conformance suite can tell what an adapter call really did. Units converted here, independently:
 * v1 `cpu.shares` × 100 / 1024, quota / period, v1 memsw − limit, `-1`/`max`/2^63−4096 as unlimited.
 */

import type { ConformanceProbe, ProbeGuest } from '@hvkit/conformance';
import type { ExecTransport, ResourceLimits } from '@hvkit/core';

/** A probe for the live tier; `close()` releases what it opened. */
export interface CgroupsProbe extends ConformanceProbe {
  close(): Promise<void>;
}

/** Where the probe finds a guest's groups: one directory per controller. */
export interface ProbeLayout {
  version: 1 | 2;
  /** Mount point per controller (`cpu`, `memory`, `io`/`blkio`, `pids`); v2: the same mount for all. */
  cpu: string;
  memory: string;
  io: string;
  pids: string;
  /** Block device name → MAJ:MIN the probe reports disks for. */
  disks: Record<string, string>;
}

const UNLIMITED = new Set(['-1', 'max', '9223372036854771712', '9223372036854775807']);

/** Opens the probe over `exec` (createLocalExec() or an SSH client's exec). */
export function cgroupsProbe(exec: ExecTransport, layout: ProbeLayout): CgroupsProbe {
  // One command reads every file (each new round trip costs ~0.1 s on the lab VM under TCG).
  let cache: Map<string, string> | undefined;
  const readAll = async (paths: string[]) => {
    const r = await exec.exec({
      argv: [
        'sh',
        '-c',
        'for f; do if [ -r "$f" ]; then printf "%s\\t" "$f"; tr "\\n" "|" < "$f"; echo; fi; done',
        'sh',
        ...paths,
      ],
      timeoutMs: 20_000,
    });
    const out = new Map<string, string>();
    for (const line of r.stdout.toString('utf8').split('\n')) {
      const tab = line.indexOf('\t');
      if (tab > 0)
        out.set(
          line.slice(0, tab),
          line
            .slice(tab + 1)
            .split('|')
            .filter(Boolean)
            .join('\n'),
        );
    }
    return out;
  };
  const cat = async (path: string): Promise<string | undefined> => cache?.get(path);
  const idOf = (g: ProbeGuest): string => {
    const id = g.id ?? (typeof g.ref === 'string' ? g.ref : 'id' in g.ref ? g.ref.id : undefined);
    if (!id) throw new Error('the cgroups probe needs the guest id (its group path)');
    return id;
  };
  const value = (text: string | undefined) =>
    text === undefined ? undefined : UNLIMITED.has(text) ? null : Number(text);
  return {
    async guestExists(g) {
      const id = g.id ?? (typeof g.ref === 'string' ? g.ref : undefined);
      if (!id) return false;
      const r = await exec.exec({ argv: ['test', '-d', `${layout.cpu}/${id}`], timeoutMs: 20_000 });
      return r.exitCode === 0;
    },
    async getLimits(g) {
      const id = idOf(g);
      const files =
        layout.version === 1
          ? [
              `${layout.cpu}/${id}/cpu.shares`,
              `${layout.cpu}/${id}/cpu.cfs_quota_us`,
              `${layout.cpu}/${id}/cpu.cfs_period_us`,
              `${layout.memory}/${id}/memory.limit_in_bytes`,
              `${layout.memory}/${id}/memory.memsw.limit_in_bytes`,
              `${layout.memory}/${id}/memory.soft_limit_in_bytes`,
              ...['read_bps', 'write_bps', 'read_iops', 'write_iops'].map(
                (f) => `${layout.io}/${id}/blkio.throttle.${f}_device`,
              ),
            ]
          : [
              'cpu.weight',
              'cpu.max',
              'memory.min',
              'memory.max',
              'memory.high',
              'memory.swap.max',
              'io.max',
            ].map((f) => `${layout.cpu}/${id}/${f}`);
      cache = await readAll([...files, `${layout.pids}/${id}/pids.max`]);
      const out: ResourceLimits = {};
      if (layout.version === 1) {
        const shares = Number(await cat(`${layout.cpu}/${id}/cpu.shares`));
        const weight = Math.round((shares * 100) / 1024);
        const quota = Number(await cat(`${layout.cpu}/${id}/cpu.cfs_quota_us`));
        const period = Number(await cat(`${layout.cpu}/${id}/cpu.cfs_period_us`));
        out.cpu = { weight: weight === 100 ? null : weight, maxCores: quota < 0 ? null : quota / period };
        const limit = value(await cat(`${layout.memory}/${id}/memory.limit_in_bytes`));
        const memsw = value(await cat(`${layout.memory}/${id}/memory.memsw.limit_in_bytes`));
        out.memory = {
          maxBytes: limit ?? null,
          softBytes: value(await cat(`${layout.memory}/${id}/memory.soft_limit_in_bytes`)) ?? null,
          swapMaxBytes:
            memsw === null || limit === null || memsw === undefined || limit === undefined
              ? null
              : memsw - limit,
        };
        out.disks = [];
        for (const [device, dev] of Object.entries(layout.disks)) {
          const rule = async (file: string) => {
            const line = ((await cat(`${layout.io}/${id}/blkio.throttle.${file}_device`)) ?? '')
              .split('\n')
              .find((l) => l.startsWith(`${dev} `));
            return line ? Number(line.split(' ')[1]) : null;
          };
          out.disks.push({
            device,
            readBytesPerSec: await rule('read_bps'),
            writeBytesPerSec: await rule('write_bps'),
            readIops: await rule('read_iops'),
            writeIops: await rule('write_iops'),
          });
        }
      } else {
        const weight = Number(await cat(`${layout.cpu}/${id}/cpu.weight`));
        const [q, p] = ((await cat(`${layout.cpu}/${id}/cpu.max`)) ?? 'max 100000').split(' ');
        out.cpu = {
          weight: weight === 100 ? null : weight,
          maxCores: q === 'max' ? null : Number(q) / Number(p),
        };
        const min = value(await cat(`${layout.memory}/${id}/memory.min`));
        out.memory = {
          maxBytes: value(await cat(`${layout.memory}/${id}/memory.max`)) ?? null,
          softBytes: value(await cat(`${layout.memory}/${id}/memory.high`)) ?? null,
          minBytes: min === 0 ? null : (min ?? null),
          swapMaxBytes: value(await cat(`${layout.memory}/${id}/memory.swap.max`)) ?? null,
        };
        const ioMax = (await cat(`${layout.io}/${id}/io.max`)) ?? '';
        out.disks = Object.entries(layout.disks).map(([device, dev]) => {
          const line = ioMax.split('\n').find((l) => l.startsWith(`${dev} `)) ?? '';
          const key = (k: string) => {
            const m = new RegExp(`\\b${k}=(\\S+)`).exec(line);
            return m && m[1] !== 'max' ? Number(m[1]) : null;
          };
          return {
            device,
            readBytesPerSec: key('rbps'),
            writeBytesPerSec: key('wbps'),
            readIops: key('riops'),
            writeIops: key('wiops'),
          };
        });
      }
      out.pids = { max: value(await cat(`${layout.pids}/${id}/pids.max`)) ?? null };
      return out;
    },
    async close() {
      // nothing opened: exec belongs to the caller
    },
  };
}
