/**
 * @hvkit/core: hvkit spec v1 (model, adapter interface, supports manifest), typed errors, units,
 * signal and timeout helpers, transports, backup sinks and the hardened XML helper.
 * @packageDocumentation
 */
export const VERSION = '0.0.0';

export * from './errors/hvkit-error';
export type * from './hypervisor/v1/model';
export { POWER_STATES, SECURITY_MODEL_NAMES } from './hypervisor/v1/model';
export type * from './hypervisor/v1/supports';
export type * from './hypervisor/v1/hypervisor-adapter-v1';
export type * from './transport/types';
export type * from './backup/sink';
