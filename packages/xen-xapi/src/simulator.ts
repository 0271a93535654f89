/**
 * `@hvkit/xen-xapi/simulator`: an XAPI server you can run offline, as govmomi's vcsim is for vSphere. It
 * speaks XML-RPC (`/`, and like XAPI every other path: `/RPC2`, Xen Orchestra's `/xmlrpc`) and JSON-RPC
 * v1/v2 (`/jsonrpc`) on 127.0.0.1, with sessions, the generic
 * class messages, the mutators limits and labels use (with XAPI's checks), `Async.*` tasks, and events
 * (`event.inject`, and `event.from` blocking up to its timeout, with `EVENTS_LOST` for a token that fell out
 * of its log; every mutator makes `add`/`mod`/`del` events), over a database loaded from XAPI's own `/pool/xmldbdump` format, so a dump taken from a real pool can be
 * served. {@link XAPI_SEED_DB_PATH} is a small seed database in that format.
 *
 * ```ts
 * const sim = await startXapiSimulator({ db: XAPI_SEED_DB_PATH });
 * const hv = await connect({ url: sim.url, username: sim.username, password: sim.password, ...sim.connectOptions });
 * console.log(await hv.inventory.listGuests());
 * await hv.close();
 * await sim.close();
 * ```
 * @packageDocumentation
 */

import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { checkOptionKeys, type OptionKeysOf } from '@hvkit/core';
import { SimApi } from './sim/api';
import { loadXmlDbDump, type SimDb } from './sim/db';
import { createSimServer } from './sim/server';
import type { SimTransferFaults } from './sim/transfers';

export { XapiFailure } from './sim/api';
export { parseXmlDbDump, type SimDb, type SimRow } from './sim/db';
export type { SimTransferFaults } from './sim/transfers';

/** Path of the seed database shipped with the package (`simulator/seed-db.xml`, `/pool/xmldbdump` format). */
export const XAPI_SEED_DB_PATH: string = fileURLToPath(new URL('../simulator/seed-db.xml', import.meta.url));

/** The simulator's default user name. */
export const XAPI_SIMULATOR_DEFAULT_USERNAME = 'root';
/** The simulator's default password (a test value; it guards nothing). */
export const XAPI_SIMULATOR_DEFAULT_PASSWORD = 'hvkit-xapi-sim-password';

/** Options of {@link startXapiSimulator}. */
export interface XapiSimulatorOptions {
  /** The database: the path of a `/pool/xmldbdump` file, or its text (default: {@link XAPI_SEED_DB_PATH}). */
  db?: string;
  /** TCP port (default 0: any free port). */
  port?: number;
  /** Address to listen on (default `127.0.0.1`; any loopback address, e.g. `127.0.0.2` for a second host). */
  host?: string;
  /** The one account (default {@link XAPI_SIMULATOR_DEFAULT_USERNAME}). */
  username?: string;
  /** Its password (default {@link XAPI_SIMULATOR_DEFAULT_PASSWORD}). */
  password?: string;
  /** Act as a pool member that is not the master: every login is answered `HOST_IS_SLAVE [slaveOf]`. */
  slaveOf?: string;
  /** How long `Async.*` tasks stay pending before they run, in ms (default 0: done when the call returns). */
  taskDelayMs?: number;
  /** Serve JSON-RPC on `/jsonrpc` (default true); false answers it with XML-RPC as hosts before XenServer 7.0. */
  jsonRpc?: boolean;
  /**
   * Events `event.from` keeps (default 1000): a token older than the oldest kept is answered `EVENTS_LOST`,
   * as XAPI does when a client falls too far behind.
   */
  eventLogSize?: number;
  /**
   * Start hung: connections are accepted but no call is answered until `hang(false)`, as with a stopped
   * toolstack (for tests of hang detection and bounded close).
   */
  hung?: boolean;
  /**
   * The clock of the times the simulator records (snapshot times), e.g. a stepping clock so a recording
   * repeats byte for byte (default: the wall clock).
   */
  clock?: () => Date;
}

