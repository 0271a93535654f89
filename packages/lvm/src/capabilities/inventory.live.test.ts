import { HvkitError } from '@hvkit/core';
import type { SshClient } from '@hvkit/ssh';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { connectLab, createTestVg, lab, labTitle, sh, type TestVg } from '../../test/lab';
import { connect, type LvmAdapter } from '../connect';
import { LvmClient } from '../protocol/client';

describe.skipIf(!lab.available)(labTitle('lvm inventory in the lab VM'), { timeout: 120_000 }, () => {
  let ssh: SshClient;
  let vg: TestVg;
  let hv: LvmAdapter;
  beforeAll(async () => {
    ssh = await connectLab();
    vg = await createTestVg(ssh);
    await sh(
      ssh,
      `lvcreate -q -y -L 16M -n data ${vg.name} >/dev/null
lvcreate -q -s -L 8M -n data-snap ${vg.name}/data >/dev/null
lvcreate -q -y -L 32M -T ${vg.name}/pool >/dev/null
lvcreate -q -y -V 16M -T ${vg.name}/pool -n thin1 >/dev/null 2>&1`,
    );
    hv = await connect({ ssh });
  }, 120_000);
  afterAll(async () => {
    await hv?.close();
    await vg?.remove();
    await ssh?.close();
  });

  it('reads LVM version, groups as pools, volumes as storage volumes', async () => {
    expect(hv.server).toMatchObject({ product: 'LVM', version: expect.stringMatching(/^2\.03\./) });
    const host = await hv.inventory?.host();
    expect(host?.hypervisor.kind).toBe('LVM');
    const pools = await hv.inventory?.listStoragePools?.();
    const pool = pools?.find((p) => p.id === vg.name);
    expect(pool).toMatchObject({ type: 'lvm', capacityBytes: 264241152, path: `/dev/${vg.name}` });
    const vols = await hv.inventory?.listStorageVolumes?.(vg.name);
    expect(vols?.map((v) => v.id).sort()).toEqual(
      [`${vg.name}/data`, `${vg.name}/data-snap`, `${vg.name}/pool`, `${vg.name}/thin1`].sort(),
    );
  });

  it('lists data volumes as guests with id vg/lv, not snapshots, pools or internal volumes', async () => {
    const guests = (await hv.inventory?.listGuests())?.filter((g) => g.id.startsWith(`${vg.name}/`));
    expect(guests?.map((g) => g.id).sort()).toEqual([`${vg.name}/data`, `${vg.name}/thin1`]);
    const data = await hv.inventory?.getGuest(`${vg.name}/data`);
    expect(data).toMatchObject({
      name: `${vg.name}/data`,
      powerState: 'running',
      disks: [{ device: `${vg.name}/data`, source: `/dev/${vg.name}/data`, capacityBytes: 16 * 1024 * 1024 }],
    });
    expect(await hv.inventory?.getGuest({ uuid: data?.uuid as string })).toMatchObject({ id: data?.id });
    await expect(hv.inventory?.getGuest(`${vg.name}/nope`)).rejects.toMatchObject({ code: 'NOT_FOUND' });
    await expect(hv.inventory?.listStorageVolumes?.('hvkit-test-none')).rejects.toMatchObject({
      code: 'NOT_FOUND',
    });
  });

  it('maps guests to volumes when asked', async () => {
    await using mapped = await connect({ ssh, guests: { web: [`${vg.name}/data`, `${vg.name}/thin1`] } });
    const guests = await mapped.inventory?.listGuests();
    expect(guests?.map((g) => [g.id, g.disks.map((d) => d.device)])).toEqual([
      ['web', [`${vg.name}/data`, `${vg.name}/thin1`]],
    ]);
  });

  it('rejects names with shell metacharacters before running anything, over SSH', async () => {
    const marker = `/tmp/hvkit-pwned-${vg.name}`;
    for (const bad of [`$(touch ${marker})`, `x;touch ${marker}`, `\`touch ${marker}\``, `-a`, `a b`]) {
      const error = await hv.inventory?.listStorageVolumes?.(bad).catch((e: unknown) => e);
      expect(HvkitError.isInstance(error, 'INVALID_ARGUMENT'), bad).toBe(true);
    }
    expect((await sh(ssh, `test -e ${marker} && echo yes || echo no`)).trim()).toBe('no');
  });

  it('passes a hostile name verbatim as one argument over SSH when it does reach a command (below the name checks)', async () => {
    const marker = `/tmp/hvkit-pwned-${vg.name}-raw`;
    const client = new LvmClient(ssh.exec, 30_000);
    for (const bad of [
      `x;touch ${marker}`,
      `$(touch ${marker})`,
      `\`touch ${marker}\``,
      `x' ; touch ${marker}; '`,
    ]) {
      const error = await client.lvs(bad).catch((e: unknown) => e);
      // lvs itself refuses the literal name; no shell ever saw it.
      expect(HvkitError.isInstance(error), bad).toBe(true);
      expect((error as HvkitError).backendMessage, bad).toMatch(/invalid|not found|Invalid/i);
    }
    expect((await sh(ssh, `test -e ${marker} && echo yes || echo no`)).trim()).toBe('no');
  });
});
