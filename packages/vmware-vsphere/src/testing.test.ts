/**
 * Does exactly what docs/adapters/vmware-vsphere.md ("Testing your code against recorded vSphere") shows a
 * user: a shipped cassette served by msw handlers in the user's own `setupServer`, the adapter connected
 * with the cassette's options and nothing injected.
 */
import { cassetteHandlers } from '@hvkit/conformance/fixtures';
import { setupServer } from 'msw/node';
import { describe, expect, it } from 'vitest';
import { connect } from './index';
import { VCSIM_REPLAY_URL, vcsimCassette } from './testing';

describe('@hvkit/vmware-vsphere/testing', () => {
  it('the documented msw example lists the recorded guests with nothing injected', async () => {
    const { cassette, connectOptions } = await vcsimCassette('vpx');
    // per-request: your code makes a subset of the recorded calls, in its own order
    const replay = cassetteHandlers(cassette, { order: 'per-request' });
    const server = setupServer(...replay.handlers);
    server.listen({ onUnhandledRequest: 'error' });
    try {
      const vsphere = await connect(connectOptions);
      const guests = await vsphere.inventory.listGuests();
      expect(guests.map((g) => g.name)).toEqual(['DC0_C0_RP0_VM0', 'DC0_C1_RP0_VM0', 'hvkit-diskless']);
      await vsphere.close();
    } finally {
      server.close();
    }
    // Every request was answered from the cassette (none reached the network).
    expect(replay.unhandled).toEqual([]);
    expect(replay.requests.length).toBeGreaterThan(3);
    expect(
      replay.requests.every((r) => r.matched !== null && r.url.startsWith('http://vcsim.invalid/')),
    ).toBe(true);
  });

  it('ships both models with their recording metadata and refuses other names', async () => {
    const esx = await vcsimCassette('esx');
    expect(esx.connectOptions).toMatchObject({
      url: VCSIM_REPLAY_URL,
      insecureHttp: true,
      username: 'tester',
    });
    expect(esx.recordedFrom.server).toBe('govmomi vcsim');
    expect(esx.cassette.format).toBe('hvkit.http-cassette');
    expect(esx.cassette.interactions.length).toBeGreaterThan(100);
    expect(esx.cassette.interactions.every((i) => i.request.url.startsWith('http://vcsim.invalid/'))).toBe(
      true,
    );
    await expect(vcsimCassette('vc' as 'vpx')).rejects.toThrow(TypeError);
  });
});
