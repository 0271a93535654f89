/**
 * Records the replay fixtures of @hvkit/kvm-libvirt: runs the conformance suite (mode `replay`, so the
 * calls are exactly those a replay makes; no probe) against the libvirtd peer with every connection going
 * through `recordingDialer` (libvirt framing: 4-byte big-endian length that counts itself), normalises the
 * transcripts and writes test/fixtures/libvirt-test-driver and test/fixtures/libvirt-qemu-guest.
 *
 *   node --conditions=@hvkit/source --import tsx packages/kvm-libvirt/test/record.ts [test|qemu]
 *
 * Needs the libvirtd peer (scripts/peers/start libvirtd) and root (the daemon's read-write socket).
 *
 * Re-recording an unchanged peer gives the same files apart from `recordedAt` (docs/fixtures.md, the
 * recipe): each connection's frames are stored in a canonical order (a reply right after its call, whatever
 * the timing; `canonicalSocketOrder` with the libvirt serial), the test driver's node XML is opened under a
 * stand-in path ({@link TEST_NODE_REPLAY_URI}), and snapshot and checkpoint creation times are pinned.
 * One thing is not pinned: libvirtd seeds its hash tables per process, so after a daemon restart the test
 * driver lists its domains in another order, and the calls that follow the list change order with it.
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatConformanceReport, runConformanceReport } from '@hvkit/conformance';
import {
  canonicalSocketOrder,
  createSocketTranscript,
  defaultRules,
  type FrameCorrelator,
  fixtureMetadata,
  lengthPrefixedFramer,
  normalise,
  normaliserId,
  recordingDialer,
  type SocketTranscript,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import { unixSocketDialer } from '@hvkit/core';
import { MESSAGE_TYPE, PROGRAM } from '../src/protocol/constants';
import {
  fixtureFactory,
  type LibvirtFixtureTarget,
  QEMU_GUEST_TARGET,
  TEST_DRIVER_TARGET,
  TEST_NODE_REPLAY_URI,
} from './replay-options';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');
const SOCKET = '/var/run/libvirt/libvirt-sock';
/** libvirt RPC header: len, prog, vers, proc, type, serial, status (7 big-endian u32). */
const HEADER = 28;
const PROC_CONNECT_OPEN = 1;
/** The serial (header bytes 20 to 23) numbers the client's calls. */
const SERIAL = { offset: 20, length: 4 } as const;

/** The peer's test-driver node XML (`HVKIT_LIBVIRT_TEST_NODE_XML`, from the environment or .peers/env). */
function testNodeXml(): string {
  if (process.env.HVKIT_LIBVIRT_TEST_NODE_XML) return process.env.HVKIT_LIBVIRT_TEST_NODE_XML;
  const envFile = join(root, '.peers', 'env');
  if (existsSync(envFile)) {
    const m = /^HVKIT_LIBVIRT_TEST_NODE_XML=(.*)$/m.exec(readFileSync(envFile, 'utf8'));
    if (m?.[1]) return m[1];
  }
  throw new Error(
    'HVKIT_LIBVIRT_TEST_NODE_XML is not set and .peers/env has no libvirtd block (run scripts/peers/start libvirtd).',
  );
}

/**
 * Pairs libvirt frames by program and serial: a call, its reply and its stream packets share them. Events
 * and keepalives (type MESSAGE) answer no call.
 */
const libvirtCorrelator: FrameCorrelator = (frame) =>
  frame.length < HEADER || frame.readUInt32BE(16) === MESSAGE_TYPE.MESSAGE
    ? undefined
    : `${frame.readUInt32BE(4)}:${frame.readUInt32BE(20)}`;

/** A CONNECT_OPEN call whose URI is `from`, re-encoded with `to` (lengths fixed); other frames unchanged. */
function rewriteOpenUri(frame: Buffer, from: string, to: string): Buffer {
  if (
    frame.length < HEADER + 8 ||
    frame.readUInt32BE(4) !== PROGRAM.REMOTE ||
    frame.readUInt32BE(12) !== PROC_CONNECT_OPEN ||
    frame.readUInt32BE(16) !== MESSAGE_TYPE.CALL ||
    frame.readUInt32BE(HEADER) !== 1
  )
    return frame;
  // remote_connect_open_args: optional string name (present flag, length, bytes, padding), u32 flags.
  const len = frame.readUInt32BE(HEADER + 4);
  const end = HEADER + 8 + len + ((4 - (len % 4)) % 4);
  if (frame.subarray(HEADER + 8, HEADER + 8 + len).toString('utf8') !== from) return frame;
  const uri = Buffer.from(to, 'utf8');
  const name = Buffer.alloc(8 + uri.length + ((4 - (uri.length % 4)) % 4));
  name.writeUInt32BE(1, 0);
  name.writeUInt32BE(uri.length, 4);
  uri.copy(name, 8);
  const out = Buffer.concat([frame.subarray(0, HEADER), name, frame.subarray(end)]);
  out.writeUInt32BE(out.length, 0);
  return out;
}

