/**
 * @hvkit/cgroups: the hvkit adapter for Linux cgroups. `connect(options)` logs in and returns a spec v1
 * adapter whose `supports` manifest ({@link CGROUPS_SUPPORTS}) says what it can do.
 * @packageDocumentation
 */

export { type CgroupsAdapter, type CgroupsOptions, connect } from './connect';
export { ADAPTER_ID } from './errors';
export { CGROUPS_SUPPORTS } from './supports';
