import { type Guest, type GuestRef, type Host, POWER_STATES, SECURITY_MODEL_NAMES } from '@hvkit/core';
import { check, expectHvkitError, fail, show } from './assert';
import type { CheckContext, CheckDef, GroupDef, SuiteEnv } from './context';

const MiB = 1024 * 1024;
/** Lower-case 8-4-4-4-12 hex: the RFC 4122 string form. Version and variant bits are not checked: the
 * libvirt test driver and vSphere BIOS uuids are well formed but not RFC 4122 variant. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const MAC = /^[0-9a-f]{2}(?::[0-9a-f]{2}){5}$/;
const BACKINGS = ['file', 'block', 'network', 'volume', 'other'];

/** Guest references that no backend has: the suite expects NOT_FOUND for them. */
export const MISSING_GUEST_ID = 'hvkit-conformance-no-such-guest';
export const MISSING_GUEST_UUID = '00000000-0000-4000-8000-0000000000ff';
export const MISSING_GUEST_REFS: readonly { ref: GuestRef; text: string }[] = [
  { ref: MISSING_GUEST_ID, text: `"${MISSING_GUEST_ID}"` },
  { ref: { id: MISSING_GUEST_ID }, text: `{ id: "${MISSING_GUEST_ID}" }` },
  { ref: { uuid: MISSING_GUEST_UUID }, text: `{ uuid: "${MISSING_GUEST_UUID}" }` },
  { ref: { name: MISSING_GUEST_ID }, text: `{ name: "${MISSING_GUEST_ID}" }` },
];

const isPosInt = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;
const isByteCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const nonEmpty = (v: unknown) => typeof v === 'string' && v.trim() !== '';

/** Everything wrong with one host record. */
export function hostProblems(host: Host): string[] {
  const p: string[] = [];
  if (typeof host !== 'object' || host === null) return [`host() returned ${show(host)}`];
  if (!nonEmpty(host.id)) p.push(`host.id is ${show(host.id)}`);
  if (!nonEmpty(host.name)) p.push(`host.name is ${show(host.name)}`);
  if (!host.hypervisor || !nonEmpty(host.hypervisor.kind) || typeof host.hypervisor.version !== 'string') {
    p.push(`host.hypervisor must have a kind and a version string, got ${show(host.hypervisor)}`);
  }
  const cpu = host.cpu ?? {};
  for (const k of ['sockets', 'cores', 'threads'] as const) {
    if (cpu[k] !== undefined && !isPosInt(cpu[k]))
      p.push(`host.cpu.${k} is ${show(cpu[k])}, not a positive integer`);
  }
  if (
    cpu.mhz !== undefined &&
    !(typeof cpu.mhz === 'number' && Number.isFinite(cpu.mhz) && cpu.mhz > 0 && cpu.mhz < 100_000)
  ) {
    p.push(`host.cpu.mhz is ${show(cpu.mhz)}, not a plausible clock in MHz`);
  }
  if (host.memoryBytes !== undefined) {
    if (!isByteCount(host.memoryBytes))
      p.push(`host.memoryBytes is ${show(host.memoryBytes)}, not a whole number of bytes`);
    else if (host.memoryBytes < 64 * MiB) {
      p.push(
        `host.memoryBytes is ${host.memoryBytes}: under 64 MiB is not a plausible host (KiB or MiB reported as bytes?)`,
      );
    }
  }
  if (!Array.isArray(host.securityModels))
    p.push(`host.securityModels is ${show(host.securityModels)}, not an array`);
  else {
    for (const m of host.securityModels) {
      if (!SECURITY_MODEL_NAMES.includes(m?.model)) {
        p.push(
          `host.securityModels has model ${show(m?.model)}, not one of ${SECURITY_MODEL_NAMES.join(', ')}`,
        );
      }
    }
  }
  return p;
}

