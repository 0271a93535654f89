/**
 * The live conformance probe for libvirt drivers reached with `virsh` (QEMU, LXC): it reads the backend
 * without going through the adapter. Used by src/conformance.live.test.ts.
 */

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConformanceProbe, ProbeGuest } from '@hvkit/conformance';
import { parseXml, type ResourceLimits, type XmlValue, xmlArray, xmlAttr } from '@hvkit/core';

/** Runs `virsh -q -c <uri> ...args` and returns its output. */
export function virsh(uri: string, ...args: string[]): string {
  try {
    return execFileSync('virsh', ['-q', '-c', uri, ...args], {
      encoding: 'utf8',
      timeout: 60_000,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
  } catch (error) {
    const stderr = String((error as { stderr?: unknown }).stderr ?? '').trim();
    throw Object.assign(new Error(`virsh ${args.join(' ')} failed: ${stderr || (error as Error).message}`), {
      stderr,
      cause: error,
    });
  }
}

/**
 * What virsh should be asked about: the uuid or name the adapter reported, else the reference's own value
 * (a bare id, or the `id`, `uuid` or `name` of an object reference; virsh takes a UUID, a name or an id).
 */
export function virshDomainArg(g: ProbeGuest): string {
  if (g.uuid !== undefined) return g.uuid;
  if (g.name !== undefined) return g.name;
  const ref = g.ref;
  if (typeof ref === 'string') return ref;
  if ('id' in ref) return ref.id;
  if ('uuid' in ref) return ref.uuid;
  return ref.name;
}

/** virsh's message for a domain it cannot find (`error: failed to get domain '<x>'`). */
const NO_DOMAIN = /failed to get domain|Domain not found/;

function keyValues(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i > 0) out.set(line.slice(0, i).trim(), line.slice(i + 1).trim());
  }
  return out;
}

/** A probe that reads a libvirt driver with `virsh`; `cgroupVersion` is the daemon host's, for the CPU weight and swap. */
export function virshProbe(uri: string, cgroupVersion: 1 | 2): ConformanceProbe {
  const id = virshDomainArg;
  const int = (v: string | undefined) => (v === undefined || v === '' ? undefined : BigInt(v));
  return {
    guestExists(g) {
      try {
        virsh(uri, 'dominfo', id(g));
        return true;
      } catch (error) {
        // Only "no such domain" is an answer; any other failure must not pass for one.
        if (NO_DOMAIN.test(String((error as { stderr?: unknown }).stderr ?? ''))) return false;
        throw error;
      }
    },
    getGuestFacts(g) {
      const kv = keyValues(virsh(uri, 'dominfo', id(g)));
      const state = kv.get('State');
      return {
        name: kv.get('Name') as string,
        uuid: kv.get('UUID') as string,
        vcpus: Number(kv.get('CPU(s)')),
        memoryBytes: Number.parseInt(kv.get('Max memory') ?? '0', 10) * 1024,
        ...(state === 'running' ? { powerState: 'running' as const } : {}),
      };
    },
    getLimits(g, from) {
      const flag = from === 'live' ? '--live' : '--config';
      const sched = keyValues(virsh(uri, 'schedinfo', id(g), flag));
      const mem = keyValues(virsh(uri, 'memtune', id(g), flag));
      const shares = int(sched.get('cpu_shares'));
      const quota = int(sched.get('global_quota'));
      const period = int(sched.get('global_period'));
      const memKib = (k: string) => {
        const v = mem.get(k);
        return v === undefined || v === 'unlimited' ? null : Number(v) * 1024;
      };
      const hard = memKib('hard_limit');
      const swap = memKib('swap_hard_limit');
      const out: ResourceLimits = {
        cpu: {
          weight:
            shares === undefined || shares === 0n
              ? null
              : cgroupVersion === 1
                ? Math.round((Number(shares) * 100) / 1024)
                : Number(shares),
          maxCores:
            quota === undefined || quota <= 0n || quota >= 17592186044415n
              ? null
              : Number(quota) / Number(period && period > 0n ? period : 100000n),
        },
        memory: {
          maxBytes: hard,
          softBytes: memKib('soft_limit'),
          swapMaxBytes: swap === null ? null : cgroupVersion === 1 && hard !== null ? swap - hard : swap,
        },
        disks: [],
        nics: [],
      };
      for (const line of virsh(uri, 'domblklist', id(g), '--details').split('\n')) {
        const cols = line.trim().split(/\s+/);
        if (cols[1] !== 'disk' || !cols[2]) continue;
        const io = keyValues(virsh(uri, 'blkdeviotune', id(g), cols[2], flag));
        const z = (k: string) => {
          const v = Number(io.get(k) ?? '0');
          return v === 0 ? null : v;
        };
        out.disks?.push({
          device: cols[2],
          readBytesPerSec: z('read_bytes_sec'),
          writeBytesPerSec: z('write_bytes_sec'),
          readIops: z('read_iops_sec'),
          writeIops: z('write_iops_sec'),
        });
      }
      for (const line of virsh(uri, 'domiflist', id(g)).split('\n')) {
        const cols = line.trim().split(/\s+/);
        const dev = cols[0];
        if (!dev || dev === '-') continue;
        const t = keyValues(virsh(uri, 'domiftune', id(g), cols[4] ?? dev, flag));
        const k = (name: string) => {
          const v = Number(t.get(name) ?? '0');
          return v === 0 ? null : v * 1024;
        };
        out.nics?.push({
          device: dev,
          inboundAverageBytesPerSec: k('inbound.average'),
          inboundPeakBytesPerSec: k('inbound.peak'),
          inboundBurstBytes: k('inbound.burst'),
          outboundAverageBytesPerSec: k('outbound.average'),
          outboundPeakBytesPerSec: k('outbound.peak'),
          outboundBurstBytes: k('outbound.burst'),
        });
      }
      return out;
    },
    listSnapshotIds(g) {
      return virsh(uri, 'snapshot-list', id(g), '--name')
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean);
    },
    listCheckpointIds(g) {
      return virsh(uri, 'checkpoint-list', id(g), '--name')
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean);
    },
    triggerEvent(g) {
      virsh(uri, 'suspend', id(g));
      virsh(uri, 'resume', id(g));
    },
    diskSha256(g, device) {
      // The guest's view: the whole backing chain as the definition gives it, read with qemu-img on this
      // host (the daemon's: the probe runs beside a local daemon), shared with a running QEMU (-U).
      const spec = diskChainSpec(virsh(uri, 'dumpxml', '--inactive', id(g)), device);
      const dir = mkdtempSync(join(tmpdir(), 'hvkit-probe-'));
      try {
        const out = join(dir, 'disk.raw');
        execFileSync('qemu-img', ['convert', '-U', '-O', 'raw', spec, out], { timeout: 300_000 });
        const hash = createHash('sha256');
        const fd = openSync(out, 'r');
        try {
          const buf = Buffer.alloc(4 * 1024 * 1024);
          for (;;) {
            const n = readSync(fd, buf, 0, buf.length, null);
            if (n === 0) break;
            hash.update(buf.subarray(0, n));
          }
        } finally {
          closeSync(fd);
        }
        return hash.digest('hex');
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
    removeGuest(g) {
      const name = kvName(virsh(uri, 'dominfo', id(g)), 'Name');
      if (PEER_GUESTS.has(name)) throw new Error(`the probe never removes the peer guest ${name}`);
      const xml = virsh(uri, 'dumpxml', '--inactive', id(g));
      try {
        virsh(uri, 'destroy', id(g));
      } catch {
        // Not running.
      }
      virsh(uri, 'undefine', '--nvram', '--checkpoints-metadata', '--snapshots-metadata', id(g));
      for (const path of diskFiles(xml)) {
        try {
          virsh(uri, 'vol-delete', path);
        } catch {
          // Not a volume of a pool (or already gone).
        }
      }
    },
    listGuestNames() {
      return virsh(uri, 'list', '--all', '--name')
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean)
        .sort();
    },
    listVolumes() {
      const out: string[] = [];
      for (const pool of virsh(uri, 'pool-list', '--name')
        .split('\n')
        .map((s) => s.trim())
        .filter(Boolean)) {
        for (const line of virsh(uri, 'vol-list', pool).split('\n')) {
          const name = line.trim().split(/\s+/)[0];
          if (name) out.push(`${pool}/${name}`);
        }
      }
      return out.sort();
    },
  };
}

