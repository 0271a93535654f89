/**
 * The kvm-libvirt adapter: `connect(options)` and its capability manifests.
 */

export type { BackupNaming } from './backups';
export {
  type CgroupMounts,
  detectCgroupVersion,
  detectLocalCgroupVersion,
  type HostFileReader,
  parseCgroupMounts,
  sshHostFileReader,
} from './cgroup';
export {
  connect,
  type KvmLibvirtAdapter,
  type KvmLibvirtConnectOptions,
} from './connect';
export { LIFECYCLE_EVENT_TYPES, toGuestEvent } from './events';
export {
  KVM_LIBVIRT_BACKUP_METHODS,
  KVM_LIBVIRT_OTHER_DRIVER_SUPPORTS,
  KVM_LIBVIRT_SUPPORTS,
  KVM_LIBVIRT_TEST_DRIVER_SUPPORTS,
  supportsForDriver,
  withoutCgroupDependentLimits,
} from './supports';
