/**
 * Test helper: reads the captured libvirt samples of this directory (see README.md).
 */

import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { LibvirtTypedParam } from '../typed-params';

const dir = dirname(fileURLToPath(import.meta.url));

/** The text of one sample file. */
export function sample(name: string): string {
  return readFileSync(join(dir, name), 'utf8');
}

/** Names of the sample files whose root element is `root` (e.g. `domain`). */
export function samplesWithRoot(root: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.xml'))
    .filter((f) => new RegExp(`^\\s*<${root}[\\s>]`).test(sample(f)))
    .sort();
}

/** A captured typed-parameter set (`capture-typed-params.mjs`). */
export interface TypedParamsSample {
  uri: string;
  domain: string;
  flags: number;
  scheduler: LibvirtTypedParam[] | null;
  memory: LibvirtTypedParam[] | null;
  blkio: LibvirtTypedParam[] | null;
  blockIoTune: Record<string, LibvirtTypedParam[]>;
  interface: Record<string, LibvirtTypedParam[]>;
}

/** JSON stores 64-bit values as strings; the RPC client hands out bigints for LLONG (3) and ULLONG (4). */
function revive(list: LibvirtTypedParam[] | null): LibvirtTypedParam[] | null {
  if (list === null) return null;
  return list.map((p) => (p.type === 3 || p.type === 4 ? { ...p, value: BigInt(p.value as string) } : p));
}

/** Loads a typed-parameter sample with LLONG/ULLONG values as bigints. */
export function typedParamsSample(name: string): TypedParamsSample {
  const raw = JSON.parse(sample(name)) as TypedParamsSample;
  const map = (rec: Record<string, LibvirtTypedParam[]>) =>
    Object.fromEntries(Object.entries(rec).map(([k, v]) => [k, revive(v) ?? []]));
  return {
    ...raw,
    scheduler: revive(raw.scheduler),
    memory: revive(raw.memory),
    blkio: revive(raw.blkio),
    blockIoTune: map(raw.blockIoTune),
    interface: map(raw.interface),
  };
}
