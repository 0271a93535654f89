/**
 * @hvkit/lvm: the hvkit adapter for LVM. `connect(options)` runs LVM's commands on this host or on a remote
 * one over `@hvkit/ssh` and returns a spec v1 adapter whose `supports` manifest ({@link LVM_SUPPORTS}) says
 * what it can do. `parseLvmReport` reads the JSON reports of `lvs`, `vgs`, `pvs` and `lvm fullreport`.
 * @packageDocumentation
 */

export type { ListSnapshotsOptions, LvmSnapshot } from './capabilities/backups';
export { connect, type LvmAdapter, type LvmOptions } from './connect';
export type { FreezeHook, LvmBackupNaming, SnapshotSizePolicy } from './context';
export { ADAPTER_ID } from './errors';
export {
  decodeLvAttr,
  type LvAllocation,
  type LvAttr,
  type LvHealth,
  type LvKind,
  type LvmLogicalVolume,
  type LvmPhysicalVolume,
  type LvmReport,
  type LvmVolumeGroup,
  type LvPermissions,
  type LvState,
  type LvTarget,
  type LvType,
  parseLvmReport,
} from './mapping/report';
export { LVM_SUPPORTS } from './supports';
