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
import { type AdapterContext, domainHandle, rpcOptions } from '../context';
import { ADAPTER_ID } from '../errors';
import { diskCapacitiesFromStats, parseDomainXml, powerStateFromLibvirt } from '../mapping/domain';
import { mapHost } from '../mapping/host';
import { parseNetworkXml } from '../mapping/network';
import { parsePoolXml, parseVolumeXml } from '../mapping/storage';
import { DOMAIN_STATS, GET_ALL_DOMAINS_STATS_NOWAIT } from '../protocol/constants';
import { remoteProcedures } from '../protocol/remote-protocol';
import type { RemoteDomain, RemoteStoragePool, RemoteStorageVol } from '../protocol/types';

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

/**
 * The host id, as `Host.id`: the capabilities' host UUID (from the adapter's cached capabilities), else the
 * hostname (the test driver has no host UUID).
 */
export async function hostId(ctx: AdapterContext, options?: CallOptions): Promise<string> {
  const uuid = (await ctx.capabilities(options)).parsed.hostUuid?.toLowerCase();
  return (
    uuid ?? (await ctx.client.call(remoteProcedures.CONNECT_GET_HOSTNAME, undefined, rpcOptions(options)))
  );
}

const isCode = (error: unknown, code: string) => (error as { code?: string }).code === code;

/**
 * A domain with its state code (`virDomainState`, undefined when the state still has to be read) and the
 * disk capacities the stats call gave.
 */
interface DomainWithStats {
  dom: RemoteDomain;
  state: number | undefined;
  capacities: Map<string, number>;
}

/**
 * CONNECT_GET_ALL_DOMAIN_STATS for every domain (`doms` empty) or the ones given, with
 * `NOWAIT`: a group that needs a busy guest's job (the block group of a running QEMU guest) is skipped for
 * that guest instead of waiting. Undefined when the daemon has no such call (UNSUPPORTED: LXC).
 */
async function domainStats(
  ctx: AdapterContext,
  stats: number,
  doms: RemoteDomain[],
  options?: CallOptions,
): Promise<DomainWithStats[] | undefined> {
  try {
    const records = await ctx.client.call(
      remoteProcedures.CONNECT_GET_ALL_DOMAIN_STATS,
      { doms, stats, flags: GET_ALL_DOMAINS_STATS_NOWAIT },
      rpcOptions(options),
    );
    return records.map(({ dom, params }) => {
      const state = params.find((p) => p.field === 'state.state')?.value;
      return {
        dom,
        state: typeof state === 'number' ? state : undefined,
        capacities: diskCapacitiesFromStats(params),
      };
    });
  } catch (error) {
    if (!isCode(error, 'UNSUPPORTED')) throw error;
    return undefined;
  }
}

/**
 * Every domain with its state and disk capacities in one round trip: CONNECT_GET_ALL_DOMAIN_STATS with the
 * state and block groups (see {@link domainStats}). A daemon without it gets CONNECT_LIST_ALL_DOMAINS, and
 * each state is then read with DOMAIN_GET_STATE.
 */
async function domainsWithStats(ctx: AdapterContext, options?: CallOptions): Promise<DomainWithStats[]> {
  const records = await domainStats(ctx, DOMAIN_STATS.STATE | DOMAIN_STATS.BLOCK, [], options);
  if (records) return records;
  const { domains } = await ctx.client.call(
    remoteProcedures.CONNECT_LIST_ALL_DOMAINS,
    { needResults: 1, flags: 0 },
    rpcOptions(options),
  );
  return domains.map((dom) => ({ dom, state: undefined, capacities: new Map() }));
}

/**
 * Capacities of the disks the stats did not give (the test driver gives none; QEMU skips a busy guest)
 * from the storage volume behind them: STORAGE_VOL_LOOKUP_BY_PATH for file and block disks,
 * STORAGE_VOL_LOOKUP_BY_NAME for volume disks, then STORAGE_VOL_GET_INFO. Asked only when the daemon has an
 * active storage pool (one CONNECT_LIST_ALL_STORAGE_POOLS per listGuests or getGuest); a disk that is not
 * a pool volume keeps no capacity.
 */
class VolumeCapacities {
  private pools: Promise<RemoteStoragePool[]> | undefined;

  constructor(
    private readonly ctx: AdapterContext,
    private readonly options: CallOptions | undefined,
  ) {}

