/**
 * @hvkit/core: hvkit spec v1 (model, adapter interface, supports manifest), typed errors, units,
 * signal and timeout helpers, transports, backup sinks and the hardened XML helper.
 * @packageDocumentation
 */
export const VERSION = '0.0.0';

export * from './adapter/capability';
export * from './adapter/guest-ref';
export * from './adapter/logger';
export * from './adapter/option-keys';
export * from './adapter/spec-version';
export * from './adapter/wrap';
export * from './backup/directory-sink';
export type * from './backup/sink';
export * from './backup/stream-sink';
export * from './errors/hvkit-error';
export * from './errors/message';
export type * from './hypervisor/v1/hypervisor-adapter-v1';
export * from './hypervisor/v1/methods';
export type * from './hypervisor/v1/model';
export { POWER_STATES, SECURITY_MODEL_NAMES } from './hypervisor/v1/model';
export type * from './hypervisor/v1/supports';
export * from './limits/fields';
export * from './limits/normalize';
export * from './limits/validate';
export * from './redact';
export * from './signal/abort';
export * from './signal/retry';
export * from './signal/waiter';
export * from './transport/body';
export * from './transport/dialers';
export * from './transport/http';
export * from './transport/local-exec';
export * from './transport/local-files';
export type * from './transport/types';
export * from './units/bytes';
export * from './units/cpu';
export * from './units/unlimited';
export * from './xml/build';
export * from './xml/parse';
