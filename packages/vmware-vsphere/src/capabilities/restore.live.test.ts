/**
 * Restore against a private vcsim (peer `vcsim`): back up a VM whose flat VMDK holds known data, restore it
 * as a new VM, and compare what vcsim now has (its definition through the probe's own SOAP session, the
 * uploaded disk bytes through a GET of the datastore file) with the original; a flipped byte in an artifact
 * file and aborts at several points leave no VM and no folder; in place over a powered-off VM; cleanup of
 * what a killed run left. vcsim's datastore is a real directory, so "no folder left" is checked on disk.
 */

import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import {
  type BackupArtifact,
  checkProgressLog,
  createDirectorySink,
  createDirectorySource,
  HvkitError,
  type Progress,
} from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISK_BYTES, diskContent, startPreparedVcsim } from '../../test/probe';
import type { VcsimInstance } from '../../test/vcsim-instance';
import { env, liveTitle, vcsim } from '../../test/vcsim-peer';
import { connect, type VmwareVsphereAdapter } from '../connect';
import { retrieveContainer } from '../protocol/soap/property-collector';
import type { DataObject } from '../protocol/soap/schema';
import { connectVim, type VimSession } from '../protocol/soap/session';

describe.skipIf(!vcsim.available)(liveTitle('restore'), () => {
  let sim: VcsimInstance;
  let adapter: VmwareVsphereAdapter;
  let session: VimSession;
  let dir: string;
  let artifact: BackupArtifact;
  let vmId: string;
  let vmName: string;
  const dirs: string[] = [];

  beforeAll(async () => {
    sim = await startPreparedVcsim(env().HVKIT_VCSIM_BIN, 'vpx');
    const options = {
      url: sim.url,
      insecureHttp: true as const,
      username: sim.username,
      password: sim.password,
    };
    adapter = await connect(options);
    session = await connectVim({ ...options, keepAliveMs: false });
    const guests = await adapter.inventory.listGuests();
    const guest = guests.find((g) => g.disks.length > 0 && g.nics.length > 0) ?? guests[0];
    vmId = guest!.id;
    vmName = guest!.name;
    dir = mkdtempSync(join(tmpdir(), 'hvkit-vs-restore-'));
    dirs.push(dir);
    artifact = await adapter.backups.backup(vmId, createDirectorySink(dir));
  });
  afterAll(async () => {
    await session?.close();
    await adapter?.close();
    await sim?.stop();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  /** Every VM name on the server, read through the test's own session. */
  async function vmNames(): Promise<string[]> {
    const vms = await retrieveContainer(session, { type: 'VirtualMachine', paths: ['name'] });
    return vms.map((v) => String(v.props.name)).sort();
  }

  /** The folders at the root of vcsim's datastores (a real directory under the simulator's temp dir). */
  async function datastoreFolders(): Promise<string[]> {
    const stores = await retrieveContainer(session, { type: 'Datastore', paths: ['summary.url'] });
    return stores.flatMap((s) => readdirSync(String(s.props['summary.url']))).sort();
  }

  async function vmFacts(name: string) {
    const vms = await retrieveContainer(session, {
      type: 'VirtualMachine',
      paths: [
        'name',
        'config.hardware.numCPU',
        'config.hardware.memoryMB',
        'config.hardware.device',
        'config.uuid',
        'config.instanceUuid',
      ],
    });
    const vm = vms.find((v) => v.props.name === name);
    if (!vm) throw new Error(`no VM ${name}`);
    const devices = (vm.props['config.hardware.device'] ?? []) as DataObject[];
    return {
      id: vm.obj.value,
      numCPU: vm.props['config.hardware.numCPU'],
      memoryMB: vm.props['config.hardware.memoryMB'],
      uuid: vm.props['config.uuid'],
      instanceUuid: vm.props['config.instanceUuid'],
      disks: devices
        .filter((d) => d._type === 'VirtualDisk')
        .map((d) => ({ capacityInKB: d.capacityInKB, fileName: String((d.backing as DataObject).fileName) })),
      nics: devices
        .filter((d) => typeof d.macAddress === 'string')
        .map((d) => ({ type: d._type, mac: d.macAddress, network: (d.backing as DataObject).deviceName })),
    };
  }

  async function getFile(fileName: string): Promise<Uint8Array> {
    const m = /^\[([^\]]+)\]\s*(.*)$/.exec(fileName) as RegExpExecArray;
    const dcs = await retrieveContainer(session, { type: 'Datacenter', paths: ['name'] });
    const url = new URL(`/folder/${m[2]}`, sim.url);
    url.searchParams.set('dcPath', String(dcs[0]?.props.name));
    url.searchParams.set('dsName', m[1] as string);
    const r = await fetch(url, { headers: { cookie: session.client.cookieHeader() ?? '' } });
    expect(r.status).toBe(200);
    return new Uint8Array(await r.arrayBuffer());
  }

  const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

  it('a backup is a self-describing artifact: vm.vmx, vm-config.json, the disk files, the manifest last', () => {
    const names = artifact.files.map((f) => f.name);
    expect(artifact.path).toBe(`${vmName}/${artifact.id}`);
    expect(names.at(-1)).toBe(`${artifact.path}/hvkit-backup.json`);
    expect(names).toContain(`${artifact.path}/vm.vmx`);
    expect(names).toContain(`${artifact.path}/vm-config.json`);
    expect(names.some((n) => n.endsWith('-flat.vmdk'))).toBe(true);
    const manifest = JSON.parse(readFileSync(join(dir, artifact.path ?? '', 'hvkit-backup.json'), 'utf8'));
    expect(manifest.files.map((f: { role: string }) => f.role)).toContain('definition');
    const config = JSON.parse(readFileSync(join(dir, artifact.path ?? '', 'vm-config.json'), 'utf8'));
    expect(config).toMatchObject({ format: 'hvkit-vsphere-vm-config', name: vmName });
    expect(config.disks.length).toBeGreaterThan(0);
  });

  it('restores as a new VM: same CPUs, memory, disks and NIC networks, new uuid and MACs, same disk bytes', async () => {
    const before = await vmFacts(vmName);
    const log: Progress[] = [];
    const started = performance.now();
    const result = await adapter.backups.restore!(createDirectorySource(dir), {
      artifact: artifact.id,
      onProgress: (p) => log.push(p),
    });
    const elapsedMs = performance.now() - started;
    const name = `${vmName}-restored-${artifact.id}`;
    expect(result.guest.name).toBe(name);
    expect(result.mode).toBe('new');
    const after = await vmFacts(name);
    expect(after.numCPU).toBe(before.numCPU);
    expect(after.memoryMB).toBe(before.memoryMB);
    expect(after.disks.map((d) => d.capacityInKB)).toEqual(before.disks.map((d) => d.capacityInKB));
    expect(after.nics.map((n) => [n.type, n.network])).toEqual(before.nics.map((n) => [n.type, n.network]));
    expect(after.uuid).not.toBe(before.uuid);
    expect(after.instanceUuid).not.toBe(before.instanceUuid);
    for (const [i, nic] of after.nics.entries()) expect(nic.mac).not.toBe(before.nics[i]?.mac);
    // The restored flat extent holds the original's bytes.
    const restoredFlat = await getFile(after.disks[0]!.fileName.replace(/\.vmdk$/, '-flat.vmdk'));
    expect(restoredFlat.byteLength).toBe(DISK_BYTES);
    expect(sha(restoredFlat)).toBe(sha(diskContent(before.disks[0]!.fileName)));
    expect(checkProgressLog(log, { elapsedMs })).toEqual([]);
    const transfer = log.filter((p) => p.phase === 'transfer');
    expect(transfer.at(-1)?.processedBytes).toBe(transfer[0]?.totalBytes);
    expect(await datastoreFolders()).not.toContainEqual(expect.stringMatching(/^hvkit-restore-/));
  });

  /** A copy of the artifact with one byte of the flat extent flipped. */
  function corruptCopy(): string {
    const copy = mkdtempSync(join(tmpdir(), 'hvkit-vs-restore-bad-'));
    dirs.push(copy);
    for (const f of artifact.files) {
      const from = join(dir, f.name);
      const to = join(copy, f.name);
      mkdirSync(dirname(to), { recursive: true });
      const bytes = readFileSync(from);
      if (f.name.endsWith('-flat.vmdk'))
        bytes.writeUInt8(bytes.readUInt8(bytes.length >> 1) ^ 0x01, bytes.length >> 1);
      writeFileSync(to, bytes, { flag: 'w' });
    }
    return copy;
  }

  it('a flipped byte in a disk file is a typed artifact-mismatch, and nothing is registered or left on the datastore', async () => {
    const vmsBefore = await vmNames();
    const foldersBefore = await datastoreFolders();
    const copy = corruptCopy();
    const error = await adapter.backups.restore!(createDirectorySource(copy), {
      name: 'restored-corrupt',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT'), String(error)).toBe(true);
    expect((error as HvkitError).details?.reason).toBe('artifact-mismatch');
    expect(await vmNames()).toEqual(vmsBefore);
    expect(await datastoreFolders()).toEqual(foldersBefore);
  });

  it('an abort while reading the definition (from the progress callback) leaves no VM and no folder', async () => {
    const vmsBefore = await vmNames();
    const foldersBefore = await datastoreFolders();
    const controller = new AbortController();
    const error = await adapter.backups.restore!(createDirectorySource(dir), {
      name: 'restored-aborted-0',
      signal: controller.signal,
      onProgress: (p) => {
        if (p.phase === 'transfer' && p.processedBytes > 0) controller.abort();
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'ABORTED'), String(error)).toBe(true);
    expect(await vmNames()).toEqual(vmsBefore);
    expect(await datastoreFolders()).toEqual(foldersBefore);
  });

  // The abort comes when the adapter sends a given request to vcsim (seen by a fetch in front of the real
  // server): the upload of the disk data, the move of the folder, the registration, the reconfiguration
  // of the registered VM (which then exists and must be destroyed again).
  it.each([
    [
      'uploading the flat extent',
      (method: string, url: string) => method === 'PUT' && url.includes('-flat.vmdk'),
    ],
    ['uploading the .vmx', (method: string, url: string) => method === 'PUT' && url.includes('.vmx')],
    [
      'moving the folder into place',
      (_m: string, _u: string, body: string) => body.includes('<MoveDatastoreFile_Task'),
    ],
    ['registering', (_m: string, _u: string, body: string) => body.includes('<RegisterVM_Task')],
    [
      'completing the registered VM',
      (_m: string, _u: string, body: string) => body.includes('<ReconfigVM_Task'),
    ],
  ])('an abort while %s leaves no VM and no folder', async (when, at) => {
    const controller = new AbortController();
    let seen = false;
    const aborting = await connect({
      url: sim.url,
      insecureHttp: true,
      username: sim.username,
      password: sim.password,
      fetch: (input, init) => {
        const url = String(input instanceof Request ? input.url : input);
        if (
          controller.signal.aborted === false &&
          at(init?.method ?? 'GET', url, typeof init?.body === 'string' ? init.body : '')
        ) {
          seen = true;
          controller.abort();
        }
        return fetch(input, init);
      },
    });
    try {
      const vmsBefore = await vmNames();
      const foldersBefore = await datastoreFolders();
      const error = await aborting.backups.restore!(createDirectorySource(dir), {
        name: `restored-aborted-${when.replace(/\W+/g, '-')}`,
        signal: controller.signal,
      }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(seen).toBe(true);
      expect(HvkitError.isInstance(error, 'ABORTED'), String(error)).toBe(true);
      expect(await vmNames()).toEqual(vmsBefore);
      expect(await datastoreFolders()).toEqual(foldersBefore);
    } finally {
      await aborting.close();
    }
  });

  it('a backup of a VM without disks is a valid artifact holding its definition, and restores', async () => {
    const vms = await retrieveContainer(session, {
      type: 'VirtualMachine',
      paths: ['name', 'config.hardware.device'],
    });
    const target = vms.find((v) => v.props.name !== vmName && !String(v.props.name).includes('restored'));
    const disk = ((target?.props['config.hardware.device'] ?? []) as DataObject[]).filter(
      (d) => d._type === 'VirtualDisk',
    );
    // Take the VM's disks away (vcsim lets a powered-on VM lose them), back it up, restore it.
    await adapter.limits.get(target!.obj.value);
    const { waitForTask } = await import('../protocol/soap/task');
    const task = await session.call<{ type: string; value: string }>('ReconfigVM_Task', target!.obj, {
      spec: {
        _type: 'VirtualMachineConfigSpec',
        deviceChange: disk.map((d) => ({ _type: 'VirtualDeviceConfigSpec', operation: 'remove', device: d })),
      },
    });
    await waitForTask(session, task);
    const out = mkdtempSync(join(tmpdir(), 'hvkit-vs-nodisk-'));
    dirs.push(out);
    const a = await adapter.backups.backup(target!.obj.value, createDirectorySink(out));
    expect(a.files.map((f) => f.name.split('/').pop())).toEqual(
      expect.arrayContaining(['vm.vmx', 'vm-config.json', 'hvkit-backup.json']),
    );
    expect(a.files.some((f) => f.name.endsWith('.vmdk'))).toBe(false);
    const r = await adapter.backups.restore!(createDirectorySource(out), { name: 'restored-diskless' });
    expect(r.guest.disks).toEqual([]);
    expect(r.guest.name).toBe('restored-diskless');
  });

  /** PUTs bytes to a datastore file through the test's own session. */
  async function putFile(fileName: string, bytes: Uint8Array): Promise<void> {
    const m = /^\[([^\]]+)\]\s*(.*)$/.exec(fileName) as RegExpExecArray;
    const dcs = await retrieveContainer(session, { type: 'Datacenter', paths: ['name'] });
    const url = new URL(`/folder/${m[2]}`, sim.url);
    url.searchParams.set('dcPath', String(dcs[0]?.props.name));
    url.searchParams.set('dsName', m[1] as string);
    const r = await fetch(url, {
      method: 'PUT',
      body: bytes,
      headers: { cookie: session.client.cookieHeader() ?? '' },
    });
    expect(r.ok).toBe(true);
  }

  async function stoppedVm() {
    const vms = await retrieveContainer(session, {
      type: 'VirtualMachine',
      paths: ['name', 'runtime.powerState', 'config.hardware.device'],
    });
    const vm = vms.find(
      (v) =>
        v.props['runtime.powerState'] === 'poweredOff' &&
        ((v.props['config.hardware.device'] ?? []) as DataObject[]).some((d) => d._type === 'VirtualDisk'),
    );
    if (!vm) throw new Error('no powered-off VM with a disk');
    const disk = ((vm.props['config.hardware.device'] ?? []) as DataObject[]).find(
      (d) => d._type === 'VirtualDisk',
    );
    return {
      id: vm.obj.value,
      name: String(vm.props.name),
      fileName: String((disk?.backing as DataObject | undefined)?.fileName),
    };
  }

  it('restores in place over a powered-off VM: the disk bytes come back, no temporary folder stays', async () => {
    const target = await stoppedVm();
    const flat = target.fileName.replace(/\.vmdk$/, '-flat.vmdk');
    const out = mkdtempSync(join(tmpdir(), 'hvkit-vs-inplace-'));
    dirs.push(out);
    const a = await adapter.backups.backup(target.id, createDirectorySink(out));
    const original = await getFile(flat);
    await putFile(flat, new Uint8Array(DISK_BYTES).fill(0xab));
    expect(sha(await getFile(flat))).not.toBe(sha(original));
    const foldersBefore = await datastoreFolders();
    const log: Progress[] = [];
    const r = await adapter.backups.restore!(createDirectorySource(out), {
      artifact: a.id,
      mode: 'in-place',
      onProgress: (p) => log.push(p),
    });
    expect(r.mode).toBe('in-place');
    expect(r.guest.id).toBe(target.id);
    expect(sha(await getFile(flat))).toBe(sha(original));
    expect(await datastoreFolders()).toEqual(foldersBefore);
    expect(checkProgressLog(log)).toEqual([]);
  });

  it('in place over a running VM is CONFLICT and changes nothing', async () => {
    const error = await adapter.backups.restore!(createDirectorySource(dir), {
      artifact: artifact.id,
      mode: 'in-place',
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'CONFLICT'), String(error)).toBe(true);
    expect((await adapter.inventory.getGuest(vmId)).powerState).toBe('running');
  });

  it('cleanup removes what a killed run left (its snapshot, an expired lease, a restore folder) and keeps what a live lease holds', async () => {
    const { waitForTask } = await import('../protocol/soap/task');
    const vm = { type: 'VirtualMachine', value: vmId };
    const past = new Date(Date.now() - 3_600_000);
    const expired = {
      owner: 'gone-host:1',
      run: 'killed-run',
      startedAt: past.toISOString(),
      expiresAt: past.toISOString(),
    };
    // The killed backup's temporary snapshot and its lease in the VM's extraConfig.
    await waitForTask(
      session,
      await session.call('CreateSnapshot_Task', vm, {
        name: 'hvkit-backup (temporary)',
        description: 'hvkit-backup run=killed-run',
        memory: false,
        quiesce: false,
      }),
    );
    await waitForTask(
      session,
      await session.call('ReconfigVM_Task', vm, {
        spec: {
          _type: 'VirtualMachineConfigSpec',
          extraConfig: [
            {
              _type: 'OptionValue',
              key: 'hvkit.lease',
              value: { _type: 'xsd:string', _value: JSON.stringify(expired) },
            },
          ],
        },
      }),
    );
    // A killed restore's folder (expired lease) and a running restore's folder (live lease).
    const stores = await retrieveContainer(session, { type: 'Datastore', paths: ['name'] });
    const ds = String(stores[0]?.props.name);
    const guest = { id: vmId, name: vmName };
    await putFile(
      `[${ds}] hvkit-restore-killed/hvkit-lease.json`,
      new TextEncoder().encode(JSON.stringify({ ...expired, mode: 'new', guest, target: 'x' })),
    );
    await putFile(`[${ds}] hvkit-restore-killed/disk-scsi0-0-flat.vmdk`, new Uint8Array(100));
    const live = {
      ...expired,
      run: 'running-run',
      owner: 'other-host:2',
      expiresAt: new Date(Date.now() + 3_600_000).toISOString(),
    };
    await putFile(
      `[${ds}] hvkit-restore-running/hvkit-lease.json`,
      new TextEncoder().encode(JSON.stringify({ ...live, mode: 'new', guest, target: 'y' })),
    );
    // An incomplete artifact in the sink (no manifest).
    const sinkDir = mkdtempSync(join(tmpdir(), 'hvkit-vs-cleanup-'));
    dirs.push(sinkDir);
    mkdirSync(join(sinkDir, vmName, '20200101T000000Z-full-dead00'), { recursive: true });
    writeFileSync(join(sinkDir, vmName, '20200101T000000Z-full-dead00', 'vm.vmx'), 'x');
    const result = await adapter.backups.cleanup!(vmId, { sink: createDirectorySink(sinkDir) });
    expect(result.removed).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ kind: 'snapshot', run: 'killed-run' }),
        expect.objectContaining({ kind: 'lease', name: 'hvkit.lease', run: 'killed-run' }),
        expect.objectContaining({ kind: 'file', name: `[${ds}] hvkit-restore-killed`, run: 'killed-run' }),
        expect.objectContaining({ kind: 'file', name: `${vmName}/20200101T000000Z-full-dead00` }),
      ]),
    );
    expect(result.kept).toEqual([
      expect.objectContaining({ kind: 'file', name: `[${ds}] hvkit-restore-running`, run: 'running-run' }),
    ]);
    expect(await adapter.backups.listSnapshots(vmId)).toEqual([]);
    const folders = await datastoreFolders();
    expect(folders).not.toContain('hvkit-restore-killed');
    expect(folders).toContain('hvkit-restore-running');
    expect(readdirSync(join(sinkDir, vmName))).toEqual([]);
    // Run again: nothing more to remove.
    expect((await adapter.backups.cleanup!(vmId)).removed).toEqual([]);
  });

  it('a backup while another process holds a live lease on the VM is CONFLICT and leaves nothing', async () => {
    const { waitForTask } = await import('../protocol/soap/task');
    const vm = { type: 'VirtualMachine', value: vmId };
    const now = new Date();
    const live = {
      owner: 'other-host:3',
      run: 'other-run',
      startedAt: now.toISOString(),
      expiresAt: new Date(now.getTime() + 600_000).toISOString(),
    };
    const setLease = async (value: string) =>
      waitForTask(
        session,
        await session.call('ReconfigVM_Task', vm, {
          spec: {
            _type: 'VirtualMachineConfigSpec',
            extraConfig: [
              { _type: 'OptionValue', key: 'hvkit.lease', value: { _type: 'xsd:string', _value: value } },
            ],
          },
        }),
      );
    await setLease(JSON.stringify(live));
    try {
      const out = mkdtempSync(join(tmpdir(), 'hvkit-vs-leased-'));
      dirs.push(out);
      const error = await adapter.backups.backup(vmId, createDirectorySink(out)).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(HvkitError.isInstance(error, 'CONFLICT'), String(error)).toBe(true);
      expect(readdirSync(out)).toEqual([]);
      expect(await adapter.backups.listSnapshots(vmId)).toEqual([]);
    } finally {
      await setLease('');
    }
  });
});
