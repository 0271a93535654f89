/**
 * Hostile-server fuzz test of the vSphere transports: a fake vCenter on loopback (https, a certificate made
 * for this run) gets the adapter through `connect()`, then answers the SOAP (`/sdk`), vAPI (`/rest`) or
 * datastore (`/folder`) requests of one call with a behaviour drawn from a seeded generator: an endless
 * body, an oversized body (80 MiB, with and without Content-Length), a redirect to another origin (https)
 * or to plain http, a body trickled one byte per 100 ms, headers then silence, a connection reset in the
 * middle of the body, or no response at all.
 *
 * Every call goes through the adapter's public API (connect, inventory, labels, backups) or the bare
 * `VimSoapClient` (a SOAP call, the version list) with small deadlines, and must end within its deadline (plus a margin) with a typed HvkitError of the set expected
 * for that behaviour. The two servers redirects point at must receive nothing at all (so no password,
 * cookie or session id ever leaves the session's origin); no error may contain the password; a backup must
 * hand the sink no more than the disk's bound and leave no file behind; the process's memory must stay
 * under a stated bound.
 */

import { existsSync, readdirSync } from 'node:fs';
import type { IncomingHttpHeaders, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { join } from 'node:path';
import { type BackupSink, createDirectorySink, HvkitError } from '@hvkit/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type MemoryWatch,
  makeTestCert,
  prng,
  type TestCert,
  testTempDir,
  watchMemory,
} from '../../core/src/__test-utils__';
import {
  bootstrapReply,
  type SoapReply,
  type SoapRequest,
  type SoapServer,
  sample,
  soapEnvelope,
  startSoapServer,
} from '../test/soap-server';
import { connect, type VmwareVsphereAdapter } from './connect';
import { VimSoapClient } from './protocol/soap/client';

const SEED = 0x5eed0009;
/** Every (target, behaviour) pair once, in a seeded order, then this many more drawn at random. */
const EXTRA_ITERATIONS = 12;
/** Deadline of connect() and of each inventory or labels call (and of each bare SOAP client request). */
const CALL_TIMEOUT_MS = 400;
/** Deadline of the friendly connect() before an inventory, labels or backup call. */
const SETUP_TIMEOUT_MS = 10_000;
/** `backupIdleTimeoutMs`: no response or no data for this long is a (resumable) TIMEOUT. */
const IDLE_TIMEOUT_MS = 400;
/** Deadline of one backup call (its downloads retry and resume within it). */
const BACKUP_TIMEOUT_MS = 2500;
/** Allowed lateness past a deadline (2 cores, shared with other tests). */
const MARGIN_MS = 1000;
/** close() of an adapter after a hostile call (the server answers its logouts normally). */
const CLOSE_BOUND_MS = 2000;
/**
 * Bounds on the growth of the whole process (client and fake servers) over the run. Measured on the 2-core
 * machine: heap +19-20 MiB, rss +144-167 MiB at the peak (the SOAP bodies read up to their bound or deadline,
 * the 80 MiB ones the servers write, TLS buffers); set with about 2-4x headroom.
 */
const HEAP_GROWTH_BOUND = 96 * 1024 * 1024;
const RSS_GROWTH_BOUND = 384 * 1024 * 1024;

const MiB = 1024 * 1024;
/** The bound of the bare SOAP client (the adapter's is the default, 64 MiB). */
const SOAP_MAX_RESPONSE_BYTES = 8 * MiB;
const SERVICE_INSTANCE = { type: 'ServiceInstance', value: 'ServiceInstance' };
const OVERSIZED_BYTES = 80 * MiB;
const PASSWORD = 'Hostile-Fuzz-Secret-9';
const VAPI_SESSION = 'vapi-session-fuzz-51f0';
const VM = 'vm-42';
/** The backed-up disk: 1 MiB, so the adapter bounds each of its files at 2 MiB (capacity + 1 MiB). */
const DISK_CAPACITY = MiB;
const DISK_FILE_BOUND = DISK_CAPACITY + MiB;

