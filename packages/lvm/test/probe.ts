/**
 * The reference-client probe of the lvm adapter: reads (and, for the restore checks, removes) volumes WITHOUT
 * the adapter, with LVM's own tools (`lvs --reportformat json`, `lvremove`, `sha256sum` of the device) run
 * over the test's SSH connection, so the live conformance suite can tell what an adapter call really did
 * (see `ConformanceProbe` in `@hvkit/conformance`). It only ever looks at the ONE volume group it is given
 * (the test's own `hvkit-test-<random>`), never at other groups on the host.
 *
 * Guests: the adapter's default mapping, one guest per data volume with id and name `vg/lv`; a bare name
 * (the suite's `{ name: 'hvkit-conformance-restored' }`) means that volume in the probe's group.
 */

import type { ConformanceProbe, ProbeGuest } from '@hvkit/conformance';
import type { ExecTransport } from '@hvkit/core';

/** A probe for the live tier; `close()` releases what it opened. */
export interface LvmProbe extends ConformanceProbe {
  close(): Promise<void>;
}

/** One row of `lvs --reportformat json` with the fields the probe asks for (every value a string). */
interface LvRow {
  lv_name: string;
  vg_name: string;
  lv_attr: string;
  origin: string;
  pool_lv: string;
  lv_tags: string;
  lv_uuid: string;
}

/** Volumes the probe never removes: the data volume the live test made for the suite. */
const NEVER_REMOVE = /^guest\d*$/;

/**
 * Opens the probe on `vg` over `ssh` (an `SshClient` of `@hvkit/ssh`, or any exec transport to the host).
 * The connection stays the caller's.
 */
export function lvmProbe(ssh: { readonly exec: ExecTransport }, vg: string): LvmProbe {
  const run = async (argv: string[]): Promise<string> => {
    const r = await ssh.exec.exec({ argv, timeoutMs: 120_000 });
    if (r.exitCode !== 0)
      throw new Error(`probe: ${argv.join(' ')} exited ${r.exitCode}: ${r.stderr.toString().trim()}`);
    return r.stdout.toString();
  };
  const lvs = async (): Promise<LvRow[]> => {
    const out = await run([
      'lvs',
      '--reportformat',
      'json',
      '-o',
      'lv_name,vg_name,lv_attr,origin,pool_lv,lv_tags,lv_uuid',
      vg,
    ]);
    const report = JSON.parse(out) as { report: { lv: LvRow[] }[] };
    return report.report.flatMap((r) => r.lv);
  };
  /**
   * `vg/lv` of a guest reference: its id, or its name (`vg/lv`, or a bare volume name in the probe's group);
   * undefined for a reference by UUID alone (LVM's volume UUIDs are not RFC 4122 UUIDs: no guest has one).
   */
  const volumeOf = (g: ProbeGuest): string | undefined => {
    const ref = g.ref as { id?: string; name?: string } | string;
    const key = g.id ?? (typeof ref === 'string' ? ref : (ref.id ?? ref.name ?? g.name));
    if (!key) return undefined;
    return key.includes('/') ? key : `${vg}/${key}`;
  };
  const volumeOrThrow = (g: ProbeGuest): string => {
    const id = volumeOf(g);
    if (id === undefined) throw new Error(`probe: guest ${JSON.stringify(g)} has no id or name`);
    return id;
  };
  const full = (r: LvRow) => `${r.vg_name}/${r.lv_name}`;
  const tags = (r: LvRow) => r.lv_tags.split(',').filter((t) => t !== '');
  // lv_attr: first letter `s`/`S` a COW snapshot, `V` a thin volume (a thin snapshot when it has an origin),
  // `t` a pool, `-` a linear volume; hidden (internal) volumes are not listed without -a.
  const isSnapshot = (r: LvRow) => r.origin !== '';
  const isData = (r: LvRow) => !isSnapshot(r) && /^[-V]/.test(r.lv_attr) && !tags(r).includes('hvkit');
  const snapshotsOf = async (g: ProbeGuest) => {
    const [, name] = volumeOrThrow(g).split('/');
    return (await lvs()).filter((r) => isSnapshot(r) && r.origin === name);
  };
  return {
    async guestExists(g) {
      const id = volumeOf(g);
      const rows = await lvs();
      if (id === undefined) {
        const uuid = (g.uuid ?? (g.ref as { uuid?: string }).uuid)?.toLowerCase();
        return rows.some((r) => isData(r) && r.lv_uuid.toLowerCase() === uuid);
      }
      return rows.some((r) => full(r) === id && isData(r));
    },
    async getGuestFacts(g) {
      const id = volumeOrThrow(g);
      const row = (await lvs()).find((r) => full(r) === id);
      if (!row) throw new Error(`probe: no volume ${id}`);
      return { name: full(row), powerState: row.lv_attr[4] === 'a' ? 'running' : 'stopped' };
    },
    async listSnapshotIds(g) {
      return (await snapshotsOf(g)).filter((r) => !tags(r).includes('hvkit-base')).map(full);
    },
    async listCheckpointIds(g) {
      // A checkpoint is the kept base snapshot of the next incremental; its tag names the artifact.
      return (await snapshotsOf(g))
        .filter((r) => tags(r).includes('hvkit-base'))
        .flatMap((r) => tags(r).filter((t) => t.startsWith('hvkit-artifact-')))
        .map((t) => t.slice('hvkit-artifact-'.length));
    },
    async diskSha256(g, device) {
      // A guest of the default mapping has one disk, its volume: the device the suite names is the
      // original's (`vg/guest1`) also when it asks about the restored guest, whose disk is its own volume.
      const id = volumeOrThrow(g);
      if (!device.includes('/')) throw new Error(`probe: ${device} is not a volume vg/lv`);
      const out = await run(['sha256sum', `/dev/${id}`]);
      return out.split(' ')[0] as string;
    },
    async removeGuest(g) {
      const id = volumeOrThrow(g);
      const [group, name] = id.split('/');
      if (group !== vg) throw new Error(`probe: ${id} is not in the test's group ${vg}; not removed`);
      if (NEVER_REMOVE.test(name ?? '')) throw new Error(`probe: never removes the test's volume ${id}`);
      if (!(await lvs()).some((r) => full(r) === id)) return;
      await run(['lvremove', '-q', '-y', id]);
    },
    async listGuestNames() {
      // The adapter names a guest `vg/lv`; the bare volume name is listed too, so that a restore leaving a
      // volume named like the suite's restored guest shows up under that name.
      return (await lvs()).filter(isData).flatMap((r) => [full(r), r.lv_name]);
    },
    async listVolumes() {
      return (await lvs()).map(full);
    },
    async close() {
      // Nothing opened: the SSH connection is the caller's.
    },
  };
}
