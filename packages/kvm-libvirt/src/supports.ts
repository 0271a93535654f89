/**
 * The capability manifest of the kvm-libvirt adapter. It depends on the libvirt driver found at connect
 * (`CONNECT_GET_TYPE`): the QEMU driver has everything; the test driver has no CPU scheduler parameters
 * hvkit can map (its scheduler has only a `weight` that is not a cgroup value), no disk-only snapshots
 * and no backup or job APIs; other drivers (LXC, Xen, ...) get the generic subset.
 */

import type { DeepReadonly, SupportsManifest } from '@hvkit/core';

/**
 * Backup methods: `libvirt-push` (virDomainBackupBegin writes each disk to a file in a storage pool on the
 * daemon host, which is then streamed with a volume download), `volume-download` (the disk volumes of a
 * stopped guest streamed as they are) and `libvirt-xml` (the host-config artifact: definitions and
 * capabilities as XML files).
 */
export const KVM_LIBVIRT_BACKUP_METHODS = ['libvirt-push', 'volume-download', 'libvirt-xml'] as const;

const LIMITS_COMMON = {
  applies: 'live',
  modes: ['live', 'persistent', 'both'],
  memory: { maxBytes: true, softBytes: true, minBytes: false, swapMaxBytes: true },
  disks: { readBytesPerSec: true, writeBytesPerSec: true, readIops: true, writeIops: true },
  network: {
    inboundAverage: true,
    inboundPeak: true,
    inboundBurst: true,
    outboundAverage: true,
    outboundPeak: true,
    outboundBurst: true,
  },
  pids: false,
} as const;

/**
 * The manifest of a connection to the QEMU/KVM driver (`qemu:///system`, `qemu+ssh://...`). This is the
 * adapter's full feature set and the one the capability table in the docs shows.
 */
export const KVM_LIBVIRT_SUPPORTS: DeepReadonly<SupportsManifest> = Object.freeze({
  inventory: { host: true, guests: true, networks: true, storage: true, vlans: true },
  limits: { ...LIMITS_COMMON, cpu: { weight: true, maxCores: true, reservationMHz: false } },
  labels: { models: ['selinux', 'apparmor', 'dac', 'none'], set: true, hostModels: true },
  backups: {
    snapshots: true,
    memorySnapshots: true,
    full: true,
    incremental: true,
    hostConfig: true,
    methods: KVM_LIBVIRT_BACKUP_METHODS,
    checkpoints: true,
    cleanup: true,
    restore: { asNew: true, inPlace: true, incrementalChains: true },
  },
  events: { lifecycle: true },
}) as DeepReadonly<SupportsManifest>;

/**
 * The manifest of a connection to libvirt's test driver (`test:///default`, `test+unix:///node.xml`): no
 * CPU limits, snapshots only of inactive guests (the driver stores every snapshot of a running guest with
 * memory state and refuses disk-only), no backups of disks (no backup, job or volume-download APIs).
 */
export const KVM_LIBVIRT_TEST_DRIVER_SUPPORTS: DeepReadonly<SupportsManifest> = Object.freeze({
  inventory: { host: true, guests: true, networks: true, storage: true, vlans: true },
  limits: { ...LIMITS_COMMON, cpu: { weight: false, maxCores: false, reservationMHz: false } },
  labels: { models: ['selinux', 'apparmor', 'dac', 'none'], set: true, hostModels: true },
  backups: {
    snapshots: true,
    memorySnapshots: true,
    full: false,
    incremental: false,
    hostConfig: true,
    methods: ['libvirt-xml'],
    checkpoints: false,
    cleanup: false,
    restore: false,
  },
  events: { lifecycle: true },
}) as DeepReadonly<SupportsManifest>;

/**
 * The manifest of a connection to any other libvirt driver (`lxc:///system`, `xen:///system`, ...): what
 * works the same way on every driver (inventory from XML and the generic list calls, labels, the
 * host-config artifact, lifecycle events). No limits (their conversions are verified on QEMU only), no
 * snapshots or disk backups (drivers differ; most have neither). The adapter has no `limits` object then.
 */
export const KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS: DeepReadonly<SupportsManifest> = Object.freeze({
  inventory: { host: true, guests: true, networks: true, storage: true, vlans: true },
  limits: false,
  labels: { models: ['selinux', 'apparmor', 'dac', 'none'], set: true, hostModels: true },
  backups: {
    snapshots: false,
    memorySnapshots: false,
    full: false,
    incremental: false,
    hostConfig: true,
    methods: ['libvirt-xml'],
    checkpoints: false,
    cleanup: false,
    restore: false,
  },
  events: { lifecycle: true },
}) as DeepReadonly<SupportsManifest>;

/**
 * The manifest for a driver type as `CONNECT_GET_TYPE` reports it: `QEMU` → {@link KVM_LIBVIRT_SUPPORTS},
 * `TEST` → {@link KVM_LIBVIRT_TEST_DRIVER_SUPPORTS}, anything else (`LXC`, `Xen`, ...) →
 * {@link KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS}.
 */
export function supportsForDriver(driverType: string): DeepReadonly<SupportsManifest> {
  switch (driverType.toUpperCase()) {
    case 'QEMU':
      return KVM_LIBVIRT_SUPPORTS;
    case 'TEST':
      return KVM_LIBVIRT_TEST_DRIVER_SUPPORTS;
    default:
      return KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS;
  }
}

/**
 * `manifest` without the limits whose conversion depends on the daemon host's cgroup version
 * (`cpu.weight`, `memory.swapMaxBytes`): the manifest of a connection whose cgroup version is unknown.
 */
export function withoutCgroupDependentLimits(
  manifest: DeepReadonly<SupportsManifest>,
): DeepReadonly<SupportsManifest> {
  const limits = manifest.limits;
  if (limits === false) return manifest;
  return Object.freeze({
    ...manifest,
    limits: {
      ...limits,
      cpu: { ...limits.cpu, weight: false },
      memory: { ...limits.memory, swapMaxBytes: false },
    },
  }) as DeepReadonly<SupportsManifest>;
}
