import type {
  Disk,
  Guest,
  Host,
  Network,
  ResourceLimits,
  SecurityLabel,
  StoragePool,
  StorageVolume,
} from '../hypervisor/v1/model';

const MiB = 1024 * 1024;
const GiB = 1024 * MiB;
const TiB = 1024 * GiB;

/** A disk of an in-memory guest: a {@link Disk} plus how much data backups stream for it. */
export interface InMemoryDiskSeed extends Disk {
  /**
   * Allocated data in bytes: what a full backup copies (like a sparse image's used clusters). Default
   * 4 MiB. The bytes are generated deterministically from the guest id, the device and each block's
   * write generation.
   */
  dataBytes?: number;
}

/** A guest of an in-memory dataset. */
export interface InMemoryGuestSeed extends Omit<Guest, 'disks'> {
  disks: InMemoryDiskSeed[];
  /** Limits in the guest's definition (persistent). Active guests start with the same live values. */
  limits?: ResourceLimits;
  /**
   * Labels in the guest's definition (`source: 'config'`). Active guests get live labels generated from
   * them (dynamic labels get a unique MCS category pair).
   */
  labels?: SecurityLabel[];
  /** Whether a guest agent answers while the guest runs (quiesced snapshots need one). Default false. */
  guestAgent?: boolean;
}

/** Everything an in-memory backend starts with. */
export interface InMemoryDataset {
  host: Host;
  guests: InMemoryGuestSeed[];
  networks: Network[];
  pools: StoragePool[];
  volumes: StorageVolume[];
}

function volumesFor(guests: InMemoryGuestSeed[]): StorageVolume[] {
  const out: StorageVolume[] = [];
  for (const g of guests) {
    for (const d of g.disks) {
      if (!d.source) continue;
      const poolId = d.backing === 'block' ? 'pool-vg0' : 'pool-default';
      const name = d.source.slice(d.source.lastIndexOf('/') + 1);
      out.push({
        id: `${poolId}/${name}`,
        name,
        poolId,
        path: d.source,
        capacityBytes: d.capacityBytes,
        allocationBytes: d.backing === 'block' ? d.capacityBytes : (d.dataBytes ?? 4 * MiB),
        format: d.format,
      });
    }
  }
  return out;
}

/**
 * The default dataset: host `hv01.lab.example` (2 sockets × 16 cores × 2 threads, 256 GiB, SELinux
 * enforcing plus DAC) with four guests:
 *
 * | id | name | state | vCPUs | memory | notes |
 * |---|---|---|---|---|---|
 * | `vm-101` | `web-01` | running | 2 | 2 GiB | 2 disks, NICs on VLAN 100 and 10, dynamic labels, guest agent |
 * | `vm-102` | `db-01` | paused | 4 | 8 GiB | file + block disk, VLAN 200, memory limits |
 * | `vm-103` | `build-01` | stopped | 1 | 512 MiB | static labels (DAC `+0:+0`), few limits |
 * | `vm-900` | `tpl-debian-12` | stopped | 1 | 1 GiB | template, unconfined (`type: 'none'`) |
 *
 * Networks `prod` (VLAN 100), `db` (VLAN 200), `mgmt` (VLAN 10, management) and `default` (untagged);
 * pools `default` (dir) and `vg0` (logical) with one volume per disk. Returns a fresh copy each call.
 */
