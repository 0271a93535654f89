/**
 * Test helper: a conformance probe that reads vcsim directly through the SOAP layer (its own session,
 * never the adapter), and a private vcsim per model prepared for the suite.
 */

import { createHash } from 'node:crypto';
import type { ConformanceProbe, ProbeGuest, ProbeGuestFacts } from '@hvkit/conformance';
import type { PowerState, ResourceLimits } from '@hvkit/core';
import { retrieveContainer, retrieveProperties } from '../src/protocol/soap/property-collector';
import type { DataObject, MoRef } from '../src/protocol/soap/schema';
import { connectVim, type VimSession, type VimSessionOptions } from '../src/protocol/soap/session';
import { waitForTask } from '../src/protocol/soap/task';
import { startVcsim, type VcsimInstance } from './vcsim-instance';

/** vcsim launcher arguments of the two models the tests use. */
export const VCSIM_MODELS = {
  vpx: ['-model', 'vpx', '-cluster', '2', '-host', '1', '-standalone-host', '0', '-vm', '1'],
  esx: ['-model', 'esx', '-vm', '2'],
} as const;

/** A SOAP session of its own on a private vcsim (plain http, no keep-alive). */
function simSession(sim: VcsimInstance): Promise<VimSession> {
  return connectVim({
    url: sim.url,
    insecureHttp: true,
    username: sim.username,
    password: sim.password,
    keepAliveMs: false,
  });
}

/** A private vcsim with one VM powered off (for checks that need a stopped guest). */
export async function startPreparedVcsim(
  bin: string,
  model: keyof typeof VCSIM_MODELS,
): Promise<VcsimInstance> {
  const sim = await startVcsim({ bin, args: VCSIM_MODELS[model] });
  try {
    const session = await simSession(sim);
    try {
      const vms = await retrieveContainer(session, {
        type: 'VirtualMachine',
        paths: ['name', 'config.hardware.device'],
      });
      const dcs = await retrieveContainer(session, { type: 'Datacenter', paths: ['name'] });
      const dc = String(dcs[0]?.props.name ?? 'ha-datacenter');
      // vcsim's VMDKs are empty placeholders: give each disk DISK_BYTES of known data, so backups move bytes.
      for (const vm of vms) {
        for (const d of (vm.props['config.hardware.device'] ?? []) as DataObject[]) {
          const file = (d.backing as DataObject | undefined)?.fileName;
          const m = typeof file === 'string' ? /^\[([^\]]+)\]\s*(.*)$/.exec(file) : null;
          if (!m) continue;
          // The data of a flat disk lives in `<name>-flat.vmdk` (vcsim creates it next to the descriptor).
          const url = new URL(`/folder/${(m[2] as string).replace(/\.vmdk$/, '-flat.vmdk')}`, sim.url);
          url.searchParams.set('dcPath', dc);
          url.searchParams.set('dsName', m[1] as string);
          const response = await fetch(url, {
            method: 'PUT',
            body: diskContent(file as string),
            headers: { cookie: session.client.cookieHeader() ?? '' },
          });
          if (!response.ok) throw new Error(`vcsim PUT ${url.pathname}: HTTP ${response.status}`);
        }
      }
      if (model === 'vpx') await seedTags(sim, vms[0]?.obj.value);
      const last = vms.sort((a, b) => String(a.props.name).localeCompare(String(b.props.name))).at(-1);
      if (last) await waitForTask(session, await session.call<MoRef>('PowerOffVM_Task', last.obj));
    } finally {
      await session.close();
    }
  } catch (error) {
    await sim.stop();
    throw error;
  }
  return sim;
}

const MiB = 1024 * 1024;

/** The name of the disk-less VM {@link addDisklessVm} creates (for the conformance check `backups.diskless`). */
export const DISKLESS_VM = 'hvkit-diskless';

/**
 * Adds a powered-off VM without disks or NICs (`CreateVM_Task`, vcsim's default devices only) to a private
 * vcsim, for `backups.diskless`. Separate from {@link startPreparedVcsim} so the other tests (and the demo
 * cassette) see the inventory they always saw.
 */
