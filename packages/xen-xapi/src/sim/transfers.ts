/**
 * The simulator's HTTP transfer endpoints, authenticated by `session_id` in the query (a bad one is HTTP
 * 401), with `task_id` (optional) carrying progress and the result, as XAPI's:
 *
 * - `GET /export?uuid=|ref=[&use_compression=gzip]`: the VM (halted) or snapshot as an XVA;
 * - `PUT /import[?sr_id=&restore=true]`: an XVA (gzip or not) imported as a new VM; needs `Content-Length`
 *   (a chunked upload fails with `IMPORT_ERROR_CANNOT_HANDLE_CHUNKED`), and nothing is created unless the
 *   whole body arrived; the task's result is the new VM's ref;
 * - `GET /export_raw_vdi?vdi=[&format=raw|vhd][&base=]`: a disk's bytes, raw or as a dynamic VHD (with
 *   `base`, only the blocks that differ from it);
 * - `PUT /import_raw_vdi?vdi=[&format=raw|vhd]`: into an existing VDI of the same size (raw: all of it;
 *   vhd: its allocated blocks), applied only once the whole body arrived;
 * - `GET /host_backup`: a gzipped tar of the database dump and the host's inventory file;
 * - `GET /pool/xmldbdump`: the database in the `/pool/xmldbdump` format.
 *
 * Byte formats: see `formats.ts`. Everything is built in memory (the simulator's disks are sparse).
 */

import type { IncomingMessage, ServerResponse } from 'node:http';
import { gunzipSync, gzipSync } from 'node:zlib';
import { fieldsOf } from '../protocol/datamodel';
import { normaliseRecord } from '../protocol/values';
import { formatXapiDate, setOwn, type WireValue } from '../protocol/wire';
import { decodeXmlRpcValue, encodeXmlRpcValue } from '../protocol/xmlrpc';
import { SimApi, XapiFailure } from './api';
import { rowToWire, type SimDb, type SimRow } from './db';
import { CHUNK_BYTES } from './disks';
import { readTar, readVhd, sha1Hex, TAR_END, tarMember, VHD_BLOCK_BYTES, writeVhd } from './formats';
import { formatMap, formatSet } from './sexpr';

/** Test-only faults of the transfer endpoints (mutable; `startXapiSimulator` hands it out as `faults`). */
export interface SimTransferFaults {
  /** Cut the connection of the next export after this many body bytes (then the setting clears itself). */
  dropExportAfterBytes?: number;
  /** Fail the next export or import with this XAPI error code (then the setting clears itself). */
  failNextTransfer?: string;
}

/** Largest upload accepted (bytes): 4 GiB. */
const MAX_UPLOAD_BYTES = 4 * 1024 * 1024 * 1024;
/** Bytes per `write` of a response. */
const WRITE_BYTES = 64 * 1024;

/** The paths this module answers. */
export const TRANSFER_PATHS: ReadonlySet<string> = new Set([
  '/export',
  '/import',
  '/export_raw_vdi',
  '/import_raw_vdi',
  '/host_backup',
  '/pool/xmldbdump',
]);

class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

/** A VM, VDI or SR named by ref or uuid in a query parameter. */
function lookup(db: SimDb, cls: string, value: string | null, param: string): string {
  if (!value) throw new XapiFailure('INVALID_VALUE', param, '');
  const table = db.table(cls);
  if (table.has(value)) return value;
  for (const [ref, row] of table) if (row.uuid === value) return ref;
  throw new XapiFailure('HANDLE_INVALID', cls, value);
}

/** Reads a request body that states its length; resolves undefined when the client went away first. */
function readUpload(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunked = /chunked/i.test(String(req.headers['transfer-encoding'] ?? ''));
  const length = Number(req.headers['content-length']);
  if (chunked || req.headers['content-length'] === undefined || !Number.isSafeInteger(length))
    return Promise.reject(new XapiFailure('IMPORT_ERROR_CANNOT_HANDLE_CHUNKED'));
  if (length > MAX_UPLOAD_BYTES) return Promise.reject(new HttpError(413, 'upload too large'));
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (c: Buffer) => {
      size += c.length;
      chunks.push(c);
    });
    req.on('end', () => resolve(size === length ? Buffer.concat(chunks) : undefined));
    req.on('aborted', () => resolve(undefined));
    req.on('error', () => resolve(undefined));
    req.on('close', () => {
      if (!req.complete) resolve(undefined);
    });
  });
}

