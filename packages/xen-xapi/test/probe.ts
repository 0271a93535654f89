/**
 * The reference-client probe of the xen-xapi adapter: reads the server WITHOUT the adapter, through Xen
 * Orchestra's own XAPI client (the `xen-api` npm package), so the live conformance suite can tell what an
 * adapter call really did, and an independent client checks the simulator's protocol at the same time.
 */

import { createHash } from 'node:crypto';
import type { ConformanceProbe, ProbeGuest } from '@hvkit/conformance';
import type { PowerState, ResourceLimits } from '@hvkit/core';
import { Xapi } from 'xen-api';

/** A probe for the live tier; `close()` logs its session out. */
export interface XenXapiProbe extends ConformanceProbe {
  close(): Promise<void>;
}

const POWER: Record<string, PowerState> = {
  Running: 'running',
  Halted: 'stopped',
  Paused: 'paused',
  Suspended: 'suspended',
};

/** Opens the probe: one xen-api session (JSON-RPC, events off). */
export async function xenXapiProbe(url: string, user: string, password: string): Promise<XenXapiProbe> {
  const xapi = new Xapi({ url, auth: { user, password }, watchEvents: false, allowUnauthorized: true });
  await xapi.connect();
  const vmRef = async (g: ProbeGuest): Promise<string | undefined> => {
    const uuid = g.uuid ?? g.id;
    if (uuid) return (await xapi.call('VM.get_by_uuid', uuid).catch(() => undefined)) as string | undefined;
    const refs = (await xapi.call('VM.get_by_name_label', g.name)) as string[];
    return refs[0];
  };
  const record = async (g: ProbeGuest) => {
    const ref = await vmRef(g);
    if (!ref) throw new Error(`probe: no VM for ${JSON.stringify(g.ref)}`);
    return { ref, vm: (await xapi.call('VM.get_record', ref)) as Record<string, unknown> };
  };
  return {
    async guestExists(g) {
      return (await vmRef(g)) !== undefined;
    },
    async getGuestFacts(g) {
      const { vm } = await record(g);
      return {
        name: vm.name_label as string,
        uuid: vm.uuid as string,
        vcpus: Number(vm.VCPUs_max),
        memoryBytes: Number(vm.memory_static_max),
        powerState: POWER[vm.power_state as string] ?? 'unknown',
      };
    },
    async getLimits(g) {
      const { vm } = await record(g);
      const params = vm.VCPUs_params as Record<string, string>;
      const nics = [];
      for (const vifRef of vm.VIFs as string[]) {
        const vif = (await xapi.call('VIF.get_record', vifRef)) as Record<string, unknown>;
        const kbps = Number((vif.qos_algorithm_params as Record<string, string>).kbps);
        nics.push({
          device: String(vif.device),
          outboundAverageBytesPerSec: vif.qos_algorithm_type === 'ratelimit' && kbps > 0 ? kbps * 1024 : null,
        });
      }
      const limits: ResourceLimits = {
        cpu: {
          weight: params.weight
            ? Math.min(10000, Math.max(1, Math.floor((Number(params.weight) * 100) / 256 + 0.5)))
            : null,
          maxCores: Number(params.cap) > 0 ? Number(params.cap) / 100 : null,
        },
        memory: {
          maxBytes:
            Number(vm.memory_dynamic_max) === Number(vm.memory_static_max)
              ? null
              : Number(vm.memory_dynamic_max),
          minBytes:
            Number(vm.memory_dynamic_min) === Number(vm.memory_static_min)
              ? null
              : Number(vm.memory_dynamic_min),
        },
        nics,
      };
      return limits;
    },
    /** Power-cycles the guest through xen-api (two power-state events), leaving it as it was. */
    async triggerEvent(g) {
      const { ref, vm } = await record(g);
      if (vm.power_state === 'Running') {
        await xapi.call('VM.hard_shutdown', ref);
        await xapi.call('VM.start', ref, false, false);
      } else {
        await xapi.call('VM.start', ref, false, false);
        await xapi.call('VM.hard_shutdown', ref);
      }
    },
    async listSnapshotIds(g) {
      const { vm } = await record(g);
      const out: string[] = [];
      for (const ref of vm.snapshots as string[]) {
        const snap = (await xapi.call('VM.get_record', ref)) as Record<string, unknown>;
        // hvkit's checkpoints are listed by listCheckpointIds; a running backup's snapshot is a snapshot.
        if (!('hvkit.backup.chain' in (snap.other_config as object))) out.push(String(snap.uuid));
      }
      return out;
    },
    async listCheckpointIds(g) {
      const { vm } = await record(g);
      const out: string[] = [];
      for (const ref of vm.snapshots as string[]) {
        const snap = (await xapi.call('VM.get_record', ref)) as Record<string, unknown>;
        if ('hvkit.backup.chain' in (snap.other_config as object)) out.push(String(snap.uuid));
      }
      return out;
    },
    async diskSha256(g, device) {
      const { vm } = await record(g);
      for (const vbdRef of vm.VBDs as string[]) {
        const vbd = (await xapi.call('VBD.get_record', vbdRef)) as Record<string, unknown>;
        if (vbd.userdevice !== device || vbd.type !== 'Disk') continue;
        const vdi = String(await xapi.call('VDI.get_uuid', vbd.VDI));
        const response = await fetch(
          `${url}/export_raw_vdi?vdi=${vdi}&format=raw&session_id=${encodeURIComponent(xapi.sessionId)}`,
        );
        if (!response.ok || !response.body)
          throw new Error(`probe: /export_raw_vdi answered ${response.status}`);
        const hash = createHash('sha256');
        for await (const chunk of response.body) hash.update(chunk);
        return hash.digest('hex');
      }
      throw new Error(`probe: no disk ${device}`);
    },
    async removeGuest(g) {
      const ref = await vmRef(g);
      if (!ref) return;
      const vm = (await xapi.call('VM.get_record', ref)) as Record<string, unknown>;
      if (vm.power_state !== 'Halted') await xapi.call('VM.hard_shutdown', ref);
      const vdis: string[] = [];
      for (const vbdRef of vm.VBDs as string[]) {
        const vbd = (await xapi.call('VBD.get_record', vbdRef)) as Record<string, unknown>;
        if (vbd.type === 'Disk' && vbd.VDI !== 'OpaqueRef:NULL') vdis.push(String(vbd.VDI));
      }
      await xapi.call('VM.destroy', ref);
      for (const vdi of vdis) await xapi.call('VDI.destroy', vdi);
    },
    async listGuestNames() {
      const vms = (await xapi.call('VM.get_all_records')) as Record<string, Record<string, unknown>>;
      return Object.values(vms)
        .filter((v) => !v.is_a_template && !v.is_control_domain)
        .map((v) => String(v.name_label));
    },
    async listVolumes() {
      const vdis = (await xapi.call('VDI.get_all_records')) as Record<string, Record<string, unknown>>;
      return Object.values(vdis)
        .filter((v) => !v.is_a_snapshot)
        .map((v) => String(v.uuid));
    },
    async close() {
      await xapi.disconnect();
    },
  };
}
