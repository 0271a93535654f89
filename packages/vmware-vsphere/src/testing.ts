/**
 * `@hvkit/vmware-vsphere/testing`: the HTTP cassettes hvkit recorded from govmomi's vcsim (the vCenter
 * and the ESX model), for testing your own code against a recorded vSphere with msw.
 *
 * Each cassette is the hvkit conformance suite run against a private vcsim (`fixture.json` in the same
 * folder says how), normalised: secrets and session ids removed, dates pinned, and the server's address
 * replaced by {@link VCSIM_REPLAY_URL}. Serve one with `cassetteHandlers` from
 * `@hvkit/conformance/fixtures` in your own msw `setupServer`, and connect with
 * {@link VcsimCassette.connectOptions}: plain-http requests go through the global `fetch`, which msw
 * intercepts, so nothing is injected into the adapter.
 *
 * @example
 * const { cassette, connectOptions } = await vcsimCassette('vpx');
 * const replay = cassetteHandlers(cassette, { order: 'per-request' });
 * const server = setupServer(...replay.handlers);
 * server.listen({ onUnhandledRequest: 'error' });
 * const adapter = await connect(connectOptions);
 * @packageDocumentation
 */

import { readFile } from 'node:fs/promises';

/** The URL every shipped cassette was recorded at (after normalisation); `.invalid` never resolves. */
export const VCSIM_REPLAY_URL = 'http://vcsim.invalid/sdk';

/** The vcsim models hvkit recorded: `vpx` (vCenter: 2 clusters, tags over vAPI REST) and `esx` (one host). */
export type VcsimModel = 'vpx' | 'esx';

/** Header values by lower-case name, as recorded (`set-cookie` as an array). */
export type VcsimRecordedHeaders = Record<string, string | string[]>;

/**
 * A recorded HTTP cassette (`hvkit.http-cassette` version 1), the shape `cassetteHandlers` and
 * `createReplayServer` of `@hvkit/conformance/fixtures` take.
 */
export interface VcsimRecordedCassette {
  format: 'hvkit.http-cassette';
  version: 1;
  interactions: Array<{
    request: {
      method: string;
      url: string;
      headers: VcsimRecordedHeaders;
      body?: string;
      bodyEncoding?: 'base64';
    };
    response?: {
      status: number;
      statusText?: string;
      headers: VcsimRecordedHeaders;
      body?: string;
      bodyEncoding?: 'base64';
    };
  }>;
}

/** A shipped cassette and how to connect to it. */
export interface VcsimCassette {
  model: VcsimModel;
  /** The parsed cassette. */
  cassette: VcsimRecordedCassette;
  /**
   * `connect` options that replay against the cassette: {@link VCSIM_REPLAY_URL} with the named
   * plain-http opt-out, and the recorded user (the password was removed from the recording; any
   * non-empty one matches).
   */
  connectOptions: { url: string; insecureHttp: true; username: string; password: string };
  /** What it was recorded from (`fixture.json`): server, version, date and notes. */
  recordedFrom: { server: string; version: string };
  recordedAt: string;
  notes?: string;
}

/** The user the recordings logged in as. */
const RECORDED_USER = 'tester';

function fixtureFile(model: VcsimModel, name: string): URL {
  // The same relative place from src/ (sources) and dist/ (the published build).
  return new URL(`../test/fixtures/vcsim-${model}/${name}`, import.meta.url);
}

/**
 * Reads a shipped vcsim cassette (a few megabytes of JSON) with its connect options.
 *
 * @throws TypeError for a model other than `'vpx'` or `'esx'`.
 */
export async function vcsimCassette(
  model: VcsimModel,
  options: { signal?: AbortSignal } = {},
): Promise<VcsimCassette> {
  if (model !== 'vpx' && model !== 'esx')
    throw new TypeError(`vcsimCassette: model must be 'vpx' or 'esx', got ${String(model).slice(0, 50)}`);
  const [cassetteText, metadataText] = await Promise.all([
    readFile(fixtureFile(model, 'cassette.json'), { encoding: 'utf8', signal: options.signal }),
    readFile(fixtureFile(model, 'fixture.json'), { encoding: 'utf8', signal: options.signal }),
  ]);
  const metadata = JSON.parse(metadataText) as {
    recordedFrom: { server: string; version: string };
    recordedAt: string;
    notes?: string;
  };
  const out: VcsimCassette = {
    model,
    cassette: JSON.parse(cassetteText) as VcsimRecordedCassette,
    connectOptions: {
      url: VCSIM_REPLAY_URL,
      insecureHttp: true,
      username: RECORDED_USER,
      password: 'recorded-password-removed',
    },
    recordedFrom: metadata.recordedFrom,
    recordedAt: metadata.recordedAt,
  };
  if (metadata.notes !== undefined) out.notes = metadata.notes;
  return out;
}