/** The refs of a VM's exported objects, in the XVA's order, with their classes. */
function exportedObjects(db: SimDb, vmRef: string): Array<{ cls: string; ref: string; row: SimRow }> {
  const vm = db.table('VM').get(vmRef) as SimRow;
  const out = [{ cls: 'VM', ref: vmRef, row: vm }];
  const vdis: string[] = [];
  const networks: string[] = [];
  for (const r of vm.VBDs as string[]) {
    const vbd = db.table('VBD').get(r);
    if (!vbd) continue;
    out.push({ cls: 'VBD', ref: r, row: vbd });
    if (typeof vbd.VDI === 'string' && vbd.type === 'Disk' && db.table('VDI').has(vbd.VDI))
      vdis.push(vbd.VDI);
  }
  for (const r of vm.VIFs as string[]) {
    const vif = db.table('VIF').get(r);
    if (!vif) continue;
    out.push({ cls: 'VIF', ref: r, row: vif });
    if (typeof vif.network === 'string' && !networks.includes(vif.network)) networks.push(vif.network);
  }
  for (const r of vdis) out.push({ cls: 'VDI', ref: r, row: db.table('VDI').get(r) as SimRow });
  for (const r of networks) {
    const row = db.table('network').get(r);
    if (row) out.push({ cls: 'network', ref: r, row });
  }
  return out;
}

/** Replaces refs by their export ids, in a wire value. */
function remap(value: WireValue, ids: ReadonlyMap<string, string>): WireValue {
  if (typeof value === 'string') return ids.get(value) ?? value;
  if (Array.isArray(value)) return value.map((v) => remap(v, ids));
  if (value && typeof value === 'object' && !(value instanceof Date) && !(value instanceof Uint8Array)) {
    if (value.constructor !== Object) return value;
    const out: Record<string, WireValue> = {};
    for (const [k, v] of Object.entries(value)) setOwn(out, k, remap(v as WireValue, ids));
    return out;
  }
  return value;
}

/** A VM (or snapshot) as an XVA archive (uncompressed). */
export function buildXva(api: SimApi, vmRef: string): Buffer {
  const db = api.db;
  const objects = exportedObjects(db, vmRef);
  const ids = new Map(objects.map((o, i) => [o.ref, `Ref:${i}`]));
  const pool = [...db.table('pool').values()][0];
  const host = typeof pool?.master === 'string' ? db.table('host').get(pool.master) : undefined;
  const sw = (host?.software_version ?? {}) as Record<string, string>;
  const ova = encodeXmlRpcValue({
    version: {
      hostname: String(host?.hostname ?? ''),
      product_brand: sw.product_brand ?? '',
      product_version: sw.product_version ?? '',
      build_number: sw.build_number ?? '',
      xapi_major: String(host?.API_version_major ?? ''),
      xapi_minor: String(host?.API_version_minor ?? ''),
      export_vsn: '2',
    },
    objects: objects.map((o) => ({
      class: o.cls,
      id: ids.get(o.ref) as string,
      snapshot: remap(rowToWire(o.cls, o.row), ids),
    })),
  });
  const parts: Uint8Array[] = [...tarMember({ name: 'ova.xml', data: Buffer.from(ova, 'utf8') })];
  for (const o of objects) {
    if (o.cls !== 'VDI') continue;
    const chunks = api.disks.chunks(o.ref, String(o.row.uuid), SimApi.vdiSize(o.row));
    for (const k of [...chunks.keys()].sort((a, b) => a - b)) {
      const name = `${ids.get(o.ref)}/${String(k).padStart(8, '0')}`;
      const data = chunks.get(k) as Buffer;
      parts.push(...tarMember({ name, data }));
      parts.push(...tarMember({ name: `${name}.checksum`, data: Buffer.from(sha1Hex(data)) }));
    }
  }
  parts.push(TAR_END);
  return Buffer.concat(parts);
}

