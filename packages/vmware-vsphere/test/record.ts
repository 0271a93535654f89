/**
 * Records the replay fixtures of @hvkit/vmware-vsphere: runs the conformance suite live against fresh
 * private vcsim instances (vCenter model and ESX model) with every adapter request going through
 * `recordingFetch`, normalises the cassettes and writes them to test/fixtures/vcsim-vpx and vcsim-esx.
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
  idMaps,
  normalise,
  normaliserId,
  recordingFetch,
  writeFixture,
} from '@hvkit/conformance/fixtures';
import { connect } from '../src/index';
import { startPreparedVcsim, vcsimProbe } from './probe';
import { REPLAY_SKIPS } from './replay-options';

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

async function record(model: 'vpx' | 'esx'): Promise<void> {
  const sim = await startPreparedVcsim(launcher(), model);
  const probe = vcsimProbe({
    url: sim.url,
    insecureHttp: true,
    username: sim.username,
    password: sim.password,
  });
  const cassette = createHttpCassette();
  try {
    const report = await runConformanceReport({
      name: `vmware-vsphere (vcsim ${model}, recording)`,
      mode: 'live',
      factory: () =>
        connect({
          url: sim.url,
          insecureHttp: true,
          username: sim.username,
          password: sim.password,
          fetch: recordingFetch(globalThis.fetch, cassette),
        }),
      // Without listSnapshotIds: the suite then reads snapshot ids through the adapter, exactly as it does
      // in replay (where there is no probe), so the recorded calls are the calls replay makes. The live test
      // (src/adapter.live.test.ts) runs with the full probe.
      probe: {
        guestExists: probe.guestExists,
        getGuestFacts: probe.getGuestFacts,
        getLimits: probe.getLimits,
      },
      skip: REPLAY_SKIPS,
    });
    console.log(formatConformanceReport(report));
    if (report.failed > 0)
      throw new Error(`${report.failed} checks failed while recording ${model}; nothing written`);
    const rules = defaultRules({ ids: [idMaps.uuid()], knownSecrets: [sim.password] });
    const dir = join(here, 'fixtures', `vcsim-${model}`);
    await writeFixture(
      dir,
      {
        metadata: fixtureMetadata({
          recordedFrom: { server: 'govmomi vcsim', version: govmomiVersion() },
          normalisedWith: normaliserId(rules),
          notes:
            `The conformance suite run live (mode live, mutations on) against a private vcsim -model ${model} ` +
            `(${sim.url.replace(/:\d+\//, ':PORT/')}) whose flat VMDKs were filled with 64 KiB of known data and whose ` +
            'last VM was powered off. Re-record with: node --conditions=@hvkit/source --import tsx packages/vmware-vsphere/test/record.ts',
        }),
        files: { 'cassette.json': normalise(cassette, rules) },
      },
      { clean: true, knownSecrets: [sim.password] },
    );
    console.log(`wrote ${dir} (${cassette.interactions.length} interactions)`);
  } finally {
    await probe.close();
    await sim.stop();
  }
}

for (const model of ['vpx', 'esx'] as const) await record(model);