/** The peer's guests: never removed by the probe, whatever a check asks. */
const PEER_GUESTS = new Set(['hvkit-guest1', 'hvkit-guest2']);

function kvName(text: string, key: string): string {
  return keyValues(text).get(key) ?? '';
}

/** Every file (and backing file) of the definition's disks. */
function diskFiles(xml: string): string[] {
  return [...xml.matchAll(/<source file='([^']+)'/g)].map((m) => decodeXml(m[1] as string));
}

function decodeXml(text: string): string {
  return text
    .replace(/&apos;/g, "'")
    .replace(/&quot;/g, '"')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&amp;/g, '&');
}

/**
 * A qemu-img image spec for the disk `device` of a domain definition: its file, and (as a `json:` spec) the
 * `<backingStore>` chain the definition gives, which a restored incremental chain has and its images do not.
 */
export function diskChainSpec(xml: string, device: string): string {
  const doc = parseXml(xml) as { domain?: { devices?: { disk?: unknown } } };
  const disks = xmlArray(doc.domain?.devices?.disk as XmlValue[] | XmlValue | undefined) as Record<
    string,
    XmlValue
  >[];
  const disk = disks.find((d) => xmlAttr(d.target, 'dev') === device);
  if (!disk) throw new Error(`the definition has no disk ${device}`);
  const layer = (el: Record<string, XmlValue>): Record<string, unknown> | undefined => {
    const file = xmlAttr(el.source, 'file') ?? xmlAttr(el.source, 'dev');
    if (file === undefined) return undefined;
    const format = xmlAttr(el.driver, 'type') ?? xmlAttr(el.format, 'type') ?? 'raw';
    const next = el.backingStore as Record<string, XmlValue> | string | undefined;
    const below = next !== undefined && typeof next === 'object' ? layer(next) : undefined;
    return { driver: format, file: { driver: 'file', filename: file }, ...(below ? { backing: below } : {}) };
  };
  const spec = layer(disk);
  if (!spec) throw new Error(`disk ${device} has no file or device source`);
  return `json:${JSON.stringify(spec)}`;
}
