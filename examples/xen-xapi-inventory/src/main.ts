/**
 * Prints what the xen-xapi server is, what the adapter supports, and its guests when it lists them.
 *
 *   npm start -w @hvkit-examples/xen-xapi-inventory
 */

import { hasCapability } from '@hvkit/core';
import { connect } from '@hvkit/xen-xapi';

const url = process.env.HVKIT_XEN_XAPI_URL;
if (!url) throw new Error('set HVKIT_XEN_XAPI_URL (and HVKIT_XEN_XAPI_TOKEN) to the server to read');
const token = process.env.HVKIT_XEN_XAPI_TOKEN;
await using hv = await connect({
  url,
  ...(token ? { token } : {}),
  insecureHttp: process.env.HVKIT_XEN_XAPI_INSECURE_HTTP === '1',
});
console.log(`${hv.server.product} ${hv.server.version}`);
console.log(JSON.stringify(hv.supports, null, 2));
if (hasCapability(hv, 'inventory')) {
  for (const guest of await hv.inventory.listGuests()) console.log(guest.name, guest.powerState);
} else {
  console.log('inventory: not supported yet (supports.inventory is false)');
}
