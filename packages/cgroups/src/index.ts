/**
 * @hvkit/cgroups: the hvkit adapter for Linux cgroups (v1, v2 and hybrid), locally or over SSH.
 * `connect(options)` reads the host's cgroup mounts and returns a spec v1 adapter whose `supports`
 * manifest (at most {@link CGROUPS_SUPPORTS}) says what it can do there.
 * @packageDocumentation
 */

export type { CgroupGuest, CgroupGuestInfo } from './capabilities/inventory';
export { type CgroupsAdapter, type CgroupsOptions, connect } from './connect';
export { ADAPTER_ID } from './errors';
export type { BackendHello } from './protocol/client';
export type { CgroupMode, CgroupMount, Controller, ControllerPlace } from './protocol/mountinfo';
export { parseCgroupMounts } from './protocol/mountinfo';
export { type SshCgroupConnection, sshCgroupFiles } from './protocol/ssh-files';
export { CGROUPS_SUPPORTS } from './supports';
