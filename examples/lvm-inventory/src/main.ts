/**
 * Prints what the lvm server is, what the adapter supports, and its guests when it lists them.
 *
 *   npm start -w @hvkit-examples/lvm-inventory
 */

import { hasCapability } from '@hvkit/core';
import { connect } from '@hvkit/lvm';

await using hv = await connect({});
console.log(`${hv.server.product} ${hv.server.version}`);
console.log(JSON.stringify(hv.supports, null, 2));
if (hasCapability(hv, 'inventory')) {
  for (const guest of await hv.inventory.listGuests()) console.log(guest.name, guest.powerState);
} else {
  console.log('inventory: not supported yet (supports.inventory is false)');
}