/** Imports an XVA: a new VM (halted) with new VDIs in `srRef`; returns its ref. */
export function importXva(api: SimApi, bytes: Buffer, srRef: string, restore: boolean): string {
  const db = api.db;
  const tar = readTar(bytes[0] === 0x1f && bytes[1] === 0x8b ? gunzipSync(bytes) : bytes);
  const ova = tar[0];
  if (ova?.name !== 'ova.xml')
    throw new XapiFailure('IMPORT_ERROR', 'the archive does not start with ova.xml');
  const doc = decodeXmlRpcValue(Buffer.from(ova.data).toString('utf8')) as {
    objects?: Array<{ class: string; id: string; snapshot: Record<string, unknown> }>;
  };
  if (!Array.isArray(doc?.objects)) throw new XapiFailure('IMPORT_ERROR', 'ova.xml has no objects');
  const byId = new Map(doc.objects.map((o) => [o.id, o]));
  const chunks = new Map<string, Map<number, Buffer>>();
  const sums = new Map<string, string>();
  for (const e of tar.slice(1)) {
    const m = /^(Ref:\d+)\/(\d{8})(\.checksum)?$/.exec(e.name);
    if (!m) throw new XapiFailure('IMPORT_ERROR', `unexpected member ${e.name}`);
    if (m[3]) {
      sums.set(`${m[1]}/${m[2]}`, Buffer.from(e.data).toString('latin1'));
      continue;
    }
    if (byId.get(m[1] as string)?.class !== 'VDI') throw new XapiFailure('IMPORT_ERROR', `no VDI ${m[1]}`);
    if (e.data.byteLength !== CHUNK_BYTES)
      throw new XapiFailure('IMPORT_ERROR', `chunk ${e.name} is not 1 MiB`);
    const map = chunks.get(m[1] as string) ?? new Map<number, Buffer>();
    chunks.set(m[1] as string, map);
    map.set(Number(m[2]), Buffer.from(e.data));
  }
  for (const [id, map] of chunks)
    for (const [k, data] of map) {
      const want = sums.get(`${id}/${String(k).padStart(8, '0')}`);
      if (want !== undefined && want !== sha1Hex(data))
        throw new XapiFailure('IMPORT_ERROR', `checksum mismatch in ${id}/${k}`);
    }
  const vmObj = doc.objects.find((o) => o.class === 'VM');
  if (!vmObj) throw new XapiFailure('IMPORT_ERROR', 'ova.xml has no VM');
  const record = (o: { class: string; snapshot: Record<string, unknown> }) => {
    const r = normaliseRecord(o.class, o.snapshot);
    // Relations are rebuilt from the refs that define them.
    for (const [name, f] of fieldsOf(o.class)) if (f.type === 'refs') r[name] = [];
    return r;
  };
  // Everything is checked: now create the objects.
  const newRefs = new Map<string, string>();
  const vm = record(vmObj);
  const keepUuid =
    restore && ![...db.table('VM').values()].some((row) => row.uuid === vm.uuid)
      ? String(vm.uuid)
      : undefined;
  const vmMade = api.made(3);
  newRefs.set(vmObj.id, vmMade.ref);
  db.insert('VM', vmMade.ref, {
    ...vm,
    uuid: keepUuid ?? vmMade.uuid,
    is_a_snapshot: false,
    snapshot_of: null,
    snapshot_time: null,
    power_state: 'Halted',
    resident_on: null,
    domid: -1,
    metrics: null,
    guest_metrics: null,
  });
  for (const o of doc.objects) {
    if (o.class !== 'VDI') continue;
    const made = api.made(4);
    newRefs.set(o.id, made.ref);
    db.insert('VDI', made.ref, {
      ...record(o),
      uuid: made.uuid,
      location: made.uuid,
      SR: srRef,
      is_a_snapshot: false,
      snapshot_of: null,
      snapshot_time: null,
    });
    api.disks.set(made.ref, chunks.get(o.id) ?? new Map());
  }
  const networks = db.table('network');
  for (const o of doc.objects) {
    if (o.class !== 'VBD' && o.class !== 'VIF') continue;
    const r = record(o);
    const made = api.made(o.class === 'VBD' ? 5 : 6);
    r.uuid = made.uuid;
    r.VM = vmMade.ref;
    r.currently_attached = false;
    if (o.class === 'VBD') r.VDI = typeof r.VDI === 'string' ? (newRefs.get(r.VDI) ?? null) : null;
    else {
      // A network of this pool with the exported network's uuid, else the first one.
      const exported = typeof r.network === 'string' ? byId.get(r.network) : undefined;
      const uuid = exported?.snapshot.uuid;
      r.network = [...networks].find(([, n]) => n.uuid === uuid)?.[0] ?? [...networks.keys()][0] ?? null;
      if (!restore) Object.assign(r, { MAC: api.newMac(), MAC_autogenerated: true });
    }
    db.insert(o.class, made.ref, r);
  }
  db.relink();
  return vmMade.ref;
}

