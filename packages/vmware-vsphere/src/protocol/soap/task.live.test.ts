/**
 * Live task tests against a private vcsim (they power VMs off and on, take snapshots and reconfigure):
 * waiting on tasks, task errors typed by fault, a cancelled wait, and a ReconfigVM that sends a device
 * back as read (xsi:type on every polymorphic field).
 */

import { HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVcsim, type VcsimInstance } from '../../../test/vcsim-instance';
import { env, liveTitle, type Tap, tappedFetch, vcsim } from '../../../test/vcsim-peer';
import { retrieveContainer, retrieveProperties } from './property-collector';
import type { DataObject, MoRef } from './schema';
import { connectVim, type VimSession } from './session';
import { waitForTask } from './task';

describe.skipIf(!vcsim.available)(liveTitle('tasks (own vcsim)'), () => {
  let sim: VcsimInstance;
  let session: VimSession;
  let tap: Tap;
  let vm: MoRef;

  beforeAll(async () => {
    sim = await startVcsim({
      bin: env().HVKIT_VCSIM_BIN,
      args: ['-model', 'vpx', '-cluster', '1', '-host', '1', '-standalone-host', '0', '-vm', '2'],
    });
    const [fetch, t] = tappedFetch();
    tap = t;
    session = await connectVim({
      url: sim.url,
      insecureHttp: true,
      fetch,
      username: sim.username,
      password: sim.password,
      keepAliveMs: false,
    });
    const vms = await retrieveContainer(session, { type: 'VirtualMachine', paths: ['name'] });
    vm = (vms[0] as { obj: MoRef }).obj;
  });
  afterAll(async () => {
    await session?.close();
    await sim?.stop();
  });

  async function read(paths: string[]): Promise<Record<string, unknown>> {
    const [content] = await retrieveProperties(session, [
      { propSet: [{ type: 'VirtualMachine', pathSet: paths }], objectSet: [{ obj: vm }] },
    ]);
    return content?.props ?? {};
  }

  it('waits for PowerOff and PowerOn', async () => {
    const off = await session.call<MoRef>('PowerOffVM_Task', vm);
    expect(off.type).toBe('Task');
    expect(await waitForTask(session, off)).toBeUndefined();
    expect((await read(['runtime.powerState']))['runtime.powerState']).toBe('poweredOff');
    await waitForTask(session, await session.call<MoRef>('PowerOnVM_Task', vm));
    expect((await read(['runtime.powerState']))['runtime.powerState']).toBe('poweredOn');
  });

  it('types a failed task by its fault (InvalidPowerState → CONFLICT)', async () => {
    const task = await session.call<MoRef>('PowerOnVM_Task', vm);
    const error = await waitForTask(session, task).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(HvkitError.isInstance(error, 'CONFLICT')).toBe(true);
    expect((error as HvkitError).backendCode).toBe('InvalidPowerState');
    expect((error as HvkitError).details).toMatchObject({
      faultSource: 'task',
      task: task.value,
      fault: { _type: 'InvalidPowerState', requestedState: 'poweredOn', existingState: 'poweredOn' },
    });
  });

  it('returns the task result (CreateSnapshot_Task → the snapshot)', async () => {
    const task = await session.call<MoRef>('CreateSnapshot_Task', vm, {
      name: 'hvkit-live',
      description: 'from task.live.test.ts',
      memory: false,
      quiesce: false,
    });
    const snapshot = await waitForTask<MoRef>(session, task);
    expect(snapshot).toEqual({ type: 'VirtualMachineSnapshot', value: expect.any(String) });
    const info = (await read(['snapshot'])).snapshot as DataObject;
    expect(info).toMatchObject({
      _type: 'VirtualMachineSnapshotInfo',
      currentSnapshot: snapshot,
      rootSnapshotList: [
        { _type: 'VirtualMachineSnapshotTree', name: 'hvkit-live', snapshot, createTime: expect.any(Date) },
      ],
    });
  });

  it('stops waiting when aborted and asks the server to cancel the task', async () => {
    const task = await session.call<MoRef>('PowerOffVM_Task', vm);
    // The real answer to each poll is held back, so the wait is still polling when it is aborted.
    tap.delay.RetrievePropertiesEx = 3_000;
    tap.calls.length = 0;
    const controller = new AbortController();
    setTimeout(() => controller.abort(), 200);
    const started = Date.now();
    try {
      const error = await waitForTask(session, task, { signal: controller.signal }).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(HvkitError.isInstance(error, 'ABORTED')).toBe(true);
      expect(Date.now() - started).toBeLessThan(2_000);
      // vcsim 0.24.2 has no CancelTask (MethodNotFound, ignored): the request itself is what is checked.
      await expect.poll(() => tap.calls.map((c) => c.method)).toContain('CancelTask');
    } finally {
      delete tap.delay.RetrievePropertiesEx;
    }
    await waitForTask(session, await session.call<MoRef>('PowerOnVM_Task', vm));
  });

  it('reconfigures a disk and CPU allocation by sending the device back as read', async () => {
    const before = await read(['config.hardware.device', 'config.cpuAllocation']);
    const disk = (before['config.hardware.device'] as DataObject[]).find(
      (d) => d._type === 'VirtualDisk',
    ) as DataObject;
    const task = await session.call<MoRef>('ReconfigVM_Task', vm, {
      spec: {
        cpuAllocation: { reservation: 100, limit: 2000, shares: { shares: 3000, level: 'custom' } },
        deviceChange: [
          {
            _type: 'VirtualDeviceConfigSpec',
            operation: 'edit',
            device: {
              ...disk,
              storageIOAllocation: { limit: 321, shares: { shares: 1000, level: 'normal' } },
            },
          },
        ],
      },
    });
    await waitForTask(session, task);
    const after = await read(['config.hardware.device', 'config.cpuAllocation']);
    const changed = (after['config.hardware.device'] as DataObject[]).find(
      (d) => d.key === disk.key,
    ) as DataObject;
    expect(changed).toMatchObject({
      _type: 'VirtualDisk',
      backing: disk.backing,
      storageIOAllocation: { limit: 321 },
    });
    expect(after['config.cpuAllocation']).toMatchObject({
      reservation: 100,
      limit: 2000,
      shares: { shares: 3000, level: 'custom' },
    });
    // Same devices as before (vcsim moves the edited one to the end).
    const keys = (list: unknown) => (list as DataObject[]).map((d) => d.key as number).sort((a, b) => a - b);
    expect(keys(after['config.hardware.device'])).toEqual(keys(before['config.hardware.device']));
  });
});
