import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { HvkitError } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import {
  hvkitCodeForLibvirtError,
  libvirtErrorToHvkitError,
  VIR_ERR,
  VIR_FROM,
  virErrorName,
} from '../errors';
import { DOMAIN_EVENT, MESSAGE_STATUS, MESSAGE_TYPE, REMOTE_PROC } from './constants';
import type { PacketHeader } from './packet';
import { readRemoteError } from './remote-error';
import { remoteProcedures as P, procedureByNumber, readStreamHole, remoteMessages } from './remote-protocol';
import { XdrReader, XdrWriter } from './xdr';

interface Recorded {
  note: string;
  header: PacketHeader;
  payloadHex: string;
}

/** Packets recorded from libvirt 9.0 by `test/record-packets.ts`. */
const recorded: Recorded[] = JSON.parse(
  readFileSync(join(import.meta.dirname, '..', '..', 'test', 'fixtures', 'recorded-packets.json'), 'utf8'),
).packets;

function payloadOf(p: Recorded): Uint8Array {
  return Uint8Array.from(Buffer.from(p.payloadHex, 'hex'));
}

function decodeRecorded(note: string): unknown {
  const p = recorded.find((r) => r.note === note && r.header.type === MESSAGE_TYPE.REPLY);
  if (!p) throw new Error(`no recorded reply ${note}`);
  const proc = procedureByNumber(p.header.procedure);
  if (!proc) throw new Error(`no descriptor for ${p.header.procedure}`);
  const r = new XdrReader(payloadOf(p));
  const value = (proc.decodeRet as (r: XdrReader) => unknown)(r);
  r.finish();
  return value;
}

describe('reply decoders on recorded libvirt 9.0 packets', () => {
  it('decodes every recorded OK reply completely with its procedure descriptor', () => {
    let decoded = 0;
    for (const p of recorded) {
      if (p.header.type !== MESSAGE_TYPE.REPLY || p.header.status !== MESSAGE_STATUS.OK) continue;
      const proc = procedureByNumber(p.header.procedure);
      if (!proc) throw new Error(`no descriptor for procedure ${p.header.procedure}`);
      const r = new XdrReader(payloadOf(p));
      (proc.decodeRet as (r: XdrReader) => unknown)(r);
      r.finish(p.note);
      decoded++;
    }
    expect(decoded).toBeGreaterThan(30);
  });

  it('reads NODE_GET_INFO (char[32] model, 64-bit memory as a bigint)', () => {
    const info = decodeRecorded('node info') as { model: string; memory: bigint; cpus: number };
    expect(info.model).toMatch(/^x86_64$|^i686$/);
    expect(typeof info.memory).toBe('bigint');
    expect(info.cpus).toBeGreaterThan(0);
    const test = decodeRecorded('test node info') as { model: string; memory: bigint };
    expect(test.memory).toBe(3_145_728n);
  });

  it('reads the test driver security model (char<257> with its NUL)', () => {
    expect(decodeRecorded('test security model')).toEqual({ model: 'testSecurity', doi: '' });
  });

  it('reads DOMAIN_GET_INFO of the test domain, whose cpuTime exceeds 2^53', () => {
    const info = decodeRecorded('test domain info') as { cpuTime: bigint; maxMem: bigint; nrVirtCpu: number };
    expect(info.cpuTime > 2n ** 53n).toBe(true);
    expect(info.maxMem).toBe(8_388_608n);
    expect(info.nrVirtCpu).toBe(2);
  });

  it('reads typed parameters of the QEMU scheduler (ULLONG cpu_shares, LLONG quota -1)', () => {
    const params = decodeRecorded('scheduler') as { field: string; type: number; value: unknown }[];
    expect(params.find((p) => p.field === 'cpu_shares')?.type).toBe(4);
    expect(params.find((p) => p.field === 'vcpu_quota')?.value).toBe(-1n);
  });

  it('reads the library version', () => {
    expect(decodeRecorded('lib version')).toBe(9_000_000n);
  });

  it('maps recorded error replies: not found, operation invalid, unknown procedure', () => {
    const errorOf = (note: string) => {
      const p = recorded.find((r) => r.note === note && r.header.status === MESSAGE_STATUS.ERROR);
      if (!p) throw new Error(`no recorded error ${note}`);
      const r = new XdrReader(payloadOf(p));
      const e = readRemoteError(r);
      r.finish();
      return libvirtErrorToHvkitError(e, { operation: 'rpc.test' });
    };
    const missing = errorOf('missing domain');
    expect(missing.code).toBe('NOT_FOUND');
    expect(missing.backendCode).toBe(VIR_ERR.NO_DOMAIN);
    expect(missing.details).toMatchObject({ libvirtCode: 'VIR_ERR_NO_DOMAIN', domainName: 'VIR_FROM_QEMU' });
    expect(missing.message).toContain('hvkit-no-such-domain');
    const noJob = errorOf('no job');
    expect(noJob.code).toBe('CONFLICT');
    expect(noJob.backendCode).toBe(VIR_ERR.OPERATION_INVALID);
    const unknown = errorOf('unknown procedure');
    expect(unknown.code).toBe('UNSUPPORTED');
    expect(unknown.details?.domain).toBe(VIR_FROM.RPC);
  });

  it('reads lifecycle events and stream holes', () => {
    const events = recorded
      .filter((r) => r.header.type === MESSAGE_TYPE.MESSAGE)
      .map((p) => {
        expect(p.header.serial).toBe(1);
        const r = new XdrReader(payloadOf(p));
        const e = remoteMessages.DOMAIN_EVENT_CALLBACK_LIFECYCLE.decodeMsg(r);
        r.finish();
        return e.event;
      });
    expect(events).toContain(DOMAIN_EVENT.STARTED);
    expect(events).toContain(DOMAIN_EVENT.STOPPED);
    const hole = recorded.find((r) => r.header.type === MESSAGE_TYPE.STREAM_HOLE);
    expect(hole).toBeDefined();
    const r = new XdrReader(payloadOf(hole as Recorded));
    expect(readStreamHole(r).length > 0n).toBe(true);
  });
});