/** Unix seconds of the pinned instant (2000-01-01T00:00:00Z). */
const PINNED_SECONDS = String(Date.UTC(2000, 0, 1) / 1000);
/** Free space written into pool XML: 100 GiB (or the capacity, when smaller). */
const PINNED_AVAILABLE = 100 * 1024 ** 3;

/**
 * Values of the recording machine and clock in the daemon's XML: snapshot and checkpoint creation times,
 * volume file times, and a pool's allocation and free space (pinned to 100 GiB free, allocation the rest).
 */
function pinXml(xml: string): string {
  let out = xml
    .replace(/<creationTime>\d+<\/creationTime>/g, `<creationTime>${PINNED_SECONDS}</creationTime>`)
    .replace(/<(atime|mtime|ctime|btime)>[\d.]+<\/\1>/g, (_m, tag: string) =>
      tag === 'btime' ? _m : `<${tag}>${PINNED_SECONDS}.000000000</${tag}>`,
    );
  if (out.startsWith('<pool')) {
    const capacity = Number(/<capacity unit='bytes'>(\d+)</.exec(out)?.[1] ?? Number.NaN);
    if (Number.isFinite(capacity)) {
      const available = Math.min(capacity, PINNED_AVAILABLE);
      out = out
        .replace(/(<allocation unit='bytes'>)\d+/, `$1${capacity - available}`)
        .replace(/(<available unit='bytes'>)\d+/, `$1${available}`);
    }
  }
  return out;
}

/** A reply whose body is one XDR string (the *GetXMLDesc calls), re-encoded with `pinXml` applied. */
function pinXmlReply(frame: Buffer): Buffer {
  if (
    frame.length < HEADER + 4 ||
    frame.readUInt32BE(16) !== MESSAGE_TYPE.REPLY ||
    frame.readUInt32BE(24) !== 0
  )
    return frame;
  const len = frame.readUInt32BE(HEADER);
  if (frame.length !== HEADER + 4 + len + ((4 - (len % 4)) % 4)) return frame;
  const xml = frame.subarray(HEADER + 4, HEADER + 4 + len).toString('utf8');
  if (!xml.startsWith('<')) return frame;
  const pinned = pinXml(xml);
  return pinned === xml ? frame : xdrStringReply(frame, pinned);
}

function xdrStringReply(frame: Buffer, text: string): Buffer {
  const body = Buffer.from(text, 'utf8');
  const out = Buffer.alloc(HEADER + 4 + body.length + ((4 - (body.length % 4)) % 4));
  frame.copy(out, 0, 0, HEADER);
  out.writeUInt32BE(out.length, 0);
  out.writeUInt32BE(body.length, HEADER);
  body.copy(out, HEADER + 4);
  return out;
}

/** DOMAIN_GET_JOB_STATS reports `time_elapsed` (ms, a typed ullong parameter): pinned to 0. */
function pinJobTime(frame: Buffer): Buffer {
  const name = Buffer.from('\0\0\0\x0ctime_elapsed\0\0\0\x04', 'latin1');
  const at = frame.indexOf(name);
  if (at < 0 || frame.readUInt32BE(12) !== 298 || at + name.length + 8 > frame.length) return frame;
  const out = Buffer.from(frame);
  out.fill(0, at + name.length, at + name.length + 8);
  return out;
}

/**
 * Event callback ids are a daemon-wide counter: numbered 1, 2, ... in order of first appearance, in the
 * registration reply and in the client's deregistration call alike (same length, so the frame holds).
 */
function callbackIds(): (frame: Buffer, from: 'client' | 'server') => Buffer {
  const ids = new Map<number, number>();
  return (frame, from) => {
    if (frame.length < HEADER + 4 || frame.readUInt32BE(4) !== PROGRAM.REMOTE) return frame;
    const proc = frame.readUInt32BE(12);
    const isReply = from === 'server' && proc === 316 && frame.readUInt32BE(24) === 0;
    const isDeregister = from === 'client' && proc === 317;
    if (!isReply && !isDeregister) return frame;
    const id = frame.readInt32BE(HEADER);
    let stable = ids.get(id);
    if (stable === undefined) {
      stable = ids.size + 1;
      ids.set(id, stable);
    }
    const out = Buffer.from(frame);
    out.writeInt32BE(stable, HEADER);
    return out;
  };
}

/**
 * The normaliser rules: the defaults (secrets; no ISO timestamps pinned, frames are binary) plus a frame
 * rule that writes the stand-in open URI into CONNECT_OPEN calls and pins the recording machine's values
 * (times, free space, job time, event callback ids).
 */
function libvirtRules(realOpenUri: string, replayOpenUri: string) {
  const ids = callbackIds();
  return defaultRules({
    timestamps: false,
    frame: (frame, { from }) =>
      ids(
        from === 'client'
          ? rewriteOpenUri(frame, realOpenUri, replayOpenUri)
          : pinJobTime(pinXmlReply(frame)),
        from,
      ),
  });
}

