/**
 * @hvkit/lvm: the hvkit adapter for LVM. `connect(options)` logs in and returns a spec v1
 * adapter whose `supports` manifest ({@link LVM_SUPPORTS}) says what it can do.
 * @packageDocumentation
 */

export { connect, type LvmAdapter, type LvmOptions } from './connect';
export { ADAPTER_ID } from './errors';
export { LVM_SUPPORTS } from './supports';