describe('argument encoders', () => {
  const encode = <A>(proc: { encodeArgs(w: XdrWriter, a: A): void }, args: A) => {
    const w = new XdrWriter();
    proc.encodeArgs(w, args);
    return Buffer.from(w.bytes()).toString('hex');
  };

  it('CONNECT_OPEN writes the name as a remote_string (flag 1, not 0x01000000) and the flags', () => {
    expect(encode(P.CONNECT_OPEN, { name: 'test:///default', flags: 0 })).toBe(
      `00000001` + `0000000f${Buffer.from('test:///default').toString('hex')}00` + '00000000',
    );
    expect(encode(P.CONNECT_OPEN, { name: null, flags: 1 })).toBe('00000000' + '00000001');
  });

  it('domain handles are name, 16 raw UUID bytes and id', () => {
    const dom = { name: 'a', uuid: '68766b69-7431-4000-8000-000000000001', id: -1 };
    expect(encode(P.DOMAIN_GET_XML_DESC, { dom, flags: 2 })).toBe(
      '00000001' + '61000000' + '68766b69743140008000000000000001' + 'ffffffff' + '00000002',
    );
  });

  it('REGISTER_ANY writes an optional domain, GET_BLOCK_IO_TUNE an optional disk', () => {
    expect(encode(P.CONNECT_DOMAIN_EVENT_CALLBACK_REGISTER_ANY, { eventId: 0, dom: null })).toBe(
      '0000000000000000',
    );
    const dom = { name: 'a', uuid: '00000000-0000-0000-0000-000000000000', id: 1 };
    expect(encode(P.DOMAIN_GET_BLOCK_IO_TUNE, { dom, disk: null, nparams: 0, flags: 4 }).slice(-24)).toBe(
      '000000000000000000000004',
    );
  });

  it('refuses arguments that cannot be encoded with INVALID_ARGUMENT', () => {
    const dom = { name: 'a', uuid: 'nope', id: 1 };
    let caught: unknown;
    try {
      encode(P.DOMAIN_GET_INFO, { dom });
    } catch (error) {
      caught = error;
    }
    expect(HvkitError.isInstance(caught, 'INVALID_ARGUMENT')).toBe(true);
  });

  it('numbers every descriptor after REMOTE_PROC', () => {
    for (const [name, proc] of Object.entries(P)) {
      expect(proc.procedure).toBe(REMOTE_PROC[name as keyof typeof REMOTE_PROC]);
      expect(procedureByNumber(proc.procedure)).toBe(proc);
    }
  });
});

