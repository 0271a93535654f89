/**
 * Records the replay fixtures of @hvkit/vmware-vsphere: runs the conformance suite against fresh private
 * vcsim instances (vCenter model and ESX model) with every adapter request going through `recordingFetch`,
 * normalises the cassettes and writes them to test/fixtures/vcsim-vpx and vcsim-esx (which
 * `@hvkit/vmware-vsphere/testing` ships). The recipe of docs/fixtures.md:
 *
 * - the suite runs in mode `replay` with no probe, so the recorded calls are the replay's calls in the
 *   replay's order (the live test, src/conformance.live.test.ts, runs the probe checks against vcsim);
 * - the vcsim instances are private and started here, prepared the same way every time;
 * - run-specific values are normalised: the simulator's `127.0.0.1:<port>` becomes `vcsim.invalid`
 *   (VCSIM_REPLAY_URL), session ids, passwords and dates are pinned by the default rules, uuids numbered,
 *   backup/restore run ids and lease owners pinned (`vcsimRunIdRule`, which the replay applies too).
 *   Re-recording an unchanged vcsim gives identical files apart from `recordedAt` in fixture.json.
 *
 *   node --conditions=@hvkit/source --import tsx packages/vmware-vsphere/test/record.ts
 *
 * Needs the vcsim peer's launcher (HVKIT_VCSIM_BIN, from .peers/env or the environment).
 */

