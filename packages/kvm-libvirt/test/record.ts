/**
 * Records the replay fixtures of @hvkit/kvm-libvirt: runs the conformance suite (mode `replay`, so the
 * calls are exactly those a replay makes; no probe) against the libvirtd peer with every connection going
 * through `recordingDialer` (libvirt framing: 4-byte big-endian length that counts itself), normalises the
 * transcripts and writes test/fixtures/libvirt-test-driver and test/fixtures/libvirt-qemu-guest.
 *
 *   node --conditions=@hvkit/source --import tsx packages/kvm-libvirt/test/record.ts [test|qemu]
 *
 * Needs the libvirtd peer (scripts/peers/start libvirtd) and root (the daemon's read-write socket).
 */

import { execFileSync } from 'node:child_process';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatConformanceReport, runConformanceReport } from '@hvkit/conformance';
import {
  createSocketTranscript,
  defaultRules,
  fixtureMetadata,
  lengthPrefixedFramer,
  normalise,
  normaliserId,
  recordingDialer,
  type SocketTranscript,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import { unixSocketDialer } from '@hvkit/core';
import {
  fixtureFactory,
  type LibvirtFixtureTarget,
  QEMU_GUEST_TARGET,
  TEST_DRIVER_TARGET,
} from './replay-options';

const here = dirname(fileURLToPath(import.meta.url));
const SOCKET = '/var/run/libvirt/libvirt-sock';

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
  transcript.target = `unix:${SOCKET}`;
  return transcript;
}

async function record(t: LibvirtFixtureTarget, driver: string, uri: string): Promise<void> {
  if (t.folder === 'libvirt-qemu-guest') cleanGuest(t.target.name);
  const extra: Record<string, unknown> = {};
  if (t.folder === 'libvirt-test-driver') extra['demo-transcript.json'] = await recordDemo(t.openUri);
  const transcript = createSocketTranscript();
  const dialer = recordingDialer(unixSocketDialer(SOCKET), transcript, {
    framer: lengthPrefixedFramer({ lengthBytes: 4, includesHeader: true }),
  });
  let report: Awaited<ReturnType<typeof runConformanceReport>>;
  try {
    report = await runConformanceReport({
      name: `kvm-libvirt (${t.folder}, recording)`,
      mode: 'replay',
      factory: fixtureFactory(dialer, t.openUri),
      target: t.target,
      skip: t.skip,
      testTimeoutMs: 180_000,
    });
  } finally {
    if (t.folder === 'libvirt-qemu-guest') cleanGuest(t.target.name);
  }
  console.log(formatConformanceReport(report));
  if (report.failed > 0)
    throw new Error(`${report.failed} checks failed while recording ${t.folder}; nothing written`);
  transcript.target = `unix:${SOCKET}`;
  const rules = defaultRules({ timestamps: false });
  const dir = join(here, 'fixtures', t.folder);
  await writeFixture(
    dir,
    {
      metadata: fixtureMetadata({
        recordedFrom: { server: `libvirtd (${driver} driver)`, version: libvirtdVersion(), uri },
        normalisedWith: normaliserId(rules),
        notes:
          `The conformance suite (mode replay: no probe, mutations on) run against the libvirtd peer's ${uri} ` +
          `(target ${t.target.name}) through recordingDialer over ${SOCKET}, keepalive off, deterministic backup ` +
          'names. Re-record with: node --conditions=@hvkit/source --import tsx packages/kvm-libvirt/test/record.ts',
      }),
      files: {
        'transcript.json': normalise(transcript, rules),
        ...Object.fromEntries(Object.entries(extra).map(([k, v]) => [k, normalise(v, rules)])),
      },
    },
    { clean: true },
  );
  console.log(`wrote ${dir} (${transcript.connections.length} connections)`);
}

const which = process.argv[2];
if (which === undefined || which === 'test')
  await record(TEST_DRIVER_TARGET, 'test', 'test+unix:///work/main/.peers/libvirtd/test-node.xml');
if (which === undefined || which === 'qemu') await record(QEMU_GUEST_TARGET, 'QEMU', 'qemu:///system');