type Target = 'soap-client' | 'connect' | 'inventory' | 'labels' | 'backup';
const TARGETS: Target[] = ['soap-client', 'connect', 'inventory', 'labels', 'backup'];

type Behaviour =
  | 'endless'
  | 'oversized-declared'
  | 'oversized-undeclared'
  | 'redirect-foreign'
  | 'redirect-to-http'
  | 'trickle'
  | 'headers-then-silence'
  | 'reset-mid-body'
  | 'no-response';
const BEHAVIOURS: Behaviour[] = [
  'endless',
  'oversized-declared',
  'oversized-undeclared',
  'redirect-foreign',
  'redirect-to-http',
  'trickle',
  'headers-then-silence',
  'reset-mid-body',
  'no-response',
];

/**
 * What each behaviour must end with. A body that passes a size bound is PROTOCOL, unless the deadline
 * comes first (64 MiB of SOAP over TLS in 400 ms is not a given on a loaded machine). A dropped download
 * is resumed with `Range`; the hostile server then answers 200 instead of 206, which is PROTOCOL.
 */
const EXPECTED: Record<Behaviour, readonly string[]> = {
  endless: ['PROTOCOL', 'TIMEOUT'],
  'oversized-declared': ['PROTOCOL'],
  'oversized-undeclared': ['PROTOCOL', 'TIMEOUT'],
  'redirect-foreign': ['PROTOCOL'],
  'redirect-to-http': ['PROTOCOL'],
  trickle: ['TIMEOUT'],
  'headers-then-silence': ['TIMEOUT'],
  'reset-mid-body': ['CONNECTION_LOST', 'PROTOCOL'],
  'no-response': ['TIMEOUT'],
};
/** Where a reset must be CONNECTION_LOST: only a resumed download can turn it into PROTOCOL. */
const RESET_WITHOUT_RESUME: readonly string[] = ['CONNECTION_LOST'];

type Kind = 'soap' | 'vapi' | 'folder';

function kindOf(request: SoapRequest): Kind {
  if (request.path.startsWith('/rest/')) return 'vapi';
  if (request.path.startsWith('/folder/')) return 'folder';
  return 'soap';
}

const CONTENT_TYPE: Record<Kind, string> = {
  soap: 'text/xml; charset=utf-8',
  vapi: 'application/json',
  folder: 'application/octet-stream',
};

/** A plausible start of a body, then a filler repeated for as long as the behaviour wants. */
const BODY: Record<Kind, { start: Buffer; filler: Buffer }> = {
  soap: {
    start: Buffer.from(
      soapEnvelope('<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>').replace(
        '</soapenv:Body></soapenv:Envelope>',
        '',
      ),
    ),
    filler: Buffer.from('<objects><obj type="VirtualMachine">vm-1</obj></objects>'.repeat(1024)),
  },
  vapi: {
    start: Buffer.from('{"value":['),
    filler: Buffer.from('"urn:vmomi:InventoryServiceTag:0:GLOBAL",'.repeat(1024)),
  },
  folder: { start: Buffer.alloc(0), filler: Buffer.alloc(64 * 1024, 0x5a) },
};

/** Writes the body start and then fillers until `total` bytes (endless by default), with backpressure. */
function pump(res: ServerResponse, kind: Kind, total = Number.POSITIVE_INFINITY): void {
  const { start, filler } = BODY[kind];
  let sent = 0;
  const step = () => {
    while (!res.destroyed && sent < total) {
      const piece =
        sent === 0 && start.length > 0 ? start : filler.subarray(0, Math.min(filler.length, total - sent));
      sent += piece.length;
      if (!res.write(piece)) {
        res.once('drain', step);
        return;
      }
    }
    if (!res.destroyed) res.end();
  };
  step();
}

