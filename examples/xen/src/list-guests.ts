/**
 * Lists the pool's guests (templates, snapshots and control domains left out) with their limits and
 * security-domain tags.
 *
 *   npm run list -w @hvkit-examples/xen
 */

import { open } from './connect';

const { hv, close } = await open();
try {
  console.log(
    `${hv.server.product} ${hv.server.version} (XAPI ${hv.server.apiVersion}, ${hv.server.transport})`,
  );
  for (const guest of await hv.inventory.listGuests()) {
    const limits = await hv.limits.get(guest.id);
    const [label] = await hv.labels.get(guest.id);
    const tags = (label?.tags ?? []).map((t) => (t.category ? `${t.category}=${t.name}` : t.name)).join(', ');
    console.log(
      `${guest.name} (${guest.powerState}, ${guest.vcpus} vCPU, ${guest.memoryBytes / 2 ** 20} MiB)`,
      `weight=${limits.cpu?.weight ?? 'default'} maxCores=${limits.cpu?.maxCores ?? 'none'}`,
      `nics=${guest.nics.map((n) => `${n.device}${n.vlan !== undefined ? `@vlan${n.vlan}` : ''}`).join(',')}`,
      `tags=[${tags}]`,
    );
  }
} finally {
  await close();
}
