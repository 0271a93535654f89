/**
 * Applies one limits policy to every running guest: CPU weight 200 (512 in XAPI's units) and a cap of
 * two CPUs, both effective at the guest's next start; prints when each change takes effect.
 *
 *   npm run apply-limits -w @hvkit-examples/xen
 */

import { open } from './connect';

const { hv, close } = await open();
try {
  for (const guest of await hv.inventory.listGuests()) {
    if (guest.powerState !== 'running') continue;
    const result = await hv.limits.set(guest.id, { cpu: { weight: 200, maxCores: 2 } });
    console.log(
      `${guest.name}: weight ${result.limits.cpu?.weight}, maxCores ${result.limits.cpu?.maxCores} (applies: ${result.appliesAt})`,
    );
    for (const w of result.warnings) console.log(`  warning: ${w.message}`);
  }
} finally {
  await close();
}