/** A recorded transcript as it is written: canonical frame order, the serial marked, normalised. */
function finish(transcript: SocketTranscript, rules: ReturnType<typeof libvirtRules>): SocketTranscript {
  const ordered = canonicalSocketOrder(transcript, libvirtCorrelator);
  ordered.target = `unix:${SOCKET}`;
  ordered.sequence = { ...SERIAL };
  return normalise(ordered, rules);
}

function libvirtdVersion(): string {
  try {
    return (
      execFileSync('libvirtd', ['--version'], { encoding: 'utf8' }).trim().split(/\s+/).pop() ?? 'unknown'
    );
  } catch {
    return 'unknown';
  }
}

function cleanGuest(name: string): void {
  for (const kind of ['checkpoint', 'snapshot'] as const) {
    const names = execFileSync('virsh', ['-q', '-c', 'qemu:///system', `${kind}-list`, name, '--name'], {
      encoding: 'utf8',
    })
      .split('\n')
      .map((s) => s.trim())
      .filter((s) => s.startsWith('hvkit-'));
    for (const n of names.reverse())
      execFileSync('virsh', ['-q', '-c', 'qemu:///system', `${kind}-delete`, name, n], { encoding: 'utf8' });
  }
}

/**
 * The demo's calls (examples/demo): host, guests, then limits and labels of each guest in turn, on one
 * connection. Recorded separately so `npm run demo` can replay it with no server.
 */
async function recordDemo(openUri: string): Promise<SocketTranscript> {
  const transcript = createSocketTranscript();
  const dialer = recordingDialer(unixSocketDialer(SOCKET), transcript, {
    framer: lengthPrefixedFramer({ lengthBytes: 4, includesHeader: true }),
  });
  const adapter = await fixtureFactory(dialer, openUri)();
  try {
    await adapter.inventory?.host();
    const guests = (await adapter.inventory?.listGuests()) ?? [];
    for (const g of guests) {
      await adapter.limits?.get(g.id);
      await adapter.labels?.get(g.id);
    }
  } finally {
    await adapter.close();
  }
  return transcript;
}

/**
 * Records one target: the suite in mode `replay` with the replay's skips, every connection through the
 * recording dialer; `openUri` is the URI really opened (the replay opens `t.openUri`).
 */
async function record(t: LibvirtFixtureTarget, driver: string, openUri: string, uri: string): Promise<void> {
  if (t.folder === 'libvirt-qemu-guest') cleanGuest(t.target.name);
  const rules = libvirtRules(openUri, t.openUri);
  const extra: Record<string, SocketTranscript> = {};
  if (t.folder === 'libvirt-test-driver')
    extra['demo-transcript.json'] = finish(await recordDemo(openUri), rules);
  const transcript = createSocketTranscript();
  const dialer = recordingDialer(unixSocketDialer(SOCKET), transcript, {
    framer: lengthPrefixedFramer({ lengthBytes: 4, includesHeader: true }),
  });
  let report: Awaited<ReturnType<typeof runConformanceReport>>;
  try {
    report = await runConformanceReport({
      name: `kvm-libvirt (${t.folder}, recording)`,
      mode: 'replay',
      factory: fixtureFactory(dialer, openUri),
      target: t.target,
      ...(t.disklessGuest ? { disklessGuest: t.disklessGuest } : {}),
      skip: t.skip,
      testTimeoutMs: 180_000,
    });
  } finally {
    if (t.folder === 'libvirt-qemu-guest') cleanGuest(t.target.name);
  }
  console.log(formatConformanceReport(report));
  if (report.failed > 0)
    throw new Error(`${report.failed} checks failed while recording ${t.folder}; nothing written`);
  const dir = join(here, 'fixtures', t.folder);
  await writeFixture(
    dir,
    {
      metadata: fixtureMetadata({
        recordedFrom: { server: `libvirtd (${driver} driver)`, version: libvirtdVersion(), uri },
        normalisedWith: normaliserId(rules),
        notes:
          `The conformance suite (mode replay: no probe, the replay's skips, mutations on) run against the libvirtd peer's ${uri} ` +
          `(target ${t.target.name}) through recordingDialer over ${SOCKET}, keepalive off, deterministic backup ` +
          'names. Frames in canonical order (replies after their calls); the open URI, if a file path, and ' +
          'snapshot/checkpoint creation times are pinned. ' +
          'Re-record with: node --conditions=@hvkit/source --import tsx packages/kvm-libvirt/test/record.ts',
      }),
      files: { 'transcript.json': finish(transcript, rules), ...extra },
    },
    { clean: true },
  );
  console.log(`wrote ${dir} (${transcript.connections.length} connections)`);
}

const which = process.argv[2];
if (which === undefined || which === 'test') {
  // The peer's node XML is opened from wherever the peers run; the fixture holds the stand-in URI.
  await record(
    TEST_DRIVER_TARGET,
    'test',
    `test://${testNodeXml()}`,
    TEST_NODE_REPLAY_URI.replace(/^test:/, 'test+unix:'),
  );
}
if (which === undefined || which === 'qemu')
  await record(QEMU_GUEST_TARGET, 'QEMU', QEMU_GUEST_TARGET.openUri, 'qemu:///system');