/** Writes `bytes` one byte per 100 ms until done or the client goes away. */
function trickle(res: ServerResponse, bytes: Buffer): void {
  let i = 0;
  const timer = setInterval(() => {
    if (res.destroyed || i >= bytes.length) {
      clearInterval(timer);
      return;
    }
    res.write(bytes.subarray(i, i + 1));
    i++;
  }, 100);
  res.on('close', () => clearInterval(timer));
}

/** Drops the connection: a TCP reset where the socket can send one, else a plain destroy. */
function reset(socket: Socket | null): void {
  if (!socket) return;
  const raw = socket as Socket & { resetAndDestroy?: () => void };
  try {
    if (typeof raw.resetAndDestroy === 'function' && (raw as { _handle?: unknown })._handle) {
      raw.resetAndDestroy();
      return;
    }
  } catch {
    // a TLS socket has no TCP handle of its own
  }
  socket.destroy();
}

interface Origins {
  foreignTls: string;
  foreignHttp: string;
}

/** Answers one request the way `behaviour` says. */
function act(behaviour: Behaviour, request: SoapRequest, res: ServerResponse, origins: Origins): void {
  const kind = kindOf(request);
  const head = request.httpMethod === 'HEAD';
  const type = { 'content-type': CONTENT_TYPE[kind] };
  switch (behaviour) {
    case 'endless':
      res.writeHead(200, type);
      if (head) res.end();
      else pump(res, kind);
      return;
    case 'oversized-declared':
      res.writeHead(200, { ...type, 'content-length': String(OVERSIZED_BYTES) });
      if (head) res.end();
      else pump(res, kind, OVERSIZED_BYTES);
      return;
    case 'oversized-undeclared':
      res.writeHead(200, type);
      if (head) res.end();
      else pump(res, kind, OVERSIZED_BYTES);
      return;
    case 'redirect-foreign':
      res.writeHead([301, 302, 303, 307, 308][request.path.length % 5] as number, {
        location: `${origins.foreignTls}${request.path}`,
      });
      res.end();
      return;
    case 'redirect-to-http':
      res.writeHead(302, { location: `${origins.foreignHttp}${request.path}` });
      res.end();
      return;
    case 'trickle': {
      const body = Buffer.concat([BODY[kind].start, BODY[kind].filler.subarray(0, 4096)]);
      res.writeHead(200, { ...type, 'content-length': String(body.length) });
      if (head) res.end();
      else trickle(res, body);
      return;
    }
    case 'headers-then-silence':
      res.writeHead(200, { ...type, 'content-length': '65536' });
      res.flushHeaders();
      return;
    case 'reset-mid-body':
      if (head) {
        reset(res.socket);
        return;
      }
      res.writeHead(200, { ...type, 'content-length': '65536' });
      res.write(Buffer.concat([BODY[kind].start, BODY[kind].filler]).subarray(0, 1000));
      setTimeout(() => reset(res.socket), 20);
      return;
    case 'no-response':
      return;
  }
}

// ---- the fake vCenter's ordinary answers ----------------------------------------------------------

const XSI = 'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"';

function retrieveResponse(objects: string): SoapReply {
  return {
    body: soapEnvelope(
      `<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval>${objects}</returnval></RetrievePropertiesExResponse>`,
    ),
  };
}

