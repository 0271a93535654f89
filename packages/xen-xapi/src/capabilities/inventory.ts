/**
 * The `inventory` capability: `get_all_records` of the classes a view needs, joined into the model.
 * Guests leave out templates, snapshots and control domains; VLAN ids come from the networks' PIFs.
 */

import { type CallOptions, type GuestRef, hvkitError, type InventoryCapability } from '@hvkit/core';
import { type AdapterContext, getRecord, resolveVm } from '../context';
import { ADAPTER_ID } from '../errors';
import {
  type GuestRelations,
  guestOf,
  hostOf,
  isGuestRecord,
  networkOf,
  type Records,
  storagePoolOf,
  storageVolumeOf,
} from '../mapping/inventory';
import { normaliseRecords } from '../protocol/values';

/** `get_all_records` of each class, in order (one request at a time, so recordings replay exactly). */
async function allRecords<C extends string>(
  ctx: AdapterContext,
  classes: readonly C[],
  o: CallOptions,
): Promise<Record<C, Records>> {
  const out = {} as Record<C, Records>;
  for (const cls of classes)
    out[cls] = normaliseRecords(cls, await ctx.client.call(`${cls}.get_all_records`, [], o));
  return out;
}

const GUEST_CLASSES = ['VM', 'host', 'VIF', 'VBD', 'VDI', 'network', 'PIF'] as const;

/** The inventory capability of one adapter. */
export function createInventory(ctx: AdapterContext): InventoryCapability {
  return {
    async host(o: CallOptions = {}) {
      const r = await allRecords(ctx, ['pool', 'host', 'host_metrics'], o);
      ctx.client.notePoolHosts([...r.host.values()].map((h) => String(h.address ?? '')));
      const pool = [...r.pool.values()][0];
      const master =
        (pool?.master ? r.host.get(pool.master as string) : undefined) ?? [...r.host.values()][0];
      if (!master)
        throw hvkitError('PROTOCOL', 'The pool has no host records.', {
          adapter: ADAPTER_ID,
          operation: 'inventory.host',
        });
      return hostOf(master, r.host_metrics.get(master.metrics as string));
    },

    async listGuests(o: CallOptions = {}) {
      const r = await allRecords(ctx, GUEST_CLASSES, o);
      return [...r.VM.values()]
        .filter(isGuestRecord)
        .map((vm) => guestOf(vm, r as GuestRelations))
        .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    },

    async getGuest(ref: GuestRef, o: CallOptions = {}) {
      const vm = await resolveVm(ctx, ref, 'inventory.getGuest', o);
      const rel: GuestRelations = {
        host: new Map(),
        VIF: new Map(),
        VBD: new Map(),
        VDI: new Map(),
        network: new Map(),
        PIF: new Map(),
      };
      if (vm.record.resident_on)
        rel.host.set(
          vm.record.resident_on as string,
          await getRecord(ctx, 'host', vm.record.resident_on as string, o),
        );
      for (const vifRef of vm.record.VIFs as string[]) {
        const vif = await getRecord(ctx, 'VIF', vifRef, o);
        rel.VIF.set(vifRef, vif);
        if (vif.network && !rel.network.has(vif.network as string)) {
          const net = await getRecord(ctx, 'network', vif.network as string, o);
          rel.network.set(vif.network as string, net);
          for (const pifRef of net.PIFs as string[])
            rel.PIF.set(pifRef, await getRecord(ctx, 'PIF', pifRef, o));
        }
      }
      for (const vbdRef of vm.record.VBDs as string[]) {
        const vbd = await getRecord(ctx, 'VBD', vbdRef, o);
        rel.VBD.set(vbdRef, vbd);
        if (vbd.VDI) rel.VDI.set(vbd.VDI as string, await getRecord(ctx, 'VDI', vbd.VDI as string, o));
      }
      return guestOf(vm.record, rel);
    },

    async listNetworks(o: CallOptions = {}) {
      const r = await allRecords(ctx, ['network', 'PIF'], o);
      return [...r.network.values()]
        .map((n) => networkOf(n, r.PIF))
        .sort((a, b) => a.name.localeCompare(b.name));
    },

    async listStoragePools(o: CallOptions = {}) {
      const r = await allRecords(ctx, ['SR'], o);
      return [...r.SR.values()].map(storagePoolOf).sort((a, b) => a.name.localeCompare(b.name));
    },

    async listStorageVolumes(poolId: string, o: CallOptions = {}) {
      if (typeof poolId !== 'string') throw new TypeError('listStorageVolumes: poolId must be a string.');
      const r = await allRecords(ctx, ['SR', 'VDI'], o);
      const sr = [...r.SR.entries()].find(([, s]) => s.uuid === poolId);
      if (!sr)
        throw hvkitError('NOT_FOUND', `No storage pool ${JSON.stringify(poolId.slice(0, 80))}.`, {
          adapter: ADAPTER_ID,
          operation: 'inventory.listStorageVolumes',
        });
      return [...r.VDI.values()]
        .filter((v) => v.SR === sr[0])
        .map((v) => storageVolumeOf(v, poolId))
        .sort((a, b) => a.name.localeCompare(b.name) || a.id.localeCompare(b.id));
    },
  };
}
