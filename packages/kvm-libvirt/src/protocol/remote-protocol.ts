/**
 * Typed encoders and decoders for the REMOTE procedures hvkit uses. Each entry of
 * {@link remoteProcedures} describes one procedure: its number, how its arguments are written and how
 * its reply is read. Pass it to `LibvirtRpcClient.call()`.
 *
 * Layouts follow libvirt 9.0 `remote_protocol.x`; every reply decoder checks that the whole payload was
 * consumed, so a layout mistake surfaces as a `PROTOCOL` error instead of wrong data.
 */

import { LIMITS, PROGRAM, PROTOCOL_VERSION, REMOTE_PROC, type RemoteProcName } from './constants';
import {
  type RemoteDomain,
  type RemoteDomainCheckpoint,
  type RemoteDomainSnapshot,
  type RemoteNetwork,
  type RemoteStoragePool,
  type RemoteStorageVol,
  readCheckpoint,
  readDomain,
  readNetwork,
  readSnapshot,
  readStoragePool,
  readStorageVol,
  readTypedParams,
  type TypedParam,
  writeCheckpoint,
  writeDomain,
  writeNetwork,
  writeSnapshot,
  writeStoragePool,
  writeStorageVol,
  writeTypedParams,
  writeUuid,
  XDR_MIN_BYTES,
} from './types';
import type { XdrReader, XdrWriter } from './xdr';

/** Describes one RPC procedure: how to encode its arguments and decode its reply. */
export interface RemoteProcedure<Args, Ret> {
  /** Program number (`PROGRAM.REMOTE` for all of these). */
  readonly program: number;
  /** Program version (1). */
  readonly version: number;
  /** Procedure number. */
  readonly procedure: number;
  /** libvirt's name without the `REMOTE_PROC_` prefix, e.g. `DOMAIN_GET_XML_DESC`. */
  readonly name: string;
  /** `read` when a successful reply is followed by a server-to-client data stream. */
  readonly stream?: 'read' | 'write';
  /** Writes the arguments (nothing for procedures without arguments). */
  encodeArgs(w: XdrWriter, args: Args): void;
  /** Reads the reply payload; the caller checks that it was consumed completely. */
  decodeRet(r: XdrReader): Ret;
}

/** Describes an asynchronous MESSAGE the server sends (an event). */
export interface RemoteMessage<Msg> {
  readonly program: number;
  readonly procedure: number;
  readonly name: string;
  decodeMsg(r: XdrReader): Msg;
}

/** Argument type of a procedure descriptor. */
export type ProcedureArgs<P> = P extends RemoteProcedure<infer A, unknown> ? A : never;
/** Reply type of a procedure descriptor. */
export type ProcedureRet<P> = P extends RemoteProcedure<unknown, infer R> ? R : never;

function define<A, R>(
  name: RemoteProcName,
  encodeArgs: (w: XdrWriter, args: A) => void,
  decodeRet: (r: XdrReader) => R,
  stream?: 'read' | 'write',
): RemoteProcedure<A, R> {
  return Object.freeze({
    program: PROGRAM.REMOTE,
    version: PROTOCOL_VERSION,
    procedure: REMOTE_PROC[name],
    name,
    ...(stream ? { stream } : {}),
    encodeArgs,
    decodeRet,
  });
}

const noArgs = (_w: XdrWriter, _args: undefined): void => {};
const noRet = (_r: XdrReader): void => {};
const retString = (r: XdrReader): string => r.string();
const retUhyper = (r: XdrReader): bigint => r.uhyper();
const retDomain = (r: XdrReader): RemoteDomain => readDomain(r);
const retBool = (r: XdrReader): boolean => r.int() !== 0;

/** Arguments `{ dom }`. */
export interface DomainArgs {
  dom: RemoteDomain;
}
/** Arguments `{ dom, flags }`. */
export interface DomainFlagsArgs {
  dom: RemoteDomain;
  flags: number;
}
/** Arguments of the CONNECT_LIST_ALL_* procedures. */
export interface ListAllArgs {
  /** Non-zero to receive the objects (0 asks only for the count). */
  needResults: number;
  flags: number;
}
/** Arguments of the two-step "get parameters" procedures. */
export interface GetParamsArgs {
  dom: RemoteDomain;
  /** 0 first, to learn the count; then the count returned. */
  nparams: number;
  flags: number;
}
/** Reply of the two-step "get parameters" procedures. */
export interface GetParamsRet {
  params: TypedParam[];
  /** Number of parameters the driver has. */
  nparams: number;
}
/** Arguments of the "set parameters" procedures. */
export interface SetParamsArgs {
  dom: RemoteDomain;
  params: readonly TypedParam[];
  flags: number;
}