const OPTION_KEYS = {
  db: true,
  port: true,
  host: true,
  username: true,
  password: true,
  slaveOf: true,
  taskDelayMs: true,
  jsonRpc: true,
  eventLogSize: true,
  hung: true,
  clock: true,
} as const satisfies OptionKeysOf<XapiSimulatorOptions>;

/** A running simulator. */
export interface XapiSimulator {
  /** `http://127.0.0.1:<port>`. */
  readonly url: string;
  /** What `connect` needs besides url and credentials to reach it: the named plain-http opt-out. */
  readonly connectOptions: { readonly insecureHttp: true };
  readonly username: string;
  readonly password: string;
  /** The live database (tests may read or change it). */
  readonly db: SimDb;
  /** Ends every session, as a toolstack restart does (the next call gets `SESSION_INVALID`). */
  invalidateSessions(): void;
  /** Open sessions. */
  readonly sessionCount: number;
  /**
   * Hangs (true) or resumes (false) the host: while hung, calls (`event.from` in flight included) are
   * accepted but answered only after it resumes, as a toolstack stopped with SIGSTOP would.
   */
  hang(hung: boolean): void;
  /**
   * Test-only faults of the HTTP transfer endpoints: set `dropExportAfterBytes` to cut the next export's
   * connection after that many bytes, `failNextTransfer` to fail the next transfer with an XAPI error code.
   */
  readonly faults: SimTransferFaults;
  /**
   * Writes bytes into a VDI (by ref or uuid) at an offset, as a guest would: later exports (and incremental
   * exports against an earlier snapshot) see the change.
   */
  writeDisk(vdi: string, offset: number, data: Uint8Array): void;
  close(): Promise<void>;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Starts an XAPI simulator on loopback.
 *
 * @throws TypeError for unknown option keys or options of the wrong type; HvkitError `NOT_FOUND` for a
 *   database file that cannot be read, `PROTOCOL` for one not in the `/pool/xmldbdump` format.
 */
export async function startXapiSimulator(options: XapiSimulatorOptions = {}): Promise<XapiSimulator> {
  checkOptionKeys(options, OPTION_KEYS, 'startXapiSimulator');
  if (
    options.eventLogSize !== undefined &&
    (!Number.isSafeInteger(options.eventLogSize) || options.eventLogSize < 1)
  )
    throw new TypeError('startXapiSimulator: eventLogSize must be a positive integer.');
  if (options.hung !== undefined && typeof options.hung !== 'boolean')
    throw new TypeError('startXapiSimulator: hung must be a boolean.');
  const host = options.host ?? '127.0.0.1';
  if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host) && host !== '::1')
    throw new TypeError('startXapiSimulator: host must be a loopback address.');
  const db = await loadXmlDbDump(options.db ?? XAPI_SEED_DB_PATH);
  const username = options.username ?? XAPI_SIMULATOR_DEFAULT_USERNAME;
  const password = options.password ?? XAPI_SIMULATOR_DEFAULT_PASSWORD;
  const api = new SimApi(db, {
    username,
    password,
    slaveOf: options.slaveOf,
    taskDelayMs: options.taskDelayMs ?? 0,
    eventLogSize: options.eventLogSize,
    hung: options.hung,
    clock: options.clock,
  });
  const faults: SimTransferFaults = {};
  const server = createSimServer(api, { jsonRpc: options.jsonRpc !== false, faults });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  const close = async () => {
    api.close();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    connectOptions: Object.freeze({ insecureHttp: true as const }),
    username,
    password,
    db,
    invalidateSessions: () => api.invalidateSessions(),
    hang: (hung: boolean) => api.hang(hung),
    get sessionCount() {
      return api.sessionCount;
    },
    faults,
    writeDisk(vdi, offset, data) {
      const table = db.table('VDI');
      const ref = table.has(vdi) ? vdi : [...table].find(([, row]) => row.uuid === vdi)?.[0];
      const row = ref === undefined ? undefined : table.get(ref);
      if (ref === undefined || !row) throw new RangeError(`writeDisk: no VDI ${vdi}`);
      api.disks.write(ref, String(row.uuid), Number(row.virtual_size), offset, data);
    },
    close,
    [Symbol.asyncDispose]: close,
  };
}
