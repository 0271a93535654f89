/**
 * Prints the host's cgroup mode, where each controller lives, and every guest group with its processes,
 * CPU time, memory in use and limits.
 *
 *   npm start -w @hvkit-examples/cgroups-inventory [-- <extra group path>...]
 */

import { type CgroupGuest, connect } from '@hvkit/cgroups';

await using hv = await connect({ extraGroups: process.argv.slice(2) });
console.log(`${hv.server.product} (kernel ${hv.server.version})`);
for (const [controller, place] of Object.entries(hv.server.controllers)) {
  console.log(`  ${controller}: v${place.version} at ${place.mountPoint}`);
}
for (const guest of (await hv.inventory.listGuests()) as CgroupGuest[]) {
  const { cgroup } = guest;
  console.log(
    `${guest.name} (${guest.id}, ${cgroup.source}): ${guest.powerState}, ${cgroup.pids.length} processes, ` +
      `cpu ${cgroup.cpuUsageUs ?? '?'} µs, memory ${cgroup.memoryCurrentBytes ?? '?'} bytes`,
  );
  console.log(`  limits: ${JSON.stringify(await hv.limits.get(guest.id))}`);
}