/** NODE_GET_INFO reply. */
export interface NodeInfo {
  /** CPU model, e.g. `x86_64`. */
  model: string;
  /** Memory in KiB. */
  memory: bigint;
  cpus: number;
  /** MHz. */
  mhz: number;
  nodes: number;
  sockets: number;
  cores: number;
  threads: number;
}

/** NODE_GET_SECURITY_MODEL reply. */
export interface NodeSecurityModel {
  /** e.g. `selinux`, `apparmor`, `dac`, `none` (empty when there is none). */
  model: string;
  /** Domain of interpretation. */
  doi: string;
}

/** DOMAIN_GET_INFO reply. */
export interface DomainInfo {
  /** `virDomainState`. */
  state: number;
  /** KiB. */
  maxMem: bigint;
  /** KiB. */
  memory: bigint;
  nrVirtCpu: number;
  /** Nanoseconds. */
  cpuTime: bigint;
}

/** A security label (DOMAIN_GET_SECURITY_LABEL[_LIST]). */
export interface DomainSecurityLabel {
  /** The label text, e.g. `system_u:system_r:svirt_t:s0:c1,c2` (empty when there is none). */
  label: string;
  /** 1 when enforcing. */
  enforcing: number;
}

/** DOMAIN_GET_JOB_INFO reply. */
export interface DomainJobInfo {
  /** `virDomainJobType`: 0 none, 1 bounded, 2 unbounded, 3 completed, 4 failed, 5 cancelled. */
  type: number;
  timeElapsed: bigint;
  timeRemaining: bigint;
  dataTotal: bigint;
  dataProcessed: bigint;
  dataRemaining: bigint;
  memTotal: bigint;
  memProcessed: bigint;
  memRemaining: bigint;
  fileTotal: bigint;
  fileProcessed: bigint;
  fileRemaining: bigint;
}

/** STORAGE_VOL_GET_INFO reply. */
export interface StorageVolInfo {
  /** `virStorageVolType`: 0 file, 1 block, 2 dir, 3 network, 4 netdir, 5 ploop. */
  type: number;
  /** Bytes. */
  capacity: bigint;
  /** Bytes. */
  allocation: bigint;
}

/** One record of CONNECT_GET_ALL_DOMAIN_STATS. */
export interface DomainStatsRecord {
  dom: RemoteDomain;
  params: TypedParam[];
}

/** A domain lifecycle event (DOMAIN_EVENT_CALLBACK_LIFECYCLE). */
export interface DomainLifecycleEvent {
  /** The registration the event belongs to. */
  callbackId: number;
  dom: RemoteDomain;
  /** `virDomainEventType` (DOMAIN_EVENT.*). */
  event: number;
  /** The event's detail enum (e.g. STARTED_BOOTED 0, STOPPED_DESTROYED 1). */
  detail: number;
}

function readSecurityLabel(r: XdrReader): DomainSecurityLabel {
  return { label: r.charArray(LIMITS.SECURITY_LABEL_MAX), enforcing: r.int() };
}

function writeListAll(w: XdrWriter, a: ListAllArgs): void {
  w.int(a.needResults, 'needResults');
  w.uint(a.flags, 'flags');
}

function writeDomainFlags(w: XdrWriter, a: DomainFlagsArgs): void {
  writeDomain(w, a.dom);
  w.uint(a.flags, 'flags');
}

function writeDomainOnly(w: XdrWriter, a: DomainArgs): void {
  writeDomain(w, a.dom);
}

function getParams(max: number) {
  return {
    encode(w: XdrWriter, a: GetParamsArgs): void {
      writeDomain(w, a.dom);
      w.int(a.nparams, 'nparams');
      w.uint(a.flags, 'flags');
    },
    decode(r: XdrReader): GetParamsRet {
      return { params: readTypedParams(r, max), nparams: r.int() };
    },
    set(w: XdrWriter, a: SetParamsArgs): void {
      writeDomain(w, a.dom);
      writeTypedParams(w, a.params, max);
      w.uint(a.flags, 'flags');
    },
  };
}

const schedulerParams = getParams(LIMITS.DOMAIN_SCHEDULER_PARAMETERS_MAX);
const memoryParams = getParams(LIMITS.DOMAIN_MEMORY_PARAMETERS_MAX);
const blkioParams = getParams(LIMITS.DOMAIN_BLKIO_PARAMETERS_MAX);