/** The chunk indices of a VDI whose bytes differ from `base` (or, without one, that hold data). */
function changedBlocks(
  chunks: ReadonlyMap<number, Buffer>,
  base: ReadonlyMap<number, Buffer> | undefined,
): Map<number, Uint8Array> {
  const per = VHD_BLOCK_BYTES / CHUNK_BYTES;
  const keys = new Set<number>();
  for (const k of chunks.keys()) keys.add(Math.floor(k / per));
  for (const k of base?.keys() ?? []) keys.add(Math.floor(k / per));
  const out = new Map<number, Uint8Array>();
  for (const b of keys) {
    let differs = false;
    for (let i = 0; i < per; i++) {
      const a = chunks.get(b * per + i);
      const c = base?.get(b * per + i);
      if (a !== c && !(a && c && a.equals(c))) differs = true;
    }
    if (!differs) continue;
    const block = Buffer.alloc(VHD_BLOCK_BYTES);
    for (let i = 0; i < per; i++) chunks.get(b * per + i)?.copy(block, i * CHUNK_BYTES);
    out.set(b, block);
  }
  return out;
}

/** The bytes of a raw disk, as chunks (zeros where nothing is stored). */
function* rawDisk(chunks: ReadonlyMap<number, Buffer>, size: number): Generator<Uint8Array> {
  const zeros = Buffer.alloc(CHUNK_BYTES);
  for (let at = 0, k = 0; at < size; at += CHUNK_BYTES, k++) {
    const data = chunks.get(k) ?? zeros;
    yield at + CHUNK_BYTES <= size ? data : data.subarray(0, size - at);
  }
}