  /** Sets `capacityBytes` on the guest's disks that lack it and are pool volumes. */
  async fill(guest: Guest): Promise<void> {
    const missing = guest.disks.filter(
      (d) =>
        d.capacityBytes === undefined &&
        d.source !== undefined &&
        (d.backing === 'volume' ||
          ((d.backing === 'file' || d.backing === 'block') && d.source.startsWith('/'))),
    );
    if (missing.length === 0) return;
    const pools = await this.activePools();
    if (pools.length === 0) return;
    await Promise.all(
      missing.map(async (disk) => {
        const capacity = await this.capacityOf(disk.backing, disk.source as string, pools);
        if (capacity !== undefined) disk.capacityBytes = capacity;
      }),
    );
  }

  private activePools(): Promise<RemoteStoragePool[]> {
    this.pools ??= this.ctx.client
      .call(
        remoteProcedures.CONNECT_LIST_ALL_STORAGE_POOLS,
        // virConnectListAllStoragePoolsFlags ACTIVE = 2.
        { needResults: 1, flags: 2 },
        rpcOptions(this.options),
      )
      .then(
        (r) => r.pools,
        (error: unknown) => {
          // A daemon without the storage driver has no volumes to ask about.
          if (isCode(error, 'UNSUPPORTED')) return [];
          throw error;
        },
      );
    return this.pools;
  }

  private async capacityOf(
    backing: string,
    source: string,
    pools: RemoteStoragePool[],
  ): Promise<number | undefined> {
    const rpc = rpcOptions(this.options);
    const client = this.ctx.client;
    let vol: RemoteStorageVol;
    try {
      if (backing === 'volume') {
        const slash = source.indexOf('/');
        const pool = pools.find((p) => p.name === source.slice(0, slash));
        if (slash < 0 || !pool) return undefined;
        vol = await client.call(
          remoteProcedures.STORAGE_VOL_LOOKUP_BY_NAME,
          { pool, name: source.slice(slash + 1) },
          rpc,
        );
      } else {
        vol = await client.call(remoteProcedures.STORAGE_VOL_LOOKUP_BY_PATH, { path: source }, rpc);
      }
      const { capacity } = await client.call(remoteProcedures.STORAGE_VOL_GET_INFO, { vol }, rpc);
      const bytes = Number(capacity);
      return Number.isSafeInteger(bytes) ? bytes : undefined;
    } catch (error) {
      // Not a pool volume (or removed meanwhile): no capacity.
      if (isCode(error, 'NOT_FOUND')) return undefined;
      throw error;
    }
  }
}

async function guestOf(
  ctx: AdapterContext,
  { dom, state, capacities }: DomainWithStats,
  host: string,
  volumes: VolumeCapacities,
  options?: CallOptions,
): Promise<Guest> {
  const rpc = rpcOptions(options);
  const [xml, st] = await Promise.all([
    ctx.client.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom, flags: 0 }, rpc),
    state === undefined
      ? ctx.client.call(remoteProcedures.DOMAIN_GET_STATE, { dom, flags: 0 }, rpc).then((r) => r.state)
      : state,
  ]);
  const guest = parseDomainXml(xml, {
    powerState: powerStateFromLibvirt(st),
    hostId: host,
    diskCapacities: capacities,
  });
  await volumes.fill(guest);
  return guest;
}

/**
 * Every guest: the domains with their states and disk capacities in one call (see
 * {@link domainsWithStats}), then the XML of all domains requested at once (the client keeps `maxInFlight`
 * outstanding and queues the rest), not one round trip after another; capacities the stats lack come from
 * storage volumes ({@link VolumeCapacities}). A domain that disappears between the list and its calls is
 * left out.
 */
export async function listGuests(ctx: AdapterContext, options?: CallOptions): Promise<Guest[]> {
  const [domains, host] = await Promise.all([domainsWithStats(ctx, options), hostId(ctx, options)]);
  const volumes = new VolumeCapacities(ctx, options);
  const results = await Promise.all(
    domains.map((d) =>
      guestOf(ctx, d, host, volumes, options).catch((error: unknown) => {
        if (isCode(error, 'NOT_FOUND')) return undefined;
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
      const [xml, host, stats] = await Promise.all([
        ctx.client.call(remoteProcedures.DOMAIN_GET_XML_DESC, { dom: h.dom, flags: 0 }, rpcOptions(options)),
        hostId(ctx, options),
        domainStats(ctx, DOMAIN_STATS.BLOCK, [h.dom], options),
      ]);
      const guest = parseDomainXml(xml, {
        powerState: powerStateFromLibvirt(h.state),
        hostId: host,
        diskCapacities: stats?.[0]?.capacities ?? new Map(),
      });
      await new VolumeCapacities(ctx, options).fill(guest);
      return guest;
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
