/**
 * The demo's Xen section (examples/demo, `npm run demo`) replays test/fixtures/xapi-sim-demo, recorded by
 * test/record-demo.ts. This replays the same calls in the same order, so a change in the calls the adapter
 * makes for host, guests, limits or labels fails here (re-record then) rather than only in the demo.
 */

import { join } from 'node:path';
import { cassetteHandlers, type HttpCassette, readFixture } from '@hvkit/conformance/fixtures';
import { setupServer } from 'msw/node';
import { afterAll, describe, expect, it } from 'vitest';
import { REPLAY_ORIGIN, REPLAY_USERNAME } from '../test/replay-options';
import { connect } from './connect';

const fixture = await readFixture(join(import.meta.dirname, '..', 'test', 'fixtures', 'xapi-sim-demo'));
const replay = cassetteHandlers((await fixture.readJson('demo-cassette.json')) as HttpCassette);
const server = setupServer(...replay.handlers);
server.listen({ onUnhandledRequest: 'error' });
afterAll(() => server.close());

describe('the demo fixture (xapi-sim-demo)', () => {
  it('replays host, guests, then limits and labels of each guest, every interaction used', async () => {
    const adapter = await connect({
      url: REPLAY_ORIGIN,
      username: REPLAY_USERNAME,
      password: 'not-recorded',
      insecureHttp: true,
      transport: 'json-rpc',
      fetch: (input, init) => globalThis.fetch(input, init),
    });
    try {
      expect((await adapter.inventory.host()).name).toBe('xen-sim-1');
      const guests = await adapter.inventory.listGuests();
      expect(guests.map((g) => [g.name, g.powerState])).toEqual([
        ['hvkit-xen-vm1', 'running'],
        ['hvkit-xen-vm2', 'stopped'],
      ]);
      const vm1 = [
        await adapter.limits.get(guests[0]?.id ?? ''),
        await adapter.labels.get(guests[0]?.id ?? ''),
      ];
      expect(vm1[0]).toMatchObject({ cpu: { weight: 200 }, memory: { maxBytes: 2147483648 } });
      expect(vm1[1]).toEqual(
        expect.arrayContaining([expect.objectContaining({ model: 'tag', source: 'config' })]),
      );
      await adapter.limits.get(guests[1]?.id ?? '');
      await adapter.labels.get(guests[1]?.id ?? '');
    } finally {
      await adapter.close();
    }
    replay.done();
  });
});