/** Everything wrong with one guest record. */
export function guestProblems(g: Guest): string[] {
  if (typeof g !== 'object' || g === null) return [`a guest is ${show(g)}`];
  const who = `guest ${show(g.name ?? g.id)}`;
  const p: string[] = [];
  if (!nonEmpty(g.id)) p.push(`${who}: id is ${show(g.id)}`);
  if (typeof g.uuid !== 'string' || !UUID.test(g.uuid)) {
    p.push(`${who}: uuid ${show(g.uuid)} is not a lower-case RFC 4122 UUID (8-4-4-4-12 hex digits)`);
  } else if (/^[0-]+$/.test(g.uuid)) p.push(`${who}: uuid is the nil UUID`);
  if (typeof g.name !== 'string') p.push(`${who}: name is ${show(g.name)}`);
  if (!POWER_STATES.includes(g.powerState))
    p.push(`${who}: powerState ${show(g.powerState)} is not one of ${POWER_STATES.join(', ')}`);
  if (!isPosInt(g.vcpus)) p.push(`${who}: vcpus is ${show(g.vcpus)}, not an integer >= 1`);
  if (!isByteCount(g.memoryBytes))
    p.push(`${who}: memoryBytes is ${show(g.memoryBytes)}, not a whole number of bytes`);
  else if (g.memoryBytes < MiB) {
    p.push(`${who}: memoryBytes is ${g.memoryBytes}, under 1 MiB: memory must be in bytes (is it in KiB?)`);
  }
  if (g.hostId !== undefined && typeof g.hostId !== 'string') p.push(`${who}: hostId is ${show(g.hostId)}`);
  if (typeof g.isTemplate !== 'boolean') p.push(`${who}: isTemplate is ${show(g.isTemplate)}, not a boolean`);
  if (!Array.isArray(g.tags) || g.tags.some((t) => typeof t !== 'string'))
    p.push(`${who}: tags must be an array of strings`);
  if (!Array.isArray(g.disks)) p.push(`${who}: disks is ${show(g.disks)}, not an array`);
  else {
    const seen = new Set<string>();
    for (const d of g.disks) {
      if (!nonEmpty(d?.device)) p.push(`${who}: a disk has device ${show(d?.device)}`);
      else if (seen.has(d.device)) p.push(`${who}: disk device ${show(d.device)} appears twice`);
      else seen.add(d.device);
      if (!BACKINGS.includes(d?.backing))
        p.push(
          `${who}: disk ${show(d?.device)} backing ${show(d?.backing)} is not one of ${BACKINGS.join(', ')}`,
        );
      if (d?.capacityBytes !== undefined && !(isByteCount(d.capacityBytes) && d.capacityBytes > 0)) {
        p.push(
          `${who}: disk ${show(d.device)} capacityBytes is ${show(d.capacityBytes)}, not a whole number of bytes > 0`,
        );
      }
      if (d?.source !== undefined && typeof d.source !== 'string')
        p.push(`${who}: disk ${show(d.device)} source is ${show(d.source)}`);
      if (d?.format !== undefined && typeof d.format !== 'string')
        p.push(`${who}: disk ${show(d.device)} format is ${show(d.format)}`);
    }
  }
  if (!Array.isArray(g.nics)) p.push(`${who}: nics is ${show(g.nics)}, not an array`);
  else {
    const seen = new Set<string>();
    for (const n of g.nics) {
      if (!nonEmpty(n?.device)) p.push(`${who}: a NIC has device ${show(n?.device)}`);
      else if (seen.has(n.device)) p.push(`${who}: NIC device ${show(n.device)} appears twice`);
      else seen.add(n.device);
      if (n?.mac !== undefined && (typeof n.mac !== 'string' || !MAC.test(n.mac))) {
        p.push(`${who}: NIC ${show(n.device)} mac ${show(n.mac)} is not a lower-case colon-separated MAC`);
      }
      if (n?.vlan !== undefined && !(Number.isInteger(n.vlan) && n.vlan >= 0 && n.vlan <= 4095)) {
        p.push(`${who}: NIC ${show(n.device)} vlan ${show(n.vlan)} is not an integer 0..4095`);
      }
      if (n?.network !== undefined && typeof n.network !== 'string')
        p.push(`${who}: NIC ${show(n.device)} network is ${show(n.network)}`);
    }
  }
  return p;
}

function report(problems: string[], what: string): void {
  if (problems.length > 0)
    fail(
      `${what}: ${problems.slice(0, 20).join('; ')}${problems.length > 20 ? `; and ${problems.length - 20} more` : ''}`,
    );
}

async function listedGuests(ctx: CheckContext): Promise<Guest[]> {
  const guests = await ctx.guests();
  if (guests.length === 0) return ctx.skip('the adapter lists no guests');
  return guests;
}

