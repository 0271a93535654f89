export const VERSION = '0.0.0';
export * from './adapter';
export * from './mapping';
export * from './rpc';
export * from './transport';