describe('libvirt error mapping', () => {
  it.each([
    [VIR_ERR.NO_DOMAIN, 'NOT_FOUND'],
    [VIR_ERR.NO_STORAGE_VOL, 'NOT_FOUND'],
    [VIR_ERR.NO_DOMAIN_CHECKPOINT, 'NOT_FOUND'],
    [VIR_ERR.INVALID_ARG, 'INVALID_ARGUMENT'],
    [VIR_ERR.XML_ERROR, 'INVALID_ARGUMENT'],
    [VIR_ERR.OPERATION_INVALID, 'CONFLICT'],
    [VIR_ERR.DOM_EXIST, 'CONFLICT'],
    [VIR_ERR.NO_SUPPORT, 'UNSUPPORTED'],
    [VIR_ERR.ARGUMENT_UNSUPPORTED, 'UNSUPPORTED'],
    [VIR_ERR.OPERATION_UNSUPPORTED, 'UNSUPPORTED'],
    [VIR_ERR.AUTH_FAILED, 'AUTH_FAILED'],
    [VIR_ERR.ACCESS_DENIED, 'PERMISSION_DENIED'],
    [VIR_ERR.OPERATION_DENIED, 'PERMISSION_DENIED'],
    [VIR_ERR.OPERATION_TIMEOUT, 'TIMEOUT'],
    [VIR_ERR.RPC, 'PROTOCOL'],
    [VIR_ERR.INTERNAL_ERROR, 'REMOTE'],
    [VIR_ERR.SYSTEM_ERROR, 'REMOTE'],
    [9999, 'REMOTE'],
  ] as const)('VIR_ERR %i -> %s', (code, expected) => {
    expect(hvkitCodeForLibvirtError(code)).toBe(expected);
  });

  it('refines VIR_ERR_RPC by its fixed messages', () => {
    expect(hvkitCodeForLibvirtError(VIR_ERR.RPC, 'unknown procedure: 9999')).toBe('UNSUPPORTED');
    expect(hvkitCodeForLibvirtError(VIR_ERR.RPC, 'authentication required')).toBe('AUTH_FAILED');
    expect(hvkitCodeForLibvirtError(VIR_ERR.RPC, 'Unable to decode message payload')).toBe('PROTOCOL');
  });

  it('keeps the libvirt code as backendCode and the error domain in details', () => {
    const e = libvirtErrorToHvkitError(
      {
        code: VIR_ERR.RESOURCE_BUSY,
        domain: VIR_FROM.STORAGE,
        message: 'busy',
        level: 2,
        dom: null,
        str1: null,
        str2: null,
        str3: null,
        int1: -1,
        int2: -1,
        net: null,
      },
      { operation: 'rpc.X' },
    );
    expect(e).toMatchObject({ code: 'CONFLICT', backendCode: 87, operation: 'rpc.X', retryable: true });
    expect(e.details).toMatchObject({
      domain: 18,
      domainName: 'VIR_FROM_STORAGE',
      libvirtCode: 'VIR_ERR_RESOURCE_BUSY',
    });
    expect(virErrorName(12345)).toBe('VIR_ERR_12345');
  });
});