import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatConformanceReport, runConformanceReport } from '@hvkit/conformance';
import {
  createHttpCassette,
  defaultRules,
  fixtureMetadata,
  type HttpCassette,
  type IdMapRule,
  idMaps,
  normalise,
  normaliserId,
  recordingFetch,
  type TextRule,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import { connect } from '../src/index';
import { VCSIM_REPLAY_URL } from '../src/testing';
import { addDisklessVm, DISKLESS_VM, startPreparedVcsim } from './probe';
import { REPLAY_SKIPS, vcsimRunIdRule } from './replay-options';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..', '..', '..');

function launcher(): string {
  if (process.env.HVKIT_VCSIM_BIN) return process.env.HVKIT_VCSIM_BIN;
  const envFile = join(root, '.peers', 'env');
  if (existsSync(envFile)) {
    const m = /^HVKIT_VCSIM_BIN=(.*)$/m.exec(readFileSync(envFile, 'utf8'));
    if (m?.[1]) return m[1];
  }
  throw new Error('HVKIT_VCSIM_BIN is not set and .peers/env has no vcsim block (run scripts/peers/start).');
}

function govmomiVersion(): string {
  try {
    // `dpkg-query -W` prints "name<TAB>version".
    const line = execFileSync('dpkg-query', ['-W', 'golang-github-vmware-govmomi-dev'], { encoding: 'utf8' });
    return line.trim().split('\t')[1] ?? 'unknown';
  } catch {
    return 'unknown';
  }
}

/**
 * Values of one vcsim run that are not the server's data: its address (a free port) becomes the replay
 * URL's host; the datastore's size and free space are those of the recording machine's /tmp.
 */
function vcsimRunValues(recordedHost: string): TextRule {
  const replayHost = new URL(VCSIM_REPLAY_URL).host;
  return (text) =>
    text
      .split(recordedHost)
      .join(replayHost)
      .replace(/<capacity>\d+<\/capacity>/g, '<capacity>1099511627776</capacity>')
      .replace(/<freeSpace>\d+<\/freeSpace>/g, '<freeSpace>549755813888</freeSpace>');
}

/**
 * Ids vcsim draws at random each run, numbered in order of first appearance: its datastores live in a
 * fresh temporary directory with a random suffix (`/tmp/hvkit-vcsim-test-XXXXXX/govcsim-DC0-LocalDS_0-<n>`,
 * which is also the datastore's id), and CD-ROM backings are named after a Go pointer (`cdrom--201-<n>`).
 */
const VCSIM_RUN_IDS: IdMapRule[] = [
  {
    name: 'vcsim-datastore',
    pattern: /\/tmp\/hvkit-vcsim-test-[A-Za-z0-9]+\/(govcsim-[A-Za-z0-9_.-]+?)-(\d{5,})(?!\d)/g,
    replace: (i, m) => `/tmp/hvkit-vcsim/${m[1]}-${i + 1}`,
  },
  {
    name: 'vcsim-cdrom',
    pattern: /\b(cdrom--\d+)-(\d{6,})(?!\d)/g,
    replace: (i, m) => `${m[1]}-${i + 1}`,
  },
];

/**
 * The platform fetch for `recordingFetch`, which buffers request bodies and forwards them with the
 * request's headers: a `Content-Length` the adapter stated for its streamed upload body (datastore `PUT`s)
 * is dropped, since fetch refuses a stated length beside a buffered body and states it itself.
 */
const withoutStatedLength: typeof globalThis.fetch = (input, init) => {
  if (!init?.headers || init.body === undefined || init.body === null) return globalThis.fetch(input, init);
  const headers = new Headers(init.headers);
  headers.delete('content-length');
  return globalThis.fetch(input, { ...init, headers });
};

/** The connect options of a recording: the simulator's address and user, every request recorded. */
function recordingOptions(sim: { url: string; username: string; password: string }, cassette: HttpCassette) {
  return {
    url: sim.url,
    insecureHttp: true as const,
    username: sim.username,
    password: sim.password,
    fetch: recordingFetch(withoutStatedLength, cassette),
  };
}

/**
 * The demo's calls (examples/demo): host, guests, then limits and labels of each guest in turn, on one
 * connection, closed at the end. Recorded separately so `npm run demo` replays it with every interaction used.
 */
async function recordDemo(sim: { url: string; username: string; password: string }): Promise<HttpCassette> {
  const cassette = createHttpCassette();
  const adapter = await connect(recordingOptions(sim, cassette));
  try {
    await adapter.inventory.host();
    for (const g of await adapter.inventory.listGuests()) {
      await adapter.limits.get(g.id);
      await adapter.labels.get(g.id);
    }
  } finally {
    await adapter.close();
  }
  return cassette;
}

async function record(model: 'vpx' | 'esx'): Promise<void> {
  const sim = await startPreparedVcsim(launcher(), model);
  const cassette = createHttpCassette();
  try {
    const demo = model === 'vpx' ? await recordDemo(sim) : undefined;
    // After the demo (whose cassette lists the prepared VMs only): a disk-less VM for backups.diskless.
    await addDisklessVm(sim);
    // Mode replay, no probe: exactly the calls the replay test makes, in its order.
    const report = await runConformanceReport({
      name: `vmware-vsphere (vcsim ${model}, recording)`,
      mode: 'replay',
      factory: () => connect(recordingOptions(sim, cassette)),
      disklessGuest: { name: DISKLESS_VM },
      skip: REPLAY_SKIPS,
    });
    console.log(formatConformanceReport(report));
    if (report.failed > 0)
      throw new Error(`${report.failed} checks failed while recording ${model}; nothing written`);
    const rules = defaultRules({
      ids: [idMaps.uuid(), ...VCSIM_RUN_IDS],
      knownSecrets: [sim.password],
      text: [vcsimRunValues(new URL(sim.url).host), vcsimRunIdRule],
    });
    const dir = join(here, 'fixtures', `vcsim-${model}`);
    const files: Record<string, unknown> = { 'cassette.json': normalise(cassette, rules) };
    if (demo) files['demo-cassette.json'] = normalise(demo, rules);
    await writeFixture(
      dir,
      {
        metadata: fixtureMetadata({
          recordedFrom: { server: 'govmomi vcsim', version: govmomiVersion() },
          normalisedWith: normaliserId(rules),
          notes:
            `The conformance suite (mode replay: no probe, mutations on) run against a private vcsim -model ${model} ` +
            `(recorded at http://127.0.0.1:PORT/sdk, normalised to ${VCSIM_REPLAY_URL}) whose flat VMDKs were filled with 64 KiB of known data and whose ` +
            `last VM was powered off, then (after the demo) a disk-less VM ${DISKLESS_VM} was added${demo ? '; demo-cassette.json holds the calls of examples/demo' : ''}. ` +
            'Re-record with: node --conditions=@hvkit/source --import tsx packages/vmware-vsphere/test/record.ts',
        }),
        files,
      },
      { clean: true, knownSecrets: [sim.password] },
    );
    console.log(`wrote ${dir} (${cassette.interactions.length} interactions)`);
  } finally {
    await sim.stop();
  }
}

const only = process.argv[2];
if (only !== undefined && only !== 'vpx' && only !== 'esx') throw new Error('usage: record.ts [vpx|esx]');
for (const model of ['vpx', 'esx'] as const) if (only === undefined || only === model) await record(model);
