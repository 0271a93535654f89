/**
 * Inventory: host, guests (pipelined), networks, storage pools and volumes.
 */

import { readFile } from 'node:fs/promises';
import type {
  CallOptions,
  Guest,
  GuestRef,
  Host,
  InventoryCapability,
  Network,
  StoragePool,
  StorageVolume,
} from '@hvkit/core';
import { hvkitError } from '@hvkit/core';
import { parseDomainXml, powerStateFromLibvirt } from '../mapping/domain';
import { mapHost } from '../mapping/host';
import { parseNetworkXml } from '../mapping/network';
import { parsePoolXml, parseVolumeXml } from '../mapping/storage';
import { DOMAIN_STATS } from '../rpc/constants';
import { remoteProcedures } from '../rpc/remote-protocol';
import type { RemoteDomain } from '../rpc/types';
import { ADAPTER_ID, type AdapterContext, domainHandle, rpcOptions } from './context';

/** selinuxfs's mode file: `1` enforcing, `0` permissive. */
export const SELINUX_ENFORCE_FILE = '/sys/fs/selinux/enforce';

/**
 * SELinux's host-wide mode from selinuxfs (`1` enforcing, `0` permissive), or undefined when the file is
 * missing or holds anything else.
 */
export async function readSelinuxEnforcing(
  path: string = SELINUX_ENFORCE_FILE,
): Promise<boolean | undefined> {
  try {
    const text = (await readFile(path, 'utf8')).trim();
    return text === '1' ? true : text === '0' ? false : undefined;
  } catch {
    return undefined;
  }
}

/**
 * Reads the host (hostname, versions, node info, capabilities, security model) with concurrent calls.
 * libvirt's RPC does not report whether SELinux enforces: for a daemon on this machine (a local URI) the
 * mode is read from selinuxfs, for a remote one it stays unknown (absent).
 */
export async function readHost(ctx: AdapterContext, options?: CallOptions): Promise<Host> {
  const rpc = rpcOptions(options);
  const c = ctx.client;
  const [hostname, capabilities, nodeInfo, hvVersion, libVersion, secModel] = await Promise.all([
    c.call(remoteProcedures.CONNECT_GET_HOSTNAME, undefined, rpc),
    ctx.capabilities(options),
    c.call(remoteProcedures.NODE_GET_INFO, undefined, rpc),
    c.call(remoteProcedures.CONNECT_GET_VERSION, undefined, rpc),
    c.call(remoteProcedures.CONNECT_GET_LIB_VERSION, undefined, rpc),
    c.call(remoteProcedures.NODE_GET_SECURITY_MODEL, undefined, rpc).catch(() => undefined),
  ]);
  const selinux =
    ctx.localDaemon &&
    (capabilities.parsed.secmodels.some((m) => m.model === 'selinux') || secModel?.model === 'selinux')
      ? await readSelinuxEnforcing()
      : undefined;
  return mapHost({
    hostname,
    capabilities: capabilities.parsed,
    nodeInfo,
    hypervisorType: ctx.driver,
    hypervisorVersion: hvVersion,
    libVersion,
    ...(secModel && secModel.model !== '' ? { securityModel: secModel } : {}),
    ...(selinux !== undefined ? { enforcing: { selinux } } : {}),
  });
}

/** The host id: the capabilities host UUID (undefined when there is none), from the adapter's cached capabilities. */
export async function hostId(ctx: AdapterContext, options?: CallOptions): Promise<string | undefined> {
  return (await ctx.capabilities(options)).parsed.hostUuid?.toLowerCase();
}

/** A domain with its state code (`virDomainState`), or undefined when the state still has to be read. */
interface DomainWithState {
  dom: RemoteDomain;
  state: number | undefined;
}

/**
 * Every domain with its state in one round trip: CONNECT_GET_ALL_DOMAIN_STATS with only the state group
 * (no hypervisor job, so it never waits behind a busy guest). A daemon without it (UNSUPPORTED) gets
 * CONNECT_LIST_ALL_DOMAINS, and each state is then read with DOMAIN_GET_STATE.
 */
async function domainsWithState(ctx: AdapterContext, options?: CallOptions): Promise<DomainWithState[]> {
  const rpc = rpcOptions(options);
  try {
    const records = await ctx.client.call(
      remoteProcedures.CONNECT_GET_ALL_DOMAIN_STATS,
      { doms: [], stats: DOMAIN_STATS.STATE, flags: 0 },
      rpc,
    );
    return records.map(({ dom, params }) => {
      const state = params.find((p) => p.field === 'state.state')?.value;
      return { dom, state: typeof state === 'number' ? state : undefined };
    });
  } catch (error) {
    if ((error as { code?: string }).code !== 'UNSUPPORTED') throw error;
  }
  const { domains } = await ctx.client.call(
    remoteProcedures.CONNECT_LIST_ALL_DOMAINS,
    { needResults: 1, flags: 0 },
    rpc,
  );
  return domains.map((dom) => ({ dom, state: undefined }));
}

async function guestOf(
  ctx: AdapterContext,
  { dom, state }: DomainWithState,
  host: string | undefined,
  options?: CallOptions,
): Promise<Guest> {
  const rpc = rpcOptions(options);
  const [xml, st] = await Promise.all([
    ctx.client.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: 0 }, rpc),
    state === undefined
      ? ctx.client.call(remoteProcedures.DOMAIN_GET_STATE, { dom, flags: 0 }, rpc).then((r) => r.state)
      : state,
  ]);
  return parseDomainXml(xml, {
    powerState: powerStateFromLibvirt(st),
    ...(host !== undefined ? { hostId: host } : {}),
  });
}

