/**
 * Inventory live against the shared vcsim peer (peer `vcsim`): connect() and listGuests() as the docs
 * write them, over the peer's plain-http URL.
 */

import { describe, expect, it } from 'vitest';
import { env, liveTitle, vcsim } from '../../test/vcsim-peer';
import { connect } from '../connect';

describe.skipIf(!vcsim.available)(liveTitle('inventory'), () => {
  it('connect() + inventory.listGuests() work as written against the plain-http peer URL', async () => {
    const e = env();
    const adapter = await connect({
      url: e.HVKIT_VCSIM_HTTP_URL,
      insecureHttp: true,
      username: e.HVKIT_VCSIM_USER,
      password: e.HVKIT_VCSIM_PASSWORD,
    });
    try {
      const guests = await adapter.inventory!.listGuests();
      expect(guests.length).toBe(Number(e.HVKIT_VCSIM_VMS));
      expect(guests[0]).toMatchObject({
        id: expect.stringMatching(/^vm-\d+$/),
        uuid: expect.stringMatching(/^[0-9a-f-]{36}$/),
      });
    } finally {
      await adapter.close();
    }
  });
});