const VM_NAME_OBJECT = `<objects><obj type="VirtualMachine">${VM}</obj><propSet><name>name</name><val ${XSI} xsi:type="xsd:string">fuzz-vm</val></propSet></objects>`;
const VM_DEVICES_OBJECT =
  `<objects><obj type="VirtualMachine">${VM}</obj><propSet><name>config.hardware.device</name>` +
  `<val ${XSI} xsi:type="ArrayOfVirtualDevice"><VirtualDevice xsi:type="VirtualDisk"><key>2000</key>` +
  '<backing xsi:type="VirtualDiskFlatVer2BackingInfo"><fileName>[LocalDS_0] fuzz-vm/fuzz-vm.vmdk</fileName>' +
  '<datastore type="Datastore">datastore-1</datastore><diskMode>persistent</diskMode></backing>' +
  `<capacityInBytes>${DISK_CAPACITY}</capacityInBytes></VirtualDevice></val></propSet>` +
  `<propSet><name>config.files.vmPathName</name><val ${XSI} xsi:type="xsd:string">[LocalDS_0] fuzz-vm/fuzz-vm.vmx</val></propSet>` +
  `<propSet><name>name</name><val ${XSI} xsi:type="xsd:string">fuzz-vm</val></propSet></objects>`;
const DATACENTER_OBJECT =
  `<objects><obj type="Datacenter">datacenter-1</obj><propSet><name>name</name><val ${XSI} xsi:type="xsd:string">DC0</val></propSet>` +
  `<propSet><name>datastore</name><val ${XSI} xsi:type="ArrayOfManagedObjectReference"><ManagedObjectReference type="Datastore">datastore-1</ManagedObjectReference></val></propSet></objects>`;

function soapReply(request: SoapRequest): SoapReply | undefined {
  const body = request.body;
  switch (request.method) {
    case 'CreateContainerView':
      return { body: sample('create-container-view.xml') };
    case 'DestroyView':
      return { body: soapEnvelope('<DestroyViewResponse xmlns="urn:vim25"></DestroyViewResponse>') };
    case 'CreateSnapshot_Task':
      return { body: sample('create-snapshot-task.xml') };
    case 'ReconfigVM_Task':
      // The backup's lease (extraConfig hvkit.lease), set and cleared.
      return {
        body: soapEnvelope(
          '<ReconfigVM_TaskResponse xmlns="urn:vim25"><returnval type="Task">task-79</returnval></ReconfigVM_TaskResponse>',
        ),
      };
    case 'RemoveSnapshot_Task':
      return {
        body: soapEnvelope(
          '<RemoveSnapshot_TaskResponse xmlns="urn:vim25"><returnval type="Task">task-78</returnval></RemoveSnapshot_TaskResponse>',
        ),
      };
    case 'RetrievePropertiesEx':
      if (body.includes('<type>Task</type>')) return { body: sample('task-state-success.xml') };
      if (body.includes('<type>Datacenter</type>')) return retrieveResponse(DATACENTER_OBJECT);
      if (body.includes('config.hardware.device')) return retrieveResponse(VM_DEVICES_OBJECT);
      if (body.includes('ContainerView')) return { body: sample('retrieve-vms-vpx.xml') };
      return retrieveResponse(VM_NAME_OBJECT);
    default:
      return undefined;
  }
}

/**
 * A friendly `/folder` answer (when the request is not the hostile one): the HEADs of the .vmx and of the disk
 * descriptor state 64 bytes, everything else (the NVRAM, the flat extent, the GETs) is 404.
 */
function folderReply(request: SoapRequest): SoapReply {
  const path = request.path.split('?')[0] ?? '';
  if (request.httpMethod === 'HEAD' && /\/fuzz-vm\.(vmx|vmdk)$/.test(path))
    return { status: 200, headers: { 'content-length': '64' } };
  return { status: 404 };
}

function vapiReply(request: SoapRequest): SoapReply {
  const json = (value: unknown): SoapReply => ({
    body: JSON.stringify({ value }),
    headers: { 'content-type': 'application/json' },
  });
  if (request.path === '/rest/com/vmware/cis/session')
    return request.httpMethod === 'POST' ? json(VAPI_SESSION) : json(null);
  if (request.path.includes('list-attached-tags')) return json([]);
  return { status: 404, body: '' };
}

// ---- which requests of a call are hostile ---------------------------------------------------------