export function createDefaultDataset(): InMemoryDataset {
  const host: Host = {
    id: 'host-0001',
    name: 'hv01.lab.example',
    hypervisor: { kind: 'in-memory', version: '1.0.0', build: 'hvkit-testing' },
    cpu: { model: 'Simulated x86-64 (EPYC class)', sockets: 2, cores: 16, threads: 2, mhz: 3000 },
    memoryBytes: 256 * GiB,
    securityModels: [
      { model: 'selinux', doi: '0', enforcing: true },
      { model: 'dac', doi: '0' },
    ],
  };
  const guests: InMemoryGuestSeed[] = [
    {
      id: 'vm-101',
      uuid: 'b8f3c1d2-6a4e-4f1b-9c7d-2e5a8b0c4d11',
      name: 'web-01',
      powerState: 'running',
      vcpus: 2,
      memoryBytes: 2 * GiB,
      hostId: host.id,
      disks: [
        {
          device: 'vda',
          source: '/var/lib/hvkit/images/web-01-vda.qcow2',
          backing: 'file',
          capacityBytes: 20 * GiB,
          format: 'qcow2',
          dataBytes: 4 * MiB,
        },
        {
          device: 'vdb',
          source: '/var/lib/hvkit/images/web-01-data.raw',
          backing: 'file',
          capacityBytes: 50 * GiB,
          format: 'raw',
          dataBytes: 3 * MiB,
        },
      ],
      nics: [
        { device: 'vnet0', mac: '52:54:00:a1:01:01', network: 'prod', vlan: 100, model: 'virtio' },
        { device: 'vnet1', mac: '52:54:00:a1:01:02', network: 'mgmt', vlan: 10, model: 'virtio' },
      ],
      isTemplate: false,
      tags: ['env:prod', 'role:web'],
      guestAgent: true,
      limits: {
        cpu: { weight: 100, maxCores: 2 },
        memory: { maxBytes: 3 * GiB, softBytes: null },
        disks: [{ device: 'vda', readBytesPerSec: 100 * MiB, writeBytesPerSec: 50 * MiB }],
        nics: [
          { device: 'vnet0', inboundAverageBytesPerSec: 12_500_000, outboundAverageBytesPerSec: 12_500_000 },
        ],
        pids: { max: 4096 },
      },
      labels: [
        { model: 'selinux', type: 'dynamic', relabel: true, source: 'config' },
        { model: 'dac', type: 'dynamic', relabel: true, source: 'config' },
      ],
    },
    {
      id: 'vm-102',
      uuid: '3e7a9f10-2b4c-4d8e-a1f3-5c6b7d8e9f02',
      name: 'db-01',
      powerState: 'paused',
      vcpus: 4,
      memoryBytes: 8 * GiB,
      hostId: host.id,
      disks: [
        {
          device: 'vda',
          source: '/var/lib/hvkit/images/db-01-vda.qcow2',
          backing: 'file',
          capacityBytes: 40 * GiB,
          format: 'qcow2',
          dataBytes: 4 * MiB,
        },
        {
          device: 'vdb',
          source: '/dev/vg0/db-01-data',
          backing: 'block',
          capacityBytes: 100 * GiB,
          format: 'raw',
          dataBytes: 5 * MiB,
        },
      ],
      nics: [{ device: 'vnet2', mac: '52:54:00:a1:02:01', network: 'db', vlan: 200, model: 'virtio' }],
      isTemplate: false,
      tags: ['env:prod', 'role:db'],
      limits: {
        cpu: { weight: 400, maxCores: null, reservationMHz: 2000 },
        memory: { maxBytes: 9 * GiB, softBytes: 6 * GiB, minBytes: 4 * GiB, swapMaxBytes: 0 },
        disks: [{ device: 'vdb', readIops: 5000, writeIops: 2000 }],
      },
      labels: [
        {
          model: 'selinux',
          type: 'dynamic',
          baseLabel: 'system_u:system_r:svirt_t:s0',
          relabel: true,
          source: 'config',
        },
        { model: 'dac', type: 'dynamic', relabel: true, source: 'config' },
      ],
    },
    {
      id: 'vm-103',
      uuid: 'c0ffee00-1234-4abc-8def-0123456789ab',
      name: 'build-01',
      powerState: 'stopped',
      vcpus: 1,
      memoryBytes: 512 * MiB,
      hostId: host.id,
      disks: [
        {
          device: 'vda',
          source: '/var/lib/hvkit/images/build-01-vda.qcow2',
          backing: 'file',
          capacityBytes: 10 * GiB,
          format: 'qcow2',
          dataBytes: 2 * MiB,
        },
      ],
      nics: [{ device: 'net0', mac: '52:54:00:a1:03:01', network: 'default', model: 'e1000' }],
      isTemplate: false,
      tags: ['env:dev'],
      limits: { cpu: { weight: 100 } },
      labels: [
        {
          model: 'selinux',
          type: 'static',
          label: 'system_u:system_r:svirt_t:s0:c10,c20',
          imageLabel: 'system_u:object_r:svirt_image_t:s0:c10,c20',
          relabel: false,
          source: 'config',
        },
        { model: 'dac', type: 'static', label: '+0:+0', relabel: false, source: 'config' },
      ],
    },
    {
      id: 'vm-900',
      uuid: '9a8b7c6d-5e4f-4a3b-9c2d-1e0f9a8b7c6d',
      name: 'tpl-debian-12',
      powerState: 'stopped',
      vcpus: 1,
      memoryBytes: GiB,
      hostId: host.id,
      disks: [
        {
          device: 'vda',
          source: '/var/lib/hvkit/images/tpl-debian-12.qcow2',
          backing: 'file',
          capacityBytes: 8 * GiB,
          format: 'qcow2',
          dataBytes: 2 * MiB,
        },
      ],
      nics: [{ device: 'net0', mac: '52:54:00:a1:09:01', network: 'default', model: 'virtio' }],
      isTemplate: true,
      tags: ['template'],
      limits: {},
      labels: [{ model: 'selinux', type: 'none', source: 'config' }],
    },
  ];
  const networks: Network[] = [
    { id: 'net-prod', name: 'prod', bridge: 'br-prod', vlan: 100, active: true, management: false },
    { id: 'net-db', name: 'db', bridge: 'br-db', vlan: 200, active: true, management: false },
    { id: 'net-mgmt', name: 'mgmt', bridge: 'br-mgmt', vlan: 10, active: true, management: true },
    { id: 'net-default', name: 'default', bridge: 'virbr0', active: true, management: false },
  ];
  const pools: StoragePool[] = [
    {
      id: 'pool-default',
      name: 'default',
      type: 'dir',
      capacityBytes: 2 * TiB,
      allocationBytes: 300 * GiB,
      availableBytes: 2 * TiB - 300 * GiB,
      path: '/var/lib/hvkit/images',
      active: true,
    },
    {
      id: 'pool-vg0',
      name: 'vg0',
      type: 'logical',
      capacityBytes: 1 * TiB,
      allocationBytes: 100 * GiB,
      availableBytes: 1 * TiB - 100 * GiB,
      path: '/dev/vg0',
      active: true,
    },
  ];
  return { host, guests, networks, pools, volumes: volumesFor(guests) };
}
