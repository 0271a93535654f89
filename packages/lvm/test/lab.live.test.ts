/**
 * The lab VM helpers of the live tests (test/lab.ts), in the lab VM (peer lab-vm).
 */

import { describe, expect, it } from 'vitest';
import { connectLab, createTestVg, lab, labTitle, sh } from './lab';

describe.skipIf(!lab.available)(labTitle('lvm lab helpers'), () => {
  it("createTestVg: udev's event autoactivation (what the VM runs after each change of the loop device) leaves a deactivated volume inactive", async () => {
    const ssh = await connectLab();
    try {
      const vg = await createTestVg(ssh, 32);
      try {
        const attr = async () => (await sh(ssh, `lvs --noheadings -o lv_attr ${vg.name}/a`)).trim().charAt(4);
        await sh(ssh, `lvcreate -q -y -L 4M -n a ${vg.name} >/dev/null; lvchange -q -an ${vg.name}/a`);
        expect(await attr()).toBe('-');
        // The command of 69-lvm.rules, run here at once rather than whenever udev gets to it.
        await sh(ssh, `vgchange -q -aay --autoactivation event ${vg.name} >/dev/null`);
        expect(await attr()).toBe('-');
        // Activating by hand still works.
        await sh(ssh, `lvchange -q -ay ${vg.name}/a`);
        expect(await attr()).toBe('a');
      } finally {
        await vg.remove();
      }
    } finally {
      await ssh.close();
    }
  });
});