interface Plan {
  target: Target;
  behaviour: Behaviour;
  /** soap-client: a SOAP call (CurrentTime) or the version list (`/sdk/vimServiceVersions.xml`). */
  soapCall: 'invoke' | 'serviceVersions';
  /**
   * connect: the first hostile request; the later ones are hostile too (an unreadable version list is
   * skipped by design, so a server hostile from there on fails at RetrieveServiceContent).
   */
  connectFrom: 'versions' | 'service-content' | 'login';
  /** inventory: listGuests (hits CreateContainerView) or getGuest by id (hits RetrievePropertiesEx). */
  inventoryCall: 'listGuests' | 'getGuest';
  /** labels: the vAPI login is answered normally, the tag listing is hostile. */
  spareVapiLogin: boolean;
  /**
   * backup: the HEADs are answered normally (the .vmx and descriptor exist, the NVRAM and `-flat.vmdk` do
   * not), so the first GET (of the .vmx) is hostile.
   */
  spareHead: boolean;
}

function isHostile(plan: Plan, request: SoapRequest): boolean {
  const kind = kindOf(request);
  switch (plan.target) {
    case 'soap-client':
      return kind === 'soap';
    case 'connect': {
      const step = request.path.endsWith('/vimServiceVersions.xml')
        ? 0
        : request.method === 'RetrieveServiceContent'
          ? 1
          : request.method === 'Login'
            ? 2
            : -1;
      return kind === 'soap' && step >= ['versions', 'service-content', 'login'].indexOf(plan.connectFrom);
    }
    case 'inventory':
      return (
        kind === 'soap' &&
        (request.method === 'CreateContainerView' || request.method === 'RetrievePropertiesEx')
      );
    case 'labels':
      return (
        kind === 'vapi' &&
        !(plan.spareVapiLogin && request.path === '/rest/com/vmware/cis/session') &&
        request.httpMethod !== 'DELETE'
      );
    case 'backup':
      return kind === 'folder' && !(plan.spareHead && request.httpMethod === 'HEAD');
  }
}

/**
 * A sink that writes to a directory and counts what the adapter hands it per file: the largest file, and
 * the most bytes handed past the size the adapter announced (`expectedBytes`, the server's declared size).
 */
function countingSink(dir: string): {
  sink: BackupSink;
  largestFile: () => number;
  pastExpected: () => number;
} {
  const inner = createDirectorySink(dir);
  let largest = 0;
  let past = 0;
  const sink: BackupSink = {
    kind: inner.kind,
    location: inner.location,
    writeFile(name, source, options) {
      const expected = options?.expectedBytes ?? Number.POSITIVE_INFINITY;
      async function* counted(): AsyncGenerator<Uint8Array> {
        let bytes = 0;
        for await (const chunk of source) {
          bytes += chunk.byteLength;
          largest = Math.max(largest, bytes);
          past = Math.max(past, bytes - expected);
          yield chunk;
        }
      }
      return inner.writeFile(name, counted(), options);
    },
    removeFile: (name, options) => inner.removeFile?.(name, options) ?? Promise.resolve(),
  };
  return { sink, largestFile: () => largest, pastExpected: () => past };
}

/** Every file under `dir` (the sink's leftovers, temporary files included). */
function filesUnder(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((e) => e.isFile())
    .map((e) => join(e.parentPath ?? dir, e.name));
}

const SECRET_HEADERS = ['cookie', 'authorization', 'vmware-api-session-id'];
function credentialsIn(headers: IncomingHttpHeaders): string[] {
  return SECRET_HEADERS.filter((h) => headers[h] !== undefined);
}

