/** Whether this machine's own cgroup tree can carry live tests: root, and the cgroup mounts the tests use. */

import { readFileSync } from 'node:fs';
import { liveMode } from '@hvkit/conformance';

/** The v1 mount point of a controller on this machine, or `undefined`. */
export function localV1Mount(controller: string): string | undefined {
  for (const line of readFileSync('/proc/self/mountinfo', 'utf8').split('\n')) {
    const sep = line.indexOf(' - ');
    if (sep < 0) continue;
    const [fstype, , options = ''] = line.slice(sep + 3).split(' ');
    if (fstype === 'cgroup' && options.split(',').includes(controller))
      return line.slice(0, sep).split(' ')[4];
  }
  return undefined;
}

/**
 * The local tree's v1 mounts of cpu, memory, blkio and pids, or why live tests cannot use it. Under
 * `HVKIT_LIVE=require` a missing tree throws (a failure, not a skip).
 */
export function localTree():
  | { available: true; mounts: { cpu: string; memory: string; blkio: string; pids: string } }
  | { available: false; reason: string } {
  const fail = (reason: string) => {
    if (liveMode() === 'require') throw new Error(`HVKIT_LIVE=require: ${reason}`);
    return { available: false as const, reason };
  };
  if (liveMode() === 'off') return { available: false, reason: 'HVKIT_LIVE=off, live cgroup tests disabled' };
  if (process.getuid?.() !== 0) return fail('the local cgroup tree needs root to create scratch groups');
  const cpu = localV1Mount('cpu');
  const memory = localV1Mount('memory');
  const blkio = localV1Mount('blkio');
  const pids = localV1Mount('pids');
  if (!cpu || !memory || !blkio || !pids) {
    return fail(
      'this machine has no cgroup v1 cpu, memory, blkio and pids hierarchies (the v2 side is the lab-vm peer)',
    );
  }
  return { available: true, mounts: { cpu, memory, blkio, pids } };
}
