/**
 * labels.set on a real QEMU driver (peer: libvirtd, scripts/peers/start libvirtd): the peer's stopped guest
 * `hvkit-guest2` (defined with a static DAC label, never started) gets another static label, then a
 * dynamic one, each checked with `virsh dumpxml --inactive`; the running guest refuses with CONFLICT and
 * keeps its definition. The original label is put back.
 */

import { execFileSync } from 'node:child_process';
import { livePeer } from '@hvkit/conformance';
import { HvkitError, type SecurityLabel } from '@hvkit/core';
import { afterAll, describe, expect, it } from 'vitest';
import { connect } from '../connect';

const peer = livePeer('libvirtd', [
  'HVKIT_LIBVIRT_QEMU_URI',
  'HVKIT_LIBVIRT_GUEST',
  'HVKIT_LIBVIRT_STOPPED_GUEST',
]);

function inactiveXml(uri: string, guest: string): string {
  return execFileSync('virsh', ['-c', uri, 'dumpxml', '--inactive', '--security-info', guest], {
    encoding: 'utf8',
    timeout: 15_000,
  });
}

describe.skipIf(!peer.available)(
  `labels.set on QEMU${peer.available ? '' : ` (skipped: ${peer.reason})`}`,
  () => {
    const env = peer.available ? peer.env : ({} as Record<string, string>);
    const uri = env.HVKIT_LIBVIRT_QEMU_URI as string;
    const stopped = env.HVKIT_LIBVIRT_STOPPED_GUEST as string;
    const original = peer.available ? inactiveXml(uri, stopped) : '';

    afterAll(() => {
      if (!peer.available) return;
      // Put the peer's definition back whatever happened (virsh define of the XML read before).
      const file = `/tmp/hvkit-labels-restore-${process.pid}.xml`;
      execFileSync('sh', ['-c', 'cat > "$1"', 'sh', file], { input: original });
      execFileSync('virsh', ['-c', uri, 'define', file], { timeout: 15_000 });
      execFileSync('rm', ['-f', file]);
    });

    it('sets a static DAC label, then a dynamic one, on the stopped guest; libvirt stores each', async () => {
      await using hv = await connect({ uri });
      const labels = hv.labels!;
      const before = await labels.get({ name: stopped });
      expect(before).toContainEqual(
        expect.objectContaining({ model: 'dac', type: 'static', label: '+0:+0', source: 'config' }),
      );

      const staticLabel: SecurityLabel = { model: 'dac', type: 'static', label: '+107:+107', relabel: false };
      const afterStatic = await labels.set!({ name: stopped }, staticLabel);
      expect(afterStatic).toContainEqual(
        expect.objectContaining({ model: 'dac', type: 'static', label: '+107:+107', source: 'config' }),
      );
      const xml = inactiveXml(uri, stopped);
      expect(xml).toMatch(/<seclabel type='static' model='dac' relabel='no'>\s*<label>\+107:\+107<\/label>/);

      const afterDynamic = await labels.set!(
        { name: stopped },
        { model: 'dac', type: 'dynamic', relabel: true },
      );
      expect(afterDynamic).toContainEqual(expect.objectContaining({ model: 'dac', type: 'dynamic' }));
      const dynXml = inactiveXml(uri, stopped);
      expect(dynXml).toMatch(/<seclabel type='dynamic' model='dac' relabel='yes'/);
      expect(dynXml).not.toContain('+107:+107');
    });

    it('reports enforcing only for models that have such a state (not DAC or none), live and on the host', async () => {
      await using hv = await connect({ uri });
      const running = env.HVKIT_LIBVIRT_GUEST as string;
      const labels = await hv.labels!.get({ name: running });
      const live = labels.filter((l) => l.source === 'live');
      // The peer host runs libvirt's none and dac drivers (no SELinux or AppArmor).
      expect(live.map((l) => l.model).sort()).toEqual(['dac', 'none']);
      for (const label of live) expect(label, label.model).not.toHaveProperty('enforcing');
      const models = await hv.labels!.hostModels!();
      expect(models.map((m) => m.model).sort()).toEqual(['dac', 'none']);
      for (const model of models) expect(model, model.model).not.toHaveProperty('enforcing');
    });

    it('refuses to set a label on the running guest with CONFLICT and leaves its definition alone', async () => {
      await using hv = await connect({ uri });
      const running = env.HVKIT_LIBVIRT_GUEST as string;
      const before = inactiveXml(uri, running);
      let refused: unknown;
      try {
        await hv.labels!.set!({ name: running }, { model: 'dac', type: 'static', label: '+107:+107' });
      } catch (error) {
        refused = error;
      }
      expect(HvkitError.isInstance(refused, 'CONFLICT')).toBe(true);
      expect(inactiveXml(uri, running)).toBe(before);
    });
  },
);
