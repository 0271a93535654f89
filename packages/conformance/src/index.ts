/**
 * @hvkit/conformance: the shared conformance suite every hvkit adapter passes, and live-peer helpers.
 * Record/replay tooling lives in `@hvkit/conformance/fixtures`.
 * @packageDocumentation
 */
export const VERSION = '0.0.0';

export * from './live';
export * from './suite/index';