export async function addDisklessVm(sim: VcsimInstance): Promise<string> {
  const session = await simSession(sim);
  try {
    const [dc] = await retrieveContainer(session, { type: 'Datacenter', paths: ['vmFolder'] });
    const [pool] = await retrieveContainer(session, { type: 'ResourcePool', paths: ['name'] });
    const [ds] = await retrieveContainer(session, { type: 'Datastore', paths: ['name'] });
    if (!dc || !pool || !ds) throw new Error('vcsim has no datacenter, resource pool or datastore');
    const task = await session.call<MoRef>('CreateVM_Task', dc.props.vmFolder as MoRef, {
      config: {
        _type: 'VirtualMachineConfigSpec',
        name: DISKLESS_VM,
        guestId: 'otherGuest',
        files: { _type: 'VirtualMachineFileInfo', vmPathName: `[${String(ds.props.name)}]` },
        numCPUs: 1,
        memoryMB: 64,
      },
      pool: pool.obj,
    });
    await waitForTask(session, task);
    return DISKLESS_VM;
  } finally {
    await session.close();
  }
}

/** Creates category `security-domain` with tag `prod` over the vAPI REST endpoints and attaches it to a VM. */
async function seedTags(sim: VcsimInstance, vmId: string | undefined): Promise<void> {
  if (!vmId) return;
  const origin = new URL(sim.url).origin;
  const basic = Buffer.from(`${sim.username}:${sim.password}`).toString('base64');
  const login = await fetch(`${origin}/rest/com/vmware/cis/session`, {
    method: 'POST',
    headers: { authorization: `Basic ${basic}` },
  });
  if (login.status === 404) return; // no REST endpoints in this launcher
  const sessionId = ((await login.json()) as { value: string }).value;
  const post = async (path: string, body: unknown) => {
    const r = await fetch(`${origin}/rest/com/vmware/cis/tagging/${path}`, {
      method: 'POST',
      headers: { 'vmware-api-session-id': sessionId, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    if (!r.ok) throw new Error(`vAPI ${path}: HTTP ${r.status}`);
    const text = await r.text();
    return text ? ((JSON.parse(text) as { value?: unknown }).value as string) : '';
  };
  const category = await post('category', {
    create_spec: {
      name: 'security-domain',
      description: 'test',
      cardinality: 'SINGLE',
      associable_types: ['VirtualMachine'],
    },
  });
  const tag = await post('tag', {
    create_spec: { name: 'prod', description: 'test', category_id: category },
  });
  await post(`tag-association/id:${tag}?~action=attach`, { object_id: { type: 'VirtualMachine', id: vmId } });
}

/** Size of the data written into each vcsim VMDK by {@link startPreparedVcsim}. */
export const DISK_BYTES = 64 * 1024;

/** Deterministic disk content for a file name (so recordings do not change from run to run). */
export function diskContent(name: string): Uint8Array {
  const out = new Uint8Array(DISK_BYTES);
  let x = 2166136261;
  for (const c of name) x = Math.imul(x ^ c.charCodeAt(0), 16777619) >>> 0;
  for (let i = 0; i < out.length; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

/** A disk's guest-visible name (`scsi0:1`), worked out here independently of the adapter's mapping. */
function probeDiskName(d: DataObject, devices: DataObject[]): string {
  const c = devices.find((x) => x.key === d.controllerKey) as DataObject;
  const kind = /IDE/.test(c._type)
    ? 'ide'
    : /SATA|AHCI/.test(c._type)
      ? 'sata'
      : /NVME/i.test(c._type)
        ? 'nvme'
        : 'scsi';
  return `${kind}${c.busNumber}:${d.unitNumber}`;
}

function unlimited(v: unknown): boolean {
  return typeof v !== 'number' || v < 0;
}

function power(state: unknown): PowerState {
  return state === 'poweredOn'
    ? 'running'
    : state === 'poweredOff'
      ? 'stopped'
      : state === 'suspended'
        ? 'suspended'
        : 'unknown';
}

/** A probe over its own SOAP session; call `close()` when done. */
export interface VcsimProbe extends ConformanceProbe {
  close(): Promise<void>;
}

/**
 * Creates a probe reading `url` with its own session. Limits are converted here, independently of the
 * adapter's mapping: CPU limit MHz / host cpuMhz, shares per vCPU / 10 (custom) or 50/100/200 (levels),
 * MB × 1 MiB, IOPS as is, NIC Mbit/s × 125 000.
 */
export function vcsimProbe(options: VimSessionOptions): VcsimProbe {
  let session: Promise<VimSession> | undefined;
  const get = () => {
    session ??= connectVim({ ...options, keepAliveMs: false });
    return session;
  };
  const vmOf = async (g: ProbeGuest): Promise<MoRef | undefined> => {
    const s = await get();
    const vms = await retrieveContainer(s, {
      type: 'VirtualMachine',
      paths: ['name', 'config.instanceUuid'],
    });
    const found = vms.find(
      (v) =>
        (g.id !== undefined && v.obj.value === g.id) ||
        (g.id === undefined &&
          g.uuid !== undefined &&
          String(v.props['config.instanceUuid']).toLowerCase() === g.uuid) ||
        (g.id === undefined && g.uuid === undefined && g.name !== undefined && v.props.name === g.name),
    );
    return found?.obj;
  };
  /** GET of a datastore file through the probe's session; `undefined` for 404. */
  const getDatastoreFile = async (fileName: string): Promise<Uint8Array | undefined> => {
    const s = await get();
    const m = /^\[([^\]]+)\]\s*(.*)$/.exec(fileName);
    if (!m) throw new Error(`probe: not a datastore path: ${fileName}`);
    const dcs = await retrieveContainer(s, { type: 'Datacenter', paths: ['name'] });
    const url = new URL(
      `/folder/${(m[2] as string).split('/').map(encodeURIComponent).join('/')}`,
      options.url,
    );
    url.searchParams.set('dcPath', String(dcs[0]?.props.name ?? 'ha-datacenter'));
    url.searchParams.set('dsName', m[1] as string);
    const r = await fetch(url, { headers: { cookie: s.client.cookieHeader() ?? '' } });
    if (r.status === 404) return undefined;
    if (!r.ok) throw new Error(`probe: GET ${url.pathname}: HTTP ${r.status}`);
    return new Uint8Array(await r.arrayBuffer());
  };
  const read = async (obj: MoRef, paths: string[]) => {
    const [c] = await retrieveProperties(await get(), [
      { propSet: [{ type: obj.type, pathSet: paths }], objectSet: [{ obj }] },
    ]);
    return c?.props ?? {};
  };
  return {
    async guestExists(g) {
      return (await vmOf(g)) !== undefined;
    },
    async getGuestFacts(g): Promise<ProbeGuestFacts> {
      const vm = await vmOf(g);
      if (!vm) throw new Error(`probe: no VM ${g.id}`);
      const p = await read(vm, [
        'name',
        'config.instanceUuid',
        'config.hardware.memoryMB',
        'config.hardware.numCPU',
        'runtime.powerState',
      ]);
      return {
        name: String(p.name),
        uuid: String(p['config.instanceUuid']).toLowerCase(),
        memoryBytes: Number(p['config.hardware.memoryMB']) * MiB,
        vcpus: Number(p['config.hardware.numCPU']),
        powerState: power(p['runtime.powerState']),
      };
    },
    async getLimits(g): Promise<ResourceLimits> {
      const vm = await vmOf(g);
      if (!vm) throw new Error(`probe: no VM ${g.id}`);
      const p = await read(vm, [
        'config.cpuAllocation',
        'config.memoryAllocation',
        'config.hardware.device',
        'config.hardware.numCPU',
        'runtime.host',
      ]);
      const host = p['runtime.host'] as MoRef;
      const mhz = Number((await read(host, ['summary.hardware.cpuMhz']))['summary.hardware.cpuMhz']);
      const cpu = (p['config.cpuAllocation'] ?? {}) as DataObject;
      const mem = (p['config.memoryAllocation'] ?? {}) as DataObject;
      const shares = (cpu.shares ?? {}) as DataObject;
      const vcpus = Number(p['config.hardware.numCPU']);
      const levels: Record<string, number> = { low: 50, normal: 100, high: 200 };
      const weight = levels[String(shares.level)] ?? Math.round(Number(shares.shares) / vcpus / 10);
      const devices = (p['config.hardware.device'] ?? []) as DataObject[];
      const diskName = (d: DataObject) => probeDiskName(d, devices);
      return {
        cpu: {
          weight,
          maxCores: unlimited(cpu.limit) ? null : (cpu.limit as number) / mhz,
          reservationMHz: Number(cpu.reservation ?? 0),
        },
        memory: {
          maxBytes: unlimited(mem.limit) ? null : (mem.limit as number) * MiB,
          minBytes: Number(mem.reservation ?? 0) * MiB,
        },
        disks: devices
          .filter((d) => d._type === 'VirtualDisk')
          .map((d) => {
            const l = (d.storageIOAllocation as DataObject | undefined)?.limit;
            const iops = unlimited(l) ? null : (l as number);
            return { device: diskName(d), readIops: iops, writeIops: iops };
          }),
        nics: devices
          .filter((d) => typeof d.macAddress === 'string')
          .map((d) => {
            const l = (d.resourceAllocation as DataObject | undefined)?.limit;
            const label = (d.deviceInfo as DataObject | undefined)?.label;
            return {
              device: String(label),
              outboundAverageBytesPerSec: unlimited(l) ? null : (l as number) * 125_000,
            };
          }),
      };
    },
    async listSnapshotIds(g) {
      const vm = await vmOf(g);
      if (!vm) return [];
      const ids: string[] = [];
      const walk = (list: unknown) => {
        for (const n of (Array.isArray(list) ? list : []) as DataObject[]) {
          ids.push((n.snapshot as MoRef).value);
          walk(n.childSnapshotList);
        }
      };
      walk(((await read(vm, ['snapshot'])).snapshot as DataObject | undefined)?.rootSnapshotList);
      return ids;
    },
    /** Power-cycles the VM (off then on, or on then off when stopped): its state ends as it was. */
    async triggerEvent(g) {
      const vm = await vmOf(g);
      if (!vm) throw new Error(`probe: no VM ${g.id}`);
      const s = await get();
      const state = (await read(vm, ['runtime.powerState']))['runtime.powerState'];
      const order =
        state === 'poweredOn' ? ['PowerOffVM_Task', 'PowerOnVM_Task'] : ['PowerOnVM_Task', 'PowerOffVM_Task'];
      for (const method of order) await waitForTask(s, await s.call<MoRef>(method, vm));
    },
    /**
     * The SHA-256 of a disk as the guest sees it: its flat extent (`<name>-flat.vmdk`, else the .vmdk) read
     * with GET from the datastore, zero-padded to the disk's capacity (vcsim's extents are shorter).
     */
    async diskSha256(g, device) {
      const vm = await vmOf(g);
      if (!vm) throw new Error(`probe: no VM ${g.id ?? g.name}`);
      const devices = ((await read(vm, ['config.hardware.device']))['config.hardware.device'] ??
        []) as DataObject[];
      const disk = devices.find((d) => d._type === 'VirtualDisk' && probeDiskName(d, devices) === device);
      if (!disk) throw new Error(`probe: VM ${vm.value} has no disk ${device}`);
      const file = String((disk.backing as DataObject).fileName);
      const flat = file.replace(/\.vmdk$/, '-flat.vmdk');
      let bytes = await getDatastoreFile(flat);
      if (bytes === undefined) bytes = (await getDatastoreFile(file)) ?? new Uint8Array();
      const capacity = Number(disk.capacityInBytes ?? Number(disk.capacityInKB) * 1024);
      const hash = createHash('sha256').update(bytes);
      if (bytes.byteLength < capacity) hash.update(new Uint8Array(capacity - bytes.byteLength));
      return hash.digest('hex');
    },
    /** Destroys the VM (powered off first), which removes its folder from the datastore. */
    async removeGuest(g) {
      const vm = await vmOf(g);
      if (!vm) return;
      const s = await get();
      if ((await read(vm, ['runtime.powerState']))['runtime.powerState'] === 'poweredOn')
        await waitForTask(s, await s.call<MoRef>('PowerOffVM_Task', vm));
      await waitForTask(s, await s.call<MoRef>('Destroy_Task', vm));
    },
    async listGuestNames() {
      const vms = await retrieveContainer(await get(), { type: 'VirtualMachine', paths: ['name'] });
      return vms.map((v) => String(v.props.name));
    },
    /** Every file on every datastore, as `[ds] folder/file` (the datastore browser, recursively). */
    async listVolumes() {
      const s = await get();
      const stores = await retrieveContainer(s, { type: 'Datastore', paths: ['name', 'browser'] });
      const out: string[] = [];
      for (const ds of stores) {
        const task = await s.call<MoRef>('SearchDatastoreSubFolders_Task', ds.props.browser as MoRef, {
          datastorePath: `[${String(ds.props.name)}]`,
          searchSpec: { _type: 'HostDatastoreBrowserSearchSpec', matchPattern: ['*'] },
        });
        const results = (await waitForTask<DataObject[]>(s, task)) ?? [];
        for (const r of Array.isArray(results) ? results : [results]) {
          const folder = String(r.folderPath)
            .replace(/^\[[^\]]*\]\s*\/?/, '')
            .replace(/\/$/, '');
          for (const f of (Array.isArray(r.file) ? r.file : []) as DataObject[])
            out.push(`[${String(ds.props.name)}] ${folder === '' ? '' : `${folder}/`}${String(f.path)}`);
        }
      }
      return out.sort();
    },
    async close() {
      const s = session;
      session = undefined;
      if (s) await (await s).close().catch(() => {});
    },
  };
}
