export const VERSION = '0.0.0';
export * from './capabilities/cgroup';
export * from './connect';
export * from './mapping';
export * from './protocol/dialers';
export * from './protocol/uri';
export * from './rpc';
export * from './supports';