/**
 * Every guest: the domains and their states in one call (see {@link domainsWithState}), then the XML of
 * all domains requested at once (the client keeps `maxInFlight` outstanding and queues the rest), not one
 * round trip after another. A domain that disappears between the list and its calls is left out.
 */
export async function listGuests(ctx: AdapterContext, options?: CallOptions): Promise<Guest[]> {
  const [domains, host] = await Promise.all([domainsWithState(ctx, options), hostId(ctx, options)]);
  const results = await Promise.all(
    domains.map((d) =>
      guestOf(ctx, d, host, options).catch((error: unknown) => {
        if ((error as { code?: string }).code === 'NOT_FOUND') return undefined;
        throw error;
      }),
    ),
  );
  return results.filter((g): g is Guest => g !== undefined);
}

/** The inventory capability. */
export function createInventory(ctx: AdapterContext): InventoryCapability {
  return {
    host: (options?: CallOptions) => readHost(ctx, options),
    listGuests: (options?: CallOptions) => listGuests(ctx, options),
    async getGuest(ref: GuestRef, options?: CallOptions): Promise<Guest> {
      const h = await domainHandle(ctx, ref, 'inventory.getGuest', options);
      const [xml, host] = await Promise.all([
        ctx.client.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom: h.dom, flags: 0 }, rpcOptions(options)),
        hostId(ctx, options),
      ]);
      return parseDomainXml(xml, {
        powerState: powerStateFromLibvirt(h.state),
        ...(host !== undefined ? { hostId: host } : {}),
      });
    },
    async listNetworks(options?: CallOptions): Promise<Network[]> {
      const rpc = rpcOptions(options);
      const { networks } = await ctx.client.call(
        remoteProcedures.CONNECT_LIST_ALL_NETWORKS,
        { needResults: 1, flags: 0 },
        rpc,
      );
      // LIST_NETWORKS flags: ACTIVE = 2 (virConnectListAllNetworksFlags); ask for the active ones separately.
      const active = await ctx.client.call(
        remoteProcedures.CONNECT_LIST_ALL_NETWORKS,
        { needResults: 1, flags: 2 },
        rpc,
      );
      const activeIds = new Set(active.networks.map((n) => n.uuid.toLowerCase()));
      return Promise.all(
        networks.map(async (net) =>
          parseNetworkXml(
            await ctx.client.call(remoteProcedures.NETWORK_GET_XML_DESC, { net, flags: 0 }, rpc),
            { active: activeIds.has(net.uuid.toLowerCase()) },
          ),
        ),
      );
    },
    async listStoragePools(options?: CallOptions): Promise<StoragePool[]> {
      const rpc = rpcOptions(options);
      const [all, active] = await Promise.all([
        ctx.client.call(remoteProcedures.CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 0 }, rpc),
        // virConnectListAllStoragePoolsFlags ACTIVE = 2.
        ctx.client.call(remoteProcedures.CONNECT_LIST_ALL_STORAGE_POOLS, { needResults: 1, flags: 2 }, rpc),
      ]);
      const activeIds = new Set(active.pools.map((p) => p.uuid.toLowerCase()));
      return Promise.all(
        all.pools.map(async (pool) =>
          parsePoolXml(
            await ctx.client.call(remoteProcedures.STORAGE_POOL_GET_XML_DESC, { pool, flags: 0 }, rpc),
            { active: activeIds.has(pool.uuid.toLowerCase()) },
          ),
        ),
      );
    },
    async listStorageVolumes(poolId: string, options?: CallOptions): Promise<StorageVolume[]> {
      if (typeof poolId !== 'string' || poolId === '')
        throw new TypeError('poolId must be a non-empty string.');
      if (poolId.includes('\0')) {
        throw hvkitError('INVALID_ARGUMENT', 'poolId contains a NUL byte; no libvirt pool can have it.', {
          adapter: ADAPTER_ID,
          operation: 'inventory.listStorageVolumes',
          details: { field: 'poolId' },
        });
      }
      const rpc = rpcOptions(options);
      const { pools } = await ctx.client.call(
        remoteProcedures.CONNECT_LIST_ALL_STORAGE_POOLS,
        { needResults: 1, flags: 0 },
        rpc,
      );
      const pool = pools.find((p) => p.uuid.toLowerCase() === poolId.toLowerCase() || p.name === poolId);
      if (!pool) {
        throw hvkitError('NOT_FOUND', `No storage pool ${JSON.stringify(poolId)}.`, {
          adapter: ADAPTER_ID,
          operation: 'inventory.listStorageVolumes',
        });
      }
      const { vols } = await ctx.client.call(
        remoteProcedures.STORAGE_POOL_LIST_ALL_VOLUMES,
        { pool, needResults: 1, flags: 0 },
        rpc,
      );
      const id = pool.uuid.toLowerCase();
      return Promise.all(
        vols.map(async (vol) =>
          parseVolumeXml(
            await ctx.client.call(remoteProcedures.STORAGE_VOL_GET_XML_DESC, { vol, flags: 0 }, rpc),
            { poolId: id },
          ),
        ),
      );
    },
  };
}
