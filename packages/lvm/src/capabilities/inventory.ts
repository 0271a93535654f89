/**
 * The `inventory` capability: the host (LVM's version), volume groups as storage pools, logical volumes as
 * storage volumes, and the volumes that hold data as guests (see `mapping/guests.ts`).
 */

import { type CallOptions, hvkitError, type InventoryCapability } from '@hvkit/core';
import type { AdapterContext } from '../context';
import { ADAPTER_ID } from '../errors';
import { poolOf, volumeOf } from '../mapping/guests';
import { checkVgName } from '../protocol/names';
import { guestsOf, resolveGuest } from './resolve';

/** The `inventory` capability object. */
export function createInventory(context: AdapterContext): InventoryCapability {
  const { client } = context;
  return {
    async host(options: CallOptions = {}) {
      const hello = await client.hello(options);
      const name = (await client.run(['uname', '-n'], { ...options, operation: 'inventory.host' })).trim();
      return {
        id: client.target,
        name: name || client.target,
        hypervisor: { kind: 'LVM', version: hello.version, ...(hello.build ? { build: hello.build } : {}) },
        cpu: {},
        securityModels: [],
      };
    },

    async listGuests(options: CallOptions = {}) {
      const all = await client.lvs(undefined, { ...options, operation: 'inventory.listGuests' });
      return guestsOf(context, all).map((g) => g.guest);
    },

    async getGuest(ref, options: CallOptions = {}) {
      return (await resolveGuest(context, ref, { ...options, operation: 'inventory.getGuest' })).guest;
    },

    async listStoragePools(options: CallOptions = {}) {
      const vgs = await client.vgs({ ...options, operation: 'inventory.listStoragePools' });
      return vgs.map(poolOf);
    },

    async listStorageVolumes(poolId: string, options: CallOptions = {}) {
      if (typeof poolId !== 'string') throw new TypeError('listStorageVolumes: poolId must be a string.');
      const vg = checkVgName(poolId, 'inventory.listStorageVolumes');
      const vgs = await client.vgs({ ...options, operation: 'inventory.listStorageVolumes' });
      if (!vgs.some((g) => g.name === vg)) {
        throw hvkitError('NOT_FOUND', `No volume group ${JSON.stringify(vg)} on ${client.target}.`, {
          adapter: ADAPTER_ID,
          operation: 'inventory.listStorageVolumes',
        });
      }
      const lvs = await client.lvs(vg, { ...options, operation: 'inventory.listStorageVolumes' });
      return lvs.filter((lv) => !lv.internal).map(volumeOf);
    },
  };
}