/** The `inventory` group. */
export function inventoryGroup(env: SuiteEnv): GroupDef {
  const inv = env.supports.inventory;
  if (inv === false)
    return {
      name: 'inventory',
      skipReason: 'not supported by adapter (supports.inventory = false)',
      checks: [],
    };
  const needs = (flag: boolean, name: string) =>
    flag ? undefined : `not supported by adapter (supports.inventory.${name} = false)`;
  const checks: CheckDef[] = [
    {
      id: 'inventory.host',
      title: 'host() has ids, integer CPU counts, plausible memory and known security models',
      unavailable: needs(inv.host, 'host'),
      async run({ adapter, call }) {
        const host = await call('inventory.host()', adapter.inventory!.host());
        report(hostProblems(host), 'inventory.host() returned a bad host');
      },
    },
    {
      id: 'inventory.guests',
      title: 'listGuests() returns well-formed guests with unique ids and uuids, sizes in bytes',
      unavailable: needs(inv.guests, 'guests'),
      async run(ctx) {
        const guests = await listedGuests(ctx);
        const problems = guests.flatMap(guestProblems);
        const ids = new Set<string>();
        const uuids = new Set<string>();
        for (const g of guests) {
          if (ids.has(g.id)) problems.push(`guest id ${show(g.id)} is listed twice`);
          ids.add(g.id);
          if (uuids.has(g.uuid)) problems.push(`guest uuid ${show(g.uuid)} is listed twice`);
          uuids.add(g.uuid);
        }
        report(problems, 'inventory.listGuests() returned bad guests');
      },
    },
    {
      id: 'inventory.lookup',
      title: 'getGuest by id, { id }, { uuid } and { name } returns the same guest',
      unavailable: needs(inv.guests, 'guests'),
      async run(ctx) {
        const guests = await listedGuests(ctx);
        const inventory = ctx.adapter.inventory!;
        for (const g of guests.slice(0, 5)) {
          const unique = guests.filter((x) => x.name === g.name).length === 1;
          const refs: [GuestRef, string][] = [
            [g.id, `getGuest(${show(g.id)})`],
            [{ id: g.id }, `getGuest({ id: ${show(g.id)} })`],
            [{ uuid: g.uuid }, `getGuest({ uuid: ${show(g.uuid)} })`],
            [
              { uuid: g.uuid.toUpperCase() },
              `getGuest({ uuid: ${show(g.uuid.toUpperCase())} }) (upper case)`,
            ],
          ];
          if (unique) refs.push([{ name: g.name }, `getGuest({ name: ${show(g.name)} })`]);
          for (const [ref, what] of refs) {
            const found = await ctx.call(`inventory.${what}`, inventory.getGuest(ref));
            check(
              found && found.id === g.id && found.uuid === g.uuid && found.name === g.name,
              () =>
                `inventory.${what} returned ${show({ id: found?.id, uuid: found?.uuid, name: found?.name })}, not the listed guest ${show({ id: g.id, uuid: g.uuid, name: g.name })}`,
            );
          }
        }
      },
    },
    {
      id: 'inventory.not-found',
      title: 'getGuest rejects unknown guests with NOT_FOUND (by id, { id }, { uuid }, { name })',
      unavailable: needs(inv.guests, 'guests'),
      async run(ctx) {
        for (const { ref, text } of MISSING_GUEST_REFS) {
          if (ctx.probe?.guestExists) {
            const exists = await ctx.call(
              'probe.guestExists',
              Promise.resolve(ctx.probe.guestExists({ ref })),
            );
            if (exists)
              return ctx.skip(
                `the backend has a guest ${text}; the suite needs that reference to be unknown`,
              );
          }
          await expectHvkitError(
            ctx.call(`inventory.getGuest(${text})`, ctx.adapter.inventory!.getGuest(ref)),
            'NOT_FOUND',
            `inventory.getGuest(${text})`,
          );
        }
      },
    },
    {
      id: 'inventory.backend-agrees',
      title: 'every listed guest exists on the backend with the same memory (bytes) and vCPUs (probe)',
      unavailable: needs(inv.guests, 'guests'),
      async run(ctx) {
        const probe = ctx.probe;
        if (!probe?.getGuestFacts && !probe?.guestExists)
          return ctx.skip('needs probe.getGuestFacts or probe.guestExists');
        const guests = await listedGuests(ctx);
        const problems: string[] = [];
        for (const g of guests) {
          const pg = { ref: g.id, id: g.id, uuid: g.uuid, name: g.name };
          if (
            probe.guestExists &&
            !(await ctx.call('probe.guestExists', Promise.resolve(probe.guestExists(pg))))
          ) {
            problems.push(`guest ${show(g.name)} (${g.id}) is listed but the backend has no such guest`);
            continue;
          }
          if (!probe.getGuestFacts) continue;
          const facts = await ctx.call('probe.getGuestFacts', Promise.resolve(probe.getGuestFacts(pg)));
          if (facts.memoryBytes !== undefined && facts.memoryBytes !== g.memoryBytes) {
            const r = g.memoryBytes / facts.memoryBytes;
            const hint =
              Math.abs(r - 1 / 1024) < 1e-12
                ? ' (KiB reported as bytes)'
                : Math.abs(r - 1 / 1048576) < 1e-15
                  ? ' (MiB reported as bytes)'
                  : '';
            problems.push(
              `guest ${show(g.name)}: memoryBytes is ${g.memoryBytes} but the backend has ${facts.memoryBytes} bytes${hint}`,
            );
          }
          if (facts.vcpus !== undefined && facts.vcpus !== g.vcpus) {
            problems.push(`guest ${show(g.name)}: vcpus is ${g.vcpus} but the backend has ${facts.vcpus}`);
          }
          if (facts.uuid !== undefined && facts.uuid.toLowerCase() !== g.uuid) {
            problems.push(`guest ${show(g.name)}: uuid is ${g.uuid} but the backend has ${facts.uuid}`);
          }
        }
        report(problems, 'the adapter disagrees with the backend');
      },
    },
    {
      id: 'inventory.networks',
      title: 'listNetworks() returns networks with ids, names and VLANs 0..4095',
      unavailable: needs(inv.networks, 'networks'),
      async run({ adapter, call }) {
        const nets = await call('inventory.listNetworks()', adapter.inventory!.listNetworks!());
        check(Array.isArray(nets), `inventory.listNetworks() returned ${show(nets)}, not an array`);
        const p: string[] = [];
        const ids = new Set<string>();
        for (const n of nets) {
          if (!nonEmpty(n?.id)) p.push(`a network has id ${show(n?.id)}`);
          else if (ids.has(n.id)) p.push(`network id ${show(n.id)} is listed twice`);
          else ids.add(n.id);
          if (typeof n?.name !== 'string') p.push(`network ${show(n?.id)} has name ${show(n?.name)}`);
          if (n?.vlan !== undefined && !(Number.isInteger(n.vlan) && n.vlan >= 0 && n.vlan <= 4095)) {
            p.push(`network ${show(n.name)} vlan ${show(n.vlan)} is not an integer 0..4095`);
          }
        }
        report(p, 'inventory.listNetworks() returned bad networks');
      },
    },
    {
      id: 'inventory.storage',
      title: 'storage pools and volumes have ids and whole-byte sizes; unknown pool is NOT_FOUND',
      unavailable: needs(inv.storage, 'storage'),
      async run({ adapter, call }) {
        const inventory = adapter.inventory!;
        const pools = await call('inventory.listStoragePools()', inventory.listStoragePools!());
        check(Array.isArray(pools), `inventory.listStoragePools() returned ${show(pools)}, not an array`);
        const p: string[] = [];
        for (const pool of pools) {
          if (!nonEmpty(pool?.id)) p.push(`a pool has id ${show(pool?.id)}`);
          if (typeof pool?.type !== 'string') p.push(`pool ${show(pool?.id)} has type ${show(pool?.type)}`);
          for (const k of ['capacityBytes', 'allocationBytes', 'availableBytes'] as const) {
            if (pool[k] !== undefined && !isByteCount(pool[k]))
              p.push(`pool ${show(pool.id)} ${k} is ${show(pool[k])}, not whole bytes`);
          }
        }
        const first = pools[0];
        if (first) {
          const vols = await call(
            `inventory.listStorageVolumes(${show(first.id)})`,
            inventory.listStorageVolumes!(first.id),
          );
          check(Array.isArray(vols), `inventory.listStorageVolumes() returned ${show(vols)}, not an array`);
          for (const v of vols) {
            if (!nonEmpty(v?.id)) p.push(`a volume has id ${show(v?.id)}`);
            if (v?.poolId !== first.id)
              p.push(`volume ${show(v?.id)} of pool ${show(first.id)} has poolId ${show(v?.poolId)}`);
            for (const k of ['capacityBytes', 'allocationBytes'] as const) {
              if (v[k] !== undefined && !isByteCount(v[k]))
                p.push(`volume ${show(v.id)} ${k} is ${show(v[k])}, not whole bytes`);
            }
          }
        }
        report(p, 'bad storage');
        await expectHvkitError(
          call(
            'inventory.listStorageVolumes(unknown pool)',
            inventory.listStorageVolumes!('hvkit-conformance-no-such-pool'),
          ),
          'NOT_FOUND',
          'inventory.listStorageVolumes("hvkit-conformance-no-such-pool")',
        );
      },
    },
  ];
  return { name: 'inventory', checks };
}