/** The typed procedure descriptors, keyed by libvirt name. */
export const remoteProcedures = {
  // ---- Connection and host ----
  CONNECT_OPEN: define(
    'CONNECT_OPEN',
    (w, a: { name: string | null; flags: number }) => {
      w.optString(a.name, LIMITS.STRING_MAX, 'URI');
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),
  CONNECT_CLOSE: define('CONNECT_CLOSE', noArgs, noRet),
  CONNECT_GET_TYPE: define('CONNECT_GET_TYPE', noArgs, retString),
  CONNECT_GET_VERSION: define('CONNECT_GET_VERSION', noArgs, retUhyper),
  CONNECT_GET_LIB_VERSION: define('CONNECT_GET_LIB_VERSION', noArgs, retUhyper),
  CONNECT_GET_CAPABILITIES: define('CONNECT_GET_CAPABILITIES', noArgs, retString),
  CONNECT_GET_HOSTNAME: define('CONNECT_GET_HOSTNAME', noArgs, retString),
  CONNECT_GET_URI: define('CONNECT_GET_URI', noArgs, retString),
  CONNECT_SUPPORTS_FEATURE: define(
    'CONNECT_SUPPORTS_FEATURE',
    (w, a: { feature: number }) => {
      w.int(a.feature, 'feature');
    },
    retBool,
  ),
  AUTH_LIST: define('AUTH_LIST', noArgs, (r): number[] => r.array(LIMITS.AUTH_TYPE_LIST_MAX, (x) => x.int())),
  AUTH_POLKIT: define('AUTH_POLKIT', noArgs, (r): { complete: number } => ({ complete: r.int() })),
  NODE_GET_INFO: define(
    'NODE_GET_INFO',
    noArgs,
    (r): NodeInfo => ({
      model: r.fixedCharArray(32),
      memory: r.uhyper(),
      cpus: r.int(),
      mhz: r.int(),
      nodes: r.int(),
      sockets: r.int(),
      cores: r.int(),
      threads: r.int(),
    }),
  ),
  NODE_GET_FREE_MEMORY: define('NODE_GET_FREE_MEMORY', noArgs, retUhyper),
  NODE_GET_SECURITY_MODEL: define(
    'NODE_GET_SECURITY_MODEL',
    noArgs,
    (r): NodeSecurityModel => ({
      model: r.charArray(LIMITS.SECURITY_MODEL_MAX),
      doi: r.charArray(LIMITS.SECURITY_DOI_MAX),
    }),
  ),
  CONNECT_REGISTER_CLOSE_CALLBACK: define('CONNECT_REGISTER_CLOSE_CALLBACK', noArgs, noRet),
  CONNECT_UNREGISTER_CLOSE_CALLBACK: define('CONNECT_UNREGISTER_CLOSE_CALLBACK', noArgs, noRet),

  // ---- Listing and lookup ----
  CONNECT_LIST_ALL_DOMAINS: define(
    'CONNECT_LIST_ALL_DOMAINS',
    writeListAll,
    (r): { domains: RemoteDomain[]; ret: number } => ({
      domains: r.array(LIMITS.DOMAIN_LIST_MAX, readDomain, XDR_MIN_BYTES.domain),
      ret: r.uint(),
    }),
  ),
  CONNECT_LIST_ALL_STORAGE_POOLS: define(
    'CONNECT_LIST_ALL_STORAGE_POOLS',
    writeListAll,
    (r): { pools: RemoteStoragePool[]; ret: number } => ({
      pools: r.array(LIMITS.STORAGE_POOL_LIST_MAX, readStoragePool, XDR_MIN_BYTES.pool),
      ret: r.uint(),
    }),
  ),
  CONNECT_LIST_ALL_NETWORKS: define(
    'CONNECT_LIST_ALL_NETWORKS',
    writeListAll,
    (r): { networks: RemoteNetwork[]; ret: number } => ({
      networks: r.array(LIMITS.NETWORK_LIST_MAX, readNetwork, XDR_MIN_BYTES.network),
      ret: r.uint(),
    }),
  ),
  STORAGE_POOL_LIST_ALL_VOLUMES: define(
    'STORAGE_POOL_LIST_ALL_VOLUMES',
    (w, a: { pool: RemoteStoragePool; needResults: number; flags: number }) => {
      writeStoragePool(w, a.pool);
      writeListAll(w, a);
    },
    (r): { vols: RemoteStorageVol[]; ret: number } => ({
      vols: r.array(LIMITS.STORAGE_VOL_LIST_MAX, readStorageVol, XDR_MIN_BYTES.vol),
      ret: r.uint(),
    }),
  ),
  DOMAIN_LOOKUP_BY_NAME: define(
    'DOMAIN_LOOKUP_BY_NAME',
    (w, a: { name: string }) => {
      w.string(a.name, LIMITS.STRING_MAX, 'domain name');
    },
    retDomain,
  ),
  DOMAIN_LOOKUP_BY_UUID: define(
    'DOMAIN_LOOKUP_BY_UUID',
    (w, a: { uuid: string }) => {
      writeUuid(w, a.uuid);
    },
    retDomain,
  ),
  DOMAIN_LOOKUP_BY_ID: define(
    'DOMAIN_LOOKUP_BY_ID',
    (w, a: { id: number }) => {
      w.int(a.id, 'id');
    },
    retDomain,
  ),
  NETWORK_LOOKUP_BY_NAME: define(
    'NETWORK_LOOKUP_BY_NAME',
    (w, a: { name: string }) => {
      w.string(a.name, LIMITS.STRING_MAX, 'network name');
    },
    readNetwork,
  ),
  STORAGE_POOL_LOOKUP_BY_NAME: define(
    'STORAGE_POOL_LOOKUP_BY_NAME',
    (w, a: { name: string }) => {
      w.string(a.name, LIMITS.STRING_MAX, 'pool name');
    },
    readStoragePool,
  ),
  STORAGE_VOL_LOOKUP_BY_NAME: define(
    'STORAGE_VOL_LOOKUP_BY_NAME',
    (w, a: { pool: RemoteStoragePool; name: string }) => {
      writeStoragePool(w, a.pool);
      w.string(a.name, LIMITS.STRING_MAX, 'volume name');
    },
    readStorageVol,
  ),
  STORAGE_VOL_LOOKUP_BY_PATH: define(
    'STORAGE_VOL_LOOKUP_BY_PATH',
    (w, a: { path: string }) => {
      w.string(a.path, LIMITS.STRING_MAX, 'volume path');
    },
    readStorageVol,
  ),
  STORAGE_POOL_LOOKUP_BY_VOLUME: define(
    'STORAGE_POOL_LOOKUP_BY_VOLUME',
    (w, a: { vol: RemoteStorageVol }) => {
      writeStorageVol(w, a.vol);
    },
    readStoragePool,
  ),
  STORAGE_VOL_CREATE_XML: define(
    'STORAGE_VOL_CREATE_XML',
    (w, a: { pool: RemoteStoragePool; xml: string; flags: number }) => {
      writeStoragePool(w, a.pool);
      w.string(a.xml, LIMITS.STRING_MAX, 'volume XML');
      w.uint(a.flags, 'flags');
    },
    readStorageVol,
  ),
  STORAGE_VOL_DELETE: define(
    'STORAGE_VOL_DELETE',
    (w, a: { vol: RemoteStorageVol; flags: number }) => {
      writeStorageVol(w, a.vol);
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),
  STORAGE_POOL_REFRESH: define(
    'STORAGE_POOL_REFRESH',
    (w, a: { pool: RemoteStoragePool; flags: number }) => {
      writeStoragePool(w, a.pool);
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),

  // ---- XML descriptions ----
  DOMAIN_GET_XML_DESC: define('DOMAIN_GET_XML_DESC', writeDomainFlags, retString),
  NETWORK_GET_XML_DESC: define(
    'NETWORK_GET_XML_DESC',
    (w, a: { net: RemoteNetwork; flags: number }) => {
      writeNetwork(w, a.net);
      w.uint(a.flags, 'flags');
    },
    retString,
  ),
  STORAGE_POOL_GET_XML_DESC: define(
    'STORAGE_POOL_GET_XML_DESC',
    (w, a: { pool: RemoteStoragePool; flags: number }) => {
      writeStoragePool(w, a.pool);
      w.uint(a.flags, 'flags');
    },
    retString,
  ),
  STORAGE_VOL_GET_XML_DESC: define(
    'STORAGE_VOL_GET_XML_DESC',
    (w, a: { vol: RemoteStorageVol; flags: number }) => {
      writeStorageVol(w, a.vol);
      w.uint(a.flags, 'flags');
    },
    retString,
  ),
  STORAGE_VOL_GET_INFO: define(
    'STORAGE_VOL_GET_INFO',
    (w, a: { vol: RemoteStorageVol }) => {
      writeStorageVol(w, a.vol);
    },
    (r): StorageVolInfo => ({ type: r.int(), capacity: r.uhyper(), allocation: r.uhyper() }),
  ),

  // ---- Domain state and lifecycle ----
  DOMAIN_GET_INFO: define(
    'DOMAIN_GET_INFO',
    writeDomainOnly,
    (r): DomainInfo => ({
      state: r.int(),
      maxMem: r.uhyper(),
      memory: r.uhyper(),
      nrVirtCpu: r.int(),
      cpuTime: r.uhyper(),
    }),
  ),
  DOMAIN_GET_STATE: define('DOMAIN_GET_STATE', writeDomainFlags, (r): { state: number; reason: number } => ({
    state: r.int(),
    reason: r.int(),
  })),
  DOMAIN_GET_MAX_MEMORY: define('DOMAIN_GET_MAX_MEMORY', writeDomainOnly, retUhyper),
  DOMAIN_GET_VCPUS_FLAGS: define('DOMAIN_GET_VCPUS_FLAGS', writeDomainFlags, (r): number => r.int()),
  DOMAIN_IS_ACTIVE: define('DOMAIN_IS_ACTIVE', writeDomainOnly, retBool),
  DOMAIN_IS_PERSISTENT: define('DOMAIN_IS_PERSISTENT', writeDomainOnly, retBool),
  CONNECT_GET_ALL_DOMAIN_STATS: define(
    'CONNECT_GET_ALL_DOMAIN_STATS',
    (w, a: { doms: readonly RemoteDomain[]; stats: number; flags: number }) => {
      w.array(a.doms, LIMITS.DOMAIN_LIST_MAX, writeDomain, 'domains');
      w.uint(a.stats, 'stats');
      w.uint(a.flags, 'flags');
    },
    (r): DomainStatsRecord[] =>
      r.array(
        LIMITS.DOMAIN_LIST_MAX,
        (x) => ({
          dom: readDomain(x),
          params: readTypedParams(x, LIMITS.CONNECT_GET_ALL_DOMAIN_STATS_MAX),
        }),
        XDR_MIN_BYTES.domain + 4,
      ),
  ),
  DOMAIN_SET_VCPUS_FLAGS: define(
    'DOMAIN_SET_VCPUS_FLAGS',
    (w, a: { dom: RemoteDomain; nvcpus: number; flags: number }) => {
      writeDomain(w, a.dom);
      w.uint(a.nvcpus, 'nvcpus');
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),
  DOMAIN_SET_MEMORY_FLAGS: define(
    'DOMAIN_SET_MEMORY_FLAGS',
    (w, a: { dom: RemoteDomain; memory: bigint | number; flags: number }) => {
      writeDomain(w, a.dom);
      w.uhyper(a.memory, 'memory (KiB)');
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),
  DOMAIN_CREATE: define('DOMAIN_CREATE', writeDomainOnly, noRet),
  DOMAIN_CREATE_WITH_FLAGS: define('DOMAIN_CREATE_WITH_FLAGS', writeDomainFlags, retDomain),
  DOMAIN_CREATE_XML: define(
    'DOMAIN_CREATE_XML',
    (w, a: { xml: string; flags: number }) => {
      w.string(a.xml, LIMITS.STRING_MAX, 'domain XML');
      w.uint(a.flags, 'flags');
    },
    retDomain,
  ),
  DOMAIN_DEFINE_XML: define(
    'DOMAIN_DEFINE_XML',
    (w, a: { xml: string }) => {
      w.string(a.xml, LIMITS.STRING_MAX, 'domain XML');
    },
    retDomain,
  ),
  DOMAIN_UNDEFINE: define('DOMAIN_UNDEFINE', writeDomainOnly, noRet),
  DOMAIN_UNDEFINE_FLAGS: define('DOMAIN_UNDEFINE_FLAGS', writeDomainFlags, noRet),
  DOMAIN_DESTROY: define('DOMAIN_DESTROY', writeDomainOnly, noRet),
  DOMAIN_DESTROY_FLAGS: define('DOMAIN_DESTROY_FLAGS', writeDomainFlags, noRet),
  DOMAIN_SUSPEND: define('DOMAIN_SUSPEND', writeDomainOnly, noRet),
  DOMAIN_RESUME: define('DOMAIN_RESUME', writeDomainOnly, noRet),

  // ---- Tuning ----
  DOMAIN_GET_SCHEDULER_TYPE: define(
    'DOMAIN_GET_SCHEDULER_TYPE',
    writeDomainOnly,
    (r): { type: string; nparams: number } => ({ type: r.string(), nparams: r.int() }),
  ),
  DOMAIN_GET_SCHEDULER_PARAMETERS: define(
    'DOMAIN_GET_SCHEDULER_PARAMETERS',
    (w, a: { dom: RemoteDomain; nparams: number }) => {
      writeDomain(w, a.dom);
      w.int(a.nparams, 'nparams');
    },
    (r): TypedParam[] => readTypedParams(r, LIMITS.DOMAIN_SCHEDULER_PARAMETERS_MAX),
  ),
  DOMAIN_SET_SCHEDULER_PARAMETERS: define(
    'DOMAIN_SET_SCHEDULER_PARAMETERS',
    (w, a: { dom: RemoteDomain; params: readonly TypedParam[] }) => {
      writeDomain(w, a.dom);
      writeTypedParams(w, a.params, LIMITS.DOMAIN_SCHEDULER_PARAMETERS_MAX);
    },
    noRet,
  ),
  // The reply has no count: the caller passes the one DOMAIN_GET_SCHEDULER_TYPE returned.
  DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS: define(
    'DOMAIN_GET_SCHEDULER_PARAMETERS_FLAGS',
    schedulerParams.encode,
    (r): TypedParam[] => readTypedParams(r, LIMITS.DOMAIN_SCHEDULER_PARAMETERS_MAX),
  ),
  DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS: define(
    'DOMAIN_SET_SCHEDULER_PARAMETERS_FLAGS',
    schedulerParams.set,
    noRet,
  ),
  DOMAIN_GET_MEMORY_PARAMETERS: define(
    'DOMAIN_GET_MEMORY_PARAMETERS',
    memoryParams.encode,
    memoryParams.decode,
  ),
  DOMAIN_SET_MEMORY_PARAMETERS: define('DOMAIN_SET_MEMORY_PARAMETERS', memoryParams.set, noRet),
  DOMAIN_GET_BLKIO_PARAMETERS: define('DOMAIN_GET_BLKIO_PARAMETERS', blkioParams.encode, blkioParams.decode),
  DOMAIN_SET_BLKIO_PARAMETERS: define('DOMAIN_SET_BLKIO_PARAMETERS', blkioParams.set, noRet),
  DOMAIN_GET_BLOCK_IO_TUNE: define(
    'DOMAIN_GET_BLOCK_IO_TUNE',
    (w, a: { dom: RemoteDomain; disk: string | null; nparams: number; flags: number }) => {
      writeDomain(w, a.dom);
      w.optString(a.disk, LIMITS.STRING_MAX, 'disk');
      w.int(a.nparams, 'nparams');
      w.uint(a.flags, 'flags');
    },
    (r): GetParamsRet => ({
      params: readTypedParams(r, LIMITS.DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX),
      nparams: r.int(),
    }),
  ),
  DOMAIN_SET_BLOCK_IO_TUNE: define(
    'DOMAIN_SET_BLOCK_IO_TUNE',
    (w, a: { dom: RemoteDomain; disk: string; params: readonly TypedParam[]; flags: number }) => {
      writeDomain(w, a.dom);
      w.string(a.disk, LIMITS.STRING_MAX, 'disk');
      writeTypedParams(w, a.params, LIMITS.DOMAIN_BLOCK_IO_TUNE_PARAMETERS_MAX);
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),
  DOMAIN_GET_INTERFACE_PARAMETERS: define(
    'DOMAIN_GET_INTERFACE_PARAMETERS',
    (w, a: { dom: RemoteDomain; device: string; nparams: number; flags: number }) => {
      writeDomain(w, a.dom);
      w.string(a.device, LIMITS.STRING_MAX, 'device');
      w.int(a.nparams, 'nparams');
      w.uint(a.flags, 'flags');
    },
    (r): GetParamsRet => ({
      params: readTypedParams(r, LIMITS.DOMAIN_INTERFACE_PARAMETERS_MAX),
      nparams: r.int(),
    }),
  ),
  DOMAIN_SET_INTERFACE_PARAMETERS: define(
    'DOMAIN_SET_INTERFACE_PARAMETERS',
    (w, a: { dom: RemoteDomain; device: string; params: readonly TypedParam[]; flags: number }) => {
      writeDomain(w, a.dom);
      w.string(a.device, LIMITS.STRING_MAX, 'device');
      writeTypedParams(w, a.params, LIMITS.DOMAIN_INTERFACE_PARAMETERS_MAX);
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),

  // ---- Security labels ----
  DOMAIN_GET_SECURITY_LABEL: define('DOMAIN_GET_SECURITY_LABEL', writeDomainOnly, readSecurityLabel),
  DOMAIN_GET_SECURITY_LABEL_LIST: define(
    'DOMAIN_GET_SECURITY_LABEL_LIST',
    writeDomainOnly,
    (r): { labels: DomainSecurityLabel[]; ret: number } => ({
      labels: r.array(LIMITS.SECURITY_LABEL_LIST_MAX, readSecurityLabel, 8),
      ret: r.int(),
    }),
  ),

  // ---- Snapshots ----
  DOMAIN_SNAPSHOT_CREATE_XML: define(
    'DOMAIN_SNAPSHOT_CREATE_XML',
    (w, a: { dom: RemoteDomain; xml: string; flags: number }) => {
      writeDomain(w, a.dom);
      w.string(a.xml, LIMITS.STRING_MAX, 'snapshot XML');
      w.uint(a.flags, 'flags');
    },
    readSnapshot,
  ),
  DOMAIN_SNAPSHOT_GET_XML_DESC: define(
    'DOMAIN_SNAPSHOT_GET_XML_DESC',
    (w, a: { snap: RemoteDomainSnapshot; flags: number }) => {
      writeSnapshot(w, a.snap);
      w.uint(a.flags, 'flags');
    },
    retString,
  ),
  DOMAIN_SNAPSHOT_LOOKUP_BY_NAME: define(
    'DOMAIN_SNAPSHOT_LOOKUP_BY_NAME',
    (w, a: { dom: RemoteDomain; name: string; flags: number }) => {
      writeDomain(w, a.dom);
      w.string(a.name, LIMITS.STRING_MAX, 'snapshot name');
      w.uint(a.flags, 'flags');
    },
    readSnapshot,
  ),
  DOMAIN_SNAPSHOT_CURRENT: define('DOMAIN_SNAPSHOT_CURRENT', writeDomainFlags, readSnapshot),
  DOMAIN_REVERT_TO_SNAPSHOT: define(
    'DOMAIN_REVERT_TO_SNAPSHOT',
    (w, a: { snap: RemoteDomainSnapshot; flags: number }) => {
      writeSnapshot(w, a.snap);
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),
  DOMAIN_SNAPSHOT_DELETE: define(
    'DOMAIN_SNAPSHOT_DELETE',
    (w, a: { snap: RemoteDomainSnapshot; flags: number }) => {
      writeSnapshot(w, a.snap);
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),
  DOMAIN_LIST_ALL_SNAPSHOTS: define(
    'DOMAIN_LIST_ALL_SNAPSHOTS',
    (w, a: { dom: RemoteDomain; needResults: number; flags: number }) => {
      writeDomain(w, a.dom);
      writeListAll(w, a);
    },
    (r): { snapshots: RemoteDomainSnapshot[]; ret: number } => ({
      snapshots: r.array(LIMITS.DOMAIN_SNAPSHOT_LIST_MAX, readSnapshot, XDR_MIN_BYTES.snapshot),
      ret: r.int(),
    }),
  ),

  // ---- Checkpoints ----
  DOMAIN_CHECKPOINT_CREATE_XML: define(
    'DOMAIN_CHECKPOINT_CREATE_XML',
    (w, a: { dom: RemoteDomain; xml: string; flags: number }) => {
      writeDomain(w, a.dom);
      w.string(a.xml, LIMITS.STRING_MAX, 'checkpoint XML');
      w.uint(a.flags, 'flags');
    },
    readCheckpoint,
  ),
  DOMAIN_CHECKPOINT_GET_XML_DESC: define(
    'DOMAIN_CHECKPOINT_GET_XML_DESC',
    (w, a: { checkpoint: RemoteDomainCheckpoint; flags: number }) => {
      writeCheckpoint(w, a.checkpoint);
      w.uint(a.flags, 'flags');
    },
    retString,
  ),
  DOMAIN_LIST_ALL_CHECKPOINTS: define(
    'DOMAIN_LIST_ALL_CHECKPOINTS',
    (w, a: { dom: RemoteDomain; needResults: number; flags: number }) => {
      writeDomain(w, a.dom);
      writeListAll(w, a);
    },
    (r): { checkpoints: RemoteDomainCheckpoint[]; ret: number } => ({
      checkpoints: r.array(LIMITS.DOMAIN_CHECKPOINT_LIST_MAX, readCheckpoint, XDR_MIN_BYTES.snapshot),
      ret: r.int(),
    }),
  ),
  DOMAIN_CHECKPOINT_LOOKUP_BY_NAME: define(
    'DOMAIN_CHECKPOINT_LOOKUP_BY_NAME',
    (w, a: { dom: RemoteDomain; name: string; flags: number }) => {
      writeDomain(w, a.dom);
      w.string(a.name, LIMITS.STRING_MAX, 'checkpoint name');
      w.uint(a.flags, 'flags');
    },
    readCheckpoint,
  ),
  DOMAIN_CHECKPOINT_DELETE: define(
    'DOMAIN_CHECKPOINT_DELETE',
    (w, a: { checkpoint: RemoteDomainCheckpoint; flags: number }) => {
      writeCheckpoint(w, a.checkpoint);
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),

  // ---- Jobs and backups ----
  DOMAIN_GET_JOB_INFO: define(
    'DOMAIN_GET_JOB_INFO',
    writeDomainOnly,
    (r): DomainJobInfo => ({
      type: r.int(),
      timeElapsed: r.uhyper(),
      timeRemaining: r.uhyper(),
      dataTotal: r.uhyper(),
      dataProcessed: r.uhyper(),
      dataRemaining: r.uhyper(),
      memTotal: r.uhyper(),
      memProcessed: r.uhyper(),
      memRemaining: r.uhyper(),
      fileTotal: r.uhyper(),
      fileProcessed: r.uhyper(),
      fileRemaining: r.uhyper(),
    }),
  ),
  DOMAIN_GET_JOB_STATS: define(
    'DOMAIN_GET_JOB_STATS',
    writeDomainFlags,
    (r): { type: number; params: TypedParam[] } => ({
      type: r.int(),
      params: readTypedParams(r, LIMITS.DOMAIN_JOB_STATS_MAX),
    }),
  ),
  DOMAIN_ABORT_JOB: define('DOMAIN_ABORT_JOB', writeDomainOnly, noRet),
  DOMAIN_ABORT_JOB_FLAGS: define('DOMAIN_ABORT_JOB_FLAGS', writeDomainFlags, noRet),
  DOMAIN_BACKUP_BEGIN: define(
    'DOMAIN_BACKUP_BEGIN',
    (w, a: { dom: RemoteDomain; backupXml: string; checkpointXml: string | null; flags: number }) => {
      writeDomain(w, a.dom);
      w.string(a.backupXml, LIMITS.STRING_MAX, 'backup XML');
      w.optString(a.checkpointXml, LIMITS.STRING_MAX, 'checkpoint XML');
      w.uint(a.flags, 'flags');
    },
    noRet,
  ),
  DOMAIN_BACKUP_GET_XML_DESC: define('DOMAIN_BACKUP_GET_XML_DESC', writeDomainFlags, retString),

  // ---- Streams ----
  STORAGE_VOL_DOWNLOAD: define(
    'STORAGE_VOL_DOWNLOAD',
    (w, a: { vol: RemoteStorageVol; offset: bigint | number; length: bigint | number; flags: number }) => {
      writeStorageVol(w, a.vol);
      w.uhyper(a.offset, 'offset');
      w.uhyper(a.length, 'length');
      w.uint(a.flags, 'flags');
    },
    noRet,
    'read',
  ),

  STORAGE_VOL_UPLOAD: define(
    'STORAGE_VOL_UPLOAD',
    (w, a: { vol: RemoteStorageVol; offset: bigint | number; length: bigint | number; flags: number }) => {
      writeStorageVol(w, a.vol);
      w.uhyper(a.offset, 'offset');
      w.uhyper(a.length, 'length');
      w.uint(a.flags, 'flags');
    },
    noRet,
    'write',
  ),

  // ---- Events ----
  CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY: define(
    'CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY',
    (w, a: { eventId: number; dom: RemoteDomain | null }) => {
      w.int(a.eventId, 'eventID');
      w.optional(a.dom, writeDomain);
    },
    (r): number => r.int(),
  ),
  CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY: define(
    'CONNECT_DOMAIN_EVENT_CALLBACK_DEREGISTER_ANY',
    (w, a: { callbackId: number }) => {
      w.int(a.callbackId, 'callbackID');
    },
    noRet,
  ),
} as const;

/** The MESSAGE procedures hvkit decodes. */
export const remoteMessages = {
  DOMAIN_EVENT_CALLBACK_LIFECYCLE: Object.freeze({
    program: PROGRAM.REMOTE,
    procedure: REMOTE_PROC.DOMAIN_EVENT_CALLBACK_LIFECYCLE,
    name: 'DOMAIN_EVENT_CALLBACK_LIFECYCLE',
    decodeMsg: (r: XdrReader): DomainLifecycleEvent => ({
      callbackId: r.int(),
      dom: readDomain(r),
      event: r.int(),
      detail: r.int(),
    }),
  }) satisfies RemoteMessage<DomainLifecycleEvent>,
  DOMAIN_EVENT_LIFECYCLE: Object.freeze({
    program: PROGRAM.REMOTE,
    procedure: REMOTE_PROC.DOMAIN_EVENT_LIFECYCLE,
    name: 'DOMAIN_EVENT_LIFECYCLE',
    decodeMsg: (r: XdrReader): Omit<DomainLifecycleEvent, 'callbackId'> => ({
      dom: readDomain(r),
      event: r.int(),
      detail: r.int(),
    }),
  }) satisfies RemoteMessage<Omit<DomainLifecycleEvent, 'callbackId'>>,
} as const;

/** A descriptor from {@link remoteProcedures}, whatever its types. */
export type AnyRemoteProcedure = (typeof remoteProcedures)[keyof typeof remoteProcedures];

/** Looks a procedure descriptor up by number (for decoding recorded transcripts). */
export function procedureByNumber(procedure: number): AnyRemoteProcedure | undefined {
  return PROCS_BY_NUMBER.get(procedure);
}

const PROCS_BY_NUMBER: ReadonlyMap<number, AnyRemoteProcedure> = new Map(
  Object.values(remoteProcedures).map((p) => [p.procedure, p as AnyRemoteProcedure]),
);

/** Decodes the `{ hyper length; unsigned flags }` payload of a STREAM_HOLE packet. */
export function readStreamHole(r: XdrReader): { length: bigint; flags: number } {
  return { length: r.hyper(), flags: r.uint() };
}
