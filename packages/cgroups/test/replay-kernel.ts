/**
 * What the kernel reads back after a write, for replaying recorded cgroup trees (`replayFiles`'s
 * `onWrite`): v1 memory `-1` reads 9223372036854771712, throttle and `io.max` writes change one device's
 * line of a multi-line file (0 / all-`max` deletes it), everything else stores the value with a newline.
 * Values the kernel would refuse never get here: the adapter validates before writing.
 */

import type { FileTreeEntry } from '@hvkit/conformance/fixtures';

const V1_UNLIMITED = '9223372036854771712';

function lines(current: FileTreeEntry | undefined): string[] {
  return (current?.content ?? '').split('\n').filter((l) => l.trim() !== '');
}

/** The `onWrite` of a replayed cgroup tree. */
export function cgroupOnWrite(path: string, data: Buffer, current: FileTreeEntry | undefined): Uint8Array {
  const value = data.toString('utf8').trim();
  const name = path.slice(path.lastIndexOf('/') + 1);
  if (/^memory\.(memsw\.)?(soft_)?limit_in_bytes$/.test(name)) {
    return Buffer.from(`${value === '-1' ? V1_UNLIMITED : value}\n`);
  }
  if (name.startsWith('blkio.throttle.') && name.endsWith('_device')) {
    const [dev, n] = value.split(/\s+/);
    const kept = lines(current).filter((l) => !l.startsWith(`${dev} `));
    if (n !== '0') kept.push(`${dev} ${n}`);
    return Buffer.from(kept.map((l) => `${l}\n`).join(''));
  }
  if (name === 'io.max') {
    const [dev] = value.split(/\s+/);
    const kept = lines(current).filter((l) => !l.startsWith(`${dev} `));
    if (!/^\S+ rbps=max wbps=max riops=max wiops=max$/.test(value)) kept.push(value);
    return Buffer.from(kept.map((l) => `${l}\n`).join(''));
  }
  if (name === 'cpu.cfs_quota_us' && Number(value) < 0) return Buffer.from('-1\n');
  return Buffer.from(`${value}\n`);
}