describe('vSphere transports against a hostile fake vCenter (seeded fuzz)', () => {
  // Made in the hooks, not while the file is collected (a filtered-out block runs no hook).
  let cert: TestCert;
  beforeAll(() => {
    cert = makeTestCert('vfuzz', 'IP:127.0.0.1');
  });
  const dir = testTempDir('hvkit-vs-hostile-');
  const durations: number[] = [];
  const closeDurations: number[] = [];
  const counts = new Map<string, number>();
  let largestSinkFile = 0;
  let memory: MemoryWatch | undefined;

  afterAll(() => {
    if (durations.length === 0) return;
    console.log(
      `hostile vCenter: ${durations.length} calls (${[...counts].map(([k, n]) => `${k} ${n}`).join(', ')}), ` +
        `max duration ${Math.max(...durations)} ms (deadlines ${CALL_TIMEOUT_MS} ms, backups ${BACKUP_TIMEOUT_MS} ms; ` +
        `+${MARGIN_MS} ms margin), max close() ${Math.max(...closeDurations)} ms, largest file handed to the sink ${largestSinkFile} bytes (bound ${DISK_FILE_BOUND}), ` +
        (memory?.describe() ?? ''),
    );
  });

  it(`every call (${TARGETS.length * BEHAVIOURS.length} + ${EXTRA_ITERATIONS}) ends within its deadline with a typed error; nothing leaks`, async () => {
    const rand = prng(SEED);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;
    const draw = (target: Target, behaviour: Behaviour): Plan => ({
      target,
      behaviour,
      soapCall: pick(['invoke', 'serviceVersions'] as const),
      connectFrom: pick(['versions', 'service-content', 'login'] as const),
      inventoryCall: pick(['listGuests', 'getGuest'] as const),
      spareVapiLogin: rand() < 0.5,
      spareHead: rand() < 0.5,
    });
    // Each pair once (a seeded shuffle), then random draws.
    const plans = TARGETS.flatMap((t) => BEHAVIOURS.map((b) => draw(t, b)));
    for (let i = plans.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [plans[i], plans[j]] = [plans[j] as Plan, plans[i] as Plan];
    }
    for (let i = 0; i < EXTRA_ITERATIONS; i++) plans.push(draw(pick(TARGETS), pick(BEHAVIOURS)));
    let plan: Plan | undefined;
    const servers: SoapServer[] = [];
    const record = () => ({ status: 200, body: '{}', headers: { 'content-type': 'application/json' } });
    const foreignTls = await startSoapServer(record, { tls: cert });
    const foreignHttp = await startSoapServer(record);
    servers.push(foreignTls, foreignHttp);
    const origins = { foreignTls: foreignTls.origin, foreignHttp: foreignHttp.origin };
    const vcenter = await startSoapServer(
      (request) => {
        if (plan && isHostile(plan, request)) {
          const behaviour = plan.behaviour;
          return { raw: (res) => act(behaviour, request, res, origins) };
        }
        if (kindOf(request) === 'vapi') return vapiReply(request);
        if (kindOf(request) === 'folder') return folderReply(request);
        return bootstrapReply(request, 'vpx') ?? soapReply(request) ?? { status: 404 };
      },
      { tls: cert },
    );
    servers.push(vcenter);
    const options = {
      url: vcenter.url,
      username: 'fuzz',
      password: PASSWORD,
      tls: { ca: cert.cert },
      timeoutMs: CALL_TIMEOUT_MS,
      backupIdleTimeoutMs: IDLE_TIMEOUT_MS,
      keepAliveMs: false as const,
    };
    const watch = watchMemory();
    memory = watch;
    try {
      for (const [i, next] of plans.entries()) {
        const variant = {
          'soap-client': `/${next.soapCall}`,
          connect: `/from ${next.connectFrom}`,
          inventory: `/${next.inventoryCall}`,
          labels: next.spareVapiLogin ? '/after login' : '',
          backup: next.spareHead ? '/GET' : '/HEAD',
        }[next.target];
        const what = `iteration ${i} (${next.target}${variant}, ${next.behaviour})`;
        counts.set(next.target, (counts.get(next.target) ?? 0) + 1);
        let adapter: VmwareVsphereAdapter | undefined;
        // The adapter a call is made on connects with a generous deadline (the server is still friendly).
        if (next.target !== 'connect' && next.target !== 'soap-client')
          adapter = await connect({ ...options, timeoutMs: SETUP_TIMEOUT_MS });
        const backupDir = join(dir(), `iteration-${i}`);
        const { sink, largestFile, pastExpected } = countingSink(backupDir);
        plan = next;
        const started = Date.now();
        let outcome: unknown;
        try {
          switch (next.target) {
            case 'soap-client': {
              const client = new VimSoapClient({
                url: vcenter.url,
                tls: { ca: cert.cert },
                timeoutMs: CALL_TIMEOUT_MS,
                maxResponseBytes: SOAP_MAX_RESPONSE_BYTES,
              });
              try {
                if (next.soapCall === 'invoke') await client.invoke('CurrentTime', SERVICE_INSTANCE);
                else await client.serviceVersions();
              } finally {
                await client.close();
              }
              break;
            }
            case 'connect':
              adapter = await connect(options);
              break;
            case 'inventory':
              if (next.inventoryCall === 'listGuests')
                await adapter?.inventory.listGuests({ timeoutMs: CALL_TIMEOUT_MS });
              else await adapter?.inventory.getGuest(VM, { timeoutMs: CALL_TIMEOUT_MS });
              break;
            case 'labels':
              await adapter?.labels.get(VM, { timeoutMs: CALL_TIMEOUT_MS });
              break;
            case 'backup':
              await adapter?.backups.backup(VM, sink, { timeoutMs: BACKUP_TIMEOUT_MS });
              break;
          }
          outcome = new Error('resolved');
        } catch (error) {
          outcome = error;
        }
        const took = Date.now() - started;
        plan = undefined;
        durations.push(took);
        // close() (vAPI and SOAP logouts, answered normally now) has its own bound.
        const closing = Date.now();
        await adapter?.close();
        closeDurations.push(Date.now() - closing);
        watch.sample();
        largestSinkFile = Math.max(largestSinkFile, largestFile());

        const error = outcome as HvkitError;
        expect(HvkitError.isInstance(outcome), `${what}: ${String(outcome)}`).toBe(true);
        const expected =
          next.behaviour === 'reset-mid-body' && next.target !== 'backup'
            ? RESET_WITHOUT_RESUME
            : EXPECTED[next.behaviour];
        expect(expected, `${what}: ${String(outcome)}`).toContain(error.code);
        const deadline = next.target === 'backup' ? BACKUP_TIMEOUT_MS : CALL_TIMEOUT_MS;
        expect(took, what).toBeLessThan(deadline + MARGIN_MS);
        expect(closeDurations.at(-1), `${what}: close()`).toBeLessThan(CLOSE_BOUND_MS);
        // The password appears nowhere in what the caller gets.
        expect(`${error.message} ${error.stack} ${JSON.stringify(error.details ?? {})}`, what).not.toContain(
          PASSWORD,
        );
        // Nothing reached the other origins: no password, cookie or session id left the session's server.
        expect(
          [...foreignTls.requests, ...foreignHttp.requests].map(
            (r) => `${r.path} ${credentialsIn(r.headers)}`,
          ),
          what,
        ).toEqual([]);
        // The sink got no more than the disk's bound nor than the declared size, and a failed backup left
        // no file behind.
        expect(largestFile(), what).toBeLessThanOrEqual(DISK_FILE_BOUND);
        expect(pastExpected(), what).toBeLessThanOrEqual(0);
        if (next.target === 'backup') expect(filesUnder(backupDir), what).toEqual([]);
      }
    } finally {
      watch.stop();
      for (const s of servers) await s.close();
    }
    expect(watch.heapGrowth()).toBeLessThan(HEAP_GROWTH_BOUND);
    expect(watch.rssGrowth()).toBeLessThan(RSS_GROWTH_BOUND);
  }, 90_000);
});
