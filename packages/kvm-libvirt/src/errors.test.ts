/**
 * A libvirt error reply as it comes off the wire, at the size libvirt allows (a 4 MiB message, the
 * `remote_string` maximum) and full of terminal escapes: the HvkitError it becomes has a short, printable
 * message, whatever the daemon (or something in the path pretending to be it) sent.
 */

import { MAX_DETAIL_LENGTH, MAX_MESSAGE_LENGTH } from '@hvkit/core';
import { describe, expect, it } from 'vitest';
import { libvirtErrorToHvkitError, VIR_ERR, VIR_FROM } from './errors';
import { MESSAGE_STATUS, MESSAGE_TYPE, PROGRAM, PROTOCOL_VERSION } from './protocol/constants';
import { decodeFrame, encodePacket, PacketFramer } from './protocol/packet';
import { readRemoteError } from './protocol/remote-error';
import { XdrReader, XdrWriter } from './protocol/xdr';

const STRING_MAX = 4 * 1024 * 1024;

/** A REPLY with status ERROR carrying a `remote_error` (libvirt's field order). */
function errorReply(message: string, str1: string): Uint8Array {
  const w = new XdrWriter(STRING_MAX + 1024);
  w.int(VIR_ERR.INTERNAL_ERROR)
    .int(VIR_FROM.QEMU)
    .optString(message)
    .int(2)
    .int(0) // dom: absent
    .optString(str1)
    .optString(null)
    .optString(null)
    .int(-1)
    .int(-1)
    .int(0); // net: absent
  return encodePacket(
    {
      program: PROGRAM.REMOTE,
      version: PROTOCOL_VERSION,
      procedure: 1,
      type: MESSAGE_TYPE.REPLY,
      serial: 7,
      status: MESSAGE_STATUS.ERROR,
    },
    w.bytes(),
  );
}

describe('libvirt error replies', () => {
  it('turn a 4 MiB message full of ANSI escapes and CR/LF into a bounded, printable HvkitError', () => {
    const unit = '\u001b[2J\u001b[31mboom\u001b[0m\r\nFAKE LOG LINE\u0007 ';
    const message = `internal error: ${unit.repeat(Math.floor((STRING_MAX - 32) / unit.length))}`;
    expect(Buffer.byteLength(message)).toBeLessThanOrEqual(STRING_MAX);
    const packet = errorReply(message, 'x'.repeat(STRING_MAX));

    const started = performance.now();
    const [frame] = new PacketFramer().push(packet);
    const { header, payload } = decodeFrame(frame as Uint8Array);
    expect(header.status).toBe(MESSAGE_STATUS.ERROR);
    const r = new XdrReader(payload);
    const remote = readRemoteError(r);
    r.finish('remote_error');
    expect(remote.message).toBe(message);
    const error = libvirtErrorToHvkitError(remote, { operation: 'rpc.DOMAIN_LOOKUP_BY_NAME' });
    const elapsedMs = performance.now() - started;

    expect(error.code).toBe('REMOTE');
    for (const text of [error.message, error.backendMessage as string]) {
      expect(text.length).toBeLessThanOrEqual(MAX_MESSAGE_LENGTH);
      expect(text.startsWith('internal error: boom FAKE LOG LINE boom FAKE LOG LINE')).toBe(true);
      expect(text).toMatch(/…\[truncated, \d+ more characters\]$/);
      for (const control of ['\u001b', '\r', '\n', '\u0007']) expect(text).not.toContain(control);
    }
    expect(String(error.details?.str1).length).toBeLessThanOrEqual(MAX_DETAIL_LENGTH);
    expect(JSON.stringify(error).length).toBeLessThan(3 * MAX_MESSAGE_LENGTH + MAX_DETAIL_LENGTH + 1000);
    // Decoding and mapping 8 MiB of error text stays cheap (the whole test takes about 50 ms here).
    expect(elapsedMs).toBeLessThan(2000);
  });
});
