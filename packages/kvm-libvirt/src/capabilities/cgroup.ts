/**
 * Which cgroup version holds the `cpu` controller on the daemon host. libvirt's `cpu_shares` and
 * `swap_hard_limit` mean different things on v1 and v2, so the CPU weight and swap conversions need it.
 * It is read from the host's files: locally for local URIs, through the SSH connection (SFTP, else `cat`)
 * for `qemu+ssh`.
 * Where it cannot be read (tcp, tls, a custom dialer) it stays unknown: nothing is converted on a guess.
 */

import { readFile } from 'node:fs/promises';
import { HvkitError } from '@hvkit/core';
import type { SshClient } from '@hvkit/ssh';
import type { CgroupVersion } from '../mapping/limits';

/** Reads a text file of the daemon host; resolves `undefined` when it cannot be read. */
export type HostFileReader = (path: string) => Promise<string | undefined>;

/** What `/proc/self/mountinfo` says about the cgroup hierarchies. */
export interface CgroupMounts {
  /** A cgroup v1 hierarchy with the `cpu` controller is mounted (hybrid or pure v1 hosts). */
  v1Cpu: boolean;
  /** Mount point of the cgroup v2 (unified) hierarchy, when mounted. */
  unified?: string;
}

/** Undoes the octal escapes of mountinfo fields (`\040` for a space, `\134` for a backslash, ...). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(Number.parseInt(octal, 8)));
}

/**
 * Parses `/proc/self/mountinfo` (`<id> <parent> <maj:min> <root> <mount point> <options> ... - <fstype>
 * <source> <super options>`): whether a v1 `cgroup` mount has `cpu` among its super options, and where the
 * first `cgroup2` mount is.
 */
export function parseCgroupMounts(mountinfo: string): CgroupMounts {
  const out: CgroupMounts = { v1Cpu: false };
  for (const line of mountinfo.split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , superOptions = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup' && superOptions.split(',').includes('cpu')) out.v1Cpu = true;
    if (fstype === 'cgroup2' && out.unified === undefined) {
      const mountPoint = line.slice(0, sep).split(' ')[4];
      if (mountPoint !== undefined) out.unified = unescapeMountField(mountPoint);
    }
  }
  return out;
}

/**
 * Which cgroup version holds the `cpu` controller of a host, from its files:
 * - a cgroup v1 hierarchy with `cpu` is mounted → 1 (hybrid hosts whose `cpu` controller is on v1 are v1
 *   for libvirt's conversions);
 * - otherwise, the cgroup v2 hierarchy's root `cgroup.controllers` lists `cpu` → 2;
 * - anything else (files unreadable, no `cgroup2` mount, `cpu` bound nowhere) → `undefined`.
 */
export async function detectCgroupVersion(read: HostFileReader): Promise<CgroupVersion | undefined> {
  const mountinfo = await read('/proc/self/mountinfo');
  if (mountinfo === undefined) return undefined;
  const mounts = parseCgroupMounts(mountinfo);
  if (mounts.v1Cpu) return 1;
  if (mounts.unified === undefined) return undefined;
  const root = mounts.unified.endsWith('/') ? mounts.unified : `${mounts.unified}/`;
  const controllers = await read(`${root}cgroup.controllers`);
  return controllers?.split(/\s+/).includes('cpu') ? 2 : undefined;
}

async function readLocal(path: string): Promise<string | undefined> {
  try {
    return await readFile(path, 'utf8');
  } catch {
    return undefined;
  }
}

/**
 * {@link detectCgroupVersion} on this machine (for local URIs: the daemon runs here). `mountinfo`, when
 * given, is used instead of reading `/proc/self/mountinfo`; `cgroup.controllers` is still read from disk.
 */
export function detectLocalCgroupVersion(mountinfo?: string): Promise<CgroupVersion | undefined> {
  return detectCgroupVersion((path) =>
    path === '/proc/self/mountinfo' && mountinfo !== undefined ? Promise.resolve(mountinfo) : readLocal(path),
  );
}

/**
 * A {@link HostFileReader} over the SSH connection `qemu+ssh` already has: SFTP (well under a millisecond
 * per file once the subsystem is open), else `cat` over an exec channel for servers without the SFTP
 * subsystem (a few hundred milliseconds: a session and a process per file). A file that is missing or
 * unreadable, or a failed command, reads as `undefined`; an abort of `signal` rejects.
 */
export function sshHostFileReader(
  ssh: SshClient,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): HostFileReader {
  const call = {
    ...(options.signal !== undefined ? { signal: options.signal } : {}),
    timeoutMs: options.timeoutMs ?? 10_000,
  };
  return async (path) => {
    try {
      return (await ssh.files.readFile(path, call)).toString('utf8');
    } catch (error) {
      if (options.signal?.aborted) throw error;
      if (HvkitError.isInstance(error, 'NOT_FOUND') || HvkitError.isInstance(error, 'PERMISSION_DENIED')) {
        return undefined;
      }
    }
    try {
      const result = await ssh.exec.exec({ argv: ['cat', '--', path], maxBuffer: 4 * 1024 * 1024, ...call });
      return result.exitCode === 0 ? result.stdout.toString('utf8') : undefined;
    } catch (error) {
      if (options.signal?.aborted) throw error;
      return undefined;
    }
  };
}