/** The database in the `/pool/xmldbdump` format. */
export function dumpDatabase(db: SimDb): string {
  const attr = (s: string) =>
    s
      .replace(/&/g, '&amp;')
      .replace(/</g, '&lt;')
      .replace(/>/g, '&gt;')
      .replace(/"/g, '&quot;')
      .replace(/'/g, '&#x27;');
  const column = (type: string | undefined, v: unknown): string => {
    if (v === null || v === undefined) return type === 'ref' ? 'OpaqueRef:NULL' : '';
    if (v instanceof Date) return formatXapiDate(v);
    if (type === 'strings' || type === 'refs') return formatSet((v as unknown[]).map(String));
    if (type === 'map' || type === 'floatMap') return formatMap(v as Record<string, unknown>);
    return String(v);
  };
  let out = '<?xml version="1.0" encoding="UTF-8"?>\n<database>\n<manifest>';
  for (const [k, v] of db.manifest) out += `<pair key="${attr(k)}" value="${attr(v)}"/>`;
  out += '</manifest>\n';
  for (const [cls, table] of db.tables) {
    const fields = fieldsOf(cls);
    out += `<table name="${attr(cls)}">\n`;
    for (const [ref, row] of table) {
      out += `<row ref="${attr(ref)}" _ref="${attr(ref)}"`;
      for (const [name, v] of Object.entries(row)) {
        const f = fields.get(name);
        out += ` ${f?.column ?? name}="${attr(column(f?.type, v))}"`;
      }
      out += '/>\n';
    }
    out += '</table>\n';
  }
  return `${out}</database>\n`;
}

/** A body: its length and its bytes, as one buffer or as chunks made while it is sent (a raw disk). */
interface Body {
  length: number;
  chunks: Iterable<Uint8Array>;
}

function* pieces(body: Body): Generator<Uint8Array> {
  for (const chunk of body.chunks)
    for (let at = 0; at < chunk.byteLength; at += WRITE_BYTES) yield chunk.subarray(at, at + WRITE_BYTES);
}

/** Writes a body in pieces, honouring back-pressure; false when the connection went away (or was cut). */
async function writeBody(
  res: ServerResponse,
  body: Body,
  dropAfter: number | undefined,
  onProgress: (fraction: number) => void,
): Promise<boolean> {
  let at = 0;
  for (let piece of pieces(body)) {
    if (res.destroyed) return false;
    if (dropAfter !== undefined && at + piece.length > dropAfter) {
      piece = piece.subarray(0, Math.max(0, dropAfter - at));
      if (piece.length > 0) res.write(piece);
      await new Promise((r) => setTimeout(r, 20));
      res.socket?.destroy();
      return false;
    }
    at += piece.length;
    onProgress(body.length > 0 ? at / body.length : 1);
    if (!res.write(piece))
      await new Promise<void>((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
  }
  return !res.destroyed;
}

/** Answers one transfer request. */
export async function serveTransfer(
  api: SimApi,
  faults: SimTransferFaults,
  req: IncomingMessage,
  res: ServerResponse,
): Promise<void> {
  const url = new URL(req.url ?? '/', 'http://sim.invalid');
  const path = url.pathname;
  const q = url.searchParams;
  const upload = path === '/import' || path === '/import_raw_vdi';
  let task: { ref: string; row: SimRow; own: boolean } | undefined;
  try {
    if (req.method !== (upload ? 'PUT' : 'GET')) throw new HttpError(405, 'method not allowed');
    try {
      api.checkSession(q.get('session_id'));
    } catch {
      throw new HttpError(401, 'unauthorised');
    }
    const taskId = q.get('task_id');
    task = taskId
      ? { ref: taskId, row: api.row('task', taskId), own: false }
      : { ...api.newTask(`HTTP ${path}`, 'pending'), own: true };
    const fault = faults.failNextTransfer;
    if (fault !== undefined) {
      faults.failNextTransfer = undefined;
      throw new XapiFailure(fault);
    }
    let result = '';
    if (upload) {
      // Checks that need no body come first, as XAPI's handlers do.
      const vdiRef = path === '/import_raw_vdi' ? lookup(api.db, 'VDI', q.get('vdi'), 'vdi') : undefined;
      const sr = path === '/import' ? srOf(api.db, q.get('sr_id')) : undefined;
      const body = await readUpload(req);
      if (body === undefined) {
        Object.assign(task.row, {
          status: 'failure',
          error_info: ['CLIENT_ERROR', 'the upload ended early'],
        });
        return;
      }
      if (vdiRef !== undefined) importRawVdi(api, vdiRef, body, q.get('format') ?? 'raw');
      else result = encodeXmlRpcValue([importXva(api, body, sr as string, q.get('restore') === 'true')]);
      send(res, 200, 'text/plain', '');
    } else {
      const { body, type } = exportBody(api, path, q);
      const drop = faults.dropExportAfterBytes;
      faults.dropExportAfterBytes = undefined;
      res.writeHead(200, { 'content-type': type, 'content-length': String(body.length) });
      const row = task.row;
      const progress = (fraction: number) => {
        // XAPI reports task progress in [0, 1]; 1 only once the task has finished.
        row.progress = Math.min(0.99, fraction);
      };
      if (!(await writeBody(res, body, drop, progress))) {
        Object.assign(task.row, { status: 'failure', error_info: ['CLIENT_ERROR', 'connection closed'] });
        return;
      }
      res.end();
    }
    Object.assign(task.row, { status: 'success', progress: 1, result, finished: api.now() });
  } catch (error) {
    const [code, ...params] =
      error instanceof XapiFailure
        ? error.description
        : error instanceof HttpError
          ? [String(error.status)]
          : ['INTERNAL_ERROR', String((error as Error)?.message ?? error)];
    if (task)
      Object.assign(task.row, { status: 'failure', error_info: [code, ...params], finished: api.now() });
    if (!res.headersSent)
      send(
        res,
        error instanceof HttpError ? error.status : 500,
        'text/html',
        `<html><body><h1>${error instanceof HttpError ? error.message : 'HTTP 500 internal server error'}</h1>${[code, ...params].join(' ').replace(/[<&>]/g, '')}</body></html>`,
      );
    else res.destroy();
  } finally {
    // XAPI's own tasks of HTTP handlers go when the request ends.
    if (task?.own) api.db.table('task').delete(task.ref);
  }
}

function send(res: ServerResponse, status: number, type: string, body: string): void {
  res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function srOf(db: SimDb, value: string | null): string {
  if (value) return lookup(db, 'SR', value, 'sr_id');
  const pool = [...db.table('pool').values()][0];
  if (typeof pool?.default_SR !== 'string') throw new XapiFailure('DEFAULT_SR_NOT_FOUND', '');
  return pool.default_SR;
}

function exportBody(api: SimApi, path: string, q: URLSearchParams): { body: Body; type: string } {
  const db = api.db;
  const whole = (b: Buffer): Body => ({ length: b.length, chunks: [b] });
  if (path === '/pool/xmldbdump') return { body: whole(Buffer.from(dumpDatabase(db))), type: 'text/xml' };
  if (path === '/host_backup') {
    const pool = [...db.table('pool').values()][0];
    const host = typeof pool?.master === 'string' ? db.table('host').get(pool.master) : undefined;
    const inventory = `INSTALLATION_UUID='${host?.uuid ?? ''}'\nPRIMARY_DISK='/dev/sda'\n`;
    const tar = Buffer.concat([
      ...tarMember({ name: 'var/backup/pool-database.xml', data: Buffer.from(dumpDatabase(db)) }),
      ...tarMember({ name: 'etc/xensource-inventory', data: Buffer.from(inventory) }),
      TAR_END,
    ]);
    return { body: whole(gzipSync(tar)), type: 'application/octet-stream' };
  }
  if (path === '/export') {
    const vmRef = lookup(db, 'VM', q.get('uuid') ?? q.get('ref'), 'uuid');
    const vm = db.table('VM').get(vmRef) as SimRow;
    if (!vm.is_a_snapshot && vm.power_state !== 'Halted')
      throw new XapiFailure('VM_BAD_POWER_STATE', vmRef, 'halted', String(vm.power_state).toLowerCase());
    const xva = buildXva(api, vmRef);
    const compression = q.get('use_compression');
    return {
      body: whole(compression === 'true' || compression === 'gzip' ? gzipSync(xva) : xva),
      type: 'application/octet-stream',
    };
  }
  // /export_raw_vdi
  const vdiRef = lookup(db, 'VDI', q.get('vdi'), 'vdi');
  const vdi = db.table('VDI').get(vdiRef) as SimRow;
  const size = SimApi.vdiSize(vdi);
  const chunks = api.disks.chunks(vdiRef, String(vdi.uuid), size);
  const format = q.get('format') ?? 'raw';
  const baseParam = q.get('base');
  if (format === 'raw') {
    if (baseParam) throw new XapiFailure('INVALID_VALUE', 'base', 'needs format=vhd');
    return {
      body: { length: size, chunks: rawDisk(new Map(chunks), size) },
      type: 'application/octet-stream',
    };
  }
  if (format !== 'vhd') throw new XapiFailure('INVALID_VALUE', 'format', format);
  let base: Map<number, Buffer> | undefined;
  if (baseParam) {
    const baseRef = lookup(db, 'VDI', baseParam, 'base');
    const b = db.table('VDI').get(baseRef) as SimRow;
    if (SimApi.vdiSize(b) !== size) throw new XapiFailure('VDI_INCOMPATIBLE_TYPE', baseRef, 'size differs');
    base = api.disks.chunks(baseRef, String(b.uuid), size);
  }
  const id = Buffer.from(String(vdi.uuid).replace(/-/g, ''), 'hex');
  return {
    body: whole(Buffer.concat([...writeVhd(size, changedBlocks(chunks, base), id)])),
    type: 'application/octet-stream',
  };
}

function importRawVdi(api: SimApi, vdiRef: string, body: Buffer, format: string): void {
  const vdi = api.db.table('VDI').get(vdiRef) as SimRow;
  const size = SimApi.vdiSize(vdi);
  const uuid = String(vdi.uuid);
  const next = new Map(api.disks.chunks(vdiRef, uuid, size));
  const put = (offset: number, data: Uint8Array) => {
    for (let at = 0; at < data.byteLength; at += CHUNK_BYTES) {
      const k = (offset + at) / CHUNK_BYTES;
      const piece = Buffer.alloc(CHUNK_BYTES);
      piece.set(data.subarray(at, Math.min(at + CHUNK_BYTES, data.byteLength, size - offset)));
      if (piece.every((b) => b === 0)) next.delete(k);
      else next.set(k, piece);
    }
  };
  if (format === 'raw') {
    if (body.length !== size)
      throw new XapiFailure('VDI_IO_ERROR', `raw upload of ${body.length} bytes into a VDI of ${size}`);
    put(0, body);
  } else if (format === 'vhd') {
    let vhd: ReturnType<typeof readVhd>;
    try {
      vhd = readVhd(body);
    } catch (error) {
      throw new XapiFailure('VDI_IO_ERROR', (error as Error).message);
    }
    if (vhd.size !== size)
      throw new XapiFailure('VDI_IO_ERROR', `the VHD is ${vhd.size} bytes, the VDI ${size}`);
    for (const [b, data] of vhd.blocks)
      put(b * VHD_BLOCK_BYTES, data.subarray(0, Math.min(VHD_BLOCK_BYTES, size - b * VHD_BLOCK_BYTES)));
  } else throw new XapiFailure('INVALID_VALUE', 'format', format);
  api.disks.set(vdiRef, next);
}
